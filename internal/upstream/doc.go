// Package upstream owns rampart's origin pool: the reverse proxy that is the
// last handler of the pipeline (policy → cache → admission → upstream), the
// tuned transports to the origins, the choice of an origin for each request
// (round-robin or least-connections), active health checks, passive ejection
// and a circuit breaker per origin, and the shield's own 502/504 pages when no
// origin can answer.
//
// The package never decides policy and knows nothing about clients beyond
// what it is told: the client address, whether it came over TLS and the
// verified proxy chain arrive through [WithClient] or [Options.Client]; when
// neither says anything, the TCP peer is taken as the client and any
// X-Forwarded-For the client sent is dropped.
//
// A [Pool] is an [http.Handler]. It wraps one [httputil.ReverseProxy] built
// once with a Rewrite function (never Director) and one sync.Pool of copy
// buffers. Each origin has a tuned [http.Transport] and, for "http" and
// "https" origins, a direct HTTP/1.1 fast path that serves bodiless GET and
// HEAD requests on the handler's goroutine. When every origin has that
// fast path, such requests skip ReverseProxy too: the pool writes the
// outbound request itself and copies an ordinary answer's head and body
// straight to the client (the direct path), handing only unusual answers
// to a ReverseProxy that replays them. Choosing an origin uses atomic
// counters only; locks are taken only when an origin fails or changes
// state.
package upstream
