package wire

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/posthog/llm-gateway/dataplane/provider"
)

func TestNewEventOwnsItsBytes(t *testing.T) {
	raw := []byte("data: {\"a\":1}\n\n")
	ev := NewEvent("", raw[6:13], raw, true)
	require.Equal(t, `{"a":1}`, string(ev.Data))
	require.Equal(t, string(raw), string(ev.Raw))
	copy(raw, "XXXXXXXXXXXXXXX")
	require.Equal(t, `{"a":1}`, string(ev.Data), "not aliased to the reader's buffer")
	require.Equal(t, "data: {\"a\":1}\n\n", string(ev.Raw))

	joined := []byte("a\nb")
	ev = NewEvent("x", joined, []byte("data: a\ndata: b\n\n"), true)
	require.Equal(t, "a\nb", string(ev.Data))
	require.Equal(t, "data: a\ndata: b\n\n", string(ev.Raw))

	ev = NewEvent("", []byte("{}"), []byte("data: {}\n\n"), false)
	require.Nil(t, ev.Raw)
	require.Equal(t, "{}", string(ev.Data))
}

func TestEndError(t *testing.T) {
	boom := errors.New("reset")
	require.ErrorIs(t, EndError(io.EOF, true), io.EOF)
	require.ErrorIs(t, EndError(io.EOF, false), provider.ErrTruncated)
	err := EndError(fmt.Errorf("read: %w", boom), false)
	require.ErrorIs(t, err, provider.ErrTruncated)
	require.ErrorIs(t, err, boom)
	m := fmt.Errorf("%w: x", provider.ErrMalformed)
	require.Equal(t, m, EndError(m, false))
	ue := &provider.UpstreamError{Status: 200}
	require.Equal(t, error(ue), EndError(ue, false))
}

func TestTextBound(t *testing.T) {
	var x Text
	x.Add(strings.Repeat("a", MaxOutputText-1))
	x.Add("bcd")
	require.True(t, x.Truncated)
	require.Len(t, x.String(), MaxOutputText)
	x.Add("more")
	require.Len(t, x.String(), MaxOutputText)
}

func TestName(t *testing.T) {
	b := []byte("message_start")
	n := Name(b)
	require.Equal(t, "message_start", n)
	require.Zero(t, testing.AllocsPerRun(100, func() { _ = Name(b) }))
	require.Equal(t, "custom", Name([]byte("custom")))
	require.Equal(t, "", Name(nil))
	require.Equal(t, "ping", NameOf("ping"))
}
