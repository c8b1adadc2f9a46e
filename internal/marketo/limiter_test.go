package marketo

import (
	"context"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

type span struct{ start, end time.Time }

// maxInAnyWindow returns the most calls Marketo could count in one rolling
// window, whatever moment between a call's start and end it stamps the call
// with: the calls whose [start, end] meets a window (T-w, T], maximised over
// T at every start.
func maxInAnyWindow(spans []span, w time.Duration) int {
	most := 0
	for _, s := range spans {
		T := s.start
		n := 0
		for _, o := range spans {
			if !o.start.After(T) && o.end.After(T.Add(-w)) {
				n++
			}
		}
		most = max(most, n)
	}
	return most
}

// TestLimiterSlidingWindowSimulated drives reserve/finish with an injected
// clock: random latencies up to 3 s, 8 callers hammering the limiter for
// 200 simulated seconds. No rolling window may hold more than the limit, and
// the limiter must not be needlessly slow either.
func TestLimiterSlidingWindowSimulated(t *testing.T) {
	t.Parallel()
	const (
		limit   = 10
		window  = 20 * time.Second
		callers = 8
	)
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	now := t0
	l := newLimiter(func() time.Time { return now }, window, limit, callers)
	rng := rand.New(rand.NewPCG(1, 2))
	type caller struct {
		busyUntil time.Time
		start     time.Time
		busy      bool
	}
	cs := make([]caller, callers)
	var spans []span
	step := 10 * time.Millisecond
	for now = t0; now.Before(t0.Add(200 * time.Second)); now = now.Add(step) {
		for i := range cs {
			c := &cs[i]
			if c.busy && !now.Before(c.busyUntil) {
				l.finish(now)
				spans = append(spans, span{c.start, now})
				c.busy = false
			}
			if !c.busy {
				if ok, _ := l.reserve(now); ok {
					c.busy, c.start = true, now
					c.busyUntil = now.Add(time.Duration(rng.Int64N(int64(3 * time.Second))))
				}
			}
		}
	}
	require.LessOrEqual(t, maxInAnyWindow(spans, window), limit)
	// 200 s hold 10 windows of 10 calls; latency eats some of it, but a
	// limiter that admits less than half of that is broken.
	require.Greater(t, len(spans), 50)
}

func TestLimiterReserveWaits(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	l := newLimiter(func() time.Time { return t0 }, 20*time.Second, 2, 5)
	ok, _ := l.reserve(t0)
	require.True(t, ok)
	ok, _ = l.reserve(t0)
	require.True(t, ok)
	ok, wait := l.reserve(t0)
	require.False(t, ok)
	require.Zero(t, wait, "both calls are in flight: wait for one to end")
	l.finish(t0.Add(time.Second))
	ok, wait = l.reserve(t0.Add(time.Second))
	require.False(t, ok, "a finished call holds its slot for a window after it ended")
	require.Equal(t, 20*time.Second+time.Millisecond, wait)
	ok, _ = l.reserve(t0.Add(21*time.Second + time.Millisecond))
	require.True(t, ok)

	l.pause(5 * time.Second) // pause from l.now() == t0
	l.finish(t0)
	ok, wait = l.reserve(t0.Add(2 * time.Second))
	require.False(t, ok)
	require.Equal(t, 3*time.Second, wait)
}

// TestLimiterAcquireRealTime runs the blocking path with real time and a
// short window: the concurrency cap and the window both hold.
func TestLimiterAcquireRealTime(t *testing.T) {
	t.Parallel()
	const (
		limit  = 6
		window = 150 * time.Millisecond
		conc   = 2
	)
	l := newLimiter(time.Now, window, limit, conc)
	var (
		mu       sync.Mutex
		spans    []span
		inflight atomic.Int64
		most     atomic.Int64
		wg       sync.WaitGroup
	)
	for range 24 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			release, err := l.acquire(t.Context())
			if err != nil {
				t.Error(err)
				return
			}
			start := time.Now()
			n := inflight.Add(1)
			for {
				m := most.Load()
				if n <= m || most.CompareAndSwap(m, n) {
					break
				}
			}
			time.Sleep(5 * time.Millisecond)
			inflight.Add(-1)
			end := time.Now()
			release()
			mu.Lock()
			spans = append(spans, span{start, end})
			mu.Unlock()
		}()
	}
	wg.Wait()
	require.Len(t, spans, 24)
	require.LessOrEqual(t, most.Load(), int64(conc))
	require.LessOrEqual(t, maxInAnyWindow(spans, window), limit)
}

func TestLimiterAcquireHonoursContext(t *testing.T) {
	t.Parallel()
	l := newLimiter(time.Now, time.Hour, 1, 1)
	release, err := l.acquire(t.Context())
	require.NoError(t, err)
	release()
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Millisecond)
	defer cancel()
	_, err = l.acquire(ctx)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	// The semaphore slot was given back.
	require.Len(t, l.sem, 0)
}

func TestDailyQuota(t *testing.T) {
	t.Parallel()
	q := &dailyQuota{limit: 2}
	// 05:59 UTC is 23:59 in Marketo's CST day; 06:00 UTC starts a new day.
	day1 := time.Date(2026, 3, 1, 5, 59, 0, 0, time.UTC)
	require.True(t, q.take(day1))
	require.True(t, q.take(day1))
	require.False(t, q.take(day1))
	require.True(t, q.take(day1.Add(time.Minute)))
	off := &dailyQuota{limit: -1}
	for range 5 {
		require.True(t, off.take(day1))
	}
}
