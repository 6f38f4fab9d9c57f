package ledger

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/posthog/llm-gateway/dataplane/snapshot"
	"github.com/posthog/llm-gateway/internal/leakcheck"
	"github.com/posthog/llm-gateway/test/redistest"
)

func TestMain(m *testing.M) { leakcheck.VerifyTestMain(m) }

// t0 is a Wednesday.
var t0 = time.Date(2025, 1, 29, 10, 20, 30, 0, time.UTC)

// TestKeySchema pins the exact key strings of docs/budget.md: the gateway's scripts write
// them, the operator reads them, and a Redis Cluster places them by the hash tag.
func TestKeySchema(t *testing.T) {
	k := KeysFor("team-a")
	require.Equal(t, "llmgw:{team-a}:spend:Day:2025-01-29", k.Spend("Day", "2025-01-29"))
	require.Equal(t, "llmgw:{team-a}:spend:Week:2025-W05", k.Spend("Week", BucketOf("Week", t0).ID))
	require.Equal(t, "llmgw:{team-a}:res", k.Res())
	require.Equal(t, "llmgw:{team-a}:resamt", k.ResAmt())
	require.Equal(t, "llmgw:{team-a}:held", k.Held())
	require.Equal(t, "llmgw:{team-a}:trip", k.Trip())
	require.Equal(t, "llmgw:{team-a}:rpm:29000000", k.RPM(29_000_000))
	require.Equal(t, "llmgw:{team-a}:tpm:29000000", k.TPM(29_000_000))
	require.Equal(t, "llmgw:{team-a}:vel:29000000", k.Vel(29_000_000))
	require.Equal(t, "llmgw:{team-a}:soft:Hour:2025-01-29T10", k.Soft("Hour", "2025-01-29T10"))
	require.Equal(t, "llmgw:{team-a}:settled:req-1", k.Settled("req-1"))
	require.Equal(t, "llmgw:{a%7Bb%7D%25c}:held", KeysFor("a{b}%c").Held(), "braces never break the hash tag")
	require.Equal(t, "{a%7Bb%7D%25c}", HashTag("a{b}%c"))
	require.NotEqual(t, KeysFor("a{b}").Held(), KeysFor("a%7Bb%7D").Held(), "the escape is reversible: two teams never share keys")
}

func TestBucketOf(t *testing.T) {
	d := func(y int, m time.Month, day, h, min int) time.Time {
		return time.Date(y, m, day, h, min, 0, 0, time.UTC)
	}
	cases := []struct {
		window     string
		at         time.Time
		id         string
		start, end time.Time
	}{
		{snapshot.WindowHour, d(2025, 1, 29, 10, 20), "2025-01-29T10", d(2025, 1, 29, 10, 0), d(2025, 1, 29, 11, 0)},
		{snapshot.WindowHour, d(2025, 12, 31, 23, 59), "2025-12-31T23", d(2025, 12, 31, 23, 0), d(2026, 1, 1, 0, 0)},
		{snapshot.WindowDay, d(2024, 2, 29, 23, 59), "2024-02-29", d(2024, 2, 29, 0, 0), d(2024, 3, 1, 0, 0)},
		{snapshot.WindowDay, d(2026, 12, 31, 23, 0), "2026-12-31", d(2026, 12, 31, 0, 0), d(2027, 1, 1, 0, 0)},
		{snapshot.WindowWeek, d(2025, 1, 29, 10, 20), "2025-W05", d(2025, 1, 27, 0, 0), d(2025, 2, 3, 0, 0)},
		{snapshot.WindowWeek, d(2025, 2, 2, 23, 59), "2025-W05", d(2025, 1, 27, 0, 0), d(2025, 2, 3, 0, 0)},   // Sunday
		{snapshot.WindowWeek, d(2025, 2, 3, 0, 0), "2025-W06", d(2025, 2, 3, 0, 0), d(2025, 2, 10, 0, 0)},     // Monday
		{snapshot.WindowWeek, d(2024, 12, 31, 12, 0), "2025-W01", d(2024, 12, 30, 0, 0), d(2025, 1, 6, 0, 0)}, // ISO year
		{snapshot.WindowWeek, d(2021, 1, 3, 12, 0), "2020-W53", d(2020, 12, 28, 0, 0), d(2021, 1, 4, 0, 0)},
		{snapshot.WindowMonth, d(2025, 1, 31, 23, 59), "2025-01", d(2025, 1, 1, 0, 0), d(2025, 2, 1, 0, 0)},
		{snapshot.WindowMonth, d(2025, 12, 1, 0, 0), "2025-12", d(2025, 12, 1, 0, 0), d(2026, 1, 1, 0, 0)},
	}
	for _, tc := range cases {
		t.Run(tc.window+" "+tc.at.Format(time.RFC3339), func(t *testing.T) {
			require.Equal(t, Bucket{ID: tc.id, Start: tc.start, End: tc.end}, BucketOf(tc.window, tc.at))
		})
	}
	// Local time zones do not move UTC windows: 23:30 at -02:00 is 01:30 UTC on the 5th.
	require.Equal(t, "2026-03-05", BucketOf(snapshot.WindowDay, time.Date(2026, 3, 4, 23, 30, 0, 0, time.FixedZone("", -2*3600))).ID)

	b := BucketsAt(t0)
	for i, w := range Windows {
		require.Equal(t, BucketOf(w, t0), b[i])
		require.Equal(t, i, WindowIndex(w))
	}
	require.Equal(t, -1, WindowIndex("Year"))
	require.Equal(t, 24*time.Hour+39*time.Minute+30*time.Second, SpendTTL(b[0], t0), "window end + a day")
}

func TestMinuteAndSlidingCount(t *testing.T) {
	m, e := MinuteOf(time.UnixMilli(29_000_000*MinuteMs + 15_000))
	require.Equal(t, int64(29_000_000), m)
	require.Equal(t, int64(15_000), e)
	require.Equal(t, int64(10+3), SlidingCount(10, 3, 0), "right after a boundary the whole previous minute counts")
	require.Equal(t, int64(8+3), SlidingCount(10, 3, 15_000), "ceil(10 * 45/60) = 8")
	require.Equal(t, int64(1), SlidingCount(1, 0, 59_999), "rounds up")
}

func TestPhase(t *testing.T) {
	var l Limits
	l.Set(snapshot.WindowDay, true, 100)
	l.Set(snapshot.WindowHour, false, 10)
	l.Set("Year", true, 5)               // unknown window: ignored
	l.Set(snapshot.WindowMonth, true, 0) // no limit
	require.Equal(t, Limits{Hard: [4]int64{0, 100, 0, 0}, Soft: [4]int64{10, 0, 0, 0}}, l)
	require.Equal(t, l, LimitsOf(&snapshot.Budget{Limits: []snapshot.SpendLimit{
		{Window: snapshot.WindowDay, LimitMicros: 100, Enforcement: snapshot.EnforceHard},
		{Window: snapshot.WindowHour, LimitMicros: 10, Enforcement: snapshot.EnforceSoft},
	}}))

	spent := func(hour, day int64) [4]int64 { return [4]int64{hour, day, day, day} }
	for _, tc := range []struct {
		name               string
		suspended, runaway bool
		spent              [4]int64
		want               string
	}{
		{"nothing spent", false, false, spent(0, 0), PhaseActive},
		{"below every limit", false, false, spent(9, 99), PhaseActive},
		{"soft reached", false, false, spent(10, 99), PhaseSoftLimitReached},
		{"hard reached wins over soft", false, false, spent(10, 100), PhaseExhausted},
		{"runaway wins over exhausted", false, true, spent(10, 100), PhaseRunawayTripped},
		{"kill switch wins over all", true, true, spent(10, 100), PhaseSuspended},
	} {
		require.Equal(t, tc.want, Phase(tc.suspended, tc.runaway, tc.spent, l), tc.name)
	}
	require.Equal(t, int64(0), Remaining(100, 90, 20), "never below 0")
	require.Equal(t, int64(5), Remaining(100, 90, 5))
	require.False(t, Reached(1<<40, 0), "no limit is never reached")
}

// TestReadsDocumentedKeys writes the exact keys of docs/budget.md with plain Redis commands
// and reads them back.
func TestReadsDocumentedKeys(t *testing.T) {
	srv := redistest.Start(t)
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	defer rdb.Close()
	ctx := context.Background()
	nowMs := float64(t0.UnixMilli())
	minute := t0.UnixMilli() / 60_000
	require.NoError(t, rdb.MSet(ctx,
		"llmgw:{team-a}:spend:Day:2025-01-29", "700000",
		"llmgw:{team-a}:spend:Month:2025-01", "4000000",
		"llmgw:{team-a}:spend:Hour:2025-01-29T10", "100000",
		"llmgw:{team-a}:spend:Week:2025-W04", "999", // last week: not this one
		"llmgw:{team-a}:held", "350000",
		"llmgw:{team-a}:rpm:"+itoa(minute-1), "60", "llmgw:{team-a}:rpm:"+itoa(minute), "5",
		"llmgw:{team-a}:tpm:"+itoa(minute), "1000",
		"llmgw:{team-a}:vel:"+itoa(minute-1), "120",
	).Err())
	require.NoError(t, rdb.ZAdd(ctx, "llmgw:{team-a}:res",
		redis.Z{Score: nowMs + 30_000, Member: "live-1"}, redis.Z{Score: nowMs + 10_000, Member: "live-2"},
		redis.Z{Score: nowMs - 1, Member: "expired"}).Err())
	require.NoError(t, rdb.HSet(ctx, "llmgw:{team-a}:resamt", "live-1", "200000", "live-2", "100000", "expired", "50000").Err())

	c, err := Read(ctx, rdb, "team-a", t0)
	require.NoError(t, err)
	require.Equal(t, Counters{
		Spent:      [4]int64{100_000, 700_000, 0, 4_000_000},
		HeldMicros: 300_000, // the expired hold no longer counts
		InFlight:   2,
		// 30 s into the minute: half of the previous minute counts.
		RequestsLastMinute:    60/2 + 5,
		TokensLastMinute:      1000,
		SpendLastMinuteMicros: 120 / 2,
	}, c)
	require.False(t, c.RunawayTripped(t0))

	require.NoError(t, rdb.HSet(ctx, "llmgw:{team-a}:trip", "until", t0.Add(time.Minute).UnixMilli(), "at", t0.UnixMilli(),
		"rate", "2500000", "threshold", "2000000").Err())
	c, err = Read(ctx, rdb, "team-a", t0)
	require.NoError(t, err)
	require.Equal(t, &Trip{At: t0, Until: t0.Add(time.Minute), RateMicros: 2_500_000, ThresholdMicros: 2_000_000}, c.LastTrip)
	require.True(t, c.RunawayTripped(t0))
	require.False(t, c.RunawayTripped(t0.Add(time.Minute)), "the trip is over at its until")

	// A team with no counters yet reads as zero.
	c, err = Read(ctx, rdb, "team-b", t0)
	require.NoError(t, err)
	require.Equal(t, Counters{}, c)

	srv.Stop()
	_, err = Read(ctx, rdb, "team-a", t0)
	require.Error(t, err)
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
