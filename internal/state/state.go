package state

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"math"
	"strings"
	"sync"
	"time"
)

// ErrLocked is returned by [Store.Lock] when another run holds the sync's
// lock.
var ErrLocked = errors.New("sync is locked by another run")

// ErrLockLost is wrapped by [Lease.Err] once a store finds that a sync's
// lock is no longer held, before its holder released it: the connection
// holding it died, or another process took it over after it expired.
// Another worker may then run the sync.
var ErrLockLost = errors.New("lost the sync's lock")

// Lease is a sync's lock, held for one run: see [Store.Lock].
type Lease struct {
	unlock func(context.Context) error
	lost   chan struct{}
	once   sync.Once
	err    error
}

// NewLease returns a held lock that unlock releases. Stores create it in
// Lock; unlock must be idempotent.
func NewLease(unlock func(context.Context) error) *Lease {
	return &Lease{unlock: unlock, lost: make(chan struct{})}
}

// Unlock releases the lock. It is idempotent.
func (l *Lease) Unlock(ctx context.Context) error { return l.unlock(ctx) }

// Lost is closed once the store finds the lock gone while it was held. A
// run stops then: it finishes and records the batch in flight and sends
// nothing more, since another worker may be running the sync.
func (l *Lease) Lost() <-chan struct{} { return l.lost }

// Err returns why the lock was lost (wrapping [ErrLockLost]) once Lost is
// closed, and nil before.
func (l *Lease) Err() error {
	select {
	case <-l.lost:
		return l.err
	default:
		return nil
	}
}

// SetLost records that the lock is gone, for the reason why, which should
// wrap [ErrLockLost]. Stores call it; calls after the first are ignored.
func (l *Lease) SetLost(why error) {
	l.once.Do(func() {
		l.err = why
		close(l.lost)
	})
}

// ErrRunNotFound is returned by [Store.FinishRun] for a run ID the store does
// not know.
var ErrRunNotFound = errors.New("run not found")

// Store keeps the ledger of one or more syncs. Implementations are safe for
// concurrent use. Every method but ImportRate and SetImportRate takes the
// sync's name; syncs never see each other's rows. Those two keep what
// listsync learns about a Marketo instance, which every sync writing to it
// shares.
type Store interface {
	// BindList records that the sync's ledger belongs to the static list
	// listID, which the sync names by listRef (a human-readable description
	// of the configured list, kept for messages). When the sync was bound to
	// another list ID, or to none, it clears the sync's members and rejects
	// in the same transaction, marks the binding [Binding.NeedsResync] and
	// reports changed: the engine never assumes that members confirmed on
	// one list are on another.
	BindList(ctx context.Context, sync, listRef string, listID int64) (changed bool, err error)
	// Binding returns the sync's list binding, and false when it has none.
	Binding(ctx context.Context, sync string) (Binding, bool, error)

	// ScanMembers calls fn for each confirmed member of the sync, in bytewise
	// key order, streaming: the members are never all held in memory. An
	// error from fn stops the scan and is returned as is.
	ScanMembers(ctx context.Context, sync string, fn func(Member) error) error
	// ScanDigest calls fn for each member of the sync (pending ones
	// included) in fingerprint order: the bytewise order of
	// [DigestEntry.FP]. All entries come from one consistent snapshot of
	// the ledger, and the scan streams: the members are never all held in
	// memory. It reads the ledger's compacted digest plus the members
	// changed since the last [Store.CompactDigest], so that a diff reads a
	// million members in a few large blobs instead of a million rows. An
	// error from fn stops the scan and is returned as is. The entry passed
	// to fn, and the slices it holds, are valid only during the call.
	ScanDigest(ctx context.Context, sync string, fn func(*DigestEntry) error) error
	// CompactDigest folds the members changed since the last compaction into
	// the sync's compacted digest, so that the next ScanDigest reads blobs
	// only. It changes no member, and is safe to call at any time, alongside
	// any other method: a member changed while it runs stays visible to
	// ScanDigest as changed.
	CompactDigest(ctx context.Context, sync string) error
	// CountMembers returns the number of confirmed members of the sync.
	CountMembers(ctx context.Context, sync string) (int64, error)
	// ScanRejects calls fn for each rejected row of the sync in bytewise key
	// order, like ScanMembers.
	ScanRejects(ctx context.Context, sync string, fn func(Reject) error) error
	// ListRejects returns up to limit rejected rows of the sync (all of them
	// when limit is 0), in key order.
	ListRejects(ctx context.Context, sync string, limit int) ([]Reject, error)

	// ApplyBatch records what Marketo did with one batch, in one
	// transaction. See [Batch].
	ApplyBatch(ctx context.Context, sync string, b Batch) error
	// ReplaceMembers replaces the sync's members with the membership read
	// from Marketo, in one transaction: it deletes them, calls fill, and
	// commits when fill returns nil (rolling back otherwise). fill calls put
	// with each page it reads; pages may come in any order and may repeat
	// keys. A key seen with two different lead IDs (two leads sharing an
	// email) is kept with an unknown lead ID, so that removing it removes
	// every lead holding the key. The fields hash of every member becomes
	// unknown. The sync's rejects are kept. It clears the binding's
	// NeedsResync in the same transaction.
	ReplaceMembers(ctx context.Context, sync string, at time.Time, fill func(put func([]Member) error) error) error
	// Reset forgets the sync's ledger: members, rejects and list binding. Its
	// run history is kept. The next run starts from a full resync.
	Reset(ctx context.Context, sync string) error

	// StartRun records a new run with status [RunRunning] and returns it
	// with its ID. Runs of the same sync that are still marked running are
	// marked [RunAbandoned] first: StartRun is called under the sync's lock,
	// so such runs belong to a process that died.
	StartRun(ctx context.Context, r Run) (Run, error)
	// RecordSkipped records a scheduled tick that did not run, as a run
	// with status [RunSkipped], and returns it with its ID. r.StartedAt is
	// the tick, r.EndedAt when it was skipped (r.StartedAt when zero) and
	// r.Error the reason (see [SkipReason]). It takes no lock and touches no
	// other run: a tick is typically skipped because a run of the sync is in
	// progress, and that run must stay [RunRunning].
	RecordSkipped(ctx context.Context, r Run) (Run, error)
	// FinishRun stores the final state of a run started by StartRun
	// (matched by r.ID).
	FinishRun(ctx context.Context, r Run) error
	// ListRuns returns up to limit runs, newest first, of the sync, or of
	// every sync when sync is empty. A limit of 0 means 100.
	ListRuns(ctx context.Context, sync string, limit int) ([]Run, error)

	// Lock takes the sync's lock for one run, or returns [ErrLocked] at once
	// when another holder has it. The lock dies with its holder's process
	// (see each backend for how). The lease's Unlock releases it; its Lost
	// channel closes if the store finds the lock gone before that.
	Lock(ctx context.Context, sync string) (*Lease, error)
	// ClaimTick claims the scheduled tick of the sync, so that of several
	// workers sharing the store exactly one runs it: it returns true to the
	// first caller for a (sync, tick) pair and false to every later one.
	ClaimTick(ctx context.Context, sync string, tick time.Time) (bool, error)

	// ImportRate returns the bulk-import rate last recorded for the Marketo
	// instance (its REST host, such as "123-abc-456.mktorest.com"), and false
	// when none is.
	ImportRate(ctx context.Context, instance string) (ImportRate, bool, error)
	// SetImportRate records the instance's bulk-import rate, replacing the
	// one recorded unless that one was measured later (two workers may
	// measure at once; the newer measurement stands). It refuses an empty
	// instance and a rate that [ImportRate.Validate] refuses.
	SetImportRate(ctx context.Context, instance string, r ImportRate) error

	// Close releases the store's connections and any lock it still holds.
	// It is idempotent.
	Close() error
}

// ImportRate is the speed at which a Marketo instance worked through a bulk
// import, as the Marketo client measured it. The client times the first
// status read of its next import by it, so that one read usually finds the
// import done; the store keeps it so that a new process starts with it.
type ImportRate struct {
	// RowsPerSec is the rate, in rows a second.
	RowsPerSec float64
	// MeasuredAt is when it was measured.
	MeasuredAt time.Time
}

// CheckImportRate is what a store's SetImportRate refuses: an empty
// instance, or a rate [ImportRate.Validate] refuses.
func CheckImportRate(instance string, r ImportRate) error {
	if instance == "" {
		return errors.New("recording import rate: instance is empty")
	}
	if err := r.Validate(); err != nil {
		return fmt.Errorf("recording import rate of %s: %w", instance, err)
	}
	return nil
}

// Validate reports a rate that is not a positive, finite number of rows a
// second, or that has no measurement time.
func (r ImportRate) Validate() error {
	if r.RowsPerSec <= 0 || math.IsNaN(r.RowsPerSec) || math.IsInf(r.RowsPerSec, 0) {
		return fmt.Errorf("import rate %v is not a positive, finite number of rows a second", r.RowsPerSec)
	}
	if r.MeasuredAt.IsZero() {
		return errors.New("import rate has no measurement time")
	}
	return nil
}

// Binding is the static list a sync's ledger belongs to.
type Binding struct {
	// ListRef describes the list as configured, e.g. "id 1234" or
	// `"Trial users" in folder "Audiences"`.
	ListRef string
	// ListID is the Marketo ID of the list.
	ListID int64
	// BoundAt is when the ledger was bound to the list.
	BoundAt time.Time
	// NeedsResync reports that the ledger was bound to this list and not
	// filled from the list's real membership since (see ReplaceMembers):
	// an empty ledger then does not mean an empty list.
	NeedsResync bool
}

// Member is a lead that Marketo confirmed on the sync's list, or one in
// doubt (see [PendingHash]).
type Member struct {
	// Key is the normalised value of the sync's lookup field.
	Key string
	// LeadID is Marketo's lead ID, or 0 when it is not known.
	LeadID int64
	// FieldsHash is the hash of the mapped fields last confirmed for the
	// lead, nil when it is not known (the fields are then re-sent), or
	// PendingHash.
	FieldsHash []byte
	// ConfirmedAt is when Marketo last confirmed the member.
	ConfirmedAt time.Time
}

// FingerprintSize is the size of a key's fingerprint.
const FingerprintSize = 16

// Fingerprint returns the fingerprint of a ledger key: the first 16 bytes of
// the SHA-256 of its UTF-8 bytes. Diffs order and match keys by fingerprint,
// which compares as two machine words instead of a string. 128 bits of a
// cryptographic hash make a collision between two keys of a ledger
// practically impossible, even for keys chosen to collide. Postgres computes
// the same value as substring(sha256(convert_to(key, 'UTF8')) from 1 for 16).
func Fingerprint(key string) [FingerprintSize]byte {
	return FingerprintBytes([]byte(key))
}

// FingerprintBytes is Fingerprint of a key held in a byte slice.
func FingerprintBytes(key []byte) [FingerprintSize]byte {
	sum := sha256.Sum256(key)
	return [FingerprintSize]byte(sum[:FingerprintSize])
}

// DigestEntry is one member of a sync's ledger as [Store.ScanDigest] gives
// it: what a diff needs, without ConfirmedAt.
type DigestEntry struct {
	// FP is Fingerprint(Key).
	FP [FingerprintSize]byte
	// Key is the member's key.
	Key []byte
	// LeadID is Marketo's lead ID, or 0 when it is not known.
	LeadID int64
	// FieldsHash is as in [Member]: nil when not known, or PendingHash.
	FieldsHash []byte
}

// Pending reports whether the member is in doubt (see [PendingHash]).
func (e *DigestEntry) Pending() bool { return string(e.FieldsHash) == PendingHash }

// PendingHash is the [Member.FieldsHash] of a member in doubt. The engine
// records a key so, in one transaction, just before it sends the key's add
// or removal to Marketo, and replaces the record with Marketo's answer once
// it has one. A key still pending when a run starts belongs to a push whose
// answer was lost (a crash, a SIGKILL, a timeout): Marketo may or may not
// have applied it, so the run sends it again, the add when the model has the
// key and the removal when it does not. Without the mark, an add applied but
// never recorded would leave a member no later run removes, and a removal
// applied but never recorded would hide a member's absence from every later
// diff.
const PendingHash = "\x00pending"

// Pending reports whether the member is in doubt (see [PendingHash]).
func (m Member) Pending() bool { return string(m.FieldsHash) == PendingHash }

// Op is the operation Marketo rejected.
type Op string

const (
	// OpAdd is an add to the list, or an update of a member's fields.
	OpAdd Op = "add"
	// OpRemove is a removal from the list.
	OpRemove Op = "remove"
)

// Reject is a row that Marketo refused, retried no sooner than NextAttemptAt.
type Reject struct {
	Key string
	Op  Op
	// Code and Reason are Marketo's, e.g. "1004" and "Lead not found".
	Code   string
	Reason string
	// Attempts counts the rejected attempts so far.
	Attempts       int
	FirstAttemptAt time.Time
	LastAttemptAt  time.Time
	NextAttemptAt  time.Time
}

// Rejection is one row Marketo refused in a batch.
type Rejection struct {
	Key    string
	Op     Op
	Code   string
	Reason string
}

// Batch is what Marketo did with one batch of rows. [Store.ApplyBatch]
// applies it in one transaction:
//   - each of Confirmed is upserted as a member (a zero LeadID keeps the lead
//     ID already known) and its reject, if any, is deleted, unless its
//     FieldsHash is PendingHash: marking a key pending keeps its reject, so
//     that a row rejected again keeps backing off;
//   - each key of Removed is deleted from the members and from the rejects;
//   - each of Rejected is upserted as a reject: Attempts grows by one and
//     NextAttemptAt becomes At plus Backoff's delay for that attempt; a
//     rejected add also deletes the key's member when it is pending (the
//     add Marketo refused made no member);
//   - each key of Forget is deleted from the rejects (rows the model no
//     longer asks for).
//
// A key must not occur twice within one list, nor in two of Confirmed,
// Removed and Rejected.
type Batch struct {
	// At is when Marketo answered; it stamps members and rejects.
	At        time.Time
	Confirmed []Member
	Removed   []string
	Rejected  []Rejection
	Forget    []string
	// Backoff spaces out the retries of rejected rows. The zero value means
	// [BackoffDefault].
	Backoff Backoff
}

// Backoff is the delay before retrying a rejected row: Base after the first
// rejection, doubling with each further one, up to Max.
type Backoff struct {
	Base time.Duration
	Max  time.Duration
}

// BackoffDefault retries a rejected row after an hour, then two, four…, and
// at least once a week.
var BackoffDefault = Backoff{Base: time.Hour, Max: 7 * 24 * time.Hour}

// WithDefaults returns b with zero fields replaced by BackoffDefault's.
func (b Backoff) WithDefaults() Backoff {
	if b.Base <= 0 {
		b.Base = BackoffDefault.Base
	}
	if b.Max <= 0 {
		b.Max = BackoffDefault.Max
	}
	if b.Max < b.Base {
		b.Max = b.Base
	}
	return b
}

// Delay returns the delay after the attempts-th rejection (1 for the first).
func (b Backoff) Delay(attempts int) time.Duration {
	b = b.WithDefaults()
	d := b.Base
	for i := 1; i < attempts && d < b.Max; i++ {
		d *= 2
	}
	return min(d, b.Max)
}

// MaxDoublings returns the number of doublings after which Base reaches Max,
// so that a store can compute Delay in SQL as
// min(Base << min(attempts-1, MaxDoublings), Max) without overflow.
func (b Backoff) MaxDoublings() int {
	b = b.WithDefaults()
	n := 0
	for d := b.Base; d < b.Max; d *= 2 {
		n++
	}
	return n
}

// RunStatus is the state of a run.
type RunStatus string

const (
	// RunRunning is a run in progress (or one whose process died, until the
	// next run of the sync marks it abandoned).
	RunRunning RunStatus = "running"
	// RunSucceeded is a run that pushed the whole diff (rejected rows
	// included: they are retried later).
	RunSucceeded RunStatus = "succeeded"
	// RunFailed is a run that stopped on an error.
	RunFailed RunStatus = "failed"
	// RunCanceled is a run stopped by its context (shutdown).
	RunCanceled RunStatus = "canceled"
	// RunAbandoned is a run whose process died while it ran.
	RunAbandoned RunStatus = "abandoned"
	// RunSkipped is a scheduled tick that did not run (see
	// [Store.RecordSkipped]); it has no counts, and its Error says why.
	RunSkipped RunStatus = "skipped"
)

// SkippedRun returns the record [Store.RecordSkipped] stores for r: its
// sync, trigger, times and reason, status [RunSkipped], and no counts.
func SkippedRun(r Run) Run {
	out := Run{Sync: r.Sync, Trigger: r.Trigger, Status: RunSkipped, StartedAt: r.StartedAt, EndedAt: r.EndedAt, Error: r.Error}
	if out.EndedAt.IsZero() {
		out.EndedAt = out.StartedAt
	}
	return out
}

// SkipReason returns the reason of a skipped run: the start of its Error up
// to the first colon, e.g. "still_running" or "locked".
func (r Run) SkipReason() string {
	if r.Status != RunSkipped {
		return ""
	}
	reason, _, _ := strings.Cut(r.Error, ":")
	return reason
}

// Trigger values of [Run.Trigger].
const (
	TriggerSchedule = "schedule"
	TriggerManual   = "manual"
)

// Run is the record of one run of a sync.
type Run struct {
	ID      int64
	Sync    string
	Trigger string
	Status  RunStatus
	// StartedAt and EndedAt bound the run; EndedAt is zero while it runs.
	StartedAt time.Time
	EndedAt   time.Time
	// ListID is the list the run wrote to, when it got that far.
	ListID int64
	// FullResync reports that the run read the list's membership from
	// Marketo into the ledger.
	FullResync bool

	// RowsRead counts the model's rows.
	RowsRead int64
	// Invalid counts rows whose key was NULL, empty or invalid;
	// InvalidSamples describes a few of them.
	Invalid        int64
	InvalidSamples []string
	// Duplicates counts rows whose key an earlier row already had.
	Duplicates int64

	// AddsPlanned, RemovesPlanned and UpdatesPlanned count the diff's rows
	// to send; Deferred counts rows left out because their retry is not due.
	AddsPlanned    int64
	RemovesPlanned int64
	UpdatesPlanned int64
	Deferred       int64
	// AddsConfirmed, RemovesConfirmed and UpdatesConfirmed count the rows
	// Marketo confirmed; Rejected those it refused.
	AddsConfirmed    int64
	RemovesConfirmed int64
	UpdatesConfirmed int64
	Rejected         int64

	// APICalls counts the Marketo API calls the run made.
	APICalls int64
	// Error is the error that ended the run, if any.
	Error string
}

// Validate reports a batch that names a key twice, or names an empty key,
// which no store can apply as one consistent change.
func (b *Batch) Validate() error {
	seen := make(map[string]string, len(b.Confirmed)+len(b.Removed)+len(b.Rejected)+len(b.Forget))
	check := func(key, list string) error {
		if key == "" {
			return fmt.Errorf("batch has an empty key in %s", list)
		}
		if prev, ok := seen[key]; ok {
			return fmt.Errorf("batch names key %q twice (in %s and %s)", key, prev, list)
		}
		seen[key] = list
		return nil
	}
	for _, m := range b.Confirmed {
		if err := check(m.Key, "confirmed"); err != nil {
			return err
		}
	}
	for _, k := range b.Removed {
		if err := check(k, "removed"); err != nil {
			return err
		}
	}
	for _, r := range b.Rejected {
		if err := check(r.Key, "rejected"); err != nil {
			return err
		}
		if r.Op != OpAdd && r.Op != OpRemove {
			return fmt.Errorf("batch rejects key %q with unknown op %q", r.Key, r.Op)
		}
	}
	for _, k := range b.Forget {
		if err := check(k, "forget"); err != nil {
			return err
		}
	}
	return nil
}
