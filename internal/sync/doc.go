// Package sync is listsync's engine: it runs a sync's model, diffs the
// result against the ledger of what Marketo has confirmed on the sync's
// static list, and pushes the difference, committing each batch Marketo
// confirms to the state store before the next one is sent.
//
// Importers name it listsync, as it shadows the standard library's sync.
//
// # One run
//
//  1. Take the sync's lock; record the run. Should the store find the lock
//     lost later (state.Lease.Lost), the run stops as on a shutdown.
//  2. Stream the model's rows; normalise and validate the keys; render the
//     mapped fields and hash them. Reading the warehouse and staging run on
//     two goroutines. Each valid row goes to an arena file, and a 40-byte
//     entry (the key's fingerprint, state.Fingerprint; the fields hash,
//     XXH3-128, see fieldsHashV2; the row's offset) to an external sort by fingerprint whose memory is
//     bounded (EngineConfig.SortMemory), spilling sorted runs to temporary
//     files. The model runs first so that a broken model costs no API call.
//  3. Bind the ledger to the list. The list the sync's binding names is used
//     without a call while the sync's list reference is unchanged; a list
//     deleted in Marketo since is caught by the push's first call (or, when
//     there is nothing to push, by resolving it before the run ends), and the
//     run starts over against the list the reference then names. Otherwise
//     the list is resolved (by ID, or by name, created in its folder if
//     missing). A ledger bound to another list is cleared, and the list's
//     real membership is read from Marketo (a full resync), as it is on the
//     first run, after a reset, after a resync that never committed, and on
//     request.
//  4. Merge-join the sorted entries with the ledger's digest
//     (state.Store.ScanDigest) and the rejects, all three in fingerprint
//     order, reading back from the arena only the rows the diff sends, and
//     writing adds, field updates and removes to temporary files. Memory
//     stays flat whatever the size of the model. A member whose ledger hash
//     is the legacy SHA-256 one is checked against it and, unchanged, only
//     gets its hash stored in the current form.
//  5. Check the guards (an empty model, too many removes) before any change.
//  6. Push removes, then adds and updates (an add then has the last word on
//     a lead Marketo knows under a new key), in chunks; commit each batch's
//     outcome as soon as Marketo answers it: confirmed rows into the ledger,
//     rejected rows into the rejects with a growing retry delay. Before a
//     chunk is sent, its adds and removes are recorded as pending
//     (state.PendingHash): if the answer is lost to a crash, a kill or a
//     timeout, the next run sends them again (the add if the model still
//     has the key, else the removal), so that no change is lost whatever
//     the model says by then.
//  7. Compact the ledger's digest (state.Store.CompactDigest), so that the
//     next diff reads it in a few blobs; record the run's counts, API calls
//     and error.
//
// The diff is a streaming merge in Go over fingerprints rather than over key
// strings, or an anti-join in the state store: see diff.go for the
// measurements behind the choice.
package sync
