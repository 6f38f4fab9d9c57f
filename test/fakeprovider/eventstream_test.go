package fakeprovider

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"hash/crc32"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws/protocol/eventstream"
	"github.com/stretchr/testify/require"
)

func TestChunkFrameLayout(t *testing.T) {
	event := []byte(`{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hi"}}`)
	frame := appendChunkFrame(nil, event)

	// Prelude: total length, headers length (75 for Bedrock's three chunk headers), CRC of both.
	total := binary.BigEndian.Uint32(frame[0:4])
	require.Equal(t, uint32(len(frame)), total)
	require.Equal(t, uint32(75), binary.BigEndian.Uint32(frame[4:8]))
	require.Equal(t, crc32.ChecksumIEEE(frame[0:8]), binary.BigEndian.Uint32(frame[8:12]))
	require.Equal(t, crc32.ChecksumIEEE(frame[:total-4]), binary.BigEndian.Uint32(frame[total-4:]))
	require.Equal(t, append([]byte{0x0b}, ":event-type"...), frame[12:24], "first header is :event-type")

	msg, err := eventstream.NewDecoder().Decode(bytes.NewReader(frame), nil)
	require.NoError(t, err)
	require.Equal(t, "chunk", msg.Headers.Get(":event-type").String())
	require.Equal(t, "event", msg.Headers.Get(":message-type").String())
	require.Equal(t, "application/json", msg.Headers.Get(":content-type").String())
	var payload struct {
		Bytes []byte `json:"bytes"`
		P     string `json:"p"`
	}
	require.NoError(t, json.Unmarshal(msg.Payload, &payload))
	require.Equal(t, event, payload.Bytes)
	require.NotEmpty(t, payload.P)
}

func TestExceptionFrame(t *testing.T) {
	frame := appendExceptionFrame(nil, "throttlingException", []byte(`{"message":"slow down"}`))
	msg, err := eventstream.NewDecoder().Decode(bytes.NewReader(frame), nil)
	require.NoError(t, err)
	require.Equal(t, "exception", msg.Headers.Get(":message-type").String())
	require.Equal(t, "throttlingException", msg.Headers.Get(":exception-type").String())
	require.JSONEq(t, `{"message":"slow down"}`, string(msg.Payload))
}

func TestFramesMatchAWSEncoder(t *testing.T) {
	// The same message encoded by the AWS SDK's encoder is byte-identical.
	payload := []byte(`{"message":"x"}`)
	var want bytes.Buffer
	require.NoError(t, eventstream.NewEncoder().Encode(&want, eventstream.Message{
		Headers: eventstream.Headers{
			{Name: ":exception-type", Value: eventstream.StringValue("validationException")},
			{Name: ":content-type", Value: eventstream.StringValue("application/json")},
			{Name: ":message-type", Value: eventstream.StringValue("exception")},
		},
		Payload: payload,
	}))
	require.Equal(t, want.Bytes(), appendExceptionFrame(nil, "validationException", payload))
}

func TestCorruptFrameFailsCRC(t *testing.T) {
	var e events
	(&anthropicStream{bedrock: true}).garbage(nil, &e)
	_, err := eventstream.NewDecoder().Decode(bytes.NewReader(e.out), nil)
	var crcErr eventstream.ChecksumError
	require.True(t, errors.As(err, &crcErr), "want a checksum error, got %v", err)
}
