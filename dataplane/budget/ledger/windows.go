package ledger

import (
	"fmt"
	"time"

	"github.com/posthog/llm-gateway/dataplane/snapshot"
)

// NumWindows is the number of spend windows.
const NumWindows = 4

// Windows lists the spend windows in the fixed order of every per-window array of this
// package and of the gateway's scripts. Spend is always recorded in all four, whatever the
// budget's limits, so that a limit added mid-window sees the true spend. Do not modify it.
var Windows = [NumWindows]string{snapshot.WindowHour, snapshot.WindowDay, snapshot.WindowWeek, snapshot.WindowMonth}

// WindowIndex is the index of window w in Windows, or -1.
func WindowIndex(w string) int {
	for i, x := range Windows {
		if x == w {
			return i
		}
	}
	return -1
}

// Bucket is one calendar window in UTC: [Start, End). ID names it in the Spend and Soft keys.
type Bucket struct {
	// ID is "2025-01-29T10" (Hour), "2025-01-29" (Day), "2025-W05" (ISO week) or "2025-01"
	// (Month).
	ID         string
	Start, End time.Time
}

// BucketOf returns the window of kind w that contains t. Hour, Day and Month are calendar
// aligned in UTC; Week is the ISO week, starting Monday 00:00 UTC. An unknown w is a Month.
// End is when the window resets.
func BucketOf(w string, t time.Time) Bucket {
	t = t.UTC()
	y, mo, d := t.Date()
	switch w {
	case snapshot.WindowHour:
		s := time.Date(y, mo, d, t.Hour(), 0, 0, 0, time.UTC)
		return Bucket{ID: s.Format("2006-01-02T15"), Start: s, End: s.Add(time.Hour)}
	case snapshot.WindowDay:
		s := time.Date(y, mo, d, 0, 0, 0, 0, time.UTC)
		return Bucket{ID: s.Format("2006-01-02"), Start: s, End: s.AddDate(0, 0, 1)}
	case snapshot.WindowWeek:
		back := (int(t.Weekday()) + 6) % 7 // days since Monday
		s := time.Date(y, mo, d-back, 0, 0, 0, 0, time.UTC)
		iy, iw := s.ISOWeek()
		return Bucket{ID: fmt.Sprintf("%04d-W%02d", iy, iw), Start: s, End: s.AddDate(0, 0, 7)}
	default: // Month
		s := time.Date(y, mo, 1, 0, 0, 0, 0, time.UTC)
		return Bucket{ID: s.Format("2006-01"), Start: s, End: s.AddDate(0, 1, 0)}
	}
}

// BucketsAt returns the four current windows at t, in the order of Windows.
func BucketsAt(t time.Time) [NumWindows]Bucket {
	var b [NumWindows]Bucket
	for i, w := range Windows {
		b[i] = BucketOf(w, t)
	}
	return b
}

// Expiries of the keys.
const (
	// SpendKeyGrace keeps a window's Spend and Soft keys readable for a day after the window
	// ends (SpendTTL).
	SpendKeyGrace = 24 * time.Hour
	// RateKeyTTL keeps a minute counter (RPM, TPM, Vel) while it can still be the "previous"
	// minute of the sliding count.
	RateKeyTTL = 3 * time.Minute
	// TripRecordTTL keeps the Trip record a day beyond its cooldown, so that the operator can
	// show the last trip.
	TripRecordTTL = 24 * time.Hour
)

// SpendTTL is the expiry of a window's Spend and Soft keys, relative to now.
func SpendTTL(b Bucket, now time.Time) time.Duration { return b.End.Sub(now) + SpendKeyGrace }

// MinuteMs is the length of the minute counters, in milliseconds.
const MinuteMs = 60_000

// MinuteOf returns the unix minute of t (as in the RPM, TPM and Vel keys) and the
// milliseconds elapsed in it.
func MinuteOf(t time.Time) (minute, elapsedMs int64) {
	ms := t.UnixMilli()
	return ms / MinuteMs, ms % MinuteMs
}

// SlidingCount approximates a sliding minute from two fixed one-minute counters:
// ceil(prev * (60s - elapsed)/60s) + cur. It assumes the previous minute's units were spread
// evenly (rounding up, so right after a boundary the whole previous minute still counts);
// unlike a fixed window it does not let a burst of twice a limit through across a minute
// boundary. The admission script computes the same.
func SlidingCount(prev, cur, elapsedMs int64) int64 {
	return (prev*(MinuteMs-elapsedMs)+MinuteMs-1)/MinuteMs + cur
}
