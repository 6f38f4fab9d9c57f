package bedrock

import (
	"crypto/sha256"
	"encoding/hex"

	"github.com/tidwall/gjson"
)

func gjsonString(b []byte, path string) string { return gjson.GetBytes(b, path).String() }

func sha256hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}
