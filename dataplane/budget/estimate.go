package budget

import "bytes"

// Token estimate constants. EstimateInputTokens is meant to be an upper bound for ordinary
// content, not a tokenizer: it runs on every request and costs one pass over the body.
const (
	// bytesPerToken: JSON-encoded English averages about 4 bytes per token with every
	// tokenizer in use; code, digits and non-Latin scripts come closer to 3 (a CJK character is
	// 3 UTF-8 bytes and about one token). JSON syntax adds bytes that cost no token.
	bytesPerToken = 3
	// imageTokens is charged per base64 image whatever its size: providers resize images
	// before tokenizing (Anthropic about 1.6k tokens for a full-size image, OpenAI at most a
	// few thousand in high detail), so counting the image's bytes would overestimate a
	// photo by a factor of hundreds.
	imageTokens = 8192
	// mediaMinLen: strings shorter than this are text, whatever their content.
	mediaMinLen = 512
	// baseTokens covers message framing the provider adds (role markers, separators).
	baseTokens = 16
	// toolsTokens covers the hidden system prompt a provider adds when tools are defined
	// (Anthropic documents 300-700 tokens depending on the tool choice and tool type).
	toolsTokens = 1024
)

// EstimateInputTokens estimates a request body's input tokens for admission, conservatively
// and fast (no tokenizer, no JSON decode): body bytes / 3, except that every base64 image
// (a data:image/... URL or a base64 string starting with a PNG, JPEG, GIF or WebP signature)
// counts as a flat 8192 tokens instead of its bytes, plus 16 tokens of framing and 1024 when
// the request defines tools. Other base64 media (PDF documents, audio) stay at bytes / 3,
// which is above what providers charge for them. The first argument is the operation
// ("chat_completions", "responses", "messages", "count_tokens"); every operation is estimated
// the same way.
//
// When the real input is larger than the estimate (e.g. text of one character per token),
// the call can be charged more than its reservation: docs/budget.md states that bound.
func EstimateInputTokens(_ string, body []byte) int64 {
	text, tokens := int64(len(body)), int64(baseTokens)
	if bytes.Contains(body, []byte(`"tools"`)) {
		tokens += toolsTokens
	}
	for i := 0; i < len(body); {
		q := bytes.IndexByte(body[i:], '"')
		if q < 0 {
			break
		}
		start := i + q + 1
		end := stringEnd(body, start)
		if s := body[start:end]; len(s) >= mediaMinLen && isBase64Image(s) {
			text -= int64(len(s))
			tokens += imageTokens
		}
		i = end + 1
	}
	return tokens + (text+bytesPerToken-1)/bytesPerToken
}

// stringEnd returns the index of the quote closing the JSON string that starts at start (or
// len(body) when it is unterminated).
func stringEnd(body []byte, start int) int {
	for i := start; ; {
		q := bytes.IndexByte(body[i:], '"')
		if q < 0 {
			return len(body)
		}
		e := i + q
		bs := 0
		for j := e - 1; j >= start && body[j] == '\\'; j-- {
			bs++
		}
		if bs%2 == 0 {
			return e
		}
		i = e + 1
	}
}

// Base64 of image file signatures: PNG, JPEG, GIF, WebP (RIFF).
var imageSignatures = [][]byte{[]byte("iVBORw0KGgo"), []byte("/9j/"), []byte("R0lGOD"), []byte("UklGR")}

func isBase64Image(s []byte) bool {
	if bytes.HasPrefix(s, []byte("data:")) {
		semi := bytes.IndexByte(s, ',')
		return semi > 0 && bytes.HasPrefix(s, []byte("data:image/")) && bytes.Contains(s[:semi], []byte(";base64"))
	}
	for _, sig := range imageSignatures {
		if bytes.HasPrefix(s, sig) {
			return true
		}
	}
	return false
}
