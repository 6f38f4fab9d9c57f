// Package providertest reads a request body the way an LLM provider does, for differential
// tests of the gateway's own reading (the gateway must act on exactly what the provider will
// read): the body is decoded with encoding/json into map[string]any, where the last of
// duplicate member names wins, names are compared after unescaping and case-sensitively, and
// invalid UTF-8 becomes U+FFFD, as in the Python and Go servers providers run. It is the
// oracle of the differential fuzz targets; it is never used on the request path.
package providertest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"sort"
)

// View is what a provider reads from a request body.
type View struct {
	// Model is the model member ("" when it is not a string; see Ambiguous).
	Model string
	// Stream is true only for the JSON literal true (absent and null are false).
	Stream bool
	// IncludeUsage is stream_options.include_usage, true only for the literal true.
	IncludeUsage bool
	// N is the number of choices (1 when absent or null).
	N int64
	// Limits are the output-limit members present as integers (max_tokens,
	// max_completion_tokens, max_output_tokens).
	Limits map[string]int64
	// CacheWrite: some object at any depth has a cache_control member; CacheWrite1h: one of
	// them has ttl "1h".
	CacheWrite, CacheWrite1h bool
	// Sticky names server-side state the body refers to: "previous_response_id" (a non-empty
	// string) or "conversation" (any non-null value).
	Sticky string
	// Ambiguous maps the members a lenient provider could read as something else than what
	// their JSON type says (by path: "stream", "stream_options.include_usage", ...) to what
	// they hold: a non-boolean stream or include_usage (Python servers take 1 or "true" as
	// true), a non-integer output limit or n ("100" or 100.0 as 100), an n below 1, a model
	// that is not a string. A gateway must not act on a body with one its operation reads
	// (AmbiguousFor).
	Ambiguous map[string]string
	// Top is the decoded top-level object (numbers as json.Number).
	Top map[string]any
}

// ErrNotObject: the body is not one JSON object.
var ErrNotObject = errors.New("the body is not one JSON object")

// Read decodes body as a provider does.
func Read(body []byte) (*View, error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var top map[string]any
	if err := dec.Decode(&top); err != nil {
		return nil, fmt.Errorf("decode: %w", err)
	}
	if top == nil {
		return nil, ErrNotObject
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, ErrNotObject
	}
	v := &View{N: 1, Limits: map[string]int64{}, Ambiguous: map[string]string{}, Top: top}
	if m, ok := top["model"]; ok {
		if s, ok := m.(string); ok {
			v.Model = s
		} else {
			v.ambiguous("model", m)
		}
	}
	v.Stream = v.boolean(top, "stream")
	if so, ok := top["stream_options"].(map[string]any); ok {
		v.IncludeUsage = v.boolean(so, "stream_options.include_usage")
	}
	for _, f := range []string{"max_tokens", "max_completion_tokens", "max_output_tokens"} {
		if n, ok := v.integer(top, f); ok {
			v.Limits[f] = n
		}
	}
	if n, ok := v.integer(top, "n"); ok {
		if n < 1 {
			v.ambiguous("n", n)
		} else {
			v.N = n
		}
	}
	if s, _ := top["previous_response_id"].(string); s != "" {
		v.Sticky = "previous_response_id"
	} else if c, ok := top["conversation"]; ok && c != nil {
		v.Sticky = "conversation"
	}
	v.CacheWrite, v.CacheWrite1h = cacheControl(top)
	return v, nil
}

// OutputLimit is the largest of the named output limits the body sets, and how many of them
// it sets.
func (v *View) OutputLimit(names ...string) (limit int64, set int) {
	for _, n := range names {
		if l, ok := v.Limits[n]; ok {
			limit, set = max(limit, l), set+1
		}
	}
	return limit, set
}

func (v *View) ambiguous(path string, val any) {
	v.Ambiguous[path] = fmt.Sprintf("%T %v", val, val)
}

// AmbiguousFor lists the ambiguous members among those named ("path: value"), sorted.
func (v *View) AmbiguousFor(paths ...string) []string {
	var out []string
	for _, p := range paths {
		if a, ok := v.Ambiguous[p]; ok {
			out = append(out, p+": "+a)
		}
	}
	sort.Strings(out)
	return out
}

// boolean reads an optional boolean member of obj (path names it for Ambiguous).
func (v *View) boolean(obj map[string]any, path string) bool {
	name := path
	if i := lastDot(path); i >= 0 {
		name = path[i+1:]
	}
	switch b := obj[name].(type) {
	case nil:
		return false
	case bool:
		return b
	default:
		v.ambiguous(path, b)
		return false
	}
}

// integer reads an optional integer member written as one (no fraction, no exponent).
func (v *View) integer(obj map[string]any, name string) (int64, bool) {
	val, ok := obj[name]
	if !ok || val == nil {
		return 0, false
	}
	if num, ok := val.(json.Number); ok && isIntegerLiteral(string(num)) {
		if i, err := num.Int64(); err == nil && i <= math.MaxInt32 && i >= math.MinInt32 {
			return i, true
		}
	}
	v.ambiguous(name, val)
	return 0, false
}

func isIntegerLiteral(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c >= '0' && c <= '9' || i == 0 && c == '-') {
			return false
		}
	}
	return s != "" && s != "-"
}

func lastDot(s string) int {
	for i := len(s) - 1; i >= 0; i-- {
		if s[i] == '.' {
			return i
		}
	}
	return -1
}

func cacheControl(val any) (write, write1h bool) {
	switch x := val.(type) {
	case map[string]any:
		for k, e := range x {
			if cc, ok := e.(map[string]any); ok && k == "cache_control" {
				write = true
				write1h = write1h || cc["ttl"] == "1h"
			}
			w, h := cacheControl(e)
			write, write1h = write || w, write1h || h
		}
	case []any:
		for _, e := range x {
			w, h := cacheControl(e)
			write, write1h = write || w, write1h || h
		}
	}
	return write, write1h
}
