package fakeprovider

import (
	"encoding/base64"
	"encoding/binary"
	"hash/crc32"
)

// AWS event-stream framing (application/vnd.amazon.eventstream),
// docs/providers.md "AWS event-stream framing":
//
//	uint32 total_length | uint32 headers_length | uint32 prelude_crc (CRC32 of bytes [0,8))
//	headers | payload | uint32 message_crc (CRC32 of bytes [0,total_length-4))
//
// Headers are name_len uint8, name, value type 7 (string), uint16 length, value.

// encodeHeaders appends string headers in event-stream encoding.
func encodeHeaders(dst []byte, hs ...[2]string) []byte {
	for _, h := range hs {
		dst = append(dst, byte(len(h[0])))
		dst = append(dst, h[0]...)
		dst = append(dst, 7, byte(len(h[1])>>8), byte(len(h[1])))
		dst = append(dst, h[1]...)
	}
	return dst
}

// chunkHeaders are the headers of every Bedrock chunk frame, in Bedrock's order.
var chunkHeaders = encodeHeaders(nil,
	[2]string{":event-type", "chunk"},
	[2]string{":content-type", "application/json"},
	[2]string{":message-type", "event"})

// beginFrame appends the prelude and headers of a frame whose payload will be payloadLen
// bytes; finishFrame appends the message CRC once the payload is written.
func beginFrame(dst, headers []byte, payloadLen int) ([]byte, int) {
	start := len(dst)
	dst = binary.BigEndian.AppendUint32(dst, uint32(12+len(headers)+payloadLen+4))
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(headers)))
	dst = binary.BigEndian.AppendUint32(dst, crc32.ChecksumIEEE(dst[start:start+8]))
	return append(dst, headers...), start
}

func finishFrame(dst []byte, start int) []byte {
	return binary.BigEndian.AppendUint32(dst, crc32.ChecksumIEEE(dst[start:]))
}

// padding is the source of the "p" field Bedrock adds to chunk payloads (its length varies).
const padding = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"

// appendChunkFrame appends one Bedrock chunk frame carrying an Anthropic event:
// payload {"bytes":"<base64 of event>","p":"<padding>"}.
func appendChunkFrame(dst, event []byte) []byte {
	pad := padding[:1+len(event)%len(padding)]
	n := len(`{"bytes":"`) + base64.StdEncoding.EncodedLen(len(event)) + len(`","p":"`) + len(pad) + len(`"}`)
	dst, start := beginFrame(dst, chunkHeaders, n)
	dst = append(dst, `{"bytes":"`...)
	dst = base64.StdEncoding.AppendEncode(dst, event)
	dst = append(dst, `","p":"`...)
	dst = append(dst, pad...)
	dst = append(dst, `"}`...)
	return finishFrame(dst, start)
}

// appendExceptionFrame appends a `:message-type exception` frame; excType is camelCase
// (throttlingException) and payload is {"message":...}.
func appendExceptionFrame(dst []byte, excType string, payload []byte) []byte {
	var hb [96]byte
	headers := encodeHeaders(hb[:0],
		[2]string{":exception-type", excType},
		[2]string{":content-type", "application/json"},
		[2]string{":message-type", "exception"})
	dst, start := beginFrame(dst, headers, len(payload))
	dst = append(dst, payload...)
	return finishFrame(dst, start)
}
