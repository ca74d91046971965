// Package demo owns the demo origin: a small news website with a bounded
// capacity that counts what reaches it. It stands in for the public
// institution's real site in `rampart demo`, in rampart-sim, in tests and in
// benchmarks. The shield never imports it.
//
// # The site
//
//	GET  /                  front page, a news list linking to the articles;
//	                        Cache-Control: public, max-age=10 (private, no-store
//	                        once the visitor holds a session cookie)
//	GET  /news/{id}         an article (id 1..Options.Articles), a few KiB of
//	                        HTML linking to the static assets; no cache headers,
//	                        so only micro-caching can spare the origin
//	GET  /static/style.css  static assets, Cache-Control: public, max-age=3600
//	GET  /static/app.js
//	GET  /static/logo.svg
//	GET  /search?q=         deliberately expensive: holds a worker for
//	                        Options.SearchCost (a timer wait, not CPU work, so
//	                        that the origin's capacity does not depend on how
//	                        busy the shared machine is)
//	POST /api/comments      reads the body (at most Options.MaxBody bytes,
//	                        413 beyond) while holding a worker, answers 201
//	GET  /events            server-sent events, one tick per Options.Tick;
//	                        ?ticks=N ends the stream after N ticks
//	GET|POST /login         sets a session cookie ("session"); GET answers a
//	                        page without cache headers, POST redirects to /
//	GET  /healthz           200 "ok", outside the worker pool, not counted
//	GET  /__demo/stats      the counters as JSON (below), not counted
//	POST /__demo/reset      zeroes the counters, 204, not counted
//
// Every counted response carries X-Origin-Cost, the worker time the request
// was charged in milliseconds (PageCost for pages, SearchCost for search, 0 for
// static assets), and X-Origin-Serial, a number that grows by one for every
// request the origin served, so a test can tell an origin answer from a cached
// copy.
//
// # Capacity
//
// Every counted request except /events needs one of Options.Workers workers
// (default 16); up to Options.Queue more (default 64) wait in line for one,
// first come first served; anything beyond is answered 503 at once. Latency
// grows as the queue fills: this is the origin that drowns. /events streams
// are bounded separately by Options.MaxStreams. When served through
// [Origin.Serve], at most Options.MaxConns connections are accepted at once, as
// with a thread-per-connection server, so that slowloris can drown the bare
// origin as it would a real one.
//
// # Counting
//
// Each request is counted by role and class. The role comes from the
// X-Sim-Role request header, which only the simulator sets: "legit", "attack",
// anything else or absent is "unknown". The class is "post" for POST, PUT,
// PATCH and DELETE; else "static" under /static/, "search" for /search, "page"
// for /, /news/ and /login, and "other" for everything else (404s, /events).
// The source is the last X-Forwarded-For entry when the peer is a loopback
// address (a proxy on this machine), otherwise the peer; sources are counted
// in a fixed-capacity heavy-hitter table (Space-Saving: when full, the least
// counted source is replaced and its count inherited, so counts are upper
// bounds and the reported overcount bounds the error).
//
// # Stats JSON
//
// GET /__demo/stats answers one object, the JSON form of [Stats]:
//
//	{
//	  "since": "2026-01-02T15:04:05Z",   // last reset (or start)
//	  "workers": 16, "queue": 64,        // the configured capacity
//	  "served": 1200,                    // requests answered by a worker
//	  "rejected": 30,                    // 503: workers and queue were full
//	  "canceled": 2,                     // client left while queued
//	  "in_flight": 3,                    // holding a worker now (gauge)
//	  "queue_depth": 0,                  // waiting for a worker now (gauge)
//	  "peak_queue_depth": 12,            // highest queue depth since reset
//	  "streams": 1,                      // open /events streams (gauge)
//	  "conns": 5,                        // connections open under Serve (gauge)
//	  "latency": {                       // served requests, arrival to last byte
//	    "count": 1200, "p50_ms": 10.4, "p99_ms": 52.1, "max_ms": 61.0
//	  },
//	  "legit":   {"requests": 900, "served": 890, "rejected": 10, "canceled": 0,
//	              "classes": {"page": 300, "static": 580, "search": 20, "post": 0, "other": 0}},
//	  "attack":  { ...same shape... },
//	  "unknown": { ...same shape... },
//	  "sources": [                       // heaviest first
//	    {"addr": "127.4.9.1", "requests": 77, "overcount": 0, "last_role": "attack"}
//	  ],
//	  "sources_capacity": 256
//	}
//
// A role's "requests" is everything of that role that reached the origin:
// served + rejected + canceled. Percentiles are the upper bound of a
// log-scaled histogram bucket (buckets grow by 2^(1/4), so a reported value is
// at most 19% above the true one).
package demo
