package cache

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/rampart-shield/rampart/internal/verdict"
)

// Defaults of Options. Each is used when the field is zero.
const (
	// DefaultMaxBytes bounds the bytes held (bodies, headers, keys and a
	// per-entry overhead): 256 MiB holds some 50,000 pages of 4 KiB.
	DefaultMaxBytes = 256 << 20
	// DefaultMaxEntryBytes is the largest response stored; larger ones
	// stream through uncached (and their key is marked hit-for-pass).
	DefaultMaxEntryBytes = 4 << 20
	// DefaultMicroTTL is the freshness given to anonymous pages the origin
	// did not mark cacheable while micro-caching is on: a flood of one page
	// then costs the origin one request per 2 s, and readers see news at
	// most 2 s late.
	DefaultMicroTTL = 2 * time.Second
	// DefaultStaleIfError is how stale a copy may be and still be served
	// when the origin fails ("always online"): an hour of a slightly old
	// front page beats an error page during an outage.
	DefaultStaleIfError = time.Hour
	// DefaultCoalesceWait is how long concurrent misses wait for the one
	// origin request made for them.
	DefaultCoalesceWait = 5 * time.Second
	// DefaultLearnCapacity bounds the paths whose query parameters are
	// learned.
	DefaultLearnCapacity = 4096
	// DefaultHitForPass is how long a key whose response could not be
	// stored (Set-Cookie, private, no-store, too large, a stream) sends its
	// requests straight to the origin without coalescing, so that they do
	// not queue behind one another.
	DefaultHitForPass = 5 * time.Second
	// DefaultNotFoundTTL caps the freshness of a 404.
	DefaultNotFoundTTL = 10 * time.Second
	// DefaultMaxFlights bounds the keys being fetched at once; past it,
	// misses go to the origin without coalescing.
	DefaultMaxFlights = 10000
	// DefaultMaxRefreshes bounds the background refreshes running at once
	// (stale-while-revalidate); past it, stale copies are served without
	// starting one.
	DefaultMaxRefreshes = 64
	// DefaultRefreshTimeout bounds one background refresh.
	DefaultRefreshTimeout = 30 * time.Second
	// DefaultMaxVariants bounds the Vary variants stored per URL, so that
	// random header values cannot fill the cache with variants of one page.
	DefaultMaxVariants = 32
)

// DefaultSessionCookies are the cookie names that mark a logged-in visitor
// when Options.SessionCookies is nil. A trailing "*" matches a prefix, a
// leading "*" a suffix; names are case-sensitive. They cover PHP, Java,
// ASP.NET, Django, Rails and Laravel ("*_session"), Express, WordPress,
// Drupal (SESS*, SSESS*) and common "auth" cookies.
var DefaultSessionCookies = []string{
	"session*", "sessionid", "PHPSESSID", "JSESSIONID", "ASP.NET_SessionId", "ASPSESSIONID*",
	"connect.sid", "_session*", "*_session", "laravel_session",
	"wordpress_logged_in_*", "wordpress_sec_*", "wp-settings-*", "wp-postpass_*", "comment_author_*",
	"SESS*", "SSESS*", "auth*", "_shibsession_*", "mod_auth_openidc_session*", "KEYCLOAK_SESSION*",
}

// Options configures a Cache. Every zero field takes the default named in
// its comment; New validates the rest.
type Options struct {
	// MaxBytes bounds the bytes held: bodies, headers, keys and a fixed
	// per-entry overhead (default 256 MiB). Eviction is W-TinyLFU (otter):
	// a newcomer displaces an entry only if it is requested more often, so
	// a scan of one-off URLs cannot flush the popular pages.
	MaxBytes int64
	// MaxEntryBytes is the largest response stored (default 4 MiB); larger
	// ones stream through uncached.
	MaxEntryBytes int64
	// MicroTTL is the freshness given to anonymous pages the origin did
	// not mark cacheable (no freshness, no-cache, max-age=0) while the mode
	// is MicroCacheIn or above (default 2 s). Responses with Set-Cookie,
	// private or no-store are never micro-cached.
	MicroTTL time.Duration
	// MicroCacheIn is the lowest mode in which micro-caching is on
	// (default verdict.ModeElevated; see ExplicitModes).
	MicroCacheIn verdict.Mode
	// StaleIfError is how stale (past its freshness) a copy may be and
	// still be served, with Rampart-Cache: STALE, when the origin answers
	// 5xx, times out, is refused by admission control or is down ("always
	// online"), and in under_attack mode instead of waiting for the origin
	// at all (default 1 h; negative: off, only the origin's
	// stale-if-error). The origin's own stale-if-error extends it. It also
	// overrides must-revalidate: an outage page is worse than an old copy.
	StaleIfError time.Duration
	// StaleWhileRevalidate is the window after freshness in which a copy is
	// served at once while one background request refreshes it, for
	// responses that do not carry their own stale-while-revalidate
	// (default 0: only the origin's). Never for no-cache or
	// must-revalidate responses.
	StaleWhileRevalidate time.Duration
	// CoalesceWait is how long concurrent misses for one key wait for the
	// leader's response (default 5 s). Past it they serve a stale copy if
	// there is one, else go to the origin on their own.
	CoalesceWait time.Duration
	// SessionCookies are cookie names that mark a logged-in visitor: such
	// requests, and those with Authorization, are never answered from the
	// cache nor stored (default DefaultSessionCookies; an empty non-nil
	// slice means none). "name*" matches a prefix, "*name" a suffix.
	SessionCookies []string
	// KnownParams maps a path to the query parameter names that change its
	// page. A path ending in "*" is a prefix (the longest one wins; an exact
	// path beats any prefix); a name "*" keeps every parameter. Names are
	// matched as they appear in the URL, not unescaped. In NormaliseIn and
	// above, keys keep only these and the learned parameters.
	KnownParams map[string][]string
	// LearnParams learns, below NormaliseIn, which parameters each path
	// uses: a name is learned once the same name=value has been seen twice
	// on the path in traffic the origin answered 2xx, so random
	// cache-busting values never teach the cache anything. Zero value: off
	// (the configuration's default turns it on).
	LearnParams bool
	// LearnCapacity bounds the learned paths (default 4096); each path keeps
	// at most 16 names. When full, the least recently seen of 8 sampled
	// paths is evicted.
	LearnCapacity int
	// NormaliseIn is the lowest mode in which keys keep only the known and
	// learned parameters (default verdict.ModeUnderAttack; see
	// ExplicitModes). Below it keys keep every parameter, sorted.
	NormaliseIn verdict.Mode
	// ExplicitModes takes MicroCacheIn and NormaliseIn as given, zero
	// (verdict.ModeNormal) included. Without it a zero means the default,
	// since verdict.ModeNormal is the zero Mode.
	ExplicitModes bool
	// Mode returns the shield's current mode; it is called once per request
	// and must be cheap (an atomic load). Default: always ModeNormal.
	Mode func() verdict.Mode
	// AdmitMiss, if set, is asked before a request that the cache cannot
	// answer goes to the origin (the policy's miss limit). false: the
	// request gets a stale copy if there is one, else 429 with
	// Rampart-Mitigated: miss-limit.
	AdmitMiss func(r *http.Request) bool
	// HitForPass is how long a key whose response could not be stored
	// sends requests straight to the origin without coalescing (default
	// 5 s).
	HitForPass time.Duration
	// NotFoundTTL caps the freshness of a 404 (default 10 s).
	NotFoundTTL time.Duration
	// MaxFlights bounds the keys being fetched at once (default 10,000).
	MaxFlights int
	// MaxRefreshes bounds the background refreshes at once (default 64).
	MaxRefreshes int
	// RefreshTimeout bounds one background refresh (default 30 s).
	RefreshTimeout time.Duration
	// MaxVariants bounds the Vary variants per URL (default 32).
	MaxVariants int
	// Now is the clock for freshness and ages (default time.Now).
	Now func() time.Time
	// Logger receives panics of background refreshes and other rare
	// events (default: discard). Nothing is logged per request.
	Logger *slog.Logger
}

func (o *Options) setDefaults() {
	if o.MaxBytes == 0 {
		o.MaxBytes = DefaultMaxBytes
	}
	if o.MaxEntryBytes == 0 {
		o.MaxEntryBytes = DefaultMaxEntryBytes
	}
	if o.MicroTTL == 0 {
		o.MicroTTL = DefaultMicroTTL
	}
	if !o.ExplicitModes {
		if o.MicroCacheIn == 0 {
			o.MicroCacheIn = verdict.ModeElevated
		}
		if o.NormaliseIn == 0 {
			o.NormaliseIn = verdict.ModeUnderAttack
		}
	}
	if o.StaleIfError == 0 {
		o.StaleIfError = DefaultStaleIfError
	}
	if o.CoalesceWait == 0 {
		o.CoalesceWait = DefaultCoalesceWait
	}
	if o.SessionCookies == nil {
		o.SessionCookies = DefaultSessionCookies
	}
	if o.LearnCapacity == 0 {
		o.LearnCapacity = DefaultLearnCapacity
	}
	if o.HitForPass == 0 {
		o.HitForPass = DefaultHitForPass
	}
	if o.NotFoundTTL == 0 {
		o.NotFoundTTL = DefaultNotFoundTTL
	}
	if o.MaxFlights == 0 {
		o.MaxFlights = DefaultMaxFlights
	}
	if o.MaxRefreshes == 0 {
		o.MaxRefreshes = DefaultMaxRefreshes
	}
	if o.RefreshTimeout == 0 {
		o.RefreshTimeout = DefaultRefreshTimeout
	}
	if o.MaxVariants == 0 {
		o.MaxVariants = DefaultMaxVariants
	}
	if o.Mode == nil {
		o.Mode = func() verdict.Mode { return verdict.ModeNormal }
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
}

func (o *Options) validate() error {
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	if o.MaxBytes < 1<<20 {
		bad("max bytes %d: must be at least 1 MiB", o.MaxBytes)
	}
	if o.MaxEntryBytes < 1 || o.MaxEntryBytes > o.MaxBytes/4 || o.MaxEntryBytes > 1<<30 {
		bad("max entry bytes %d: must be in [1, min(max bytes/4, 1 GiB)]", o.MaxEntryBytes)
	}
	if o.MicroTTL < 0 {
		bad("micro TTL %v: must not be negative", o.MicroTTL)
	}
	if o.StaleWhileRevalidate < 0 {
		bad("stale-while-revalidate %v: must not be negative", o.StaleWhileRevalidate)
	}
	if o.CoalesceWait < 0 {
		bad("coalesce wait %v: must not be negative", o.CoalesceWait)
	}
	if o.LearnCapacity < 0 {
		bad("learn capacity %d: must not be negative", o.LearnCapacity)
	}
	if o.HitForPass < 0 || o.NotFoundTTL < 0 || o.RefreshTimeout < 0 {
		bad("hit-for-pass %v, not-found TTL %v, refresh timeout %v: must not be negative", o.HitForPass, o.NotFoundTTL, o.RefreshTimeout)
	}
	if o.MaxFlights < 0 || o.MaxRefreshes < 0 || o.MaxVariants < 1 {
		bad("max flights %d, max refreshes %d, max variants %d: must be positive", o.MaxFlights, o.MaxRefreshes, o.MaxVariants)
	}
	for _, n := range o.SessionCookies {
		if strings.Trim(n, "*") == "" || strings.Count(n, "*") > 1 || (strings.Contains(n, "*") && !strings.HasPrefix(n, "*") && !strings.HasSuffix(n, "*")) {
			bad("session cookie %q: want a name, name* or *name", n)
		}
	}
	for p, names := range o.KnownParams {
		if !strings.HasPrefix(p, "/") {
			bad("known params path %q: must start with /", p)
		}
		if strings.Contains(strings.TrimSuffix(p, "*"), "*") {
			bad("known params path %q: only a trailing * is allowed", p)
		}
		for _, n := range names {
			if n == "" || strings.ContainsAny(n, "&=") {
				bad("known params %q: bad parameter name %q", p, n)
			}
		}
	}
	return errors.Join(errs...)
}
