package e2e

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestGatewayProcessLimits runs bin/gateway with small limits, set through the environment as
// the chart does, and checks each is wired to the proxy listener: the connection cap (the
// refusal and its metric), the header bound, the body read timeout and the read-header
// timeout on a connection that sends nothing.
func TestGatewayProcessLimits(t *testing.T) {
	_, fake := newFakeServer(t)
	p := startGateway(t, devSnapshot(fake.URL, ""),
		"LLM_GATEWAY_MAX_CONNECTIONS=2", "LLM_GATEWAY_MAX_HEADER_BYTES=4096",
		"LLM_GATEWAY_BODY_READ_TIMEOUT=300ms", "LLM_GATEWAY_READ_HEADER_TIMEOUT=500ms")
	dial := func() (net.Conn, *bufio.Reader) {
		c, err := net.Dial("tcp", p.listen)
		require.NoError(t, err)
		t.Cleanup(func() { c.Close() })
		return c, bufio.NewReader(c)
	}
	read := func(c net.Conn, br *bufio.Reader) *http.Response {
		require.NoError(t, c.SetReadDeadline(time.Now().Add(15*time.Second)))
		resp, err := http.ReadResponse(br, nil)
		require.NoError(t, err)
		_, _ = io.Copy(io.Discard, resp.Body)
		return resp
	}
	metric := func(name string) string {
		_, body := adminGet(t, p, "/metrics")
		for _, line := range strings.Split(body, "\n") {
			if v, ok := strings.CutPrefix(line, name+" "); ok {
				return v
			}
		}
		return ""
	}

	// Two idle connections fill the pod; the third is refused at once.
	idle1, _ := dial()
	_, _ = dial()
	require.Eventually(t, func() bool { return metric("llm_gateway_connections_open") == "2" }, 10*time.Second, 10*time.Millisecond)
	c3, br3 := dial()
	require.Equal(t, http.StatusServiceUnavailable, read(c3, br3).StatusCode)
	require.Equal(t, "1", metric("llm_gateway_connections_refused_total"))
	require.Equal(t, "2", metric("llm_gateway_connections_limit"))

	// Connections that send nothing are closed after the read-header timeout, freeing the pod.
	require.NoError(t, idle1.SetReadDeadline(time.Now().Add(15*time.Second)))
	_, err := idle1.Read(make([]byte, 1))
	require.Error(t, err, "the idle connection was closed")
	require.Eventually(t, func() bool { return metric("llm_gateway_connections_open") == "0" }, 10*time.Second, 10*time.Millisecond)

	// Headers over the bound: 431.
	c, br := dial()
	_, err = io.WriteString(c, "POST /v1/chat/completions HTTP/1.1\r\nHost: gw\r\nX-Big: "+strings.Repeat("a", 8192)+"\r\n\r\n")
	require.NoError(t, err)
	require.Equal(t, http.StatusRequestHeaderFieldsTooLarge, read(c, br).StatusCode)

	// A body that does not arrive within the body read timeout: 408 in the caller's shape.
	c, br = dial()
	_, err = io.WriteString(c, "POST /v1/messages HTTP/1.1\r\nHost: gw\r\nX-Api-Key: "+teamKey+
		"\r\nContent-Type: application/json\r\nContent-Length: 500\r\n\r\n{\"model\":")
	require.NoError(t, err)
	resp := read(c, br)
	require.Equal(t, http.StatusRequestTimeout, resp.StatusCode)
	require.Equal(t, "1", metric(`llm_gateway_client_timeouts_total{kind="body_read"}`))
}
