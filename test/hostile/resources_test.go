package hostile

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// resourceCases: one client cannot hold what others need.
func resourceCases() []hostileCase {
	return []hostileCase{
		{name: "a slow body", run: slowBody},
		{name: "slow headers", run: slowHeaders},
		{name: "an idle keep-alive connection", reach: []string{"provider"}, run: idleKeepAlive},
		{name: "a header larger than the server reads", run: headerBomb},
		{name: "128 KiB of headers", run: headers128k},
		{name: "a stream client that never reads", reach: []string{"firehose"}, run: neverReadingStream},
		{name: "2,000 idle connections", run: idleConnections},
		{name: "request bodies over the pod's in-flight bound", reach: []string{"stall"}, run: inflightBodies},
		{name: "client errors do not open a backend's circuit", reach: []string{"provider"}, run: clientErrorsKeepBreakerClosed},
		{name: "an upstream retry-after is capped before it holds a circuit open", reach: []string{"throttled"}, run: retryAfterCapped},
	}
}

// caseDeadline bounds how long a case waits for the gateway to act on a timeout of a few
// seconds: generous, so a busy machine never fails a correct gateway.
const caseDeadline = 45 * time.Second

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// slowBody sends the first bytes of a valid body, then one byte every 250 ms: the gateway
// ends the upload at its body-read timeout (an error in the caller's shape, or a closed
// connection), never after minutes, and nothing reaches the provider.
func slowBody(t *testing.T, s *suite) {
	body := []byte(chatBody(modelGPT, ""))
	r := request{method: "POST", path: "/v1/chat/completions", header: auth(keyAlpha), length: int64(len(body)) + 10_000,
		deadline: caseDeadline,
		stream: func(w io.Writer) error {
			if _, err := w.Write(body[:len(body)-1]); err != nil {
				return err
			}
			for {
				time.Sleep(250 * time.Millisecond)
				if _, err := w.Write([]byte(" ")); err != nil {
					return err
				}
			}
		}}
	resp := s.gw.do(t, r)
	if resp.err != nil {
		require.False(t, isTimeout(resp.err), "the gateway was still reading a slow body after %s", caseDeadline)
		return // the gateway closed the connection
	}
	requireError(t, resp, openAI, http.StatusRequestTimeout, http.StatusBadRequest)
}

// slowHeaders sends the request line and then one header line every 300 ms: the gateway
// closes the connection at its read-header timeout.
func slowHeaders(t *testing.T, s *suite) {
	conn, err := net.Dial("tcp", s.gw.listen)
	require.NoError(t, err)
	defer conn.Close()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		if _, err := io.WriteString(conn, "POST /v1/chat/completions HTTP/1.1\r\nHost: gw\r\n"); err != nil {
			return
		}
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-time.After(300 * time.Millisecond):
			}
			if _, err := io.WriteString(conn, "X-Slow: "+strings.Repeat("a", i%40)+"\r\n"); err != nil {
				return
			}
		}
	}()
	_ = conn.SetReadDeadline(time.Now().Add(caseDeadline))
	first, err := bufio.NewReader(conn).ReadString('\n')
	close(stop)
	conn.Close()
	wg.Wait()
	if err == nil {
		require.Contains(t, first, " 408 ", "the gateway answered slow headers with %q", first)
		return
	}
	require.False(t, isTimeout(err), "the gateway kept a connection whose headers never ended for %s", caseDeadline)
}

// headerBomb sends a 2 MiB header: the server refuses it (431, or a closed connection)
// without reading it all, and nothing reaches the provider.
func headerBomb(t *testing.T, s *suite) {
	resp := s.gw.do(t, request{method: "POST", path: "/v1/chat/completions",
		header: with(auth(keyAlpha), "X-Bomb", strings.Repeat("b", 2<<20)), body: []byte(chatBody(modelGPT, ""))})
	if resp.err != nil {
		require.False(t, isTimeout(resp.err), "no answer to a header bomb")
		return
	}
	require.Equal(t, http.StatusRequestHeaderFieldsTooLarge, resp.status, "%s", resp)
}

// headers128k: headers well under Go's default bound (1 MiB) but over what a request needs;
// the gateway's MaxHeaderBytes refuses them (431) and nothing reaches the provider.
func headers128k(t *testing.T, s *suite) {
	h := auth(keyAlpha)
	for i := range 32 {
		h.Set("X-Pad-"+itoa(i), strings.Repeat("p", 4<<10))
	}
	resp := s.gw.do(t, request{method: "POST", path: "/v1/chat/completions", header: h, body: []byte(chatBody(modelGPT, ""))})
	require.NoError(t, resp.err)
	require.Equal(t, http.StatusRequestHeaderFieldsTooLarge, resp.status, "%s", resp)
}

// neverReadingStream starts a stream from an upstream that sends as fast as it can, reads
// the response headers and then nothing, holding the connection open. Within the backend's
// idle timeout of the stream stalling, the gateway must treat the client as gone: the
// stream leaves /admin/streams, the upstream request is cancelled, the budget hold is
// released.
func neverReadingStream(t *testing.T, s *suite) {
	d := net.Dialer{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) { serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) })
		return errors.Join(err, serr)
	}}
	conn, err := d.Dial("tcp", s.gw.listen)
	require.NoError(t, err)
	defer conn.Close()
	body := `{"model":"` + modelFirehose + `","stream":true,"max_tokens":100,"messages":[{"role":"user","content":"hello"}]}`
	_, err = io.WriteString(conn, "POST /v1/chat/completions HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer "+keyAlpha+
		"\r\nContent-Type: application/json\r\nContent-Length: "+itoa(len(body))+"\r\n\r\n"+body)
	require.NoError(t, err)
	_ = conn.SetReadDeadline(time.Now().Add(caseDeadline))
	resp, err := http.ReadResponse(bufio.NewReaderSize(conn, 512), nil)
	require.NoError(t, err)
	require.Equal(t, 200, resp.StatusCode)
	requestID := resp.Header.Get("X-Request-Id")
	// From here on the client reads nothing and keeps the connection open.

	deadline := time.Now().Add(firehoseIdle + caseDeadline)
	var streams string
	for {
		_, streams = s.gw.adminGet("/admin/streams")
		if s.fire.open.Load() == 0 && s.fire.released.Load() >= 1 && strings.Contains(streams, `"total": 0`) {
			break
		}
		require.True(t, time.Now().Before(deadline),
			"a client that reads nothing still holds its stream (upstream open: %d, %s) %s after the idle timeout of %s",
			s.fire.open.Load(), strings.TrimSpace(streams), caseDeadline, firehoseIdle)
		time.Sleep(100 * time.Millisecond)
	}
	s.requireNoHold(t, "alpha")
	ev := s.gw.waitEvent(t, requestID)
	require.Equal(t, true, ev["llm_gateway_client_disconnected"], "recorded like any disconnect: %v", ev)
}

// waitEvent waits for the recorded $ai_generation event of a request (the standalone gateway
// writes events to <state-dir>/events.jsonl) and returns its properties.
func (p *gatewayProc) waitEvent(t *testing.T, requestID string) map[string]any {
	t.Helper()
	require.NotEmpty(t, requestID)
	deadline := time.Now().Add(caseDeadline)
	for {
		b, _ := os.ReadFile(filepath.Join(p.stateDir, "events.jsonl"))
		for _, line := range bytes.Split(b, []byte("\n")) {
			var ev struct {
				Properties map[string]any `json:"properties"`
			}
			if json.Unmarshal(line, &ev) == nil && ev.Properties["llm_gateway_request_id"] == requestID {
				return ev.Properties
			}
		}
		require.True(t, time.Now().Before(deadline), "no event recorded for request %s", requestID)
		time.Sleep(100 * time.Millisecond)
	}
}

// requireNoHold waits until team's budget holds no reservation and counts no call in flight:
// every call that reached admission was settled.
func (s *suite) requireNoHold(t *testing.T, team string) {
	t.Helper()
	deadline := time.Now().Add(caseDeadline)
	for {
		st, err := s.gw.teamBudget(team)
		if err == nil && st.ReservedMicros == 0 && st.InFlight == 0 {
			return
		}
		if time.Now().After(deadline) || !s.gw.alive() {
			t.Errorf("team %s still holds budget: %+v (%v)", team, st, err)
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
}

type budgetState struct {
	ReservedMicros     int64 `json:"reservedMicros"`
	InFlight           int64 `json:"inFlight"`
	RequestsLastMinute int64 `json:"requestsLastMinute"`
}

func (p *gatewayProc) teamBudget(team string) (budgetState, error) {
	code, body := p.adminGet("/admin/teams")
	if code != 200 {
		return budgetState{}, errors.New(body)
	}
	var teams []struct {
		Name   string      `json:"name"`
		Budget budgetState `json:"budget"`
	}
	if err := json.Unmarshal([]byte(body), &teams); err != nil {
		return budgetState{}, err
	}
	for _, tm := range teams {
		if tm.Name == team {
			return tm.Budget, nil
		}
	}
	return budgetState{}, errors.New("no team " + team)
}

// idleConnections opens 2,000 connections that send nothing. The gateway holds at most its
// connection cap of them at a time (its open descriptors never exceed the cap over the
// baseline), stays alive, and still answers an ordinary request made while they are open
// (served once a slot frees, or refused in the caller's shape).
func idleConnections(t *testing.T, s *suite) {
	const n = 2000
	conns := make([]net.Conn, 0, n)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	stopWatch := s.gw.watchFDs()
	for range n {
		c, err := net.DialTimeout("tcp", s.gw.listen, caseDeadline)
		require.NoError(t, err)
		conns = append(conns, c)
	}
	// An ordinary request while the idle connections are held.
	done := make(chan response, 1)
	go func() {
		conn, err := net.Dial("tcp", s.gw.listen)
		if err != nil {
			done <- response{err: err}
			return
		}
		defer conn.Close()
		done <- roundTrip(conn, s.gw.listen, request{method: "POST", path: "/v1/chat/completions", header: auth(keyAlpha),
			body: []byte(chatBody(modelGPT, "")), deadline: 90 * time.Second})
	}()
	resp := <-done
	peak := stopWatch()
	require.True(t, s.gw.alive())
	limit := s.base.FDs + maxConnections + tolFDs
	require.LessOrEqual(t, peak, limit, "the gateway held %d descriptors for %d idle connections (baseline %d, cap %d): no connection cap",
		peak, n, s.base.FDs, maxConnections)
	require.NoError(t, resp.err, "an ordinary request during the flood got no answer")
	if resp.status != 200 {
		requireRefusal(t, resp)
	}
	_, m := s.gw.adminGet("/metrics")
	require.Regexp(t, `(?m)^llm_gateway_connections_refused_total [1-9]`, m, "refused connections are counted")
	require.Regexp(t, `(?m)^llm_gateway_connections_limit `+itoa(maxConnections)+`$`, m, "the cap is exported")
}

// requireRefusal: a connection over the pod's cap is refused before any request on it is
// read (so in no caller's shape in particular): 503 with retry-after, a JSON error object
// marked as the gateway's, nothing internal.
func requireRefusal(t *testing.T, resp response) {
	t.Helper()
	require.Equal(t, http.StatusServiceUnavailable, resp.status, "%s", resp)
	require.Equal(t, "gateway", resp.header.Get("X-Gateway-Error-Source"))
	require.NotEmpty(t, resp.header.Get("Retry-After"))
	var v struct {
		Error struct {
			Type, Message string
		}
	}
	require.NoError(t, json.Unmarshal(resp.body, &v), "%s", resp)
	require.NotEmpty(t, v.Error.Message, "%s", resp)
	requireNoLeak(t, resp.body)
}

// idleKeepAlive: a connection that sent one request and then nothing is closed by the
// gateway after its idle timeout.
func idleKeepAlive(t *testing.T, s *suite) {
	conn, err := net.Dial("tcp", s.gw.listen)
	require.NoError(t, err)
	defer conn.Close()
	resp := roundTripKeep(t, conn, s.gw.listen, post("/v1/chat/completions", auth(keyAlpha), chatBody(modelGPT, "")))
	require.Equal(t, 200, resp.status, "%s", resp)
	_ = conn.SetReadDeadline(time.Now().Add(caseDeadline))
	n, err := conn.Read(make([]byte, 1))
	require.Error(t, err, "the gateway sent %d bytes on an idle connection", n)
	require.False(t, isTimeout(err), "the gateway kept an idle keep-alive connection for %s", caseDeadline)
}

// watchFDs samples the process's open descriptors every 20 ms until the returned stop is
// called, which returns the largest count seen.
func (p *gatewayProc) watchFDs() (stop func() int) {
	var mu sync.Mutex
	most := 0
	quit := make(chan struct{})
	done := make(chan struct{})
	sample := func() {
		if fds, err := os.ReadDir("/proc/" + itoa(p.pid) + "/fd"); err == nil {
			mu.Lock()
			most = max(most, len(fds))
			mu.Unlock()
		}
	}
	go func() {
		defer close(done)
		for {
			sample()
			select {
			case <-quit:
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	}()
	return func() int {
		close(quit)
		<-done
		sample()
		mu.Lock()
		defer mu.Unlock()
		return most
	}
}

// clientErrorsKeepBreakerClosed sends bodies the gateway or the provider rejects as the
// client's fault, more than the backend's failure threshold of them: the circuit stays
// closed and the next ordinary call is served by that backend.
func clientErrorsKeepBreakerClosed(t *testing.T, s *suite) {
	const hello = `"messages":[{"role":"user","content":"hello"}]`
	bodies := []string{
		// A mode the provider reads differently from the gateway: streams answered to a
		// caller the gateway believes asked for JSON.
		`{"model":"` + modelBreaker + `","max_tokens":100,"stream":1,` + hello + `}`,
		`{"model":"` + modelBreaker + `","max_tokens":100,"stream":false,` + hello + `,"stream":true}`,
		`{"model":"` + modelBreaker + `","max_tokens":100,"stream":"yes",` + hello + `}`,
		`{"model":"` + modelBreaker + `","max_tokens":100,"stream":[true],` + hello + `}`,
	}
	// Bodies the provider rejects as invalid (400), more than the failure threshold in a row.
	for range 2 {
		bodies = append(bodies, `{"model":"`+modelBreaker+`","max_tokens":100}`,
			`{"model":"`+modelBreaker+`","max_tokens":100,"stream_options":{"include_usage":true},`+hello+`}`)
	}
	for _, b := range bodies {
		resp := s.gw.do(t, post("/v1/chat/completions", auth(keyAlpha), b))
		require.NoError(t, resp.err)
		require.GreaterOrEqual(t, resp.status, 400, "%s -> %s", b, resp) // the parsing cases assert which
		requireNoLeak(t, resp.body)
	}
	state := s.gw.backendCircuit(t, "hostile/openai-breaker")
	require.Equal(t, "closed", state.State, "client errors opened the backend's circuit: %+v", state)
	ok := s.gw.do(t, post("/v1/chat/completions", auth(keyAlpha), chatBody(modelBreaker, "")))
	require.Equal(t, 200, ok.status, "%s", ok)
	require.Equal(t, "hostile/openai-breaker", ok.header.Get("X-Llm-Gateway-Backend"))
}

type circuit struct {
	State               string    `json:"state"`
	ConsecutiveFailures int       `json:"consecutiveFailures"`
	CooldownUntil       time.Time `json:"cooldownUntil"`
}

func (p *gatewayProc) backendCircuit(t *testing.T, name string) circuit {
	t.Helper()
	code, body := p.adminGet("/admin/backends")
	require.Equal(t, 200, code, body)
	var backends []struct {
		Name    string  `json:"name"`
		Circuit circuit `json:"circuit"`
	}
	require.NoError(t, json.Unmarshal([]byte(body), &backends))
	for _, b := range backends {
		if b.Name == name {
			return b.Circuit
		}
	}
	t.Fatalf("no backend %s on /admin/backends", name)
	return circuit{}
}

// retryAfterCapped: a provider 429 with a retry-after of ~115 days opens the circuit for at
// most the cap (10 minutes), so one upstream answer cannot take a backend out for months.
func retryAfterCapped(t *testing.T, s *suite) {
	before := time.Now()
	resp := s.gw.do(t, post("/v1/chat/completions", auth(keyAlpha), chatBody(modelThrottled, "")))
	require.NoError(t, resp.err)
	require.Equal(t, http.StatusTooManyRequests, resp.status, "%s", resp)
	requireNoLeak(t, resp.body)
	c := s.gw.backendCircuit(t, "hostile/throttled")
	require.Equal(t, "open", c.State, "a provider 429 opens the circuit: %+v", c)
	require.False(t, c.CooldownUntil.After(before.Add(10*time.Minute+time.Minute)),
		"the circuit stays open until %s on an upstream retry-after of %d s (cap: 10 minutes)", c.CooldownUntil, 10_000_000)
}

// inflightBodies: two calls whose 10 MiB bodies the pod holds while their upstream answers
// slowly; a third that announces 8 MiB would take the pod over its in-flight body bound
// (24 MiB), so it is refused at once, before its body is sent, with 503 and retry-after in
// the caller's shape.
func inflightBodies(t *testing.T, s *suite) {
	const each, third = 10 << 20, 8 << 20
	body := []byte(`{"model":"` + modelStall + `","max_tokens":100,"messages":[{"role":"user","content":"` +
		strings.Repeat("a", each) + `"}]}`)
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for range 2 {
		c, err := net.Dial("tcp", s.gw.listen)
		require.NoError(t, err)
		conns = append(conns, c)
		_, err = io.WriteString(c, "POST /v1/chat/completions HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer "+keyBeta+
			"\r\nContent-Type: application/json\r\nContent-Length: "+itoa(len(body))+"\r\n\r\n")
		require.NoError(t, err)
		_, err = c.Write(body)
		require.NoError(t, err)
	}
	deadline := time.Now().Add(caseDeadline)
	for s.stall.open.Load() < 2 {
		require.True(t, time.Now().Before(deadline), "the two large calls never reached their upstream")
		time.Sleep(20 * time.Millisecond)
	}

	conn, err := net.Dial("tcp", s.gw.listen)
	require.NoError(t, err)
	defer conn.Close()
	_, err = io.WriteString(conn, "POST /v1/chat/completions HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer "+keyBeta+
		"\r\nContent-Type: application/json\r\nContent-Length: "+itoa(third)+"\r\n\r\n")
	require.NoError(t, err)
	_ = conn.SetReadDeadline(time.Now().Add(caseDeadline))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	require.NoError(t, err, "a body over the pod's in-flight bound got no answer before it was sent")
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
	got := response{status: resp.StatusCode, header: resp.Header, body: b}
	requireError(t, got, openAI, http.StatusServiceUnavailable, http.StatusTooManyRequests)
	require.NotEmpty(t, resp.Header.Get("Retry-After"), "a refusal for load says when to retry")

	for _, c := range conns {
		c.Close()
	}
	for s.stall.open.Load() > 0 {
		require.True(t, time.Now().Before(deadline), "the gateway never cancelled the calls whose clients left")
		time.Sleep(20 * time.Millisecond)
	}
}
