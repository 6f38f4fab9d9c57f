package fakeprovider

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestAppendString(t *testing.T) {
	for _, s := range []string{"", "plain", `quote " and \ backslash`, "line\nbreak\ttab\rcr", "\x00\x01\x1f ctl", "ünïcødé ✓ 🚀", "</script>&"} {
		b := appendString(nil, s)
		require.True(t, json.Valid(b), "%q -> %s", s, b)
		var back string
		require.NoError(t, json.Unmarshal(b, &back))
		require.Equal(t, s, back)
	}
}

func TestSplitText(t *testing.T) {
	cases := []struct {
		text string
		n    int
		want []string
	}{
		{"abcdefgh", 4, []string{"ab", "cd", "ef", "gh"}},
		{"abcdefghij", 4, []string{"abc", "def", "gh", "ij"}},
		{"abc", 10, []string{"a", "b", "c"}},
		{"abc", 1, []string{"abc"}},
		{"", 4, []string{""}},
		{"héllo wörld", 3, []string{"héll", "o wö", "rld"}},
	}
	for _, tc := range cases {
		got := splitText(tc.text, tc.n)
		require.Equal(t, tc.want, got, "%q/%d", tc.text, tc.n)
		require.Equal(t, tc.text, strings.Join(got, ""))
	}
}

func TestEstimateTokens(t *testing.T) {
	anthropic := []byte(`{"model":"m","max_tokens":5,"system":"12345678","messages":[{"role":"user","content":"abcd"},{"role":"assistant","content":[{"type":"text","text":"efgh"}]}]}`)
	require.Equal(t, int64(4), estimateTokens(anthropic, "system", "messages"), "16 bytes of text")
	responses := []byte(`{"model":"m","instructions":"abcd","input":[{"role":"user","content":"efgh1234"}]}`)
	require.Equal(t, int64(3), estimateTokens(responses, "input", "instructions"))
	require.Equal(t, int64(1), estimateTokens([]byte(`{}`), "messages"), "at least one token")
	require.Equal(t, int64(3), countWords(" Hello  from\tfake "))
	require.Equal(t, int64(1), countWords(""))
}
