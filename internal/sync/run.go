package sync

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	stdsync "sync"
	"time"

	"go.uber.org/zap"

	"github.com/listsync/listsync/internal/marketo"
	"github.com/listsync/listsync/internal/state"
)

// replacePage is how many members go to the state store per put during a
// full resync.
const replacePage = 5000

// forgetBatch is how many records of a diff file (stale rejects to forget,
// members to rehash) one transaction applies.
const forgetBatch = 10000

// Run runs the sync once: model, diff, guards, push, commit. It returns the
// run's record (also stored) and the error that ended it, if any. A run
// that finds the sync locked by another run returns an error matching
// state.ErrLocked and records nothing.
func (e *Engine) Run(ctx context.Context, spec Spec, opts RunOptions) (state.Run, error) {
	spec = spec.withDefaults()
	if err := spec.Validate(); err != nil {
		return state.Run{}, err
	}
	if opts.Trigger == "" {
		opts.Trigger = state.TriggerManual
	}
	if spec.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, spec.Timeout)
		defer cancel()
	}
	lease, err := e.store.Lock(ctx, spec.Name)
	if err != nil {
		return state.Run{}, fmt.Errorf("starting sync %q: %w", spec.Name, err)
	}
	defer func() {
		uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), e.cfg.CommitTimeout)
		defer cancel()
		if err := lease.Unlock(uctx); err != nil {
			e.logger.Warn("releasing the sync's lock", zap.String("sync", spec.Name), zap.Error(err))
		}
	}()
	// A lost lock stops the run as a shutdown does (the batch in flight is
	// finished and recorded, nothing more is sent): another worker may be
	// running the sync now.
	ctx, stopRun := context.WithCancelCause(ctx)
	defer stopRun(nil)
	watched := make(chan struct{})
	defer close(watched)
	go func() {
		select {
		case <-lease.Lost():
			stopRun(lease.Err())
		case <-watched:
		}
	}()
	run, err := e.store.StartRun(ctx, state.Run{Sync: spec.Name, Trigger: opts.Trigger, StartedAt: e.now()})
	if err != nil {
		return state.Run{}, fmt.Errorf("starting sync %q: %w", spec.Name, err)
	}
	log := e.logger.With(zap.String("sync", spec.Name), zap.Int64("run_id", run.ID))
	var calls marketo.CallCounter
	r := &runner{e: e, spec: spec, opts: opts, run: &run, log: log}
	runErr := r.do(marketo.WithCallCounter(ctx, &calls))
	var gone *listGoneError
	if errors.As(runErr, &gone) {
		// The bound list is gone, and the sync's list reference now
		// resolves to another: the run starts over against it.
		log.Info("the sync's list is gone from Marketo; starting over against the list its reference now names",
			zap.Int64("old_list_id", gone.old), zap.Int64("list_id", gone.now.ID), zap.Bool("created", gone.now.Created))
		r.resolved = &gone.now
		runErr = r.do(marketo.WithCallCounter(ctx, &calls))
	}
	r.compactDigest(ctx)

	r.mu.Lock() // commits may still be in flight after a push error
	run.APICalls = calls.Total()
	run.EndedAt = e.now()
	lost := errors.Is(context.Cause(ctx), state.ErrLockLost)
	switch {
	case runErr == nil:
		run.Status = state.RunSucceeded
	case lost && errors.Is(runErr, context.Canceled):
		run.Status = state.RunFailed
		runErr = context.Cause(ctx)
	case errors.Is(runErr, context.Canceled) && ctx.Err() != nil:
		run.Status = state.RunCanceled
	default:
		run.Status = state.RunFailed
	}
	if runErr != nil {
		runErr = fmt.Errorf("running sync %q: %w", spec.Name, runErr)
		run.Error = runErr.Error()
	}
	r.mu.Unlock()
	r.setPhase(PhaseDone)
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), e.cfg.CommitTimeout)
	defer cancel()
	if err := e.store.FinishRun(fctx, run); err != nil {
		runErr = errors.Join(runErr, fmt.Errorf("recording run %d of sync %q: %w", run.ID, spec.Name, err))
	}
	fields := []zap.Field{zap.String("status", string(run.Status)), zap.Duration("took", run.EndedAt.Sub(run.StartedAt)),
		zap.Int64("rows", run.RowsRead), zap.Int64("invalid", run.Invalid), zap.Int64("duplicates", run.Duplicates),
		zap.Int64("adds", run.AddsConfirmed), zap.Int64("updates", run.UpdatesConfirmed),
		zap.Int64("removes", run.RemovesConfirmed), zap.Int64("rejected", run.Rejected),
		zap.Int64("deferred", run.Deferred), zap.Int64("api_calls", run.APICalls), zap.Bool("full_resync", run.FullResync)}
	if run.Status == state.RunSucceeded || run.Status == state.RunCanceled {
		log.Info("sync run finished", fields...)
	} else {
		// The error itself is returned to the caller, which reports it.
		log.Info("sync run failed", fields...)
	}
	return run, runErr
}

// compactDigest folds the members the run changed into the ledger's
// compacted digest, so that the next diff reads blobs only. It runs whatever
// the run's outcome (a failed run may have committed batches), but not once
// ctx has ended: a shutdown does not wait for it. Its time grows with the
// ledger (a second or two per million members, more after a first sync or
// a full resync, which change every member), so it is bounded by the run's
// own timeout only. Skipping or failing it costs the next diff speed, not
// correctness: the uncompacted part of the digest is read from the members.
func (r *runner) compactDigest(ctx context.Context) {
	if ctx.Err() != nil {
		return
	}
	if err := r.e.store.CompactDigest(ctx, r.spec.Name); err != nil {
		r.log.Warn("compacting the ledger's digest", zap.Error(err))
	}
}

// runner holds one run's state.
type runner struct {
	e    *Engine
	spec Spec
	opts RunOptions
	run  *state.Run
	log  *zap.Logger
	dir  string
	list marketo.List
	// diffed is set once the diff's planned counts are known.
	diffed bool
	// mu guards run's counters, which commits update, and the progress
	// fields below.
	mu stdsync.Mutex

	// listCached is set when the run writes to the list of the sync's
	// binding without asking Marketo (see bindList); resolved, when set,
	// is the list a restarted run uses instead of resolving it again.
	listCached bool
	resolved   *marketo.List

	phase       Phase
	progressAt  time.Time
	rowsSoFar   int64
	membersRead int64
	upsertsSent int64
	removesSent int64
}

func (r *runner) do(ctx context.Context) error {
	e, spec := r.e, r.spec
	dir, err := os.MkdirTemp(e.cfg.TempDir, "listsync-run-*")
	if err != nil {
		return fmt.Errorf("creating temporary directory: %w", err)
	}
	defer os.RemoveAll(dir)
	r.dir = dir

	// The model first: a broken model costs no API call.
	r.setPhase(PhaseReadingModel)
	st, err := e.stage(ctx, spec, dir, r.onRows())
	if err != nil {
		return err
	}
	defer st.rows.cleanup()
	r.mu.Lock()
	r.run.RowsRead, r.run.Invalid, r.run.InvalidSamples = st.stats.RowsRead, st.stats.Invalid, st.stats.InvalidSamples
	r.mu.Unlock()

	if err := r.bindList(ctx, st.rule); err != nil {
		return r.explain(err)
	}

	out := &diffOutput{}
	defer out.abort()
	for _, w := range []**recordWriter{&out.upserts, &out.removes, &out.forgets, &out.rehashes} {
		if *w, err = createRecordFile(dir, "diff-*.bin"); err != nil {
			return fmt.Errorf("creating diff file: %w", err)
		}
	}
	r.setPhase(PhaseDiffing)
	ds, err := e.diffStaged(ctx, spec, dir, st, out)
	if err != nil {
		return err
	}
	st.rows.cleanup()
	r.mu.Lock()
	r.run.Duplicates = ds.Duplicates
	r.run.AddsPlanned, r.run.UpdatesPlanned, r.run.RemovesPlanned, r.run.Deferred = ds.Adds, ds.Updates, ds.Removes, ds.Deferred
	r.diffed = true
	r.mu.Unlock()
	paths, err := out.finish()
	if err != nil {
		return fmt.Errorf("writing the diff: %w", err)
	}
	r.log.Debug("diff computed", zap.Int64("members", ds.Members), zap.Int64("model_keys", ds.ModelKeys),
		zap.Int64("adds", ds.Adds), zap.Int64("updates", ds.Updates), zap.Int64("removes", ds.Removes),
		zap.Int64("deferred", ds.Deferred), zap.Int64("forgotten", ds.Forgotten), zap.Int64("rehashed", ds.Rehashed))

	if g := guard(spec, ds); g != nil && !r.opts.AllowRemovals {
		return g
	}
	if ds.Adds+ds.Updates+ds.Removes == 0 {
		if err := r.checkCachedList(ctx, nil); err != nil {
			return err
		}
	}
	if err := r.forget(ctx, paths.forgets); err != nil {
		return err
	}
	if err := r.rehash(ctx, paths.rehashes); err != nil {
		return err
	}
	// Removes go before adds. A removal names a lead by the id the ledger
	// holds, or by its key; an add names it by its key, and Marketo may find
	// the same lead under a new key (its email changed in Marketo, and the
	// model followed). Removing first lets the add have the last word, so
	// that person stays on the list, as the ledger says.
	if ds.Removes > 0 {
		r.setPhase(PhasePushingRemoves)
	}
	if err := r.pushRemoves(ctx, paths.removes); err != nil {
		return r.explain(r.checkCachedList(ctx, err))
	}
	if ds.Adds+ds.Updates > 0 {
		r.setPhase(PhasePushingAdds)
	}
	if err := r.pushUpserts(ctx, st.cols.fieldNames, paths.upserts); err != nil {
		return r.explain(r.checkCachedList(ctx, err))
	}
	return nil
}

// explain adds what is left to a daily-quota error that ends the run early,
// before the push (the whole change) or during it (what was not confirmed).
func (r *runner) explain(err error) error {
	if !errors.Is(err, marketo.ErrDailyQuota) {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.diffed {
		// Nothing was pushed: the whole change waits for the next run.
		return fmt.Errorf("%w; left for the next run: the whole change, since the quota ran out "+
			"while resolving or resyncing the list, before anything was sent", err)
	}
	left := func(planned, confirmed int64) int64 { return max(planned-confirmed, 0) }
	return fmt.Errorf("%w; left for the next run: %d adds, %d field updates and %d removes (not counting %d rejected rows)",
		err, left(r.run.AddsPlanned, r.run.AddsConfirmed), left(r.run.UpdatesPlanned, r.run.UpdatesConfirmed),
		left(r.run.RemovesPlanned, r.run.RemovesConfirmed), r.run.Rejected)
}

// bindList resolves the list, binds the ledger to it and, when the ledger
// cannot be trusted for this list, reads the list's real membership.
func (r *runner) bindList(ctx context.Context, rule keyRule) error {
	e, spec := r.e, r.spec
	prev, hadPrev, err := e.store.Binding(ctx, spec.Name)
	if err != nil {
		return err
	}
	r.listCached = false
	if r.resolved == nil && !r.opts.FullResync && hadPrev && !prev.NeedsResync && prev.ListRef == listRef(spec.List) {
		// The list was resolved by an earlier run and the sync still names
		// it the same way: use its ID without a call. A list deleted since
		// is caught by the push's first call, or by checkCachedList when
		// there is nothing to push.
		r.list = marketo.List{ID: prev.ListID}
		r.run.ListID = prev.ListID
		r.listCached = true
		return nil
	}
	var list marketo.List
	if r.resolved != nil {
		list = *r.resolved
	} else if list, err = r.resolveList(ctx); err != nil {
		return err
	}
	r.list = list
	r.run.ListID = list.ID
	changed, err := e.store.BindList(ctx, spec.Name, listRef(spec.List), list.ID)
	if err != nil {
		return err
	}
	switch {
	case changed && hadPrev:
		r.log.Info("the sync's list changed; the ledger of the old list is dropped and the old list left as it is",
			zap.Int64("old_list_id", prev.ListID), zap.Int64("list_id", list.ID), zap.Bool("created", list.Created))
	case list.Created:
		r.log.Info("created the static list", zap.Int64("list_id", list.ID), zap.String("list", listRef(spec.List)))
	}
	b, _, err := e.store.Binding(ctx, spec.Name)
	if err != nil {
		return err
	}
	// A new binding (first run, reset, re-pointed or recreated list) needs
	// the list's real membership, until a resync has stored it: the flag
	// survives a crash in between.
	switch {
	case r.opts.FullResync || (b.NeedsResync && !list.Created):
		return r.resync(ctx, rule)
	case b.NeedsResync:
		// Created in this call, so empty: nothing to read.
		if err := e.store.ReplaceMembers(ctx, spec.Name, e.now(), func(func([]state.Member) error) error { return nil }); err != nil {
			return fmt.Errorf("recording the new list as empty: %w", err)
		}
	}
	return nil
}

// resolveList asks Marketo for the sync's list (creating it by name when
// it does not exist and a folder is set).
func (r *runner) resolveList(ctx context.Context) (marketo.List, error) {
	spec := r.spec
	list, err := r.e.mkto.ResolveList(ctx, spec.List)
	if err != nil {
		if spec.List.ID > 0 && errors.Is(err, marketo.ErrListNotFound) {
			return list, fmt.Errorf("static list %d no longer exists in Marketo; nothing was changed (the ledger is kept): "+
				"point the sync at an existing list, or at a list name and folder to have it created: %w", spec.List.ID, err)
		}
		return list, fmt.Errorf("resolving the list: %w", err)
	}
	return list, nil
}

// listGoneError reports that the list the run took from the sync's binding
// is gone from Marketo and that the sync's list reference now resolves to
// another list: Run starts over against it.
type listGoneError struct {
	old int64
	now marketo.List
}

func (e *listGoneError) Error() string {
	return fmt.Sprintf("static list %d is gone from Marketo; the sync's list now resolves to list %d", e.old, e.now.ID)
}

// checkCachedList makes sure that a list taken from the binding without a
// call (see bindList) still exists, after err, the push's outcome, or
// before a run that has nothing to push ends: the ledger must not claim
// members on a list that is gone. It returns err, or the error that says
// the list is gone.
func (r *runner) checkCachedList(ctx context.Context, err error) error {
	if !r.listCached || (err != nil && !errors.Is(err, marketo.ErrListNotFound)) {
		return err
	}
	list, rerr := r.resolveList(ctx)
	if rerr != nil {
		return rerr
	}
	if list.ID != r.list.ID {
		return &listGoneError{old: r.list.ID, now: list}
	}
	return err
}

// strayKey is the ledger key of a list member without a usable lookup
// value: it sorts before every real key (which never holds control
// characters) and is removed by its lead ID.
func strayKey(leadID int64) string {
	return "\x01lead:" + strconv.FormatInt(leadID, 10)
}

// resync replaces the ledger with the list's membership read from Marketo.
// The membership is sorted on disk first, so that the state store's
// transaction lasts as long as writing it, not as long as reading Marketo.
func (r *runner) resync(ctx context.Context, rule keyRule) error {
	e, spec := r.e, r.spec
	r.run.FullResync = true
	r.setPhase(PhaseResync)
	hint, err := e.store.CountMembers(ctx, spec.Name)
	if err != nil {
		return err
	}
	s := newSorter(r.dir, e.cfg.SortMemory)
	defer s.cleanup()
	var read, strays int64
	err = e.mkto.ListMembers(ctx, marketo.MembersParams{ListID: r.list.ID, LookupField: spec.LookupField, SizeHint: int(hint)},
		func(_ context.Context, page []marketo.Member) error {
			for _, m := range page {
				read++
				key, why := rule.normalize(m.Key)
				if why != "" {
					if m.LeadID <= 0 {
						continue
					}
					key = strayKey(m.LeadID)
					strays++
				}
				if err := s.add(record{key: key, leadID: m.LeadID}); err != nil {
					return err
				}
			}
			if r.opts.Progress != nil {
				r.mu.Lock()
				r.membersRead = read
				r.reportLocked(false)
				r.mu.Unlock()
			}
			return nil
		})
	if err != nil {
		return fmt.Errorf("full resync: %w", err)
	}
	it, err := s.finish()
	if err != nil {
		return err
	}
	defer it.close()
	err = e.store.ReplaceMembers(ctx, spec.Name, e.now(), func(put func([]state.Member) error) error {
		page := make([]state.Member, 0, replacePage)
		var held state.Member // the last key read, whose repeats may follow
		for {
			rec, ok, err := it.next()
			if err != nil {
				return err
			}
			if ok && held.Key == rec.key {
				// Sorted: a key held by several leads comes in a row,
				// and then has no single lead ID.
				if held.LeadID != rec.leadID {
					held.LeadID = 0
				}
				continue
			}
			if held.Key != "" {
				page = append(page, held)
				if len(page) == replacePage {
					if err := put(page); err != nil {
						return err
					}
					page = page[:0]
				}
			}
			if !ok {
				break
			}
			held = state.Member{Key: rec.key, LeadID: rec.leadID}
		}
		if len(page) > 0 {
			return put(page)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("storing the members of list %d: %w", r.list.ID, err)
	}
	// The diff that follows reads the digest: compact the members just
	// written into it.
	if err := e.store.CompactDigest(ctx, spec.Name); err != nil {
		return fmt.Errorf("storing the members of list %d: %w", r.list.ID, err)
	}
	r.log.Info("full resync: read the list's members from Marketo", zap.Int64("list_id", r.list.ID),
		zap.Int64("members", read), zap.Int64("without_usable_key", strays))
	return nil
}

// forget drops rejects the model no longer asks for.
func (r *runner) forget(ctx context.Context, path string) error {
	return r.applyDiffFile(ctx, path, func(b *state.Batch, rec *record) { b.Forget = append(b.Forget, rec.key) })
}

// rehash stores the current form of the fields hash of members whose
// ledger hash was the legacy one and whose fields are unchanged (see
// fieldsHashV2), so that later diffs compare them without reading their
// rows back. Nothing is sent to Marketo: the lead's fields are as listsync
// last sent them, which the legacy hash showed.
func (r *runner) rehash(ctx context.Context, path string) error {
	return r.applyDiffFile(ctx, path, func(b *state.Batch, rec *record) {
		b.Confirmed = append(b.Confirmed, state.Member{Key: rec.key, LeadID: rec.leadID, FieldsHash: rec.hash.stored()})
	})
}

// applyDiffFile applies the records of a diff file to the ledger, add
// putting each into a batch, forgetBatch records a batch.
func (r *runner) applyDiffFile(ctx context.Context, path string, add func(*state.Batch, *record)) error {
	rr, err := openRecordFile(path)
	if err != nil {
		return fmt.Errorf("reading the diff: %w", err)
	}
	defer rr.close()
	b := state.Batch{At: r.e.now()}
	n := 0
	flush := func() error {
		if n == 0 {
			return nil
		}
		err := r.e.store.ApplyBatch(ctx, r.spec.Name, b)
		b, n = state.Batch{At: r.e.now()}, 0
		return err
	}
	for {
		var rec record
		if err := rr.read(&rec); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			return err
		}
		add(&b, &rec)
		if n++; n == forgetBatch {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	return flush()
}

// pending is a row of the chunk in flight, by key.
type pending struct {
	kind   byte
	leadID int64
	hash   fieldsHash
}

// readChunk reads up to n records, handing each to fn, and returns how many
// it read: 0 at the end of the file. The record is reused; its key and
// values are fresh for each (fn may keep them).
func readChunk(rr *recordReader, n int, fn func(*record)) (int, error) {
	var rec record
	for i := range n {
		if err := rr.read(&rec); errors.Is(err, io.EOF) {
			return i, nil
		} else if err != nil {
			return i, err
		}
		fn(&rec)
	}
	return n, nil
}

// chunkCap is the capacity to give a chunk's slices and map when left rows
// of the diff remain to be read: a chunk, or fewer.
func (r *runner) chunkCap(left int64) int {
	return int(min(int64(r.e.cfg.ChunkSize), max(left, 0)))
}

// pushUpserts sends adds and field updates in chunks, committing what
// Marketo confirms or rejects batch by batch.
//
// A chunk is read straight into the leads handed to Marketo, whose Values
// are the records' own field values, and into inFlight: no copy of the
// records is kept beside them. They are sized for the chunk up front, from
// the numbers of adds and updates the diff planned.
func (r *runner) pushUpserts(ctx context.Context, fieldNames []string, path string) error {
	rr, err := openRecordFile(path)
	if err != nil {
		return fmt.Errorf("reading the diff: %w", err)
	}
	defer rr.close()
	r.mu.Lock()
	left, addsLeft := r.run.AddsPlanned+r.run.UpdatesPlanned, r.run.AddsPlanned
	r.mu.Unlock()
	// One PendingHash for every mark: the store only reads it.
	pendingHash := []byte(state.PendingHash)
	for {
		inFlight := make(map[string]pending, r.chunkCap(left))
		leads := make([]marketo.Lead, 0, r.chunkCap(left))
		doubt := make([]state.Member, 0, r.chunkCap(addsLeft))
		n, err := readChunk(rr, r.e.cfg.ChunkSize, func(rec *record) {
			inFlight[rec.key] = pending{kind: rec.kind, leadID: rec.leadID, hash: rec.hash}
			if rec.kind == kindAdd {
				doubt = append(doubt, state.Member{Key: rec.key, LeadID: rec.leadID, FieldsHash: pendingHash})
			}
			// An update's empty value clears a field set before: the
			// client sends it where that works (Lead.Clears).
			leads = append(leads, marketo.Lead{Key: rec.key, Values: rec.values, Clears: rec.kind == kindUpdate})
		})
		if err != nil || n == 0 {
			return err
		}
		left, addsLeft = left-int64(n), addsLeft-int64(len(doubt))
		if err := r.markPending(ctx, doubt); err != nil {
			return err
		}
		r.sent(&r.upsertsSent, n)
		err = r.e.mkto.AddToList(ctx, marketo.AddParams{ListID: r.list.ID, LookupField: r.spec.LookupField,
			FieldNames: fieldNames, Leads: leads}, r.commitFunc(state.OpAdd, inFlight))
		if err != nil {
			return err // the client's errors name the list and the step
		}
	}
}

// pushRemoves sends removes in chunks, committing as pushUpserts does.
func (r *runner) pushRemoves(ctx context.Context, path string) error {
	rr, err := openRecordFile(path)
	if err != nil {
		return fmt.Errorf("reading the diff: %w", err)
	}
	defer rr.close()
	r.mu.Lock()
	left := r.run.RemovesPlanned
	r.mu.Unlock()
	pendingHash := []byte(state.PendingHash) // as in pushUpserts
	for {
		inFlight := make(map[string]pending, r.chunkCap(left))
		members := make([]marketo.Member, 0, r.chunkCap(left))
		doubt := make([]state.Member, 0, r.chunkCap(left))
		n, err := readChunk(rr, r.e.cfg.ChunkSize, func(rec *record) {
			inFlight[rec.key] = pending{kind: kindRemove, leadID: rec.leadID}
			members = append(members, marketo.Member{Key: rec.key, LeadID: rec.leadID})
			doubt = append(doubt, state.Member{Key: rec.key, LeadID: rec.leadID, FieldsHash: pendingHash})
		})
		if err != nil || n == 0 {
			return err
		}
		left -= int64(n)
		if err := r.markPending(ctx, doubt); err != nil {
			return err
		}
		r.sent(&r.removesSent, n)
		err = r.e.mkto.RemoveFromList(ctx, marketo.RemoveParams{ListID: r.list.ID, LookupField: r.spec.LookupField,
			Members: members}, r.commitFunc(state.OpRemove, inFlight))
		if err != nil {
			return err // the client's errors name the list and the step
		}
	}
}

// sent counts n rows handed to Marketo into *counter, a progress field.
func (r *runner) sent(counter *int64, n int) {
	if r.opts.Progress == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	*counter += int64(n)
	r.reportLocked(false)
}

// markPending records the adds and removals about to be sent as members in
// doubt (state.PendingHash), in one transaction, before anything is sent:
// if their answer is lost, the next run sends them again, whatever the model
// says by then. Marketo's answers replace the marks (commitFunc).
func (r *runner) markPending(ctx context.Context, members []state.Member) error {
	if len(members) == 0 {
		return nil
	}
	if err := r.e.store.ApplyBatch(ctx, r.spec.Name, state.Batch{At: r.e.now(), Confirmed: members}); err != nil {
		return fmt.Errorf("recording the batch about to be sent: %w", err)
	}
	return nil
}

// commitFunc records each batch's outcomes in the ledger, in one
// transaction, on a context that a shutdown does not cancel: what Marketo
// has done must reach the ledger.
func (r *runner) commitFunc(op state.Op, inFlight map[string]pending) marketo.CommitFunc {
	return func(ctx context.Context, outcomes []marketo.Outcome) error {
		b := state.Batch{At: r.e.now(), Backoff: r.e.cfg.Backoff}
		if op == state.OpRemove {
			b.Removed = make([]string, 0, len(outcomes))
		} else {
			b.Confirmed = make([]state.Member, 0, len(outcomes))
		}
		seen := make(map[string]bool, len(outcomes))
		var adds, updates, removes, rejected int64
		for _, o := range outcomes {
			p, ok := inFlight[o.Key]
			if !ok {
				return fmt.Errorf("marketo reported an outcome for key %q, which was not sent", o.Key)
			}
			if seen[o.Key] || o.Status == marketo.NotAttempted {
				continue
			}
			seen[o.Key] = true
			switch o.Status {
			case marketo.Confirmed:
				if op == state.OpRemove {
					b.Removed = append(b.Removed, o.Key)
					removes++
					continue
				}
				id := o.LeadID
				if id == 0 {
					id = p.leadID
				}
				b.Confirmed = append(b.Confirmed, state.Member{Key: o.Key, LeadID: id, FieldsHash: p.hash.stored()})
				if p.kind == kindUpdate {
					updates++
				} else {
					adds++
				}
			case marketo.Rejected:
				b.Rejected = append(b.Rejected, state.Rejection{Key: o.Key, Op: op, Code: o.Code, Reason: o.Reason})
				rejected++
			}
		}
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), r.e.cfg.CommitTimeout)
		defer cancel()
		if err := r.e.store.ApplyBatch(cctx, r.spec.Name, b); err != nil {
			return fmt.Errorf("committing a confirmed batch: %w", err)
		}
		r.mu.Lock()
		defer r.mu.Unlock()
		defer r.reportLocked(false)
		r.run.AddsConfirmed += adds
		r.run.UpdatesConfirmed += updates
		r.run.RemovesConfirmed += removes
		r.run.Rejected += rejected
		r.log.Debug("committed a batch", zap.String("op", string(op)), zap.Int64("adds", adds), zap.Int64("updates", updates),
			zap.Int64("removes", removes), zap.Int64("rejected", rejected))
		return nil
	}
}

// diffPaths are the finished diff files.
type diffPaths struct {
	upserts, removes, forgets, rehashes string
}

func (o *diffOutput) finish() (diffPaths, error) {
	var p diffPaths
	var err error
	if p.upserts, err = o.upserts.finish(); err != nil {
		return p, err
	}
	if p.removes, err = o.removes.finish(); err != nil {
		return p, err
	}
	if p.forgets, err = o.forgets.finish(); err != nil {
		return p, err
	}
	if p.rehashes, err = o.rehashes.finish(); err != nil {
		return p, err
	}
	o.upserts, o.removes, o.forgets, o.rehashes = nil, nil, nil, nil
	return p, nil
}

// abort closes the files of an unfinished diff (the run's directory is
// removed with them).
func (o *diffOutput) abort() {
	for _, w := range []*recordWriter{o.upserts, o.removes, o.forgets, o.rehashes} {
		if w != nil {
			w.abort()
		}
	}
}
