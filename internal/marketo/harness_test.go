package marketo_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest"

	"github.com/listsync/listsync/internal/marketo"
	"github.com/listsync/listsync/internal/marketo/emulator"
)

// speed is how much faster than real time the emulator's clock runs in the
// tests, so that its 20 s rate window, token lifetimes and bulk jobs pass in
// milliseconds. The client's rate window is scaled by the same factor.
const speed = 100

// fastClock runs speed times faster than real time from its creation.
type fastClock struct {
	start time.Time
	speed float64
}

func newFastClock(speed float64) *fastClock { return &fastClock{start: time.Now(), speed: speed} }

func (f *fastClock) Now() time.Time {
	return f.start.Add(time.Duration(float64(time.Since(f.start)) * f.speed))
}

// observed is a request seen by the transport wrapper.
type observed struct {
	method, path, query string
}

// bundle is one emulator served over HTTP and a client talking to it.
type bundle struct {
	em    *emulator.Emulator
	ts    *httptest.Server
	c     *marketo.Client
	clock *fastClock

	mu  sync.Mutex
	obs []observed
	// before, when set, runs before a request is sent (to inject a race).
	before func(r *http.Request)

	onCallMu sync.Mutex
	onCall   map[string]int64
}

type options struct {
	em     emulator.Config
	client func(*marketo.Config)
	speed  float64
}

// setup starts an emulator and a client configured for fast tests: the
// client's backoff and poll intervals are milliseconds, and both sides share
// one fast clock.
func setup(t testing.TB, o options) *bundle {
	t.Helper()
	sp := o.speed
	if sp == 0 {
		sp = speed
	}
	b := &bundle{clock: newFastClock(sp), onCall: map[string]int64{}}
	emCfg := o.em
	emCfg.ClientID, emCfg.ClientSecret = "id", "secret"
	emCfg.Now = b.clock.Now
	b.em = emulator.New(emCfg)
	b.ts = httptest.NewServer(b.em)
	t.Cleanup(func() {
		b.ts.Close()
		_ = b.em.Close()
	})
	hc := b.ts.Client()
	base := hc.Transport
	hc.Transport = roundTripFunc(func(r *http.Request) (*http.Response, error) {
		b.mu.Lock()
		b.obs = append(b.obs, observed{r.Method, r.URL.Path, r.URL.RawQuery})
		before := b.before
		b.mu.Unlock()
		if before != nil {
			before(r)
		}
		return base.RoundTrip(r)
	})
	var logger *zap.Logger
	if tt, ok := t.(*testing.T); ok {
		logger = zaptest.NewLogger(tt, zaptest.Level(testLogLevel()))
	}
	cfg := marketo.Config{
		Endpoint:           b.ts.URL + "/rest",
		ClientID:           "id",
		ClientSecret:       "secret",
		HTTPClient:         hc,
		Logger:             logger,
		RateWindow:         time.Duration(float64(20*time.Second) / sp),
		BackoffBase:        2 * time.Millisecond,
		BackoffMax:         40 * time.Millisecond,
		ImportPollInitial:  2 * time.Millisecond,
		ImportPollMax:      20 * time.Millisecond,
		ExtractPollInitial: 2 * time.Millisecond,
		ExtractPollMax:     20 * time.Millisecond,
		TempDir:            t.TempDir(),
		OnCall: func(endpoint, code string) {
			b.onCallMu.Lock()
			b.onCall[endpoint+" "+code]++
			b.onCallMu.Unlock()
		},
	}
	if o.client != nil {
		o.client(&cfg)
	}
	c, err := marketo.NewClient(cfg)
	require.NoError(t, err)
	b.c = c
	return b
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func (b *bundle) observed() []observed {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.obs)
}

func (b *bundle) setBefore(f func(r *http.Request)) {
	b.mu.Lock()
	b.before = f
	b.mu.Unlock()
}

// collector is a CommitFunc that keeps every outcome.
type collector struct {
	mu    sync.Mutex
	calls int
	outs  []marketo.Outcome
}

func (c *collector) commit(_ context.Context, outs []marketo.Outcome) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.calls++
	c.outs = append(c.outs, outs...)
	return nil
}

func (c *collector) byKey() map[string]marketo.Outcome {
	c.mu.Lock()
	defer c.mu.Unlock()
	m := make(map[string]marketo.Outcome, len(c.outs))
	for _, o := range c.outs {
		m[o.Key] = o
	}
	return m
}

// addCounted pushes p through b's client, counting its calls, and returns
// what was committed and the calls by endpoint.
func (b *bundle) addCounted(t *testing.T, p marketo.AddParams) (*collector, map[string]int64) {
	t.Helper()
	var col collector
	var cc marketo.CallCounter
	require.NoError(t, b.c.AddToList(marketo.WithCallCounter(t.Context(), &cc), p, col.commit))
	return &col, cc.ByEndpoint()
}

// memberEmails returns the lower-cased emails of a list's members.
func memberEmails(em *emulator.Emulator, listID int64) map[string]int64 {
	out := map[string]int64{}
	for _, l := range em.ListMembers(listID) {
		out[strings.ToLower(l.Email)] = l.ID
	}
	return out
}

func emails(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = prefix + strconv.Itoa(i) + "@example.com"
	}
	return out
}

// leadsFor returns a lead for each key, with one value, for the field
// firstName.
func leadsFor(keys []string) []marketo.Lead {
	out := make([]marketo.Lead, len(keys))
	for i, k := range keys {
		out[i] = marketo.Lead{Key: k, Values: []string{"F" + strconv.Itoa(i)}} // FieldNames: firstName
	}
	return out
}

func testLogLevel() zapcore.Level {
	if os.Getenv("MARKETO_TEST_DEBUG") != "" {
		return zap.DebugLevel
	}
	return zap.WarnLevel
}
