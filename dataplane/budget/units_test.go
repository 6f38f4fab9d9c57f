package budget

import (
	"bytes"
	"encoding/base64"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/posthog/llm-gateway/dataplane/snapshot"
)

func TestBucketOf(t *testing.T) {
	d := func(y int, m time.Month, day, h, min int) time.Time {
		return time.Date(y, m, day, h, min, 0, 0, time.UTC)
	}
	cases := []struct {
		window     string
		at         time.Time
		id         string
		start, end time.Time
	}{
		{snapshot.WindowHour, d(2025, 1, 29, 10, 20), "2025-01-29T10", d(2025, 1, 29, 10, 0), d(2025, 1, 29, 11, 0)},
		{snapshot.WindowHour, d(2025, 12, 31, 23, 59), "2025-12-31T23", d(2025, 12, 31, 23, 0), d(2026, 1, 1, 0, 0)},
		{snapshot.WindowDay, d(2024, 2, 29, 23, 59), "2024-02-29", d(2024, 2, 29, 0, 0), d(2024, 3, 1, 0, 0)},
		{snapshot.WindowWeek, d(2025, 1, 29, 10, 20), "2025-W05", d(2025, 1, 27, 0, 0), d(2025, 2, 3, 0, 0)},
		{snapshot.WindowWeek, d(2025, 2, 2, 23, 59), "2025-W05", d(2025, 1, 27, 0, 0), d(2025, 2, 3, 0, 0)},   // Sunday
		{snapshot.WindowWeek, d(2025, 2, 3, 0, 0), "2025-W06", d(2025, 2, 3, 0, 0), d(2025, 2, 10, 0, 0)},     // Monday
		{snapshot.WindowWeek, d(2024, 12, 31, 12, 0), "2025-W01", d(2024, 12, 30, 0, 0), d(2025, 1, 6, 0, 0)}, // ISO year
		{snapshot.WindowWeek, d(2021, 1, 3, 12, 0), "2020-W53", d(2020, 12, 28, 0, 0), d(2021, 1, 4, 0, 0)},
		{snapshot.WindowMonth, d(2025, 1, 31, 23, 59), "2025-01", d(2025, 1, 1, 0, 0), d(2025, 2, 1, 0, 0)},
		{snapshot.WindowMonth, d(2025, 12, 1, 0, 0), "2025-12", d(2025, 12, 1, 0, 0), d(2026, 1, 1, 0, 0)},
	}
	for _, tc := range cases {
		t.Run(tc.window+" "+tc.at.Format(time.RFC3339), func(t *testing.T) {
			b := bucketOf(tc.window, tc.at)
			require.Equal(t, bucket{id: tc.id, start: tc.start, end: tc.end}, b)
		})
	}
	// Local time zones do not move UTC windows.
	ny, err := time.LoadLocation("America/New_York")
	if err == nil {
		require.Equal(t, "2025-01-30", bucketOf(snapshot.WindowDay, time.Date(2025, 1, 29, 20, 0, 0, 0, ny)).id)
	}
}

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
			if e >= minuteMs {
				prev, cur, e = cur, 0, e-minuteMs
			}
			require.LessOrEqual(t, slidingCount(prev, cur, e)+tc.need, tc.limit)
		})
	}
}

func TestUSD(t *testing.T) {
	for micros, want := range map[int64]string{0: "$0.00", 1: "$0.000001", 3500: "$0.0035", 12_500_000: "$12.50", 1_234_567: "$1.234567", -50_000: "-$0.05"} {
		require.Equal(t, want, usd(micros))
	}
}

// The key schema is shared with controllers/internal/budgetstatus and docs/budget.md: these
// exact strings are tested on both sides.
func TestKeySchema(t *testing.T) {
	k := keysFor("team-a")
	require.Equal(t, "llmgw:{team-a}:spend:Day:2025-01-29", k.spend("Day", "2025-01-29"))
	require.Equal(t, "llmgw:{team-a}:spend:Week:2025-W05", k.spend("Week", bucketOf("Week", t0).id))
	require.Equal(t, "llmgw:{team-a}:res", k.res())
	require.Equal(t, "llmgw:{team-a}:resamt", k.resAmt())
	require.Equal(t, "llmgw:{team-a}:held", k.held())
	require.Equal(t, "llmgw:{team-a}:trip", k.trip())
	require.Equal(t, "llmgw:{team-a}:rpm:29000000", k.rpm(29_000_000))
	require.Equal(t, "llmgw:{team-a}:tpm:29000000", k.tpm(29_000_000))
	require.Equal(t, "llmgw:{team-a}:vel:29000000", k.vel(29_000_000))
	require.Equal(t, "llmgw:{team-a}:soft:Hour:2025-01-29T10", k.soft("Hour", "2025-01-29T10"))
	require.Equal(t, "llmgw:{team-a}:settled:req-1", k.settled("req-1"))
	require.Equal(t, "llmgw:{a%7Bb%7D%25c}:held", keysFor("a{b}%c").held(), "braces never break the hash tag")
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

func BenchmarkEstimateInputTokens(b *testing.B) {
	body := []byte(`{"model":"gpt-4o","messages":[{"role":"user","content":"` + strings.Repeat("hello world ", 4000) + `"}]}`)
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		EstimateInputTokens("chat_completions", body)
	}
}
