package main

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestEnvName(t *testing.T) {
	require.Equal(t, "LLM_GATEWAY_CONFIG_SOURCE", envName("config-source"))
	require.Equal(t, "LLM_GATEWAY_LISTEN", envName("listen"))
}

func TestFlagsFromEnvAndCommandLine(t *testing.T) {
	t.Setenv("LLM_GATEWAY_DRAIN_TIMEOUT", "7s")
	t.Setenv("LLM_GATEWAY_LISTEN", "127.0.0.1:1")
	t.Setenv("LLM_GATEWAY_CAPTURE_ENDPOINT", "http://capture")
	c, err := parseFlags([]string{"--snapshot", "s.json", "--listen", "127.0.0.1:2"}, io.Discard)
	require.NoError(t, err)
	require.Equal(t, 7*time.Second, c.drainTimeout, "from the environment")
	require.Equal(t, "127.0.0.1:2", c.listen, "the command line wins")
	require.Equal(t, "http://capture", c.record.CaptureEndpoint, "record flags are mapped too")
	require.Equal(t, c.stateDir, c.record.StateDir)

	t.Setenv("LLM_GATEWAY_DRAIN_TIMEOUT", "soon")
	_, err = parseFlags([]string{"--snapshot", "s.json"}, io.Discard)
	require.ErrorContains(t, err, "LLM_GATEWAY_DRAIN_TIMEOUT")
}

func TestFlagsNeedASource(t *testing.T) {
	_, err := parseFlags(nil, io.Discard)
	require.Error(t, err)
	c, err := parseFlags([]string{"--config-source", "http://operator:8082"}, io.Discard)
	require.NoError(t, err)
	require.Equal(t, 25*time.Second, c.drainTimeout)
	require.Equal(t, "127.0.0.1:8080", c.listen)
	require.Equal(t, "127.0.0.1:9090", c.adminListen)
}

func TestPprofOnlyWhenAsked(t *testing.T) {
	admin := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "admin") })
	for _, tc := range []struct {
		pprof      bool
		path       string
		wantStatus int
		wantBody   string
	}{
		{false, "/debug/pprof/", http.StatusOK, "admin"},
		{true, "/debug/pprof/", http.StatusOK, "goroutine"},
		{true, "/healthz", http.StatusOK, "admin"},
	} {
		rec := httptest.NewRecorder()
		adminHandler(admin, tc.pprof).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, tc.path, nil))
		require.Equal(t, tc.wantStatus, rec.Code, "%+v", tc)
		require.Contains(t, rec.Body.String(), tc.wantBody, "%+v", tc)
	}
	c, err := parseFlags([]string{"--snapshot", "s.json", "--pprof"}, io.Discard)
	require.NoError(t, err)
	require.True(t, c.pprof)
}
