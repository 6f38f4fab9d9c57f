// Package outbox is the durable queue between the recorder's request path and its shipper:
// built events (event.Entry) are appended before any network call and removed only once
// their destination accepted them. Two implementations: segment files in a local directory
// (NewFile, one process) and a Redis stream shared by every pod (NewRedis).
package outbox

import (
	"context"
	"errors"

	"github.com/tidwall/gjson"

	"github.com/posthog/llm-gateway/dataplane/record/event"
	"github.com/posthog/llm-gateway/internal/jsonx"
)

// ErrFull is returned by Append when the outbox is at its size limit. The events are
// dropped (counted and logged by the Recorder); the call path never waits for space.
var ErrFull = errors.New("event outbox is full")

// Outbox is the durable queue between Record and the shipper. Entries survive the process:
// an entry handed out by Read and not acked is handed out again after a restart (file) or
// claimed by another consumer once it has been idle too long (Redis).
type Outbox interface {
	// Append stores entries. When it returns nil they survive a crash of this process.
	Append(ctx context.Context, entries []event.Entry) error
	// Read returns up to max entries this instance has not handed out yet (and, for a shared
	// outbox, entries abandoned by dead consumers). It never waits for new entries.
	Read(ctx context.Context, max int) ([]event.Entry, error)
	// Ack removes entries capture has accepted (or that were dead-lettered).
	Ack(ctx context.Context, ids []string) error
	// Touch marks entries still being worked on, so that no other consumer claims them.
	Touch(ctx context.Context, ids []string) error
	// Drained reports whether every entry this instance appended has been handed out (to
	// this reader or, for a shared outbox, to another live consumer).
	Drained(ctx context.Context) (bool, error)
	// Stats reports the outbox's fill level.
	Stats(ctx context.Context) (Stats, error)
	// Close releases the outbox; unacked entries stay in it.
	Close() error
}

// Stats is an outbox's fill level. Used and Limit are in the outbox's unit: bytes on disk
// for the file outbox, entries (XLEN) for the Redis outbox.
type Stats struct {
	Entries int64
	Used    int64
	Limit   int64
	Unit    string
}

// Fill is Used/Limit (0 when unlimited).
func (s Stats) Fill() float64 {
	if s.Limit <= 0 {
		return 0
	}
	return float64(s.Used) / float64(s.Limit)
}

// encodeRecord renders an entry as one outbox record: {"u":uuid,"h":host,"k":key,"e":event}.
// The event is single-line JSON (the builder compacts embedded client JSON).
func encodeRecord(b []byte, e *event.Entry) []byte {
	b = append(b, `{"u":`...)
	b = jsonx.AppendString(b, e.UUID)
	b = append(b, `,"h":`...)
	b = jsonx.AppendString(b, e.Dest.Host)
	b = append(b, `,"k":`...)
	b = jsonx.AppendString(b, e.Dest.APIKey)
	b = append(b, `,"e":`...)
	b = append(b, e.Event...)
	return append(b, '}')
}

// decodeRecord parses a record written by encodeRecord.
func decodeRecord(rec []byte) (event.Entry, bool) {
	if !gjson.ValidBytes(rec) {
		return event.Entry{}, false
	}
	r := gjson.ParseBytes(rec)
	ev := r.Get("e")
	if !ev.IsObject() {
		return event.Entry{}, false
	}
	return event.Entry{
		UUID:  r.Get("u").Str,
		Dest:  event.Destination{Host: r.Get("h").Str, APIKey: r.Get("k").Str},
		Event: []byte(ev.Raw),
	}, true
}
