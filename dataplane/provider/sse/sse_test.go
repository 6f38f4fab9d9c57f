package sse

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/stretchr/testify/require"

	"github.com/posthog/llm-gateway/dataplane/provider"
)

type ev struct{ name, data, raw string }

func readAll(t testing.TB, r io.Reader, max int) ([]ev, error) {
	t.Helper()
	sr := NewReader(r, max)
	var out []ev
	for {
		e, err := sr.Next()
		if err != nil {
			return out, err
		}
		out = append(out, ev{string(e.Name), string(e.Data), string(e.Raw)})
		if len(out) > 10000 {
			t.Fatal("too many events")
		}
	}
}

func TestReader(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []ev
		err  error
	}{
		{
			name: "openai chat data only",
			in:   "data: {\"a\":1}\n\ndata: [DONE]\n\n",
			want: []ev{{"", `{"a":1}`, "data: {\"a\":1}\n\n"}, {"", "[DONE]", "data: [DONE]\n\n"}},
			err:  io.EOF,
		},
		{
			name: "named events",
			in:   "event: ping\ndata: {\"type\":\"ping\"}\n\nevent: message_stop\ndata: {}\n\n",
			want: []ev{{"ping", `{"type":"ping"}`, "event: ping\ndata: {\"type\":\"ping\"}\n\n"}, {"message_stop", "{}", "event: message_stop\ndata: {}\n\n"}},
			err:  io.EOF,
		},
		{
			name: "crlf",
			in:   "event: a\r\ndata: x\r\n\r\ndata: y\r\n\r\n",
			want: []ev{{"a", "x", "event: a\r\ndata: x\r\n\r\n"}, {"", "y", "data: y\r\n\r\n"}},
			err:  io.EOF,
		},
		{
			name: "multi-line data",
			in:   "data: a\ndata: b\ndata:c\n\n",
			want: []ev{{"", "a\nb\nc", "data: a\ndata: b\ndata:c\n\n"}},
			err:  io.EOF,
		},
		{
			name: "comments kept in raw, comment-only blocks skipped",
			in:   ": keep-alive\n\n: note\ndata: x\n\n\n\n",
			want: []ev{{"", "x", ": note\ndata: x\n\n"}},
			err:  io.EOF,
		},
		{
			name: "event without data is skipped",
			in:   "event: a\n\ndata: b\n\n",
			want: []ev{{"", "b", "data: b\n\n"}},
			err:  io.EOF,
		},
		{
			name: "only one leading space stripped, id and retry ignored",
			in:   "id: 7\nretry: 10\ndata:  two\n\n",
			want: []ev{{"", " two", "id: 7\nretry: 10\ndata:  two\n\n"}},
			err:  io.EOF,
		},
		{
			name: "field without colon",
			in:   "data\n\n",
			want: []ev{{"", "", "data\n\n"}},
			err:  io.EOF,
		},
		{
			name: "last event without blank line",
			in:   "data: a\n\ndata: [DONE]\n",
			want: []ev{{"", "a", "data: a\n\n"}, {"", "[DONE]", "data: [DONE]\n\n"}},
			err:  io.EOF,
		},
		{
			name: "ends inside a line",
			in:   "data: a\n\ndata: {\"trunc",
			want: []ev{{"", "a", "data: a\n\n"}},
			err:  provider.ErrTruncated,
		},
		{
			name: "empty input",
			in:   "",
			err:  io.EOF,
		},
	}
	for _, tt := range tests {
		for _, split := range []string{"whole", "one byte", "half"} {
			t.Run(tt.name+"/"+split, func(t *testing.T) {
				var r io.Reader = strings.NewReader(tt.in)
				switch split {
				case "one byte":
					r = iotest.OneByteReader(r)
				case "half":
					r = iotest.HalfReader(r)
				}
				got, err := readAll(t, r, 0)
				require.Equal(t, tt.want, got)
				require.ErrorIs(t, err, tt.err)
			})
		}
	}
}

func TestReaderEventBound(t *testing.T) {
	big := "data: " + strings.Repeat("x", 100) + "\n\n"
	got, err := readAll(t, strings.NewReader("data: ok\n\n"+big), 64)
	require.Equal(t, []ev{{"", "ok", "data: ok\n\n"}}, got)
	require.ErrorIs(t, err, provider.ErrMalformed)

	// An event exactly at the bound passes; the buffer grows past its initial size.
	data := strings.Repeat("y", 3*initialBuffer)
	in := "data: " + data + "\n\n"
	got, err = readAll(t, iotest.HalfReader(strings.NewReader(in+in)), len(in))
	require.ErrorIs(t, err, io.EOF)
	require.Len(t, got, 2)
	require.Equal(t, data, got[1].data)
}

func TestReaderReadError(t *testing.T) {
	boom := errors.New("connection reset")
	r := io.MultiReader(strings.NewReader("data: a\n\ndata: b"), iotest.ErrReader(boom))
	got, err := readAll(t, r, 0)
	require.Equal(t, []ev{{"", "a", "data: a\n\n"}}, got)
	require.ErrorIs(t, err, boom)
	// Errors are sticky.
	sr := NewReader(iotest.ErrReader(boom), 0)
	_, err = sr.Next()
	require.ErrorIs(t, err, boom)
	_, err = sr.Next()
	require.ErrorIs(t, err, boom)
}

func TestReaderNoProgress(t *testing.T) {
	_, err := NewReader(emptyReader{}, 0).Next()
	require.ErrorIs(t, err, io.ErrNoProgress)
}

type emptyReader struct{}

func (emptyReader) Read([]byte) (int, error) { return 0, nil }

// A reader blocked on a body that is then closed returns instead of hanging.
func TestReaderUnblocksOnClose(t *testing.T) {
	pr, pw := io.Pipe()
	go func() {
		_, _ = pw.Write([]byte("data: a\n\n"))
	}()
	sr := NewReader(pr, 0)
	e, err := sr.Next()
	require.NoError(t, err)
	require.Equal(t, "a", string(e.Data))
	done := make(chan error, 1)
	go func() {
		_, err := sr.Next()
		done <- err
	}()
	require.NoError(t, pr.Close())
	require.ErrorIs(t, <-done, io.ErrClosedPipe)
}

// reference is a straightforward reading of the SSE rules, for the fuzz comparison.
func reference(in []byte) ([]ev, bool) {
	var out []ev
	var lines [][]byte
	rawStart := 0
	pos := 0
	for pos < len(in) {
		i := bytes.IndexByte(in[pos:], '\n')
		if i < 0 {
			return out, false // ends inside a line
		}
		line := in[pos : pos+i]
		pos += i + 1
		line = bytes.TrimSuffix(line, []byte("\r"))
		if len(line) > 0 {
			lines = append(lines, line)
			continue
		}
		if e, ok := refEvent(lines, in[rawStart:pos]); ok {
			out = append(out, e)
		}
		lines, rawStart = nil, pos
	}
	if len(lines) > 0 {
		if e, ok := refEvent(lines, append(append([]byte(nil), in[rawStart:]...), '\n')); ok {
			out = append(out, e)
		}
	}
	return out, true
}

func refEvent(lines [][]byte, raw []byte) (ev, bool) {
	var name string
	var data []string
	for _, l := range lines {
		if l[0] == ':' {
			continue
		}
		f, v, _ := strings.Cut(string(l), ":")
		v = strings.TrimPrefix(v, " ")
		switch f {
		case "data":
			data = append(data, v)
		case "event":
			name = v
		}
	}
	if len(data) == 0 {
		return ev{}, false
	}
	return ev{name, strings.Join(data, "\n"), string(raw)}, true
}

func FuzzReader(f *testing.F) {
	for _, s := range []string{
		"data: {\"a\":1}\n\ndata: [DONE]\n\n",
		"event: ping\r\ndata: {}\r\n\r\n",
		": c\ndata: a\ndata: b\n\n",
		"data\n\nevent:x\n\n",
		"data: x",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		want, complete := reference(in)
		got, err := readAll(t, iotest.HalfReader(bytes.NewReader(in)), 0)
		if complete {
			require.ErrorIs(t, err, io.EOF)
		} else {
			require.ErrorIs(t, err, provider.ErrTruncated)
			if len(got) > len(want) {
				t.Fatalf("more events than the reference")
			}
			want = want[:len(got)]
		}
		require.Equal(t, want, got)
	})
}

func BenchmarkReader(b *testing.B) {
	chunk := `data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":1730000000,"model":"gpt-4o-2024-08-06","choices":[{"index":0,"delta":{"content":"Hello"},"finish_reason":null}],"usage":null}` + "\n\n"
	in := []byte(strings.Repeat(chunk, 1000))
	b.SetBytes(int64(len(chunk)))
	b.ReportAllocs()
	r := bytes.NewReader(in)
	sr := NewReader(r, 0)
	b.ResetTimer()
	for b.Loop() {
		if _, err := sr.Next(); err != nil {
			r.Reset(in)
			sr = NewReader(r, 0)
		}
	}
}

func BenchmarkReaderNamed(b *testing.B) {
	ev := "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"Hello\"}}\n\n"
	in := []byte(strings.Repeat(ev, 1000))
	b.SetBytes(int64(len(ev)))
	b.ReportAllocs()
	r := bytes.NewReader(in)
	sr := NewReader(r, 0)
	b.ResetTimer()
	for b.Loop() {
		if _, err := sr.Next(); err != nil {
			r.Reset(in)
			sr = NewReader(r, 0)
		}
	}
}
