package provider

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"unsafe"

	"github.com/tidwall/gjson"
	"github.com/tidwall/sjson"

	"github.com/posthog/llm-gateway/internal/jsonx"
)

// RequestInfo is what the gateway reads from a client body: every field it acts on (route,
// budget, edits, failover). Inspect reads them from a body jsonx.Scan validated, so the
// provider (whatever JSON parser it uses) reads the same values.
type RequestInfo struct {
	Model  string
	Stream bool
	// MaxTokens is the output limit the request names (0: none); MaxTokensField is the field
	// it came from, or the field a default should be written to.
	MaxTokens      int64
	MaxTokensField string
	// N is the number of choices an OpenAI chat request asks for (1 when it names none): the
	// provider bills, and may generate, MaxTokens for each.
	N int64
	// IncludeUsage: an OpenAI chat stream asked for stream_options.include_usage itself.
	IncludeUsage bool
	// CacheWrite1h / CacheWrite: an Anthropic request marks content with cache_control (1h TTL
	// when any breakpoint says ttl "1h"). OpenAI caching is automatic and never billed as a write.
	CacheWrite   bool
	CacheWrite1h bool
	// Sticky names server-side state the request refers to (previous_response_id, conversation),
	// which only the provider account that created it can serve.
	Sticky string
}

// RequestError is a client body the gateway refuses with 400 invalid_request_error. Param
// names the offending top-level field, when there is one.
type RequestError struct {
	Param   string
	Message string
}

func (e *RequestError) Error() string { return e.Message }

func reqErr(param, format string, args ...any) *RequestError {
	return &RequestError{Param: param, Message: fmt.Sprintf(format, args...)}
}

// MaxN is the largest n (choices per chat completion) the gateway accepts: OpenAI's own limit.
const MaxN = 128

// The top-level members Inspect reads (and that the adapters and the recorder read), in the
// order of topMembers. A member whose name differs from one of these only in letter case is
// rejected (jsonx.CaseVariant): a provider decoding into a struct with a case-insensitive
// matcher would read it as that field.
const (
	mModel = iota
	mStream
	mMaxTokens
	mMaxCompletionTokens
	mMaxOutputTokens
	mN
	mStreamOptions
	mPreviousResponseID
	mConversation
	numTopMembers
)

var topMembers = [...]jsonx.Member{
	mModel: {Name: "model"}, mStream: {Name: "stream"}, mMaxTokens: {Name: "max_tokens"},
	mMaxCompletionTokens: {Name: "max_completion_tokens"}, mMaxOutputTokens: {Name: "max_output_tokens"},
	mN: {Name: "n"}, mStreamOptions: {Name: "stream_options"}, mPreviousResponseID: {Name: "previous_response_id"},
	mConversation: {Name: "conversation"},
	// Read by adapters (Bedrock, Azure), the estimate and the recorder: asked for only so
	// that a case variant of them is refused.
	numTopMembers: {Name: "messages"}, {Name: "system"}, {Name: "input"}, {Name: "instructions"}, {Name: "tools"},
	{Name: "cache_control"}, {Name: "context_management"}, {Name: "anthropic_version"}, {Name: "anthropic_beta"},
	{Name: "metadata"}, {Name: "thinking"},
}

// Inspect validates a client body and reads what the gateway needs; the error (a
// *RequestError) is meant for the client. The body must be one JSON object (jsonx.Scan:
// valid UTF-8, nesting at most jsonx.MaxDepth, no duplicate member name in any object, no
// case variant of a field the gateway reads) with a non-empty string model; the fields the
// gateway acts on must have the types the providers accept: stream a boolean, the output
// limit and n non-negative integers written as integers (n from 1 to MaxN), stream_options an
// object with a boolean include_usage. null is the field's absence, as for the providers.
func Inspect(op Operation, body []byte) (*RequestInfo, error) {
	if len(body) == 0 {
		return nil, reqErr("", "request body is empty")
	}
	top := topMembers
	doc, err := jsonx.Scan(body, top[:])
	if err != nil {
		return nil, scanError(err)
	}
	if doc.Root != jsonx.Object {
		return nil, reqErr("", "request body must be a JSON object")
	}
	model := &top[mModel]
	if model.Kind != jsonx.String || len(model.Value) <= 2 {
		if model.Kind != jsonx.Absent && model.Kind != jsonx.Null && model.Kind != jsonx.String {
			return nil, reqErr("model", "model must be a string, not %s", describe(model))
		}
		return nil, reqErr("model", "you must provide a model parameter")
	}
	var buf [64]byte
	name, ok := jsonx.AppendUnquotedStrict(buf[:0], model.Value)
	if !ok {
		return nil, reqErr("model", "model must be valid Unicode (it has an unpaired surrogate escape)")
	}
	info := &RequestInfo{Model: string(name), N: 1}
	if info.Stream, err = boolField(&top[mStream]); err != nil {
		return nil, err
	}
	switch op {
	case OpChatCompletions:
		info.MaxTokensField = "max_completion_tokens"
		mct, hasMCT, err := intField(&top[mMaxCompletionTokens])
		if err != nil {
			return nil, err
		}
		mt, hasMT, err := intField(&top[mMaxTokens])
		switch {
		case err != nil:
			return nil, err
		case hasMCT && hasMT:
			return nil, reqErr("max_tokens", "setting max_tokens and max_completion_tokens at the same time is not supported")
		case hasMCT:
			info.MaxTokens = mct
		case hasMT:
			info.MaxTokens, info.MaxTokensField = mt, "max_tokens"
		}
		n, hasN, err := intField(&top[mN])
		switch {
		case err != nil:
			return nil, err
		case hasN && (n < 1 || n > MaxN):
			return nil, reqErr("n", "n must be an integer from 1 to %d, not %d", MaxN, n)
		case hasN:
			info.N = n
		}
		if info.IncludeUsage, err = includeUsage(&top[mStreamOptions]); err != nil {
			return nil, err
		}
	case OpResponses:
		info.MaxTokensField = "max_output_tokens"
		if info.MaxTokens, _, err = intField(&top[mMaxOutputTokens]); err != nil {
			return nil, err
		}
		if v := &top[mPreviousResponseID]; v.Kind == jsonx.String && len(v.Value) > 2 {
			info.Sticky = "previous_response_id"
		} else if v := &top[mConversation]; v.Kind != jsonx.Absent && v.Kind != jsonx.Null {
			info.Sticky = "conversation"
		}
	case OpMessages, OpCountTokens:
		info.MaxTokensField = "max_tokens"
		if info.MaxTokens, _, err = intField(&top[mMaxTokens]); err != nil {
			return nil, err
		}
		if doc.EscapedNames {
			info.CacheWrite, info.CacheWrite1h = cacheControlWalk(body)
		} else {
			info.CacheWrite, info.CacheWrite1h = cacheControl(body)
		}
	}
	return info, nil
}

// scanError turns a jsonx.Scan error into the client's message.
func scanError(err error) *RequestError {
	var e *jsonx.Error
	if !errors.As(err, &e) {
		return reqErr("", "request body is not valid JSON: %v", err)
	}
	switch e.Code {
	case jsonx.TooDeep:
		return reqErr("", "request body nests arrays and objects deeper than %d levels", jsonx.MaxDepth)
	case jsonx.Duplicate:
		if e.Depth == 1 {
			return reqErr(e.Name, "request body has the field %q more than once", e.Name)
		}
		return reqErr("", "request body has an object with the member %q more than once (at byte %d)", e.Name, e.Offset)
	case jsonx.CaseVariant:
		return reqErr(e.Name, "request body field %s", e.Msg)
	}
	return reqErr("", "request body is not valid JSON: %s", e.Error())
}

// describe names a value's type for an error message, or quotes a number.
func describe(m *jsonx.Member) string {
	switch m.Kind {
	case jsonx.Number:
		return string(m.Value)
	case jsonx.True, jsonx.False:
		return "a boolean"
	case jsonx.Object:
		return "an object"
	case jsonx.Array:
		return "an array"
	case jsonx.String:
		return "a string"
	}
	return m.Kind.String()
}

// boolField reads a boolean field (absent or null: false).
func boolField(m *jsonx.Member) (bool, error) {
	switch m.Kind {
	case jsonx.True:
		return true, nil
	case jsonx.False, jsonx.Null, jsonx.Absent:
		return false, nil
	}
	return false, reqErr(m.Name, "%s must be a boolean, not %s", m.Name, describe(m))
}

// intField reads a non-negative integer field written as one (no fraction, no exponent);
// set is false when it is absent or null.
func intField(m *jsonx.Member) (v int64, set bool, err error) {
	switch m.Kind {
	case jsonx.Absent, jsonx.Null:
		return 0, false, nil
	case jsonx.Number:
	default:
		return 0, false, reqErr(m.Name, "%s must be an integer, not %s", m.Name, describe(m))
	}
	raw := m.Value
	if raw[0] == '-' {
		return 0, false, reqErr(m.Name, "%s must not be negative", m.Name)
	}
	for _, c := range raw {
		if c < '0' || c > '9' {
			return 0, false, reqErr(m.Name, "%s must be an integer, not %s", m.Name, raw)
		}
		if v > (math.MaxInt64-int64(c-'0'))/10 {
			return 0, false, reqErr(m.Name, "%s is too large: %s", m.Name, raw)
		}
		v = v*10 + int64(c-'0')
	}
	return v, true, nil
}

// includeUsage reads stream_options.include_usage (stream_options must be an object or null,
// include_usage a boolean or null).
func includeUsage(m *jsonx.Member) (bool, error) {
	switch m.Kind {
	case jsonx.Absent, jsonx.Null:
		return false, nil
	case jsonx.Object:
	default:
		return false, reqErr(m.Name, "stream_options must be an object, not %s", describe(m))
	}
	switch v := JSONView(m.Value).Get("include_usage"); v.Type {
	case gjson.True:
		return true, nil
	case gjson.False, gjson.Null:
		return false, nil
	default:
		if !v.Exists() {
			return false, nil
		}
		return false, reqErr("stream_options.include_usage", "stream_options.include_usage must be a boolean")
	}
}

// EditBody applies the gateway's shape-level edits to a body Inspect accepted, for a route
// whose default output limit is defaultMax and clamp maxMax (0: none): the default when the
// request names no limit (a Messages request without one and no default is refused: the
// field is required), the clamp (written into the field the request used), and
// stream_options.include_usage on an OpenAI chat stream that did not ask for usage.
// clientWantsUsage is false when the gateway injected include_usage. info.MaxTokens is
// updated to what the body now says. Count-tokens bodies are not edited.
func EditBody(op Operation, body []byte, info *RequestInfo, defaultMax, maxMax int64) (out []byte, clientWantsUsage bool, err error) {
	if op == OpCountTokens {
		return body, true, nil
	}
	switch {
	case info.MaxTokens == 0 && defaultMax > 0:
		if body, err = SetMaxTokens(body, info, defaultMax); err != nil {
			return nil, false, err
		}
	case info.MaxTokens == 0 && op == OpMessages:
		return nil, false, reqErr("max_tokens", "max_tokens: Field required")
	}
	if maxMax > 0 && info.MaxTokens > maxMax {
		if body, err = SetMaxTokens(body, info, maxMax); err != nil {
			return nil, false, err
		}
	}
	if op == OpChatCompletions && info.Stream && !info.IncludeUsage {
		if body, err = EnableStreamUsage(body); err != nil {
			return nil, false, err
		}
		return body, false, nil
	}
	return body, true, nil
}

// SetMaxTokens writes the output limit into the field the request uses (or the operation's
// default field), leaving every other byte of the body as sent.
func SetMaxTokens(body []byte, info *RequestInfo, n int64) ([]byte, error) {
	out, err := sjson.SetBytes(body, info.MaxTokensField, n)
	if err != nil {
		return nil, fmt.Errorf("set %s: %w", info.MaxTokensField, err)
	}
	info.MaxTokens = n
	return out, nil
}

// SetModel replaces the model id in the body.
func SetModel(body []byte, model string) ([]byte, error) {
	out, err := sjson.SetBytes(body, "model", model)
	if err != nil {
		return nil, fmt.Errorf("set model: %w", err)
	}
	return out, nil
}

// EnableStreamUsage sets stream_options.include_usage on an OpenAI chat stream so that the
// provider reports usage (the chunk is hidden from a client that did not ask for it).
func EnableStreamUsage(body []byte) ([]byte, error) {
	out, err := sjson.SetBytes(body, "stream_options.include_usage", true)
	if err != nil {
		return nil, fmt.Errorf("set stream_options.include_usage: %w", err)
	}
	return out, nil
}

var cacheControlKey = []byte(`"cache_control"`)

// cacheControl reports whether an Anthropic body marks any content for caching, and whether a
// breakpoint asks for the 1-hour TTL. cache_control objects may sit on system blocks, message
// content blocks, tools, or the top level; rather than walk the whole document, it finds each
// "cache_control" key (a quote that is not escaped, followed by a colon, so never text inside a
// string) and reads the object that follows. Bodies without the key cost one byte search.
// Exact only for a valid body whose member names are written without escapes (Inspect walks
// the others with cacheControlWalk).
func cacheControl(body []byte) (write, write1h bool) {
	for off := 0; ; {
		i := bytes.Index(body[off:], cacheControlKey)
		if i < 0 {
			return write, write1h
		}
		i += off
		off = i + len(cacheControlKey)
		if escaped(body, i) {
			continue
		}
		j := skipSpace(body, off)
		if j >= len(body) || body[j] != ':' {
			continue // a string value, not a key
		}
		j = skipSpace(body, j+1)
		if j >= len(body) || body[j] != '{' {
			continue // cache_control: null
		}
		write = true
		if ttl := gjson.GetBytes(body[j:], "ttl"); ttl.Type == gjson.String && ttl.Str == "1h" {
			return true, true
		}
	}
}

// cacheControlWalk is cacheControl for a body with escaped member names, which a byte search
// for the literal name would miss: one jsonx.Walk over the body, names and values decoded.
func cacheControlWalk(body []byte) (write, write1h bool) {
	var f ccFinder
	if jsonx.Walk(body, &f) != nil {
		return false, false
	}
	return f.write, f.write1h
}

// ccFinder is the jsonx.Visitor of cacheControlWalk.
type ccFinder struct {
	// Per open container: whether it is a cache_control object, and the member whose value
	// comes next (1: cache_control, 2: ttl).
	cc             [jsonx.MaxDepth + 1]bool
	member         [jsonx.MaxDepth + 1]uint8
	depth          int
	write, write1h bool
}

func (f *ccFinder) Begin(k jsonx.Kind) {
	cc := k == jsonx.Object && f.depth > 0 && f.member[f.depth-1] == 1
	if f.depth > 0 {
		f.member[f.depth-1] = 0
	}
	f.write = f.write || cc
	f.cc[f.depth], f.member[f.depth] = cc, 0
	f.depth++
}

func (f *ccFinder) End() { f.depth-- }

func (f *ccFinder) Name(name []byte) {
	switch string(name) {
	case "cache_control":
		f.member[f.depth-1] = 1
	case "ttl":
		f.member[f.depth-1] = 2
	default:
		f.member[f.depth-1] = 0
	}
}

func (f *ccFinder) Scalar(k jsonx.Kind, raw []byte) {
	if f.depth == 0 {
		return
	}
	d := f.depth - 1
	if f.cc[d] && f.member[d] == 2 && k == jsonx.String && len(raw) <= 16 {
		var buf [16]byte
		f.write1h = f.write1h || string(jsonx.AppendUnquoted(buf[:0], raw)) == "1h"
	}
	f.member[d] = 0
}

// escaped reports whether the quote at body[i] is escaped by an odd run of backslashes.
func escaped(body []byte, i int) bool {
	n := 0
	for k := i - 1; k >= 0 && body[k] == '\\'; k-- {
		n++
	}
	return n%2 == 1
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// EnsureModel sets the body's model to model when it differs, leaving the body untouched
// otherwise (and for an empty model).
func EnsureModel(body []byte, model string) ([]byte, error) {
	if model == "" || gjson.GetBytes(body, "model").Str == model {
		return body, nil
	}
	return SetModel(body, model)
}

// JSONView returns a gjson view of b without copying it (gjson.ParseBytes copies the whole
// body). Strings read from the result point into b: clone any that must outlive it.
func JSONView(b []byte) gjson.Result {
	if len(b) == 0 {
		return gjson.Result{}
	}
	return gjson.Parse(unsafe.String(&b[0], len(b)))
}
