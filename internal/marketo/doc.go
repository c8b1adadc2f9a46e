// Package marketo is listsync's client for the Marketo REST API: the only
// way listsync changes a static list.
//
// Marketo's API budget is the physical limit of the product (100 calls per
// 20 s shared by every integration on an instance, 300 records a call, a
// daily quota), so the client spends as few calls as it can, paces itself
// with one limiter per instance, retries transient errors with backoff, and
// reports what Marketo did with every row as an [Outcome].
//
// The emulator subpackage is an independent implementation of the same API,
// written from Marketo's documentation, that tests, the demo and local
// docker-compose runs use in place of a real instance.
package marketo
