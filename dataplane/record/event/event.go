// Package event builds the PostHog `$ai_generation` events of a gateway call: Build turns a
// Call (everything the gateway knows about the call) into one Entry per event, the main event
// first and one error event per failover hop, each with its deterministic uuid and its
// destination (the team's capture host and project key). Building is pure: no I/O, no
// clock. docs/events.md describes every property; testdata/golden holds an example of each
// case.
//
// The files hold one concern each: builder.go (Build, the envelope and the properties every
// event carries), main.go (the main event, written by property group), usage.go (tokens and
// cost), hop.go (a failover hop's event), request.go (what the event copies from the client's
// request), caller.go (X-PostHog-Properties), upstream.go (providers and upstream URLs),
// truncate.go (events too large for capture) and jsonw.go (the JSON writer).
package event

import (
	"strconv"
	"strings"

	"github.com/google/uuid"
)

// Name is the only event the gateway emits.
const Name = "$ai_generation"

// DefaultMaxBytes keeps a serialized event below capture's ~1 MB Kafka message limit
// with room to spare, like PostHog's own gateway (docs/events.md "Capture").
const DefaultMaxBytes = 800_000

// Library identifies the gateway as the event's sender ($lib).
const Library = "llm-gateway"

var (
	// eventNamespace and traceNamespace are the UUIDv5 namespaces of event uuids and of trace
	// ids the gateway derives (fixed forever: changing them breaks redelivery dedup).
	eventNamespace = uuid.MustParse("3f0d1b8e-6c1a-4e2b-9a57-5b0c2f7d9e41")
	traceNamespace = uuid.MustParse("b7a4c2d1-0e3f-4a6b-8c9d-1e2f3a4b5c6d")
)

// Destination is where an event is delivered: a capture host (scheme://host[:port], no
// trailing slash) and a project API key. The zero Destination is the local events file.
type Destination struct {
	Host   string
	APIKey string
}

// Local reports whether events to d go to the local JSONL events file.
func (d Destination) Local() bool { return d.Host == "" }

// Entry is one built event on its way to capture.
type Entry struct {
	// ID is the outbox's id of the entry (set by the outbox).
	ID string
	// UUID is the event's deterministic uuid.
	UUID string
	Dest Destination
	// Event is the wire event: one element of the /batch/ "batch" array.
	Event []byte
}

// UUID is the deterministic uuid of the event of attempt index attempt of a call:
// UUIDv5 over the request id, so a redelivered or re-recorded event carries the same uuid.
func UUID(requestID string, attempt int) string {
	return uuid.NewSHA1(eventNamespace, []byte(requestID+"#"+strconv.Itoa(attempt))).String()
}

// traceID returns the call's trace id: the client's when PostHog accepts it, else a UUIDv5
// of it, else (no header) a UUIDv5 of the request id.
func traceID(c *Call) string {
	if c.TraceID == "" {
		return uuid.NewSHA1(traceNamespace, []byte(c.RequestID)).String()
	}
	if validTraceID(c.TraceID) {
		return c.TraceID
	}
	return uuid.NewSHA1(traceNamespace, []byte("trace:"+c.TraceID)).String()
}

// validTraceID: letters, digits and -_~.@()!':| only
// (docs/events.md "Property types and required properties").
func validTraceID(s string) bool {
	if len(s) > 200 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case strings.IndexByte("-_~.@()!':|", c) >= 0:
		default:
			return false
		}
	}
	return true
}
