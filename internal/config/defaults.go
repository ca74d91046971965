package config

import (
	"time"
)

// DefaultACMEDirectory is Let's Encrypt's production directory, the default
// tls.acme_directory (and autocert's).
const DefaultACMEDirectory = "https://acme-v02.api.letsencrypt.org/directory"

// Default returns the embedded defaults: what rampart runs with when no file
// is given, and the base a file is decoded over. Each value is chosen for a
// news or government site under a flood; docs/configuration.md gives the
// reasons.
func Default() *Config {
	return &Config{
		Listeners: []Listener{{Address: "127.0.0.1:8080"}},
		Upstream: Upstream{
			Balance: "round_robin",
			HealthCheck: HealthCheck{
				Path:               "/",
				Interval:           Duration(5 * time.Second),
				Timeout:            Duration(2 * time.Second),
				HealthyThreshold:   2,
				UnhealthyThreshold: 3,
			},
			Passive: Passive{
				MaxFails:    5,
				Window:      Duration(10 * time.Second),
				EjectFor:    Duration(10 * time.Second),
				MaxEjectFor: Duration(5 * time.Minute),
			},
			DialTimeout:           Duration(5 * time.Second),
			ResponseHeaderTimeout: Duration(30 * time.Second),
			IdleConnTimeout:       Duration(90 * time.Second),
			MaxIdleConnsPerTarget: 256,
		},
		Admin: Admin{Listen: "127.0.0.1:9901"},
		Mode:  "auto",
		Detect: Detect{
			SurgeFactor: 3, MinRate: 50, MinOriginRate: 25,
			ElevateAfter: 1, AttackAfter: 3,
			ExtremeFactor: 10, ExtremeMinRate: 500, ExtremeAfter: 10,
			StandDown: Duration(time.Minute),
		},
		TLS:          TLS{MinVersion: "1.2", ACMEDirectory: DefaultACMEDirectory},
		Client:       Client{PrefixV4: 24, PrefixV6: 64},
		DefaultRules: true,
		Hardening: Hardening{
			ReadHeaderTimeout:   Duration(10 * time.Second),
			IdleTimeout:         Duration(60 * time.Second),
			WriteTimeout:        Duration(30 * time.Second),
			TLSHandshakeTimeout: Duration(5 * time.Second),
			MinBodyRate:         1 << 10,
			BodyRateGrace:       Duration(5 * time.Second),
			MaxHeaderBytes:      16 << 10,
			MaxHeaderCount:      100,
			MaxBodyBytes:        10 << 20,
			BufferBody:          1 << 20,
			BufferTotal:         256 << 20,
			MaxRanges:           8,
			MaxConns:            50000,
			MaxConnsPerIP:       256,
			ProxyHeaderTimeout:  Duration(5 * time.Second),
			H2: H2{
				MaxConcurrentStreams: 100,
				MaxHeaderListSize:    16 << 10,
				GlitchBudget:         100,
				ResetBudget:          200,
				BudgetRefill:         5,
			},
		},
		Limits: Limits{
			TableCapacity:  1 << 20,
			BlocksCapacity: 1 << 20,
			Escalation: Escalation{
				Strikes: 10,
				Window:  Duration(10 * time.Second),
				BaseTTL: Duration(time.Minute),
				MaxTTL:  Duration(time.Hour),
				Forget:  Duration(time.Hour),
			},
			TarpitDelay:    Duration(5 * time.Second),
			TarpitMax:      1000,
			ClearanceRate:  20,
			ClearanceBurst: 200,
		},
		Lists: Lists{WatchInterval: Duration(5 * time.Second), SYNFilter: true},
		Challenge: Challenge{
			Difficulty:   ModeInts{Normal: 18, Elevated: 18, UnderAttack: 21},
			ClearanceTTL: ModeDurations{Normal: Duration(24 * time.Hour), Elevated: Duration(4 * time.Hour), UnderAttack: Duration(time.Hour)},
			KeyRotation:  Duration(24 * time.Hour),
			NoJS:         "deny",
			NoJSRate:     Rate(1.0 / 60),
			BypassPaths: mustPatterns(
				"/.well-known/*", "/robots.txt", "/favicon.ico", "/sitemap*.xml",
				"*.rss", "*.atom", "/feed", "/feed/*", "/rss", "/rss/*", "/rss.xml", "/atom.xml",
			),
		},
		Cache: Cache{
			MaxSize:        256 << 20,
			MaxEntrySize:   4 << 20,
			MicroTTL:       Duration(2 * time.Second),
			MicroCacheMode: "elevated",
			StaleIfError:   Duration(time.Hour),
			CoalesceWait:   Duration(5 * time.Second),
			SessionCookies: []string{
				"session*", "sessionid", "PHPSESSID", "JSESSIONID", "ASP.NET_SessionId", "ASPSESSIONID*",
				"connect.sid", "_session*", "*_session", "laravel_session",
				"wordpress_logged_in_*", "wordpress_sec_*", "wp-settings-*", "wp-postpass_*", "comment_author_*",
				"SESS*", "SSESS*", "auth*", "_shibsession_*", "mod_auth_openidc_session*", "KEYCLOAK_SESSION*",
			},
			KnownParams: map[string][]string{
				// WordPress and PHP front pages: posts, pages, categories,
				// tags, archives, authors, search, pagination, language;
				// TYPO3 ?id=&L=.
				"/": {"p", "page_id", "cat", "tag", "m", "author", "s", "paged", "page", "lang", "id", "L"},
				// Joomla, MediaWiki, TYPO3, WordPress through index.php.
				"/index.php*": {"p", "page_id", "s", "paged", "option", "view", "id", "Itemid", "catid", "task", "layout", "limitstart", "start", "title", "action", "oldid", "diff", "curid", "search", "L", "type", "cHash", "page", "lang"},
				// Site search: generic, Drupal (/search/node?keys=), Plone.
				"/search*":   {"q", "query", "keys", "keywords", "s", "search", "term", "text", "SearchableText", "page", "sort", "order", "type", "lang"},
				"/@@search*": {"SearchableText", "sort_on", "b_start", "b_size", "portal_type", "Subject", "page", "lang"},
				// Pagination and language anywhere else.
				"/*": {"page", "lang"},
			},
			IgnoreParams: []string{
				"utm_*", "fbclid", "gclid", "gclsrc", "dclid", "gbraid", "wbraid", "msclkid", "yclid",
				"twclid", "ttclid", "li_fat_id", "igshid", "mc_cid", "mc_eid", "_ga", "_gl",
				"_hsenc", "_hsmi", "mkt_tok", "_",
			},
			LearnParams:   true,
			LearnAfter:    Duration(time.Minute),
			LearnCapacity: 4096,
			NormaliseMode: "elevated",
		},
		Admission: Admission{
			InitialLimit: 20,
			MinLimit:     2,
			MaxLimit:     1000,
			QueueSize:    1024,
			MaxWait: ClassDurations{
				Priority:   Duration(10 * time.Second),
				Normal:     Duration(5 * time.Second),
				Suspicious: Duration(time.Second),
			},
		},
		Log: Log{Level: "info", AccessSample: 0.01, AccessMaxPerSecond: 100},
	}
}

// BuiltinRules are appended after the operator's rules when default_rules is
// true (the default). Why each is what it is:
//
//   - Pingback reflection, dropped: a WordPress site asked to verify a
//     pingback fetches the page it was told links to it, so an attacker
//     who sends forged pingbacks to thousands of blogs turns them into a
//     botnet with clean reputations. Their requests say so in their
//     User-Agent ("WordPress/...; verifying pingback from ...") and carry
//     a random query string to miss the cache; nobody reads a news site
//     that way.
//   - Pages per address, 10/s with a burst of 50: a reader opens a page every
//     few seconds; an office or a carrier-grade NAT puts dozens of readers
//     behind one address and still stays far below; a single flooding bot
//     sends hundreds a second.
//   - Pages per network (/24, /64), 100/s with a burst of 300, answered with
//     a cookie check rather than a refusal: botnets spread a flood thin
//     over many addresses of the same networks, while the real people who
//     share those networks keep cookies as browsers do (with JavaScript or
//     without) and carry on.
//   - Static assets per address, 50/s with a burst of 200: a page pulls in
//     dozens of assets at once, and they are cheap (cached).
//   - Writes (POST, PUT, PATCH, DELETE) per address, 1/s with a burst of 5:
//     comment forms and logins are rare, and writes always reach the origin
//     (a POST flood is the one flood the cache cannot absorb).
//   - Requests that the cache cannot answer, from elevated mode up, static
//     assets apart, from clients that have not shown they keep cookies:
//     checked (a 307 back to the same URL that sets a token). Once the
//     shield has seen a surge, the origin's work goes to clients that
//     behave like browsers, while every cached page is still served to
//     anyone; a flood of searches, random query strings, random paths,
//     old articles or logins from tools that keep no cookies stops at the
//     check, whatever its requests look like. A real reader, with or
//     without JavaScript, pays one round trip per token lifetime, and
//     only when it asks for something the cache does not hold. Floods
//     that do keep cookies wear the origin down and raise the mode to
//     under_attack, where every request without a clearance (proof of
//     work) is challenged. Feeds and the other challenge.bypass_paths are
//     not checked.
//   - Cache misses per address, 5/s with a burst of 20: a miss costs the
//     origin real work; a cache-busting bot misses on every request.
func BuiltinRules() []Rule {
	t, f := true, false
	return []Rule{
		{
			Name: "default-pingback-reflection",
			Match: Match{
				Headers: []FieldMatch{{Name: "User-Agent", Value: ptr(mustPatterns("WordPress/*")[0])}},
				Query:   &QueryMatch{MinParams: 1},
			},
			Action: "drop",
		},
		{
			Name:   "default-writes-per-ip",
			Match:  Match{Methods: []string{"POST", "PUT", "PATCH", "DELETE"}},
			Limit:  &Limit{Rate: 1, Burst: 5, By: []string{"ip"}},
			Action: "limit",
		},
		{
			Name:   "default-static-per-ip",
			Match:  Match{Static: &t},
			Limit:  &Limit{Rate: 50, Burst: 200, By: []string{"ip"}},
			Action: "limit",
		},
		{
			Name:   "default-pages-per-ip",
			Match:  Match{Static: &f},
			Limit:  &Limit{Rate: 10, Burst: 50, By: []string{"ip"}},
			Action: "limit",
		},
		{
			Name:   "default-pages-per-prefix",
			Match:  Match{Static: &f, Cleared: &f},
			Limit:  &Limit{Rate: 100, Burst: 300, By: []string{"prefix"}},
			Action: "check",
		},
		{
			Name:   "default-unchecked-misses",
			Match:  Match{Miss: true, Static: &f, Cleared: &f, Modes: []string{"elevated", "under_attack"}},
			Action: "check",
		},
		{
			Name:   "default-misses-per-ip",
			Limit:  &Limit{Rate: 5, Burst: 20, By: []string{"ip"}, Count: "misses"},
			Action: "limit",
		},
	}
}

func ptr[T any](v T) *T { return &v }

func mustPatterns(ss ...string) []Pattern {
	out := make([]Pattern, len(ss))
	for i, s := range ss {
		p, err := ParsePattern(s)
		if err != nil {
			panic(err)
		}
		out[i] = p
	}
	return out
}
