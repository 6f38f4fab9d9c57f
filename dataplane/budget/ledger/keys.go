// Package ledger is the budget ledger shared by the gateway pods and the operator: the Redis
// key schema of a team's budget counters, the calendar windows and minute counters those keys
// are named after, the reader of a team's counters, and the phase a budget is in.
//
// The gateway (dataplane/budget) writes the counters: its admission and settlement scripts are
// given the keys built here. The operator (controllers) reads them through Read to fill
// TeamBudget.status. Both import this package, so the two sides cannot disagree on a key, a
// bucket id, a window's end or a phase. It imports no Kubernetes library (test/layout allows
// the operator to import it besides dataplane/snapshot), and go-redis only for Read.
//
// Key schema (docs/budget.md has the expiries). Every key of a team carries the hash tag {T}
// so that a Redis Cluster keeps a team in one slot: the scripts touch several keys of one team.
//
//	llmgw:{T}:spend:<Window>:<bucket>  string  settled micro-dollars in that window
//	llmgw:{T}:res                      zset    reservation id -> expiry (unix ms)
//	llmgw:{T}:resamt                   hash    reservation id -> held micro-dollars
//	llmgw:{T}:held                     string  sum of resamt
//	llmgw:{T}:rpm:<minute>             string  requests admitted in that unix minute
//	llmgw:{T}:tpm:<minute>             string  tokens reserved (and corrected) in that minute
//	llmgw:{T}:vel:<minute>             string  micro-dollars settled in that minute (runaway)
//	llmgw:{T}:trip                     hash    runaway trip: until, at (unix ms), rate, threshold
//	llmgw:{T}:soft:<Window>:<bucket>   string  a Soft limit was reached in that window (once)
//	llmgw:{T}:settled:<id>             string  settlement marker of reservation id
package ledger

import (
	"strconv"
	"strings"
)

// Prefix starts every key of the ledger.
const Prefix = "llmgw:"

// teamEscaper keeps braces out of the hash tag; '%' is escaped so the mapping is reversible.
var teamEscaper = strings.NewReplacer("%", "%25", "{", "%7B", "}", "%7D")

// HashTag is the Redis Cluster hash tag of a team's keys, "{T}" with the team name escaped:
// every key of a team hashes to the slot of this tag.
func HashTag(team string) string { return "{" + teamEscaper.Replace(team) + "}" }

// Keys names the keys of one team. Build it with KeysFor.
type Keys struct{ base string }

// KeysFor returns the keys of team.
func KeysFor(team string) Keys { return Keys{base: Prefix + HashTag(team) + ":"} }

// Spend is the settled spend of one window bucket (see BucketOf).
func (k Keys) Spend(window, bucket string) string { return k.base + "spend:" + window + ":" + bucket }

// Soft marks that a Soft limit was reached in one window bucket (set once, NX).
func (k Keys) Soft(window, bucket string) string { return k.base + "soft:" + window + ":" + bucket }

// Res is the sorted set of live holds: reservation id -> expiry (unix ms).
func (k Keys) Res() string { return k.base + "res" }

// ResAmt is the hash of held amounts: reservation id -> micro-dollars.
func (k Keys) ResAmt() string { return k.base + "resamt" }

// Held is the sum of ResAmt (it may include holds expired but not yet purged).
func (k Keys) Held() string { return k.base + "held" }

// Trip is the runaway breaker's last trip (fields TripFields).
func (k Keys) Trip() string { return k.base + "trip" }

// RPM counts the requests admitted in a unix minute (MinuteOf).
func (k Keys) RPM(minute int64) string { return k.base + "rpm:" + strconv.FormatInt(minute, 10) }

// TPM counts the tokens reserved, and corrected at settlement, in a unix minute.
func (k Keys) TPM(minute int64) string { return k.base + "tpm:" + strconv.FormatInt(minute, 10) }

// Vel is the spend settled in a unix minute: the runaway breaker's velocity.
func (k Keys) Vel(minute int64) string { return k.base + "vel:" + strconv.FormatInt(minute, 10) }

// Settled is the settlement marker of a reservation: it makes a settlement count once.
func (k Keys) Settled(id string) string { return k.base + "settled:" + id }
