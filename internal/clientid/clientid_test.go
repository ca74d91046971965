package clientid

import (
	"net/http"
	"net/netip"
	"testing"
)

func TestClientIP(t *testing.T) {
	r := NewResolver([]netip.Prefix{
		netip.MustParsePrefix("10.0.0.0/8"),
		netip.MustParsePrefix("2001:db8:ffff::/48"),
	})
	tests := []struct {
		name string
		peer string
		xff  []string
		want string
	}{
		{"untrusted peer ignores header", "198.51.100.7", []string{"1.2.3.4"}, "198.51.100.7"},
		{"trusted peer, one hop", "10.1.1.1", []string{"203.0.113.9"}, "203.0.113.9"},
		{"right-most untrusted wins", "10.1.1.1", []string{"6.6.6.6, 203.0.113.9, 10.2.2.2"}, "203.0.113.9"},
		{"spoofed left entries ignored", "10.1.1.1", []string{"1.1.1.1", "203.0.113.9"}, "203.0.113.9"},
		{"all trusted returns left-most", "10.1.1.1", []string{"10.3.3.3, 10.2.2.2"}, "10.3.3.3"},
		{"garbage stops the walk", "10.1.1.1", []string{"203.0.113.9, nonsense, 10.2.2.2"}, "10.2.2.2"},
		{"port and brackets", "10.1.1.1", []string{"[2001:db8::5]:443"}, "2001:db8::5"},
		{"v4 with port", "10.1.1.1", []string{"203.0.113.9:5555"}, "203.0.113.9"},
		{"mapped peer is unmapped", "::ffff:10.1.1.1", []string{"203.0.113.9"}, "203.0.113.9"},
		{"trusted v6 peer", "2001:db8:ffff::1", []string{"2001:db8::77"}, "2001:db8::77"},
		{"empty entries skipped", "10.1.1.1", []string{" , 203.0.113.9 ,"}, "203.0.113.9"},
		{"no header", "10.1.1.1", nil, "10.1.1.1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := r.ClientIP(netip.MustParseAddr(tc.peer), tc.xff)
			if got != netip.MustParseAddr(tc.want) {
				t.Errorf("ClientIP(%s, %q) = %s, want %s", tc.peer, tc.xff, got, tc.want)
			}
		})
	}
	var zero *Resolver
	if got := zero.ClientIP(netip.MustParseAddr("10.1.1.1"), []string{"1.2.3.4"}); got.String() != "10.1.1.1" {
		t.Errorf("nil resolver trusted a header: %s", got)
	}
}

func TestPrefix(t *testing.T) {
	tests := []struct{ ip, want string }{
		{"203.0.113.77", "203.0.113.0/24"},
		{"::ffff:203.0.113.77", "203.0.113.0/24"},
		{"2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"},
	}
	for _, tc := range tests {
		if got := Prefix(netip.MustParseAddr(tc.ip), 24, 64); got.String() != tc.want {
			t.Errorf("Prefix(%s) = %s, want %s", tc.ip, got, tc.want)
		}
	}
}

func TestIsNavigation(t *testing.T) {
	tests := []struct {
		name   string
		method string
		h      http.Header
		want   bool
	}{
		{"fetch metadata navigate", "GET", http.Header{"Sec-Fetch-Mode": {"navigate"}, "Accept": {"*/*"}}, true},
		{"fetch metadata cors", "GET", http.Header{"Sec-Fetch-Mode": {"cors"}, "Accept": {"text/html"}}, false},
		{"old browser html", "GET", http.Header{"Accept": {"text/html,application/xhtml+xml"}}, true},
		{"api client", "GET", http.Header{"Accept": {"application/json"}}, false},
		{"post is never navigation", "POST", http.Header{"Sec-Fetch-Mode": {"navigate"}}, false},
		{"nothing", "GET", http.Header{}, false},
	}
	for _, tc := range tests {
		if got := IsNavigation(tc.method, tc.h); got != tc.want {
			t.Errorf("%s: IsNavigation = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestIsStatic(t *testing.T) {
	for path, want := range map[string]bool{
		"/static/site.css": true, "/a/b/logo.SVG": true, "/app.js": true, "/": false,
		"/news/42": false, "/v1.2/page": false, "/search": false, "/file.tar.gz": false, "/x.woff2": true,
	} {
		if got := IsStatic(path); got != want {
			t.Errorf("IsStatic(%q) = %v, want %v", path, got, want)
		}
	}
}

func TestCookies(t *testing.T) {
	h := http.Header{"Cookie": {`a=1; rampart_clearance="tok"; sessionid=x`, "b=2"}}
	if v, ok := CookieValue(h, "rampart_clearance"); !ok || v != "tok" {
		t.Errorf("CookieValue = %q, %v", v, ok)
	}
	if v, ok := CookieValue(h, "b"); !ok || v != "2" {
		t.Errorf("CookieValue(b) = %q, %v", v, ok)
	}
	if _, ok := CookieValue(h, "missing"); ok {
		t.Error("found a missing cookie")
	}
	if !HasCookie(h, []string{"nope", "session*"}) {
		t.Error("prefix match failed")
	}
	if HasCookie(h, []string{"sess"}) {
		t.Error("exact name matched a prefix")
	}
}

func TestHostOnly(t *testing.T) {
	for in, want := range map[string]string{
		"Example.COM:8080": "example.com", "example.com": "example.com", "[::1]:80": "::1", "[::1]": "::1", "127.0.0.1:8080": "127.0.0.1",
	} {
		if got := HostOnly(in); got != want {
			t.Errorf("HostOnly(%q) = %q, want %q", in, got, want)
		}
	}
}

func BenchmarkClientIP(b *testing.B) {
	r := NewResolver([]netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")})
	peer := netip.MustParseAddr("10.1.1.1")
	xff := []string{"6.6.6.6, 203.0.113.9, 10.2.2.2"}
	b.ReportAllocs()
	for b.Loop() {
		r.ClientIP(peer, xff)
	}
}

func BenchmarkTraits(b *testing.B) {
	h := http.Header{"Sec-Fetch-Mode": {"navigate"}, "Cookie": {"a=1; rampart_clearance=abc; c=3"}}
	b.ReportAllocs()
	for b.Loop() {
		IsNavigation("GET", h)
		IsStatic("/news/2026/11/25/vote.html")
		CookieValue(h, "rampart_clearance")
	}
}

func FuzzClientIP(f *testing.F) {
	f.Add("10.1.1.1", "1.2.3.4, 10.2.2.2")
	f.Add("10.1.1.1", "[::1]:80,,garbage")
	r := NewResolver([]netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")})
	f.Fuzz(func(t *testing.T, peer, xff string) {
		p, err := netip.ParseAddr(peer)
		if err != nil {
			return
		}
		got := r.ClientIP(p, []string{xff})
		if !got.IsValid() {
			t.Fatalf("invalid address from %q %q", peer, xff)
		}
		if !r.Trusted(p) && got != p.Unmap() {
			t.Fatalf("untrusted peer %s gave %s", p, got)
		}
	})
}

func TestTrustedChain(t *testing.T) {
	r := NewResolver([]netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")})
	tests := []struct {
		peer string
		xff  []string
		want string
	}{
		{"198.51.100.7", []string{"1.2.3.4"}, ""},
		{"10.1.1.1", []string{"203.0.113.9"}, "10.1.1.1"},
		{"10.1.1.1", []string{"6.6.6.6, 203.0.113.9, 10.2.2.2, 10.3.3.3"}, "10.2.2.2, 10.3.3.3, 10.1.1.1"},
		{"10.1.1.1", []string{"junk, 10.2.2.2"}, "10.2.2.2, 10.1.1.1"},
	}
	for _, tc := range tests {
		if got := r.TrustedChain(netip.MustParseAddr(tc.peer), tc.xff); got != tc.want {
			t.Errorf("TrustedChain(%s, %q) = %q, want %q", tc.peer, tc.xff, got, tc.want)
		}
	}
}
