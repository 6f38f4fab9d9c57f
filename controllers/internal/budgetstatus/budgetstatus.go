// Package budgetstatus reads the gateway's budget counters from Redis for the operator, which
// writes them into TeamBudget.status (spent, reserved, remaining, phase).
//
// It may import only go-redis and dataplane/snapshot (the operator never imports the data
// plane's budget package), so it reads the key schema documented in docs/budget.md, which
// dataplane/budget writes. Tests on both sides pin the exact key strings, and test/budget
// checks that this reader sees what the budget manager wrote.
package budgetstatus

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/posthog/llm-gateway/dataplane/snapshot"
)

// Phases, as in TeamBudget.status.phase.
const (
	PhaseActive           = "Active"
	PhaseSoftLimitReached = "SoftLimitReached"
	PhaseExhausted        = "Exhausted"
	PhaseSuspended        = "Suspended"
	PhaseRunawayTripped   = "RunawayTripped"
)

// Window is one spend limit of a budget with the spend of its current window.
type Window struct {
	Window      string
	Enforcement string
	LimitMicros int64
	SpentMicros int64
	// ReservedMicros are the holds of calls in flight (they count against every window).
	ReservedMicros int64
	// RemainingMicros = limit - spent - reserved, never below 0.
	RemainingMicros int64
	// ResetsAt is the start of the next window.
	ResetsAt time.Time
}

// Trip is the runaway breaker's last trip.
type Trip struct {
	At, Until       time.Time
	RateMicros      int64 // spend in the minute that tripped it
	ThresholdMicros int64
}

// Status is what the operator writes into TeamBudget.status.
type Status struct {
	Team  string
	Phase string
	// Windows has one entry per spend limit of the budget, in the budget's order.
	Windows        []Window
	ReservedMicros int64
	InFlight       int64
	// Tightest is the index in Windows of the Hard limit with the least remaining (-1: none):
	// the Spent / Limit printer columns show it.
	Tightest int
	// LastTrip is the runaway breaker's last trip (kept a day past its cooldown), or nil.
	LastTrip *Trip
}

// Reader reads budget counters.
type Reader struct{ rdb redis.UniversalClient }

// New connects to the gateway's Redis at url (redis://host:port/db or rediss://).
func New(url string) (*Reader, error) {
	opts, err := redis.ParseURL(url)
	if err != nil {
		return nil, fmt.Errorf("parse redis url: %w", err)
	}
	opts.DialTimeout, opts.ReadTimeout, opts.WriteTimeout = 2*time.Second, 2*time.Second, 2*time.Second
	opts.DialerRetries = 1 // the reconciler retries; report an outage promptly
	return NewFromClient(redis.NewClient(opts)), nil
}

// NewFromClient reads through an existing client (e.g. a cluster client).
func NewFromClient(c redis.UniversalClient) *Reader { return &Reader{rdb: c} }

// Close closes the client.
func (r *Reader) Close() error { return r.rdb.Close() }

// Ping checks that Redis is reachable; the operator turns a failure into a condition.
func (r *Reader) Ping(ctx context.Context) error {
	if err := r.rdb.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("ping budget store: %w", err)
	}
	return nil
}

// Counters are a team's raw counters for the windows that contain a given time.
type Counters struct {
	// Spent is the settled spend of the current window, by window ("Hour", "Day", "Week",
	// "Month"), in micro-dollars.
	Spent map[string]int64
	// ReservedMicros are the holds of calls in flight; they count against every window.
	ReservedMicros int64
	InFlight       int64
	// LastTrip is the runaway breaker's last trip (kept a day past its cooldown), or nil.
	LastTrip *Trip
}

// RunawayTripped reports whether the runaway breaker holds the team suspended at now.
func (c Counters) RunawayTripped(now time.Time) bool {
	return c.LastTrip != nil && c.LastTrip.Until.After(now)
}

var allWindows = []string{snapshot.WindowHour, snapshot.WindowDay, snapshot.WindowWeek, snapshot.WindowMonth}

// Counters reads the team's counters at now: two round trips (one pipeline, then the amounts
// of holds that expired but were not purged yet, if any).
func (r *Reader) Counters(ctx context.Context, team string, now time.Time) (Counters, error) {
	k := keysFor(team)
	nowMs := strconv.FormatInt(now.UnixMilli(), 10)
	spend := make([]*redis.StringCmd, len(allWindows))
	var (
		held    *redis.StringCmd
		live    *redis.IntCmd
		expired *redis.StringSliceCmd
		trip    *redis.SliceCmd
	)
	_, err := r.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, w := range allWindows {
			spend[i] = p.Get(ctx, k.spend(w, BucketID(w, now)))
		}
		held = p.Get(ctx, k.held())
		live = p.ZCount(ctx, k.res(), "("+nowMs, "+inf")
		expired = p.ZRangeByScore(ctx, k.res(), &redis.ZRangeBy{Min: "-inf", Max: nowMs})
		trip = p.HMGet(ctx, k.trip(), "until", "at", "rate", "threshold")
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return Counters{}, fmt.Errorf("read budget counters of team %s: %w", team, err)
	}
	reserved := intOf(held)
	if ids := expired.Val(); len(ids) > 0 {
		amts, err := r.rdb.HMGet(ctx, k.resAmt(), ids...).Result()
		if err != nil {
			return Counters{}, fmt.Errorf("read expired holds of team %s: %w", team, err)
		}
		for _, a := range amts {
			if s, ok := a.(string); ok {
				v, _ := strconv.ParseInt(s, 10, 64)
				reserved -= v
			}
		}
	}
	c := Counters{Spent: make(map[string]int64, len(allWindows)), ReservedMicros: max(reserved, 0), InFlight: live.Val(),
		LastTrip: parseTrip(trip.Val())}
	for i, w := range allWindows {
		c.Spent[w] = intOf(spend[i])
	}
	return c, nil
}

// Read returns the team's status under budget b at now.
func (r *Reader) Read(ctx context.Context, team string, b *snapshot.Budget, now time.Time) (Status, error) {
	c, err := r.Counters(ctx, team, now)
	if err != nil {
		return Status{}, err
	}
	st := Status{Team: team, ReservedMicros: c.ReservedMicros, InFlight: c.InFlight, Tightest: -1, LastTrip: c.LastTrip}
	for i, l := range b.Limits {
		w := Window{Window: l.Window, Enforcement: l.Enforcement, LimitMicros: l.LimitMicros, SpentMicros: c.Spent[l.Window],
			ReservedMicros: c.ReservedMicros, ResetsAt: windowEnd(l.Window, now)}
		w.RemainingMicros = max(w.LimitMicros-w.SpentMicros-w.ReservedMicros, 0)
		if l.Enforcement == snapshot.EnforceHard && (st.Tightest < 0 || w.RemainingMicros < st.Windows[st.Tightest].RemainingMicros) {
			st.Tightest = i
		}
		st.Windows = append(st.Windows, w)
	}
	st.Phase = phase(b, st, now)
	return st, nil
}

func phase(b *snapshot.Budget, st Status, now time.Time) string {
	if b.Suspended {
		return PhaseSuspended
	}
	if st.LastTrip != nil && st.LastTrip.Until.After(now) {
		return PhaseRunawayTripped
	}
	soft := false
	for _, w := range st.Windows {
		if w.SpentMicros >= w.LimitMicros {
			if w.Enforcement == snapshot.EnforceHard {
				return PhaseExhausted
			}
			soft = true
		}
	}
	if soft {
		return PhaseSoftLimitReached
	}
	return PhaseActive
}

func intOf(c *redis.StringCmd) int64 {
	v, _ := c.Int64()
	return v
}

func parseTrip(v []any) *Trip {
	n := func(i int) int64 {
		s, _ := v[i].(string)
		x, _ := strconv.ParseInt(s, 10, 64)
		return x
	}
	if len(v) < 4 || n(0) == 0 {
		return nil
	}
	return &Trip{Until: time.UnixMilli(n(0)).UTC(), At: time.UnixMilli(n(1)).UTC(), RateMicros: n(2), ThresholdMicros: n(3)}
}

// The keys this reader uses, from the schema in docs/budget.md (written by dataplane/budget).
var teamEscaper = strings.NewReplacer("%", "%25", "{", "%7B", "}", "%7D")

type teamKeys struct{ base string }

func keysFor(team string) teamKeys {
	return teamKeys{base: "llmgw:{" + teamEscaper.Replace(team) + "}:"}
}

func (k teamKeys) spend(window, bucket string) string {
	return k.base + "spend:" + window + ":" + bucket
}
func (k teamKeys) res() string    { return k.base + "res" }
func (k teamKeys) resAmt() string { return k.base + "resamt" }
func (k teamKeys) held() string   { return k.base + "held" }
func (k teamKeys) trip() string   { return k.base + "trip" }

// BucketID names the window of kind w containing t, as in the spend keys: "2025-01-29T10"
// (Hour), "2025-01-29" (Day), "2025-W05" (ISO week), "2025-01" (Month). All UTC.
func BucketID(w string, t time.Time) string {
	t = t.UTC()
	switch w {
	case snapshot.WindowHour:
		return t.Format("2006-01-02T15")
	case snapshot.WindowDay:
		return t.Format("2006-01-02")
	case snapshot.WindowWeek:
		y, wk := t.ISOWeek()
		return fmt.Sprintf("%04d-W%02d", y, wk)
	}
	return t.Format("2006-01")
}

// windowEnd is the start of the window after the one containing t.
func windowEnd(w string, t time.Time) time.Time {
	t = t.UTC()
	y, m, d := t.Date()
	switch w {
	case snapshot.WindowHour:
		return time.Date(y, m, d, t.Hour()+1, 0, 0, 0, time.UTC)
	case snapshot.WindowDay:
		return time.Date(y, m, d+1, 0, 0, 0, 0, time.UTC)
	case snapshot.WindowWeek:
		return time.Date(y, m, d-(int(t.Weekday())+6)%7+7, 0, 0, 0, 0, time.UTC)
	}
	return time.Date(y, m+1, 1, 0, 0, 0, 0, time.UTC)
}
