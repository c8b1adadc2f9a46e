package bigquerywh

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"

	"cloud.google.com/go/bigquery"
	"go.uber.org/zap"
	"google.golang.org/api/option"
	htransport "google.golang.org/api/transport/http"

	"github.com/listsync/listsync/internal/warehouse"
)

// Name is the warehouse name this backend reports in errors.
const Name = "bigquery"

// EndpointPath is the path of the BigQuery v2 REST API under an endpoint's
// host. An Endpoint given without a path gets it appended.
const EndpointPath = "/bigquery/v2/"

// pingSQL is the query Ping dry-runs.
const pingSQL = "SELECT 1"

// Config configures a BigQuery warehouse.
type Config struct {
	// Project is the Google Cloud project the query jobs run (and are
	// billed) in. Models name their tables fully (project.dataset.table)
	// when the data lives elsewhere. Required.
	Project string
	// Location is where jobs run, e.g. "US", "EU" or "europe-west1". It
	// must match the location of the datasets the models read. Empty lets
	// BigQuery infer it from the tables a query names.
	Location string
	// CredentialsFile is the path of a credentials JSON file: a service
	// account key, an authorized-user file (gcloud auth
	// application-default login), an impersonated service account or an
	// external account (workload identity federation) configuration. Empty
	// means Application Default Credentials: GOOGLE_APPLICATION_CREDENTIALS,
	// gcloud's file, or the metadata server on Google Cloud.
	CredentialsFile string
	// Endpoint overrides the API's base URL, for private endpoints
	// (Private Service Connect) and tests. A URL without a path gets
	// EndpointPath appended; a trailing slash is added when missing.
	// Empty means https://bigquery.googleapis.com/bigquery/v2/.
	Endpoint string
	// NoAuth sends requests without credentials. It is only for emulators
	// and fakes, so it requires Endpoint and excludes CredentialsFile.
	NoAuth bool
	// HTTPClient, when set, is the client requests go through (for
	// proxies or custom TLS); credentials are still added on top of its
	// transport. Nil means the Google API default.
	HTTPClient *http.Client
	// Logger receives debug logs of the queries run. Nil means zap.NewNop().
	Logger *zap.Logger
}

// Warehouse runs models on BigQuery. It is safe for concurrent use.
type Warehouse struct {
	client   *bigquery.Client
	location string
	log      *zap.Logger

	closed    atomic.Bool
	closeOnce sync.Once
	closeErr  error
}

var _ warehouse.Warehouse = (*Warehouse)(nil)

// New returns a Warehouse for cfg. It checks the configuration and loads
// the credentials but does not contact BigQuery; call Ping for that. The
// error is an *warehouse.Error of kind ErrAuth when the credentials cannot be
// loaded, ErrConnect when the configuration is unusable.
func New(ctx context.Context, cfg Config) (*Warehouse, error) {
	opts, err := clientOptions(ctx, cfg)
	if err != nil {
		return nil, err
	}
	// The client keeps the context it was created with for fetching and
	// refreshing tokens for its whole life, so it must not be the caller's
	// (possibly short-lived) context.
	client, err := bigquery.NewClient(context.WithoutCancel(ctx), cfg.Project, opts...)
	if err != nil {
		return nil, warehouse.NewError(warehouse.ErrAuth, Name, nil, "creating the BigQuery client: "+err.Error(), err)
	}
	client.Location = cfg.Location
	log := cfg.Logger
	if log == nil {
		log = zap.NewNop()
	}
	return &Warehouse{client: client, location: cfg.Location, log: log.Named(Name)}, nil
}

// configError returns the error New gives for an unusable configuration.
func configError(msg string) error {
	return warehouse.NewError(warehouse.ErrConnect, Name, nil, "invalid configuration: "+msg, nil)
}

// clientOptions turns cfg into the client's options.
func clientOptions(ctx context.Context, cfg Config) ([]option.ClientOption, error) {
	if strings.TrimSpace(cfg.Project) == "" {
		return nil, configError("the project is not set")
	}
	var opts []option.ClientOption
	if cfg.Endpoint != "" {
		ep, err := normalizeEndpoint(cfg.Endpoint)
		if err != nil {
			return nil, configError(err.Error())
		}
		opts = append(opts, option.WithEndpoint(ep))
	}
	if cfg.NoAuth {
		if cfg.Endpoint == "" {
			return nil, configError("NoAuth is only for emulators and fakes and needs an Endpoint")
		}
		if cfg.CredentialsFile != "" {
			return nil, configError("NoAuth and CredentialsFile exclude each other")
		}
		opts = append(opts, option.WithoutAuthentication())
		if cfg.HTTPClient != nil {
			opts = append(opts, option.WithHTTPClient(cfg.HTTPClient))
		}
		return opts, nil
	}

	var auth []option.ClientOption
	if cfg.CredentialsFile != "" {
		o, err := credentialsOption(cfg.CredentialsFile)
		if err != nil {
			return nil, err
		}
		auth = append(auth, o)
	}
	if cfg.HTTPClient == nil {
		return append(opts, auth...), nil
	}
	// option.WithHTTPClient takes precedence over every credentials option,
	// so the credentials are layered onto the given client's transport here.
	base := cfg.HTTPClient.Transport
	if base == nil {
		base = http.DefaultTransport
	}
	auth = append(auth, option.WithScopes(bigquery.Scope))
	rt, err := htransport.NewTransport(context.WithoutCancel(ctx), base, auth...)
	if err != nil {
		return nil, warehouse.NewError(warehouse.ErrAuth, Name, nil, "loading credentials: "+err.Error(), err)
	}
	hc := *cfg.HTTPClient
	hc.Transport = rt
	return append(opts, option.WithHTTPClient(&hc)), nil
}

// credentialsOption reads a credentials file and returns the option that
// uses it, with the file's own declared type: the client insists on knowing
// the type rather than trusting the file (option.WithCredentialsFile is
// deprecated for that reason).
func credentialsOption(path string) (option.ClientOption, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, warehouse.NewError(warehouse.ErrAuth, Name, nil, "reading the credentials file: "+err.Error(), err)
	}
	var head struct {
		Type string `json:"type"`
	}
	if err := json.Unmarshal(data, &head); err != nil {
		return nil, warehouse.NewError(warehouse.ErrAuth, Name, nil,
			fmt.Sprintf("the credentials file %s is not JSON: %v", path, err), err)
	}
	var typ option.CredentialsType
	switch head.Type {
	case "service_account":
		typ = option.ServiceAccount
	case "authorized_user":
		typ = option.AuthorizedUser
	case "impersonated_service_account":
		typ = option.ImpersonatedServiceAccount
	case "external_account":
		typ = option.ExternalAccount
	default:
		return nil, warehouse.NewError(warehouse.ErrAuth, Name, nil,
			fmt.Sprintf("the credentials file %s has type %q; want service_account, authorized_user, impersonated_service_account or external_account", path, head.Type), nil)
	}
	return option.WithAuthCredentialsJSON(typ, data), nil
}

// normalizeEndpoint makes an endpoint URL a base the REST client can resolve
// paths against: EndpointPath when it has no path, and a trailing slash
// (without it, "…/bigquery/v2" + "projects/…" would lose the "v2").
func normalizeEndpoint(s string) (string, error) {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", fmt.Errorf("the endpoint %q is not an http(s) URL with a host", s)
	}
	if u.Path == "" || u.Path == "/" {
		u.Path = EndpointPath
	} else if !strings.HasSuffix(u.Path, "/") {
		u.Path += "/"
	}
	return u.String(), nil
}

// Ping checks that BigQuery can be reached with the configured credentials
// and that they may run query jobs in the project, by dry-running a trivial
// query: a dry run is free and creates no job.
func (w *Warehouse) Ping(ctx context.Context) error {
	if w.closed.Load() {
		return errClosed(nil)
	}
	q := w.client.Query(pingSQL)
	q.Location = w.location
	q.DryRun = true
	if _, err := q.Run(ctx); err != nil {
		return mapError(ctx, nil, err)
	}
	return nil
}

// Close releases the client's connections. It is idempotent.
func (w *Warehouse) Close() error {
	w.closeOnce.Do(func() {
		w.closed.Store(true)
		if err := w.client.Close(); err != nil {
			w.closeErr = fmt.Errorf("closing the BigQuery client: %w", err)
		}
	})
	return w.closeErr
}

// errClosed is the error of a query (of p, nil for Ping) on a closed
// warehouse.
func errClosed(p *warehouse.QueryParams) error {
	return warehouse.NewError(warehouse.ErrConnect, Name, p, "the warehouse is closed", nil)
}
