package jsonx

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/require"
)

func scanCode(b []byte, top ...Member) ErrorCode {
	_, err := Scan(b, top)
	if err == nil {
		return 0
	}
	var e *Error
	if !errors.As(err, &e) {
		panic(err)
	}
	return e.Code
}

func TestScanValid(t *testing.T) {
	for _, s := range []string{
		`{}`, `[]`, ` {"a" : [1, -2.5e+3, 0, 0.1, 1E-2, true, false, null, "x"] } `, `"s"`, `0`, `-0`, `null`,
		`{"a":{"a":{"a":1}},"b":{"a":2}}`, // the same name in different objects
		`{"a":1,"A":2}`,                   // names are case-sensitive
		`{"\u00e9":1,"é2":2}`,
		`{"k":"\ud83d\ude00 \u00e9 \"q\" \\ \/ \b\f\n\r\t"}`,
		`{"lone":"\ud800"}`, // an unpaired surrogate in a value is what JavaScript produces for a cut emoji
		"{\"utf8\":\"h\u00e9llo \u4e16\u754c \U0001F600\"}",
		strings.Repeat("[", MaxDepth) + strings.Repeat("]", MaxDepth),
	} {
		_, err := Scan([]byte(s), nil)
		require.NoError(t, err, s)
		require.True(t, json.Valid([]byte(s)), s)
	}
}

func TestScanRejects(t *testing.T) {
	tests := []struct {
		name string
		body string
		code ErrorCode
	}{
		{"empty", ``, Syntax},
		{"space", `  `, Syntax},
		{"trailing comma", `{"a":1,}`, Syntax},
		{"trailing comma array", `[1,]`, Syntax},
		{"two values", `{} {}`, Syntax},
		{"garbage after", `{}x`, Syntax},
		{"single quotes", `{'a':1}`, Syntax},
		{"bare name", `{a:1}`, Syntax},
		{"missing colon", `{"a" 1}`, Syntax},
		{"leading zero", `[01]`, Syntax},
		{"plus", `[+1]`, Syntax},
		{"dot", `[1.]`, Syntax},
		{"exponent", `[1e]`, Syntax},
		{"nan", `[NaN]`, Syntax},
		{"tru", `[tru]`, Syntax},
		{"control char", "[\"a\x01\"]", Syntax},
		{"bad escape", `["\x"]`, Syntax},
		{"short unicode", `["\u12"]`, Syntax},
		{"invalid utf8 value", "[\"\xff\"]", Syntax},
		{"invalid utf8 name", "{\"\xc3\":1}", Syntax},
		{"unterminated", `{"a":"b`, Syntax},
		{"unclosed", `{"a":[1,2]`, Syntax},
		{"mismatched", `{"a":[1}`, Syntax},
		{"lone surrogate name", `{"\ud800":1}`, Syntax},
		{"too deep arrays", strings.Repeat("[", MaxDepth+1) + strings.Repeat("]", MaxDepth+1), TooDeep},
		{"too deep objects", strings.Repeat(`{"a":`, MaxDepth+1) + "1" + strings.Repeat("}", MaxDepth+1), TooDeep},
		{"duplicate top", `{"model":"a","model":"b"}`, Duplicate},
		{"duplicate escaped", `{"model":"a","\u006dodel":"b"}`, Duplicate},
		{"duplicate both escaped", `{"\u006dodel":"a","mod\u0065l":"b"}`, Duplicate},
		{"duplicate utf8 vs escape", `{"é":1,"\u00e9":2}`, Duplicate},
		{"duplicate surrogate pair", `{"😀":1,"\ud83d\ude00":2}`, Duplicate},
		{"duplicate nested", `{"a":[{"b":1,"c":{"d":1,"d":2}}]}`, Duplicate},
		{"duplicate after nested", `{"a":{"x":1,"y":2},"b":1,"a":3}`, Duplicate},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.Equal(t, tt.code, scanCode([]byte(tt.body)))
		})
	}
}

// A large object is checked by sorting when it closes; the duplicate may be anywhere in it.
func TestScanDuplicateInLargeObject(t *testing.T) {
	for _, at := range []int{0, 5, smallObject, 999} {
		var sb strings.Builder
		sb.WriteString(`{"x":{`)
		for k := range 1000 {
			if k > 0 {
				sb.WriteByte(',')
			}
			sb.WriteString(`"k` + itoa(k) + `":1`)
		}
		sb.WriteString(`,"k` + itoa(at) + `":2}}`)
		require.Equal(t, Duplicate, scanCode([]byte(sb.String())), at)
		require.Equal(t, ErrorCode(0), scanCode([]byte(strings.Replace(sb.String(), `"k`+itoa(at)+`":2`, `"other":2`, 1))))
	}
}

func itoa(n int) string {
	b, _ := json.Marshal(n)
	return string(b)
}

func TestScanMembers(t *testing.T) {
	top := []Member{{Name: "model"}, {Name: "stream"}, {Name: "n"}, {Name: "max_tokens"}, {Name: "missing"}}
	body := []byte(`{"messages":[{"model":"inner"}],"model" : "gpt-4o" ,"stream":true,"m\u0061x_tokens":{"a":[1]},"n":null}`)
	doc, err := Scan(body, top)
	require.NoError(t, err)
	require.Equal(t, Object, doc.Root)
	require.True(t, doc.EscapedNames)
	require.Equal(t, String, top[0].Kind)
	require.Equal(t, `"gpt-4o"`, string(top[0].Value))
	require.Equal(t, True, top[1].Kind)
	require.Equal(t, Null, top[2].Kind)
	require.Equal(t, Object, top[3].Kind)
	require.Equal(t, `{"a":[1]}`, string(top[3].Value))
	require.Equal(t, Absent, top[4].Kind)
	require.Nil(t, top[4].Value)

	doc, err = Scan([]byte(`[{"model":1}]`), top)
	require.NoError(t, err)
	require.Equal(t, Array, doc.Root)
	require.False(t, doc.EscapedNames)
	require.Equal(t, Absent, top[0].Kind, "only the top-level object's members are reported")
}

func TestScanCaseVariant(t *testing.T) {
	top := []Member{{Name: "model"}, {Name: "stream"}}
	for _, s := range []string{`{"Model":"a"}`, `{"MODEL":"a","model":"b"}`, `{"\u0053tream":true}`, `{"\u017ftream":true}`} {
		_, err := Scan([]byte(s), top)
		var e *Error
		require.ErrorAs(t, err, &e, s)
		require.Equal(t, CaseVariant, e.Code, s)
	}
	require.Equal(t, ErrorCode(0), scanCode([]byte(`{"x":{"Model":1}}`), top...), "only top-level names")
	require.Equal(t, ErrorCode(0), scanCode([]byte(`{"Model":1}`)), "only names asked for")
}

// 10^6 nested arrays or objects and 100 MB of '[' are rejected at the first level too deep,
// without reading the rest (the scan is iterative: no input can overflow a stack).
func TestScanDeepInputs(t *testing.T) {
	for name, b := range map[string][]byte{
		"1e6 arrays":  []byte(strings.Repeat("[", 1_000_000) + strings.Repeat("]", 1_000_000)),
		"1e6 objects": []byte(strings.Repeat(`{"a":`, 1_000_000) + "1" + strings.Repeat("}", 1_000_000)),
		"100MB [":     bytes.Repeat([]byte("["), 100<<20),
	} {
		_, err := Scan(b, nil)
		var e *Error
		require.ErrorAs(t, err, &e, name)
		require.Equal(t, TooDeep, e.Code, name)
		require.Less(t, e.Offset, 5*(MaxDepth+1), name)
	}
}

// Scanning a valid body allocates nothing once the pool is warm, even with escaped and
// non-ASCII names and a large object.
func TestScanDoesNotAllocate(t *testing.T) {
	var sb strings.Builder
	sb.WriteString(`{"model":"m","m\u0065ta":{"\u00e9":1},"big":{`)
	for k := range 100 {
		if k > 0 {
			sb.WriteByte(',')
		}
		sb.WriteString(`"k` + itoa(k) + `":[1,2,{"a":"b"}]`)
	}
	sb.WriteString(`},"messages":[{"role":"user","content":"` + strings.Repeat("hello ", 1000) + `"}]}`)
	body := []byte(sb.String())
	top := []Member{{Name: "model"}, {Name: "stream"}}
	_, err := Scan(body, top)
	require.NoError(t, err)
	require.Zero(t, testing.AllocsPerRun(100, func() { _, _ = Scan(body, top) }))
}

func TestAppendUnquoted(t *testing.T) {
	for raw, want := range map[string]string{
		`""`:                   "",
		`"plain"`:              "plain",
		`"a\"b\\c\/d\n"`:       "a\"b\\c/d\n",
		`"\u00e9\ud83d\ude00"`: "é😀",
		`"\ud800x"`:            "\ufffdx",
	} {
		require.Equal(t, want, string(AppendUnquoted(nil, []byte(raw))), raw)
		var ref string
		require.NoError(t, json.Unmarshal([]byte(raw), &ref))
		require.Equal(t, ref, want, "agrees with encoding/json")
		strict, ok := AppendUnquotedStrict(nil, []byte(raw))
		require.Equal(t, !strings.Contains(raw, `\ud800`), ok, raw)
		if ok {
			require.Equal(t, want, string(strict))
		}
	}
}

// reference checks b with encoding/json's tokenizer: the nesting depth reached, whether some
// object has a duplicate name before the first error, and whether b is valid.
func reference(b []byte) (depth int, dup, valid bool) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	type frame struct {
		obj   bool
		names map[string]bool
		key   bool // the next token in this object is a name
	}
	var stack []*frame
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			return depth, dup, json.Valid(b)
		}
		if err != nil {
			return depth, dup, false
		}
		var top *frame
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		if top != nil && top.obj && top.key {
			if d, ok := tok.(json.Delim); ok && d == '}' {
				stack = stack[:len(stack)-1]
				continue
			}
			name := tok.(string)
			if top.names[name] {
				dup = true
			}
			top.names[name] = true
			top.key = false
			continue
		}
		switch tok {
		case json.Delim('{'), json.Delim('['):
			if top != nil && top.obj {
				top.key = true
			}
			stack = append(stack, &frame{obj: tok == json.Delim('{'), names: map[string]bool{}, key: tok == json.Delim('{')})
			depth = max(depth, len(stack))
		case json.Delim('}'), json.Delim(']'):
			stack = stack[:len(stack)-1]
		default:
			if top != nil && top.obj {
				top.key = true
			}
		}
	}
}

// FuzzScan: what Scan accepts, encoding/json accepts, with no duplicate name, depth within
// MaxDepth and valid UTF-8; what it rejects for a reason, the reference sees that reason
// (syntax errors include invalid UTF-8 and unpaired surrogates in names, which
// encoding/json lets through); the members it reports are the ones encoding/json decodes.
func FuzzScan(f *testing.F) {
	for _, s := range []string{`{"model":"m","stream":true,"n":2}`, `{"a":{"a":1},"a":2}`, `[[[[]]]]`, `{"\u006dodel":1}`,
		`{"a":"\ud800"}`, "{\"a\":\"\xff\"}", `{"a":1,"b":[1,2,{"c":null}]}`, `-1.5e3`, `{"model":"a","Model":"b"}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		top := []Member{{Name: "model"}, {Name: "stream"}, {Name: "n"}}
		_, err := Scan(b, top)
		depth, dup, valid := reference(b)
		if err == nil {
			require.True(t, valid, "Scan accepted what encoding/json rejects")
			require.True(t, utf8.Valid(b))
			require.False(t, dup, "Scan missed a duplicate name")
			require.LessOrEqual(t, depth, MaxDepth)
			var m map[string]json.RawMessage
			if json.Unmarshal(b, &m) == nil && m != nil {
				for _, mb := range top {
					raw, ok := m[mb.Name]
					require.Equal(t, ok, mb.Kind != Absent, mb.Name)
					require.Equal(t, string(raw), string(mb.Value), mb.Name)
				}
			}
			return
		}
		var e *Error
		require.ErrorAs(t, err, &e)
		require.LessOrEqual(t, e.Offset, len(b))
		switch e.Code {
		case TooDeep:
			require.Greater(t, depth, MaxDepth, "rejected as too deep")
		case Duplicate:
			require.True(t, dup, "rejected a duplicate the reference does not see")
		case Syntax:
			if valid && utf8.Valid(b) {
				require.Contains(t, e.Msg, "surrogate")
			}
		case CaseVariant:
			require.True(t, strings.EqualFold(e.Name, "model") || strings.EqualFold(e.Name, "stream") || strings.EqualFold(e.Name, "n"), e.Name)
		}
	})
}

func BenchmarkScan(b *testing.B) {
	body := []byte(`{"model":"claude-sonnet-4-5","max_tokens":1024,"system":[{"type":"text","text":"` + strings.Repeat("You are helpful. ", 500) +
		`","cache_control":{"type":"ephemeral","ttl":"1h"}}],"messages":[{"role":"user","content":"` + strings.Repeat("hello ", 2000) + `"}]}`)
	top := []Member{{Name: "model"}, {Name: "stream"}, {Name: "max_tokens"}}
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Scan(body, top); err != nil {
			b.Fatal(err)
		}
	}
}

// treeBuilder rebuilds a document from Walk's tokens.
type treeBuilder struct {
	stack []any    // open containers: *[]any or map[string]any
	names []string // the pending member name per open object
	root  any
	done  bool
}

func (t *treeBuilder) put(v any) {
	if len(t.stack) == 0 {
		t.root, t.done = v, true
		return
	}
	switch c := t.stack[len(t.stack)-1].(type) {
	case *[]any:
		*c = append(*c, v)
	case map[string]any:
		c[t.names[len(t.names)-1]] = v
	}
}

func (t *treeBuilder) Begin(k Kind) {
	if k == Object {
		t.stack = append(t.stack, map[string]any{})
	} else {
		t.stack = append(t.stack, &[]any{})
	}
	t.names = append(t.names, "")
}

func (t *treeBuilder) End() {
	c := t.stack[len(t.stack)-1]
	t.stack, t.names = t.stack[:len(t.stack)-1], t.names[:len(t.names)-1]
	if a, ok := c.(*[]any); ok {
		t.put(*a)
		return
	}
	t.put(c)
}

func (t *treeBuilder) Name(n []byte) { t.names[len(t.names)-1] = string(n) }

func (t *treeBuilder) Scalar(k Kind, raw []byte) {
	switch k {
	case String:
		t.put(string(AppendUnquoted(nil, raw)))
	case Number:
		t.put(json.Number(raw))
	case True:
		t.put(true)
	case False:
		t.put(false)
	case Null:
		t.put(nil)
	}
}

func TestWalk(t *testing.T) {
	for _, s := range []string{`{}`, `[]`, `{"a":[1,{"b":null,"c\u0064":"x\ny"}],"e":[[]],"f":true,"g":-1.5e3}`, `"s"`, ` 5 `} {
		var tb treeBuilder
		require.NoError(t, Walk([]byte(s), &tb), s)
		require.True(t, tb.done)
		dec := json.NewDecoder(strings.NewReader(s))
		dec.UseNumber()
		var want any
		require.NoError(t, dec.Decode(&want))
		require.Equal(t, normalizeEmpty(want), normalizeEmpty(tb.root), s)
	}
	var tb treeBuilder
	err := Walk([]byte(strings.Repeat("[", 100<<20)), &tb)
	var e *Error
	require.ErrorAs(t, err, &e)
	require.Equal(t, TooDeep, e.Code)
	require.Error(t, Walk([]byte(`{"a":1,}`), &treeBuilder{}))
}

// normalizeEmpty makes empty and nil slices equal, at any depth.
func normalizeEmpty(v any) any {
	switch v := v.(type) {
	case []any:
		out := make([]any, 0, len(v))
		for _, e := range v {
			out = append(out, normalizeEmpty(e))
		}
		return out
	case map[string]any:
		out := map[string]any{}
		for k, e := range v {
			out[k] = normalizeEmpty(e)
		}
		return out
	}
	return v
}

// FuzzWalk: for a document Scan accepts, Walk's tokens rebuild what encoding/json decodes.
func FuzzWalk(f *testing.F) {
	for _, s := range []string{`{"a":[1,{"b":null}],"c":"\u00e9"}`, `[[],{}]`, `{"\u0061":1}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if _, err := Scan(b, nil); err != nil {
			return
		}
		var tb treeBuilder
		require.NoError(t, Walk(b, &tb))
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.UseNumber()
		var want any
		require.NoError(t, dec.Decode(&want))
		require.Equal(t, normalizeEmpty(want), normalizeEmpty(tb.root))
	})
}
