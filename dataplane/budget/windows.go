package budget

import (
	"time"

	"github.com/posthog/llm-gateway/dataplane/budget/ledger"
)

// Windows, buckets, minute counters and the key schema are the ledger's (dataplane/budget/ledger),
// shared with the operator. What is left here is admission's own arithmetic.

// slidingRetryAfter is how long until need more units fit under limit, given the counters.
// The caller has checked that need <= limit.
func slidingRetryAfter(prev, cur, need, limit, elapsedMs int64) time.Duration {
	ms := int64(0)
	if cur+need <= limit {
		// Wait for the previous minute's weight to decay: prev*(W-e)/W <= limit-cur-need.
		if prev > 0 {
			e := ledger.MinuteMs - (limit-cur-need)*ledger.MinuteMs/prev
			ms = e - elapsedMs
		}
	} else {
		// The next minute: the current count becomes the previous one.
		e := int64(0)
		if cur > 0 {
			e = ledger.MinuteMs - (limit-need)*ledger.MinuteMs/cur
		}
		ms = ledger.MinuteMs - elapsedMs + e
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
