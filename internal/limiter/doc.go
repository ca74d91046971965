// Package limiter owns rampart's rate limiters: GCRA (the generic cell rate
// algorithm) kept in bounded, sharded, set-associative tables keyed by 64-bit
// keys, the KeyBuilder that makes those keys without allocating, and the
// Escalator that turns repeated limit violations into block durations that
// double for repeat offenders.
//
// The package knows nothing about HTTP or about rampart's policy: callers
// build a key (rule + client address, rule + prefix + header value, a TLS
// fingerprint, ...) with a KeyBuilder, pick the Params of the rule, and ask a
// Table whether the request conforms. Time is always passed in as Unix
// nanoseconds, so tests drive a fake clock.
//
// Every table has a fixed capacity chosen at construction and never grows.
// When a bucket is full of entries that still hold limiting state, the entry
// nearest to expiry is thrown out; the table counts these live evictions,
// raises a Pressure flag in its Stats for PressureWindow and calls an optional
// OnPressure hook at most once per second, so an operator learns that the
// table is too small instead of watching limits silently stop working.
package limiter
