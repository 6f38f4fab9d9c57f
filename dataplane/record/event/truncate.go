package event

import (
	"sort"
	"strconv"

	"github.com/posthog/llm-gateway/internal/jsonx"
)

// heavy are the large properties of a main event, the ones truncated when the event is too
// big for capture.
type heavy struct {
	output, input, tools []byte
}

// truncated says which heavy properties were cut.
type truncated struct{ input, output, tools bool }

// write writes the truncation flags.
func (t truncated) write(p *obj) {
	if t.input {
		p.bool("llm_gateway_input_truncated", true)
	}
	if t.output {
		p.bool("llm_gateway_output_truncated", true)
	}
	if t.tools {
		p.bool("llm_gateway_tools_truncated", true)
	}
}

// fit makes an event of size bytes (with h) fit in max bytes: it shares what is left after
// the small properties between the output, the input and the tools (small ones stay whole,
// the large ones are cut to an equal share), keeping a prefix of each cut one as a JSON
// string (docs/events.md "Truncation").
func fit(h heavy, size, max int) (heavy, truncated) {
	const flagsSlack = 256
	avail := max - (size - len(h.input) - len(h.output) - len(h.tools)) - flagsSlack
	fields := []*[]byte{&h.output, &h.input, &h.tools}
	order := []int{0, 1, 2}
	sort.Slice(order, func(i, j int) bool { return len(*fields[order[i]]) < len(*fields[order[j]]) })
	trunc := [3]bool{}
	remaining := avail
	for n, i := range order {
		f := fields[i]
		share := remaining / (len(order) - n)
		if *f == nil || len(*f) <= share {
			remaining -= len(*f)
			continue
		}
		*f = truncateJSON(*f, share)
		trunc[i] = true
		remaining -= len(*f)
	}
	return h, truncated{output: trunc[0], input: trunc[1], tools: trunc[2]}
}

// truncationMarker replaces content too large for capture, when not even a prefix fits.
const truncationMarker = "[truncated by llm-gateway: content too large for capture]"

// truncateJSON replaces a JSON value by a JSON string of at most allow bytes holding a
// prefix of its text and a marker.
func truncateJSON(raw []byte, allow int) []byte {
	suffix := "… [truncated by llm-gateway: " + strconv.Itoa(len(raw)) + " bytes]"
	if allow < len(truncationMarker)+len(suffix)+64 {
		return jsonx.AppendString(nil, truncationMarker)
	}
	n := min(len(raw), allow-len(suffix)-2)
	for n > 0 {
		for n > 0 && n < len(raw) && raw[n]&0xC0 == 0x80 { // do not cut a rune in two
			n--
		}
		s := jsonx.AppendString(make([]byte, 0, allow+16), bytesToString(raw[:n])+suffix)
		if len(s) <= allow {
			return s
		}
		n -= max(len(s)-allow, 1)
	}
	return jsonx.AppendString(nil, truncationMarker)
}
