package e2e

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"io"
	"log/slog"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/posthog/llm-gateway/dataplane/configsync"
	"github.com/posthog/llm-gateway/dataplane/snapshot"
)

// operator serves the snapshot protocol (a minimal stand-in for controllers/internal/publish).
type operator struct {
	mu       sync.Mutex
	body     []byte
	version  string
	changed  chan struct{}
	rejected []string
}

func (o *operator) publish(t *testing.T, s *snapshot.Snapshot, valid bool) string {
	if valid {
		require.NoError(t, s.Seal())
	} else {
		s.Version = "broken0000000000"
	}
	b, err := json.Marshal(s)
	require.NoError(t, err)
	o.mu.Lock()
	defer o.mu.Unlock()
	o.body, o.version = b, s.Version
	if o.changed != nil {
		close(o.changed)
	}
	o.changed = make(chan struct{})
	return s.Version
}

func (o *operator) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("Authorization") != "Bearer op-token" {
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	q := r.URL.Query()
	timeout := time.After(2 * time.Second)
	for {
		o.mu.Lock()
		if rej := q.Get("rejected"); rej != "" && (len(o.rejected) == 0 || o.rejected[len(o.rejected)-1] != rej) {
			o.rejected = append(o.rejected, rej)
		}
		body, version, changed := o.body, o.version, o.changed
		o.mu.Unlock()
		if version == "" {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		if version != q.Get("applied") && version != q.Get("rejected") {
			w.Header().Set("X-Snapshot-Version", version)
			_, _ = w.Write(body)
			return
		}
		select {
		case <-changed:
		case <-timeout:
			w.WriteHeader(http.StatusNotModified)
			return
		case <-r.Context().Done():
			return
		}
	}
}

// TestConfigSyncWithGateway: the gateway follows the operator (over TLS, trusting only the
// operator's CA, with its token); an invalid snapshot is rejected (the last-known-good one keeps
// serving, /admin/snapshot and the operator are told); a stage change takes effect on the next
// swap; a restarted pod loads its state from disk.
func TestConfigSyncWithGateway(t *testing.T) {
	e := newEnv(t, nil)
	op := &operator{}
	opSrv := httptest.NewUnstartedServer(op)
	caPEM, cert := operatorCertificate(t)
	opSrv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	opSrv.StartTLS()
	defer opSrv.Close()
	dir := t.TempDir()
	tok, ca := filepath.Join(dir, "token"), filepath.Join(dir, "ca.crt")
	require.NoError(t, os.WriteFile(tok, []byte("op-token"), 0o600))
	require.NoError(t, os.WriteFile(ca, caPEM, 0o600))
	cfg := configsync.Config{Source: opSrv.URL, TokenFile: tok, CAFile: ca, Pod: "gw-0", StateDir: dir, Wait: time.Second,
		MinBackoff: 10 * time.Millisecond, MaxBackoff: 50 * time.Millisecond, Logger: slog.New(slog.DiscardHandler)}

	s := devSnapshot(e.fakeSrv.URL, "")
	v1 := op.publish(t, s, true)
	sync := configsync.New(cfg, e.gw)
	require.NoError(t, sync.Start(context.Background()))
	require.Equal(t, v1, e.gw.Version())
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); sync.Run(ctx) }()
	defer func() { cancel(); <-done; sync.Close() }()

	// Invalid: rejected and reported, v1 keeps serving.
	bad := devSnapshot(e.fakeSrv.URL, "")
	op.publish(t, bad, false)
	require.Eventually(t, func() bool { return e.gw.Status().LastRejectedVersion == "broken0000000000" }, 10*time.Second, 10*time.Millisecond)
	require.Eventually(t, func() bool {
		op.mu.Lock()
		defer op.mu.Unlock()
		return len(op.rejected) > 0 && op.rejected[0] == "broken0000000000"
	}, 10*time.Second, 10*time.Millisecond)
	require.Equal(t, v1, e.gw.Version())
	resp := postChat(t, e.gwSrv.URL)
	require.Equal(t, 200, resp.StatusCode)
	require.Equal(t, "gateway", resp.Header.Get("X-Llm-Gateway-Path"))

	// The team moves to Legacy: the next request goes to its legacy upstream.
	legacy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, `{"legacy":true}`)
	}))
	defer legacy.Close()
	s2 := devSnapshot(e.fakeSrv.URL, "")
	s2.Teams[0].Rollout = snapshot.Rollout{Stage: snapshot.StageLegacy, LegacyUpstream: legacy.URL}
	v2 := op.publish(t, s2, true)
	require.Eventually(t, func() bool { return e.gw.Version() == v2 }, 10*time.Second, 10*time.Millisecond)
	resp = postChat(t, e.gwSrv.URL)
	require.Equal(t, "legacy", resp.Header.Get("X-Llm-Gateway-Path"))

	// A new pod with the operator down starts from the state directory.
	// (The pod saves a snapshot after it applied it: wait for the file before the "restart".)
	require.Eventually(t, func() bool {
		saved, err := configsync.LoadFile(filepath.Join(dir, configsync.StateFile))
		return err == nil && saved.Version == v2
	}, 10*time.Second, 10*time.Millisecond)
	opSrv.Close()
	e2 := newEnv(t, nil)
	require.NoError(t, configsync.New(cfg, e2.gw).Start(context.Background()))
	require.Equal(t, v2, e2.gw.Version())
}

// operatorCertificate makes a CA and a serving certificate for the snapshot server name, as
// the operator does.
func operatorCertificate(t *testing.T) ([]byte, tls.Certificate) {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "e2e snapshot CA"}, IsCA: true,
		BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	require.NoError(t, err)
	caCert, err := x509.ParseCertificate(caDER)
	require.NoError(t, err)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	der, err := x509.CreateCertificate(rand.Reader, &x509.Certificate{SerialNumber: big.NewInt(2), DNSNames: []string{snapshot.TLSServerName},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}},
		caCert, &key.PublicKey, caKey)
	require.NoError(t, err)
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

func postChat(t *testing.T, base string) *http.Response {
	t.Helper()
	req, err := http.NewRequest("POST", base+"/v1/chat/completions", jsonBody(`{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}]}`))
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+teamKey)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	drain(resp.Body)
	resp.Body.Close()
	return resp
}
