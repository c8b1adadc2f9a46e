package emulator

import (
	"fmt"
	"time"
)

// rateWindow is the length of Marketo's rolling rate-limit window.
const rateWindow = 20 * time.Second

// quotaOffset is the UTC offset of Marketo's daily quota reset: midnight US
// Central Standard Time, as documented ("12:00 AM CST"), without daylight
// saving.
const quotaOffset = -6 * 60 * 60

// limitState tracks Marketo's per-instance limits.
type limitState struct {
	// window holds the times of the counted calls of the last 20 s, oldest
	// first.
	window   []time.Time
	inFlight int64
	maxSeen  int64
	dayStart time.Time
	dayCalls int64
}

// admitLocked takes a concurrency slot for a call and checks the limits in
// Marketo's order: concurrency (615), daily quota (607), rate (606). On
// refusal the slot is given back and the error is returned. A call that is
// admitted must later call releaseLocked, and chargeLocked if it counts.
func (e *Emulator) admitLocked(now time.Time) (code, msg string) {
	l := &e.limits
	l.inFlight++
	if l.inFlight > l.maxSeen {
		l.maxSeen = l.inFlight
	}
	if n := e.cfg.MaxConcurrency; n > 0 && l.inFlight > int64(n) {
		l.inFlight--
		return "615", fmt.Sprintf("Concurrent access limit '%d' reached", n)
	}
	e.rollQuotaLocked(now)
	if n := e.cfg.DailyQuota; n > 0 && l.dayCalls >= int64(n) {
		l.inFlight--
		return "607", "Daily quota reached"
	}
	e.pruneWindowLocked(now)
	if n := e.cfg.CallsPer20s; n > 0 && len(l.window) >= n {
		l.inFlight--
		return "606", fmt.Sprintf("Max rate limit '%d' exceeded with in '%d' secs", n, int(rateWindow/time.Second))
	}
	return "", ""
}

// chargeLocked counts an admitted call against the rate window and the daily
// quota.
func (e *Emulator) chargeLocked(now time.Time) {
	l := &e.limits
	l.dayCalls++
	if e.cfg.CallsPer20s > 0 {
		l.window = append(l.window, now)
	}
}

// releaseLocked gives back an admitted call's concurrency slot.
func (e *Emulator) releaseLocked() {
	e.limits.inFlight--
}

// pruneWindowLocked drops calls older than the rate window.
func (e *Emulator) pruneWindowLocked(now time.Time) {
	l := &e.limits
	cut := now.Add(-rateWindow)
	i := 0
	for i < len(l.window) && !l.window[i].After(cut) {
		i++
	}
	if i > 0 {
		l.window = append(l.window[:0], l.window[i:]...)
	}
}

// rollQuotaLocked starts a new quota day when now has passed midnight CST.
func (e *Emulator) rollQuotaLocked(now time.Time) {
	zone := time.FixedZone("CST", quotaOffset)
	t := now.In(zone)
	start := time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, zone)
	if !start.Equal(e.limits.dayStart) {
		e.limits.dayStart = start
		e.limits.dayCalls = 0
	}
}

// ResetDailyQuota sets the calls counted against today's quota back to zero,
// as Marketo's midnight reset does.
func (e *Emulator) ResetDailyQuota() {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.limits.dayCalls = 0
}
