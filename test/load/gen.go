package load

import (
	"context"
	"runtime"
	"sync"
	"syscall"
	"time"
)

// OpenLoop calls do at a fixed rate for dur, each call in its own goroutine and scheduled on
// the clock (request i at start + i/rate), whether or not earlier calls have returned: a slow
// system under test cannot slow the generator down (no coordinated omission). do gets the
// scheduled time and measures its latency from it. OpenLoop waits for every call and returns
// their results in schedule order and how late each was dispatched.
func OpenLoop[T any](ctx context.Context, rate float64, dur time.Duration, do func(ctx context.Context, scheduled time.Time) T) (results []T, lags []time.Duration) {
	n := int(rate * dur.Seconds())
	if n <= 0 || rate <= 0 {
		return nil, nil
	}
	results, lags = make([]T, n), make([]time.Duration, 0, n)
	interval := time.Duration(float64(time.Second) / rate)
	var wg sync.WaitGroup
	defer lockPreciseSleep()()
	start := time.Now()
	for i := range n {
		at := start.Add(time.Duration(i) * interval)
		sleepUntil(at)
		if ctx.Err() != nil {
			results = results[:i]
			break
		}
		lags = append(lags, time.Since(at))
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = do(ctx, at)
		}()
	}
	wg.Wait()
	return results, lags
}

// ClosedLoop runs conc workers, each calling do back to back until dur has passed (calls in
// flight then finish). It returns every call's latency and error in completion order per
// worker, and the time from start to the last completion.
func ClosedLoop(ctx context.Context, conc int, dur time.Duration, do func(ctx context.Context) error) (lats []time.Duration, errs []error, elapsed time.Duration) {
	type part struct {
		lats []time.Duration
		errs []error
	}
	parts := make([]part, conc)
	var wg sync.WaitGroup
	start := time.Now()
	deadline := start.Add(dur)
	for w := range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p := &parts[w]
			for ctx.Err() == nil && time.Now().Before(deadline) {
				t0 := time.Now()
				err := do(ctx)
				p.lats = append(p.lats, time.Since(t0))
				p.errs = append(p.errs, err)
			}
		}()
	}
	wg.Wait()
	elapsed = time.Since(start)
	for _, p := range parts {
		lats = append(lats, p.lats...)
		errs = append(errs, p.errs...)
	}
	return lats, errs, elapsed
}

// lockPreciseSleep pins the calling goroutine to its OS thread and sets that thread's timer
// slack to 1 µs, so that sleepUntil wakes within tens of microseconds of the schedule.
// time.Sleep rounds sub-millisecond waits up to about a millisecond (the netpoller's timeout
// unit), which would send a 2,000 req/s schedule in bursts. The dispatch lag is reported.
// The returned function undoes the pinning (the thread keeps the small slack: harmless).
func lockPreciseSleep() (unlock func()) {
	runtime.LockOSThread()
	const prSetTimerSlack = 29
	_, _, _ = syscall.RawSyscall(syscall.SYS_PRCTL, prSetTimerSlack, 1000, 0)
	return runtime.UnlockOSThread
}

// sleepUntil blocks the thread in nanosleep(2) until at.
func sleepUntil(at time.Time) {
	for d := time.Until(at); d > 0; d = time.Until(at) {
		ts := syscall.NsecToTimespec(int64(d))
		_ = syscall.Nanosleep(&ts, nil)
	}
}
