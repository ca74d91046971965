// Package cache owns rampart's response cache in front of the origin: an
// in-memory store bounded by bytes with a scan-resistant eviction policy
// (W-TinyLFU, github.com/maypok86/otter/v2), HTTP freshness rules (RFC 9111:
// Cache-Control, Expires, Age, Vary), micro-caching of anonymous pages under
// attack, stale-while-revalidate and stale-if-error ("always online"),
// coalescing of concurrent misses into one origin request, and cache keys
// normalised so that random query strings, the cache-busting trick of
// current DDoS tools, all map to one entry under attack.
//
// Normalised keys keep the query parameters a path is configured to use
// (KnownParams) or learned to use in normal traffic: a name seen on a path
// group (numeric segments replaced) for at least LearnAfter, unless the
// origin's own answers proved it a cache-buster (different values, all else
// equal, gave identical bodies). Tracking tags and jQuery's "_"
// (IgnoreParams) are never kept. When a key drops a parameter that may still
// matter, a micro-cached copy is served only while fresh, never stale.
//
// Logged-in visitors (Authorization, session cookies) never touch it, and
// responses that set cookies or say private or no-store are never stored.
// Every table keyed by what a client sends has a fixed capacity: the store
// (MaxBytes less the reserves below), the memory of fetches under way
// (InflightBytes, which also bounds the in-flight table with MaxFlights),
// the background refreshes (MaxRefreshes), the Vary variants per URL
// (MaxVariants) and the learned query parameters (LearnCapacity path groups
// of at most 16 names, LearnGroupBytes each, reserved out of MaxBytes).
//
// It does not decide policy: the policy's miss limit reaches it as the
// AdmitMiss hook, the shield's mode as the Mode hook.
package cache
