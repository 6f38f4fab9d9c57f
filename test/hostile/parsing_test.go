package hostile

import (
	"io"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// parsingCases: the gateway acts on exactly what the provider will read, and no body can
// exhaust its stack or memory.
func parsingCases() []hostileCase {
	const hello = `"messages":[{"role":"user","content":"hello"}]`
	// Team beta has no spending limits: a body the gateway misreads is otherwise admitted
	// (and would reach the provider). Team alpha has the per-request ceiling the cases about
	// the cost estimate need.
	chatP := func(body string) request { return post("/v1/chat/completions", auth(keyBeta), body) }
	msgP := func(body string) request { return post("/v1/messages", anthropicAuth(keyBeta), body) }
	respP := func(body string) request { return post("/v1/responses", auth(keyBeta), body) }
	chatA := func(body string) request { return post("/v1/chat/completions", auth(keyAlpha), body) }
	msgA := func(body string) request { return post("/v1/messages", anthropicAuth(keyAlpha), body) }

	cs := []hostileCase{
		// Depth: a scanner bounds nesting before anything recursive runs.
		{name: "100 MB of [ with a Content-Length",
			run: expect(request{method: "POST", path: "/v1/chat/completions", header: auth(keyBeta),
				stream: repeat('[', 100<<20), length: 100 << 20}, openAI, 413)},
		{name: "100 MB of [ chunked",
			run: expect(request{method: "POST", path: "/v1/messages", header: anthropicAuth(keyBeta),
				stream: repeat('[', 100<<20), length: -1}, anthropic, 413)},
		{name: "a body of [ as large as --max-body-bytes",
			run: expect(request{method: "POST", path: "/v1/chat/completions", header: auth(keyBeta),
				stream: repeat('[', maxBodyBytes), length: maxBodyBytes}, openAI, 400)},
		{name: "10^6 nested objects inside a valid request",
			run: expect(request{method: "POST", path: "/v1/chat/completions", header: auth(keyBeta),
				stream: nested(`{"model":"`+modelGPT+`","max_tokens":100,`+hello+`,"metadata":`, `{"a":`, `1`, `}`, 1_000_000, `}`),
				length: nestedLen(`{"model":"`+modelGPT+`","max_tokens":100,`+hello+`,"metadata":`, `{"a":`, `1`, `}`, 1_000_000, `}`)},
				openAI, 400)},
		{name: "10^6 nested arrays in Anthropic content",
			run: expect(request{method: "POST", path: "/v1/messages", header: anthropicAuth(keyBeta),
				stream: nested(`{"model":"`+modelClaude+`","max_tokens":100,"messages":[{"role":"user","content":`, `[`, `"x"`, `]`, 1_000_000, `}]}`),
				length: nestedLen(`{"model":"`+modelClaude+`","max_tokens":100,"messages":[{"role":"user","content":`, `[`, `"x"`, `]`, 1_000_000, `}]}`)},
				anthropic, 400)},

		// Duplicate keys: the gateway and the provider (last key wins) must read the same
		// value. A second model that no route serves is either rejected as a duplicate (400)
		// or, read as the provider reads it, an unknown model (404); never sent.
		{name: "duplicate model keys",
			run: expect(chatP(`{"model":"`+modelGPT+`","max_tokens":100,`+hello+`,"model":"gpt-5-pro"}`), openAI, 400, 404)},
		{name: "duplicate model key spelled with an escape",
			run: expect(chatP(`{"model":"`+modelGPT+`","max_tokens":100,`+hello+`,"mod\u0065l":"gpt-5-pro"}`), openAI, 400, 404)},
		{name: "duplicate model keys (Anthropic)",
			run: expect(msgP(`{"model":"`+modelClaude+`","max_tokens":100,`+hello+`,"model":"claude-opus-4-1"}`), anthropic, 400, 404)},
		{name: "duplicate stream keys",
			run: expect(msgP(`{"model":"`+modelClaude+`","max_tokens":100,"stream":false,`+hello+`,"stream":true}`), anthropic, 400)},
		{name: "duplicate max_tokens keys",
			run: expect(msgP(`{"model":"`+modelClaude+`","max_tokens":100,`+hello+`,"max_tokens":100000000}`), anthropic, 400)},
		{name: "duplicate include_usage in stream_options",
			run: expect(chatP(`{"model":"`+modelGPT+`","max_tokens":100,"stream":true,"stream_options":{"include_usage":true,"include_usage":false},`+hello+`}`), openAI, 400)},
		{name: "duplicate keys in thinking",
			run: expect(msgP(`{"model":"`+modelClaude+`","max_tokens":2048,"thinking":{"type":"enabled","budget_tokens":1024,"budget_tokens":60000},`+hello+`}`), anthropic, 400)},
		{name: "duplicate keys in metadata",
			run: expect(msgP(`{"model":"`+modelClaude+`","max_tokens":100,"metadata":{"user_id":"a","user_id":"b"},`+hello+`}`), anthropic, 400)},
		{name: "duplicate keys in a tools entry",
			run: expect(msgP(`{"model":"`+modelClaude+`","max_tokens":100,"tools":[{"name":"t","input_schema":{"type":"object"},"cache_control":{"type":"ephemeral","ttl":"5m","ttl":"1h"}}],`+hello+`}`), anthropic, 400)},
		{name: "duplicate n keys",
			run: expect(chatP(`{"model":"`+modelGPT+`","max_tokens":100,"n":1,`+hello+`,"n":64}`), openAI, 400)},

		// Types: what a lenient provider would coerce, the gateway rejects.
		{name: "stream: 1", run: expect(chatP(`{"model":"`+modelGPT+`","max_tokens":100,"stream":1,`+hello+`}`), openAI, 400)},
		{name: `stream: "true"`, run: expect(msgP(`{"model":"`+modelClaude+`","max_tokens":100,"stream":"true",`+hello+`}`), anthropic, 400)},
		{name: `max_tokens: "100"`, run: expect(msgP(`{"model":"`+modelClaude+`","max_tokens":"100",`+hello+`}`), anthropic, 400)},
		{name: "max_tokens: 1.5", run: expect(msgP(`{"model":"`+modelClaude+`","max_tokens":1.5,`+hello+`}`), anthropic, 400)},
		{name: "max_tokens: 1e400", run: expect(chatP(`{"model":"`+modelGPT+`","max_tokens":1e400,`+hello+`}`), openAI, 400)},
		{name: `max_completion_tokens: "4096"`, run: expect(chatP(`{"model":"`+modelGPT+`","max_completion_tokens":"4096",`+hello+`}`), openAI, 400)},
		{name: `max_output_tokens: [1]`, run: expect(respP(`{"model":"`+modelGPT+`","max_output_tokens":[1],"input":"hello"}`), openAI, 400)},
		{name: "n: 0", run: expect(chatP(`{"model":"`+modelGPT+`","max_tokens":100,"n":0,`+hello+`}`), openAI, 400)},
		{name: "n: -1", run: expect(chatP(`{"model":"`+modelGPT+`","max_tokens":100,"n":-1,`+hello+`}`), openAI, 400)},
		{name: `n: "2"`, run: expect(chatP(`{"model":"`+modelGPT+`","max_tokens":100,"n":"2",`+hello+`}`), openAI, 400)},
		{name: "n: 2.5", run: expect(chatP(`{"model":"`+modelGPT+`","max_tokens":100,"n":2.5,`+hello+`}`), openAI, 400)},

		// n multiplies the output: one choice of max_tokens 1000 fits team alpha's $0.20
		// per-request ceiling, 64 do not (or the route caps n).
		{name: "n: 64", reach: []string{"provider"},
			run: func(t *testing.T, s *suite) {
				one := s.gw.do(t, chatA(`{"model":"`+modelGPT+`","max_tokens":1000,`+hello+`}`))
				require.Equal(t, 200, one.status, "one choice fits the ceiling: %s", one)
				many := s.gw.do(t, chatA(`{"model":"`+modelGPT+`","max_tokens":1000,"n":64,`+hello+`}`))
				requireError(t, many, openAI, 429, 400)
				require.Len(t, s.provider.tap.requests(), 1, "64 choices never reached the provider")
			}},

		// The image estimate cannot be gamed: a megabyte of text is over alpha's ceiling at
		// bytes/3, and stays over it when it starts like an image.
		{name: "a megabyte of text is over the per-request ceiling (control)",
			run: expect(chatA(`{"model":"`+modelGPT+`","max_tokens":100,"messages":[{"role":"user","content":"`+megabyteOfText("")+`"}]}`), openAI, 429)},
		{name: "fake image: text behind a PNG signature",
			run: expect(chatA(`{"model":"`+modelGPT+`","max_tokens":100,"messages":[{"role":"user","content":"`+megabyteOfText("iVBORw0KGgo")+`"}]}`), openAI, 429, 400)},
		{name: "fake image: text behind a data:image URL prefix",
			run: expect(chatA(`{"model":"`+modelGPT+`","max_tokens":100,"messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"`+
				megabyteOfText("data:image/png;base64,")+`"}}]}]}`), openAI, 429, 400)},
		{name: "fake image: Anthropic base64 source that is text",
			run: expect(msgA(`{"model":"`+modelClaude+`","max_tokens":100,"messages":[{"role":"user","content":[{"type":"image","source":{"type":"base64","media_type":"image/png","data":"`+
				megabyteOfText("/9j/")+`"}}]}]}`), anthropic, 429, 400)},
		{name: "fake image: text behind a GIF signature in a text block",
			run: expect(msgA(`{"model":"`+modelClaude+`","max_tokens":100,"messages":[{"role":"user","content":[{"type":"text","text":"`+
				megabyteOfText("R0lGOD")+`"}]}]}`), anthropic, 429, 400)},
	}
	return cs
}

// megabyteOfText is prefix followed by about 1 MiB of words (not base64: spaces).
func megabyteOfText(prefix string) string {
	return prefix + strings.Repeat("lorem ipsum dolor sit amet ", (1<<20)/27)
}

// nested writes head, n times open, leaf, n times close, then foot.
func nested(head, open, leaf, close string, n int, foot string) func(w io.Writer) error {
	return func(w io.Writer) error {
		if _, err := io.WriteString(w, head); err != nil {
			return err
		}
		for _, part := range []string{open, close} {
			chunk := strings.Repeat(part, 8192)
			for left := n; left > 0; {
				k := min(left, 8192)
				if _, err := io.WriteString(w, chunk[:k*len(part)]); err != nil {
					return err
				}
				left -= k
			}
			if part == open {
				if _, err := io.WriteString(w, leaf); err != nil {
					return err
				}
			}
		}
		_, err := io.WriteString(w, foot)
		return err
	}
}

func nestedLen(head, open, leaf, close string, n int, foot string) int64 {
	return int64(len(head) + n*len(open) + len(leaf) + n*len(close) + len(foot))
}
