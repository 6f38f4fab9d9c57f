package server

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// barrierServer answers each request only once want requests are in its handler at the same
// time, and counts the connections it accepted.
type barrierServer struct {
	*httptest.Server
	conns   atomic.Int64
	arrived sync.WaitGroup
}

func newBarrierServer(t *testing.T, want int, h2 bool) *barrierServer {
	s := &barrierServer{}
	s.arrived.Add(want)
	s.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.arrived.Done()
		s.arrived.Wait()
		_, _ = io.WriteString(w, "ok")
	}))
	s.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			s.conns.Add(1)
		}
	}
	if h2 {
		s.EnableHTTP2 = true
		s.Config.HTTP2 = &http.HTTP2Config{MaxConcurrentStreams: 100}
		s.Config.ErrorLog = log.New(io.Discard, "", 0) // handshakes of the unused connections the client drops
		s.StartTLS()
	} else {
		s.Start()
	}
	t.Cleanup(s.Close)
	return s
}

func (s *barrierServer) tlsConfig() *tls.Config {
	roots := x509.NewCertPool()
	roots.AddCert(s.Certificate())
	return &tls.Config{RootCAs: roots}
}

// burst sends n requests at once and fails the test unless all succeed before the deadline.
func burst(t *testing.T, tr http.RoundTripper, url string, n int) (protoMajor int) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, n)
	protos := make(chan int, n)
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
			resp, err := tr.RoundTrip(req)
			if err != nil {
				errs <- err
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			protos <- resp.ProtoMajor
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err, "every call of the burst was in flight at once")
	}
	return <-protos
}

// TestUpstreamTransportHTTP1IsNotCapped: a backend answering over HTTP/1.1 gets one
// connection per concurrent call, however many (40 at once here).
func TestUpstreamTransportHTTP1IsNotCapped(t *testing.T) {
	srv := newBarrierServer(t, 40, false)
	tr := newUpstreamTransport(time.Second, nil)
	defer tr.CloseIdleConnections()
	require.Equal(t, 1, burst(t, tr, srv.URL, 40))
	require.False(t, tr.speaksH2.Load())
	require.Equal(t, int64(40), srv.conns.Load())
}

// TestUpstreamTransportHTTP2BoundsDials: once a backend answers over HTTP/2, a burst of calls
// beyond its stream limit (100 per connection here) dials a bounded number of connections
// at a time, not one per call (an unbounded http.Transport dials about 200 for this burst),
// and every call is still served concurrently.
func TestUpstreamTransportHTTP2BoundsDials(t *testing.T) {
	const calls, perConn = 300, 100
	srv := newBarrierServer(t, 1, true)
	tr := newUpstreamTransport(time.Second, srv.tlsConfig())
	defer tr.CloseIdleConnections()
	require.Equal(t, 2, burst(t, tr, srv.URL, 1), "the first call learns the backend speaks HTTP/2")
	require.True(t, tr.speaksH2.Load())

	srv.arrived.Add(calls)
	before := srv.conns.Load()
	require.Equal(t, 2, burst(t, tr, srv.URL, calls))
	dialled := srv.conns.Load() - before
	require.GreaterOrEqual(t, dialled, int64(calls/perConn), "the stream limit needs this many")
	require.LessOrEqual(t, dialled, int64(calls/perConn+2*h2DialLimit), "bounded by the dial limit, not by the calls")
}
