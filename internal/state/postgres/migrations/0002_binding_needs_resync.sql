-- A binding to a new list needs the list's membership read from Marketo;
-- until ReplaceMembers has done it, the ledger of that list is not known
-- to be empty, even across a crash.
ALTER TABLE listsync_bindings ADD COLUMN needs_resync boolean NOT NULL DEFAULT false;
