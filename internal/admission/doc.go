// Package admission owns the gate in front of the origin: an adaptive
// concurrency limit per upstream pool, a priority queue with per-class
// deadlines for the requests over the limit, and a pool-wide circuit breaker.
//
// The limit is found, not configured. Every response from the origin is a
// sample of its latency (time to response headers). The Limiter measures the
// origin's unloaded latency (minRTT) by probing at MinLimit concurrency now
// and then, compares the median latency of each short window with it, and
// moves the limit by the gradient (1+Tolerance)·minRTT/sampleRTT: a latency
// within the tolerance lets the limit grow (by the gradient, at least by
// one), a latency above it shrinks the limit in proportion, smoothed.
// Overload signals from the origin (502, 503, 504, timeouts) cut it
// multiplicatively. In front of an origin of fixed capacity C the limit
// settles near (1+Tolerance)·C. The ideas come from Envoy's adaptive
// concurrency filter and Netflix's concurrency-limits (Gradient2, Vegas);
// the code is our own.
//
// Requests over the limit wait in a bounded queue, priority class first
// (verdict.ClassPriority, then ClassNormal, then ClassSuspicious), and
// within a class fair between clients: each client (a key the caller gives,
// the address in rampart) has its own FIFO and the clients are served in
// turn, one request each, so a reader with one request waiting is not
// queued behind a flooder's hundred; a full queue sheds the newest request
// of the longest client. Each request waits until its class deadline, and
// an admitted one is handed to Hooks.Recheck first (the shield judges it
// again if the mode rose since it arrived). Waiting is a channel
// receive with a timer; no goroutine polls. A request that cannot be
// admitted gets a 503 with Retry-After and the operator's overload page,
// which the cache in front turns into a stale copy when it has one.
//
// The package knows nothing about caching or about clients beyond their
// priority class.
package admission
