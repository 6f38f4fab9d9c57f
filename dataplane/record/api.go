package record

import "context"

// CallRecorder is what the proxy core depends on; *Recorder implements it. Tests of the
// proxy core may substitute their own.
//
// Record is called once per call, after the response is complete (or the call failed, was
// rejected or the client left) and BEFORE the HTTP handler returns. It never blocks on the
// network: when it returns, the call's events are in the durable outbox (or, if the outbox
// is momentarily unavailable, in a bounded in-memory queue that drains into it). Record does
// not retain c.
//
// The construction API (in recorder.go):
//
//	func Open(ctx context.Context, cfg Config, opts Options) (*Recorder, error)
//	func (r *Recorder) Record(c *Call)
//	func (r *Recorder) Close(ctx context.Context) error // flush within ctx (the drain timeout)
type CallRecorder interface {
	Record(c *Call)
}

// Closer is the shutdown side of a Recorder: Close stops accepting background work, moves
// everything still in memory into the outbox and ships the outbox until it is empty or ctx
// is done. Entries left unshipped stay in the outbox for the next start (file outbox) or for
// another pod to claim (Redis outbox).
type Closer interface {
	Close(ctx context.Context) error
}
