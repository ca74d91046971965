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
	// DefaultMaxBytes bounds the cache's memory: with the default reserves
	// (16 MiB in flight, 14 MiB for learning), the store's 226 MiB hold
	// some 45,000 pages of 4 KiB with their headers.
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
	// DefaultLearnCapacity bounds the path groups whose query parameters
	// are learned (fewer when MaxBytes is small: see Options.LearnCapacity).
	// A group costs at most LearnGroupBytes, so 4096 groups reserve 14 MiB.
	DefaultLearnCapacity = 4096
	// DefaultLearnAfter is how long a parameter name must have been seen on
	// a path group in normal traffic before keys keep it: the first minute
	// of an attack, before the mode rises, cannot teach the cache its
	// cache-busting names.
	DefaultLearnAfter = time.Minute
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

// DefaultIgnoreParams are the query parameter names that Options.IgnoreParams
// holds when it is nil: click identifiers and campaign tags that analytics
// scripts read in the browser and that never change the page the origin
// sends (Google, Facebook, Microsoft, Yandex, X, TikTok, LinkedIn,
// Instagram, Mailchimp, HubSpot, Marketo), and jQuery's "_", the
// timestamp of $.ajax({cache: false}). Their values are unique per click,
// so they would otherwise split a popular page into one entry per visitor.
var DefaultIgnoreParams = []string{
	"utm_*", "fbclid", "gclid", "gclsrc", "dclid", "gbraid", "wbraid", "msclkid", "yclid",
	"twclid", "ttclid", "li_fat_id", "igshid", "mc_cid", "mc_eid", "_ga", "_gl",
	"_hsenc", "_hsmi", "mkt_tok", "_",
}

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
	// MaxBytes bounds the cache's memory (default 256 MiB): the store
	// (bodies and headers at their allocated sizes, keys and a per-entry
	// overhead) gets MaxBytes minus InflightBytes minus, with LearnParams,
	// the worst case of the learning table (LearnCapacity x
	// LearnGroupBytes): 226 MiB of the default 256. Eviction is
	// W-TinyLFU (otter): a newcomer displaces an entry only if it is
	// requested more often, so a scan of one-off URLs cannot flush the
	// popular pages. The Go heap holds the cache's live bytes plus
	// garbage: with GOGC=100 and no memory limit the process can grow to
	// about twice MaxBytes before a collection (see GOMEMLIMIT).
	MaxBytes int64
	// InflightBytes bounds the memory of what is being fetched: response
	// bodies buffered for storing while they stream to the client, and the
	// in-flight table (default MaxBytes/16, at least MaxEntryBytes). A
	// response that would exceed it streams through without being stored
	// (its key is not marked hit-for-pass), and a miss that would exceed it
	// is not coalesced, so a flood of large or slow downloads cannot grow
	// the heap past MaxBytes.
	InflightBytes int64
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
	// above, keys keep only these and the learned parameters. A name listed
	// here is kept even if IgnoreParams or the learning say otherwise.
	KnownParams map[string][]string
	// IgnoreParams are query parameter names that never change a page:
	// from NormaliseIn up they are dropped from keys, they are never
	// learned, and they do not make a query unknown (UnknownParams).
	// "name*" matches a prefix, "*name" a suffix. Default
	// DefaultIgnoreParams; an empty non-nil slice means none. Below
	// NormaliseIn they stay in keys and reach the origin (server-side
	// analytics keep their campaign tags).
	IgnoreParams []string
	// LearnParams learns, below NormaliseIn, which query parameters change
	// the pages of each path group (paths whose numeric segments are
	// replaced by "#": /news/123 and /news/124 are one group). A name seen
	// on a group over at least LearnAfter is kept in keys from NormaliseIn
	// up, unless the origin's answers prove it a cache-buster: different
	// values of it, everything else equal (exact path, other parameters,
	// Vary variant), fetched within a minute of each other, gave
	// byte-identical 2xx bodies at least twice and more than four times as
	// often as they gave different bodies. Names seen for less than
	// LearnAfter (the first seconds of an attack) are dropped. Zero value:
	// off (the configuration's default turns it on).
	LearnParams bool
	// LearnCapacity bounds the learned path groups (default
	// DefaultLearnCapacity, lowered to what an eighth of MaxBytes holds at
	// LearnGroupBytes each); each group tracks at most 16 names. When full,
	// of 8 sampled groups the one with the fewest kept names, then the least
	// recently seen, is evicted, so a flood of new paths cannot flush the
	// groups that learned something. Its worst case, LearnCapacity x
	// LearnGroupBytes, is reserved out of MaxBytes.
	LearnCapacity int
	// LearnAfter is how long a name must have been seen on a group, in
	// traffic below NormaliseIn, before it is kept (default 1 min; negative:
	// at once).
	LearnAfter time.Duration
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
	// RefuseMiss, if set, answers a miss that AdmitMiss refused when no
	// stale copy covers it (the shield sends its challenge there); it
	// returns false to leave the cache's own 429 answer.
	RefuseMiss func(w http.ResponseWriter, r *http.Request) bool
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
	if o.InflightBytes == 0 && o.MaxBytes > 0 {
		o.InflightBytes = max(o.MaxBytes/16, o.MaxEntryBytes)
	}
	if o.LearnCapacity == 0 {
		o.LearnCapacity = int(min(DefaultLearnCapacity, max(16, o.MaxBytes/8/LearnGroupBytes)))
	}
	if o.LearnAfter == 0 {
		o.LearnAfter = DefaultLearnAfter
	} else if o.LearnAfter < 0 {
		o.LearnAfter = 0
	}
	if o.IgnoreParams == nil {
		o.IgnoreParams = DefaultIgnoreParams
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
	if o.InflightBytes < o.MaxEntryBytes || o.InflightBytes > o.MaxBytes/4 {
		bad("in-flight bytes %d: must be in [max entry bytes %d, max bytes/4]", o.InflightBytes, o.MaxEntryBytes)
	}
	if o.LearnParams && int64(o.LearnCapacity)*LearnGroupBytes > o.MaxBytes/4 {
		bad("learn capacity %d: %d groups of %d bytes exceed a quarter of max bytes %d", o.LearnCapacity, o.LearnCapacity, LearnGroupBytes, o.MaxBytes)
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
	for _, n := range o.IgnoreParams {
		if strings.Trim(n, "*") == "" || strings.Count(n, "*") > 1 || (strings.Contains(n, "*") && !strings.HasPrefix(n, "*") && !strings.HasSuffix(n, "*")) || strings.ContainsAny(n, "&=") {
			bad("ignore params %q: want a name, name* or *name", n)
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
