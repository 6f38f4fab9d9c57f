package jsonx

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"slices"
	"sync"
	"unicode/utf16"
	"unicode/utf8"
)

// MaxDepth is the deepest nesting of arrays and objects Scan accepts. Scan itself is
// iterative, so the bound is not for Scan's sake: it makes every recursive reader that runs
// after it (gjson, sjson, encoding/json, a provider's parser) safe on the same bytes. No real
// request nests deeper than a few dozen levels.
const MaxDepth = 128

// Kind is the type of a JSON value.
type Kind uint8

const (
	Absent Kind = iota // no value (a Member Scan did not find)
	Object
	Array
	String
	Number
	True
	False
	Null
)

var kindNames = [...]string{"absent", "object", "array", "string", "number", "boolean", "boolean", "null"}

func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "invalid"
}

// Member asks Scan for one member of the top-level object, by its decoded name. Scan sets
// Kind and Value (a sub-slice of the scanned bytes, the value's raw JSON text).
type Member struct {
	Name  string
	Kind  Kind
	Value []byte
}

// Doc is what Scan learned about a valid document.
type Doc struct {
	// Root is the type of the top-level value.
	Root Kind
	// EscapedNames reports that some member name, at any depth, is written with an escape
	// sequence (`"\u006dodel"`): byte searches for a literal name may then miss it.
	EscapedNames bool
}

// ErrorCode classifies what Scan rejected.
type ErrorCode uint8

const (
	// Syntax: not one valid JSON value (RFC 8259), including invalid UTF-8 in a string and a
	// member name with an unpaired surrogate escape.
	Syntax ErrorCode = iota + 1
	// TooDeep: arrays and objects nest deeper than MaxDepth.
	TooDeep
	// Duplicate: an object has two members with the same decoded name.
	Duplicate
	// CaseVariant: a top-level member name differs only in letter case from one the caller
	// asked for (decoders that match names case-insensitively, like Go's encoding/json into a
	// struct, would read it as that member).
	CaseVariant
)

// Error is a document Scan rejects.
type Error struct {
	Code ErrorCode
	// Offset is the byte offset where the problem was found.
	Offset int
	// Name is the member name involved (Duplicate, CaseVariant), decoded; Depth the nesting
	// of its object (1: the top-level object).
	Name  string
	Depth int
	Msg   string
}

func (e *Error) Error() string { return fmt.Sprintf("%s (at byte %d)", e.Msg, e.Offset) }

// Scan validates b as exactly one JSON value and reports, for each of top, the member of
// the top-level object with that name. It rejects, with an *Error:
//   - anything that is not one RFC 8259 JSON value (whitespace around it allowed), including
//     invalid UTF-8 inside strings;
//   - arrays and objects nested deeper than MaxDepth;
//   - an object, at any depth, with two members of the same name (compared after decoding
//     escapes, so "model" and "\u006dodel" are the same name), and member names that are not
//     valid Unicode (an unpaired surrogate escape);
//   - a top-level member whose name equals one of top's names ignoring case but not exactly.
//
// With duplicates rejected, every reader of b (first-member-wins like gjson and sjson,
// last-member-wins like Python's json and Go's encoding/json) reads the same value for each
// member. Scan is one iterative pass: linear time, no recursion, and memory bounded by
// MaxDepth plus the member names of the objects still open. It does not allocate in the
// steady state (its scratch space is pooled).
func Scan(b []byte, top []Member) (Doc, error) {
	for k := range top {
		top[k].Kind, top[k].Value = Absent, nil
	}
	s := scanners.Get().(*scanner)
	doc, err := s.scan(b, top)
	s.b = nil
	if cap(s.names) > maxPooledNames {
		s.names = nil
	}
	if cap(s.dec) > maxPooledDecoded {
		s.dec = nil
	}
	s.names, s.dec = s.names[:0], s.dec[:0]
	scanners.Put(s)
	return doc, err
}

const (
	maxPooledNames   = 1 << 12
	maxPooledDecoded = 1 << 16
	// smallObject: objects with at most this many members are checked for duplicates as
	// each name arrives (a linear look at the earlier ones); larger ones are sorted once
	// when they close, so a huge object costs O(n log n), not O(n^2).
	smallObject = 16
)

var scanners = sync.Pool{New: func() any { return new(scanner) }}

// name is one member name of an object still open: its FNV-1a hash and where its decoded
// bytes are (in the document itself, or in dec when the name has escapes).
type name struct {
	hash   uint32
	inDec  bool
	off, n int
}

type scanner struct {
	open     [MaxDepth]byte // '{' or '[' per open container
	nameBase [MaxDepth]int  // len(names) when the container opened
	decBase  [MaxDepth]int  // len(dec) when the container opened
	names    []name
	dec      []byte
	b        []byte
}

func (s *scanner) bytesOf(n name) []byte {
	if n.inDec {
		return s.dec[n.off : n.off+n.n]
	}
	return s.b[n.off : n.off+n.n]
}

func syntaxErr(off int, format string, args ...any) *Error {
	return &Error{Code: Syntax, Offset: off, Msg: fmt.Sprintf(format, args...)}
}

func unexpected(b []byte, i int, want string) *Error {
	if i >= len(b) {
		return syntaxErr(i, "unexpected end of JSON input, expected %s", want)
	}
	return syntaxErr(i, "invalid character %s, expected %s", quoteChar(b[i]), want)
}

func quoteChar(c byte) string {
	if c >= 0x20 && c < 0x7f {
		return fmt.Sprintf("'%c'", c)
	}
	return fmt.Sprintf("0x%02x", c)
}

func (s *scanner) scan(b []byte, top []Member) (doc Doc, err error) {
	s.b = b
	depth := 0
	member, memberStart := -1, 0 // the top-level member whose value is being scanned
	i := skipWS(b, 0)
value:
	if i >= len(b) {
		return doc, unexpected(b, i, "a value")
	}
	if depth == 0 {
		doc.Root = kindOf(b[i])
	}
	switch c := b[i]; c {
	case '{', '[':
		if depth == MaxDepth {
			return doc, &Error{Code: TooDeep, Offset: i, Depth: depth + 1,
				Msg: fmt.Sprintf("arrays and objects nest deeper than %d levels", MaxDepth)}
		}
		s.open[depth], s.nameBase[depth], s.decBase[depth] = c, len(s.names), len(s.dec)
		depth++
		i = skipWS(b, i+1)
		if c == '{' {
			if i < len(b) && b[i] == '}' {
				depth, i = depth-1, i+1
				goto end
			}
			goto key
		}
		if i < len(b) && b[i] == ']' {
			depth, i = depth-1, i+1
			goto end
		}
		goto value
	case '"':
		if i, err = scanString(b, i+1); err != nil {
			return doc, err
		}
	case 't':
		if !bytes.HasPrefix(b[i:], litTrue) {
			return doc, unexpected(b, i, "a value")
		}
		i += len(litTrue)
	case 'f':
		if !bytes.HasPrefix(b[i:], litFalse) {
			return doc, unexpected(b, i, "a value")
		}
		i += len(litFalse)
	case 'n':
		if !bytes.HasPrefix(b[i:], litNull) {
			return doc, unexpected(b, i, "a value")
		}
		i += len(litNull)
	default:
		var ok bool
		if i, ok = scanNumber(b, i); !ok {
			return doc, unexpected(b, i, "a value")
		}
	}
end: // a value ended just before i
	if depth == 1 && member >= 0 {
		top[member].Kind, top[member].Value = kindOf(b[memberStart]), b[memberStart:i]
		member = -1
	}
	i = skipWS(b, i)
	if depth == 0 {
		if i != len(b) {
			return doc, syntaxErr(i, "invalid character %s after the top-level value", quoteChar(b[i]))
		}
		return doc, nil
	}
	if i >= len(b) {
		return doc, unexpected(b, i, "',' or the end of an array or object")
	}
	switch b[i] {
	case ',':
		i = skipWS(b, i+1)
		if s.open[depth-1] == '{' {
			goto key
		}
		goto value
	case '}':
		if s.open[depth-1] != '{' {
			return doc, unexpected(b, i, "',' or ']'")
		}
		if err := s.closeObject(depth); err != nil {
			return doc, err
		}
		depth, i = depth-1, i+1
		s.names, s.dec = s.names[:s.nameBase[depth]], s.dec[:s.decBase[depth]]
		goto end
	case ']':
		if s.open[depth-1] != '[' {
			return doc, unexpected(b, i, "',' or '}'")
		}
		depth, i = depth-1, i+1
		goto end
	}
	if s.open[depth-1] == '{' {
		return doc, unexpected(b, i, "',' or '}'")
	}
	return doc, unexpected(b, i, "',' or ']'")
key:
	if i >= len(b) || b[i] != '"' {
		return doc, unexpected(b, i, "a member name (a string)")
	}
	{
		var nm []byte
		var escaped bool
		if i, nm, escaped, err = s.memberName(i+1, depth); err != nil {
			return doc, err
		}
		doc.EscapedNames = doc.EscapedNames || escaped
		if depth == 1 && len(top) > 0 {
			if member, err = match(nm, top, i); err != nil {
				return doc, err
			}
		}
	}
	i = skipWS(b, i)
	if i >= len(b) || b[i] != ':' {
		return doc, unexpected(b, i, "':' after a member name")
	}
	i = skipWS(b, i+1)
	if depth == 1 {
		memberStart = i
	}
	goto value
}

// match finds the top-level member nm names (-1: none asked for) and rejects a name that
// differs from an asked-for one only in case.
func match(nm []byte, top []Member, off int) (int, error) {
	for k := range top {
		if string(nm) == top[k].Name {
			return k, nil
		}
	}
	for k := range top {
		// Case folding maps 'k' and 's' to the 3- and 2-byte runes K (Kelvin) and ſ: a folded
		// variant of an ASCII name is at most three times as long.
		if n := len(top[k].Name); len(nm) >= n && len(nm) <= 3*n && bytes.EqualFold(nm, []byte(top[k].Name)) {
			return -1, &Error{Code: CaseVariant, Offset: off, Name: string(nm), Depth: 1,
				Msg: fmt.Sprintf("member name %q differs from %q only in letter case", nm, top[k].Name)}
		}
	}
	return -1, nil
}

// memberName scans a member name starting after its opening quote, records it in the
// innermost open object and rejects it if that object already has it.
func (s *scanner) memberName(i, depth int) (end int, nm []byte, escaped bool, err error) {
	b := s.b
	start := i
	h := uint32(fnvOffset)
	for {
		if i >= len(b) {
			return i, nil, false, syntaxErr(i, "unexpected end of JSON input in a member name")
		}
		c := b[i]
		if c == '"' {
			break
		}
		if c == '\\' {
			escaped = true
			break
		}
		if c < 0x20 {
			return i, nil, false, syntaxErr(i, "invalid control character %s in a string", quoteChar(c))
		}
		if c >= utf8.RuneSelf {
			r, size := utf8.DecodeRune(b[i:])
			if r == utf8.RuneError && size == 1 {
				return i, nil, false, syntaxErr(i, "invalid UTF-8 in a string")
			}
			for _, c := range b[i : i+size] {
				h = (h ^ uint32(c)) * fnvPrime
			}
			i += size
			continue
		}
		h = (h ^ uint32(c)) * fnvPrime
		i++
	}
	var n name
	if !escaped {
		n = name{hash: h, off: start, n: i - start}
		nm, end = b[start:i], i+1
	} else {
		off := len(s.dec)
		if s.dec, end, err = decodeString(s.dec, b, start, true); err != nil {
			return end, nil, true, err
		}
		nm = s.dec[off:]
		h = fnvOffset
		for _, c := range nm {
			h = (h ^ uint32(c)) * fnvPrime
		}
		n = name{hash: h, inDec: true, off: off, n: len(nm)}
	}
	names := s.names[s.nameBase[depth-1]:]
	if len(names) < smallObject {
		for _, o := range names {
			if o.hash == n.hash && o.n == n.n && bytes.Equal(s.bytesOf(o), nm) {
				return end, nil, escaped, duplicate(nm, start-1, depth)
			}
		}
	}
	s.names = append(s.names, n)
	return end, nm, escaped, nil
}

func duplicate(nm []byte, off, depth int) *Error {
	where := "an object"
	if depth == 1 {
		where = "the top-level object"
	}
	return &Error{Code: Duplicate, Offset: off, Name: string(nm), Depth: depth,
		Msg: fmt.Sprintf("duplicate member name %q in %s", nm, where)}
}

// closeObject checks a large object (more than smallObject members, which memberName did not
// compare past the first ones) for duplicates: sorted by hash then bytes, equal names are
// neighbours.
func (s *scanner) closeObject(depth int) error {
	names := s.names[s.nameBase[depth-1]:]
	if len(names) <= smallObject {
		return nil
	}
	slices.SortFunc(names, func(x, y name) int {
		if x.hash != y.hash {
			if x.hash < y.hash {
				return -1
			}
			return 1
		}
		return bytes.Compare(s.bytesOf(x), s.bytesOf(y))
	})
	for k := 1; k < len(names); k++ {
		if p, q := names[k-1], names[k]; p.hash == q.hash && bytes.Equal(s.bytesOf(p), s.bytesOf(q)) {
			return duplicate(s.bytesOf(q), max(p.off, q.off), depth)
		}
	}
	return nil
}

const (
	fnvOffset = 2166136261
	fnvPrime  = 16777619
)

var (
	litTrue  = []byte("true")
	litFalse = []byte("false")
	litNull  = []byte("null")
)

func kindOf(c byte) Kind {
	switch c {
	case '{':
		return Object
	case '[':
		return Array
	case '"':
		return String
	case 't':
		return True
	case 'f':
		return False
	case 'n':
		return Null
	}
	return Number
}

func skipWS(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\n' || b[i] == '\r' || b[i] == '\t') {
		i++
	}
	return i
}

// plain marks the bytes a string may hold as they are: printable ASCII but '"' and '\\'.
var plain = func() (t [256]bool) {
	for c := 0x20; c < 0x80; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

const (
	ones  = 0x0101010101010101
	highs = 0x8080808080808080
)

// special reports (non-zero) whether one of the 8 bytes in x is not plain: a quote, a
// backslash, a control character or a byte of a multi-byte UTF-8 sequence. Exact for "any";
// the byte loop finds which.
func special(x uint64) uint64 {
	q, s := x^(ones*'"'), x^(ones*'\\')
	return ((q-ones)&^q | (s-ones)&^s | (x - ones*0x20) | x) & highs
}

// scanString validates a string value starting after its opening quote and returns the index
// after its closing quote.
func scanString(b []byte, i int) (int, error) {
	for {
		for i+16 <= len(b) && special(binary.LittleEndian.Uint64(b[i:]))|special(binary.LittleEndian.Uint64(b[i+8:])) == 0 {
			i += 16
		}
		for i < len(b) && plain[b[i]] {
			i++
		}
		if i >= len(b) {
			return i, syntaxErr(i, "unexpected end of JSON input in a string")
		}
		switch c := b[i]; {
		case c == '"':
			return i + 1, nil
		case c == '\\':
			n, ok := escapeLen(b, i)
			if !ok {
				return i, syntaxErr(i, "invalid escape sequence in a string")
			}
			i += n
		case c < 0x20:
			return i, syntaxErr(i, "invalid control character %s in a string", quoteChar(c))
		default:
			r, size := utf8.DecodeRune(b[i:])
			if r == utf8.RuneError && size == 1 {
				return i, syntaxErr(i, "invalid UTF-8 in a string")
			}
			i += size
		}
	}
}

// escapeLen returns the length of the valid escape sequence at b[i] ('\\').
func escapeLen(b []byte, i int) (int, bool) {
	if i+1 >= len(b) {
		return 0, false
	}
	switch b[i+1] {
	case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
		return 2, true
	case 'u':
		if i+6 > len(b) {
			return 0, false
		}
		for _, c := range b[i+2 : i+6] {
			if unhex(c) < 0 {
				return 0, false
			}
		}
		return 6, true
	}
	return 0, false
}

func unhex(c byte) rune {
	switch {
	case '0' <= c && c <= '9':
		return rune(c - '0')
	case 'a' <= c && c <= 'f':
		return rune(c - 'a' + 10)
	case 'A' <= c && c <= 'F':
		return rune(c - 'A' + 10)
	}
	return -1
}

func hex4(b []byte) rune {
	return unhex(b[0])<<12 | unhex(b[1])<<8 | unhex(b[2])<<4 | unhex(b[3])
}

// decodeString appends the decoded contents of the string starting at b[i] (after its opening
// quote) to dst and returns the index after its closing quote. strict rejects an unpaired
// surrogate escape (member names); otherwise it decodes to U+FFFD as encoding/json does.
func decodeString(dst, b []byte, i int, strict bool) ([]byte, int, error) {
	for {
		start := i
		for i < len(b) && plain[b[i]] {
			i++
		}
		dst = append(dst, b[start:i]...)
		if i >= len(b) {
			return dst, i, syntaxErr(i, "unexpected end of JSON input in a string")
		}
		switch c := b[i]; {
		case c == '"':
			return dst, i + 1, nil
		case c == '\\':
			n, ok := escapeLen(b, i)
			if !ok {
				return dst, i, syntaxErr(i, "invalid escape sequence in a string")
			}
			if n == 2 {
				dst = append(dst, unescape[b[i+1]])
				i += 2
				continue
			}
			r := hex4(b[i+2:])
			i += 6
			if utf16.IsSurrogate(r) {
				r2 := rune(-1)
				if i+6 <= len(b) && b[i] == '\\' && b[i+1] == 'u' {
					if _, ok := escapeLen(b, i); ok {
						r2 = hex4(b[i+2:])
					}
				}
				if dec := utf16.DecodeRune(r, r2); dec != utf8.RuneError {
					r = dec
					i += 6
				} else if strict {
					return dst, i - 6, syntaxErr(i-6, "unpaired surrogate escape in a member name or a value that must be valid Unicode")
				} else {
					r = utf8.RuneError
				}
			}
			dst = utf8.AppendRune(dst, r)
		case c < 0x20:
			return dst, i, syntaxErr(i, "invalid control character %s in a string", quoteChar(c))
		default:
			r, size := utf8.DecodeRune(b[i:])
			if r == utf8.RuneError && size == 1 {
				return dst, i, syntaxErr(i, "invalid UTF-8 in a string")
			}
			dst = append(dst, b[i:i+size]...)
			i += size
		}
	}
}

var unescape = [256]byte{'"': '"', '\\': '\\', '/': '/', 'b': '\b', 'f': '\f', 'n': '\n', 'r': '\r', 't': '\t'}

// AppendUnquoted decodes the JSON string literal raw (with its quotes, as Scan's Member.Value
// holds it) and appends its contents to dst. An unpaired surrogate escape becomes U+FFFD, as
// in encoding/json. raw must be a valid string literal (Scan checked it).
func AppendUnquoted(dst, raw []byte) []byte {
	if len(raw) < 2 || raw[0] != '"' {
		return dst
	}
	if bytes.IndexByte(raw, '\\') < 0 {
		return append(dst, raw[1:len(raw)-1]...)
	}
	dst, _, _ = decodeString(dst, raw, 1, false)
	return dst
}

// AppendUnquotedStrict is AppendUnquoted for a string that must be valid Unicode: ok is false
// when raw has an unpaired surrogate escape (parsers disagree on what that is: encoding/json
// reads U+FFFD, Python keeps the lone surrogate).
func AppendUnquotedStrict(dst, raw []byte) (out []byte, ok bool) {
	if len(raw) < 2 || raw[0] != '"' {
		return dst, false
	}
	if bytes.IndexByte(raw, '\\') < 0 {
		return append(dst, raw[1:len(raw)-1]...), true
	}
	out, _, err := decodeString(dst, raw, 1, true)
	return out, err == nil
}

// scanNumber returns the index after the number at b[i] (RFC 8259 grammar), or false.
func scanNumber(b []byte, i int) (int, bool) {
	if i < len(b) && b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && b[i] >= '1' && b[i] <= '9':
		i = digits(b, i+1)
	default:
		return i, false
	}
	if i < len(b) && b[i] == '.' {
		if i+1 >= len(b) || !isDigit(b[i+1]) {
			return i + 1, false
		}
		i = digits(b, i+1)
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if i >= len(b) || !isDigit(b[i]) {
			return i, false
		}
		i = digits(b, i)
	}
	return i, true
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func digits(b []byte, i int) int {
	for i < len(b) && isDigit(b[i]) {
		i++
	}
	return i
}

// Visitor receives the tokens of a document from Walk.
type Visitor interface {
	// Begin starts an object or an array (kind); End ends the innermost one.
	Begin(kind Kind)
	End()
	// Name is the next object member's name, decoded (valid only during the call); the
	// member's value follows.
	Name(name []byte)
	// Scalar is a string, number, true, false or null value: its kind and raw JSON text (a
	// string with its quotes and escapes as written).
	Scalar(kind Kind, raw []byte)
}

// Walk reports the tokens of b to v in document order, in one iterative pass. It stops at the
// first syntax error and at nesting deeper than MaxDepth, returning an *Error, but it does not
// look for duplicate names: it is meant for documents Scan accepted.
func Walk(b []byte, v Visitor) error {
	var open [MaxDepth]byte
	var nameBuf []byte // decoded escaped names (allocated only when there are some)
	depth := 0
	i := skipWS(b, 0)
	var err error
value:
	if i >= len(b) {
		return unexpected(b, i, "a value")
	}
	switch c := b[i]; c {
	case '{', '[':
		if depth == MaxDepth {
			return &Error{Code: TooDeep, Offset: i, Depth: depth + 1,
				Msg: fmt.Sprintf("arrays and objects nest deeper than %d levels", MaxDepth)}
		}
		open[depth] = c
		depth++
		v.Begin(kindOf(c))
		i = skipWS(b, i+1)
		if c == '{' {
			if i < len(b) && b[i] == '}' {
				depth, i = depth-1, i+1
				v.End()
				goto end
			}
			goto key
		}
		if i < len(b) && b[i] == ']' {
			depth, i = depth-1, i+1
			v.End()
			goto end
		}
		goto value
	default:
		start := i
		switch c {
		case '"':
			i, err = scanString(b, i+1)
		case 't':
			if !bytes.HasPrefix(b[i:], litTrue) {
				return unexpected(b, i, "a value")
			}
			i += len(litTrue)
		case 'f':
			if !bytes.HasPrefix(b[i:], litFalse) {
				return unexpected(b, i, "a value")
			}
			i += len(litFalse)
		case 'n':
			if !bytes.HasPrefix(b[i:], litNull) {
				return unexpected(b, i, "a value")
			}
			i += len(litNull)
		default:
			var ok bool
			if i, ok = scanNumber(b, i); !ok {
				err = unexpected(b, i, "a value")
			}
		}
		if err != nil {
			return err
		}
		v.Scalar(kindOf(c), b[start:i])
	}
end:
	i = skipWS(b, i)
	if depth == 0 {
		if i != len(b) {
			return syntaxErr(i, "invalid character %s after the top-level value", quoteChar(b[i]))
		}
		return nil
	}
	if i < len(b) {
		switch c := b[i]; {
		case c == ',':
			i = skipWS(b, i+1)
			if open[depth-1] == '{' {
				goto key
			}
			goto value
		case c == '}' && open[depth-1] == '{', c == ']' && open[depth-1] == '[':
			depth, i = depth-1, i+1
			v.End()
			goto end
		}
	}
	return unexpected(b, i, "',' or the end of an array or object")
key:
	if i >= len(b) || b[i] != '"' {
		return unexpected(b, i, "a member name (a string)")
	}
	{
		start := i + 1
		if i, err = scanString(b, start); err != nil {
			return err
		}
		nm := b[start : i-1]
		if bytes.IndexByte(nm, '\\') >= 0 {
			nameBuf, _, _ = decodeString(nameBuf[:0], b, start, false)
			nm = nameBuf
		}
		v.Name(nm)
	}
	i = skipWS(b, i)
	if i >= len(b) || b[i] != ':' {
		return unexpected(b, i, "':' after a member name")
	}
	i = skipWS(b, i+1)
	goto value
}
