package event

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/posthog/llm-gateway/internal/jsonx"
)

func TestAppendMicrosUSD(t *testing.T) {
	for m, want := range map[int64]string{
		0: "0", 1: "0.000001", 26: "0.000026", 16050: "0.01605", 3_000_000: "3", 12_345_678: "12.345678", -5: "-0.000005",
	} {
		require.Equal(t, want, string(appendMicrosUSD(nil, m)))
	}
}

func TestAppendString(t *testing.T) {
	for _, s := range []string{"", "plain", `q"b\s`, "ctl\x00\x1f\n\t\r", "ünï\u2028x", "bad\xffutf8", "<&>"} {
		b := jsonx.AppendString(nil, s)
		var back string
		require.NoError(t, json.Unmarshal(b, &back), "%q -> %s", s, b)
		require.Equal(t, strings.ToValidUTF8(s, "\ufffd"), back)
	}
}

func TestHostOf(t *testing.T) {
	for u, want := range map[string]string{
		"https://ai-gateway.us.posthog.com/v1": "ai-gateway.us.posthog.com",
		"http://127.0.0.1:8080/x":              "127.0.0.1",
		"https://user@API.openai.com":          "api.openai.com",
		"https://[::1]:443/":                   "[::1]",
	} {
		require.Equal(t, want, hostOf(u))
	}
}
