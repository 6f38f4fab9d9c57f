package anthropic

import (
	"fmt"
	"io"

	"github.com/tidwall/gjson"

	"github.com/posthog/llm-gateway/dataplane/provider"
	"github.com/posthog/llm-gateway/dataplane/provider/internal/wire"
	"github.com/posthog/llm-gateway/dataplane/provider/sse"
)

// StreamReader reads a Messages stream. Every event is relayed byte for byte (ping and unknown
// types included); message_stop is the terminal event; "event: error" ends the stream with an
// *provider.UpstreamError.
type StreamReader struct {
	body io.Closer
	sse  *sse.Reader
	acc  Accumulator
	err  error
}

// NewStreamReader reads the Messages stream in body.
func NewStreamReader(body io.ReadCloser, opts provider.Options) *StreamReader {
	return &StreamReader{body: body, sse: sse.NewReader(body, opts.EventLimit())}
}

// Next implements provider.EventReader.
func (r *StreamReader) Next() (*provider.Event, error) {
	if r.err != nil {
		return nil, r.err
	}
	ev, err := r.sse.Next()
	if err != nil {
		r.err = wire.EndError(err, false)
		return nil, r.err
	}
	if !wire.Valid(ev.Data) {
		r.err = fmt.Errorf("%w: messages event is not JSON", provider.ErrMalformed)
		return nil, r.err
	}
	root := wire.JSON(ev.Data)
	typ := root.Get("type").Str
	if typ == "" {
		typ = string(ev.Name)
	}
	if uerr := r.acc.Observe(typ, root, ev.Data); uerr != nil {
		r.err = uerr
		return nil, uerr
	}
	if r.acc.Terminal {
		r.err = io.EOF
	}
	return wire.NewEvent(wire.Name(ev.Name), ev.Data, ev.Raw, true), nil
}

// Result implements provider.EventReader.
func (r *StreamReader) Result() *provider.Result { return r.acc.Result() }

// Close implements provider.EventReader; a blocked Next returns.
func (r *StreamReader) Close() error { return r.body.Close() }

func parseJSON(body []byte, what string) (gjson.Result, error) {
	if !gjson.ValidBytes(body) {
		return gjson.Result{}, fmt.Errorf("%w: %s body is not JSON", provider.ErrMalformed, what)
	}
	return gjson.ParseBytes(body), nil
}
