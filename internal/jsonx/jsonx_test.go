package jsonx

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestAppendString(t *testing.T) {
	for in, want := range map[string]string{
		"":              `""`,
		"plain":         `"plain"`,
		"q\"b\\":        `"q\"b\\"`,
		"a\nb\rc\td":    `"a\nb\rc\td"`,
		"\x00\x1f":      `"\u0000\u001f"`,
		"<html>&":       `"<html>&"`,
		"\u2028\u2029":  `"\u2028\u2029"`,
		"bad \xff utf8": "\"bad \ufffd utf8\"",
		"emoji 😀 ok":    `"emoji 😀 ok"`,
	} {
		require.Equal(t, want, string(AppendString(nil, in)), "%q", in)
	}
}

// Whatever the input, the output is a JSON string that decodes to the input (with invalid
// UTF-8 replaced, as encoding/json does).
func FuzzAppendString(f *testing.F) {
	for _, s := range []string{"", "a", "\"", "\\", "\x00", "\xff", "\u2028", "😀", "a\nb"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		out := AppendString([]byte("x"), s)[1:]
		var got string
		require.NoError(t, json.Unmarshal(out, &got), "%q", out)
		var want string
		ref, err := json.Marshal(s)
		require.NoError(t, err)
		require.NoError(t, json.Unmarshal(ref, &want))
		require.Equal(t, want, got)
	})
}
