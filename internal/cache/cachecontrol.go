package cache

import (
	"net/http"
	"strings"
	"time"
)

// maxSeconds caps delta-seconds values (RFC 9111 §1.2.2 asks caches to
// accept up to 2^31); a year is plenty for freshness and keeps arithmetic in
// nanoseconds far from overflow.
const maxSeconds = 365 * 24 * 3600

// cacheControl is a parsed Cache-Control response header. Durations are in
// seconds; -1 means absent.
type cacheControl struct {
	maxAge, sMaxAge, swr, sie                  int64
	noStore, noCache, private, public          bool
	mustRevalidate, proxyRevalidate, immutable bool
}

// parseCacheControl parses the values of a Cache-Control header (RFC 9111
// §5.2). Directive names are case-insensitive; values may be quoted. It is
// conservative where the header is ambiguous: a duplicated delta-seconds
// directive takes its smallest value, an invalid max-age or s-maxage counts as
// 0 (stale), and no-cache or private with a field list count as plain
// no-cache or private. It does not allocate.
func parseCacheControl(values []string) cacheControl {
	cc := cacheControl{maxAge: -1, sMaxAge: -1, swr: -1, sie: -1}
	for _, v := range values {
		for len(v) > 0 {
			var name, val string
			name, val, v = nextDirective(v)
			if name == "" {
				continue
			}
			switch {
			case strings.EqualFold(name, "max-age"):
				cc.maxAge = minSeconds(cc.maxAge, parseSeconds(val, 0))
			case strings.EqualFold(name, "s-maxage"):
				cc.sMaxAge = minSeconds(cc.sMaxAge, parseSeconds(val, 0))
			case strings.EqualFold(name, "stale-while-revalidate"):
				if s := parseSeconds(val, -1); s >= 0 {
					cc.swr = minSeconds(cc.swr, s)
				}
			case strings.EqualFold(name, "stale-if-error"):
				if s := parseSeconds(val, -1); s >= 0 {
					cc.sie = minSeconds(cc.sie, s)
				}
			case strings.EqualFold(name, "no-store"):
				cc.noStore = true
			case strings.EqualFold(name, "no-cache"):
				cc.noCache = true
			case strings.EqualFold(name, "private"):
				cc.private = true
			case strings.EqualFold(name, "public"):
				cc.public = true
			case strings.EqualFold(name, "must-revalidate"):
				cc.mustRevalidate = true
			case strings.EqualFold(name, "proxy-revalidate"):
				cc.proxyRevalidate = true
			case strings.EqualFold(name, "immutable"):
				cc.immutable = true
			}
		}
	}
	return cc
}

// nextDirective splits the first directive off s: its name, its value
// (unquoted, escapes left in), and the rest after the separating comma.
func nextDirective(s string) (name, val, rest string) {
	i := 0
	for i < len(s) && (s[i] == ' ' || s[i] == '\t' || s[i] == ',') {
		i++
	}
	s = s[i:]
	i = 0
	for i < len(s) && s[i] != '=' && s[i] != ',' {
		i++
	}
	name = strings.TrimRight(s[:i], " \t")
	if i == len(s) || s[i] == ',' {
		return name, "", s[i:]
	}
	s = s[i+1:] // past '='
	i = 0
	for i < len(s) && (s[i] == ' ' || s[i] == '\t') {
		i++
	}
	s = s[i:]
	if len(s) > 0 && s[0] == '"' {
		i = 1
		for i < len(s) && s[i] != '"' {
			if s[i] == '\\' {
				i++
			}
			i++
		}
		if i >= len(s) {
			return name, s, "" // unterminated: invalid
		}
		val = s[1:i]
		s = s[i+1:]
		// Skip anything up to the next comma.
		if j := strings.IndexByte(s, ','); j >= 0 {
			return name, val, s[j:]
		}
		return name, val, ""
	}
	i = 0
	for i < len(s) && s[i] != ',' {
		i++
	}
	return name, strings.TrimRight(s[:i], " \t"), s[i:]
}

// parseSeconds parses delta-seconds, capped at maxSeconds; invalid input
// gives def.
func parseSeconds(s string, def int64) int64 {
	if s == "" {
		return def
	}
	var n int64
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return def
		}
		if n < maxSeconds {
			n = n*10 + int64(c-'0')
		}
	}
	return min(n, maxSeconds)
}

func minSeconds(old, s int64) int64 {
	if old < 0 || s < old {
		return s
	}
	return old
}

// freshness is what a stored response may be used for, as absolute times in
// Unix nanoseconds.
type freshness struct {
	born       int64 // response time minus its Age: age 0
	freshUntil int64 // served as HIT before this
	swrUntil   int64 // served STALE with a background refresh before this
	sieUntil   int64 // served STALE when the origin fails before this
	// micro: the origin did not mark the response cacheable for
	// MicroTTL; its freshness comes from micro-caching.
	micro bool
}

// expireAt is when the entry is of no more use.
func (f freshness) expireAt() int64 { return max(f.freshUntil, f.swrUntil, f.sieUntil) }

// computeFreshness applies RFC 9111 §4.2 to a response received at now: the
// lifetime is s-maxage, else max-age, else Expires minus Date; no-cache makes
// it 0 (the copy must be revalidated, which a leader does with its
// validators). There is no heuristic freshness: pages without any are
// stored with lifetime 0 (for stale-if-error) unless micro is set, which
// raises every lifetime below MicroTTL to MicroTTL. A 404's lifetime is
// capped at NotFoundTTL. The Age header is subtracted.
func (c *Cache) computeFreshness(status int, h http.Header, cc cacheControl, now time.Time, micro bool) freshness {
	o := &c.o
	var lifetime time.Duration
	switch {
	case cc.noCache:
		lifetime = 0
	case cc.sMaxAge >= 0:
		lifetime = time.Duration(cc.sMaxAge) * time.Second
	case cc.maxAge >= 0:
		lifetime = time.Duration(cc.maxAge) * time.Second
	default:
		if exp := h.Get("Expires"); exp != "" {
			if t, err := http.ParseTime(exp); err == nil {
				date := now
				if d, err := http.ParseTime(h.Get("Date")); err == nil {
					date = d
				}
				lifetime = max(0, t.Sub(date))
			}
		}
	}
	lifetime = min(lifetime, maxSeconds*time.Second)
	raised := micro && lifetime < o.MicroTTL
	if raised {
		lifetime = o.MicroTTL
	}
	if status == http.StatusNotFound {
		lifetime = min(lifetime, o.NotFoundTTL)
	}
	age := time.Duration(0)
	if a := h["Age"]; len(a) > 0 {
		age = time.Duration(parseSeconds(strings.TrimSpace(a[0]), 0)) * time.Second
	}
	nowNs := now.UnixNano()
	f := freshness{born: nowNs - int64(age), micro: raised}
	f.freshUntil = f.born + int64(lifetime)

	if !cc.noCache && !cc.mustRevalidate && !cc.proxyRevalidate {
		swr := o.StaleWhileRevalidate
		if cc.swr >= 0 {
			swr = time.Duration(cc.swr) * time.Second
		}
		f.swrUntil = f.freshUntil + int64(swr)
	}
	sie := time.Duration(-1)
	if o.StaleIfError > 0 {
		sie = o.StaleIfError
	}
	if cc.sie >= 0 {
		sie = max(sie, time.Duration(cc.sie)*time.Second)
	}
	if sie >= 0 {
		f.sieUntil = f.freshUntil + int64(sie)
	}
	return f
}
