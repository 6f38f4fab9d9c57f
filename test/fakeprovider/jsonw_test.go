package fakeprovider

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// nested wraps a messages list holding one text part in depth levels of single-element arrays.
func nested(depth int) []byte {
	return []byte(`{"messages":` + strings.Repeat("[", depth) + `{"content":"abcdefgh"}` + strings.Repeat("]", depth) + `}`)
}

func TestEstimateTokensLooksOnlySoDeep(t *testing.T) {
	require.Equal(t, int64(2), estimateTokens(nested(3), "messages"), "8 bytes of text near the top count")
	require.Equal(t, int64(1), estimateTokens(nested(maxTextDepth+2), "messages"), "text below the bound does not")
	// A body as deep as a hostile client can send ends at the bound instead of walking every
	// level (which re-reads the rest of the document each time).
	require.Equal(t, int64(1), estimateTokens(nested(1_000_000), "messages"))
}
