package sync_test

// childMain runs the child side of the SIGKILL test when the test binary is
// re-executed for it; it reports whether it did.
func childMain() bool { return false }
