// Package record turns every gateway call into PostHog `$ai_generation` events and delivers
// them at least once: events are built on the request path (package event), appended to a
// durable outbox (package outbox: a Redis stream or local append-only segment files) and
// shipped in batches to PostHog capture (`POST {host}/batch/`) by a background shipper
// (package ship) that acks an outbox entry only after capture accepted it.
//
// The proxy core fills a Call and hands it to (*Recorder).Record when the call is over. This
// package assembles the pipeline (Open, New) and holds its request-path side: Record, the
// memory queue used while the outbox is unavailable, the outbox monitor and shutdown. See
// docs/events.md for the event schema, docs/record.md for the delivery guarantees and the
// configuration.
package record

import "github.com/posthog/llm-gateway/dataplane/record/event"

// The call the proxy core records; the types are the event builder's input (package
// event), named here so that the proxy core depends on this package only.
type (
	// Call is everything the gateway knows about one client call (event.Call).
	Call = event.Call
	// Attempt is one try of one upstream backend (event.Attempt).
	Attempt = event.Attempt
	// Error is a call's or an attempt's failure (event.Error).
	Error = event.Error
	// Rejection is the gateway's own refusal of a call (event.Rejection).
	Rejection = event.Rejection
	// Cost is the cost breakdown of a call (event.Cost, which is cost.Breakdown).
	Cost = event.Cost
)

// EventUUID is the deterministic uuid of the event of attempt index attempt of a call
// (event.UUID): tests use it to find events.
func EventUUID(requestID string, attempt int) string { return event.UUID(requestID, attempt) }
