// Package sse reads Server-Sent Events from an upstream response body.
//
// The reader keeps one growable buffer per stream and hands out events whose slices point into
// it, so parsing an event allocates nothing once the buffer has grown to the largest event.
// Lines end with "\n" or "\r\n" (a lone "\r" is not a line end: no provider sends one).
// Comment lines (":" ...) and the id and retry fields are kept in Raw but otherwise ignored;
// blocks without a data field (keep-alive comments) are skipped, as the SSE specification says.
package sse

import (
	"bytes"
	"errors"
	"fmt"
	"io"

	"github.com/posthog/llm-gateway/dataplane/provider"
)

// Event is one SSE event. Its slices are valid until the next call to Next.
type Event struct {
	// Name is the value of the event's last "event:" field; nil when it has none.
	Name []byte
	// Data is the event's data lines joined with "\n".
	Data []byte
	// Raw is the exact upstream bytes of the event, from its first line through the blank line
	// that ends it.
	Raw []byte
}

const (
	initialBuffer = 4 << 10
	maxEmptyReads = 100
)

// Reader reads events from an io.Reader.
type Reader struct {
	r        io.Reader
	max      int
	buf      []byte // buf[start:end] is unconsumed input
	start    int
	end      int
	scanned  int    // buf[start:scanned] holds complete lines of the pending event, none blank
	data     []byte // scratch for multi-line data
	err      error  // sticky read error or io.EOF
	finished bool
}

// NewReader reads events from r. An event larger than maxEvent bytes fails with an error
// wrapping provider.ErrMalformed; maxEvent <= 0 means provider.DefaultMaxEventBytes.
func NewReader(r io.Reader, maxEvent int) *Reader {
	if maxEvent <= 0 {
		maxEvent = provider.DefaultMaxEventBytes
	}
	return &Reader{r: r, max: maxEvent}
}

// Next returns the next event. It returns io.EOF when the input ends between events, an error
// wrapping provider.ErrTruncated when it ends inside a line, an error wrapping
// provider.ErrMalformed for an event over the size bound, and the underlying read error
// (wrapped) otherwise. An input that ends after complete lines but before the blank line still
// yields that last event (with a blank line appended to Raw).
func (r *Reader) Next() (Event, error) {
	for {
		if r.finished {
			return Event{}, r.err
		}
		raw, ok := r.block()
		if !ok {
			if err := r.fill(); err != nil {
				return r.atEnd(err)
			}
			continue
		}
		if ev, ok := r.parse(raw); ok {
			return ev, nil
		}
	}
}

// block returns the next complete block (lines through a blank line) and consumes it.
func (r *Reader) block() ([]byte, bool) {
	for {
		i := bytes.IndexByte(r.buf[r.scanned:r.end], '\n')
		if i < 0 {
			return nil, false
		}
		lineStart, lineEnd := r.scanned, r.scanned+i // lineEnd is the '\n'
		r.scanned = lineEnd + 1
		if lineEnd == lineStart || (lineEnd == lineStart+1 && r.buf[lineStart] == '\r') {
			raw := r.buf[r.start:r.scanned]
			r.start = r.scanned
			return raw, true
		}
	}
}

// parse reads the fields of a block. It reports false for a block with no data field.
func (r *Reader) parse(raw []byte) (Event, bool) {
	ev := Event{Raw: raw}
	lines := 0
	for rest := raw; len(rest) > 0; {
		i := bytes.IndexByte(rest, '\n')
		line := rest[:i]
		rest = rest[i+1:]
		if n := len(line); n > 0 && line[n-1] == '\r' {
			line = line[:n-1]
		}
		if len(line) == 0 || line[0] == ':' {
			continue
		}
		field, value := line, []byte(nil)
		if c := bytes.IndexByte(line, ':'); c >= 0 {
			field, value = line[:c], line[c+1:]
			if len(value) > 0 && value[0] == ' ' {
				value = value[1:]
			}
		}
		switch string(field) {
		case "data":
			switch lines {
			case 0:
				ev.Data = value
			case 1:
				r.data = append(append(append(r.data[:0], ev.Data...), '\n'), value...)
				ev.Data = r.data
			default:
				r.data = append(append(r.data, '\n'), value...)
				ev.Data = r.data
			}
			lines++
		case "event":
			ev.Name = value
		}
	}
	if lines == 0 {
		return Event{}, false
	}
	if ev.Data == nil {
		ev.Data = raw[:0]
	}
	return ev, true
}

// fill reads more input, compacting or growing the buffer. It fails when the pending event
// would exceed the bound.
func (r *Reader) fill() error {
	if r.err != nil {
		return r.err
	}
	if r.start > 0 && (r.end == len(r.buf) || r.start == r.end) {
		n := copy(r.buf, r.buf[r.start:r.end])
		r.scanned -= r.start
		r.end, r.start = n, 0
	}
	if r.end == len(r.buf) {
		if len(r.buf) >= r.max+2 {
			r.err = fmt.Errorf("%w: SSE event longer than %d bytes", provider.ErrMalformed, r.max)
			return r.err
		}
		size := max(2*len(r.buf), initialBuffer)
		size = min(size, r.max+2)
		nb := make([]byte, size)
		copy(nb, r.buf[:r.end])
		r.buf = nb
	}
	for range maxEmptyReads {
		n, err := r.r.Read(r.buf[r.end:])
		r.end += n
		if err != nil {
			if !errors.Is(err, io.EOF) {
				err = fmt.Errorf("read upstream stream: %w", err)
			}
			r.err = err
			if n > 0 {
				return nil
			}
			return err
		}
		if n > 0 {
			return nil
		}
	}
	r.err = fmt.Errorf("read upstream stream: %w", io.ErrNoProgress)
	return r.err
}

// atEnd handles the end of input (or a read failure) with nothing complete buffered.
func (r *Reader) atEnd(err error) (Event, error) {
	r.finished = true
	pending := r.buf[r.start:r.end]
	if !errors.Is(err, io.EOF) {
		r.err = err
		return Event{}, err
	}
	if len(pending) == 0 {
		return Event{}, io.EOF
	}
	if pending[len(pending)-1] != '\n' {
		r.err = fmt.Errorf("%w: stream ended inside an SSE line", provider.ErrTruncated)
		return Event{}, r.err
	}
	// Complete lines but no blank line: deliver them as the last event.
	if r.end == len(r.buf) {
		r.buf = append(r.buf, '\n')
	} else {
		r.buf[r.end] = '\n'
	}
	raw := r.buf[r.start : r.end+1]
	r.start = r.end
	r.err = io.EOF
	if ev, ok := r.parse(raw); ok {
		return ev, nil
	}
	return Event{}, io.EOF
}
