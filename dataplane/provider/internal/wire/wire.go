// Package wire holds the plumbing every provider's stream reader shares: zero-copy JSON views,
// event copies the proxy core may keep, output text accumulation and end-of-stream errors.
package wire

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"unsafe"

	"github.com/tidwall/gjson"

	"github.com/posthog/llm-gateway/dataplane/provider"
)

// JSON returns a gjson view of b without copying it. Strings read from the result point into b:
// clone any that must outlive b's next reuse.
func JSON(b []byte) gjson.Result { return provider.JSONView(b) }

// Valid reports whether b is one valid JSON value, without copying it.
func Valid(b []byte) bool {
	return len(b) > 0 && gjson.Valid(unsafe.String(&b[0], len(b)))
}

// NewEvent returns a client event that owns its bytes (one allocation for Raw and Data). With
// visible false, Raw is nil: the event is metered but not shown to the client.
func NewEvent(name string, data, raw []byte, visible bool) *provider.Event {
	if !visible {
		return &provider.Event{Name: name, Data: append([]byte(nil), data...)}
	}
	if off, ok := within(raw, data); ok {
		buf := append([]byte(nil), raw...)
		return &provider.Event{Name: name, Data: buf[off : off+len(data) : off+len(data)], Raw: buf}
	}
	buf := make([]byte, 0, len(raw)+len(data))
	buf = append(append(buf, raw...), data...)
	return &provider.Event{Name: name, Data: buf[len(raw):], Raw: buf[:len(raw):len(raw)]}
}

// within reports whether sub is a sub-slice of b, and at which offset.
func within(b, sub []byte) (int, bool) {
	if len(sub) == 0 {
		return 0, true
	}
	off := cap(b) - cap(sub)
	if off < 0 || off+len(sub) > len(b) {
		return 0, false
	}
	return off, &b[off] == &sub[0]
}

// EndError maps what ended a stream to the EventReader contract: io.EOF after the terminal
// event, ErrTruncated (wrapping any read error) before it; ErrMalformed and upstream errors
// pass through.
func EndError(err error, terminal bool) error {
	switch {
	case errors.Is(err, io.EOF):
		if terminal {
			return io.EOF
		}
		return provider.ErrTruncated
	case errors.Is(err, provider.ErrMalformed), errors.Is(err, provider.ErrTruncated):
		return err
	}
	var ue *provider.UpstreamError
	if errors.As(err, &ue) {
		return err
	}
	return fmt.Errorf("%w: %w", provider.ErrTruncated, err)
}

// MaxOutputText bounds the output text kept per call for recording.
const MaxOutputText = 1 << 20

// Text accumulates output text up to MaxOutputText.
type Text struct {
	b         strings.Builder
	Truncated bool
}

// Add appends s, or part of it, within the bound.
func (t *Text) Add(s string) {
	if room := MaxOutputText - t.b.Len(); len(s) > room {
		s, t.Truncated = s[:max(room, 0)], true
	}
	t.b.WriteString(s)
}

// String returns the text so far.
func (t *Text) String() string { return t.b.String() }

// Fill copies the text into r.
func (t *Text) Fill(r *provider.Result) {
	r.OutputText, r.OutputTruncated = t.b.String(), t.Truncated
}

// known are the event names of the providers' streams, interned so naming an event does not
// allocate.
var known = map[string]string{}

func init() {
	for _, n := range []string{
		"message_start", "content_block_start", "content_block_delta", "content_block_stop",
		"message_delta", "message_stop", "ping", "error",
		"response.created", "response.in_progress", "response.queued",
		"response.output_item.added", "response.output_item.done",
		"response.content_part.added", "response.content_part.done",
		"response.output_text.delta", "response.output_text.done", "response.output_text.annotation.added",
		"response.refusal.delta", "response.refusal.done",
		"response.function_call_arguments.delta", "response.function_call_arguments.done",
		"response.reasoning_summary_part.added", "response.reasoning_summary_part.done",
		"response.reasoning_summary_text.delta", "response.reasoning_summary_text.done",
		"response.reasoning_text.delta", "response.reasoning_text.done",
		"response.completed", "response.incomplete", "response.failed",
	} {
		known[n] = n
	}
}

// NameOf returns s interned when it is a known event name, else a copy of it (s may point
// into a reused buffer).
func NameOf(s string) string {
	if n, ok := known[s]; ok {
		return n
	}
	return strings.Clone(s)
}

// Name returns b as a string, without allocating for a known event name.
func Name(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	if n, ok := known[string(b)]; ok {
		return n
	}
	return string(b)
}
