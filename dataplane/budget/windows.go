package budget

import (
	"fmt"
	"time"

	"github.com/posthog/llm-gateway/dataplane/snapshot"
)

// windows lists the spend windows in the fixed order every store operation uses. Spend is
// always recorded in all four, whatever the budget limits, so that a limit added mid-window
// sees the true spend.
var windows = [4]string{snapshot.WindowHour, snapshot.WindowDay, snapshot.WindowWeek, snapshot.WindowMonth}

func windowIndex(w string) int {
	for i, x := range windows {
		if x == w {
			return i
		}
	}
	return -1
}

// bucket is one calendar window in UTC: [start, end).
type bucket struct {
	id         string
	start, end time.Time
}

// bucketOf returns the window of kind w that contains t. Hour, Day and Month are calendar
// aligned in UTC; Week is the ISO week, starting Monday 00:00 UTC.
func bucketOf(w string, t time.Time) bucket {
	t = t.UTC()
	y, mo, d := t.Date()
	switch w {
	case snapshot.WindowHour:
		s := time.Date(y, mo, d, t.Hour(), 0, 0, 0, time.UTC)
		return bucket{id: s.Format("2006-01-02T15"), start: s, end: s.Add(time.Hour)}
	case snapshot.WindowDay:
		s := time.Date(y, mo, d, 0, 0, 0, 0, time.UTC)
		return bucket{id: s.Format("2006-01-02"), start: s, end: s.AddDate(0, 0, 1)}
	case snapshot.WindowWeek:
		back := (int(t.Weekday()) + 6) % 7 // days since Monday
		s := time.Date(y, mo, d-back, 0, 0, 0, 0, time.UTC)
		iy, iw := s.ISOWeek()
		return bucket{id: fmt.Sprintf("%04d-W%02d", iy, iw), start: s, end: s.AddDate(0, 0, 7)}
	default: // Month
		s := time.Date(y, mo, 1, 0, 0, 0, 0, time.UTC)
		return bucket{id: s.Format("2006-01"), start: s, end: s.AddDate(0, 1, 0)}
	}
}

// bucketsAt returns the four current windows at t, in the order of windows.
func bucketsAt(t time.Time) [4]bucket {
	var b [4]bucket
	for i, w := range windows {
		b[i] = bucketOf(w, t)
	}
	return b
}

// spendKeyGrace keeps a window's counter readable for a day after the window ends.
const spendKeyGrace = 24 * time.Hour

// spendTTL is the expiry of a window's counters, set relative to now.
func spendTTL(b bucket, now time.Time) time.Duration { return b.end.Sub(now) + spendKeyGrace }

// limitsOf splits a budget's spend limits by window: hard[i] and soft[i] are the limits of
// windows[i] in micro-dollars, 0 when there is none.
func limitsOf(b *snapshot.Budget) (hard, soft [4]int64) {
	for _, l := range b.Limits {
		i := windowIndex(l.Window)
		if i < 0 || l.LimitMicros <= 0 {
			continue
		}
		if l.Enforcement == snapshot.EnforceSoft {
			soft[i] = l.LimitMicros
		} else {
			hard[i] = l.LimitMicros
		}
	}
	return hard, soft
}

// Sliding-window rate limits. The minute window is approximated from two fixed one-minute
// counters: count = ceil(previous * (60s - elapsed)/60s) + current. It assumes the previous
// minute's requests were spread evenly (rounding up, so right after a boundary the whole
// previous minute still counts); unlike a fixed window it does not let a burst of twice the
// limit through across a minute boundary.
const minuteMs = 60_000

func minuteOf(t time.Time) (minute, elapsedMs int64) {
	ms := t.UnixMilli()
	return ms / minuteMs, ms % minuteMs
}

func slidingCount(prev, cur, elapsedMs int64) int64 {
	return (prev*(minuteMs-elapsedMs)+minuteMs-1)/minuteMs + cur
}

// slidingRetryAfter is how long until need more units fit under limit, given the counters.
// The caller has checked that need <= limit.
func slidingRetryAfter(prev, cur, need, limit, elapsedMs int64) time.Duration {
	ms := int64(0)
	if cur+need <= limit {
		// Wait for the previous minute's weight to decay: prev*(W-e)/W <= limit-cur-need.
		if prev > 0 {
			e := minuteMs - (limit-cur-need)*minuteMs/prev
			ms = e - elapsedMs
		}
	} else {
		// The next minute: the current count becomes the previous one.
		e := int64(0)
		if cur > 0 {
			e = minuteMs - (limit-need)*minuteMs/cur
		}
		ms = minuteMs - elapsedMs + e
	}
	return ceilSecond(time.Duration(ms) * time.Millisecond)
}

// ceilSecond rounds d up to whole seconds (retry-after has second precision), at least 1s.
func ceilSecond(d time.Duration) time.Duration {
	if d < time.Second {
		return time.Second
	}
	return (d + time.Second - 1) / time.Second * time.Second
}
