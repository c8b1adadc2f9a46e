// Package cli is the `listsync` command: run, plan, worker, validate,
// history, rejects, reset and demo.
//
// [Run] is the whole program behind a thin main: it parses the arguments,
// loads and validates the config (the file named by --config, else
// $LISTSYNC_CONFIG, else ./listsync.yaml), maps it onto each package's own
// options (the warehouses, the state store, one Marketo client shared by
// every sync, the engine, the worker) and returns the exit code: 0 on
// success, 1 when a sync (or a connection check) failed, 2 on a usage or
// configuration error. It reads no environment variable, flag or file that
// it was not handed.
package cli
