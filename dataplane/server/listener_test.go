package server

import (
	"errors"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
	"github.com/tidwall/gjson"

	"github.com/posthog/llm-gateway/dataplane/metrics"
)

// serveLimited serves a plain 200 handler behind LimitListener(max).
func serveLimited(t *testing.T, max int) (string, *metrics.Metrics) {
	m := metrics.New()
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	srv := &http.Server{ReadHeaderTimeout: time.Minute,
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "ok") })}
	ln := LimitListener(inner, max, m)
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	t.Cleanup(func() {
		_ = srv.Close()
		require.True(t, errors.Is(<-done, http.ErrServerClosed))
	})
	return inner.Addr().String(), m
}

func (c *rawConn) get() (*http.Response, string) {
	c.t.Helper()
	c.send("GET / HTTP/1.1\r\nHost: gateway\r\n\r\n")
	return c.response()
}

// The proxy listener holds at most --max-connections: one more is answered 503 (retry after
// a second, a body both SDKs parse) and closed at once, not queued; a freed slot serves again.
func TestConnectionLimit(t *testing.T) {
	addr, m := serveLimited(t, 2)
	require.Equal(t, 2.0, testutil.ToFloat64(m.ConnectionsLimit))
	c1, c2 := dialRaw(t, addr), dialRaw(t, addr) // idle: no request yet
	waitFor(t, "two connections held", func() bool { return testutil.ToFloat64(m.ConnectionsOpen) == 2 })

	c3 := dialRaw(t, addr)
	resp, body := c3.response()
	require.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
	require.Equal(t, "1", resp.Header.Get("Retry-After"))
	require.Equal(t, "gateway", resp.Header.Get(HeaderErrorSource))
	require.Equal(t, "overloaded_error", gjson.Get(body, "error.type").Str, body)
	require.Equal(t, "too_many_connections", gjson.Get(body, "error.code").Str, body)
	require.Equal(t, "error", gjson.Get(body, "type").Str, body)
	require.True(t, c3.closed())
	require.Equal(t, 1.0, testutil.ToFloat64(m.ConnectionsRefused))

	resp, body = c2.get()
	require.Equal(t, http.StatusOK, resp.StatusCode, "held connections serve: %s", body)
	require.NoError(t, c1.conn.Close())
	waitFor(t, "the slot to free", func() bool { return testutil.ToFloat64(m.ConnectionsOpen) == 1 })
	resp, body = dialRaw(t, addr).get()
	require.Equal(t, http.StatusOK, resp.StatusCode, body)
	require.Equal(t, 1.0, testutil.ToFloat64(m.ConnectionsRefused))
}

func TestConnectionLimitZeroIsUnlimited(t *testing.T) {
	addr, m := serveLimited(t, 0)
	for range 3 {
		resp, body := dialRaw(t, addr).get()
		require.Equal(t, http.StatusOK, resp.StatusCode, body)
	}
	require.Zero(t, testutil.ToFloat64(m.ConnectionsRefused))
}
