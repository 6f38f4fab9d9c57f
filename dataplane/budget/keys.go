package budget

import (
	"strconv"
	"strings"
)

// The Redis key schema. Every key of a team carries the hash tag {team} so that a Redis
// Cluster keeps a team in one slot (the scripts touch several keys of one team). The operator's
// reader (controllers/internal/budgetstatus) reads the same keys; docs/budget.md is the
// reference and both packages test the exact strings.
//
//	llmgw:{T}:spend:<Window>:<bucket>  string  committed micro-dollars in that window
//	llmgw:{T}:res                      zset    reservation id -> expiry (unix ms)
//	llmgw:{T}:resamt                   hash    reservation id -> held micro-dollars
//	llmgw:{T}:held                     string  sum of resamt
//	llmgw:{T}:rpm:<minute>             string  requests admitted in that unix minute
//	llmgw:{T}:tpm:<minute>             string  tokens reserved (and corrected) in that minute
//	llmgw:{T}:vel:<minute>             string  micro-dollars settled in that minute (runaway)
//	llmgw:{T}:trip                     hash    runaway trip: until, at (unix ms), rate, threshold
//	llmgw:{T}:soft:<Window>:<bucket>   string  a Soft limit was reached in that window (once)
//	llmgw:{T}:settled:<id>             string  settlement marker of reservation id
const keyPrefix = "llmgw:"

// teamEscaper keeps braces out of the hash tag; '%' is escaped so the mapping is reversible.
var teamEscaper = strings.NewReplacer("%", "%25", "{", "%7B", "}", "%7D")

type teamKeys struct{ base string }

func keysFor(team string) teamKeys {
	return teamKeys{base: keyPrefix + "{" + teamEscaper.Replace(team) + "}:"}
}

func (k teamKeys) spend(window, bucketID string) string {
	return k.base + "spend:" + window + ":" + bucketID
}
func (k teamKeys) soft(window, bucketID string) string {
	return k.base + "soft:" + window + ":" + bucketID
}
func (k teamKeys) res() string    { return k.base + "res" }
func (k teamKeys) resAmt() string { return k.base + "resamt" }
func (k teamKeys) held() string   { return k.base + "held" }
func (k teamKeys) trip() string   { return k.base + "trip" }
func (k teamKeys) rpm(minute int64) string {
	return k.base + "rpm:" + strconv.FormatInt(minute, 10)
}
func (k teamKeys) tpm(minute int64) string {
	return k.base + "tpm:" + strconv.FormatInt(minute, 10)
}
func (k teamKeys) vel(minute int64) string {
	return k.base + "vel:" + strconv.FormatInt(minute, 10)
}
func (k teamKeys) settled(id string) string { return k.base + "settled:" + id }
