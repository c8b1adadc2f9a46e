package marketo

import (
	"context"
	"sync"
	"time"
)

// limiter paces the calls of one Client (one Marketo instance) so that
// normal operation never provokes 606 (rate) or 615 (concurrency):
//
//   - a semaphore holds the number of calls in flight to maxConcurrent;
//   - a true sliding window holds the calls in any rolling window to limit.
//
// The window is conservative about latency: a call occupies its slot from
// the moment it is sent until window after its response arrived, because
// Marketo stamps it somewhere in between. So any window Marketo can observe
// holds at most limit calls, however slow the network. A token bucket would
// instead allow a burst of its capacity on top of a full window.
type limiter struct {
	now    func() time.Time
	window time.Duration
	limit  int
	sem    chan struct{}

	mu       sync.Mutex
	inflight int
	done     []time.Time // completion times within the window, ascending
	pausedTo time.Time   // no call starts before this (after a 606/615)
	changed  chan struct{}
}

func newLimiter(now func() time.Time, window time.Duration, limit, maxConcurrent int) *limiter {
	return &limiter{
		now:     now,
		window:  window,
		limit:   limit,
		sem:     make(chan struct{}, maxConcurrent),
		changed: make(chan struct{}),
	}
}

// reserve takes a window slot if one is free at now. Otherwise it returns how
// long to wait before trying again (0 means: until a call in flight ends).
// The caller holds l.mu.
func (l *limiter) reserve(now time.Time) (bool, time.Duration) {
	if now.Before(l.pausedTo) {
		return false, l.pausedTo.Sub(now)
	}
	cut := now.Add(-l.window)
	i := 0
	for i < len(l.done) && !l.done[i].After(cut) {
		i++
	}
	if i > 0 {
		l.done = append(l.done[:0], l.done[i:]...)
	}
	if l.inflight+len(l.done) < l.limit {
		l.inflight++
		return true, 0
	}
	if len(l.done) == 0 {
		return false, 0
	}
	return false, l.done[0].Sub(cut) + time.Millisecond
}

// finish records the end of a call that reserve admitted. The caller holds
// l.mu.
func (l *limiter) finish(now time.Time) {
	l.inflight--
	// Keep done ascending even if the injected clock steps back.
	if n := len(l.done); n > 0 && now.Before(l.done[n-1]) {
		now = l.done[n-1]
	}
	l.done = append(l.done, now)
	close(l.changed)
	l.changed = make(chan struct{})
}

// acquire waits for a concurrency slot and a window slot, and returns the
// function that releases them once the call's response has been read.
func (l *limiter) acquire(ctx context.Context) (func(), error) {
	select {
	case l.sem <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	for {
		l.mu.Lock()
		ok, wait := l.reserve(l.now())
		changed := l.changed
		l.mu.Unlock()
		if ok {
			var once sync.Once
			return func() {
				once.Do(func() {
					l.mu.Lock()
					l.finish(l.now())
					l.mu.Unlock()
					<-l.sem
				})
			}, nil
		}
		var timer *time.Timer
		var fire <-chan time.Time
		if wait > 0 {
			timer = time.NewTimer(wait)
			fire = timer.C
		}
		select {
		case <-fire:
		case <-changed:
		case <-ctx.Done():
		}
		if timer != nil {
			timer.Stop()
		}
		if err := ctx.Err(); err != nil {
			<-l.sem
			return nil, err
		}
	}
}

// pause holds every new call back for d, after Marketo said the instance is
// over its rate or concurrency limit (other integrations share it).
func (l *limiter) pause(d time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if to := l.now().Add(d); to.After(l.pausedTo) {
		l.pausedTo = to
	}
}
