// Package eventstream decodes the AWS event-stream binary framing
// (application/vnd.amazon.eventstream) that Bedrock's InvokeModelWithResponseStream uses
// (docs/providers.md "AWS event-stream framing"):
//
//	uint32 total length | uint32 headers length | uint32 CRC32 of the first 8 bytes
//	headers | payload | uint32 CRC32 of everything before it
//
// Each header is a uint8 name length, the name, a uint8 value type and the value. The decoder
// checks both CRCs, bounds every length, tolerates frames split across reads, and reuses one
// buffer: a decoded message's slices are valid until the next call to Next.
package eventstream

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"time"

	"github.com/posthog/llm-gateway/dataplane/provider"
)

// ValueType is a header value's type tag.
type ValueType byte

// Header value types.
const (
	BoolTrue  ValueType = 0
	BoolFalse ValueType = 1
	Int8      ValueType = 2
	Int16     ValueType = 3
	Int32     ValueType = 4
	Int64     ValueType = 5
	Bytes     ValueType = 6
	String    ValueType = 7
	Timestamp ValueType = 8
	UUID      ValueType = 9
)

const (
	preludeLen = 12
	minFrame   = preludeLen + 4
	// MaxHeadersLen is the largest headers section the AWS decoder accepts.
	MaxHeadersLen = 128 * 1024
)

// Header is one decoded header. Value holds the value's bytes without its length prefix.
type Header struct {
	Name  []byte
	Type  ValueType
	Value []byte
}

// Str returns a String or Bytes header's value.
func (h Header) Str() string { return string(h.Value) }

// Int returns an integer or timestamp header's value (milliseconds for a timestamp).
func (h Header) Int() int64 {
	switch h.Type {
	case Int8:
		return int64(int8(h.Value[0]))
	case Int16:
		return int64(int16(binary.BigEndian.Uint16(h.Value)))
	case Int32:
		return int64(int32(binary.BigEndian.Uint32(h.Value)))
	case Int64, Timestamp:
		return int64(binary.BigEndian.Uint64(h.Value))
	}
	return 0
}

// Bool returns a boolean header's value.
func (h Header) Bool() bool { return h.Type == BoolTrue }

// Time returns a timestamp header's value.
func (h Header) Time() time.Time { return time.UnixMilli(h.Int()).UTC() }

// Message is one decoded frame.
type Message struct {
	Headers []Header
	Payload []byte
}

// Get returns the value of the named header as a string ("" when absent).
func (m *Message) Get(name string) string {
	for _, h := range m.Headers {
		if string(h.Name) == name {
			return string(h.Value)
		}
	}
	return ""
}

// Is reports whether the named header has the given string value, without allocating.
func (m *Message) Is(name, value string) bool {
	for _, h := range m.Headers {
		if string(h.Name) == name {
			return string(h.Value) == value
		}
	}
	return false
}

// Decoder reads messages from a stream.
type Decoder struct {
	r   io.Reader
	max int
	buf []byte
	msg Message
	err error
}

// NewDecoder reads frames from r. A frame longer than maxFrame bytes fails with an error
// wrapping provider.ErrMalformed; maxFrame <= 0 means provider.DefaultMaxEventBytes.
func NewDecoder(r io.Reader, maxFrame int) *Decoder {
	if maxFrame <= 0 {
		maxFrame = provider.DefaultMaxEventBytes
	}
	return &Decoder{r: r, max: maxFrame}
}

// Next returns the next message. It returns io.EOF when the input ends between frames, an
// error wrapping provider.ErrTruncated when it ends inside one, an error wrapping
// provider.ErrMalformed for a bad length, checksum or header, and the read error (wrapped)
// otherwise. Errors are sticky.
func (d *Decoder) Next() (*Message, error) {
	if d.err != nil {
		return nil, d.err
	}
	msg, err := d.next()
	if err != nil {
		d.err = err
		return nil, err
	}
	return msg, nil
}

func (d *Decoder) next() (*Message, error) {
	if cap(d.buf) < preludeLen {
		d.buf = make([]byte, 0, 4096)
	}
	prelude := d.buf[:preludeLen]
	if err := d.read(prelude, true); err != nil {
		return nil, err
	}
	total := binary.BigEndian.Uint32(prelude[0:4])
	headersLen := binary.BigEndian.Uint32(prelude[4:8])
	if crc := crc32.ChecksumIEEE(prelude[:8]); crc != binary.BigEndian.Uint32(prelude[8:12]) {
		return nil, fmt.Errorf("%w: event-stream prelude checksum mismatch", provider.ErrMalformed)
	}
	if total < minFrame || int64(total) > int64(d.max) {
		return nil, fmt.Errorf("%w: event-stream frame length %d outside [%d, %d]", provider.ErrMalformed, total, minFrame, d.max)
	}
	if headersLen > MaxHeadersLen || headersLen > total-minFrame {
		return nil, fmt.Errorf("%w: event-stream headers length %d in a %d-byte frame", provider.ErrMalformed, headersLen, total)
	}
	if cap(d.buf) < int(total) {
		nb := make([]byte, total)
		copy(nb, prelude)
		d.buf = nb
	}
	frame := d.buf[:total]
	if err := d.read(frame[preludeLen:], false); err != nil {
		return nil, err
	}
	end := total - 4
	if crc := crc32.ChecksumIEEE(frame[:end]); crc != binary.BigEndian.Uint32(frame[end:]) {
		return nil, fmt.Errorf("%w: event-stream message checksum mismatch", provider.ErrMalformed)
	}
	headers := frame[preludeLen : preludeLen+headersLen]
	var err error
	if d.msg.Headers, err = decodeHeaders(d.msg.Headers[:0], headers); err != nil {
		return nil, err
	}
	d.msg.Payload = frame[preludeLen+headersLen : end]
	return &d.msg, nil
}

// read fills p. At a frame boundary (first) a clean end is io.EOF.
func (d *Decoder) read(p []byte, first bool) error {
	n, err := io.ReadFull(d.r, p)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, io.EOF) && n == 0 && first:
		return io.EOF
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return fmt.Errorf("%w: stream ended inside an event-stream frame", provider.ErrTruncated)
	}
	return fmt.Errorf("read upstream event stream: %w", err)
}

var fixedLen = map[ValueType]int{BoolTrue: 0, BoolFalse: 0, Int8: 1, Int16: 2, Int32: 4, Int64: 8, Timestamp: 8, UUID: 16}

func decodeHeaders(out []Header, b []byte) ([]Header, error) {
	bad := func(what string) ([]Header, error) {
		return nil, fmt.Errorf("%w: event-stream header %s", provider.ErrMalformed, what)
	}
	for len(b) > 0 {
		nameLen := int(b[0])
		if nameLen == 0 || len(b) < 1+nameLen+1 {
			return bad("name overruns the headers")
		}
		h := Header{Name: b[1 : 1+nameLen], Type: ValueType(b[1+nameLen])}
		b = b[2+nameLen:]
		var n int
		switch h.Type {
		case Bytes, String:
			if len(b) < 2 {
				return bad("value length overruns the headers")
			}
			n = int(binary.BigEndian.Uint16(b))
			b = b[2:]
		default:
			l, ok := fixedLen[h.Type]
			if !ok {
				return bad(fmt.Sprintf("type %d unknown", h.Type))
			}
			n = l
		}
		if len(b) < n {
			return bad("value overruns the headers")
		}
		h.Value, b = b[:n], b[n:]
		out = append(out, h)
	}
	return out, nil
}
