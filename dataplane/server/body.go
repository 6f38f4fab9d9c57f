package server

import (
	"errors"
	"io"
	"net/http"
	"os"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/posthog/llm-gateway/dataplane/snapshot"
)

// Request bodies: how many bytes of them the pod holds at once (the body pool), how long a
// client may take to send one, and reading one into memory in one buffer. See
// docs/gateway.md "Limits" for the sizing.

// DefaultBodyReadTimeout bounds the time a client may take to send its whole request body.
const DefaultBodyReadTimeout = 60 * time.Second

// DefaultMaxInflightBodyBytes bounds the request-body bytes held across the pod when no bound
// is given (bin/gateway derives one from the pod's memory limit).
const DefaultMaxInflightBodyBytes = 128 << 20

// chunkedBodyStep is the first pool reservation of a body sent without Content-Length; the
// reservation then doubles with the buffer.
const chunkedBodyStep = 16 << 10

var (
	// errBodyPoolFull: the body does not fit in what the pod may hold now.
	errBodyPoolFull = errors.New("the gateway holds as many request-body bytes as it may")
	// errBodyLonger: more bytes arrived than Content-Length announced.
	errBodyLonger = errors.New("the request body is longer than its Content-Length")
)

// bodyPool bounds the request-body bytes held by calls in progress (a counting semaphore that
// never waits: a body that does not fit is refused at once).
type bodyPool struct {
	limit int64
	used  atomic.Int64
	gauge prometheus.Gauge
}

func newBodyPool(limit int64, gauge, limitGauge prometheus.Gauge) *bodyPool {
	limitGauge.Set(float64(limit))
	return &bodyPool{limit: limit, gauge: gauge}
}

// acquire takes n bytes of the pool, or reports false and takes nothing.
func (p *bodyPool) acquire(n int64) bool {
	if n <= 0 {
		return true
	}
	for {
		u := p.used.Load()
		if u+n > p.limit {
			return false
		}
		if p.used.CompareAndSwap(u, u+n) {
			p.gauge.Add(float64(n))
			return true
		}
	}
}

// release returns n bytes to the pool.
func (p *bodyPool) release(n int64) {
	if n > 0 {
		p.used.Add(-n)
		p.gauge.Sub(float64(n))
	}
}

// Used returns the bytes held now.
func (p *bodyPool) Used() int64 { return p.used.Load() }

// BodyBytesInFlight returns the request-body bytes held by calls in progress.
func (g *Gateway) BodyBytesInFlight() int64 { return g.bodies.Used() }

// hold takes n bytes of the body pool for this call; they are released by releaseBody.
func (c *call) hold(n int64) bool {
	if !c.g.bodies.acquire(n) {
		return false
	}
	c.bodyHeld += n
	return true
}

// releaseBody gives the call's body bytes back to the pool, once the call has been recorded
// (the recorder reads the body).
func (c *call) releaseBody() {
	c.g.bodies.release(c.bodyHeld)
	c.bodyHeld = 0
}

// readBody reads the request body into one buffer, holding its size in the pod's body pool
// until the call ends. A body that announces its length is refused before any of it is read
// when it is over limit (*http.MaxBytesError) or does not fit in the pool (errBodyPoolFull),
// and is read into a buffer of exactly that size. A chunked body takes pool space as its
// buffer grows. The whole read must end within the body read timeout (the error then wraps
// os.ErrDeadlineExceeded).
func (c *call) readBody(limit int64) ([]byte, error) {
	r := c.r
	if r.Body == nil || r.Body == http.NoBody || r.ContentLength == 0 {
		return nil, nil
	}
	// net/http lifts the deadline when the body reaches its end (see Handler); after a
	// failure it stays, bounding what net/http reads of the rest before it closes.
	_ = c.controller().SetReadDeadline(time.Now().Add(c.g.bodyReadTimeout))
	n := r.ContentLength
	if n > limit {
		return nil, &http.MaxBytesError{Limit: limit}
	}
	if n >= 0 {
		if !c.hold(n) {
			return nil, errBodyPoolFull
		}
		buf := make([]byte, n)
		if _, err := io.ReadFull(r.Body, buf); err != nil {
			return nil, err
		}
		// Read to EOF: net/http starts watching for the client going away only then.
		var one [1]byte
		if m, _ := r.Body.Read(one[:]); m > 0 {
			return nil, errBodyLonger
		}
		return buf, nil
	}

	body := http.MaxBytesReader(c.w, r.Body, limit)
	var buf []byte
	for {
		if len(buf) == cap(buf) {
			grow := min(max(int64(cap(buf)), chunkedBodyStep), limit+1-int64(cap(buf)))
			grow = max(grow, 1)
			if !c.hold(grow) {
				return nil, errBodyPoolFull
			}
			nb := make([]byte, len(buf), int64(cap(buf))+grow)
			copy(nb, buf)
			buf = nb
		}
		m, err := body.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+m]
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return nil, err
		}
	}
}

// controller returns the call's http.ResponseController (held by value in the call: no
// allocation of its own).
func (c *call) controller() *http.ResponseController {
	if !c.rcSet {
		c.rc, c.rcSet = *http.NewResponseController(c.w), true
	}
	return &c.rc
}

// extendWrite puts the next write to the client under a deadline of the idle timeout: the
// serving backend's (a client that takes nothing for as long as a backend may send nothing is
// gone), else the default one.
func (c *call) extendWrite() {
	d := snapshot.DefaultIdleTimeout
	if c.be != nil {
		d = c.be.idle
	}
	c.extendWriteFor(d)
}

// extendWriteFor puts the next write to the client under a deadline between d/2 and d from
// now. Every write and flush to the client is preceded by one, so a client that stops reading
// holds its call for at most d. Moving a connection's deadline costs a runtime timer update
// (about 0.7 µs), so it moves only once half of d has passed, not on every event.
func (c *call) extendWriteFor(d time.Duration) {
	now := time.Now()
	if rem := c.writeDeadline.Sub(now); rem > d/2 && rem <= d {
		return
	}
	c.writeDeadline = now.Add(d)
	_ = c.controller().SetWriteDeadline(c.writeDeadline)
}

// isTimeout reports whether err is a deadline on the client connection.
func isTimeout(err error) bool { return errors.Is(err, os.ErrDeadlineExceeded) }

func isTooLarge(err error) bool {
	if err == nil {
		return false
	}
	var mbe *http.MaxBytesError
	return errors.As(err, &mbe)
}

// Handler returns the proxy's http.Handler: ServeHTTP behind a deadline on reading the
// request body, set when a request with a body starts, so that a client that sends its body
// slowly (or never) is cut off after the body read timeout whatever the handler does with the
// body. A handler may answer without reading it (a missing key): net/http then reads up to
// 256 KiB of it before it writes the answer, and without a deadline a trickling client would
// hold that connection for ever. The deadline does not outlive the body: when the body
// reaches its end net/http lifts it and starts watching for the client going away. A request
// without a body gets none (that watch starts at once, and a deadline would end it).
func (g *Gateway) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Body != nil && r.Body != http.NoBody && r.ContentLength != 0 {
			_ = http.NewResponseController(w).SetReadDeadline(time.Now().Add(g.bodyReadTimeout))
		}
		g.ServeHTTP(w, r)
	})
}
