package cache

import (
	"net/http"
	"strings"
	"sync"
)

// A key names one stored response:
//
//	host path [?query] NUL scheme [NUL Name=value ...]
//
// host is the request host in lower case without its port; path is the
// escaped path; query is the raw query with its parameters sorted by name
// (stable, so repeated names keep their order) and empty ones dropped, and in
// NormaliseIn and above only the known and learned names kept; scheme is "s"
// for TLS (or an absolute https URL) and "p" otherwise. GET and HEAD share keys. When the origin
// answers with Vary, the key of the variant appends, per Vary'd header in
// sorted order, its name and the request's values (Accept-Encoding
// normalised to the codings rampart tells apart: br, gzip, zstd). Purge
// matches the readable part, "host/path?query", by prefix.

// keyBuf builds a key without allocating; it is pooled.
type keyBuf struct {
	b       []byte
	primary int // length of the primary key (before any Vary suffix)
	// query is where the normalised query sits in b, ('?' excluded).
	qStart, qEnd int
	dropped      bool // parameters were dropped by normalisation
	// unknown: a dropped parameter is neither ignored nor a proven
	// cache-buster, so it may change the page (see the safety net in
	// ServeHTTP).
	unknown bool
	spans   [32]span
	arr     [512]byte
}

type span struct{ start, end, nameEnd int }

var keyPool = sync.Pool{New: func() any {
	kb := new(keyBuf)
	kb.b = kb.arr[:0]
	return kb
}}

func getKeyBuf() *keyBuf { return keyPool.Get().(*keyBuf) }

func putKeyBuf(kb *keyBuf) {
	if cap(kb.b) > 8<<10 {
		kb.b = kb.arr[:0]
	}
	kb.b = kb.b[:0]
	keyPool.Put(kb)
}

// normalisedQuery returns the query the key holds.
func (kb *keyBuf) normalisedQuery() string { return string(kb.b[kb.qStart:kb.qEnd]) }

// buildPrimary writes the primary key of r into kb. keep, if not nil,
// filters the query parameters by name.
func buildPrimary(kb *keyBuf, r *http.Request, keep *paramFilter) {
	b := kb.b[:0]
	host := r.Host
	if host == "" {
		host = r.URL.Host
	}
	b = appendHost(b, host)
	p := r.URL.EscapedPath()
	if p == "" {
		p = "/"
	}
	b = append(b, p...)
	var n int
	b, n, kb.dropped, kb.unknown = appendQuery(b, r.URL.RawQuery, keep, kb.spans[:0])
	kb.qEnd = len(b)
	kb.qStart = len(b) - n
	b = append(b, 0)
	if r.TLS != nil || r.URL.Scheme == "https" {
		b = append(b, 's')
	} else {
		b = append(b, 'p')
	}
	kb.b = b
	kb.primary = len(b)
}

// appendHost appends host in ASCII lower case without its port.
func appendHost(b []byte, host string) []byte {
	if i := strings.LastIndexByte(host, ':'); i >= 0 && !strings.Contains(host[i:], "]") {
		host = host[:i]
	}
	for i := 0; i < len(host); i++ {
		c := host[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		b = append(b, c)
	}
	return b
}

// appendQuery appends '?' and the normalised form of raw to b, if any
// parameter remains, and returns the length of the normalised query,
// whether keep dropped a parameter and whether one it dropped may matter
// (is not irrelevant).
func appendQuery(b []byte, raw string, keep *paramFilter, spans []span) (_ []byte, n int, dropped, unknown bool) {
	if raw == "" {
		return b, 0, false, false
	}
	for i := 0; i < len(raw); {
		j := strings.IndexByte(raw[i:], '&')
		if j < 0 {
			j = len(raw)
		} else {
			j += i
		}
		if j > i {
			ne := strings.IndexByte(raw[i:j], '=')
			if ne < 0 {
				ne = j
			} else {
				ne += i
			}
			if keep == nil || keep.keeps(raw[i:ne]) {
				spans = append(spans, span{start: i, end: j, nameEnd: ne})
			} else {
				dropped = true
				unknown = unknown || !keep.irrelevant(raw[i:ne])
			}
		}
		i = j + 1
	}
	if len(spans) == 0 {
		return b, 0, dropped, unknown
	}
	// Stable insertion sort by name: queries are short.
	for i := 1; i < len(spans); i++ {
		s := spans[i]
		name := raw[s.start:s.nameEnd]
		j := i
		for j > 0 && raw[spans[j-1].start:spans[j-1].nameEnd] > name {
			spans[j] = spans[j-1]
			j--
		}
		spans[j] = s
	}
	b = append(b, '?')
	start := len(b)
	for i, s := range spans {
		if i > 0 {
			b = append(b, '&')
		}
		b = append(b, raw[s.start:s.end]...)
	}
	return b, len(b) - start, dropped, unknown
}

// appendVary appends the variant suffix for the Vary'd header names (sorted,
// canonical) from r's headers.
func appendVary(b []byte, names []string, r *http.Request) []byte {
	for _, name := range names {
		b = append(b, 0)
		b = append(b, name...)
		b = append(b, '=')
		if name == "Accept-Encoding" {
			b = append(b, codingSets[acceptedCodings(r.Header["Accept-Encoding"])]...)
			continue
		}
		for i, v := range r.Header[name] {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, v...)
		}
	}
	return b
}

// Content codings rampart tells apart in Accept-Encoding. Any other coding
// is ignored, so the header has 8 normal forms and a flood of random
// Accept-Encoding values cannot multiply the variants of a page. The leader
// of a miss sends the normal form to the origin, so the stored variant is
// exactly what every request of that form accepts.
const (
	codingGzip = 1 << iota
	codingBr
	codingZstd
)

var codingSets = [8]string{"", "gzip", "br", "gzip, br", "zstd", "gzip, zstd", "br, zstd", "gzip, br, zstd"}

// acceptedCodings parses Accept-Encoding values into a set of codings with a
// non-zero q. "*" accepts gzip; "x-gzip" is gzip. It does not allocate.
func acceptedCodings(values []string) int {
	set := 0
	for _, v := range values {
		for len(v) > 0 {
			var item string
			if i := strings.IndexByte(v, ','); i >= 0 {
				item, v = v[:i], v[i+1:]
			} else {
				item, v = v, ""
			}
			name, params, _ := strings.Cut(item, ";")
			name = strings.TrimSpace(name)
			if qZero(params) {
				continue
			}
			switch {
			case strings.EqualFold(name, "gzip"), strings.EqualFold(name, "x-gzip"), name == "*":
				set |= codingGzip
			case strings.EqualFold(name, "br"):
				set |= codingBr
			case strings.EqualFold(name, "zstd"):
				set |= codingZstd
			}
		}
	}
	return set
}

// qZero reports whether an Accept-Encoding item's parameters say q=0.
func qZero(params string) bool {
	for len(params) > 0 {
		var p string
		if i := strings.IndexByte(params, ';'); i >= 0 {
			p, params = params[:i], params[i+1:]
		} else {
			p, params = params, ""
		}
		k, v, ok := strings.Cut(strings.TrimSpace(p), "=")
		if !ok || !strings.EqualFold(strings.TrimSpace(k), "q") {
			continue
		}
		v = strings.TrimSpace(v)
		if v == "" {
			return false
		}
		for i := 0; i < len(v); i++ {
			if v[i] != '0' && v[i] != '.' {
				return false
			}
		}
		return true
	}
	return false
}

// parseVary returns the sorted, canonical, de-duplicated header names of a
// Vary header, and whether it holds "*".
func parseVary(values []string) (names []string, star bool) {
	for _, v := range values {
		for part := range strings.SplitSeq(v, ",") {
			part = strings.TrimSpace(part)
			if part == "" {
				continue
			}
			if part == "*" {
				return nil, true
			}
			names = append(names, http.CanonicalHeaderKey(part))
		}
	}
	if len(names) == 0 {
		return nil, false
	}
	sortStrings(names)
	out := names[:1]
	for _, n := range names[1:] {
		if n != out[len(out)-1] {
			out = append(out, n)
		}
	}
	return out, false
}

func sortStrings(s []string) {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j-1] > s[j]; j-- {
			s[j-1], s[j] = s[j], s[j-1]
		}
	}
}
