package emulator

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"
)

// Defaults applied by New to the zero values of Config. They are Marketo's
// documented defaults where Marketo has one.
const (
	// TokenTTLDefault is the lifetime of a new access token.
	TokenTTLDefault = time.Hour
	// CallsPer20sDefault is the rate limit: calls per rolling 20 seconds.
	CallsPer20sDefault = 100
	// MaxConcurrencyDefault is the number of API calls that may be in flight
	// at once.
	MaxConcurrencyDefault = 10
	// DailyQuotaDefault is the number of API calls allowed per day.
	DailyQuotaDefault = 50000
	// ImportRowsPerSecDefault is the speed at which a bulk import processes
	// rows.
	ImportRowsPerSecDefault = 2000
	// ExportProcessingTimeDefault is how long a bulk extract job stays in
	// Processing.
	ExportProcessingTimeDefault = 2 * time.Second
	// ExportDailyBytesDefault is the daily bulk extract quota (500 MB).
	ExportDailyBytesDefault = 500 << 20
	// InstanceURLDefault is the Marketo UI address used in the url and
	// computedUrl fields of assets.
	InstanceURLDefault = "https://app-emulator.marketo.com"
)

// HTTP size limits, as documented by Marketo.
const (
	// MaxURIBytes is the longest request URI accepted (HTTP 414 beyond).
	MaxURIBytes = 8 << 10
	// MaxBodyBytes is the largest request body of a standard call (HTTP 413
	// beyond).
	MaxBodyBytes = 1 << 20
	// MaxImportFileBytes is the largest bulk import file (HTTP 413 beyond).
	MaxImportFileBytes = 10 << 20
	// MaxBatch is the most records, ids or filter values one Lead Database
	// call takes, and the largest page.
	MaxBatch = 300
	// MaxFilterMatches is the most leads a Get Leads by Filter query may
	// match before it answers 1003.
	MaxFilterMatches = 1000
)

// Config configures an Emulator. Zero values select Marketo's real defaults
// (the XxxDefault constants); a negative limit switches that limit off.
type Config struct {
	// ClientID and ClientSecret are the credentials the identity endpoint
	// accepts. When both are empty, any credentials are accepted.
	ClientID     string
	ClientSecret string
	// TokenTTL is the lifetime of an access token (default 1 h).
	TokenTTL time.Duration
	// CallsPer20s is the rate limit over a rolling 20 s window (default
	// 100, negative for none). Exceeding it answers 606.
	CallsPer20s int
	// MaxConcurrency is the number of API calls allowed in flight at once
	// (default 10, negative for none). Exceeding it answers 615.
	MaxConcurrency int
	// DailyQuota is the number of API calls allowed per day, reset at
	// midnight US Central Standard Time (default 50,000, negative for none).
	// Exceeding it answers 607.
	DailyQuota int
	// ImportRowsPerSec is the speed of bulk imports (default 2,000 rows per
	// second). A negative value makes imports complete as soon as they start.
	ImportRowsPerSec int
	// ExportProcessingTime is how long a bulk extract job processes (default
	// 2 s). A negative value makes extracts complete as soon as they start.
	ExportProcessingTime time.Duration
	// ExportDailyBytes is the daily bulk extract quota in bytes (default
	// 500 MB, negative for none). Enqueueing past it answers 1029.
	ExportDailyBytes int64
	// Latency is added to every API call while it holds its concurrency
	// slot, to imitate a real instance's response time (default none). It is
	// real time, not Now's.
	Latency time.Duration
	// CustomFields declares custom lead fields (string type, searchable) in
	// addition to Marketo's standard ones.
	CustomFields []string
	// Faults configures injected failures; all off by default.
	Faults Faults
	// InstanceURL is the UI address used in asset URLs (default
	// InstanceURLDefault).
	InstanceURL string
	// Now is the clock (default time.Now). Token expiry, the rate window,
	// the daily quota and the progress of bulk jobs follow it, so tests can
	// drive them deterministically.
	Now func() time.Time
	// Logger receives one debug line per call (default zap.NewNop()).
	Logger *zap.Logger
}

// withDefaults returns cfg with its zero values replaced by the defaults.
func (cfg Config) withDefaults() Config {
	if cfg.TokenTTL <= 0 {
		cfg.TokenTTL = TokenTTLDefault
	}
	if cfg.CallsPer20s == 0 {
		cfg.CallsPer20s = CallsPer20sDefault
	}
	if cfg.MaxConcurrency == 0 {
		cfg.MaxConcurrency = MaxConcurrencyDefault
	}
	if cfg.DailyQuota == 0 {
		cfg.DailyQuota = DailyQuotaDefault
	}
	if cfg.ImportRowsPerSec == 0 {
		cfg.ImportRowsPerSec = ImportRowsPerSecDefault
	}
	if cfg.ExportProcessingTime == 0 {
		cfg.ExportProcessingTime = ExportProcessingTimeDefault
	}
	if cfg.ExportDailyBytes == 0 {
		cfg.ExportDailyBytes = ExportDailyBytesDefault
	}
	if cfg.InstanceURL == "" {
		cfg.InstanceURL = InstanceURLDefault
	}
	cfg.InstanceURL = strings.TrimRight(cfg.InstanceURL, "/")
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	return cfg
}

// Emulator is an in-memory Marketo instance served over HTTP. It is safe for
// concurrent use. Create it with New and serve it with any http.Server or
// httptest.NewServer.
type Emulator struct {
	cfg  Config
	log  *zap.Logger
	now  func() time.Time
	done chan struct{}
	once sync.Once
	// routeList is the endpoint table, built by New and read-only after.
	routeList []route

	// mu guards everything below. Every operation is in memory and short,
	// so one lock keeps the model simple and consistent.
	mu sync.Mutex

	requestSeq int64

	auth   authState
	limits limitState
	stats  statsState

	faults Faults
	rng    *rand.Rand

	schema *schema
	leads  leadStore

	folders    map[int64]*folder
	nextFolder int64
	lists      map[int64]*staticList
	listByName map[string]int64
	nextList   int64
	imports    importState
	exports    exportState
}

// New returns an emulator configured by cfg, with no folders, lists or leads.
func New(cfg Config) *Emulator {
	cfg = cfg.withDefaults()
	e := &Emulator{
		cfg:        cfg,
		log:        cfg.Logger,
		now:        cfg.Now,
		done:       make(chan struct{}),
		schema:     newSchema(cfg.CustomFields),
		leads:      newLeadStore(),
		folders:    make(map[int64]*folder),
		nextFolder: firstFolderID,
		lists:      make(map[int64]*staticList),
		listByName: make(map[string]int64),
		nextList:   firstListID,
	}
	e.routeList = e.routes()
	e.auth.init()
	e.stats.init()
	e.imports.init()
	e.exports.init()
	e.setFaultsLocked(cfg.Faults)
	return e
}

// First IDs of each kind of object. The ranges differ so that a client
// confusing a list ID with a lead ID gets "not found" instead of a silent
// success.
const (
	firstFolderID = 101
	firstListID   = 1001
	firstLeadID   = 1000001
	firstBatchID  = 3001
)

// Close stops the emulator: calls waiting on Latency or a slow fault return
// at once. It never fails and may be called more than once. The emulator
// keeps answering calls after Close.
func (e *Emulator) Close() error {
	e.once.Do(func() { close(e.done) })
	return nil
}

// ServeHTTP answers one request: the identity endpoint, the REST and bulk
// APIs, and the inspection API under /_emulator/.
func (e *Emulator) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p := r.URL.Path
	switch {
	case p == "/identity/oauth/token":
		e.serveIdentity(w, r)
	case strings.HasPrefix(p, "/_emulator/"):
		e.serveInspect(w, r)
	case strings.HasPrefix(p, "/rest/"), strings.HasPrefix(p, "/bulk/"):
		e.serveAPI(w, r)
	default:
		http.Error(w, "404 page not found (Marketo paths start with /rest/, /bulk/ or /identity/)", http.StatusNotFound)
	}
}

// nextRequestIDLocked returns a Marketo-style request id ("1a#18c2f…").
func (e *Emulator) nextRequestIDLocked(now time.Time) string {
	e.requestSeq++
	return fmt.Sprintf("%x#%x", e.requestSeq, now.UnixMilli())
}

// sleep waits for d of real time, or until ctx ends or the emulator closes.
func (e *Emulator) sleep(ctx context.Context, d time.Duration) {
	if d <= 0 {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	case <-e.done:
	}
}
