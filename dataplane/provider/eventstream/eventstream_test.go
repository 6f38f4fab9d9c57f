package eventstream

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"io"
	"math/rand/v2"
	"testing"
	"testing/iotest"
	"time"

	aws "github.com/aws/aws-sdk-go-v2/aws/protocol/eventstream"
	"github.com/stretchr/testify/require"

	"github.com/posthog/llm-gateway/dataplane/provider"
)

func encode(t testing.TB, msgs ...aws.Message) []byte {
	t.Helper()
	var b bytes.Buffer
	enc := aws.NewEncoder()
	for _, m := range msgs {
		require.NoError(t, enc.Encode(&b, m))
	}
	return b.Bytes()
}

// allTypes is a message with a header of every value type.
func allTypes() aws.Message {
	ts := time.Date(2026, 3, 4, 5, 6, 7, 8e6, time.UTC)
	return aws.Message{
		Headers: aws.Headers{
			{Name: "t", Value: aws.BoolValue(true)},
			{Name: "f", Value: aws.BoolValue(false)},
			{Name: "i8", Value: aws.Int8Value(-8)},
			{Name: "i16", Value: aws.Int16Value(-1600)},
			{Name: "i32", Value: aws.Int32Value(-320000)},
			{Name: "i64", Value: aws.Int64Value(-64000000000)},
			{Name: "bytes", Value: aws.BytesValue([]byte{0, 1, 2, 255})},
			{Name: ":event-type", Value: aws.StringValue("chunk")},
			{Name: "ts", Value: aws.TimestampValue(ts)},
			{Name: "uuid", Value: aws.UUIDValue{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15}},
		},
		Payload: []byte(`{"bytes":"eyJ0eXBlIjoicGluZyJ9"}`),
	}
}

func TestDecodeEveryHeaderType(t *testing.T) {
	in := encode(t, allTypes(), aws.Message{Payload: []byte("second")}, aws.Message{})
	d := NewDecoder(iotest.OneByteReader(bytes.NewReader(in)), 0)
	m, err := d.Next()
	require.NoError(t, err)
	require.Len(t, m.Headers, 10)
	byName := map[string]Header{}
	for _, h := range m.Headers {
		byName[string(h.Name)] = h
	}
	require.True(t, byName["t"].Bool())
	require.False(t, byName["f"].Bool())
	require.Equal(t, int64(-8), byName["i8"].Int())
	require.Equal(t, int64(-1600), byName["i16"].Int())
	require.Equal(t, int64(-320000), byName["i32"].Int())
	require.Equal(t, int64(-64000000000), byName["i64"].Int())
	require.Equal(t, []byte{0, 1, 2, 255}, byName["bytes"].Value)
	require.Equal(t, "chunk", m.Get(":event-type"))
	require.True(t, m.Is(":event-type", "chunk"))
	require.False(t, m.Is(":message-type", "event"))
	require.Equal(t, time.Date(2026, 3, 4, 5, 6, 7, 8e6, time.UTC), byName["ts"].Time())
	require.Equal(t, []byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15}, byName["uuid"].Value)
	require.Equal(t, `{"bytes":"eyJ0eXBlIjoicGluZyJ9"}`, string(m.Payload))

	m, err = d.Next()
	require.NoError(t, err)
	require.Empty(t, m.Headers)
	require.Equal(t, "second", string(m.Payload))
	m, err = d.Next()
	require.NoError(t, err)
	require.Empty(t, m.Payload)
	_, err = d.Next()
	require.ErrorIs(t, err, io.EOF)
	_, err = d.Next()
	require.ErrorIs(t, err, io.EOF, "sticky")
}

// The documented first bytes of a Bedrock chunk frame (docs/providers.md "AWS event-stream framing").
func TestBedrockPrelude(t *testing.T) {
	payload := bytes.Repeat([]byte("x"), 322-75-16)
	in := encode(t, aws.Message{Headers: aws.Headers{
		{Name: ":event-type", Value: aws.StringValue("chunk")},
		{Name: ":content-type", Value: aws.StringValue("application/json")},
		{Name: ":message-type", Value: aws.StringValue("event")},
	}, Payload: payload})
	require.Equal(t, []byte{0, 0, 1, 0x42, 0, 0, 0, 0x4b}, in[:8])
	require.Equal(t, byte(0x0b), in[12])
	m, err := NewDecoder(bytes.NewReader(in), 0).Next()
	require.NoError(t, err)
	require.Equal(t, "event", m.Get(":message-type"))
}

func TestDecodeRandomAgainstAWSEncoder(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var msgs []aws.Message
	for range 200 {
		var m aws.Message
		for range rng.IntN(5) {
			name := string(rune('a' + rng.IntN(26)))
			switch rng.IntN(4) {
			case 0:
				m.Headers = append(m.Headers, aws.Header{Name: name, Value: aws.StringValue(string(randBytes(rng, 300)))})
			case 1:
				m.Headers = append(m.Headers, aws.Header{Name: name, Value: aws.Int64Value(rng.Int64())})
			case 2:
				m.Headers = append(m.Headers, aws.Header{Name: name, Value: aws.BytesValue(randBytes(rng, 40))})
			default:
				m.Headers = append(m.Headers, aws.Header{Name: name, Value: aws.BoolValue(rng.IntN(2) == 0)})
			}
		}
		m.Payload = randBytes(rng, 10000)
		msgs = append(msgs, m)
	}
	in := encode(t, msgs...)
	d := NewDecoder(iotest.HalfReader(bytes.NewReader(in)), 0)
	for i, want := range msgs {
		got, err := d.Next()
		require.NoError(t, err, "message %d", i)
		require.Equal(t, len(want.Headers), len(got.Headers))
		for j, h := range want.Headers {
			require.Equal(t, h.Name, string(got.Headers[j].Name))
			switch v := h.Value.(type) {
			case aws.StringValue:
				require.Equal(t, string(v), got.Headers[j].Str())
			case aws.Int64Value:
				require.Equal(t, int64(v), got.Headers[j].Int())
			case aws.BytesValue:
				require.Equal(t, []byte(v), append([]byte{}, got.Headers[j].Value...))
			case aws.BoolValue:
				require.Equal(t, bool(v), got.Headers[j].Bool())
			}
		}
		require.Equal(t, len(want.Payload), len(got.Payload))
		require.True(t, bytes.Equal(want.Payload, got.Payload))
	}
	_, err := d.Next()
	require.ErrorIs(t, err, io.EOF)
}

func randBytes(rng *rand.Rand, max int) []byte {
	b := make([]byte, rng.IntN(max))
	for i := range b {
		b[i] = byte(rng.IntN(256))
	}
	return b
}

func TestDecodeTruncatedAtEveryByte(t *testing.T) {
	in := encode(t, allTypes())
	for n := 1; n < len(in); n++ {
		_, err := NewDecoder(bytes.NewReader(in[:n]), 0).Next()
		require.ErrorIs(t, err, provider.ErrTruncated, "cut at %d", n)
	}
}

func TestDecodeCorrupt(t *testing.T) {
	good := encode(t, allTypes())
	flip := func(i int) []byte {
		b := append([]byte(nil), good...)
		b[i] ^= 0x40
		return b
	}
	// Rewrites lengths and fixes the prelude CRC, so only the later checks can catch it.
	withLens := func(total, headers uint32) []byte {
		b := append([]byte(nil), good...)
		binary.BigEndian.PutUint32(b[0:], total)
		binary.BigEndian.PutUint32(b[4:], headers)
		binary.BigEndian.PutUint32(b[8:], crc(b[:8]))
		return b
	}
	tests := []struct {
		name string
		in   []byte
	}{
		{"prelude crc", flip(9)},
		{"length without prelude crc fix", flip(3)},
		{"header byte", flip(20)},
		{"payload byte", flip(len(good) - 6)},
		{"message crc", flip(len(good) - 1)},
		{"frame too short", withLens(10, 0)},
		{"frame over the bound", withLens(1<<30, 0)},
		{"headers longer than the frame", withLens(uint32(len(good)), uint32(len(good)))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewDecoder(bytes.NewReader(tt.in), 1<<20).Next()
			require.ErrorIs(t, err, provider.ErrMalformed)
		})
	}
}

// A frame whose headers are inconsistent but whose CRCs are right (an encoder bug, or a
// hostile upstream) is rejected, not read out of bounds.
func TestDecodeBadHeaders(t *testing.T) {
	for _, h := range [][]byte{
		{0},                    // empty name
		{5, 'a'},               // name overruns
		{1, 'a', 42},           // unknown type
		{1, 'a', 7, 0},         // string length overruns
		{1, 'a', 7, 0, 9, 'x'}, // string value overruns
		{1, 'a', 5, 1, 2},      // int64 overruns
	} {
		_, err := NewDecoder(bytes.NewReader(frame(h, nil)), 0).Next()
		require.ErrorIs(t, err, provider.ErrMalformed, "%v", h)
	}
}

func frame(headers, payload []byte) []byte {
	total := uint32(16 + len(headers) + len(payload))
	b := binary.BigEndian.AppendUint32(nil, total)
	b = binary.BigEndian.AppendUint32(b, uint32(len(headers)))
	b = binary.BigEndian.AppendUint32(b, crc(b))
	b = append(append(b, headers...), payload...)
	return binary.BigEndian.AppendUint32(b, crc(b))
}

func TestDecodeReadError(t *testing.T) {
	boom := errors.New("reset")
	in := encode(t, allTypes())
	_, err := NewDecoder(io.MultiReader(bytes.NewReader(in[:20]), iotest.ErrReader(boom)), 0).Next()
	require.ErrorIs(t, err, boom)
}

func FuzzDecoder(f *testing.F) {
	f.Add(encode(f, allTypes()))
	f.Add(encode(f, aws.Message{Payload: []byte("x")}, aws.Message{Headers: aws.Headers{{Name: ":message-type", Value: aws.StringValue("exception")}}}))
	f.Add(frame([]byte{1, 'a', 7, 0, 9, 'x'}, nil))
	f.Fuzz(func(t *testing.T, in []byte) {
		d := NewDecoder(bytes.NewReader(in), 1<<20)
		var out bytes.Buffer
		enc := aws.NewEncoder()
		for {
			m, err := d.Next()
			if err != nil {
				if errors.Is(err, io.EOF) {
					// Everything decoded re-encodes to the same bytes.
					require.True(t, bytes.Equal(in, out.Bytes()), "re-encoding differs")
				}
				return
			}
			require.NoError(t, enc.Encode(&out, toAWS(t, m)))
		}
	})
}

func toAWS(t *testing.T, m *Message) aws.Message {
	var out aws.Message
	for _, h := range m.Headers {
		var v aws.Value
		switch h.Type {
		case BoolTrue, BoolFalse:
			v = aws.BoolValue(h.Bool())
		case Int8:
			v = aws.Int8Value(int8(h.Int()))
		case Int16:
			v = aws.Int16Value(int16(h.Int()))
		case Int32:
			v = aws.Int32Value(int32(h.Int()))
		case Int64:
			v = aws.Int64Value(h.Int())
		case Bytes:
			v = aws.BytesValue(append([]byte(nil), h.Value...))
		case String:
			v = aws.StringValue(h.Str())
		case Timestamp:
			v = aws.TimestampValue(h.Time())
		case UUID:
			var u aws.UUIDValue
			copy(u[:], h.Value)
			v = u
		}
		out.Headers = append(out.Headers, aws.Header{Name: string(h.Name), Value: v})
	}
	out.Payload = append([]byte(nil), m.Payload...)
	return out
}

func BenchmarkDecode(b *testing.B) {
	one := encode(b, aws.Message{Headers: aws.Headers{
		{Name: ":event-type", Value: aws.StringValue("chunk")},
		{Name: ":content-type", Value: aws.StringValue("application/json")},
		{Name: ":message-type", Value: aws.StringValue("event")},
	}, Payload: []byte(`{"bytes":"eyJ0eXBlIjoiY29udGVudF9ibG9ja19kZWx0YSIsImluZGV4IjowLCJkZWx0YSI6eyJ0eXBlIjoidGV4dF9kZWx0YSIsInRleHQiOiJIZWxsbyJ9fQ==","p":"abcdefghijklmnopqrstuvwxyzABCDEFGHIJ"}`)})
	in := bytes.Repeat(one, 1000)
	b.SetBytes(int64(len(one)))
	b.ReportAllocs()
	r := bytes.NewReader(in)
	d := NewDecoder(r, 0)
	for b.Loop() {
		if _, err := d.Next(); err != nil {
			r.Reset(in)
			d = NewDecoder(r, 0)
		}
	}
}

func crc(b []byte) uint32 { return crc32.ChecksumIEEE(b) }
