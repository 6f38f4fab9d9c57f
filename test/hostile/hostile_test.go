package hostile

import (
	"encoding/json"
	"io"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/posthog/llm-gateway/dataplane/snapshot"
)

// hostileCase is one row of the table: what an attacker sends and what must hold.
type hostileCase struct {
	name string
	// reach names the upstreams the case may reach ("provider", "throttled", "legacy",
	// "firehose", "stall"); every other upstream must have received nothing. The case itself asserts
	// what reached the ones it names.
	reach []string
	run   func(t *testing.T, s *suite)
}

// TestHostile runs every case against one gateway process, one after the other (each case's
// resources are measured against the same baseline), and after each asserts that the process
// is alive, logged no panic, that nothing reached an upstream the case may not reach, and that
// goroutines, descriptors and memory returned to the baseline.
func TestHostile(t *testing.T) {
	if testing.Short() {
		t.Skip("process-level suite: builds and runs bin/gateway")
	}
	s := newSuite(t)
	for _, c := range cases() {
		t.Run(c.name, func(t *testing.T) {
			s.ensureGateway(t)
			s.resetUpstreams()
			mark := s.gw.logs.Len()
			defer s.afterCase(t, c, mark) // also when the case stopped at a failed require
			c.run(t, s)
		})
	}
}

// afterCase asserts what must hold after every case, whatever the case itself found.
func (s *suite) afterCase(t *testing.T, c hostileCase, mark int) {
	logs := func() string { return s.gw.logs.String()[mark:] }
	for _, bad := range []string{"fatal error", "panic"} {
		if strings.Contains(logs(), bad) {
			t.Errorf("the gateway logged a %s:\n%s", bad, crashReport(logs()))
			break
		}
	}
	code, body := s.gw.adminGet("/healthz")
	if !s.gw.alive() || code != 200 {
		select {
		case <-s.gw.done:
		case <-time.After(5 * time.Second):
		}
		t.Errorf("the gateway is down (exited: %v; health check: %d %s)", s.gw.exitErr(), code, body)
		return
	}
	for _, u := range s.upstreams() {
		if !slices.Contains(c.reach, u.name) {
			assertNoneReached(t, u.name, u.tap.requests())
		}
	}
	for _, team := range []string{"alpha", "beta"} {
		s.requireNoHold(t, team)
	}
	s.gw.requireBackToBaseline(t, s.base)
}

// crashReport is the part of the gateway's log that says why it died: from the first fatal
// error or panic, without the goroutine dump's bulk.
func crashReport(logs string) string {
	for _, m := range []string{"fatal error", "panic"} {
		if i := strings.Index(logs, m); i >= 0 {
			return tail(logs[i:min(len(logs), i+1500)], 1500)
		}
	}
	return tail(logs, 1500)
}

func assertNoneReached(t *testing.T, name string, reqs []tapped) {
	t.Helper()
	if len(reqs) == 0 {
		return
	}
	var lines []string
	for _, r := range reqs {
		lines = append(lines, r.Method+" "+r.RequestURI+" auth="+r.Header.Get("Authorization")+r.Header.Get("X-Api-Key"))
	}
	t.Errorf("%d request(s) reached the %s upstream, which this case must not reach:\n  %s", len(reqs), name, strings.Join(lines, "\n  "))
}

// leaks matches what no response body may carry: Go error strings, internal addresses,
// stack traces. Credentials are checked separately (requireNoLeak).
var leaks = regexp.MustCompile(`(?i)dial tcp|read tcp|write tcp|connection refused|connection reset|broken pipe|i/o timeout|` +
	`127\.0\.0\.1|\[::1\]|\b10\.\d+\.\d+\.\d+|context canceled|context deadline exceeded|unexpected EOF|goroutine \d|runtime error|panic|\.go:\d+`)

// secrets are the upstream credentials of the suite: never in a response.
var secrets = []string{upOpenAIKey, upAnthropicKey, legacyCredential, canaryCredential}

func requireNoLeak(t *testing.T, body []byte) {
	t.Helper()
	if m := leaks.Find(body); m != nil {
		t.Errorf("the response carries internal detail %q: %s", m, tail(string(body), 1000))
	}
	for _, sec := range secrets {
		require.NotContains(t, string(body), sec, "the response carries an upstream credential")
	}
}

// requireError asserts a gateway error in shape with one of statuses: the body is the
// caller's protocol's error object, marked as the gateway's own, and carries no internal
// detail.
func requireError(t *testing.T, resp response, shape snapshot.Shape, statuses ...int) {
	t.Helper()
	require.NoError(t, resp.err, "the gateway answered")
	require.Contains(t, statuses, resp.status, "status: %s", resp)
	require.Equal(t, "gateway", resp.header.Get("X-Gateway-Error-Source"), "a gateway error says so: %s", resp)
	require.True(t, strings.HasPrefix(resp.header.Get("Content-Type"), "application/json"), "JSON error: %s", resp)
	requireShape(t, resp.body, shape)
	requireNoLeak(t, resp.body)
}

// requireShape asserts an error body in the caller's protocol: OpenAI
// {"error":{"message","type",...}} or Anthropic {"type":"error","error":{"type","message"}}.
func requireShape(t *testing.T, body []byte, shape snapshot.Shape) {
	t.Helper()
	var v map[string]any
	require.NoError(t, json.Unmarshal(body, &v), "error body is JSON: %s", body)
	e, ok := v["error"].(map[string]any)
	require.True(t, ok, "error object: %s", body)
	msg, _ := e["message"].(string)
	typ, _ := e["type"].(string)
	require.NotEmpty(t, msg, "error.message: %s", body)
	require.NotEmpty(t, typ, "error.type: %s", body)
	switch shape {
	case snapshot.ShapeAnthropic:
		require.Equal(t, "error", v["type"], "Anthropic errors are {\"type\":\"error\",...}: %s", body)
	default:
		require.NotContains(t, v, "type", "an OpenAI error is not in Anthropic's shape: %s", body)
		_, hasParam := e["param"]
		_, hasCode := e["code"]
		require.True(t, hasParam && hasCode, "OpenAI errors carry param and code: %s", body)
	}
}

// expect is the common case: one request, one gateway error.
func expect(r request, shape snapshot.Shape, statuses ...int) func(t *testing.T, s *suite) {
	return func(t *testing.T, s *suite) {
		requireError(t, s.gw.do(t, r), shape, statuses...)
	}
}

// post builds a request with a body.
func post(path string, h http.Header, body string) request {
	return request{method: "POST", path: path, header: h, body: []byte(body)}
}

func with(h http.Header, kv ...string) http.Header {
	h = h.Clone()
	for i := 0; i+1 < len(kv); i += 2 {
		h.Set(kv[i], kv[i+1])
	}
	return h
}

// repeat writes n bytes of b in pieces.
func repeat(b byte, n int64) func(w io.Writer) error {
	return func(w io.Writer) error {
		piece := []byte(strings.Repeat(string(b), 64<<10))
		for left := n; left > 0; {
			k := min(left, int64(len(piece)))
			if _, err := w.Write(piece[:k]); err != nil {
				return err
			}
			left -= k
		}
		return nil
	}
}

const (
	openAI    = snapshot.ShapeOpenAI
	anthropic = snapshot.ShapeAnthropic
)

func cases() []hostileCase {
	var all []hostileCase
	all = append(all, tenancyCases()...)
	all = append(all, parsingCases()...)
	all = append(all, resourceCases()...)
	all = append(all, operatorCases()...)
	return all
}
