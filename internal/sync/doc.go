// Package sync is listsync's engine: it runs a sync's model, diffs the
// result against the ledger of what Marketo has confirmed on the sync's
// static list, and pushes the difference, committing each batch Marketo
// confirms to the state store before the next one is sent.
//
// Importers name it listsync, as it shadows the standard library's sync.
//
// # One run
//
//  1. Take the sync's lock; record the run.
//  2. Stream the model's rows; normalise and validate the keys; render the
//     mapped fields and hash them. Rows are sorted by key with an external
//     sort whose memory is bounded (EngineConfig.SortMemory), spilling sorted
//     runs to temporary files. The model runs first so that a broken model
//     costs no API call.
//  3. Resolve the list (one API call) and bind the ledger to it. A ledger
//     bound to another list is cleared, and the list's real membership is read
//     from Marketo (a full resync), as it is on the first run, after a reset,
//     after a resync that never committed, and on request.
//  4. Merge-join the sorted model with the ledger's members and rejects, all
//     three in bytewise key order, writing adds, field updates and removes to
//     temporary files. Memory stays flat whatever the size of the model.
//  5. Check the guards (an empty model, too many removes) before any change.
//  6. Push adds and updates, then removes, in chunks; commit each batch's
//     outcome as soon as Marketo answers it: confirmed rows into the ledger,
//     rejected rows into the rejects with a growing retry delay. Before a
//     chunk is sent, its adds and removes are recorded as pending
//     (state.PendingHash): if the answer is lost to a crash, a kill or a
//     timeout, the next run sends them again (the add if the model still
//     has the key, else the removal), so that no change is lost whatever
//     the model says by then.
//  7. Record the run's counts, API calls and error.
//
// The diff is a streaming merge in Go rather than an anti-join in the state
// store: see diff.go for the measurement behind the choice.
package sync
