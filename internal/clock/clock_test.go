package clock

import (
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestFake(t *testing.T) {
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	f := NewFake(t0)
	require.Equal(t, t0, f.Now())
	f.Advance(90 * time.Second)
	require.Equal(t, t0.Add(90*time.Second), f.Now())
	f.Set(t0)
	require.Equal(t, t0, f.Now())

	var wg sync.WaitGroup // concurrent use (run with -race)
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 100 {
				f.Advance(time.Millisecond)
				_ = f.Now()
			}
		}()
	}
	wg.Wait()
	require.Equal(t, t0.Add(400*time.Millisecond), f.Now())
}

func TestOr(t *testing.T) {
	require.Equal(t, Real{}, Or(nil))
	f := NewFake(time.Unix(0, 0))
	require.Same(t, f, Or(f))
	before := time.Now()
	now := Or(nil).Now()
	require.False(t, now.Before(before), "the real clock reads the wall clock")
}
