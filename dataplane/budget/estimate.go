package budget

import (
	"bytes"
	"strings"
	"unsafe"

	"github.com/tidwall/gjson"
)

// Token estimate constants. EstimateInputTokens is meant to be an upper bound for ordinary
// content, not a tokenizer: it runs on every request and costs one pass over the body.
const (
	// bytesPerToken: JSON-encoded English averages about 4 bytes per token with every
	// tokenizer in use; code, digits and non-Latin scripts come closer to 3 (a CJK character is
	// 3 UTF-8 bytes and about one token). JSON syntax adds bytes that cost no token.
	bytesPerToken = 3
	// imageTokens is charged per image whatever its size: providers resize images before
	// tokenizing (Anthropic about 1.6k tokens for a full-size image, OpenAI at most a few
	// thousand in high detail), so counting a base64 image's bytes would overestimate a photo
	// by a factor of hundreds, and an image URL's bytes would underestimate it.
	imageTokens = 8192
	// baseTokens covers message framing the provider adds (role markers, separators).
	baseTokens = 16
	// toolsTokens covers the hidden system prompt a provider adds when tools are defined
	// (Anthropic documents 300-700 tokens depending on the tool choice and tool type).
	toolsTokens = 1024
)

var (
	toolsKey   = []byte(`"tools"`)
	imageWord  = []byte("image")
	unicodeEsc = []byte(`\u`)
)

// EstimateInputTokens estimates the input tokens of a request body Inspect accepted (valid
// JSON, nesting bounded), for admission: conservatively and fast (no tokenizer, no decode).
// op is the operation ("chat_completions", "responses", "messages", "count_tokens").
//
// Every byte of the body counts as text at 3 bytes per token, except the payload of an image
// in a place the provider reads as an image, which counts as a flat 8192 tokens instead:
//   - chat_completions: messages[].content[] parts of type image_url (image_url.url);
//   - responses: input[] items of type input_image, and input_image parts of an item's
//     content[] or output[] (image_url);
//   - messages, count_tokens: messages[].content[] blocks of type image, and image blocks in
//     a tool_result block's content[] (source.data for a base64 source, source.url for a URL).
//
// A base64 payload (an Anthropic base64 source, or a data:image/...;base64, URL) is an image
// only when it is well-formed base64: anything else in that place, and any image-looking
// string elsewhere (a data URL in a text part, base64 in a tool input or a text document),
// counts as text by its bytes, so text is never counted as fewer tokens than its length
// implies. An http(s) image URL adds the 8192 tokens on top of its bytes. Plus 16 tokens of
// framing, and 1024 when the request defines tools. Other base64 media (PDF documents, audio)
// stay at bytes / 3, which is above what providers charge for them.
//
// When the real input is larger than the estimate (e.g. text of one character per token),
// the call can be charged more than its reservation: docs/budget.md states that bound.
func EstimateInputTokens(op string, body []byte) int64 {
	tokens, text := int64(baseTokens), int64(len(body))
	// A name or value written with \u escapes hides from the byte searches: walk the body.
	escaped := bytes.Contains(body, unicodeEsc)
	if bytes.Contains(body, toolsKey) || (escaped && gjson.GetBytes(body, "tools").Exists()) {
		tokens += toolsTokens
	}
	if escaped || bytes.Contains(body, imageWord) {
		n, b64 := images(op, body)
		tokens += n * imageTokens
		text -= b64
	}
	return tokens + (text+bytesPerToken-1)/bytesPerToken
}

// images counts the images of a request body (see EstimateInputTokens) and the bytes of
// their base64 payloads.
func images(op string, body []byte) (n, b64Bytes int64) {
	add := func(isImage bool, payloadBytes int64) {
		if isImage {
			n++
			b64Bytes += payloadBytes
		}
	}
	if len(body) == 0 {
		return 0, 0
	}
	root := gjson.Parse(unsafe.String(&body[0], len(body))) // a view: ParseBytes would copy the body
	switch op {
	case "chat_completions":
		root.Get("messages").ForEach(func(_, m gjson.Result) bool {
			m.Get("content").ForEach(func(_, part gjson.Result) bool {
				if part.Get("type").Str == "image_url" {
					u := part.Get("image_url")
					if u.IsObject() {
						u = u.Get("url")
					}
					add(urlImage(u))
				}
				return true
			})
			return true
		})
	case "responses":
		part := func(_, p gjson.Result) bool {
			if p.Get("type").Str == "input_image" {
				add(urlImage(p.Get("image_url")))
			}
			return true
		}
		root.Get("input").ForEach(func(k, item gjson.Result) bool {
			part(k, item)
			item.Get("content").ForEach(part)
			item.Get("output").ForEach(part)
			return true
		})
	case "messages", "count_tokens":
		var block func(_, b gjson.Result) bool
		block = func(_, b gjson.Result) bool {
			switch b.Get("type").Str {
			case "image":
				src := b.Get("source")
				switch src.Get("type").Str {
				case "base64":
					data := src.Get("data")
					add(data.Type == gjson.String && wellFormedBase64(rawString(data)), int64(len(data.Raw)-2))
				case "url":
					add(urlImage(src.Get("url")))
				}
			case "tool_result":
				b.Get("content").ForEach(func(_, inner gjson.Result) bool {
					if inner.Get("type").Str == "image" {
						block(inner, inner)
					}
					return true
				})
			}
			return true
		}
		root.Get("messages").ForEach(func(_, m gjson.Result) bool {
			m.Get("content").ForEach(block)
			return true
		})
	}
	return n, b64Bytes
}

// urlImage reads an image URL: an http(s) URL is an image (its bytes stay text), a data URL
// one when it is data:image/...;base64, followed by well-formed base64 (its bytes are the
// image's). Anything else is text.
func urlImage(u gjson.Result) (isImage bool, payloadBytes int64) {
	if u.Type != gjson.String {
		return false, 0
	}
	s := rawString(u)
	switch {
	case strings.HasPrefix(s, "https://") || strings.HasPrefix(s, "http://"):
		return true, 0
	case strings.HasPrefix(s, "data:image/"):
		comma := strings.IndexByte(s, ',')
		if comma < 0 || !strings.HasSuffix(s[:comma], ";base64") || !wellFormedBase64(s[comma+1:]) {
			return false, 0
		}
		return true, int64(len(s))
	}
	return false, 0
}

// rawString is a string value's bytes as written (without its quotes, escapes not decoded):
// base64 and URLs never need escapes, so one written with escapes is not well-formed.
func rawString(v gjson.Result) string {
	if len(v.Raw) < 2 {
		return ""
	}
	return v.Raw[1 : len(v.Raw)-1]
}

// wellFormedBase64 reports whether s is standard base64 (RFC 4648 alphabet, at most two '='
// of padding at the end, a length that encodes whole bytes), the only encoding the providers
// accept for image data.
func wellFormedBase64(s string) bool {
	end := len(s)
	for pad := 0; pad < 2 && end > 0 && s[end-1] == '='; pad++ {
		end--
	}
	if end == 0 || end%4 == 1 || (end < len(s) && len(s)%4 != 0) {
		return false
	}
	for i := range end {
		if !base64Alphabet[s[i]] {
			return false
		}
	}
	return true
}

var base64Alphabet = func() (t [256]bool) {
	for _, c := range []byte("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/") {
		t[c] = true
	}
	return t
}()
