package configsync

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
	"errors"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/posthog/llm-gateway/dataplane/snapshot"
	"github.com/posthog/llm-gateway/internal/leakcheck"
)

func TestMain(m *testing.M) { leakcheck.VerifyTestMain(m) }

// target records what the syncer applied; versions listed in refuse fail to apply.
type target struct {
	mu       sync.Mutex
	version  string
	sources  []string
	rejected []string
	refuse   map[string]bool
}

func (t *target) Apply(s *snapshot.Snapshot, source string) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.refuse[s.Version] {
		t.rejected = append(t.rejected, s.Version)
		return errors.New("refused")
	}
	t.version = s.Version
	t.sources = append(t.sources, source)
	return nil
}

func (t *target) Reject(version, source string, err error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.rejected = append(t.rejected, version)
}

func (t *target) Version() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.version
}

func (t *target) state() (string, []string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.version, append([]string(nil), t.rejected...)
}

// sealed returns a valid snapshot JSON whose content depends on n.
func sealed(t *testing.T, n int) (string, []byte) {
	s := &snapshot.Snapshot{
		Teams:         []snapshot.Team{{Name: "team-" + strconv.Itoa(n), Rollout: snapshot.Rollout{Stage: snapshot.StageGateway}}},
		DefaultBudget: snapshot.Budget{Source: "builtin", OnStoreUnavailable: snapshot.FailOpen, Unpriced: snapshot.UnpricedAllow},
	}
	require.NoError(t, s.Seal())
	b, err := json.Marshal(s)
	require.NoError(t, err)
	return s.Version, b
}

type poll struct{ pod, applied, rejected, wait string }

// operator implements the snapshot protocol over a current body.
type operator struct {
	mu      sync.Mutex
	token   string
	version string
	body    []byte
	polls   []poll
	changed chan struct{}
}

func newOperator(token string) *operator {
	return &operator{token: token, changed: make(chan struct{})}
}

func (o *operator) set(version string, body []byte) {
	o.mu.Lock()
	o.version, o.body = version, body
	close(o.changed)
	o.changed = make(chan struct{})
	o.mu.Unlock()
}

func (o *operator) log() []poll {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]poll(nil), o.polls...)
}

func (o *operator) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/v1/snapshot" {
		http.NotFound(w, r)
		return
	}
	if r.Header.Get("Authorization") != "Bearer "+o.token {
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	q := r.URL.Query()
	wait, _ := strconv.Atoi(q.Get("wait"))
	deadline := time.After(time.Duration(wait) * time.Second)
	for {
		o.mu.Lock()
		o.polls = append(o.polls, poll{q.Get("pod"), q.Get("applied"), q.Get("rejected"), q.Get("wait")})
		version, body, changed := o.version, o.body, o.changed
		o.mu.Unlock()
		if version == "" {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		if version != q.Get("applied") && version != q.Get("rejected") {
			w.Header().Set("X-Snapshot-Version", version)
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write(body)
			return
		}
		select {
		case <-changed:
		case <-deadline:
			w.WriteHeader(http.StatusNotModified)
			return
		case <-r.Context().Done():
			return
		}
	}
}

func newSyncer(t *testing.T, url string, tg Target, dir string, mut ...func(*Config)) *Syncer {
	tok := filepath.Join(t.TempDir(), "token")
	require.NoError(t, os.WriteFile(tok, []byte("secret\n"), 0o600))
	cfg := Config{Source: url, TokenFile: tok, Pod: "pod-1", StateDir: dir, Wait: time.Second,
		StartTimeout: time.Second, MinBackoff: 10 * time.Millisecond, MaxBackoff: 50 * time.Millisecond,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	for _, m := range mut {
		m(&cfg)
	}
	return New(cfg, tg)
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestSyncAppliesRejectsAndAcks(t *testing.T) {
	op := newOperator("secret")
	v1, b1 := sealed(t, 1)
	op.set(v1, b1)
	srv := httptest.NewServer(op)
	defer srv.Close()
	dir := t.TempDir()
	tg := &target{refuse: map[string]bool{}}
	s := newSyncer(t, srv.URL, tg, dir)
	require.NoError(t, s.Start(context.Background()))
	v, _ := tg.state()
	require.Equal(t, v1, v)
	saved, err := os.ReadFile(filepath.Join(dir, StateFile))
	require.NoError(t, err)
	require.Equal(t, b1, saved, "the last-known-good snapshot is on disk")

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); s.Run(ctx) }()

	// A snapshot that does not validate: rejected, reported, not re-applied in a loop.
	op.set("bogus", []byte(`{"schemaVersion":1,"version":"bogus"}`))
	waitFor(t, "the rejection", func() bool { _, r := tg.state(); return len(r) == 1 })
	waitFor(t, "the rejection to be reported", func() bool {
		l := op.log()
		return l[len(l)-1].rejected == "bogus" && l[len(l)-1].applied == v1
	})
	v, _ = tg.state()
	require.Equal(t, v1, v, "the last-known-good one keeps serving")

	// A snapshot that decodes but fails to build.
	v2, b2 := sealed(t, 2)
	tg.mu.Lock()
	tg.refuse[v2] = true
	tg.mu.Unlock()
	op.set(v2, b2)
	waitFor(t, "the build failure", func() bool { _, r := tg.state(); return len(r) == 2 })

	v3, b3 := sealed(t, 3)
	op.set(v3, b3)
	waitFor(t, "v3", func() bool { v, _ := tg.state(); return v == v3 })
	waitFor(t, "the ack", func() bool { l := op.log(); return l[len(l)-1].applied == v3 })
	_, rejected := tg.state()
	require.Len(t, rejected, 2, "rejected snapshots were not retried")
	require.Equal(t, "pod-1", op.log()[0].pod)
	cancel()
	<-done
}

func TestSyncSurvivesOperatorRestart(t *testing.T) {
	op := newOperator("secret")
	v1, b1 := sealed(t, 1)
	op.set(v1, b1)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	srv := &http.Server{Handler: op}
	go srv.Serve(ln)

	tg := &target{}
	s := newSyncer(t, "http://"+addr, tg, t.TempDir())
	require.NoError(t, s.Start(context.Background()))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); s.Run(ctx) }()

	require.NoError(t, srv.Close()) // operator down
	time.Sleep(100 * time.Millisecond)
	v, _ := tg.state()
	require.Equal(t, v1, v)

	op2 := newOperator("secret")
	v2, b2 := sealed(t, 2)
	op2.set(v2, b2)
	ln2, err := net.Listen("tcp", addr)
	require.NoError(t, err)
	srv2 := &http.Server{Handler: op2}
	go srv2.Serve(ln2)
	defer srv2.Close()
	waitFor(t, "the new operator's snapshot", func() bool { v, _ := tg.state(); return v == v2 })
	cancel()
	<-done
}

func TestStartFallsBackToDisk(t *testing.T) {
	dead := httptest.NewServer(http.NotFoundHandler())
	dead.Close()
	v1, b1 := sealed(t, 1)
	v2, b2 := sealed(t, 2)

	// The state dir wins over the bootstrap file.
	dir := t.TempDir()
	require.NoError(t, WriteState(dir, b1))
	boot := filepath.Join(t.TempDir(), "boot.json")
	require.NoError(t, os.WriteFile(boot, b2, 0o600))
	tg := &target{}
	require.NoError(t, newSyncer(t, dead.URL, tg, dir, func(c *Config) { c.Bootstrap = boot }).Start(context.Background()))
	v, _ := tg.state()
	require.Equal(t, v1, v)
	require.Equal(t, "file:"+filepath.Join(dir, StateFile), tg.sources[0])

	// No state: the bootstrap file.
	tg = &target{}
	require.NoError(t, newSyncer(t, dead.URL, tg, t.TempDir(), func(c *Config) { c.Bootstrap = boot }).Start(context.Background()))
	v, _ = tg.state()
	require.Equal(t, v2, v)

	// Nothing at all: an error, not ready.
	tg = &target{}
	require.Error(t, newSyncer(t, dead.URL, tg, t.TempDir()).Start(context.Background()))
	require.Empty(t, tg.Version())
}

func TestBadTokenAndNoSnapshot(t *testing.T) {
	op := newOperator("other")
	srv := httptest.NewServer(op)
	defer srv.Close()
	tg := &target{}
	s := newSyncer(t, srv.URL, tg, "")
	err := s.poll(context.Background(), 0)
	var pe *pollError
	require.ErrorAs(t, err, &pe)
	require.Equal(t, "unauthorized", pe.reason)

	op.token = "secret"
	err = s.poll(context.Background(), 0)
	require.ErrorAs(t, err, &pe)
	require.Equal(t, "no_snapshot", pe.reason)
}

func TestWatchFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "snap.json")
	v1, b1 := sealed(t, 1)
	require.NoError(t, os.WriteFile(path, b1, 0o600))
	tg := &target{}
	require.NoError(t, LoadAndApply(path, tg))
	require.Equal(t, v1, tg.Version())
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		WatchFile(ctx, path, tg, 10*time.Millisecond, slog.New(slog.NewTextHandler(io.Discard, nil)))
	}()
	v2, b2 := sealed(t, 22)
	require.NoError(t, os.WriteFile(path, b2, 0o600))
	waitFor(t, "the file change", func() bool { return tg.Version() == v2 })
	cancel()
	<-done
}

// diskCheckingTarget records, at the moment each snapshot becomes the served one (inside
// Apply, where the gateway swaps its runtime and Version starts to report it), the version of
// the last-known-good file in dir. Versions listed in refuse fail to apply.
type diskCheckingTarget struct {
	target
	dir    string
	onDisk map[string]string // applied version -> version in the state file at that moment
}

func (d *diskCheckingTarget) Apply(s *snapshot.Snapshot, source string) error {
	if err := d.target.Apply(s, source); err != nil {
		return err
	}
	got := "none"
	if snap, err := LoadFile(filepath.Join(d.dir, StateFile)); err == nil {
		got = snap.Version
	}
	d.mu.Lock()
	d.onDisk[s.Version] = got
	d.mu.Unlock()
	return nil
}

// TestStateIsDurableBeforeVersionIsServed: once a pod serves (and so reports and acks) a
// version, a restart of that pod with the operator down must come back on that version: the
// state file holds it before the version is visible. A snapshot that fails to apply leaves the
// last-known-good one on disk.
func TestStateIsDurableBeforeVersionIsServed(t *testing.T) {
	op := newOperator("secret")
	v1, b1 := sealed(t, 1)
	op.set(v1, b1)
	srv := httptest.NewServer(op)
	defer srv.Close()
	dir := t.TempDir()
	tg := &diskCheckingTarget{target: target{refuse: map[string]bool{}}, dir: dir, onDisk: map[string]string{}}
	s := newSyncer(t, srv.URL, tg, dir)
	require.NoError(t, s.Start(context.Background()))

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); s.Run(ctx) }()
	defer func() { cancel(); <-done }()

	v2, b2 := sealed(t, 2)
	op.set(v2, b2)
	waitFor(t, "the ack of v2", func() bool { l := op.log(); return l[len(l)-1].applied == v2 })

	// v3 decodes but fails to apply: v2 stays on disk.
	v3, b3 := sealed(t, 3)
	tg.mu.Lock()
	tg.refuse[v3] = true
	tg.mu.Unlock()
	op.set(v3, b3)
	waitFor(t, "the rejection of v3", func() bool { l := op.log(); return l[len(l)-1].rejected == v3 })
	saved, err := LoadFile(filepath.Join(dir, StateFile))
	require.NoError(t, err)
	require.Equal(t, v2, saved.Version, "a snapshot that failed to apply is not the last-known-good one")

	v4, b4 := sealed(t, 4)
	op.set(v4, b4)
	waitFor(t, "the ack of v4", func() bool { l := op.log(); return l[len(l)-1].applied == v4 })

	tg.mu.Lock()
	defer tg.mu.Unlock()
	require.Equal(t, map[string]string{v1: v1, v2: v2, v4: v4}, tg.onDisk,
		"when a version is served, the state file already holds it")
}

// TestRefusedFirstSnapshotLeavesNoState: a pod whose first snapshot fails to apply has no
// last-known-good one, so none may be left on disk for its next start.
func TestRefusedFirstSnapshotLeavesNoState(t *testing.T) {
	op := newOperator("secret")
	v1, b1 := sealed(t, 1)
	op.set(v1, b1)
	srv := httptest.NewServer(op)
	defer srv.Close()
	dir := t.TempDir()
	tg := &target{refuse: map[string]bool{v1: true}}
	require.NoError(t, newSyncer(t, srv.URL, tg, dir).poll(context.Background(), 0))
	_, rejected := tg.state()
	require.Equal(t, []string{v1}, rejected)
	require.NoFileExists(t, filepath.Join(dir, StateFile))
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	require.Empty(t, entries, "no temporary file is left behind either")
}

// testCA is a CA for tests: its PEM, and a function that issues server certificates.
type testCA struct {
	pem  []byte
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
}

func newTestCA(t *testing.T) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	cert, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	return &testCA{pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), cert: cert, key: key}
}

func (ca *testCA) issue(t *testing.T, names ...string) *tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), DNSNames: names,
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	require.NoError(t, err)
	return &tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// TestTLSVerifiesAndFollowsCARotation: with a CA file the pod trusts exactly that bundle and
// the snapshot server name; when the operator moves to a new CA, the pod follows as soon as
// its mounted bundle changes, without a restart.
func TestTLSVerifiesAndFollowsCARotation(t *testing.T) {
	op := newOperator("secret")
	v1, b1 := sealed(t, 1)
	op.set(v1, b1)
	ca1, ca2, stranger := newTestCA(t), newTestCA(t), newTestCA(t)
	var serving atomic.Pointer[tls.Certificate]
	serving.Store(ca1.issue(t, snapshot.TLSServerName, "llm-gateway-operator"))
	srv := httptest.NewUnstartedServer(op)
	srv.TLS = &tls.Config{GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return serving.Load(), nil }}
	srv.StartTLS()
	defer srv.Close()

	caFile := filepath.Join(t.TempDir(), "ca.crt")
	require.NoError(t, os.WriteFile(caFile, ca1.pem, 0o600))
	tg := &target{}
	s := newSyncer(t, srv.URL, tg, "", func(c *Config) { c.CAFile = caFile })
	defer s.Close()
	require.NoError(t, s.poll(context.Background(), 0))
	require.Equal(t, v1, tg.Version())

	reason := func(err error) string {
		var pe *pollError
		require.ErrorAs(t, err, &pe)
		return pe.reason
	}
	// The operator moves to a certificate of a new CA the pod does not trust yet: refused.
	// (Connections already open stay trusted: only new handshakes see a new certificate.)
	serving.Store(ca2.issue(t, snapshot.TLSServerName))
	srv.CloseClientConnections()
	v2, b2 := sealed(t, 2)
	op.set(v2, b2)
	require.Equal(t, "tls", reason(s.poll(context.Background(), 0)))
	require.Equal(t, v1, tg.Version())
	// The mounted bundle gains the new CA: the next poll trusts it.
	require.NoError(t, os.WriteFile(caFile, append(append([]byte{}, ca2.pem...), ca1.pem...), 0o600))
	require.NoError(t, s.poll(context.Background(), 0))
	require.Equal(t, v2, tg.Version())

	// A certificate of a trusted CA for another name, or of a CA the pod does not trust: refused.
	serving.Store(ca2.issue(t, "127.0.0.1", "llm-gateway-operator"))
	srv.CloseClientConnections()
	v3, b3 := sealed(t, 3)
	op.set(v3, b3)
	require.Equal(t, "tls", reason(s.poll(context.Background(), 0)))
	serving.Store(stranger.issue(t, snapshot.TLSServerName))
	require.Equal(t, "tls", reason(s.poll(context.Background(), 0)))
	require.Equal(t, v2, tg.Version())

	// An unreadable bundle: no request at all.
	require.NoError(t, os.WriteFile(caFile, []byte("not a certificate"), 0o600))
	require.Equal(t, "ca", reason(s.poll(context.Background(), 0)))
	require.NoError(t, os.Remove(caFile))
	require.Equal(t, "ca", reason(s.poll(context.Background(), 0)))
}
