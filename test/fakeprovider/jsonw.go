package fakeprovider

import (
	"strconv"
	"unicode/utf8"

	"github.com/tidwall/gjson"

	"github.com/posthog/llm-gateway/internal/jsonx"
)

// Responses are built by appending to byte slices: the hot path (thousands of streams)
// allocates nothing per chunk.

// appendString appends s as a JSON string literal.
func appendString(b []byte, s string) []byte { return jsonx.AppendString(b, s) }

// appendStringOrNull appends s as a JSON string, or null when empty.
func appendStringOrNull(b []byte, s string) []byte {
	if s == "" {
		return append(b, "null"...)
	}
	return appendString(b, s)
}

func appendInt(b []byte, n int64) []byte { return strconv.AppendInt(b, n, 10) }

// appendField appends `"name":n` preceded by a comma.
func appendIntField(b []byte, name string, n int64) []byte {
	b = append(b, ',', '"')
	b = append(b, name...)
	b = append(b, '"', ':')
	return strconv.AppendInt(b, n, 10)
}

// splitText splits s into n pieces of nearly equal rune length (at least one piece, at most
// one per rune).
func splitText(s string, n int) []string {
	runes := utf8.RuneCountInString(s)
	if n > runes {
		n = runes
	}
	if n <= 1 {
		return []string{s}
	}
	pieces := make([]string, 0, n)
	base, extra := runes/n, runes%n
	start, count, want := 0, 0, base
	if extra > 0 {
		want++
	}
	for i := range s {
		if count == want {
			pieces = append(pieces, s[start:i])
			start, count, want = i, 0, base
			if len(pieces) < extra {
				want++
			}
		}
		count++
	}
	return append(pieces, s[start:])
}

// maxTextDepth bounds how deep the tokenizer looks for prompt text: each level re-reads the
// rest of the document, so an unbounded walk of a deeply nested body takes quadratic time
// (providers refuse such bodies anyway; the gateway refuses them before they get here).
const maxTextDepth = 128

// estimateTokens is the fake's tokenizer: the bytes of every prompt text in body (string
// content, text, system, instructions and input values under the given roots), divided by
// four, at least 1. Messages and count_tokens agree for the same prompt.
func estimateTokens(body []byte, roots ...string) int64 {
	var n int
	for _, root := range roots {
		n += textBytes(gjson.GetBytes(body, root), root, 0)
	}
	if n == 0 {
		return 1
	}
	return int64((n + 3) / 4)
}

func textBytes(v gjson.Result, key string, depth int) int {
	switch {
	case (v.IsArray() || v.IsObject()) && depth < maxTextDepth:
		n := 0
		v.ForEach(func(k, child gjson.Result) bool {
			childKey := key
			if v.IsObject() {
				childKey = k.Str
			}
			n += textBytes(child, childKey, depth+1)
			return true
		})
		return n
	case v.Type == gjson.String:
		switch key {
		case "content", "text", "system", "instructions", "input", "messages":
			return len(v.Str)
		}
	}
	return 0
}

// countWords counts whitespace-separated words (the default output token count), at least 1.
func countWords(s string) int64 {
	var n int64
	inWord := false
	for i := 0; i < len(s); i++ {
		space := s[i] == ' ' || s[i] == '\n' || s[i] == '\t' || s[i] == '\r'
		if !space && !inWord {
			n++
		}
		inWord = !space
	}
	if n == 0 {
		return 1
	}
	return n
}
