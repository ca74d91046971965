package cache

import (
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

var cacheControlTests = []struct {
	name string
	in   []string
	want cacheControl
}{
	{name: "empty", in: nil, want: cacheControl{maxAge: -1, sMaxAge: -1, swr: -1, sie: -1}},
	{name: "max-age", in: []string{"max-age=60"}, want: cacheControl{maxAge: 60, sMaxAge: -1, swr: -1, sie: -1}},
	{name: "case and spaces", in: []string{"  Public ,MAX-AGE = 30 , S-MaxAge=10"}, want: cacheControl{maxAge: 30, sMaxAge: 10, swr: -1, sie: -1, public: true}},
	{name: "several headers", in: []string{"no-cache", "max-age=5, must-revalidate"}, want: cacheControl{maxAge: 5, sMaxAge: -1, swr: -1, sie: -1, noCache: true, mustRevalidate: true}},
	{name: "quoted value", in: []string{`max-age="120", private="Set-Cookie, X-Foo", no-store`}, want: cacheControl{maxAge: 120, sMaxAge: -1, swr: -1, sie: -1, private: true, noStore: true}},
	{name: "duplicate takes the smallest", in: []string{"max-age=100, max-age=10"}, want: cacheControl{maxAge: 10, sMaxAge: -1, swr: -1, sie: -1}},
	{name: "invalid max-age is stale", in: []string{"max-age=abc"}, want: cacheControl{maxAge: 0, sMaxAge: -1, swr: -1, sie: -1}},
	{name: "invalid swr is ignored", in: []string{"stale-while-revalidate=-1, stale-if-error=x"}, want: cacheControl{maxAge: -1, sMaxAge: -1, swr: -1, sie: -1}},
	{name: "stale extensions", in: []string{"max-age=1, stale-while-revalidate=30, stale-if-error=86400"}, want: cacheControl{maxAge: 1, sMaxAge: -1, swr: 30, sie: 86400}},
	{name: "huge is capped", in: []string{"max-age=99999999999999999999999"}, want: cacheControl{maxAge: maxSeconds, sMaxAge: -1, swr: -1, sie: -1}},
	{name: "unknown and empty directives", in: []string{",,foo=bar,,immutable,proxy-revalidate,"}, want: cacheControl{maxAge: -1, sMaxAge: -1, swr: -1, sie: -1, immutable: true, proxyRevalidate: true}},
	{name: "unterminated quote", in: []string{`max-age="12`}, want: cacheControl{maxAge: 0, sMaxAge: -1, swr: -1, sie: -1}},
}

func TestParseCacheControl(t *testing.T) {
	for _, tt := range cacheControlTests {
		t.Run(tt.name, func(t *testing.T) {
			got := parseCacheControl(tt.in)
			if diff := cmp.Diff(tt.want, got, cmp.AllowUnexported(cacheControl{})); diff != "" {
				t.Errorf("parseCacheControl(%q) (-want +got):\n%s", tt.in, diff)
			}
		})
	}
}

func FuzzParseCacheControl(f *testing.F) {
	for _, tt := range cacheControlTests {
		f.Add(strings.Join(tt.in, ", "))
	}
	f.Fuzz(func(t *testing.T, s string) {
		cc := parseCacheControl([]string{s})
		for _, v := range []int64{cc.maxAge, cc.sMaxAge, cc.swr, cc.sie} {
			if v < -1 || v > maxSeconds {
				t.Fatalf("%q: delta-seconds %d out of range", s, v)
			}
		}
		// Splitting the header into two values at a comma means the same.
		if i := strings.IndexByte(s, ','); i >= 0 && !strings.Contains(s, `"`) {
			if got := parseCacheControl([]string{s[:i], s[i+1:]}); got != cc {
				t.Fatalf("%q: split at comma parses differently", s)
			}
		}
	})
}

// keyOf builds the primary key of a request for url, with keep as filter.
func keyOf(method, rawURL string, keep *paramFilter) string {
	r, err := http.NewRequest(method, rawURL, nil)
	if err != nil {
		panic(err)
	}
	r.Host = r.URL.Host
	kb := getKeyBuf()
	defer putKeyBuf(kb)
	buildPrimary(kb, r, keep)
	return string(kb.b)
}

func TestKeyNormalisation(t *testing.T) {
	onlyID := &paramFilter{cfg: paramSet{names: []string{"id"}}}
	tests := []struct {
		name string
		url  string
		keep *paramFilter
		want string
	}{
		{name: "plain", url: "http://example.org/news", want: "example.org/news\x00p"},
		{name: "host case and port", url: "http://WWW.Example.ORG:8080/a", want: "www.example.org/a\x00p"},
		{name: "https", url: "https://example.org/a", want: "example.org/a\x00s"},
		{name: "ipv6 host with port", url: "http://[::1]:8080/a", want: "[::1]/a\x00p"},
		{name: "empty path", url: "http://example.org", want: "example.org/\x00p"},
		{name: "sorted parameters", url: "http://example.org/s?q=x&b=2&a=1", want: "example.org/s?a=1&b=2&q=x\x00p"},
		{name: "repeated names keep their order", url: "http://example.org/s?b=2&a=9&b=1&a=3", want: "example.org/s?a=9&a=3&b=2&b=1\x00p"},
		{name: "empty parameters dropped", url: "http://example.org/s?&a=1&&b&", want: "example.org/s?a=1&b\x00p"},
		{name: "escaped path kept", url: "http://example.org/a%2Fb/c%20d", want: "example.org/a%2Fb/c%20d\x00p"},
		{name: "filter keeps known", url: "http://example.org/n?utm=1&id=4&cb=8812", keep: onlyID, want: "example.org/n?id=4\x00p"},
		{name: "filter drops all", url: "http://example.org/?cb=1&x=2", keep: onlyID, want: "example.org/\x00p"},
		{name: "filter on empty query", url: "http://example.org/", keep: onlyID, want: "example.org/\x00p"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := keyOf("GET", tt.url, tt.keep); got != tt.want {
				t.Errorf("key %q, want %q", got, tt.want)
			}
		})
	}
	if keyOf("GET", "http://e.org/x?a=1", nil) != keyOf("HEAD", "http://e.org/x?a=1", nil) {
		t.Error("GET and HEAD keys differ")
	}
}

func FuzzKeyNormalisation(f *testing.F) {
	f.Add("/s", "q=x&b=2&a=1")
	f.Add("/", "&&a=1&a=&=&b")
	f.Add("/news/1", "id=4&utm_source=x&cb=991")
	f.Add("/a%2Fb", "x=%41&x=%42")
	f.Fuzz(func(t *testing.T, path, query string) {
		u := &url.URL{Scheme: "http", Host: "example.org", Path: path, RawQuery: query}
		r := &http.Request{Method: "GET", URL: u, Host: "example.org", Header: http.Header{}}
		kb := getKeyBuf()
		defer putKeyBuf(kb)
		buildPrimary(kb, r, nil)
		key := string(kb.b)
		if !strings.HasSuffix(key, "\x00p") || strings.Count(key, "\x00") != 1 && !strings.Contains(query+path, "\x00") {
			t.Fatalf("key %q: bad shape", key)
		}
		norm := kb.normalisedQuery()
		// Idempotent: the normalised query normalises to itself.
		u2 := *u
		u2.RawQuery = norm
		r.URL = &u2
		buildPrimary(kb, r, nil)
		if string(kb.b) != key {
			t.Fatalf("not idempotent: %q then %q", key, kb.b)
		}
		// Order-insensitive across distinct names: reversing the parameters
		// gives the same key when no name repeats.
		parts := strings.Split(query, "&")
		names := map[string]bool{}
		distinct := true
		for _, p := range parts {
			n, _, _ := strings.Cut(p, "=")
			if p != "" && names[n] {
				distinct = false
			}
			names[n] = true
		}
		if distinct {
			slices.Reverse(parts)
			u3 := *u
			u3.RawQuery = strings.Join(parts, "&")
			r.URL = &u3
			buildPrimary(kb, r, nil)
			if string(kb.b) != key {
				t.Fatalf("order matters: %q vs %q", key, kb.b)
			}
		}
		// Without ignored names or busters, every dropped parameter is
		// unknown; when every name is ignored, none is.
		r.URL = u
		buildPrimary(kb, r, &paramFilter{cfg: paramSet{names: []string{"q"}}})
		if kb.unknown != kb.dropped {
			t.Fatalf("%q: unknown %v, dropped %v", query, kb.unknown, kb.dropped)
		}
		all := newNameMatcher([]string{"*"})
		buildPrimary(kb, r, &paramFilter{cfg: paramSet{names: []string{"q"}}, ignore: &all})
		if kb.unknown {
			t.Fatalf("%q: unknown with every name ignored", query)
		}
		// A filter keeping nothing leaves no query.
		buildPrimary(kb, r, &paramFilter{})
		if kb.qEnd != kb.qStart || strings.Contains(string(kb.b[:kb.primary]), "?") && !strings.Contains(path, "?") {
			t.Fatalf("empty filter kept %q", kb.b)
		}
	})
}

func TestAcceptedCodings(t *testing.T) {
	tests := []struct {
		in   []string
		want string
	}{
		{nil, ""},
		{[]string{"gzip, deflate, br"}, "gzip, br"},
		{[]string{"br;q=1.0, gzip;q=0.8, *;q=0.1"}, "gzip, br"},
		{[]string{"gzip;q=0, br"}, "br"},
		{[]string{"identity"}, ""},
		{[]string{"zstd", "GZIP"}, "gzip, zstd"},
		{[]string{"x-gzip; q=0.000"}, ""},
		{[]string{"*"}, "gzip"},
		{[]string{"gzip;level=1;q=0.5"}, "gzip"},
	}
	for _, tt := range tests {
		if got := codingSets[acceptedCodings(tt.in)]; got != tt.want {
			t.Errorf("acceptedCodings(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func FuzzAcceptedCodings(f *testing.F) {
	f.Add("gzip, deflate, br")
	f.Add("br;q=0, *;q=0.1")
	f.Fuzz(func(t *testing.T, s string) {
		set := acceptedCodings([]string{s})
		if set < 0 || set >= len(codingSets) {
			t.Fatalf("%q: set %d", s, set)
		}
		// The normal form is a fixed point.
		if again := acceptedCodings([]string{codingSets[set]}); again != set {
			t.Fatalf("%q: normal form %q parses to %d, not %d", s, codingSets[set], again, set)
		}
	})
}

func TestParseVary(t *testing.T) {
	tests := []struct {
		in    []string
		names []string
		star  bool
	}{
		{nil, nil, false},
		{[]string{"accept-encoding"}, []string{"Accept-Encoding"}, false},
		{[]string{"Cookie, Accept-Language", "accept-language"}, []string{"Accept-Language", "Cookie"}, false},
		{[]string{"Accept, *"}, nil, true},
		{[]string{" , "}, nil, false},
	}
	for _, tt := range tests {
		names, star := parseVary(tt.in)
		if !slices.Equal(names, tt.names) || star != tt.star {
			t.Errorf("parseVary(%q) = %q, %v; want %q, %v", tt.in, names, star, tt.names, tt.star)
		}
	}
}

func FuzzParseVary(f *testing.F) {
	f.Add("Accept-Encoding, cookie")
	f.Add("*")
	f.Fuzz(func(t *testing.T, s string) {
		names, star := parseVary([]string{s})
		if star && names != nil {
			t.Fatal("names with star")
		}
		if !slices.IsSorted(names) || len(slices.Compact(slices.Clone(names))) != len(names) {
			t.Fatalf("%q: names %q not sorted and unique", s, names)
		}
	})
}

func TestSessionCookies(t *testing.T) {
	m := newNameMatcher(DefaultSessionCookies)
	tests := []struct {
		cookie string
		want   bool
	}{
		{"", false},
		{"theme=dark; lang=en", false},
		{"PHPSESSID=abc", true},
		{"theme=dark;  sessionid=1", true},
		{"wordpress_logged_in_5f3e=admin", true},
		{"myapp_session=xyz", true},
		{"SSESSabc123=1", true},
		{"_ga=GA1.2; rampart_clearance=tok", false},
		{"phpsessid=abc", false}, // names are case-sensitive
		{"=novalue; ;", false},
	}
	for _, tt := range tests {
		if got := m.hasSession([]string{tt.cookie}); got != tt.want {
			t.Errorf("hasSession(%q) = %v, want %v", tt.cookie, got, tt.want)
		}
	}
}

func FuzzSessionCookies(f *testing.F) {
	f.Add("a=1; PHPSESSID=2")
	f.Add(";;=;")
	m := newNameMatcher(DefaultSessionCookies)
	f.Fuzz(func(t *testing.T, s string) {
		got := m.hasSession([]string{s})
		// Splitting the header at a ';' into two headers means the same.
		if i := strings.IndexByte(s, ';'); i >= 0 {
			if m.hasSession([]string{s[:i], s[i+1:]}) != got {
				t.Fatalf("%q: split differs", s)
			}
		}
	})
}

// FuzzNameMatcher checks the matcher (and its first-byte shortcut) against
// the plain reading of its patterns.
func FuzzNameMatcher(f *testing.F) {
	for _, n := range []string{"utm_source", "q", "", "_", "fbclid", "PHPSESSID", "x_session", "auth"} {
		f.Add(n)
	}
	sets := [][]string{DefaultIgnoreParams, DefaultSessionCookies, {"a*", "b"}, {"*"}, {"x*", "*y"}, {}}
	matchers := make([]nameMatcher, len(sets))
	for i, s := range sets {
		matchers[i] = newNameMatcher(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		for i, pats := range sets {
			want := false
			for _, p := range pats {
				switch {
				case strings.HasSuffix(p, "*"):
					want = want || strings.HasPrefix(name, strings.TrimSuffix(p, "*"))
				case strings.HasPrefix(p, "*"):
					want = want || strings.HasSuffix(name, strings.TrimPrefix(p, "*"))
				default:
					want = want || name == p
				}
			}
			if got := matchers[i].matchName(name); got != want {
				t.Fatalf("patterns %q, name %q: %v, want %v", pats, name, got, want)
			}
		}
	})
}
