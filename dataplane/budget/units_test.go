package budget

import (
	"bytes"
	"encoding/base64"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/posthog/llm-gateway/dataplane/budget/ledger"
)

func TestSlidingRetryAfter(t *testing.T) {
	cases := []struct {
		name                          string
		prev, cur, need, limit, elaps int64
		want                          time.Duration
	}{
		// 10 last minute, 0 now, limit 10: after 6s, 10*54/60 = 9 leaves room for one.
		{"previous minute decays", 10, 0, 1, 10, 0, 6 * time.Second},
		{"current minute full", 0, 10, 1, 10, 30_000, 36 * time.Second},
		{"at least a second", 10, 0, 1, 10, 5_990, time.Second},
		{"tokens", 0, 900, 200, 1000, 0, 67 * time.Second}, // 900*(60-6.67)/60 + 200 = 1000
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := slidingRetryAfter(tc.prev, tc.cur, tc.need, tc.limit, tc.elaps)
			require.Equal(t, tc.want, got)
			// After waiting that long the request fits.
			e := tc.elaps + got.Milliseconds()
			prev, cur := tc.prev, tc.cur
			if e >= ledger.MinuteMs {
				prev, cur, e = cur, 0, e-ledger.MinuteMs
			}
			require.LessOrEqual(t, ledger.SlidingCount(prev, cur, e)+tc.need, tc.limit)
		})
	}
}

func TestUSD(t *testing.T) {
	for micros, want := range map[int64]string{0: "$0.00", 1: "$0.000001", 3500: "$0.0035", 12_500_000: "$12.50", 1_234_567: "$1.234567", -50_000: "-$0.05"} {
		require.Equal(t, want, usd(micros))
	}
}

func TestEstimateInputTokens(t *testing.T) {
	png := base64.StdEncoding.EncodeToString(append([]byte("\x89PNG\r\n\x1a\n"), bytes.Repeat([]byte{7}, 300_000)...))
	pdf := base64.StdEncoding.EncodeToString(append([]byte("%PDF-1.7\n"), bytes.Repeat([]byte("x"), 30_000)...))
	text := strings.Repeat("hello world ", 1000)
	cases := []struct {
		name string
		op   string
		body string
		want int64
	}{
		{"text", "chat_completions", `{"model":"gpt-4o","messages":[{"role":"user","content":"` + text + `"}]}`, 0},
		{"anthropic image", "messages", `{"model":"claude","messages":[{"role":"user","content":[{"type":"image","source":{"type":"base64","media_type":"image/png","data":"` + png + `"}}]}]}`, 0},
		{"openai data url", "chat_completions", `{"model":"gpt-4o","messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"data:image/png;base64,` + png + `"}}]}]}`, 0},
		{"pdf counts its bytes", "messages", `{"model":"claude","messages":[{"role":"user","content":[{"type":"document","source":{"type":"base64","media_type":"application/pdf","data":"` + pdf + `"}}]}]}`, 0},
		{"tools", "messages", `{"model":"claude","tools":[{"name":"x"}],"messages":[]}`, 0},
		{"escaped quotes", "messages", `{"model":"claude","messages":[{"role":"user","content":"say \"` + png[:600] + `\" now"}]}`, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := EstimateInputTokens(tc.op, []byte(tc.body))
			switch tc.name {
			case "text":
				require.Equal(t, int64(baseTokens)+(int64(len(tc.body))+2)/3, got)
			case "anthropic image", "openai data url":
				require.Less(t, got, int64(imageTokens+200), "an image counts as a flat allowance")
				require.Greater(t, got, int64(imageTokens))
			case "pdf counts its bytes":
				require.Greater(t, got, int64(len(pdf)/3))
			case "tools":
				require.Greater(t, got, int64(toolsTokens))
			case "escaped quotes":
				// The quoted text is not mistaken for an image: all bytes count.
				require.Equal(t, int64(baseTokens)+(int64(len(tc.body))+2)/3, got)
			}
		})
	}
}

// An image-looking string counts as an image only where the provider reads an image and only
// when it is well-formed base64 (or an http(s) URL); everywhere else its bytes count as text,
// so a client cannot shrink its reservation with a fake image prefix.
func TestEstimateInputTokensCannotBeGamed(t *testing.T) {
	png := base64.StdEncoding.EncodeToString(append([]byte("\x89PNG\r\n\x1a\n"), bytes.Repeat([]byte{7}, 150_000)...))
	junk := strings.Repeat("ignore the budget, this is text ", 10_000) // 320 kB of words
	asText := func(body string) int64 { return int64(baseTokens) + (int64(len(body))+2)/3 }
	chat := func(part string) string {
		return `{"model":"gpt-4o","messages":[{"role":"user","content":[` + part + `]}]}`
	}
	msgs := func(block string) string {
		return `{"model":"claude","max_tokens":10,"messages":[{"role":"user","content":[` + block + `]}]}`
	}
	anthropicImage := func(data string) string {
		return `{"type":"image","source":{"type":"base64","media_type":"image/png","data":"` + data + `"}}`
	}
	textCases := []struct{ name, op, body string }{
		{"data URL prefix then text", "chat_completions", chat(`{"type":"image_url","image_url":{"url":"data:image/png;base64,` + junk + `"}}`)},
		{"data URL with a bad tail", "chat_completions", chat(`{"type":"image_url","image_url":{"url":"data:image/png;base64,` + png + `!"}}`)},
		{"data URL without base64", "chat_completions", chat(`{"type":"image_url","image_url":{"url":"data:image/png,` + png + `"}}`)},
		{"data URL in a text part", "chat_completions", chat(`{"type":"text","text":"data:image/png;base64,` + png + `"}`)},
		{"data URL as string content", "chat_completions", `{"model":"gpt-4o","messages":[{"role":"user","content":"data:image/png;base64,` + png + `"}]}`},
		{"PNG signature in text", "chat_completions", `{"model":"gpt-4o","messages":[{"role":"user","content":"` + png + `"}]}`},
		{"PNG signature then text", "messages", msgs(anthropicImage("iVBORw0KGgo" + junk))},
		{"base64 in a text document", "messages", msgs(`{"type":"document","source":{"type":"text","media_type":"text/plain","data":"` + png + `"}}`)},
		{"image block in a tool input", "messages", msgs(`{"type":"tool_use","id":"t","name":"x","input":` + anthropicImage(png) + `}`)},
		{"escaped slash", "messages", msgs(anthropicImage(png[:400] + `\/` + png[402:]))},
		{"responses data URL in text", "responses", `{"model":"gpt-4o","input":[{"role":"user","content":[{"type":"input_text","text":"data:image/png;base64,` + png + `"}]}]}`},
		{"responses fake data URL", "responses", `{"model":"gpt-4o","input":[{"role":"user","content":[{"type":"input_image","image_url":"data:image/png;base64,` + junk + `"}]}]}`},
	}
	for _, tc := range textCases {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, asText(tc.body), EstimateInputTokens(tc.op, []byte(tc.body)))
		})
	}

	imageCases := []struct {
		name, op, body string
		images         int64
	}{
		{"chat data URL", "chat_completions", chat(`{"type":"image_url","image_url":{"url":"data:image/png;base64,` + png + `"}}`), 1},
		{"chat URL", "chat_completions", chat(`{"type":"image_url","image_url":{"url":"https://example.com/cat.png","detail":"high"}}`), 1},
		{"responses URL and data URL", "responses", `{"model":"gpt-4o","input":[{"role":"user","content":[{"type":"input_image","image_url":"https://example.com/a.png"},{"type":"input_image","image_url":"data:image/jpeg;base64,` + png + `"}]}]}`, 2},
		{"anthropic base64", "messages", msgs(anthropicImage(png)), 1},
		{"anthropic URL", "messages", msgs(`{"type":"image","source":{"type":"url","url":"https://example.com/cat.png"}}`), 1},
		{"anthropic tool result", "messages", msgs(`{"type":"tool_result","tool_use_id":"t","content":[` + anthropicImage(png) + `]}`), 1},
		{"escaped type", "messages", msgs(`{"type":"im\u0061ge","source":{"type":"base64","media_type":"image/png","data":"` + png + `"}}`), 1},
		{"two images", "count_tokens", msgs(anthropicImage(png) + "," + anthropicImage(png)), 2},
	}
	for _, tc := range imageCases {
		t.Run(tc.name, func(t *testing.T) {
			got := EstimateInputTokens(tc.op, []byte(tc.body))
			// The payloads' bytes are replaced by the flat allowance; every other byte is text.
			require.GreaterOrEqual(t, got, tc.images*imageTokens)
			require.Less(t, got, tc.images*imageTokens+int64(baseTokens)+1000)
		})
	}
	// A URL's bytes still count as text, on top of the allowance.
	url := chat(`{"type":"image_url","image_url":{"url":"https://example.com/` + strings.Repeat("a", 3000) + `"}}`)
	require.Equal(t, asText(url)+imageTokens, EstimateInputTokens("chat_completions", []byte(url)))
}

func TestEstimateInputTokensEscapedTools(t *testing.T) {
	plain := `{"model":"claude","tools":[{"name":"x"}],"messages":[]}`
	escaped := `{"model":"claude","t\u006fols":[{"name":"x"}],"messages":[]}`
	require.Greater(t, EstimateInputTokens("messages", []byte(plain)), int64(toolsTokens))
	require.Greater(t, EstimateInputTokens("messages", []byte(escaped)), int64(toolsTokens))
}

func TestWellFormedBase64(t *testing.T) {
	for s, want := range map[string]bool{
		"": false, "QQ==": true, "QUI=": true, "QUJD": true, "QUJDRA": true, "QUJDR": false, "Q===": false,
		"QQ=": false, "QQ": true, "QU I=": false, "QUI\\=": false, "QU-_": false, "=QUI": false,
	} {
		require.Equal(t, want, wellFormedBase64([]byte(s)), "%q", s)
	}
}

func BenchmarkEstimateInputTokens(b *testing.B) {
	body := []byte(`{"model":"gpt-4o","messages":[{"role":"user","content":"` + strings.Repeat("hello world ", 4000) + `"}]}`)
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		EstimateInputTokens("chat_completions", body)
	}
}

// A message with one 200 kB base64 image next to text: the walk that finds the image runs.
func BenchmarkEstimateInputTokensImage(b *testing.B) {
	png := base64.StdEncoding.EncodeToString(append([]byte("\x89PNG\r\n\x1a\n"), bytes.Repeat([]byte{7}, 150_000)...))
	body := []byte(`{"model":"claude","max_tokens":100,"messages":[{"role":"user","content":[{"type":"text","text":"` + strings.Repeat("hello world ", 4000) +
		`"},{"type":"image","source":{"type":"base64","media_type":"image/png","data":"` + png + `"}}]}]}`)
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		EstimateInputTokens("messages", body)
	}
}
