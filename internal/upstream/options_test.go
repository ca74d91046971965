package upstream

import (
	"errors"
	"net/url"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

var targetCases = []struct {
	name    string
	url     string
	kind    string
	host    string
	wantErr bool
}{
	{"http", "http://127.0.0.1:8080", "http", "127.0.0.1:8080", false},
	{"https no port", "https://Origin.Example", "https", "origin.example", false},
	{"h2c", "h2c://[::1]:9000", "h2c", "[::1]:9000", false},
	{"h2", "h2://origin:8443", "h2", "origin:8443", false},
	{"slash path allowed", "http://o:1/", "http", "o:1", false},
	{"upper scheme", "HTTP://o:80", "http", "o:80", false},
	{"ftp", "ftp://o", "", "", true},
	{"no scheme", "o:80", "", "", true},
	{"no host", "http://", "", "", true},
	{"port only", "http://:80", "", "", true},
	{"path", "http://o/app", "", "", true},
	{"query", "http://o?x=1", "", "", true},
	{"force query", "http://o?", "", "", true},
	{"fragment", "http://o#f", "", "", true},
	{"user", "http://u:p@o", "", "", true},
	{"bad port", "http://o:99999", "", "", true},
	{"zero port", "http://o:0", "", "", true},
	{"empty port", "http://o:", "", "", true},
	{"opaque", "http:o", "", "", true},
	{"bare ipv6", "h2://::1", "", "", true},
	{"zone", "http://[fe80::1%25eth0]:80", "", "", true},
}

func TestParseTarget(t *testing.T) {
	for _, tc := range targetCases {
		t.Run(tc.name, func(t *testing.T) {
			u, err := url.Parse(tc.url)
			if err != nil {
				if !tc.wantErr {
					t.Fatalf("url.Parse: %v", err)
				}
				return
			}
			kind, host, err := parseTarget(u)
			if (err != nil) != tc.wantErr {
				t.Fatalf("parseTarget(%q) error = %v, want error %v", tc.url, err, tc.wantErr)
			}
			if err == nil && (kind != tc.kind || host != tc.host) {
				t.Fatalf("parseTarget(%q) = %q, %q; want %q, %q", tc.url, kind, host, tc.kind, tc.host)
			}
		})
	}
	if _, _, err := parseTarget(nil); err == nil {
		t.Fatal("parseTarget(nil) succeeded")
	}
}

func FuzzParseTarget(f *testing.F) {
	for _, tc := range targetCases {
		f.Add(tc.url)
	}
	f.Fuzz(func(t *testing.T, s string) {
		u, err := url.Parse(s)
		if err != nil {
			return
		}
		kind, host, err := parseTarget(u)
		if err != nil {
			return
		}
		// Whatever passes must build a valid pool and a dialable request.
		if kind == "" || host == "" {
			t.Fatalf("parseTarget(%q) = %q, %q with no error", s, kind, host)
		}
		p, err := New(Options{Targets: []Target{{URL: u}}})
		if err != nil {
			t.Fatalf("parseTarget accepted %q but New failed: %v", s, err)
		}
		p.Close()
	})
}

func TestNewValidation(t *testing.T) {
	ok := []Target{{URL: mustURL(t, "http://127.0.0.1:1")}}
	cases := []struct {
		name string
		o    Options
		ok   bool
	}{
		{"minimal", Options{Targets: ok}, true},
		{"no targets", Options{}, false},
		{"duplicate", Options{Targets: []Target{ok[0], {URL: mustURL(t, "HTTP://127.0.0.1:1")}}}, false},
		{"weight too big", Options{Targets: []Target{{URL: ok[0].URL, Weight: 101}}}, false},
		{"weight negative", Options{Targets: []Target{{URL: ok[0].URL, Weight: -1}}}, false},
		{"least conn", Options{Targets: ok, Balance: "least_conn"}, true},
		{"bad balance", Options{Targets: ok, Balance: "random"}, false},
		{"negative dial", Options{Targets: ok, DialTimeout: -1}, false},
		{"negative window", Options{Targets: ok, Passive: PassiveOptions{Window: -1}}, false},
		{"max fails too big", Options{Targets: ok, Passive: PassiveOptions{MaxFails: 1001}}, false},
		{"max eject shorter", Options{Targets: ok, Passive: PassiveOptions{EjectFor: time.Minute, MaxEjectFor: time.Second}}, false},
		{"eject above default max", Options{Targets: ok, Passive: PassiveOptions{EjectFor: 10 * time.Minute}}, true},
		{"interval too small", Options{Targets: ok, HealthCheck: HealthCheckOptions{Interval: time.Microsecond}}, false},
		{"short interval", Options{Targets: ok, HealthCheck: HealthCheckOptions{Interval: 10 * time.Millisecond}}, true},
		{"timeout above interval", Options{Targets: ok, HealthCheck: HealthCheckOptions{Interval: time.Second, Timeout: 2 * time.Second}}, true},
		{"negative timeout", Options{Targets: ok, HealthCheck: HealthCheckOptions{Timeout: -time.Second}}, false},
		{"bad path", Options{Targets: ok, HealthCheck: HealthCheckOptions{Path: "health"}}, false},
		{"path with space", Options{Targets: ok, HealthCheck: HealthCheckOptions{Path: "/a b"}}, false},
		{"threshold too big", Options{Targets: ok, HealthCheck: HealthCheckOptions{HealthyThreshold: 101}}, false},
		{"bad via", Options{Targets: ok, Via: "ramp art"}, false},
		{"bad host", Options{Targets: ok, Host: "a/b"}, false},
		{"retries too many", Options{Targets: ok, Retries: 9}, false},
		{"retries disabled", Options{Targets: ok, Retries: -1}, true},
		{"idle conns negative", Options{Targets: ok, MaxIdleConnsPerHost: -1}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p, err := New(tc.o)
			if tc.ok != (err == nil) {
				t.Fatalf("New error = %v, want ok %v", err, tc.ok)
			}
			if err != nil && !errors.Is(err, ErrInvalidOptions) {
				t.Fatalf("error %v does not wrap ErrInvalidOptions", err)
			}
			if p != nil {
				p.Close()
			}
		})
	}
}

func TestDefaults(t *testing.T) {
	o, err := Options{Targets: []Target{{URL: mustURL(t, "http://o:1")}}}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	got := []any{o.Balance, o.DialTimeout, o.ResponseHeaderTimeout, o.IdleConnTimeout, o.MaxIdleConnsPerHost,
		o.Retries, o.Via, o.HealthCheck.Path, o.HealthCheck.Interval, o.HealthCheck.Timeout,
		o.HealthCheck.HealthyThreshold, o.HealthCheck.UnhealthyThreshold, o.Passive.MaxFails,
		o.Passive.Window, o.Passive.EjectFor, o.Passive.MaxEjectFor, o.Passive.ProbeInterval}
	want := []any{"round_robin", 5 * time.Second, 30 * time.Second, 90 * time.Second, 256,
		2, "rampart", "/", 5 * time.Second, 2 * time.Second, 2, 3, 5,
		10 * time.Second, 30 * time.Second, 5 * time.Minute, time.Second}
	if d := cmp.Diff(want, got); d != "" {
		t.Fatalf("defaults (-want +got):\n%s", d)
	}
}

func TestSmoothSchedule(t *testing.T) {
	cases := []struct {
		name    string
		weights []int64
		want    []uint16
	}{
		{"equal", []int64{1, 1, 1}, []uint16{0, 1, 2}},
		{"nginx example 5 1 1", []int64{5, 1, 1}, []uint16{0, 0, 1, 0, 2, 0, 0}},
		{"two to one", []int64{1, 2}, []uint16{1, 0, 1}},
		{"single", []int64{3}, []uint16{0, 0, 0}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if d := cmp.Diff(tc.want, smoothSchedule(tc.weights)); d != "" {
				t.Fatalf("schedule (-want +got):\n%s", d)
			}
		})
	}
}

var acceptCases = []struct {
	name   string
	accept string
	html   bool
}{
	{"browser", "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8", true},
	{"empty", "", false},
	{"curl", "*/*", false},
	{"json", "application/json", false},
	{"xhtml only", "application/xhtml+xml", true},
	{"upper case", "TEXT/HTML", true},
	{"q zero", "text/html;q=0, text/plain", false},
	{"q zero point zero", "text/html; q=0.000", false},
	{"q half", "text/html;q=0.5", true},
	{"spaces", " text/plain , text/html ", true},
	{"garbage", ";;,,=;q", false},
}

func TestWantsHTML(t *testing.T) {
	for _, tc := range acceptCases {
		t.Run(tc.name, func(t *testing.T) {
			if got := wantsHTML(tc.accept); got != tc.html {
				t.Fatalf("wantsHTML(%q) = %v, want %v", tc.accept, got, tc.html)
			}
		})
	}
}

func FuzzWantsHTML(f *testing.F) {
	for _, tc := range acceptCases {
		f.Add(tc.accept)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := wantsHTML(s)
		// Appending a plain-text range never turns HTML on or off.
		if wantsHTML(s+",text/plain") != got && s != "" {
			t.Fatalf("wantsHTML(%q) changed by appending text/plain", s)
		}
	})
}

var peerCases = []struct {
	name, remote, want string
}{
	{"v4", "192.0.2.1:1234", "192.0.2.1"},
	{"v6", "[2001:db8::1]:443", "2001:db8::1"},
	{"v4 in v6", "[::ffff:192.0.2.7]:80", "192.0.2.7"},
	{"zone", "[fe80::1%eth0]:80", "fe80::1"},
	{"no port", "192.0.2.9", "192.0.2.9"},
	{"unix", "@", ""},
	{"empty", "", ""},
	{"name", "example.org:80", ""},
}

func TestPeerIP(t *testing.T) {
	for _, tc := range peerCases {
		t.Run(tc.name, func(t *testing.T) {
			if got := peerIP(tc.remote); got != tc.want {
				t.Fatalf("peerIP(%q) = %q, want %q", tc.remote, got, tc.want)
			}
		})
	}
}

func FuzzPeerIP(f *testing.F) {
	for _, tc := range peerCases {
		f.Add(tc.remote)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ip := peerIP(s)
		if ip == "" {
			return
		}
		for i := 0; i < len(ip); i++ {
			c := ip[i]
			if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F' || c == '.' || c == ':') {
				t.Fatalf("peerIP(%q) = %q: not a bare address", s, ip)
			}
		}
	})
}
