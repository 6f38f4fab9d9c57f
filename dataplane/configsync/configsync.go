// Package configsync is the pod side of the snapshot protocol: it gets snapshots from the
// operator (a long poll with acks), from a file, or from the pod's own last-known-good copy on
// disk, and hands them to the gateway, which validates, builds and swaps them in.
//
// Protocol (served by the operator, controllers/internal/publish):
//
//	GET {source}/v1/snapshot?pod=<pod>&applied=<version>&rejected=<version>&wait=<seconds>
//	Authorization: Bearer <token>
//
// 200: a new snapshot (JSON, header X-Snapshot-Version); 304: no change within wait; 401: bad
// token; 503: the operator has no valid snapshot yet. applied is the version the pod serves
// (its ack), rejected one it failed to validate or apply, which the operator does not re-send.
//
// The operator serves it over TLS with its own CA: with CAFile set, the pod trusts only the
// CAs in that file (the operator's CA bundle, mounted from its ConfigMap) and verifies the
// name snapshot.TLSServerName. Both the CA file and the token file are re-read before every
// request, so a rotated CA or token is picked up without a restart.
package configsync

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/posthog/llm-gateway/dataplane/metrics"
	"github.com/posthog/llm-gateway/dataplane/snapshot"
)

// maxSnapshotBytes bounds a snapshot read from the operator or a file.
const maxSnapshotBytes = 64 << 20

// StateFile is the name of the last-known-good snapshot in the state directory.
const StateFile = "snapshot.json"

// Target is what snapshots are applied to (*server.Gateway).
type Target interface {
	// Apply validates, builds and swaps in s; on error the previous snapshot keeps serving and
	// the target has recorded the rejection.
	Apply(s *snapshot.Snapshot, source string) error
	// Reject records a snapshot that could not even be decoded.
	Reject(version, source string, err error)
	// Version is the version being served, "" before the first.
	Version() string
}

// Config of a Syncer.
type Config struct {
	// Source is the operator's base URL (--config-source).
	Source string
	// TokenFile holds the bearer token (--config-token-file); re-read on every request so a
	// rotated token is picked up.
	TokenFile string
	// CAFile holds the PEM CAs that verify the operator (--config-ca-file); re-read on every
	// request. Empty: Client (default: the system roots).
	CAFile string
	// Pod is this pod's name (--pod-name), reported to the operator.
	Pod string
	// StateDir keeps the last-known-good snapshot (--state-dir); "" keeps none.
	StateDir string
	// Bootstrap is a snapshot file used when the operator cannot be reached at start and the
	// state directory has none (--snapshot; the chart mounts the operator's Secret there).
	Bootstrap string
	// Wait is the long-poll duration asked of the operator (default 30s).
	Wait time.Duration
	// StartTimeout bounds the first poll at start before falling back to disk (default 5s).
	StartTimeout time.Duration
	// MinBackoff and MaxBackoff bound the retry delay after errors (defaults 500ms and 30s).
	MinBackoff, MaxBackoff time.Duration
	// Client makes the requests when CAFile is empty.
	Client  *http.Client
	Logger  *slog.Logger
	Metrics *metrics.Metrics
}

// Syncer keeps a Target in sync with the operator.
type Syncer struct {
	cfg      Config
	target   Target
	rejected string
	// notModified: the last poll ended with 304.
	notModified bool
	// With CAFile: the bundle last read and the client that trusts it.
	caPEM    []byte
	caClient *http.Client
}

// New returns a Syncer for cfg.
func New(cfg Config, target Target) *Syncer {
	if cfg.Wait <= 0 {
		cfg.Wait = 30 * time.Second
	}
	if cfg.StartTimeout <= 0 {
		cfg.StartTimeout = 5 * time.Second
	}
	if cfg.MinBackoff <= 0 {
		cfg.MinBackoff = 500 * time.Millisecond
	}
	if cfg.MaxBackoff <= 0 {
		cfg.MaxBackoff = 30 * time.Second
	}
	if cfg.Client == nil {
		cfg.Client = &http.Client{}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Syncer{cfg: cfg, target: target}
}

// Start applies a first snapshot: from the operator if it answers within StartTimeout, else
// the last-known-good one in the state directory, else the bootstrap file. It returns an
// error only when none of them yields a snapshot (the pod then stays unready while Run keeps
// trying the operator).
func (s *Syncer) Start(ctx context.Context) error {
	pctx, cancel := context.WithTimeout(ctx, s.cfg.StartTimeout)
	err := s.poll(pctx, 0)
	cancel()
	if err == nil && s.target.Version() != "" {
		return nil
	}
	s.cfg.Logger.Warn("operator not reachable at start; loading a snapshot from disk", "source", s.cfg.Source, "error", err)
	var errs []error
	if err != nil {
		errs = append(errs, err)
	}
	for _, f := range s.localFiles() {
		if lerr := LoadAndApply(f, s.target); lerr != nil {
			errs = append(errs, lerr)
			continue
		}
		return nil
	}
	return fmt.Errorf("no snapshot available: %w", errors.Join(errs...))
}

func (s *Syncer) localFiles() []string {
	var files []string
	if s.cfg.StateDir != "" {
		if p := filepath.Join(s.cfg.StateDir, StateFile); fileExists(p) {
			files = append(files, p)
		}
	}
	if s.cfg.Bootstrap != "" {
		files = append(files, s.cfg.Bootstrap)
	}
	return files
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// Run long-polls the operator until ctx ends, backing off after errors.
func (s *Syncer) Run(ctx context.Context) {
	backoff := s.cfg.MinBackoff
	for ctx.Err() == nil {
		start := time.Now()
		err := s.poll(ctx, s.cfg.Wait)
		var delay time.Duration
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			s.cfg.Logger.Warn("snapshot poll failed", "source", s.cfg.Source, "retry_in", backoff, "error", err)
			delay = backoff/2 + rand.N(backoff/2+1)
			backoff = min(backoff*2, s.cfg.MaxBackoff)
		default:
			backoff = s.cfg.MinBackoff
			if s.notModified && time.Since(start) < time.Second {
				delay = time.Second - time.Since(start) // an operator that does not hold the poll
			}
		}
		if delay > 0 {
			t := time.NewTimer(delay)
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
		}
	}
}

// pollError is a failed poll with a bounded reason for the metric.
type pollError struct {
	reason string
	err    error
}

func (e *pollError) Error() string { return e.err.Error() }
func (e *pollError) Unwrap() error { return e.err }

func (s *Syncer) fail(reason string, err error) error {
	if s.cfg.Metrics != nil {
		s.cfg.Metrics.ConfigSyncErrors.WithLabelValues(reason).Inc()
	}
	return &pollError{reason: reason, err: err}
}

// poll makes one request. A snapshot that fails to decode or apply is not an error of the
// poll: it is rejected (and reported on the next poll).
func (s *Syncer) poll(ctx context.Context, wait time.Duration) error {
	s.notModified = false
	q := url.Values{}
	q.Set("pod", s.cfg.Pod)
	q.Set("applied", s.target.Version())
	if s.rejected != "" {
		q.Set("rejected", s.rejected)
	}
	q.Set("wait", strconv.Itoa(int(wait/time.Second)))
	u := strings.TrimRight(s.cfg.Source, "/") + "/v1/snapshot?" + q.Encode()
	rctx, cancel := context.WithTimeout(ctx, wait+15*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(rctx, http.MethodGet, u, nil)
	if err != nil {
		return s.fail("request", fmt.Errorf("build snapshot request: %w", err))
	}
	if s.cfg.TokenFile != "" {
		tok, err := os.ReadFile(s.cfg.TokenFile)
		if err != nil {
			return s.fail("token", fmt.Errorf("read config token: %w", err))
		}
		req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(tok)))
	}
	client, err := s.client()
	if err != nil {
		return s.fail("ca", err)
	}
	resp, err := client.Do(req)
	if err != nil {
		var verr *tls.CertificateVerificationError
		if errors.As(err, &verr) {
			return s.fail("tls", fmt.Errorf("get snapshot from %s: the operator's certificate does not verify against %s: %w", s.cfg.Source, s.cfg.CAFile, err))
		}
		return s.fail("unreachable", fmt.Errorf("get snapshot from %s: %w", s.cfg.Source, err))
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusOK:
	case http.StatusNotModified:
		s.notModified = true
		return nil
	case http.StatusUnauthorized:
		return s.fail("unauthorized", errors.New("the operator refused the config token (401)"))
	case http.StatusServiceUnavailable:
		return s.fail("no_snapshot", errors.New("the operator has no valid snapshot yet (503)"))
	default:
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return s.fail("status", fmt.Errorf("snapshot request: HTTP %d: %s", resp.StatusCode, strings.TrimSpace(string(b))))
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxSnapshotBytes+1))
	if err != nil {
		return s.fail("read", fmt.Errorf("read snapshot: %w", err))
	}
	source := "operator:" + s.cfg.Source
	version := resp.Header.Get("X-Snapshot-Version")
	if len(body) > maxSnapshotBytes {
		s.reject(version, source, fmt.Errorf("snapshot larger than %d bytes", maxSnapshotBytes))
		return nil
	}
	snap, err := snapshot.Decode(body)
	if err != nil {
		s.reject(version, source, err)
		return nil
	}
	// The state file is written before the target serves the snapshot: from the moment the
	// pod serves a version (reports it on /admin/snapshot and in metrics, acks it on the next
	// poll) a restart with the operator down must come back on that version, not the one before.
	restore := s.saveState(body)
	if err := s.target.Apply(snap, source); err != nil {
		s.rejected = snap.Version
		restore()
		return nil
	}
	s.rejected = ""
	return nil
}

// saveState makes body the last-known-good snapshot on disk and returns a function that puts
// back the previous one (or removes the file when there was none), for a snapshot the target
// then refuses. A state directory that cannot be written is logged; the pod still applies the
// snapshot (it keeps serving the operator's configuration, and only a restart while the
// operator is down would start from the older state).
func (s *Syncer) saveState(body []byte) (restore func()) {
	dir := s.cfg.StateDir
	if dir == "" {
		return func() {}
	}
	path := filepath.Join(dir, StateFile)
	prev, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		s.cfg.Logger.Error("could not read the last-known-good snapshot", "path", path, "error", err)
	}
	if err := WriteState(dir, body); err != nil {
		s.cfg.Logger.Error("could not save the last-known-good snapshot", "dir", dir, "error", err)
		return func() {}
	}
	return func() {
		var err error
		if prev == nil {
			err = os.Remove(path)
		} else {
			err = WriteState(dir, prev)
		}
		if err != nil {
			s.cfg.Logger.Error("could not restore the last-known-good snapshot", "dir", dir, "error", err)
		}
	}
}

// client returns the HTTP client for the next request. With CAFile it re-reads the file and,
// when the bundle changed, builds a client that trusts exactly the new bundle (the old one's
// idle connections are closed; a held long poll finishes on its connection).
func (s *Syncer) client() (*http.Client, error) {
	if s.cfg.CAFile == "" {
		return s.cfg.Client, nil
	}
	b, err := os.ReadFile(s.cfg.CAFile)
	if err != nil {
		return nil, fmt.Errorf("read the operator CA bundle: %w", err)
	}
	if s.caClient != nil && bytes.Equal(b, s.caPEM) {
		return s.caClient, nil
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("the operator CA bundle %s holds no PEM certificate", s.cfg.CAFile)
	}
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.TLSClientConfig = &tls.Config{RootCAs: pool, ServerName: snapshot.TLSServerName, MinVersion: tls.VersionTLS13}
	if s.caClient != nil {
		s.caClient.CloseIdleConnections()
		s.cfg.Logger.Info("the operator CA bundle changed; trusting the new one", "file", s.cfg.CAFile)
	}
	s.caPEM, s.caClient = b, &http.Client{Transport: t}
	return s.caClient, nil
}

// Close releases the idle connections of the client the Syncer built for CAFile (a Client
// given in Config is the caller's to close).
func (s *Syncer) Close() {
	if s.caClient != nil {
		s.caClient.CloseIdleConnections()
	}
}

func (s *Syncer) reject(version, source string, err error) {
	if version == "" {
		version = "unknown"
	}
	s.rejected = version
	s.target.Reject(version, source, err)
}

// WriteState saves a snapshot as the last-known-good one: written to a temporary file,
// synced, then renamed over the old one and the directory synced, so a crash never leaves a
// partial file and a returned nil means the new file survives one.
func WriteState(dir string, body []byte) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create state dir: %w", err)
	}
	f, err := os.CreateTemp(dir, StateFile+".tmp-*")
	if err != nil {
		return fmt.Errorf("create temporary snapshot file: %w", err)
	}
	tmp := f.Name()
	_, err = f.Write(body)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, filepath.Join(dir, StateFile))
	}
	if err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("write snapshot state: %w", err)
	}
	if err := syncDir(dir); err != nil {
		return fmt.Errorf("write snapshot state: %w", err)
	}
	return nil
}

// syncDir makes a rename in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// LoadFile reads and decodes (validates) a snapshot file.
func LoadFile(path string) (*snapshot.Snapshot, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open snapshot: %w", err)
	}
	defer f.Close()
	body, err := io.ReadAll(io.LimitReader(f, maxSnapshotBytes+1))
	if err != nil {
		return nil, fmt.Errorf("read snapshot %s: %w", path, err)
	}
	if len(body) > maxSnapshotBytes {
		return nil, fmt.Errorf("snapshot %s is larger than %d bytes", path, maxSnapshotBytes)
	}
	snap, err := snapshot.Decode(body)
	if err != nil {
		return nil, fmt.Errorf("snapshot %s: %w", path, err)
	}
	return snap, nil
}

// LoadAndApply loads a snapshot file and applies it, recording a rejection on failure.
func LoadAndApply(path string, target Target) error {
	source := "file:" + path
	snap, err := LoadFile(path)
	if err != nil {
		target.Reject("unknown", source, err)
		return err
	}
	return target.Apply(snap, source)
}

// WatchFile re-applies path whenever its modification time or size changes, checking every
// interval until ctx ends (standalone mode: edit the file, the gateway follows). The first
// check always loads the file, so a change made before the watch started is not missed
// (applying the version already served is a no-op).
func WatchFile(ctx context.Context, path string, target Target, every time.Duration, log *slog.Logger) {
	stamp := func() (time.Time, int64) {
		fi, err := os.Stat(path)
		if err != nil {
			return time.Time{}, -1
		}
		return fi.ModTime(), fi.Size()
	}
	mt, size := time.Time{}, int64(-2)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		m2, s2 := stamp()
		if m2.Equal(mt) && s2 == size {
			continue
		}
		mt, size = m2, s2
		if err := LoadAndApply(path, target); err != nil {
			log.Error("snapshot file changed but was not applied", "path", path, "error", err)
		}
	}
}
