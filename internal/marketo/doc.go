// Package marketo is listsync's client for the Marketo REST API: the only
// way listsync changes a static list.
//
// Marketo's API budget is the physical limit of the product (100 calls per
// 20 s shared by every integration on an instance, 300 records a call, a
// daily quota), so the client spends as few calls as it can, paces itself
// with one limiter per instance, retries transient errors with backoff, and
// reports what Marketo did with every row as an [Outcome].
//
// Create one [Client] per Marketo instance with [NewClient] and share it:
// its access token and its limiter (a sliding window of Config.CallsPer20s
// calls per 20 s, plus at most Config.MaxConcurrency calls in flight) are
// per instance. The sync engine uses four methods:
//
//   - [Client.ResolveList] finds a static list by id, or by name (creating
//     it in a folder when missing);
//   - [Client.AddToList] creates or updates leads and adds them, through the
//     REST calls for small sets and a bulk import for large ones;
//   - [Client.RemoveFromList] removes members by lead id, learning unknown
//     ids by lookups or a bulk extract of the list, whichever costs fewer
//     calls;
//   - [Client.ListMembers] streams a list's members with their lead ids,
//     paged or through a bulk extract.
//
// Two read-only methods check a configuration without changing anything:
// [Client.Ping] fetches an access token (no API call), and [Client.FindList]
// answers what ResolveList would do without creating a list.
//
// Add and remove report each batch's outcomes through a [CommitFunc] as soon
// as Marketo has answered it. [WithCallCounter] counts the calls made under
// a context, and Config.OnCall sees every call, for metrics.
//
// The emulator subpackage is an independent implementation of the same API,
// written from Marketo's documentation, that tests, the demo and local
// docker-compose runs use in place of a real instance.
package marketo
