// Package config owns rampart's configuration: the schema (every key with
// its default and the attack it is for), strict loading from YAML with
// FILE:LINE:COL errors, validation, and the embedded defaults that let
// rampart run with no file at all. It imports no other rampart package; the
// shield translates a Config into each package's options.
//
// The doc comments of the types in this file are the configuration
// reference: docs/configuration.md is generated from them
// (go run ./internal/config/gendoc) and a test keeps the two in step.
package config

// Config is the whole configuration. The zero value is not useful: start
// from Default, or use Load, which decodes a file over Default.
type Config struct {
	// Listeners are the public addresses rampart accepts visitors on.
	Listeners []Listener `yaml:"listeners"`
	// Upstream is the origin pool rampart protects.
	Upstream Upstream `yaml:"upstream"`
	// Admin is the operators' listener: metrics, status, blocks, cache purge.
	Admin Admin `yaml:"admin"`
	// StateDir holds state that survives restarts: challenge signing keys,
	// the generated admin token, ACME certificates. Created with 0700.
	// Empty: /var/lib/rampart when it can be created, else
	// $XDG_STATE_HOME/rampart or ~/.local/state/rampart.
	StateDir string `yaml:"state_dir"`
	// Mode is auto (the shield detects attacks and escalates by itself: see
	// detect), or pins the mode: normal, elevated (micro-caching, cache keys
	// without unknown query parameters, and a cookie check for requests
	// the cache cannot answer) or under_attack (also challenges every
	// request that has no clearance).
	Mode string `yaml:"mode"`
	// Detect tunes automatic mode changes (mode: auto).
	Detect Detect `yaml:"detect"`
	// TLS configures certificates for listeners with tls: true.
	TLS TLS `yaml:"tls"`
	// Client says how the client address is found.
	Client Client `yaml:"client"`
	// Hardening holds the connection and protocol limits that stop slow and
	// malformed-request attacks.
	Hardening Hardening `yaml:"hardening"`
	// Limits sizes the rate-limit tables and the repeat-offender escalation.
	Limits Limits `yaml:"limits"`
	// Lists are the allow and deny CIDR lists.
	Lists Lists `yaml:"lists"`
	// Rules are evaluated in order for every request, before the built-in
	// default rules (see DefaultRules).
	Rules []Rule `yaml:"rules"`
	// DefaultRules appends the built-in rules after yours: generous per-IP
	// and per-prefix limits for pages, separate ones for static assets, and
	// stricter ones for POST and for cache misses.
	DefaultRules bool `yaml:"default_rules"`
	// Challenge configures the proof-of-work challenge and clearance.
	Challenge Challenge `yaml:"challenge"`
	// Cache configures the response cache in front of the origin.
	Cache Cache `yaml:"cache"`
	// Admission configures the adaptive concurrency limit and priority
	// queue in front of the origin.
	Admission Admission `yaml:"admission"`
	// Log configures logging.
	Log Log `yaml:"log"`

	src *source
}

// Detect tunes the automatic mode. Once a second the shield compares its
// traffic with a learned baseline and looks at the origin's health: a surge
// of requests or of cache misses raises the mode to elevated; an origin that
// stays in distress (requests queued or turned away by admission control,
// failing, or down) while elevated, or an extreme surge, raises it to
// under_attack; the mode steps back down one level after stand_down of calm.
type Detect struct {
	// SurgeFactor: traffic this many times its baseline is a surge.
	SurgeFactor float64 `yaml:"surge_factor"`
	// MinRate is the request rate (per second) below which there is never
	// a surge, so a quiet site's small spikes are not attacks.
	MinRate float64 `yaml:"min_rate"`
	// MinOriginRate is the same floor for requests that reach the origin.
	MinOriginRate float64 `yaml:"min_origin_rate"`
	// ElevateAfter is how many seconds of surge or origin distress in a row
	// raise the mode to elevated.
	ElevateAfter int `yaml:"elevate_after"`
	// AttackAfter is how many seconds of origin distress in a row, while
	// elevated, raise the mode to under_attack.
	AttackAfter int `yaml:"attack_after"`
	// ExtremeFactor: a request rate this many times the baseline (and above
	// ExtremeMinRate) for ExtremeAfter seconds in a row, while the
	// requests reaching the origin surge too, raises the mode to
	// under_attack even while the origin copes: a flood that gets past the
	// cache and elevated mode's cookie check (clients that keep cookies)
	// will wear it down. A flood they absorb does not raise it further.
	ExtremeFactor float64 `yaml:"extreme_factor"`
	// ExtremeMinRate is the request rate (per second) below which no surge
	// is extreme.
	ExtremeMinRate float64 `yaml:"extreme_min_rate"`
	// ExtremeAfter is how many seconds an extreme surge must last.
	ExtremeAfter int `yaml:"extreme_after"`
	// StandDown is how long every signal must stay calm before the mode
	// steps down one level.
	StandDown Duration `yaml:"stand_down"`
	// WarmUp is how long after start a surge does not count (origin
	// distress always counts). The baseline is saved in the state
	// directory every minute and at shutdown, and a restart starts from
	// it (if under a week old). Without one it starts at zero and is young
	// until it has learned from a minute of calm traffic (or brought the
	// mode down from elevated): a surge is then a rate over ten times
	// (extreme_factor) the floors, 500 requests or 250 origin requests a
	// second by default, whatever the young baseline says (a flood that
	// ramps up over a few seconds is not learned as the site's traffic),
	// and there is no extreme surge (only origin distress leads to
	// under_attack), so a busy site's first start is not read as an attack
	// while a flood already running still raises the mode. A warm-up
	// ignores surges altogether and lets the young baseline count from its
	// end, at the price of not seeing such a flood.
	WarmUp Duration `yaml:"warm_up"`
}

// Listener is one public address.
type Listener struct {
	// Address is host:port to listen on, such as ":443" or "127.0.0.1:8080".
	Address string `yaml:"address"`
	// TLS serves HTTPS (HTTP/1.1 and HTTP/2 through ALPN) with the
	// certificates of the tls section. Without it the listener serves
	// HTTP/1.1 and HTTP/2 with prior knowledge (h2c).
	TLS bool `yaml:"tls"`
	// ProxyProtocol expects a PROXY protocol v1 or v2 header on every
	// connection, from peers in client.trusted_proxies only, and uses the
	// address it carries as the client address.
	ProxyProtocol bool `yaml:"proxy_protocol"`
}

// Upstream is the origin pool.
type Upstream struct {
	// Targets are the origin URLs: http:// or https:// (HTTP/1.1), h2c://
	// (HTTP/2 without TLS) or h2:// (HTTP/2 over TLS), scheme://host:port
	// only. Several form a pool.
	Targets []string `yaml:"targets"`
	// Balance picks a target per request: round_robin or least_conn.
	Balance string `yaml:"balance"`
	// HealthCheck probes every target in the background and takes failing
	// ones out of rotation.
	HealthCheck HealthCheck `yaml:"health_check"`
	// Passive ejects a target that fails live requests, and opens its circuit
	// breaker so a restarting origin is not hammered.
	Passive Passive `yaml:"passive"`
	// DialTimeout bounds connecting to a target.
	DialTimeout Duration `yaml:"dial_timeout"`
	// ResponseHeaderTimeout bounds waiting for a target's response headers;
	// past it the visitor gets 504 (or a stale copy from the cache).
	ResponseHeaderTimeout Duration `yaml:"response_header_timeout"`
	// IdleConnTimeout closes idle keep-alive connections to targets.
	IdleConnTimeout Duration `yaml:"idle_conn_timeout"`
	// MaxIdleConnsPerTarget is the keep-alive pool size per target.
	MaxIdleConnsPerTarget int `yaml:"max_idle_conns_per_target"`
}

// HealthCheck is the active health check of every target.
type HealthCheck struct {
	// Disabled turns active health checks off.
	Disabled bool `yaml:"disabled"`
	// Path is requested with GET; a 2xx or 3xx answer is healthy.
	Path string `yaml:"path"`
	// Interval between probes.
	Interval Duration `yaml:"interval"`
	// Timeout of one probe.
	Timeout Duration `yaml:"timeout"`
	// HealthyThreshold is how many passing probes in a row bring a target
	// back.
	HealthyThreshold int `yaml:"healthy_threshold"`
	// UnhealthyThreshold is how many failing probes in a row take it out.
	UnhealthyThreshold int `yaml:"unhealthy_threshold"`
}

// Passive is ejection on live failures.
type Passive struct {
	// MaxFails is how many failed requests (connection errors, timeouts,
	// 502/503/504) within Window eject a target.
	MaxFails int `yaml:"max_fails"`
	// Window is the period MaxFails is counted over.
	Window Duration `yaml:"window"`
	// EjectFor is how long a first ejection lasts; each further ejection
	// doubles it up to MaxEjectFor.
	EjectFor Duration `yaml:"eject_for"`
	// MaxEjectFor caps the doubling.
	MaxEjectFor Duration `yaml:"max_eject_for"`
}

// Admin is the operators' listener.
type Admin struct {
	// Listen is host:port for the admin API, /metrics and /healthz. Empty
	// disables it. Beyond loopback a bearer token is required.
	Listen string `yaml:"listen"`
	// Token is the bearer token for the admin API. When empty and Listen is
	// not a loopback address, one is generated and written to
	// STATE_DIR/admin.token with 0600 permissions.
	Token string `yaml:"token"`
	// TokenFile reads the token from a file instead.
	TokenFile string `yaml:"token_file"`
}

// TLS is certificate configuration for listeners with tls: true.
type TLS struct {
	// CertFile and KeyFile are a PEM certificate chain and key, reloaded on
	// SIGHUP; a bad pair is reported and the old one stays.
	CertFile string `yaml:"cert_file"`
	// KeyFile is the PEM private key for CertFile.
	KeyFile string `yaml:"key_file"`
	// ACMEDomains turns on automatic certificates (from ACMEDirectory, Let's
	// Encrypt by default; HTTP-01 on a plain listener on port 80, or
	// TLS-ALPN-01) for these names.
	ACMEDomains []string `yaml:"acme_domains"`
	// ACMEEmail is the contact address given to the ACME CA.
	ACMEEmail string `yaml:"acme_email"`
	// ACMEDirectory is the URL of the ACME CA's directory (https only).
	// Try a new site on Let's Encrypt's staging directory first,
	// https://acme-staging-v02.api.letsencrypt.org/directory: its
	// certificates are not trusted by browsers, but its rate limits are
	// generous. The account key and certificates of each directory other
	// than the default are kept apart (in STATE_DIR/acme/HOST+HASH), so
	// that after a switch to production no cached staging certificate is
	// served. The ACME keys take effect on restart (SIGHUP reloads only
	// the certificate files).
	ACMEDirectory string `yaml:"acme_directory"`
	// ACMECAFile is a PEM file of root certificates trusted, besides the
	// system's, for the HTTPS of ACMEDirectory: for a private or test CA
	// (such as Pebble). Empty: the system's roots only.
	ACMECAFile string `yaml:"acme_ca_file"`
	// MinVersion is the lowest TLS version accepted: "1.2" or "1.3".
	MinVersion string `yaml:"min_version"`
}

// Client is how the client address is found.
type Client struct {
	// TrustedProxies are the networks of proxies and load balancers in front
	// of rampart. Only from these peers is X-Forwarded-For read (the
	// right-most address that is not itself trusted is the client) and the
	// PROXY protocol accepted. Empty: client headers are never trusted.
	TrustedProxies []CIDR `yaml:"trusted_proxies"`
	// PrefixV4 is the IPv4 prefix length that groups addresses into one
	// network for per-prefix limits and clearance binding.
	PrefixV4 int `yaml:"prefix_v4"`
	// PrefixV6 is the same for IPv6 (a /64 is usually one household or
	// VM). Repeat-offender strikes and the blocks they earn also count
	// IPv6 clients by this network, since one host can draw a new address
	// from its /64 for every connection.
	PrefixV6 int `yaml:"prefix_v6"`
}

// Hardening holds connection and protocol limits, on by default.
type Hardening struct {
	// ReadHeaderTimeout closes a connection that has not sent a complete
	// request header in this time. Stops slowloris.
	ReadHeaderTimeout Duration `yaml:"read_header_timeout"`
	// IdleTimeout closes keep-alive connections idle this long. Stops
	// connection hoarding.
	IdleTimeout Duration `yaml:"idle_timeout"`
	// WriteTimeout is a progress deadline on responses: each write must
	// complete within it. Stops slow-read attacks while real slow readers
	// and event streams keep working.
	WriteTimeout Duration `yaml:"write_timeout"`
	// TLSHandshakeTimeout bounds the TLS handshake. Stops half-open TLS.
	TLSHandshakeTimeout Duration `yaml:"tls_handshake_timeout"`
	// MinBodyRate is the slowest request body accepted, in bytes per second,
	// after BodyRateGrace; slower bodies are cut with 408. Stops slow POST
	// (R.U.D.Y.).
	MinBodyRate ByteSize `yaml:"min_body_rate"`
	// BodyRateGrace is how long a body may be slow before MinBodyRate
	// applies.
	BodyRateGrace Duration `yaml:"body_rate_grace"`
	// MaxHeaderBytes caps the request line and headers (431 beyond).
	MaxHeaderBytes ByteSize `yaml:"max_header_bytes"`
	// MaxHeaderCount caps the number of request header fields (431 beyond).
	MaxHeaderCount int `yaml:"max_header_count"`
	// MaxBodyBytes caps a request body (413 beyond); rules can lower it per
	// route with max_body.
	MaxBodyBytes ByteSize `yaml:"max_body_bytes"`
	// BufferBody is the largest request body read completely before the
	// request goes to the origin, so that a slow client (slow POST) never
	// holds an origin worker: the origin sees only whole bodies. Larger
	// bodies stream (and MinBodyRate still cuts slow ones).
	BufferBody ByteSize `yaml:"buffer_body"`
	// BufferTotal caps the bytes of request bodies buffered at once; past
	// it, bodies stream instead of being buffered.
	BufferTotal ByteSize `yaml:"buffer_total"`
	// MaxRanges caps the ranges in one Range header; more, or overlapping
	// ranges, are refused with 400. Stops Range amplification.
	MaxRanges int `yaml:"max_ranges"`
	// MaxConns caps open client connections in all; new connections beyond
	// it are closed at accept, before TLS.
	MaxConns int `yaml:"max_conns"`
	// MaxConnsPerIP caps open connections from one client address; beyond it
	// new connections are closed at accept. Generous, because offices and
	// carrier-grade NAT put many people behind one address.
	MaxConnsPerIP int `yaml:"max_conns_per_ip"`
	// ProxyHeaderTimeout bounds reading a PROXY protocol header.
	ProxyHeaderTimeout Duration `yaml:"proxy_header_timeout"`
	// H2 holds HTTP/2 limits.
	H2 H2 `yaml:"h2"`
}

// H2 holds HTTP/2 limits.
type H2 struct {
	// MaxConcurrentStreams is advertised to clients.
	MaxConcurrentStreams int `yaml:"max_concurrent_streams"`
	// MaxHeaderListSize caps a decoded header block.
	MaxHeaderListSize ByteSize `yaml:"max_header_list_size"`
	// GlitchBudget is how many protocol glitches (CONTINUATION floods, empty
	// DATA frames, zero WINDOW_UPDATEs, PING/SETTINGS/PRIORITY floods,
	// frames that make the server reset a stream: MadeYouReset) a
	// connection may cause; when spent it gets GOAWAY and is closed.
	GlitchBudget int `yaml:"glitch_budget"`
	// ResetBudget is how many streams a client may reset (RST_STREAM)
	// before the connection is closed. Stops Rapid Reset (CVE-2023-44487).
	ResetBudget int `yaml:"reset_budget"`
	// BudgetRefill is how many units of each budget come back per second, so
	// a long-lived browser connection that cancels a few streams now and
	// then never runs out.
	BudgetRefill float64 `yaml:"budget_refill"`
}

// Limits sizes the rate-limit state.
type Limits struct {
	// TableCapacity is how many keys the rate-limit table holds (about 16
	// bytes each). When full it drops expired keys first, then the keys
	// nearest to expiry, and says so in its metrics, status and log.
	TableCapacity int `yaml:"table_capacity"`
	// BlocksCapacity is how many addresses and networks the dynamic block
	// list holds; when full the block nearest to expiry is dropped.
	BlocksCapacity int `yaml:"blocks_capacity"`
	// Escalation blocks repeat offenders for a TTL that doubles.
	Escalation Escalation `yaml:"escalation"`
	// TarpitDelay is how long a tarpitted request is held before its 429.
	TarpitDelay Duration `yaml:"tarpit_delay"`
	// TarpitMax caps requests held in the tarpit at once; beyond it they are
	// answered 429 at once.
	TarpitMax int `yaml:"tarpit_max"`
	// ClearanceRate is the request budget of one clearance token: a
	// clearance is not a licence to flood.
	ClearanceRate Rate `yaml:"clearance_rate"`
	// ClearanceBurst is the burst of a clearance token's budget.
	ClearanceBurst int `yaml:"clearance_burst"`
}

// Escalation blocks keys that keep breaking limits.
type Escalation struct {
	// Disabled turns escalation off.
	Disabled bool `yaml:"disabled"`
	// Strikes is how many refused requests within Window make an offence.
	Strikes int `yaml:"strikes"`
	// Window is the period Strikes are counted over.
	Window Duration `yaml:"window"`
	// BaseTTL is the block for a first offence; it doubles with each
	// further offence up to MaxTTL.
	BaseTTL Duration `yaml:"base_ttl"`
	// MaxTTL caps the doubling.
	MaxTTL Duration `yaml:"max_ttl"`
	// Forget resets an address's offence count after this long without one.
	Forget Duration `yaml:"forget"`
}

// Lists are allow and deny CIDR lists.
type Lists struct {
	// Allow lists networks that skip every rule and challenge (monitoring,
	// the newsroom's own office).
	Allow []CIDR `yaml:"allow"`
	// AllowFiles are files of one CIDR per line ('#' comments allowed),
	// reloaded on SIGHUP and when they change.
	AllowFiles []string `yaml:"allow_files"`
	// Deny lists networks whose connections are closed at accept, before TLS.
	Deny []CIDR `yaml:"deny"`
	// DenyFiles are files of networks to deny, reloaded like AllowFiles.
	DenyFiles []string `yaml:"deny_files"`
	// WatchInterval is how often list files are checked for changes.
	WatchInterval Duration `yaml:"watch_interval"`
	// SYNFilter drops connection attempts from denied and blocked networks
	// in the kernel, before the handshake (Linux: a classic BPF filter on
	// each listening socket, rebuilt within a second of a change): the
	// cheapest refusal there is, costing rampart no system call. The
	// client's SYN goes unanswered, so its connect times out instead of
	// being reset. It holds up to about 1,000 IPv4 or 300 IPv6 networks
	// (deny lists first, then the newest blocks); the rest, and networks
	// that overlap the allow lists or client.trusted_proxies, are closed
	// at accept as before. Elsewhere than Linux, or when the kernel
	// refuses the filter, everything is closed at accept (logged).
	SYNFilter bool `yaml:"syn_filter"`
}

// Rule is one entry of the rule list: a match, an optional limit, and an
// action. Rules run in order; the first one whose action fires decides.
// A rule without a limit fires whenever it matches; a rule with a limit fires
// only when its key goes over the limit, and otherwise lets evaluation go on.
type Rule struct {
	// Name identifies the rule in metrics, logs and the Rampart-Mitigated
	// header. Required and unique.
	Name string `yaml:"name"`
	// Match selects requests; an empty match selects every request.
	Match Match `yaml:"match"`
	// Limit, when set, makes the rule fire only above a rate.
	Limit *Limit `yaml:"limit"`
	// Action is allow, limit, tarpit, drop, block, challenge or check.
	// allow stops evaluation and lets the request through; challenge asks
	// for proof of work (the interstitial page) unless the client holds a
	// clearance; check asks only that the client keeps cookies (a redirect
	// back to the same URL that sets a token), which every browser passes,
	// with JavaScript or without, and flood tools without a cookie jar do
	// not.
	Action string `yaml:"action"`
	// BlockTTL is how long block puts the client address in the deny set.
	BlockTTL Duration `yaml:"block_ttl"`
	// DryRun counts and logs what the rule would have done, and does
	// nothing: try a rule on live traffic first.
	DryRun bool `yaml:"dry_run"`
	// MaxBody lowers hardening.max_body_bytes for requests this rule
	// matches (an upload route, a search form).
	MaxBody ByteSize `yaml:"max_body"`
}

// Match selects requests. Every condition given must hold.
type Match struct {
	// Hosts are Host header patterns (glob, or /regexp/).
	Hosts []Pattern `yaml:"hosts"`
	// Paths are path patterns: globs ("/search*", "*.css", "/news/*/print")
	// or /regexp/.
	Paths []Pattern `yaml:"paths"`
	// Methods are HTTP methods, upper case.
	Methods []string `yaml:"methods"`
	// Headers are conditions on request headers.
	Headers []FieldMatch `yaml:"headers"`
	// Cookies are conditions on request cookies.
	Cookies []FieldMatch `yaml:"cookies"`
	// Clients are client networks.
	Clients []CIDR `yaml:"clients"`
	// Query holds conditions on the query string's shape.
	Query *QueryMatch `yaml:"query"`
	// Static selects requests for static assets (true) or not (false), by
	// path extension.
	Static *bool `yaml:"static"`
	// Cleared selects requests with (true) or without (false) a valid
	// clearance.
	Cleared *bool `yaml:"cleared"`
	// Modes selects requests only while the shield is in one of these modes.
	Modes []string `yaml:"modes"`
	// Navigation selects page navigations (true: GET or HEAD with
	// Sec-Fetch-Mode: navigate, or asking for text/html without that
	// header) or everything else (false): assets, API calls, form posts.
	Navigation *bool `yaml:"navigation"`
	// Miss, when true, makes the rule look only at requests that would go
	// to the origin: cache misses, and everything the cache does not take
	// (other methods, logged-in visitors, uncacheable pages). Such a rule
	// is checked when the cache has no copy, after the request rules, so
	// a request answered from the cache never fires it. A rule with a
	// limit and miss: true counts misses (limit.count must be misses or
	// left out).
	Miss bool `yaml:"miss"`
}

// FieldMatch is a condition on a header or cookie.
type FieldMatch struct {
	// Name of the header or cookie.
	Name string `yaml:"name"`
	// Present: true requires the field, false requires its absence.
	Present *bool `yaml:"present"`
	// Value is a pattern the value must match (glob or /regexp/).
	Value *Pattern `yaml:"value"`
}

// QueryMatch is a condition on the query string's shape, the tell-tale of
// cache-busting floods.
type QueryMatch struct {
	// MinParams matches queries with at least this many parameters.
	MinParams int `yaml:"min_params"`
	// MinLength matches query strings at least this long.
	MinLength int `yaml:"min_length"`
	// Has matches queries that carry any of these parameter names.
	Has []string `yaml:"has"`
	// Unknown matches queries with a parameter the cache has not seen the
	// path use in normal traffic (or not configured for it).
	Unknown bool `yaml:"unknown"`
}

// Limit is a rate over a key.
type Limit struct {
	// Rate is the sustained rate: "10/s", "600/m", "2/10s".
	Rate Rate `yaml:"rate"`
	// Burst is how many may come at once above the rate.
	Burst int `yaml:"burst"`
	// By lists the parts of the key: ip, prefix, host, path, method,
	// header:NAME, cookie:NAME, clearance, ja4, h2 (fingerprints: later).
	By []string `yaml:"by"`
	// Count is what is counted: requests (default), responses (answers whose
	// status is in Statuses, counted after they are sent, and enforced on
	// the next request), or misses (requests the cache could not answer).
	Count string `yaml:"count"`
	// Statuses are the statuses counted with count: responses, as exact
	// codes ("404") or classes ("4xx").
	Statuses []string `yaml:"statuses"`
	// CostHeader names a response header in which the origin reports what a
	// request cost (a search that cost 200 units counts 200). With count:
	// responses only; the header is removed before the answer leaves.
	CostHeader string `yaml:"cost_header"`
}

// Challenge configures the proof-of-work challenge.
type Challenge struct {
	// Difficulty is the number of leading zero bits of SHA-256 asked for in
	// each mode: normal, elevated, under_attack. Each bit doubles the work.
	// Measured in headless Chromium on a 2-core machine (docs/benchmarks.md),
	// the median solve is about 0.2 s at 18 bits and 0.65 s at 21 (0.35 and
	// 0.8 s to the page, loading included). Normal and elevated modes ask
	// 18 by default: they challenge only readers who
	// trip a rule or need the origin (a page the cache does not hold), and
	// there the challenge's job is to show a browser runs, not to make it
	// pay; under_attack asks 21. Higher values cost real
	// visitors on slow phones more than they cost a botnet; the
	// per-clearance rate limit is what stops a botnet that solves.
	Difficulty ModeInts `yaml:"difficulty"`
	// ClearanceTTL is how long a clearance lasts in each mode.
	ClearanceTTL ModeDurations `yaml:"clearance_ttl"`
	// KeyRotation is how often signing keys rotate; clearances signed with
	// the previous key stay valid until they expire.
	KeyRotation Duration `yaml:"key_rotation"`
	// NoJS is what a visitor without JavaScript gets: deny, or pass (a
	// rate-limited clearance without proof of work).
	NoJS string `yaml:"nojs"`
	// NoJSRate is the per-prefix rate of no-JS passes.
	NoJSRate Rate `yaml:"nojs_rate"`
	// BypassPaths are never challenged: feeds, sitemaps, well-known files
	// (RSS readers and crawlers must never get a challenge). An API used
	// by clients that are not browsers belongs here too, with a rule of
	// its own that limits it (per key or per client): floods aim at login,
	// registration and search APIs, so none is exempt by default.
	BypassPaths []Pattern `yaml:"bypass_paths"`
	// GoodBots are networks of crawlers and monitors that skip challenges.
	GoodBots []CIDR `yaml:"good_bots"`
	// GoodBotFiles are files of such networks (search engines publish them).
	GoodBotFiles []string `yaml:"good_bot_files"`
	// VerifyCrawlers checks crawlers claiming to be a known search engine by
	// forward-confirmed reverse DNS, and lets confirmed ones skip challenges.
	VerifyCrawlers bool `yaml:"verify_crawlers"`
	// TemplateDir holds operator templates and translations that override
	// the embedded page.
	TemplateDir string `yaml:"template_dir"`
}

// ModeInts is a value per mode.
type ModeInts struct {
	Normal      int `yaml:"normal"`
	Elevated    int `yaml:"elevated"`
	UnderAttack int `yaml:"under_attack"`
}

// ModeDurations is a duration per mode.
type ModeDurations struct {
	Normal      Duration `yaml:"normal"`
	Elevated    Duration `yaml:"elevated"`
	UnderAttack Duration `yaml:"under_attack"`
}

// Cache configures the response cache.
type Cache struct {
	// Disabled turns the cache off.
	Disabled bool `yaml:"disabled"`
	// MaxSize bounds the cache's memory: stored responses (bodies, headers
	// and keys at their allocated sizes), responses being fetched
	// (inflight_size) and the learned-parameters table. The process can grow
	// past it by the Go runtime's garbage-collection headroom; rampart sets a
	// soft memory limit (GOMEMLIMIT, unless set) of 1.5 x max_size + 384 MiB
	// to keep that headroom small.
	MaxSize ByteSize `yaml:"max_size"`
	// MaxEntrySize is the largest response cached; larger ones stream
	// through.
	MaxEntrySize ByteSize `yaml:"max_entry_size"`
	// MicroTTL caches pages the origin did not mark cacheable, for
	// anonymous visitors, for this long, in MicroCacheMode and above. A
	// flood of one page then costs the origin one request per MicroTTL.
	MicroTTL Duration `yaml:"micro_ttl"`
	// MicroCacheMode is the lowest mode in which micro-caching is on:
	// normal, elevated or under_attack.
	MicroCacheMode string `yaml:"micro_cache_mode"`
	// StaleIfError is how old a copy may be and still be served when the
	// origin fails, times out or is down ("always online").
	StaleIfError Duration `yaml:"stale_if_error"`
	// CoalesceWait is how long concurrent requests for the same missing page
	// wait for the one request sent to the origin.
	CoalesceWait Duration `yaml:"coalesce_wait"`
	// SessionCookies name cookies that mark a logged-in visitor: such
	// requests are never answered from the cache. A trailing * matches a
	// prefix, a leading * a suffix.
	SessionCookies []string `yaml:"session_cookies"`
	// KnownParams lists, per path (exact, or a prefix ending in *; the
	// longest wins), the query parameters that change the page. From
	// normalise_mode up, cache keys keep only these and the learned ones, so
	// random query strings all hit one entry. Listed names are always kept: a
	// search's q here can never be mistaken for a cache-buster, even right
	// after a restart or when an attack starts at once. The defaults cover
	// common CMSs (WordPress, Drupal, Joomla, MediaWiki, TYPO3, Plone) and
	// site search; a map in the file replaces them (copy what you need).
	KnownParams map[string][]string `yaml:"known_params"`
	// IgnoreParams are query parameters that never change a page (click ids,
	// campaign tags, jQuery's _ timestamp). From normalise_mode up they are
	// dropped from cache keys, and they are never learned. A trailing *
	// matches a prefix, a leading * a suffix. Stops floods that bust the
	// cache with ?fbclid=<random> or ?_=<random>.
	IgnoreParams []string `yaml:"ignore_params"`
	// LearnParams learns, in normal mode, which query parameters change each
	// path's pages (paths grouped with numeric and id-like segments
	// replaced). A name seen on a group for at least learn_after is kept in
	// keys under attack, unless the origin's own answers proved it a
	// cache-buster (different values, all else equal, gave identical pages).
	LearnParams bool `yaml:"learn_params"`
	// LearnAfter is how long a parameter must have been seen in normal
	// traffic before it is kept: the first seconds of an attack, before the
	// mode rises, cannot teach the cache the attack's cache-busting names.
	LearnAfter Duration `yaml:"learn_after"`
	// LearnCapacity bounds the path groups learned (16 names each, 3.5 KiB
	// per group reserved out of max_size); when full, groups that learned
	// nothing go first.
	LearnCapacity int `yaml:"learn_capacity"`
	// InflightSize bounds the memory of responses being fetched and
	// buffered for storing; a response that would exceed it streams through
	// unstored. 0: max_size/16 (at least max_entry_size). Stops a flood of
	// large or slow downloads from growing memory past max_size.
	InflightSize ByteSize `yaml:"inflight_size"`
	// NormaliseMode is the lowest mode in which keys drop parameters that
	// are neither known nor learned. When a key dropped a parameter that
	// may still matter, a copy the origin did not mark cacheable is served
	// only while fresh (at most micro_ttl old), never stale.
	NormaliseMode string `yaml:"normalise_mode"`
}

// Admission configures the adaptive concurrency limit in front of the
// origin and the queue of requests waiting for it: by priority class
// (clearance holders first, suspicious requests last), and within a class
// fair between clients (each address, each IPv6 /64, is served in turn,
// one request each), so a reader is never queued behind a flooder's
// backlog.
type Admission struct {
	// Disabled turns admission control off.
	Disabled bool `yaml:"disabled"`
	// InitialLimit is the concurrency limit at start.
	InitialLimit int `yaml:"initial_limit"`
	// MinLimit and MaxLimit bound the adaptive limit.
	MinLimit int `yaml:"min_limit"`
	// MaxLimit is the upper bound of the adaptive limit.
	MaxLimit int `yaml:"max_limit"`
	// QueueSize caps requests waiting for the origin; when full, the
	// newest request of the client with the most waiting in the lowest
	// class is shed (a newcomer of that class is refused only when its
	// client already has the most waiting).
	QueueSize int `yaml:"queue_size"`
	// MaxWait is the longest a request of each class waits in the queue:
	// priority (clearance holders, allow-listed), normal, suspicious.
	MaxWait ClassDurations `yaml:"max_wait"`
	// OverloadPage is an HTML file served with the 503 when a request
	// cannot be admitted and no stale copy exists.
	OverloadPage string `yaml:"overload_page"`
}

// ClassDurations is a duration per priority class.
type ClassDurations struct {
	Priority   Duration `yaml:"priority"`
	Normal     Duration `yaml:"normal"`
	Suspicious Duration `yaml:"suspicious"`
}

// Log configures logging.
type Log struct {
	// Level is debug, info, warn or error.
	Level string `yaml:"level"`
	// Access turns on the access log (JSON lines on stderr).
	Access bool `yaml:"access"`
	// AccessSample logs this fraction of requests (0 to 1).
	AccessSample float64 `yaml:"access_sample"`
	// AccessMaxPerSecond caps access log lines per second, so a flood cannot
	// make the log the bottleneck.
	AccessMaxPerSecond int `yaml:"access_max_per_second"`
}
