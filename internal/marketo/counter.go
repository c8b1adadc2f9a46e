package marketo

import (
	"context"
	"maps"
	"sync"
)

// CallCounter counts the Marketo API calls made under a context (see
// [WithCallCounter]): every request sent that counts against Marketo's rate
// limit and daily quota, retries included. Identity (token) calls do not
// count against either and are not counted here; [Config.OnCall] sees them.
// It is safe for concurrent use; its zero value is ready to use.
type CallCounter struct {
	mu         sync.Mutex
	total      int64
	byEndpoint map[string]int64
	byCode     map[string]int64
}

// Total returns the number of calls counted.
func (c *CallCounter) Total() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.total
}

// ByEndpoint returns a copy of the counts by endpoint, such as
// "DELETE /rest/v1/lists/{id}/leads.json".
func (c *CallCounter) ByEndpoint() map[string]int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return maps.Clone(nonNil(c.byEndpoint))
}

// ByCode returns a copy of the counts by outcome: "ok" for a successful
// envelope, Marketo's error code ("606"), "http_<status>" for an HTTP-level
// failure, or "transport" when no response arrived.
func (c *CallCounter) ByCode() map[string]int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return maps.Clone(nonNil(c.byCode))
}

func (c *CallCounter) add(endpoint, code string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.byEndpoint == nil {
		c.byEndpoint = make(map[string]int64)
		c.byCode = make(map[string]int64)
	}
	c.total++
	c.byEndpoint[endpoint]++
	c.byCode[code]++
}

func nonNil(m map[string]int64) map[string]int64 {
	if m == nil {
		return map[string]int64{}
	}
	return m
}

type counterKey struct{}

// WithCallCounter returns a context under which every API call the client
// makes is also counted into c, so that a run can record its own calls while
// several runs share one Client. Counters nest: a call counts into every
// counter attached to the context chain.
func WithCallCounter(ctx context.Context, c *CallCounter) context.Context {
	parents, _ := ctx.Value(counterKey{}).([]*CallCounter)
	all := make([]*CallCounter, 0, len(parents)+1)
	all = append(all, parents...)
	all = append(all, c)
	return context.WithValue(ctx, counterKey{}, all)
}

func countCall(ctx context.Context, endpoint, code string) {
	cs, _ := ctx.Value(counterKey{}).([]*CallCounter)
	for _, c := range cs {
		c.add(endpoint, code)
	}
}
