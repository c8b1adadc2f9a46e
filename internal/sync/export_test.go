package sync

// LegacyFieldsHash is legacyFieldsHash, for tests that build the ledger of
// an older listsync.
func LegacyFieldsHash(names, values []string) []byte { return legacyFieldsHash(names, values) }

// StoredFieldsHash is the fields hash of values as a run stores it.
func StoredFieldsHash(names, values []string) []byte { return hashFields(names, values).stored() }
