package marketo

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	stdsync "sync"
	"time"

	"go.uber.org/zap"
)

// Defaults of [Config].
const (
	// CallsPer20sDefault leaves 20 of the instance's 100 calls per 20 s to the
	// other integrations that share it.
	CallsPer20sDefault = 80
	// MaxConcurrencyDefault is Marketo's guidance (the instance allows 10).
	MaxConcurrencyDefault = 5
	// DailyQuotaDefault is the common subscription quota.
	DailyQuotaDefault = 50000
	// RateWindowDefault is Marketo's rate-limit window.
	RateWindowDefault = 20 * time.Second
	// BackoffBaseDefault is the first retry delay (before jitter).
	BackoffBaseDefault = time.Second
	// BackoffMaxDefault caps the retry delay.
	BackoffMaxDefault = 30 * time.Second
	// MaxAttemptsDefault bounds the attempts of one call on retryable errors
	// (the context bounds them too).
	MaxAttemptsDefault = 10
	// TokenRefreshMarginDefault is how long before its expiry a token is
	// replaced.
	TokenRefreshMarginDefault = 60 * time.Second
	// BulkAddMinRowsDefault is the size from which adds go through a bulk
	// import instead of the REST calls; see chooseBulkAdd.
	BulkAddMinRowsDefault = 901
	// ImportMaxBytesDefault keeps each import file under Marketo's 10 MB.
	ImportMaxBytesDefault = 9_500_000
	// ImportPollInitialDefault and ImportPollMaxDefault bound the interval
	// between status reads of a bulk import (Marketo: every 5 to 30 s).
	ImportPollInitialDefault = 5 * time.Second
	ImportPollMaxDefault     = 30 * time.Second
	// ImportResubmitsDefault is how many times an import that ends Failed is
	// submitted again before its rows are reported rejected.
	ImportResubmitsDefault = 2
	// ExtractMinRowsDefault is the size from which lead ids are learnt by a
	// bulk extract of the list instead of paging or lookups; see
	// chooseExtract.
	ExtractMinRowsDefault = 2101
	// ExtractPollInitialDefault and ExtractPollMaxDefault bound the interval
	// between status reads of a bulk extract (Marketo updates it at most once
	// a minute).
	ExtractPollInitialDefault = 15 * time.Second
	ExtractPollMaxDefault     = 60 * time.Second
	// MaxURIBytesDefault is Marketo's URI limit; longer GETs are sent as
	// POST with _method=GET.
	MaxURIBytesDefault = 8192
	// MaxBodyBytesDefault is Marketo's body limit for standard calls.
	MaxBodyBytesDefault = 1_000_000
)

// batchMax is the most records one Lead Database call takes.
const batchMax = 300

// Config configures a [Client]. Zero values take the defaults named above.
type Config struct {
	// Endpoint is the instance's REST endpoint, such as
	// https://123-ABC-456.mktorest.com/rest (a trailing /rest is stripped).
	// It must be https unless the host is a loopback address.
	Endpoint string
	// ClientID and ClientSecret are the custom service's credentials.
	ClientID     string
	ClientSecret string

	// CallsPer20s is this client's share of the instance's 100 calls per
	// rolling 20 s.
	CallsPer20s int
	// MaxConcurrency is the most calls in flight at once.
	MaxConcurrency int
	// DailyQuota is the calls this client makes per day (reset at midnight
	// US Central) before it stops with ErrDailyQuota; negative disables the
	// client-side count (Marketo's 607 still stops it).
	DailyQuota int

	// HTTPClient sends the requests (default: a client whose transport
	// times out waiting for response headers after two minutes).
	HTTPClient *http.Client
	// Logger receives debug detail and warnings (default: no logging).
	Logger *zap.Logger
	// Now is the clock (default time.Now).
	Now func() time.Time
	// OnCall, when set, is called after every HTTP call, identity calls
	// included, with the endpoint ("GET /rest/v1/leads.json") and the
	// outcome code ("ok", "606", "http_502", "transport").
	OnCall func(endpoint, code string)
	// TempDir holds bulk extract downloads while they are read (default
	// os.TempDir()).
	TempDir string

	// RateWindow is the rolling window of CallsPer20s.
	RateWindow time.Duration
	// BackoffBase and BackoffMax shape the exponential backoff of retries.
	BackoffBase time.Duration
	BackoffMax  time.Duration
	// MaxAttempts bounds the attempts of one call; negative means until the
	// context ends.
	MaxAttempts int
	// TokenRefreshMargin is how long before expiry a token is replaced.
	TokenRefreshMargin time.Duration
	// BulkAddMinRows is the number of leads from which AddToList uses a bulk
	// import.
	BulkAddMinRows int
	// ImportMaxBytes is the largest import file sent.
	ImportMaxBytes int
	// ImportPollInitial and ImportPollMax bound the poll interval of imports.
	ImportPollInitial time.Duration
	ImportPollMax     time.Duration
	// ImportResubmits is how often a Failed import is sent again; negative
	// means never.
	ImportResubmits int
	// ImportRate is the bulk-import speed, in rows a second, to assume for
	// the instance until the client measures one: the first status read of
	// an import is set for the end it projects, so that one read usually
	// finds the import Complete. 0 means unknown (the first import is read
	// at ImportPollInitial, which measures the rate). A process passes the
	// rate an earlier one measured on the same instance (see OnImportRate).
	ImportRate float64
	// OnImportRate, when set, is called with each rate the client measures
	// on an import that completes (the rate the next imports' first status
	// read is timed by), so that it can be kept for later processes and
	// passed back as ImportRate. It is called synchronously, on the
	// goroutine of the AddToList call whose import was measured, with that
	// call's context, before AddToList goes on: it must return quickly (a
	// small write, bounded by a short timeout) and must not call the client.
	OnImportRate func(ctx context.Context, rowsPerSec float64)
	// ExtractMinRows is the number of rows (unknown lead ids to remove, or a
	// list's SizeHint) from which a bulk extract is used.
	ExtractMinRows int
	// ExtractPollInitial and ExtractPollMax bound the poll interval of
	// extracts.
	ExtractPollInitial time.Duration
	ExtractPollMax     time.Duration
	// MaxURIBytes is the longest URI sent as a GET.
	MaxURIBytes int
	// MaxBodyBytes is the largest JSON body of a standard call.
	MaxBodyBytes int
}

// Client talks to one Marketo instance. It is safe for concurrent use; create
// one per instance and share it between every sync that writes to it, so
// that its token and its limiter are shared too.
type Client struct {
	cfg    Config
	base   *url.URL
	http   *http.Client
	log    *zap.Logger
	now    func() time.Time
	lim    *limiter
	auth   *tokenSource
	quota  *dailyQuota
	onCall func(endpoint, code string)

	// importRate is the bulk-import speed (rows a second) measured on this
	// instance's last import whose progress was read (Config.ImportRate
	// before any), 0 when unknown: the first status read of the next import
	// is timed by it.
	importRateMu stdsync.Mutex
	importRate   float64
	onImportRate func(ctx context.Context, rowsPerSec float64)
}

// NewClient validates cfg, applies its defaults and returns a Client.
func NewClient(cfg Config) (*Client, error) {
	base, err := parseEndpoint(cfg.Endpoint)
	if err != nil {
		return nil, err
	}
	if strings.TrimSpace(cfg.ClientID) == "" {
		return nil, errors.New("configuring marketo: client id is empty")
	}
	if strings.TrimSpace(cfg.ClientSecret) == "" {
		return nil, errors.New("configuring marketo: client secret is empty")
	}
	if r := cfg.ImportRate; r < 0 || math.IsNaN(r) || math.IsInf(r, 0) {
		return nil, fmt.Errorf("configuring marketo: import rate is %v rows a second, want a positive finite number (or 0 when unknown)", r)
	}
	for _, v := range []struct {
		name string
		n    int
	}{
		{"calls per 20s", cfg.CallsPer20s}, {"max concurrency", cfg.MaxConcurrency},
		{"bulk add min rows", cfg.BulkAddMinRows}, {"import max bytes", cfg.ImportMaxBytes},
		{"extract min rows", cfg.ExtractMinRows}, {"max URI bytes", cfg.MaxURIBytes},
		{"max body bytes", cfg.MaxBodyBytes},
	} {
		if v.n < 0 {
			return nil, fmt.Errorf("configuring marketo: %s is %d, want a positive number (or 0 for the default)", v.name, v.n)
		}
	}
	cfg.CallsPer20s = cmp.Or(cfg.CallsPer20s, CallsPer20sDefault)
	cfg.MaxConcurrency = cmp.Or(cfg.MaxConcurrency, MaxConcurrencyDefault)
	cfg.DailyQuota = cmp.Or(cfg.DailyQuota, DailyQuotaDefault)
	cfg.RateWindow = cmp.Or(cfg.RateWindow, RateWindowDefault)
	cfg.BackoffBase = cmp.Or(cfg.BackoffBase, BackoffBaseDefault)
	cfg.BackoffMax = cmp.Or(cfg.BackoffMax, BackoffMaxDefault)
	cfg.MaxAttempts = cmp.Or(cfg.MaxAttempts, MaxAttemptsDefault)
	cfg.TokenRefreshMargin = cmp.Or(cfg.TokenRefreshMargin, TokenRefreshMarginDefault)
	cfg.BulkAddMinRows = cmp.Or(cfg.BulkAddMinRows, BulkAddMinRowsDefault)
	cfg.ImportMaxBytes = cmp.Or(cfg.ImportMaxBytes, ImportMaxBytesDefault)
	cfg.ImportPollInitial = cmp.Or(cfg.ImportPollInitial, ImportPollInitialDefault)
	cfg.ImportPollMax = cmp.Or(cfg.ImportPollMax, ImportPollMaxDefault)
	cfg.ImportResubmits = cmp.Or(cfg.ImportResubmits, ImportResubmitsDefault)
	cfg.ExtractMinRows = cmp.Or(cfg.ExtractMinRows, ExtractMinRowsDefault)
	cfg.ExtractPollInitial = cmp.Or(cfg.ExtractPollInitial, ExtractPollInitialDefault)
	cfg.ExtractPollMax = cmp.Or(cfg.ExtractPollMax, ExtractPollMaxDefault)
	cfg.MaxURIBytes = cmp.Or(cfg.MaxURIBytes, MaxURIBytesDefault)
	cfg.MaxBodyBytes = cmp.Or(cfg.MaxBodyBytes, MaxBodyBytesDefault)
	cfg.TempDir = cmp.Or(cfg.TempDir, os.TempDir())
	if cfg.ImportResubmits < 0 {
		cfg.ImportResubmits = 0
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.HTTPClient == nil {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.ResponseHeaderTimeout = 2 * time.Minute
		cfg.HTTPClient = &http.Client{Transport: tr}
	}
	c := &Client{
		cfg:    cfg,
		base:   base,
		http:   cfg.HTTPClient,
		log:    cfg.Logger.Named("marketo"),
		now:    cfg.Now,
		lim:    newLimiter(cfg.Now, cfg.RateWindow, cfg.CallsPer20s, cfg.MaxConcurrency),
		quota:  &dailyQuota{limit: cfg.DailyQuota},
		onCall: cfg.OnCall,

		importRate:   cfg.ImportRate,
		onImportRate: cfg.OnImportRate,
	}
	c.auth = &tokenSource{c: c}
	return c, nil
}

// InstanceOf returns the name of the Marketo instance a REST endpoint (as
// in [Config.Endpoint]) points at: its host, lower-cased, with the port when
// the endpoint names one, such as "123-abc-456.mktorest.com". Facts learned
// about an instance, such as its import rate, are kept under this name. It
// fails as [NewClient] does on an endpoint NewClient refuses.
func InstanceOf(endpoint string) (string, error) {
	u, err := parseEndpoint(endpoint)
	if err != nil {
		return "", err
	}
	return strings.ToLower(u.Host), nil
}

// parseEndpoint validates a REST endpoint and returns the instance's base URL
// (scheme, host and any path prefix, without /rest).
func parseEndpoint(s string) (*url.URL, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, errors.New("configuring marketo: endpoint is empty; set it to the REST endpoint shown in Admin > Web Services, such as https://123-ABC-456.mktorest.com/rest")
	}
	u, err := url.Parse(s)
	if err != nil {
		return nil, fmt.Errorf("configuring marketo: endpoint %q is not a URL: %w", s, err)
	}
	if u.Scheme == "" || u.Host == "" {
		return nil, fmt.Errorf("configuring marketo: endpoint %q needs a scheme and a host, such as https://123-ABC-456.mktorest.com/rest", s)
	}
	if u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("configuring marketo: endpoint %q must not carry user info, a query or a fragment", redactURL(u))
	}
	switch u.Scheme {
	case "https":
	case "http":
		if !isLoopback(u.Hostname()) {
			return nil, fmt.Errorf("configuring marketo: endpoint %q must use https (plain http is allowed only for a loopback host such as 127.0.0.1)", s)
		}
	default:
		return nil, fmt.Errorf("configuring marketo: endpoint %q has scheme %q, want https", s, u.Scheme)
	}
	p := strings.TrimRight(u.Path, "/")
	p = strings.TrimSuffix(p, "/rest")
	p = strings.TrimRight(p, "/")
	for _, bad := range []string{"/identity", "/bulk", "/rest/v1", "/rest/asset/v1"} {
		if strings.HasSuffix(p, bad) {
			return nil, fmt.Errorf("configuring marketo: endpoint %q ends in %s; give the REST endpoint, such as https://123-ABC-456.mktorest.com/rest", s, bad)
		}
	}
	u.Path = p
	u.RawPath = ""
	return u, nil
}

func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") || strings.HasSuffix(strings.ToLower(host), ".localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func redactURL(u *url.URL) string {
	v := *u
	v.User = nil
	v.RawQuery = ""
	v.Fragment = ""
	return v.String()
}
