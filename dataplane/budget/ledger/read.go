package ledger

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// Counters are a team's counters for the windows and the minute that contain a given time.
type Counters struct {
	// Spent is the settled spend of the current bucket of each window (index as in Windows),
	// in micro-dollars.
	Spent [NumWindows]int64
	// HeldMicros are the holds of calls in flight (they count against every window); holds
	// that expired but were not purged yet are left out.
	HeldMicros int64
	// InFlight is the number of live holds.
	InFlight int64
	// RequestsLastMinute, TokensLastMinute and SpendLastMinuteMicros are the sliding-minute
	// counts (SlidingCount) of the RPM, TPM and Vel counters.
	RequestsLastMinute, TokensLastMinute, SpendLastMinuteMicros int64
	// LastTrip is the runaway breaker's last trip (kept TripRecordTTL past its cooldown), or nil.
	LastTrip *Trip
}

// RunawayTripped reports whether the runaway breaker holds the team suspended at now.
func (c Counters) RunawayTripped(now time.Time) bool {
	return c.LastTrip != nil && c.LastTrip.Until.After(now)
}

// Read reads team's counters at now from Redis: two round trips (one pipeline, then the
// amounts of holds that expired but were not purged yet, if any). Keys that do not exist read
// as zero. The gateway's /admin/teams and the operator's TeamBudget status both read here.
func Read(ctx context.Context, rdb redis.Cmdable, team string, now time.Time) (Counters, error) {
	k := KeysFor(team)
	b := BucketsAt(now)
	minute, elapsed := MinuteOf(now)
	nowMs := strconv.FormatInt(now.UnixMilli(), 10)
	var (
		spend          [NumWindows]*redis.StringCmd
		held           *redis.StringCmd
		live           *redis.IntCmd
		expired        *redis.StringSliceCmd
		rp, rc, tp, tc *redis.StringCmd
		vp, vc         *redis.StringCmd
		trip           *redis.SliceCmd
	)
	_, err := rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, w := range Windows {
			spend[i] = p.Get(ctx, k.Spend(w, b[i].ID))
		}
		held = p.Get(ctx, k.Held())
		live = p.ZCount(ctx, k.Res(), "("+nowMs, "+inf")
		expired = p.ZRangeByScore(ctx, k.Res(), &redis.ZRangeBy{Min: "-inf", Max: nowMs})
		rp, rc = p.Get(ctx, k.RPM(minute-1)), p.Get(ctx, k.RPM(minute))
		tp, tc = p.Get(ctx, k.TPM(minute-1)), p.Get(ctx, k.TPM(minute))
		vp, vc = p.Get(ctx, k.Vel(minute-1)), p.Get(ctx, k.Vel(minute))
		trip = p.HMGet(ctx, k.Trip(), TripFields...)
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return Counters{}, fmt.Errorf("read budget counters of team %s: %w", team, err)
	}
	n := func(c *redis.StringCmd) int64 { v, _ := c.Int64(); return v }
	var c Counters
	for i := range spend {
		c.Spent[i] = n(spend[i])
	}
	c.HeldMicros = n(held)
	c.InFlight = live.Val()
	if ids := expired.Val(); len(ids) > 0 {
		amts, err := rdb.HMGet(ctx, k.ResAmt(), ids...).Result()
		if err != nil {
			return Counters{}, fmt.Errorf("read expired holds of team %s: %w", team, err)
		}
		for _, a := range amts {
			if s, ok := a.(string); ok {
				v, _ := parseInt(s)
				c.HeldMicros -= v
			}
		}
	}
	c.HeldMicros = max(c.HeldMicros, 0)
	c.RequestsLastMinute = SlidingCount(n(rp), n(rc), elapsed)
	c.TokensLastMinute = SlidingCount(n(tp), n(tc), elapsed)
	c.SpendLastMinuteMicros = SlidingCount(n(vp), n(vc), elapsed)
	if t, ok := ParseTrip(trip.Val()); ok {
		c.LastTrip = &t
	}
	return c, nil
}

func parseInt(s string) (int64, error) { return strconv.ParseInt(s, 10, 64) }
