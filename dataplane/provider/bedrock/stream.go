package bedrock

import (
	"encoding/base64"
	"fmt"
	"io"
	"strings"

	"github.com/tidwall/gjson"
	"github.com/tidwall/sjson"

	"github.com/posthog/llm-gateway/dataplane/provider"
	"github.com/posthog/llm-gateway/dataplane/provider/anthropic"
	"github.com/posthog/llm-gateway/dataplane/provider/eventstream"
	"github.com/posthog/llm-gateway/dataplane/provider/internal/wire"
)

// StreamReader turns an InvokeModelWithResponseStream body (AWS event-stream frames whose
// chunk payloads carry base64 Anthropic events) into the Anthropic SSE stream the client would
// have received from Anthropic: "event: <inner type>\ndata: <inner json>\n\n" for each chunk.
// The "amazon-bedrock-invocationMetrics" Bedrock adds to message_stop is read for metering and
// removed, so the client bytes equal Anthropic's. Exception frames end the stream with an
// *provider.UpstreamError (docs/providers.md "Bedrock errors"); frames of unknown event types are skipped.
type StreamReader struct {
	body  io.Closer
	dec   *eventstream.Decoder
	acc   anthropic.Accumulator
	inner []byte // decoded chunk, reused
	err   error
}

// NewStreamReader reads the event stream in body.
func NewStreamReader(body io.ReadCloser, opts provider.Options) *StreamReader {
	return &StreamReader{body: body, dec: eventstream.NewDecoder(body, opts.EventLimit())}
}

// Next implements provider.EventReader.
func (r *StreamReader) Next() (*provider.Event, error) {
	if r.err != nil {
		return nil, r.err
	}
	ev, err := r.next()
	if err != nil {
		r.err = wire.EndError(err, false)
		return nil, r.err
	}
	if r.acc.Terminal {
		r.err = io.EOF
	}
	return ev, nil
}

func (r *StreamReader) next() (*provider.Event, error) {
	for {
		m, err := r.dec.Next()
		if err != nil {
			return nil, err
		}
		switch {
		case m.Is(":message-type", "exception"):
			return nil, streamException(m.Get(":exception-type"), message(wire.JSON(m.Payload)))
		case m.Is(":message-type", "error"):
			return nil, streamException(m.Get(":error-code"), m.Get(":error-message"))
		case !m.Is(":message-type", "event") || !m.Is(":event-type", "chunk"):
			continue
		}
		return r.chunk(m.Payload)
	}
}

// chunk decodes one chunk payload, {"bytes":"<base64 event>","p":"<padding>"}.
func (r *StreamReader) chunk(payload []byte) (*provider.Event, error) {
	if !wire.Valid(payload) {
		return nil, fmt.Errorf("%w: bedrock chunk payload is not JSON", provider.ErrMalformed)
	}
	b64 := wire.JSON(payload).Get("bytes")
	if b64.Type != gjson.String {
		return nil, fmt.Errorf("%w: bedrock chunk has no bytes", provider.ErrMalformed)
	}
	enc := []byte(b64.Str)
	if raw := b64.Raw; b64.Index > 0 && !strings.ContainsRune(raw, '\\') {
		enc = payload[b64.Index+1 : b64.Index+len(raw)-1] // no escapes: the JSON bytes are the base64
	}
	var err error
	if r.inner, err = base64.StdEncoding.AppendDecode(r.inner[:0], enc); err != nil {
		return nil, fmt.Errorf("%w: bedrock chunk bytes: %v", provider.ErrMalformed, err)
	}
	if !wire.Valid(r.inner) {
		return nil, fmt.Errorf("%w: bedrock chunk event is not JSON", provider.ErrMalformed)
	}
	root := wire.JSON(r.inner)
	typ := root.Get("type").Str
	if typ == "" {
		return nil, fmt.Errorf("%w: bedrock chunk event has no type", provider.ErrMalformed)
	}
	if uerr := r.acc.Observe(typ, root, r.inner); uerr != nil {
		return nil, uerr
	}
	data := r.inner
	if typ == "message_stop" && root.Get(gjson.Escape(anthropic.InvocationMetrics)).Exists() {
		if data, err = sjson.DeleteBytes(data, gjson.Escape(anthropic.InvocationMetrics)); err != nil {
			return nil, fmt.Errorf("bedrock: strip invocation metrics: %w", err)
		}
	}
	return sseEvent(wire.NameOf(typ), data), nil
}

// sseEvent renders one Anthropic SSE event in a single allocation. JSON whitespace newlines
// would break the data line; they become spaces (a JSON string cannot hold a raw newline).
func sseEvent(name string, data []byte) *provider.Event {
	buf := make([]byte, 0, len("event: \ndata: \n\n")+len(name)+len(data))
	buf = append(append(append(buf, "event: "...), name...), "\ndata: "...)
	off := len(buf)
	buf = append(buf, data...)
	for i := off; i < len(buf); i++ {
		if buf[i] == '\n' || buf[i] == '\r' {
			buf[i] = ' '
		}
	}
	end := len(buf)
	buf = append(buf, "\n\n"...)
	return &provider.Event{Name: name, Data: buf[off:end:end], Raw: buf}
}

// Result implements provider.EventReader.
func (r *StreamReader) Result() *provider.Result { return r.acc.Result() }

// Close implements provider.EventReader; a blocked Next returns.
func (r *StreamReader) Close() error { return r.body.Close() }
