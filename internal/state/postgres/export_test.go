package postgres

// LockKeyForTest exposes the advisory lock key of a sync.
func LockKeyForTest(syncName string) int64 { return lockKey(syncName) }
