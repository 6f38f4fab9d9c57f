package server

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/posthog/llm-gateway/dataplane/snapshot"
)

// logBuffer collects the gateway's JSON log lines.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// lines returns the log lines of one request id.
func (b *logBuffer) lines(requestID string) []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []string
	for _, l := range strings.Split(b.buf.String(), "\n") {
		var v struct {
			RequestID string `json:"request_id"`
		}
		if json.Unmarshal([]byte(l), &v) == nil && v.RequestID == requestID && requestID != "" {
			out = append(out, l)
		}
	}
	return out
}

func withLog(lb *logBuffer) func(*Options) {
	return func(o *Options) { o.Logger = slog.New(slog.NewJSONHandler(lb, nil)) }
}

// deadURL is the URL of a listener that is closed again: connecting to it is refused.
func deadURL(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	u := "http://" + l.Addr().String()
	require.NoError(t, l.Close())
	return u
}

// cutBody answers 200 with the given headers and partial body, then drops the connection.
func cutBody(contentType, partial string, chunked bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		conn, rw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer conn.Close()
		if chunked {
			rw.WriteString("HTTP/1.1 200 OK\r\nContent-Type: " + contentType + "\r\nTransfer-Encoding: chunked\r\n\r\n")
			rw.WriteString(strconv.FormatInt(int64(len(partial)), 16) + "\r\n" + partial + "\r\n")
		} else {
			rw.WriteString("HTTP/1.1 200 OK\r\nContent-Type: " + contentType + "\r\nContent-Length: 100000\r\n\r\n" + partial)
		}
		rw.Flush()
	}
}

// requireNoInternals checks that a client-facing text carries no address, URL or Go error text.
func requireNoInternals(t *testing.T, text string, internals ...string) {
	t.Helper()
	for _, s := range append(internals, "127.0.0.1", "http://", "dial tcp", "connection refused", "unexpected EOF", "EOF",
		"read tcp", "i/o timeout", "malformed chunked", "net/http", "Post \"") {
		require.NotContains(t, text, s, "the client sees no internal detail")
	}
}

// Connection errors, timeouts, cut bodies and cut streams reach the client as a clean error in
// its shape, without addresses, upstream URLs or Go error text; the log has the detail under
// the request id.
func TestClientErrorsCarryNoInternals(t *testing.T) {
	dead := deadURL(t)
	deadHost := strings.TrimPrefix(dead, "http://")
	oneBackend := func(s *snapshot.Snapshot) { s.Routes[0].Backends = s.Routes[0].Backends[:1] }

	t.Run("connection refused, failover exhausted", func(t *testing.T) {
		lb := &logBuffer{}
		e := newEnv(t, func(s *snapshot.Snapshot) {
			s.Backends[0].Endpoint, s.Backends[1].Endpoint = dead, dead
		}, withLog(lb))
		resp := e.do("POST", "/v1/chat/completions", keyAlpha, chatBody)
		body := readAll(t, resp)
		require.Equal(t, http.StatusBadGateway, resp.StatusCode, body)
		requireNoInternals(t, body, deadHost)
		id := resp.Header.Get(HeaderRequestID)
		require.Contains(t, strings.Join(lb.lines(id), "\n"), "connection refused", "the log has the detail under request id %s", id)
		require.Contains(t, strings.Join(lb.lines(id), "\n"), deadHost)
	})

	t.Run("first-byte timeout", func(t *testing.T) {
		lb := &logBuffer{}
		e := newEnv(t, func(s *snapshot.Snapshot) { oneBackend(s); s.Backends[0].Timeouts.FirstByteMs = 50 }, withLog(lb))
		e.a.set(hang(nil))
		resp := e.do("POST", "/v1/chat/completions", keyAlpha, chatBody)
		body := readAll(t, resp)
		require.Equal(t, http.StatusGatewayTimeout, resp.StatusCode, body)
		requireNoInternals(t, body, strings.TrimPrefix(e.a.srv.URL, "http://"))
		require.NotEmpty(t, lb.lines(resp.Header.Get(HeaderRequestID)))
	})

	t.Run("body cut after the headers", func(t *testing.T) {
		lb := &logBuffer{}
		e := newEnv(t, oneBackend, withLog(lb))
		e.a.set(cutBody("application/json", `{"id":"chatcmpl-1",`, false))
		resp := e.do("POST", "/v1/chat/completions", keyAlpha, chatBody)
		body := readAll(t, resp)
		require.Equal(t, http.StatusBadGateway, resp.StatusCode, body)
		requireNoInternals(t, body, strings.TrimPrefix(e.a.srv.URL, "http://"))
		require.Contains(t, strings.Join(lb.lines(resp.Header.Get(HeaderRequestID)), "\n"), "unexpected EOF")
	})

	t.Run("error page of a proxy on the way", func(t *testing.T) {
		for _, status := range []int{http.StatusBadRequest, http.StatusBadGateway} {
			e := newEnv(t, oneBackend)
			e.a.set(statusErr(status, "<html><body>upstream connect error: 10.9.8.7:443 (internal-lb.corp)</body></html>"))
			resp := e.do("POST", "/v1/chat/completions", keyAlpha, chatBody)
			body := readAll(t, resp)
			require.Equal(t, status, resp.StatusCode, body)
			require.True(t, json.Valid([]byte(body)), body)
			require.Equal(t, "gateway", resp.Header.Get(HeaderErrorSource))
			requireNoInternals(t, body, "10.9.8.7", "internal-lb", "<html>")
		}
	})

	t.Run("stream cut before its first event", func(t *testing.T) {
		lb := &logBuffer{}
		e := newEnv(t, oneBackend, withLog(lb))
		e.a.set(cutBody("text/event-stream", `data: {"id":`, true))
		resp := e.do("POST", "/v1/chat/completions", keyAlpha, `{"model":"gpt-4o","stream":true,"messages":[]}`)
		body := readAll(t, resp)
		require.Equal(t, http.StatusBadGateway, resp.StatusCode, body)
		requireNoInternals(t, body)
		require.NotEmpty(t, lb.lines(resp.Header.Get(HeaderRequestID)))
	})

	t.Run("stream cut after commit", func(t *testing.T) {
		lb := &logBuffer{}
		e := newEnv(t, nil, withLog(lb))
		e.c.set(cutBody("text/event-stream", "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"type\":\"message\","+
			"\"role\":\"assistant\",\"model\":\"claude-sonnet-4-5\",\"content\":[],\"usage\":{\"input_tokens\":3,\"output_tokens\":1}}}\n\n", true))
		resp := e.do("POST", "/v1/messages", "", `{"model":"claude-sonnet-4-5","max_tokens":5,"stream":true,"messages":[]}`, "x-api-key", keyAlpha)
		body := readAll(t, resp)
		require.Equal(t, http.StatusOK, resp.StatusCode, body)
		events := sseEvents(body)
		last := events[len(events)-1]
		require.True(t, strings.HasPrefix(last, "event: error\n"), body)
		requireNoInternals(t, last, strings.TrimPrefix(e.c.srv.URL, "http://"))
		require.Contains(t, strings.Join(lb.lines(resp.Header.Get(HeaderRequestID)), "\n"), "unexpected EOF")
	})

	t.Run("legacy unreachable", func(t *testing.T) {
		lb := &logBuffer{}
		e := newEnv(t, func(s *snapshot.Snapshot) { s.Teams[2].Rollout.LegacyUpstream = dead }, withLog(lb))
		resp := e.do("POST", "/v1/messages", keyLegacy, `{}`)
		body := readAll(t, resp)
		require.Equal(t, http.StatusBadGateway, resp.StatusCode, body)
		require.Equal(t, "legacy", resp.Header.Get(HeaderPath))
		requireNoInternals(t, body, deadHost)
		logged := strings.Join(lb.lines(resp.Header.Get(HeaderRequestID)), "\n")
		require.Contains(t, logged, "connection refused", "the log has the detail under the request id")
		require.NotContains(t, logged, keyLegacy)
	})

	t.Run("request body unreadable", func(t *testing.T) {
		lb := &logBuffer{}
		e := newEnv(t, nil, withLog(lb))
		conn, err := net.Dial("tcp", e.srv.Listener.Addr().String())
		require.NoError(t, err)
		defer conn.Close()
		_, err = io.WriteString(conn, "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "+keyAlpha+
			"\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n")
		require.NoError(t, err)
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		require.NoError(t, err)
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		require.Equal(t, http.StatusBadRequest, resp.StatusCode, string(body))
		requireNoInternals(t, string(body), e.srv.Listener.Addr().String(), "invalid byte", "chunk length")
		require.Contains(t, strings.Join(lb.lines(resp.Header.Get(HeaderRequestID)), "\n"), "invalid byte in chunk length")
		require.Zero(t, e.a.count())
	})
}
