package ratelog

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestOncePerInterval(t *testing.T) {
	var l Limiter
	require.True(t, l.Allow(time.Hour), "the first line is logged")
	require.False(t, l.Allow(time.Hour), "the next one within the interval is not")
	require.True(t, l.Allow(0), "an interval that has passed allows the next")

	// Concurrent callers: exactly one wins an interval.
	var m Limiter
	var won atomic.Int32
	var wg sync.WaitGroup
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if m.Allow(time.Hour) {
				won.Add(1)
			}
		}()
	}
	wg.Wait()
	require.Equal(t, int32(1), won.Load())
}
