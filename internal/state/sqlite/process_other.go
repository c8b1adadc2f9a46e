//go:build !unix

package sqlite

// processAlive reports true: without a portable probe, a dead holder's lock
// is freed only by its expiry.
func processAlive(int) bool { return true }
