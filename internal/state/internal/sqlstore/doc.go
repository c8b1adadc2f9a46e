// Package sqlstore holds what the SQL backends of [state.Store] (sqlite and
// postgres) share: the reading of their numbered migrations, the column
// lists and scan order of run and reject records, the message of an
// abandoned run, and the encoding and merge of the ledger digest
// (digest.go). It lives under internal/state so that the backends share it
// without importing each other, and nothing outside internal/state sees it.
package sqlstore
