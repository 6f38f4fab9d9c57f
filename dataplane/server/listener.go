package server

import (
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/posthog/llm-gateway/dataplane/metrics"
)

// refusal is what a connection over the limit gets before it is closed: a 503 that both SDKs
// parse (the OpenAI shape reads error.message/type/code, the Anthropic one type and
// error.type) and retry, on a fresh connection, after a second.
var refusal = []byte("HTTP/1.1 503 Service Unavailable\r\n" +
	"Content-Type: application/json\r\n" +
	"Retry-After: 1\r\n" +
	"X-Gateway-Error-Source: gateway\r\n" +
	"Connection: close\r\n" +
	"Content-Length: " + strconv.Itoa(len(refusalBody)) + "\r\n" +
	"\r\n" + refusalBody)

const refusalBody = `{"type":"error","error":{"type":"overloaded_error","message":"the gateway is at its connection limit; retry shortly","code":"too_many_connections"}}`

// refusalWriteTimeout bounds the write of the refusal (a fresh socket takes it at once).
const refusalWriteTimeout = time.Second

// LimitListener returns a listener that holds at most max connections open at once (max <= 0:
// no limit). A connection over the limit is refused, not queued: it is accepted, answered
// with a 503 (Retry-After: 1) and closed at once, and counted in
// llm_gateway_connections_refused_total. Queueing would leave the client waiting in the
// kernel's accept backlog, unseen by metrics, until its connect timeout; a refusal is a fast
// failure the client retries, and through the Service it lands on another pod.
// llm_gateway_connections_open counts the connections held.
func LimitListener(l net.Listener, max int, m *metrics.Metrics) net.Listener {
	m.ConnectionsLimit.Set(float64(max))
	return &limitListener{Listener: l, max: int64(max), m: m}
}

type limitListener struct {
	net.Listener
	max  int64
	open atomic.Int64
	m    *metrics.Metrics
}

func (l *limitListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if n := l.open.Add(1); l.max > 0 && n > l.max {
			l.open.Add(-1)
			l.m.ConnectionsRefused.Inc()
			_ = c.SetWriteDeadline(time.Now().Add(refusalWriteTimeout))
			_, _ = c.Write(refusal)
			_ = c.Close()
			continue
		}
		l.m.ConnectionsOpen.Inc()
		return &limitConn{Conn: c, l: l}, nil
	}
}

// Open returns the number of connections held.
func (l *limitListener) Open() int64 { return l.open.Load() }

// limitConn gives its slot back when it is closed (once, however often Close is called).
type limitConn struct {
	net.Conn
	l    *limitListener
	once sync.Once
}

func (c *limitConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() {
		c.l.open.Add(-1)
		c.l.m.ConnectionsOpen.Dec()
	})
	return err
}

// CloseWrite lets net/http half-close the connection before it closes it (so a client whose
// request body was not read gets the response rather than a reset).
func (c *limitConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}
