package marketo

import (
	"sync"
	"time"
)

// marketoZone is the zone in which Marketo resets its daily quotas: "12:00
// AM CST". A fixed offset needs no time zone database.
func marketoZone() *time.Location { return time.FixedZone("CST", -6*60*60) }

// dailyQuota counts this client's calls per Marketo day, so that it stops
// with ErrDailyQuota before Marketo answers 607 (other integrations share
// Marketo's quota, so 607 may still come first; it stops the run too).
type dailyQuota struct {
	limit int

	mu    sync.Mutex
	day   string
	count int
}

// take counts one call at now, or reports false when the quota is spent.
func (q *dailyQuota) take(now time.Time) bool {
	if q.limit < 0 {
		return true
	}
	day := now.In(marketoZone()).Format(time.DateOnly)
	q.mu.Lock()
	defer q.mu.Unlock()
	if day != q.day {
		q.day, q.count = day, 0
	}
	if q.count >= q.limit {
		return false
	}
	q.count++
	return true
}
