package server

import (
	"crypto/tls"
	"net"
	"net/http"
	"sync/atomic"
	"time"
)

// h2DialLimit bounds the connections being dialled, or not yet at the server's stream
// limit, of a backend that speaks HTTP/2.
const h2DialLimit = 8

// upstreamTransport is a backend's own connection pool.
//
// Go's http.Transport dials a new connection for every request that finds no free one. Over
// HTTP/2 a burst of new calls while every connection is at the server's stream limit (100 to
// 250 at the providers) therefore starts one TLS handshake per call, and all but a few of
// those connections are closed unused: test/load saw 2,000 dials in flight at 1,000 new
// streams a second, the handshakes starving the pod and the first tokens seconds late.
// MaxConnsPerHost bounds that, and hands the waiting calls the first new connection, but it
// would also cap the concurrent calls of a backend that answers over HTTP/1.1 (one connection
// per call). So calls use an unbounded pool until the backend is seen answering over HTTP/2,
// then a bounded one, and the unbounded one again should it answer over HTTP/1.1.
type upstreamTransport struct {
	h1, h2   *http.Transport
	speaksH2 atomic.Bool
}

// newUpstreamTransport builds the pools; the dial timeout is the backend's connect timeout
// (ResponseHeaderTimeout is not used: the proxy core times the first byte itself). tlsConfig
// is for tests (nil: the system roots).
func newUpstreamTransport(connect time.Duration, tlsConfig *tls.Config) *upstreamTransport {
	pool := func(maxConns int) *http.Transport {
		return &http.Transport{
			Proxy:                 http.ProxyFromEnvironment,
			DialContext:           (&net.Dialer{Timeout: connect, KeepAlive: 30 * time.Second}).DialContext,
			TLSClientConfig:       tlsConfig,
			ForceAttemptHTTP2:     true,
			MaxIdleConns:          0,
			MaxIdleConnsPerHost:   256,
			MaxConnsPerHost:       maxConns,
			IdleConnTimeout:       90 * time.Second,
			TLSHandshakeTimeout:   connect + 5*time.Second,
			ExpectContinueTimeout: time.Second,
		}
	}
	return &upstreamTransport{h1: pool(0), h2: pool(h2DialLimit)}
}

// RoundTrip sends req on the pool for the protocol the backend last answered with.
func (t *upstreamTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	pool := t.h1
	if t.speaksH2.Load() {
		pool = t.h2
	}
	resp, err := pool.RoundTrip(req)
	if err == nil {
		t.speaksH2.Store(resp.ProtoMajor == 2)
	}
	return resp, err
}

// CloseIdleConnections closes the idle connections of both pools.
func (t *upstreamTransport) CloseIdleConnections() {
	t.h1.CloseIdleConnections()
	t.h2.CloseIdleConnections()
}
