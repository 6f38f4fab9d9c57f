package main

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime/debug"
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
	c, err := parseFlags([]string{"--config-source", "https://operator:8081"}, io.Discard)
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

func TestLimitFlags(t *testing.T) {
	c, err := parseFlags([]string{"--snapshot", "s.json"}, io.Discard)
	require.NoError(t, err)
	require.Equal(t, limits{readHeaderTimeout: 10 * time.Second, bodyReadTimeout: 60 * time.Second, idleTimeout: 120 * time.Second,
		maxHeaderBytes: 64 << 10, maxConnections: 4096}, c.limits, "defaults")
	require.Equal(t, int64(32<<20), c.maxBodyBytes)

	for k, v := range map[string]string{"READ_HEADER_TIMEOUT": "1s", "BODY_READ_TIMEOUT": "2s", "IDLE_TIMEOUT": "3s",
		"MAX_HEADER_BYTES": "4096", "MAX_CONNECTIONS": "5", "MAX_INFLIGHT_BODY_BYTES": "6000", "MEMORY_LIMIT_BYTES": "7000"} {
		t.Setenv(EnvPrefix+k, v)
	}
	c, err = parseFlags([]string{"--snapshot", "s.json", "--max-connections", "9"}, io.Discard)
	require.NoError(t, err)
	require.Equal(t, limits{readHeaderTimeout: time.Second, bodyReadTimeout: 2 * time.Second, idleTimeout: 3 * time.Second,
		maxHeaderBytes: 4096, maxConnections: 9, maxInflightBodyBytes: 6000, memoryLimitBytes: 7000}, c.limits)

	srv := c.limits.server(http.NotFoundHandler(), slog.New(slog.DiscardHandler))
	require.Equal(t, time.Second, srv.ReadHeaderTimeout)
	require.Equal(t, 3*time.Second, srv.IdleTimeout)
	require.Equal(t, 4096, srv.MaxHeaderBytes)
	require.Zero(t, srv.ReadTimeout, "a whole-request read timeout would cut streams")
	require.Zero(t, srv.WriteTimeout, "a whole-response write timeout would cut streams")
}

// The in-flight body bound and the Go runtime's soft memory limit follow the pod's memory
// limit; --max-body-bytes never exceeds the bound.
func TestLimitsFollowTheMemoryLimit(t *testing.T) {
	prev := debug.SetMemoryLimit(-1)
	t.Cleanup(func() { debug.SetMemoryLimit(prev) })
	log := slog.New(slog.DiscardHandler)
	noCgroup := t.TempDir()
	for _, tc := range []struct {
		name                  string
		l                     limits
		gomemlimit            string
		wantInflight, wantMax int64
		wantGoLimit           int64
	}{
		{"chart default 1 GiB", limits{memoryLimitBytes: 1 << 30}, "", 128 << 20, 32 << 20, 1 << 30 / 10 * 9},
		{"small pod", limits{memoryLimitBytes: 128 << 20}, "", 16 << 20, 16 << 20, 128 << 20 / 10 * 9},
		{"GOMEMLIMIT set by the operator wins", limits{memoryLimitBytes: 1 << 30}, "500MiB", 128 << 20, 32 << 20, prev},
		{"explicit bound", limits{memoryLimitBytes: 1 << 30, maxInflightBodyBytes: 1 << 20}, "", 1 << 20, 1 << 20, 1 << 30 / 10 * 9},
		{"no memory limit known", limits{}, "", 128 << 20, 32 << 20, prev},
	} {
		t.Run(tc.name, func(t *testing.T) {
			debug.SetMemoryLimit(prev)
			t.Setenv("GOMEMLIMIT", tc.gomemlimit)
			maxBody := int64(32 << 20)
			tc.l.resolve(&maxBody, noCgroup, log)
			require.Equal(t, tc.wantInflight, tc.l.maxInflightBodyBytes)
			require.Equal(t, tc.wantMax, maxBody)
			require.Equal(t, tc.wantGoLimit, debug.SetMemoryLimit(-1))
		})
	}
}

func TestCgroupMemoryLimit(t *testing.T) {
	write := func(dir, name, v string) string {
		p := filepath.Join(dir, name)
		require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
		require.NoError(t, os.WriteFile(p, []byte(v), 0o600))
		return dir
	}
	for _, tc := range []struct {
		name string
		root string
		want int64
		ok   bool
	}{
		{"v2 limit", write(t.TempDir(), "memory.max", "1073741824\n"), 1 << 30, true},
		{"v2 unlimited", write(t.TempDir(), "memory.max", "max\n"), 0, false},
		{"v1 limit", write(t.TempDir(), "memory/memory.limit_in_bytes", "536870912\n"), 512 << 20, true},
		{"v1 unlimited", write(t.TempDir(), "memory/memory.limit_in_bytes", "9223372036854771712\n"), 0, false},
		{"garbage", write(t.TempDir(), "memory.max", "lots"), 0, false},
		{"none", t.TempDir(), 0, false},
	} {
		n, ok := cgroupMemoryLimit(tc.root)
		require.Equal(t, tc.want, n, tc.name)
		require.Equal(t, tc.ok, ok, tc.name)
	}
}

// The snapshot carries provider credentials and the request a token: never in clear text
// over the network.
func TestConfigSourceMustBeTLS(t *testing.T) {
	for source, ok := range map[string]bool{
		"https://llm-gateway-operator:8081":  true,
		"https://10.0.0.7:8081":              true,
		"http://127.0.0.1:8081":              true,
		"http://localhost:8081":              true,
		"http://[::1]:8081":                  true,
		"http://llm-gateway-operator:8081":   false,
		"http://10.0.0.7:8081":               false,
		"http://127.0.0.1.evil.example:8081": false,
		"ftp://operator":                     false,
		"llm-gateway-operator:8081":          false,
		"://":                                false,
		"https://":                           false,
	} {
		_, err := parseFlags([]string{"--config-source", source, "--config-ca-file", "/ca.crt"}, io.Discard)
		if ok {
			require.NoError(t, err, source)
		} else {
			require.ErrorContains(t, err, "--config-source", source)
		}
	}
}
