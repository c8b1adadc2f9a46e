// Package state is the seam between the sync engine and the stores that keep
// listsync's ledger: per sync, the members Marketo has confirmed on the sync's
// static list, the rows Marketo rejected (retried later with a growing
// delay), the list the ledger belongs to, the history of runs, and the locks
// and claimed schedule ticks that keep several workers from running the same
// sync at once. Beside the syncs, it keeps what listsync measured about each
// Marketo instance ([Store.ImportRate]: the speed of its bulk imports), so
// that a new process starts from it.
//
// The ledger records what Marketo confirmed, never what listsync meant to
// send: the engine writes to it only through [Store.ApplyBatch], once per
// batch Marketo has answered, so that a crash at any moment leaves the ledger
// true and the next run resumes from it. The one exception marks doubt, not
// membership: just before a batch is sent, its adds and removals are
// recorded as pending members ([PendingHash]), so that a batch whose answer
// is lost is sent again instead of forgotten.
//
// Keys are compared bytewise everywhere (Go's string order). Every backend
// returns members and rejects in that order, because the engine diffs a
// sorted model against them with a streaming merge join.
//
// Two backends implement [Store]: sqlite (one file, the embedded default) and
// postgres (shared by several workers). The statetest subpackage holds the
// conformance suite both pass.
package state
