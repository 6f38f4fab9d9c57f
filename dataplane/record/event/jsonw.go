package event

import (
	"strconv"
	"time"
	"unsafe"

	"github.com/posthog/llm-gateway/internal/jsonx"
)

// obj appends the members of one JSON object to a byte slice. It writes keys in call order
// and never re-encodes raw JSON handed to it.
type obj struct {
	b     []byte
	empty bool
}

func (o *obj) open()  { o.b = append(o.b, '{'); o.empty = true }
func (o *obj) close() { o.b = append(o.b, '}') }

// key writes a member name the gateway owns: plain ASCII that needs no escaping.
func (o *obj) key(k string) {
	if !o.empty {
		o.b = append(o.b, ',')
	}
	o.empty = false
	o.b = append(o.b, '"')
	o.b = append(o.b, k...)
	o.b = append(o.b, '"', ':')
}

// rawKey writes a member name given as a JSON string literal (e.g. gjson's Result.Raw).
func (o *obj) rawKey(lit string) {
	if !o.empty {
		o.b = append(o.b, ',')
	}
	o.empty = false
	o.b = append(o.b, lit...)
	o.b = append(o.b, ':')
}

func (o *obj) str(k, v string) {
	o.key(k)
	o.b = jsonx.AppendString(o.b, v)
}

// strIf writes k only when v is not empty.
func (o *obj) strIf(k, v string) {
	if v != "" {
		o.str(k, v)
	}
}

func (o *obj) int(k string, v int64) {
	o.key(k)
	o.b = strconv.AppendInt(o.b, v, 10)
}

func (o *obj) bool(k string, v bool) {
	o.key(k)
	o.b = strconv.AppendBool(o.b, v)
}

// seconds writes a duration as seconds with microsecond resolution (1.412, 0.000231).
func (o *obj) seconds(k string, d time.Duration) {
	o.key(k)
	o.b = strconv.AppendFloat(o.b, float64(d.Microseconds())/1e6, 'f', -1, 64)
}

// usd writes integer micro-dollars as an exact decimal number of dollars.
func (o *obj) usd(k string, micros int64) {
	o.key(k)
	o.b = appendMicrosUSD(o.b, micros)
}

// raw writes a JSON value as is; the caller guarantees it is valid JSON.
func (o *obj) raw(k string, v []byte) {
	o.key(k)
	o.b = append(o.b, v...)
}

// appendMicrosUSD formats micro-dollars as a decimal: 26 -> 0.000026, 16050 -> 0.01605,
// 3000000 -> 3. Exact: no float rounding between the budget's integer and the event.
func appendMicrosUSD(b []byte, m int64) []byte {
	if m < 0 {
		b = append(b, '-')
		m = -m
	}
	b = strconv.AppendInt(b, m/1_000_000, 10)
	frac := m % 1_000_000
	if frac == 0 {
		return b
	}
	var d [7]byte
	d[0] = '.'
	for i := 6; i >= 1; i-- {
		d[i] = byte('0' + frac%10)
		frac /= 10
	}
	n := 7
	for d[n-1] == '0' {
		n--
	}
	return append(b, d[:n]...)
}

// bytesToString views b as a string without copying. b must not change while the string is used.
func bytesToString(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(unsafe.SliceData(b), len(b))
}
