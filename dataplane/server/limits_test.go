package server

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
	"github.com/tidwall/gjson"

	"github.com/posthog/llm-gateway/dataplane/budget"
	"github.com/posthog/llm-gateway/dataplane/snapshot"
)

// rawConn is a client speaking HTTP/1.1 by hand, so that it can stop sending or reading
// whenever the test says.
type rawConn struct {
	t    *testing.T
	conn net.Conn
	br   *bufio.Reader
}

func dialRaw(t *testing.T, addr string) *rawConn {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close() })
	return &rawConn{t: t, conn: conn, br: bufio.NewReader(conn)}
}

func (c *rawConn) send(s string) {
	c.t.Helper()
	_, err := io.WriteString(c.conn, s)
	require.NoError(c.t, err)
}

// head is a request line and headers for a POST with the given key and extra header lines.
func head(path, key string, extra ...string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "POST %s HTTP/1.1\r\nHost: gateway\r\nContent-Type: application/json\r\n", path)
	if key != "" {
		fmt.Fprintf(&b, "Authorization: Bearer %s\r\n", key)
	}
	for _, h := range extra {
		b.WriteString(h + "\r\n")
	}
	b.WriteString("\r\n")
	return b.String()
}

// response reads one response; the read gives up after a generous deadline (the test then
// fails: the gateway never answered).
func (c *rawConn) response() (*http.Response, string) {
	c.t.Helper()
	require.NoError(c.t, c.conn.SetReadDeadline(time.Now().Add(15*time.Second)))
	resp, err := http.ReadResponse(c.br, nil)
	require.NoError(c.t, err, "the gateway did not answer")
	body, err := io.ReadAll(resp.Body)
	require.NoError(c.t, err)
	return resp, string(body)
}

// closed reports whether the gateway closed the connection (EOF or reset).
func (c *rawConn) closed() bool {
	require.NoError(c.t, c.conn.SetReadDeadline(time.Now().Add(15*time.Second)))
	_, err := c.br.ReadByte()
	var ne net.Error
	if err == nil || (errorAs(err, &ne) && ne.Timeout()) {
		return false
	}
	return true
}

func errorAs(err error, target *net.Error) bool {
	ne, ok := err.(net.Error)
	if ok {
		*target = ne
	}
	return ok
}

// serveHandler serves the gateway's full proxy handler (with the body read deadline), as
// bin/gateway does.
func serveHandler(t *testing.T, g *Gateway) *httptest.Server {
	srv := httptest.NewServer(g.Handler())
	t.Cleanup(func() {
		srv.CloseClientConnections()
		srv.Close()
	})
	return srv
}

func shortBodyTimeout(o *Options) { o.BodyReadTimeout = 200 * time.Millisecond }

// A client that sends its body slowly (or never) is answered and cut off at the body read
// timeout, in its own shape, whether or not the gateway reads the body (an unauthenticated
// request is answered without reading it).
func TestSlowBodyIsCutAtTheBodyReadTimeout(t *testing.T) {
	e := newEnv(t, nil, shortBodyTimeout)
	srv := serveHandler(t, e.g)
	for _, tc := range []struct {
		name, path, key string
		status          int
		check           func(t *testing.T, body string)
	}{
		{"openai", "/v1/chat/completions", keyAlpha, http.StatusRequestTimeout, func(t *testing.T, body string) {
			require.Equal(t, "request_timeout", gjson.Get(body, "error.code").Str, body)
			require.NotContains(t, body, "i/o timeout", "no Go error strings")
		}},
		{"anthropic", "/v1/messages", keyAlpha, http.StatusRequestTimeout, func(t *testing.T, body string) {
			require.Equal(t, "error", gjson.Get(body, "type").Str, body)
			require.Equal(t, "timeout_error", gjson.Get(body, "error.type").Str, body)
		}},
		{"no key", "/v1/chat/completions", "", http.StatusUnauthorized, func(t *testing.T, body string) {
			require.Equal(t, "authentication_error", gjson.Get(body, "error.type").Str, body)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := dialRaw(t, srv.Listener.Addr().String())
			c.send(head(tc.path, tc.key, "Content-Length: 1000") + `{"model":"gpt-4o",`)
			resp, body := c.response()
			require.Equal(t, tc.status, resp.StatusCode, body)
			tc.check(t, body)
			require.True(t, c.closed(), "the connection is closed")
		})
	}
	require.Equal(t, 0, e.a.count()+e.c.count(), "nothing reached a provider")
	require.Equal(t, 2.0, testutil.ToFloat64(e.g.metrics.ClientTimeouts.WithLabelValues("body_read")))
	require.Zero(t, e.g.BodyBytesInFlight())
}

// The body read deadline ends with the body: a stream (or a legacy passthrough) that runs
// longer than the body read timeout is not cut.
func TestBodyReadDeadlineEndsWithTheBody(t *testing.T) {
	e := newEnv(t, nil, shortBodyTimeout)
	srv := serveHandler(t, e.g)
	pause := 3 * e.g.bodyReadTimeout // the provider is slow; the client's body arrived long ago
	slowChat := func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		fmt.Fprint(w, "data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"model\":\"gpt-4o\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"one \"},\"finish_reason\":null}]}\n\n")
		w.(http.Flusher).Flush()
		time.Sleep(pause)
		fmt.Fprint(w, "data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"model\":\"gpt-4o\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"two\"},\"finish_reason\":\"stop\"}]}\n\n")
		fmt.Fprint(w, "data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"model\":\"gpt-4o\",\"choices\":[],\"usage\":{\"prompt_tokens\":1,\"completion_tokens\":2,\"total_tokens\":3}}\n\n")
		fmt.Fprint(w, "data: [DONE]\n\n")
	}
	e.a.set(slowChat)
	e.legacy.set(slowChat)
	for _, key := range []string{keyAlpha, keyLegacy} {
		req, err := http.NewRequest("POST", srv.URL+"/v1/chat/completions",
			strings.NewReader(`{"model":"gpt-4o","stream":true,"messages":[{"role":"user","content":"hi"}]}`))
		require.NoError(t, err)
		req.Header.Set("Authorization", "Bearer "+key)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		body := readAll(t, resp)
		resp.Body.Close()
		require.Contains(t, body, `"two"`, "key %s: the stream ran to its end", key)
		require.Contains(t, body, "[DONE]", "key %s", key)
	}
	require.Equal(t, 1, e.a.count(), "one stream through the gateway")
	require.Equal(t, 1, e.legacy.count(), "one through the legacy passthrough")
}

// In-flight request bodies are bounded across the pod: a body that does not fit is refused
// with 503 and retry-after in the caller's shape before any of it is read, chunked bodies
// take pool space as they grow, and every byte comes back when calls end.
func TestInflightBodyBytesAreBounded(t *testing.T) {
	const pool = 64 << 10
	e := newEnv(t, nil, func(o *Options) { o.MaxInflightBodyBytes = pool; o.MaxBodyBytes = pool })
	srv := serveHandler(t, e.g)
	release := make(chan struct{})
	done := sync.OnceFunc(func() { close(release) })
	t.Cleanup(done)
	e.a.set(func(w http.ResponseWriter, r *http.Request) {
		<-release
		chatOK("done", 1, 1)(w, r)
	})

	// One call holds 50 KiB while its provider thinks.
	big := `{"model":"gpt-4o","messages":[{"role":"user","content":"` + strings.Repeat("x", 50<<10) + `"}]}`
	held := make(chan int, 1)
	go func() {
		req, _ := http.NewRequest("POST", srv.URL+"/v1/chat/completions", strings.NewReader(big))
		req.Header.Set("Authorization", "Bearer "+keyAlpha)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			held <- 0
			return
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		held <- resp.StatusCode
	}()
	waitFor(t, "the big call to reach its provider", func() bool { return e.a.count() == 1 })
	require.Equal(t, int64(len(big)), e.g.BodyBytesInFlight())
	require.Equal(t, float64(len(big)), testutil.ToFloat64(e.g.metrics.BodyBytesInFlight))

	// A 20 KiB body does not fit: refused from its headers alone (the client sends no byte of
	// it, and still gets its answer), in the caller's shape.
	for _, tc := range []struct{ path, shapeCheck string }{
		{"/v1/chat/completions", "error.code"},
		{"/v1/messages", "error.type"},
	} {
		c := dialRaw(t, srv.Listener.Addr().String())
		c.send(head(tc.path, keyAlpha, "Content-Length: 20480"))
		resp, body := c.response()
		require.Equal(t, http.StatusServiceUnavailable, resp.StatusCode, body)
		require.Equal(t, "1", resp.Header.Get("Retry-After"))
		require.Equal(t, "gateway", resp.Header.Get(HeaderErrorSource))
		if tc.path == "/v1/messages" {
			require.Equal(t, "overloaded_error", gjson.Get(body, "error.type").Str, body)
		} else {
			require.Equal(t, "gateway_overloaded", gjson.Get(body, "error.code").Str, body)
		}
	}
	// A chunked body takes its first 16 KiB step, which does not fit either.
	c := dialRaw(t, srv.Listener.Addr().String())
	c.send(head("/v1/chat/completions", keyAlpha, "Transfer-Encoding: chunked") + "5\r\n{\"mod\r\n")
	resp, body := c.response()
	require.Equal(t, http.StatusServiceUnavailable, resp.StatusCode, body)
	require.Equal(t, 1, e.a.count(), "nothing refused reached the provider")
	require.Equal(t, 3.0, testutil.ToFloat64(e.g.metrics.RequestsShed.WithLabelValues("body_bytes")))

	done()
	require.Equal(t, http.StatusOK, <-held)
	waitFor(t, "the big call to give its bytes back", func() bool { return e.g.BodyBytesInFlight() == 0 })

	// With the pool free, a 40 KiB chunked body grows into it and is served.
	mid := `{"model":"gpt-4o","messages":[{"role":"user","content":"` + strings.Repeat("y", 40<<10) + `"}]}`
	req, _ := http.NewRequest("POST", srv.URL+"/v1/chat/completions", io.MultiReader(strings.NewReader(mid)))
	req.ContentLength = -1
	req.Header.Set("Authorization", "Bearer "+keyAlpha)
	r2, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, r2.StatusCode, readAll(t, r2))
	r2.Body.Close()
	require.Equal(t, mid, string(e.a.requests()[1].Body))
	waitFor(t, "every byte to come back", func() bool { return e.g.BodyBytesInFlight() == 0 })
}

// A streaming client that stops reading is gone after the backend's idle timeout: the write
// to it fails at its deadline, the upstream request is cancelled, the backend's slot and the
// budget hold are released, and the call is settled and recorded like any disconnect.
func TestNeverReadingStreamClientIsCut(t *testing.T) {
	mgr := budget.NewManager(budget.NewMemoryStore(), budget.Options{})
	defer mgr.Close()
	e := newEnv(t, func(s *snapshot.Snapshot) {
		s.Backends[0].Timeouts.IdleMs = 300
		s.DefaultBudget.Limits = []snapshot.SpendLimit{{Window: snapshot.WindowDay, LimitMicros: 100_000_000, Enforcement: snapshot.EnforceHard}}
	}, func(o *Options) { o.Budget = mgr })

	// The provider streams 32 KiB deltas until the gateway hangs up.
	upstreamGone := make(chan struct{})
	delta := strings.Repeat("z", 32<<10)
	e.a.set(func(w http.ResponseWriter, r *http.Request) {
		defer close(upstreamGone)
		w.Header().Set("Content-Type", "text/event-stream")
		rc := http.NewResponseController(w)
		for {
			if _, err := fmt.Fprintf(w, "data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"model\":\"gpt-4o\",\"choices\":[{\"index\":0,\"delta\":{\"content\":%q},\"finish_reason\":null}]}\n\n", delta); err != nil {
				return
			}
			if rc.Flush() != nil {
				return
			}
			select {
			case <-r.Context().Done():
				return
			case <-time.After(time.Millisecond):
			}
		}
	})

	c := dialRaw(t, e.srv.Listener.Addr().String())
	require.NoError(t, c.conn.(*net.TCPConn).SetReadBuffer(4096))
	body := `{"model":"gpt-4o","stream":true,"messages":[{"role":"user","content":"hi"}]}`
	c.send(head("/v1/chat/completions", keyAlpha, fmt.Sprintf("Content-Length: %d", len(body))) + body)
	// ... and never reads.

	select {
	case <-upstreamGone:
	case <-time.After(30 * time.Second):
		t.Fatal("the gateway kept the upstream stream open for a client that reads nothing")
	}
	waitFor(t, "the call to be recorded", func() bool {
		calls := e.recorder.Calls()
		return len(calls) == 1
	})
	rec := e.recorder.Last(t)
	require.True(t, rec.ClientDisconnected)
	require.Equal(t, http.StatusOK, rec.Status, "the stream had been committed")
	require.Equal(t, "client_disconnected", rec.Error.Type)
	require.Contains(t, rec.Error.Message, "stopped reading")
	require.NotEmpty(t, rec.OutputText, "what was streamed is recorded")

	require.Zero(t, e.g.Streams().Len())
	require.Zero(t, e.g.Runtime().backends["ns/openai-a"].inFlight.Load(), "the backend's concurrency slot is free")
	st, err := mgr.TeamState(context.Background(), "alpha", &e.snap.DefaultBudget)
	require.NoError(t, err)
	require.Zero(t, st.ReservedMicros, "the budget hold is released")
	require.Positive(t, st.Windows[0].SpentMicros, "the streamed output was settled")
	require.Equal(t, 1.0, testutil.ToFloat64(e.g.metrics.ClientTimeouts.WithLabelValues("write")))
	require.Equal(t, "closed", e.g.Runtime().backends["ns/openai-a"].breaker.State().State)
}
