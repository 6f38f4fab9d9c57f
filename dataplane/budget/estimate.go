package budget

import (
	"bytes"
	"sync"

	"github.com/posthog/llm-gateway/internal/jsonx"
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
// A body that mentions no image (neither "image" nor a \u escape anywhere) costs three byte
// searches; any other is walked once (jsonx.Walk) to find its images.
//
// When the real input is larger than the estimate (e.g. text of one character per token),
// the call can be charged more than its reservation: docs/budget.md states that bound.
func EstimateInputTokens(op string, body []byte) int64 {
	tokens, text := int64(baseTokens), int64(len(body))
	tools := bytes.Contains(body, toolsKey)
	// A name or value written with \u escapes hides from the byte searches: walk the body.
	if bytes.Contains(body, imageWord) || bytes.Contains(body, unicodeEsc) {
		n, b64, walkedTools := images(op, body)
		tokens += n * imageTokens
		text -= b64
		tools = tools || walkedTools
	}
	if tools {
		tokens += toolsTokens
	}
	return tokens + (text+bytesPerToken-1)/bytesPerToken
}

// images counts the images of a request body (see EstimateInputTokens) and the bytes of
// their base64 payloads, in one pass over the body (jsonx.Walk), and reports whether the body
// defines tools (a top-level "tools" member, however its name is written).
func images(op string, body []byte) (n, b64Bytes int64, tools bool) {
	f := finders.Get().(*imageFinder)
	defer finders.Put(f)
	*f = imageFinder{op: op}
	if jsonx.Walk(body, f) != nil {
		return 0, 0, f.tools // not a body Inspect accepted: everything counts as text
	}
	return f.n, f.b64, f.tools
}

// finders pools imageFinders (a stack of MaxDepth frames: too big to allocate per call).
var finders = sync.Pool{New: func() any { return new(imageFinder) }}

// Where a container sits, for the image finder: only these places hold images a provider
// reads as images.
type role uint8

const (
	rOther      role = iota
	rRoot            // the request object
	rMessages        // chat and messages: messages[]
	rMessage         // messages[i]
	rParts           // messages[i].content[] (chat parts, Anthropic blocks)
	rPart            // messages[i].content[j]
	rImageURL        // chat: a part's image_url object
	rSource          // Anthropic: an image block's source
	rToolResult      // Anthropic: a block's content[] (images count if the block is a tool_result)
	rToolBlock       // Anthropic: an element of a tool_result's content[]
	rInput           // responses: input[]
	rItem            // responses: input[i]
	rItemParts       // responses: input[i].content[] or input[i].output[]
	rItemPart        // responses: an element of those
)

// Member names and "type" values the finder cares about.
type word uint8

const (
	wOther word = iota
	wMessages
	wInput
	wContent
	wOutput
	wType
	wImageURL
	wURL
	wSource
	wData
	wTools
	// "type" values
	wImage
	wInputImage
	wToolResultType
	wBase64
)

var words = map[string]word{
	"messages": wMessages, "input": wInput, "content": wContent, "output": wOutput, "type": wType,
	"image_url": wImageURL, "url": wURL, "source": wSource, "data": wData, "tools": wTools,
}

var typeWords = map[string]word{
	"image_url": wImageURL, "image": wImage, "input_image": wInputImage, "tool_result": wToolResultType,
	"base64": wBase64, "url": wURL,
}

// verdict is what an image payload turned out to be.
type verdict struct {
	image bool
	b64   int64 // bytes of a base64 payload (they are not text)
}

type frame struct {
	role   role
	member word // the member whose value comes next (objects)
	typ    word // the object's "type"
	// url: a chat part's or Responses item's image_url, or a chat image_url object's url;
	// src: the verdict of an Anthropic block's source; data, srcURL: a source's payloads.
	url, src     verdict
	data, srcURL []byte
	// pendN, pendB64: images inside a block's content[], counted if the block is a tool_result.
	pendN, pendB64 int64
}

// imageFinder is the jsonx.Visitor behind images: a stack of the open containers' roles.
type imageFinder struct {
	op     string
	stack  [jsonx.MaxDepth + 1]frame
	depth  int // frames in use
	n, b64 int64
	tools  bool
}

func (f *imageFinder) top() *frame { return &f.stack[f.depth-1] }

func (f *imageFinder) Begin(k jsonx.Kind) {
	r := rOther
	if f.depth == 0 {
		if k == jsonx.Object {
			r = rRoot
		}
	} else {
		p := f.top()
		anthropic := f.op == "messages" || f.op == "count_tokens"
		switch {
		case p.role == rRoot && p.member == wMessages && k == jsonx.Array && f.op != "responses":
			r = rMessages
		case p.role == rRoot && p.member == wInput && k == jsonx.Array && f.op == "responses":
			r = rInput
		case p.role == rMessages && k == jsonx.Object:
			r = rMessage
		case p.role == rMessage && p.member == wContent && k == jsonx.Array:
			r = rParts
		case p.role == rParts && k == jsonx.Object:
			r = rPart
		case p.role == rPart && p.member == wImageURL && k == jsonx.Object && !anthropic:
			r = rImageURL
		case (p.role == rPart || p.role == rToolBlock) && p.member == wSource && k == jsonx.Object && anthropic:
			r = rSource
		case p.role == rPart && p.member == wContent && k == jsonx.Array && anthropic:
			r = rToolResult
		case p.role == rToolResult && k == jsonx.Object:
			r = rToolBlock
		case p.role == rInput && k == jsonx.Object:
			r = rItem
		case p.role == rItem && (p.member == wContent || p.member == wOutput) && k == jsonx.Array:
			r = rItemParts
		case p.role == rItemParts && k == jsonx.Object:
			r = rItemPart
		}
		p.member = wOther
	}
	f.stack[f.depth] = frame{role: r}
	f.depth++
}

func (f *imageFinder) Name(name []byte) {
	fr := f.top()
	fr.member = words[string(name)]
	if fr.role == rRoot && fr.member == wTools {
		f.tools = true
	}
}

func (f *imageFinder) Scalar(k jsonx.Kind, raw []byte) {
	if f.depth == 0 {
		return
	}
	fr := f.top()
	member := fr.member
	fr.member = wOther
	if k != jsonx.String || fr.role == rOther || fr.role == rRoot {
		return
	}
	switch member {
	case wType:
		var buf [32]byte
		if len(raw) <= len(buf) {
			fr.typ = typeWords[string(jsonx.AppendUnquoted(buf[:0], raw))]
		}
	case wImageURL:
		if fr.role == rPart || fr.role == rItem || fr.role == rItemPart {
			fr.url = urlImage(raw)
		}
	case wURL:
		switch fr.role {
		case rImageURL:
			fr.url = urlImage(raw)
		case rSource:
			fr.srcURL = raw
		}
	case wData:
		if fr.role == rSource {
			fr.data = raw
		}
	}
}

func (f *imageFinder) count(v verdict) {
	if v.image {
		f.n++
		f.b64 += v.b64
	}
}

func (f *imageFinder) End() {
	fr := f.top()
	f.depth--
	var parent *frame
	if f.depth > 0 {
		parent = f.top()
	}
	switch fr.role {
	case rImageURL:
		parent.url = fr.url
	case rSource:
		switch fr.typ {
		case wBase64:
			if len(fr.data) >= 2 && wellFormedBase64(fr.data[1:len(fr.data)-1]) {
				parent.src = verdict{image: true, b64: int64(len(fr.data) - 2)}
			}
		case wURL:
			parent.src = urlImage(fr.srcURL)
		}
	case rPart:
		switch {
		case fr.typ == wImageURL && f.op == "chat_completions":
			f.count(fr.url)
		case fr.typ == wImage:
			f.count(fr.src)
		case fr.typ == wToolResultType:
			f.n, f.b64 = f.n+fr.pendN, f.b64+fr.pendB64
		}
	case rToolBlock:
		if fr.typ == wImage && fr.src.image && f.depth >= 2 {
			block := &f.stack[f.depth-2] // the block whose content[] this is
			block.pendN, block.pendB64 = block.pendN+1, block.pendB64+fr.src.b64
		}
	case rItem, rItemPart:
		if fr.typ == wInputImage {
			f.count(fr.url)
		}
	}
}

// urlImage reads an image URL (a raw JSON string): an http(s) URL is an image (its bytes stay
// text), a data URL one when it is data:image/...;base64, followed by well-formed base64 (its
// bytes are the image's). Anything else is text. A URL written with escapes is never
// well-formed: base64 and URLs need none.
func urlImage(raw []byte) verdict {
	if len(raw) < 2 {
		return verdict{}
	}
	s := raw[1 : len(raw)-1]
	switch {
	case bytes.HasPrefix(s, httpsPrefix) || bytes.HasPrefix(s, httpPrefix):
		return verdict{image: true}
	case bytes.HasPrefix(s, dataImagePrefix):
		comma := bytes.IndexByte(s, ',')
		if comma < 0 || !bytes.HasSuffix(s[:comma], base64Marker) || !wellFormedBase64(s[comma+1:]) {
			return verdict{}
		}
		return verdict{image: true, b64: int64(len(s))}
	}
	return verdict{}
}

var (
	httpsPrefix     = []byte("https://")
	httpPrefix      = []byte("http://")
	dataImagePrefix = []byte("data:image/")
	base64Marker    = []byte(";base64")
)

// wellFormedBase64 reports whether s is standard base64 (RFC 4648 alphabet, at most two '='
// of padding at the end, a length that encodes whole bytes), the only encoding the providers
// accept for image data.
func wellFormedBase64(s []byte) bool {
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
