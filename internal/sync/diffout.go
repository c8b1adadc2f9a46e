package sync

import (
	"slices"

	"github.com/listsync/listsync/internal/state"
)

// diffOutput is the diffSink of a run (writing the diff to temporary files)
// or of a plan (only counting and sampling it).
type diffOutput struct {
	// upserts holds adds and updates in key order; removes the removes;
	// forgets the keys of stale rejects; rehashes the members whose legacy
	// hash is to be rewritten (diffSink.rehash). All nil for a plan.
	upserts, removes, forgets, rehashes *recordWriter

	// The samples are the first few keys of each kind in key order (the
	// diff comes in fingerprint order, so they are kept sorted as they
	// come).
	addSamples, updateSamples, removeSamples, deferredSamples []string
}

func (o *diffOutput) emit(r *record) error {
	switch r.kind {
	case kindAdd:
		o.addSamples = appendSample(o.addSamples, r.key)
	case kindUpdate:
		o.updateSamples = appendSample(o.updateSamples, r.key)
	case kindRemove:
		o.removeSamples = appendSample(o.removeSamples, r.key)
	}
	w := o.upserts
	if r.kind == kindRemove {
		w = o.removes
	}
	if w == nil {
		return nil
	}
	return w.write(r)
}

func (o *diffOutput) deferred(key string, op state.Op) {
	o.deferredSamples = appendSample(o.deferredSamples, string(op)+" "+key)
}

func (o *diffOutput) rehash(r *record) error {
	if o.rehashes == nil {
		return nil
	}
	return o.rehashes.write(&record{key: r.key, leadID: r.leadID, hash: r.hash}) // the values are not needed
}

func (o *diffOutput) forget(key string) error {
	if o.forgets == nil {
		return nil
	}
	return o.forgets.write(&record{key: key})
}

// appendSample adds v to s, the smallest keys seen so far in order, when it
// is one of the maxSamples smallest.
func appendSample(s []string, v string) []string {
	if len(s) == maxSamples && v >= s[len(s)-1] {
		return s
	}
	i, _ := slices.BinarySearch(s, v)
	if len(s) < maxSamples {
		s = append(s, "")
	}
	copy(s[i+1:], s[i:])
	s[i] = v
	return s
}
