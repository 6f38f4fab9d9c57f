// Package ratelog limits a repeated log line to one per interval (the recorder's drop and
// outbox-read errors, which can fire on every call while an outbox is down).
package ratelog

import (
	"sync/atomic"
	"time"
)

// Limiter allows one event per interval. The zero value is ready; it is safe for
// concurrent use.
type Limiter struct{ last atomic.Int64 }

// Allow reports whether a line may be logged now: true at most once every interval.
func (l *Limiter) Allow(every time.Duration) bool {
	now := time.Now().UnixNano()
	last := l.last.Load()
	return now-last >= int64(every) && l.last.CompareAndSwap(last, now)
}
