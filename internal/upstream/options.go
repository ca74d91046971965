package upstream

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Balancing policies accepted by [Options.Balance].
const (
	// BalanceRoundRobin hands requests to the available origins in turn,
	// in proportion to their weights (smooth weighted round-robin, the
	// schedule computed once by New and walked with one atomic counter).
	BalanceRoundRobin = "round_robin"
	// BalanceLeastConn hands each request to the available origin with the
	// fewest requests in flight relative to its weight; ties are broken by
	// a rotating start so that idle origins share the load.
	BalanceLeastConn = "least_conn"
)

// Defaults applied by New to zero fields of [Options]. They are exported so
// that the configuration reference and the tests name one source of truth.
const (
	// DefaultDialTimeout bounds a TCP connect plus TLS handshake.
	DefaultDialTimeout = 5 * time.Second
	// DefaultResponseHeaderTimeout bounds the wait for response headers.
	DefaultResponseHeaderTimeout = 30 * time.Second
	// DefaultIdleConnTimeout closes keep-alive connections idle that long.
	DefaultIdleConnTimeout = 90 * time.Second
	// DefaultMaxIdleConnsPerHost is the keep-alive pool per origin.
	DefaultMaxIdleConnsPerHost = 256
	// DefaultRetries is how many other origins a failed connect tries.
	DefaultRetries = 2
	// DefaultVia is the pseudonym in the Via header.
	DefaultVia = "rampart"
	// DefaultHealthPath is the path active checks fetch.
	DefaultHealthPath = "/"
	// DefaultHealthInterval is the time between two checks of an origin.
	DefaultHealthInterval = 5 * time.Second
	// DefaultHealthTimeout bounds one check.
	DefaultHealthTimeout = 2 * time.Second
	// DefaultHealthyThreshold is the passing checks that mark an origin up.
	DefaultHealthyThreshold = 2
	// DefaultUnhealthyThreshold is the failing checks that mark it down.
	DefaultUnhealthyThreshold = 3
	// DefaultPassiveMaxFails is the failures within the window that eject.
	DefaultPassiveMaxFails = 5
	// DefaultPassiveWindow is the window failures are counted in.
	DefaultPassiveWindow = 10 * time.Second
	// DefaultPassiveEjectFor is the first ejection's length.
	DefaultPassiveEjectFor = 30 * time.Second
	// DefaultPassiveMaxEjectFor caps the doubling of repeated ejections.
	DefaultPassiveMaxEjectFor = 5 * time.Minute
	// DefaultPassiveProbeInterval spaces probes when every origin is down.
	DefaultPassiveProbeInterval = time.Second
)

// Internal limits and fixed settings.
const (
	defaultTCPKeepAlive          = 30 * time.Second
	defaultExpectContinueTimeout = time.Second
	minHealthInterval            = time.Millisecond
	maxTargets                   = 1024
	maxWeight                    = 100
	maxRetries                   = 8
	maxFailsLimit                = 1000
	maxHealthThreshold           = 100
	maxMaxIdleConnsPerHost       = 1 << 16
)

// Target is one origin server.
type Target struct {
	// URL is the origin's address: scheme and host[:port] only.
	// Schemes: "http" (HTTP/1.1), "https" (HTTP/1.1 over TLS), "h2c"
	// (HTTP/2 without TLS, prior knowledge) and "h2" (HTTP/2 over TLS).
	// WebSocket upgrades need "http" or "https". A path, query, fragment
	// or user info is rejected: the request path is sent unchanged.
	URL *url.URL
	// Weight is the origin's share of requests relative to the others,
	// 1 to 100. Zero means 1.
	Weight int
}

// HealthCheckOptions configures active health checks: every Interval, each
// origin is sent "GET Path" and must answer 2xx or 3xx within Timeout.
// HealthyThreshold consecutive successes mark a down origin up;
// UnhealthyThreshold consecutive failures mark an up origin down. Origins
// start up. A check that passes while the origin's breaker is open makes
// the breaker half-open at once, so the next request probes it.
type HealthCheckOptions struct {
	// Disabled turns active checks off; origins are then judged by
	// passive ejection alone.
	Disabled bool
	// Path is the request target checked. Default "/".
	Path string
	// Host is the Host header of checks. Default: Options.Host if set,
	// else the origin's host.
	Host string
	// Interval between checks of one origin. Default 5s, at least 1ms.
	Interval time.Duration
	// Timeout of one check. Default 2s. Checks of one origin never
	// overlap: a Timeout longer than Interval skips the ticks it covers.
	Timeout time.Duration
	// HealthyThreshold is the number of consecutive passing checks that
	// mark a down origin up. Default 2.
	HealthyThreshold int
	// UnhealthyThreshold is the number of consecutive failing checks that
	// mark an up origin down. Default 3.
	UnhealthyThreshold int
}

// PassiveOptions configures passive ejection and the circuit breaker kept
// for every origin. A failure is a connection error (refused, reset, TLS),
// a timeout, a broken response body, or a 502, 503 or 504 answered by the
// origin; client cancellations and client body errors are never failures.
// MaxFails failures within Window open the breaker for EjectFor; each
// further ejection without a quiet MaxEjectFor in between doubles the
// time, up to MaxEjectFor. When the time is up the breaker is half-open: a
// single real request probes the origin; success closes the breaker,
// failure opens it again for the doubled time.
type PassiveOptions struct {
	// Disabled turns passive ejection and the breaker off.
	Disabled bool
	// MaxFails is the number of failures within Window that eject an
	// origin. Default 5, at most 1000.
	MaxFails int
	// Window is the span in which MaxFails failures eject. Default 10s.
	Window time.Duration
	// EjectFor is the first ejection's length. Default 30s.
	EjectFor time.Duration
	// MaxEjectFor caps the doubling of repeated ejections, and is the
	// quiet time after which the doubling starts over. Default 5m, or
	// EjectFor if that is longer.
	MaxEjectFor time.Duration
	// ProbeInterval is the least time between two probes of one origin
	// when no origin at all is available (the least-recently-failed one
	// is then probed with a real request, ignoring its ejection time).
	// Default 1s.
	ProbeInterval time.Duration
}

// Options configures a [Pool]. Zero fields take the documented defaults;
// New rejects values out of range. Options is read only by New.
type Options struct {
	// Targets are the origins, at least one, at most 1024, no duplicates.
	Targets []Target
	// Balance is BalanceRoundRobin ("round_robin", the default) or
	// BalanceLeastConn ("least_conn").
	Balance string
	// HealthCheck configures active health checks (see Start).
	HealthCheck HealthCheckOptions
	// Passive configures passive ejection and the circuit breakers.
	Passive PassiveOptions

	// DialTimeout bounds connecting to an origin, TLS handshake included.
	// Default 5s.
	DialTimeout time.Duration
	// ResponseHeaderTimeout bounds the wait for an origin's response
	// headers once the request is written. Default 30s.
	ResponseHeaderTimeout time.Duration
	// IdleConnTimeout closes keep-alive connections to an origin idle
	// that long. Default 90s.
	IdleConnTimeout time.Duration
	// MaxIdleConnsPerHost is the keep-alive pool kept per origin.
	// Default 256.
	MaxIdleConnsPerHost int
	// Retries is how many other origins a request is sent to when
	// connecting to the chosen one failed before any of its body was read
	// (nothing reached the origin, so any method is safe). Default 2;
	// negative disables.
	Retries int
	// Host, when set, replaces the Host header of every request sent to
	// the origins. Default: the client's Host is kept (virtual hosting).
	Host string
	// Via is the pseudonym this proxy adds to the Via request header,
	// as in "Via: 1.1 rampart". Default "rampart".
	Via string
	// DisableFastPath sends every request through net/http's Transport.
	// By default GET and HEAD requests without a body or Upgrade to
	// "http" and "https" origins take a direct HTTP/1.1 path on the
	// handler's goroutine (no goroutine hand-offs); this is the switch
	// to turn it off should an origin misbehave with it.
	DisableFastPath bool
	// TLSClientConfig is used for "https" and "h2" origins; it is cloned.
	// Default: system roots, server name from the URL.
	TLSClientConfig *tls.Config

	// Client, when set, tells the pool about the client of r; it is
	// called once per request and must be safe for concurrent use. When
	// nil, the pool looks for a ClientInfo attached with WithClient, and
	// failing that uses the TCP peer (r.RemoteAddr, r.TLS).
	Client func(r *http.Request) ClientInfo
	// ClassifyError, when set, is asked first about every error of a
	// request to an origin. When it returns ok, the request is answered
	// with status and the header "Rampart-Mitigated: reason", and the
	// error is not counted against the origin (use it for client-caused
	// errors such as a body that arrives too slowly: 408).
	ClassifyError func(err error) (status int, reason string, ok bool)
	// OnResponse, when set, is called once per request after the pool has
	// answered it, with the status sent (499 when the client went away
	// before an answer) and the time spent in ServeHTTP.
	OnResponse func(r *http.Request, status int, d time.Duration)
	// Now is the clock used for breakers, windows and latencies.
	// Default time.Now.
	Now func() time.Time
	// Logger receives state changes (ejections, recoveries, health) and
	// sampled errors (at most 10 a second). Default: discard.
	Logger *slog.Logger
}

// ErrInvalidOptions is wrapped by every validation error of New; test for
// it with errors.Is.
var ErrInvalidOptions = errors.New("upstream: invalid options")

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalidOptions, fmt.Sprintf(format, args...))
}

// parseTarget validates an origin URL and returns the scheme and host the
// transport dials. It is the one parser of the package and is fuzzed.
func parseTarget(u *url.URL) (kind, host string, err error) {
	if u == nil {
		return "", "", errors.New("URL is nil")
	}
	kind = strings.ToLower(u.Scheme)
	switch kind {
	case "http", "https", "h2c", "h2":
	default:
		return "", "", fmt.Errorf("URL %q: scheme must be http, https, h2c or h2", u.Redacted())
	}
	if u.Opaque != "" {
		return "", "", fmt.Errorf("URL %q: opaque URL", u.Redacted())
	}
	if u.User != nil {
		return "", "", fmt.Errorf("URL %q: user info is not supported", u.Redacted())
	}
	if u.Host == "" || u.Hostname() == "" {
		return "", "", fmt.Errorf("URL %q: host missing", u.Redacted())
	}
	if strings.ContainsAny(u.Host, " \t\r\n/\\?#@%") || (strings.Count(u.Host, ":") > 1 && u.Host[0] != '[') {
		return "", "", fmt.Errorf("URL %q: bad host (IPv6 addresses need brackets)", u.Redacted())
	}
	if _, err := url.Parse("http://" + u.Host + "/"); err != nil {
		return "", "", fmt.Errorf("URL %q: bad host: %w", u.Redacted(), err)
	}
	if p := u.Port(); p != "" {
		n := 0
		for _, c := range p {
			if c < '0' || c > '9' {
				return "", "", fmt.Errorf("URL %q: bad port", u.Redacted())
			}
			n = n*10 + int(c-'0')
			if n > 65535 {
				return "", "", fmt.Errorf("URL %q: bad port", u.Redacted())
			}
		}
		if n == 0 {
			return "", "", fmt.Errorf("URL %q: bad port", u.Redacted())
		}
	} else if strings.HasSuffix(u.Host, ":") {
		return "", "", fmt.Errorf("URL %q: empty port", u.Redacted())
	}
	if (u.Path != "" && u.Path != "/") || u.RawPath != "" {
		return "", "", fmt.Errorf("URL %q: a path is not supported (requests keep their own)", u.Redacted())
	}
	if u.RawQuery != "" || u.ForceQuery || u.Fragment != "" {
		return "", "", fmt.Errorf("URL %q: query or fragment is not supported", u.Redacted())
	}
	return kind, strings.ToLower(u.Host), nil
}

// withDefaults returns o with defaults applied, or a validation error.
func (o Options) withDefaults() (Options, error) {
	if len(o.Targets) == 0 {
		return o, invalid("no targets")
	}
	if len(o.Targets) > maxTargets {
		return o, invalid("%d targets, at most %d", len(o.Targets), maxTargets)
	}
	seen := make(map[string]bool, len(o.Targets))
	for i, t := range o.Targets {
		kind, host, err := parseTarget(t.URL)
		if err != nil {
			return o, invalid("target %d: %v", i, err)
		}
		key := kind + "://" + host
		if seen[key] {
			return o, invalid("target %d: duplicate %s", i, key)
		}
		seen[key] = true
		if t.Weight < 0 || t.Weight > maxWeight {
			return o, invalid("target %d: weight %d out of range 0..%d", i, t.Weight, maxWeight)
		}
	}
	switch o.Balance {
	case "":
		o.Balance = BalanceRoundRobin
	case BalanceRoundRobin, BalanceLeastConn:
	default:
		return o, invalid("balance %q: want %q or %q", o.Balance, BalanceRoundRobin, BalanceLeastConn)
	}
	var err error
	set := func(name string, d *time.Duration, def time.Duration) {
		if err != nil {
			return
		}
		switch {
		case *d < 0:
			err = invalid("%s %v is negative", name, *d)
		case *d == 0:
			*d = def
		}
	}
	set("dial_timeout", &o.DialTimeout, DefaultDialTimeout)
	set("response_header_timeout", &o.ResponseHeaderTimeout, DefaultResponseHeaderTimeout)
	set("idle_conn_timeout", &o.IdleConnTimeout, DefaultIdleConnTimeout)
	h := &o.HealthCheck
	set("health_check.interval", &h.Interval, DefaultHealthInterval)
	set("health_check.timeout", &h.Timeout, DefaultHealthTimeout)
	p := &o.Passive
	set("passive.window", &p.Window, DefaultPassiveWindow)
	set("passive.eject_for", &p.EjectFor, DefaultPassiveEjectFor)
	set("passive.max_eject_for", &p.MaxEjectFor, max(DefaultPassiveMaxEjectFor, p.EjectFor))
	set("passive.probe_interval", &p.ProbeInterval, DefaultPassiveProbeInterval)
	if err != nil {
		return o, err
	}
	switch {
	case o.MaxIdleConnsPerHost < 0 || o.MaxIdleConnsPerHost > maxMaxIdleConnsPerHost:
		return o, invalid("max_idle_conns_per_host %d out of range 0..%d", o.MaxIdleConnsPerHost, maxMaxIdleConnsPerHost)
	case o.MaxIdleConnsPerHost == 0:
		o.MaxIdleConnsPerHost = DefaultMaxIdleConnsPerHost
	}
	switch {
	case o.Retries == 0:
		o.Retries = DefaultRetries
	case o.Retries < 0:
		o.Retries = 0
	case o.Retries > maxRetries:
		return o, invalid("retries %d, at most %d", o.Retries, maxRetries)
	}
	if o.Via == "" {
		o.Via = DefaultVia
	}
	if !isToken(o.Via) {
		return o, invalid("via %q: must be an HTTP token", o.Via)
	}
	if strings.ContainsAny(o.Host, " \t\r\n/\\?#@") {
		return o, invalid("host %q: bad Host header value", o.Host)
	}
	if h.Path == "" {
		h.Path = DefaultHealthPath
	}
	if h.Path[0] != '/' || strings.ContainsAny(h.Path, " \t\r\n#") {
		return o, invalid("health_check.path %q: must start with / and hold no spaces", h.Path)
	}
	if strings.ContainsAny(h.Host, " \t\r\n/\\?#@") {
		return o, invalid("health_check.host %q: bad Host header value", h.Host)
	}
	if h.Interval < minHealthInterval {
		return o, invalid("health_check.interval %v: at least %v", h.Interval, minHealthInterval)
	}
	if err := threshold("health_check.healthy_threshold", &h.HealthyThreshold, DefaultHealthyThreshold); err != nil {
		return o, err
	}
	if err := threshold("health_check.unhealthy_threshold", &h.UnhealthyThreshold, DefaultUnhealthyThreshold); err != nil {
		return o, err
	}
	switch {
	case p.MaxFails < 0 || p.MaxFails > maxFailsLimit:
		return o, invalid("passive.max_fails %d out of range 0..%d", p.MaxFails, maxFailsLimit)
	case p.MaxFails == 0:
		p.MaxFails = DefaultPassiveMaxFails
	}
	if p.MaxEjectFor < p.EjectFor {
		return o, invalid("passive.max_eject_for %v shorter than eject_for %v", p.MaxEjectFor, p.EjectFor)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o, nil
}

func threshold(name string, v *int, def int) error {
	switch {
	case *v < 0 || *v > maxHealthThreshold:
		return invalid("%s %d out of range 0..%d", name, *v, maxHealthThreshold)
	case *v == 0:
		*v = def
	}
	return nil
}

// isToken reports whether s is a non-empty HTTP token (RFC 9110 §5.6.2).
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return true
}
