package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/posthog/llm-gateway/internal/leakcheck"
)

func TestMain(m *testing.M) { leakcheck.VerifyTestMain(m) }

func TestRunServesAndShutsDown(t *testing.T) {
	scenarios := filepath.Join(t.TempDir(), "s.yaml")
	require.NoError(t, os.WriteFile(scenarios, []byte("scenarios:\n  overloaded: {status: 529}\n"), 0o644))
	t.Setenv("FAKEPROVIDER_ANTHROPIC_KEY", "env-key")
	t.Setenv("FAKEPROVIDER_LOG_LEVEL", "warn")

	ctx, cancel := context.WithCancel(context.Background())
	addrc := make(chan string, 1)
	errc := make(chan error, 1)
	go func() {
		errc <- run(ctx, []string{"--listen", "127.0.0.1:0", "--scenarios", scenarios, "--azure-deployment", "prod=gpt-4o-2024-11-20"},
			func(addr string) { addrc <- addr })
	}()
	var base string
	select {
	case addr := <-addrc:
		base = "http://" + addr
	case err := <-errc:
		t.Fatalf("run: %v", err)
	}
	client := &http.Client{Transport: &http.Transport{}}
	defer client.CloseIdleConnections()
	call := func(key, scenario string) (int, string) {
		req, err := http.NewRequest(http.MethodPost, base+"/v1/messages",
			strings.NewReader(`{"model":"claude-haiku-4-5-20251001","max_tokens":10,"messages":[{"role":"user","content":"hi"}]}`))
		require.NoError(t, err)
		req.Header.Set("x-api-key", key)
		req.Header.Set("anthropic-version", "2023-06-01")
		if scenario != "" {
			req.Header.Set("X-Fake-Scenario", scenario)
		}
		resp, err := client.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		return resp.StatusCode, string(b)
	}

	code, body := call("env-key", "")
	require.Equal(t, 200, code, body)
	code, _ = call("other-key", "")
	require.Equal(t, 401, code, "the key from FAKEPROVIDER_ANTHROPIC_KEY is enforced")
	code, _ = call("env-key", "overloaded")
	require.Equal(t, 529, code, "scenario from --scenarios")

	resp, err := client.Get(base + "/_fake/requests")
	require.NoError(t, err)
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Contains(t, string(b), `"path":"/v1/messages"`)

	cancel()
	require.NoError(t, <-errc)
}

// TestRunServesTLS: --tls-cert-out serves HTTPS with HTTP/2 under a certificate that clients
// trusting the written file accept.
func TestRunServesTLS(t *testing.T) {
	certFile := filepath.Join(t.TempDir(), "fake.pem")
	ctx, cancel := context.WithCancel(context.Background())
	addrc := make(chan string, 1)
	errc := make(chan error, 1)
	go func() {
		errc <- run(ctx, []string{"--listen", "127.0.0.1:0", "--tls-cert-out", certFile, "--log-level", "warn"},
			func(addr string) { addrc <- addr })
	}()
	var addr string
	select {
	case addr = <-addrc:
	case err := <-errc:
		t.Fatalf("run: %v", err)
	}
	pemBytes, err := os.ReadFile(certFile)
	require.NoError(t, err)
	roots := x509.NewCertPool()
	require.True(t, roots.AppendCertsFromPEM(pemBytes))
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}, ForceAttemptHTTP2: true}}
	defer client.CloseIdleConnections()

	req, err := http.NewRequest(http.MethodPost, "https://"+addr+"/v1/chat/completions",
		strings.NewReader(`{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}]}`))
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer k")
	resp, err := client.Do(req)
	require.NoError(t, err)
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.NoError(t, err)
	require.Equal(t, 200, resp.StatusCode, string(b))
	require.Equal(t, 2, resp.ProtoMajor, "HTTP/2 is negotiated")
	require.Contains(t, string(b), "Hello from fake openai")

	_, err = (&http.Client{Transport: &http.Transport{}}).Get("https://" + addr + "/_fake/health")
	require.Error(t, err, "a client that does not trust the written certificate is refused")

	cancel()
	require.NoError(t, <-errc)
}

func TestRunRejectsBadFlags(t *testing.T) {
	for _, args := range [][]string{
		{"--azure-deployment", "no-model"},
		{"--log-level", "loud"},
		{"--scenarios", "/nonexistent.yaml"},
		{"--listen", "256.0.0.1:99999"},
		{"--unknown-flag"},
		{"--tls-cert-out", "/nonexistent/dir/cert.pem"},
	} {
		require.Error(t, run(context.Background(), args, nil), "%v", args)
	}
}
