// Package sim owns the loopback-only traffic simulator behind rampart-sim:
// the fire drill that rehearses an attack against a shield on this machine
// and measures, for legitimate visitors and attackers, what got through.
// It is built into rampart-sim only, never into rampart.
//
// # Safety
//
// [Run] validates the target and the origin stats URL with [ParseTarget]
// before it sends anything: http or https, host "localhost" (taken as
// 127.0.0.1, never looked up) or a literal address in 127.0.0.0/8 or ::1.
// Every dial goes through a check that refuses any address but the target,
// so a redirect cannot lead traffic elsewhere. Every run is bounded by its
// duration, a total request cap (Config.MaxRequests) and a hard wall-clock
// cap (Duration+Grace).
//
// # Clients
//
// Each simulated client binds its own source address in 127.0.0.0/8 (Linux
// accepts any of them without configuration; an IPv6 target leaves every
// client on ::1). [AssignAddrs] scatters legitimate visitors and attackers
// across many /24s and /16s, roles mixed inside each /24, or, with the
// clustered layout, packs each role into its own /16. No client uses
// 127.0.0.1 or the target's address.
//
// Legitimate visitors are browsers: a cookie jar, the headers of a current
// Chrome, Firefox or Safari (Sec-Fetch-*, Accept, Accept-Language,
// Accept-Encoding), redirects followed, a page's static assets loaded and
// kept for their max-age, and think time between pages (Config.ThinkMin to
// ThinkMax). One in ten signs in first. A share of them
// (Config.NoJSShare) runs no JavaScript; the others solve rampart's
// challenge through Config.Solver when a page answers 403 with
// "Rampart-Mitigated: challenge", and ask again. Every request carries
// "X-Sim-Role: legit" or "X-Sim-Role: attack" so that the demo origin can
// count roles; a shield must ignore that header.
//
// # Attacks
//
// [Presets] lists the scenarios; each is a set of [Attack] components whose
// number of addresses scales with Config.Scale. Floods pace each address at
// its rate with at most 4 requests outstanding; slow attacks hold
// connections (one attack request per connection, 16 for slow-read, which
// pipelines them); h2-rapid-reset sends
// HEADERS and RST_STREAM pairs over h2c prior knowledge (TLS with ALPN h2
// for https targets); browser-botnet members solve challenges like the
// visitors and the CPU time they spend doing so is reported.
//
// The campaign presets reproduce what reports of real attacks on government
// and news sites describe: ddosia (NoName057(16)'s templates of expensive
// URLs with per-request random placeholders, from Go's default client),
// random-404, header-random (user agents, referers, forged forwarding
// headers, random subdomains in Host: headers only, the connection still
// goes to the target), login-flood, pingback (WordPress reflection),
// head-flood, carpet (thousands of addresses under per-address limits, in
// waves) and multi-vector (technique shifting every third of the run). The
// Kind constants give each shape. Any component may start late, ramp up and
// run in waves ([Attack] Start, Ramp, On, Off); these times stretch with
// the run's duration. A scheduled source's requests fall where the
// integral of its rate reaches each next whole request, so a ramp and waves
// shape the rate exactly, not by sampling.
//
// # Report
//
// [Report] is one JSON object; its keys include legit_success_ratio,
// legit_p50_ms, legit_p95_ms, legit_p99_ms (every legitimate visitor;
// legit_js and legit_nojs split them), attack_sent, attack_reached_origin
// (from the demo origin's role counters, reset before the run; null without
// them), decisions (per role, counts by the Rampart-Mitigated header; when
// absent "allow", or "origin-error" for a 5xx), cache (per role, by
// Rampart-Cache), statuses (slow-attack connections "held" when open at
// the end of the run or of their wave), and with a proxy PID proxy_cpu_s,
// proxy_rss_bytes and proxy_peak_rss_bytes. A
// legitimate request succeeds when its final answer is 2xx or 304;
// percentiles are nearest-rank over the raw latencies of every legitimate
// request, failed ones included.
package sim
