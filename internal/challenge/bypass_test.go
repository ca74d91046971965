package challenge_test

import (
	"bytes"
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rampart-shield/rampart/internal/challenge"
)

// fakeResolver answers from maps and counts calls; block, when set, holds
// every lookup until closed.
type fakeResolver struct {
	mu    sync.Mutex
	ptr   map[string][]string
	fwd   map[string][]netip.Addr
	calls int
	block chan struct{}
}

func (f *fakeResolver) LookupAddr(ctx context.Context, addr string) ([]string, error) {
	f.mu.Lock()
	f.calls++
	block := f.block
	names, ok := f.ptr[addr]
	f.mu.Unlock()
	if block != nil {
		select {
		case <-block:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	if !ok {
		return nil, &net.DNSError{Err: "no such host", Name: addr, IsNotFound: true}
	}
	return names, nil
}

func (f *fakeResolver) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	if a, ok := f.fwd[host]; ok {
		return a, nil
	}
	return nil, errors.New("nxdomain")
}

func (f *fakeResolver) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls
}

func bypassReq(path, ua string) *http.Request {
	r := httptest.NewRequest(http.MethodGet, path, nil)
	if ua != "" {
		r.Header.Set("User-Agent", ua)
	}
	return r
}

// eventually polls match until it returns want or a deadline passes.
func eventually(t *testing.T, want challenge.BypassReason, match func() challenge.BypassReason) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	var got challenge.BypassReason
	for time.Now().Before(deadline) {
		if got = match(); got == want {
			return
		}
		time.Sleep(time.Millisecond) // polling interval, not a wait for behaviour
	}
	t.Fatalf("Match = %v, want %v within 5s", got, want)
}

const googlebot = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"

func TestBypassPathsAndCIDRs(t *testing.T) {
	dir := t.TempDir()
	ranges := filepath.Join(dir, "googlebot.json")
	mustNil(t, os.WriteFile(ranges, []byte(`{"creationTime":"2025-01-01","prefixes":[{"ipv6Prefix":"2001:4860:4801:10::/64"},{"ipv4Prefix":"66.249.64.0/27"}]}`), 0o644))
	text := filepath.Join(dir, "monitors.txt")
	mustNil(t, os.WriteFile(text, []byte("# uptime monitor\n192.0.2.7\n198.18.0.0/15 # lab\n"), 0o644))
	b, err := challenge.NewBypass(challenge.BypassOptions{
		Paths:             append([]string{"/v2/", "/exact", "/api/*"}, challenge.DefaultBypassPaths...),
		CIDRs:             []netip.Prefix{netip.MustParsePrefix("203.0.113.0/24")},
		CrawlerRangeFiles: []string{ranges, text},
		Crawlers:          []challenge.Crawler{},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	for _, tc := range []struct {
		name, path, ip string
		want           challenge.BypassReason
	}{
		{"page", "/news", "198.51.100.1", challenge.BypassNone},
		{"robots", "/robots.txt", "198.51.100.1", challenge.BypassPath},
		{"robots-prefix-only", "/robots.txt.bak", "198.51.100.1", challenge.BypassNone},
		{"well-known", "/.well-known/security.txt", "198.51.100.1", challenge.BypassPath},
		{"api", "/api/v1/items", "198.51.100.1", challenge.BypassPath},
		{"api-bare", "/api", "198.51.100.1", challenge.BypassNone},
		{"rss-suffix", "/news/latest.rss", "198.51.100.1", challenge.BypassPath},
		{"feed", "/feed/", "198.51.100.1", challenge.BypassPath},
		{"sitemap-glob", "/sitemap-news.xml", "198.51.100.1", challenge.BypassPath},
		{"sitemap-glob-suffix", "/sitemap-news.html", "198.51.100.1", challenge.BypassNone},
		{"glob-no-overlap", "/sitemap.xm", "198.51.100.1", challenge.BypassNone},
		{"trailing-slash-prefix", "/v2/items", "198.51.100.1", challenge.BypassPath},
		{"exact", "/exact", "198.51.100.1", challenge.BypassPath},
		{"exact-only", "/exact/more", "198.51.100.1", challenge.BypassNone},
		{"cidr", "/news", "203.0.113.200", challenge.BypassCIDR},
		{"cidr-mapped", "/news", "::ffff:203.0.113.200", challenge.BypassCIDR},
		{"crawler-v4-range", "/news", "66.249.64.10", challenge.BypassCrawlerRange},
		{"crawler-v4-outside", "/news", "66.249.64.40", challenge.BypassNone},
		{"crawler-v6-range", "/news", "2001:4860:4801:10::1", challenge.BypassCrawlerRange},
		{"text-address", "/news", "192.0.2.7", challenge.BypassCrawlerRange},
		{"text-prefix", "/news", "198.19.1.1", challenge.BypassCrawlerRange},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := b.Match(bypassReq(tc.path, googlebot), netip.MustParseAddr(tc.ip)); got != tc.want {
				t.Errorf("Match(%s from %s) = %v, want %v", tc.path, tc.ip, got, tc.want)
			}
		})
	}
	if st := b.Stats(); st.CrawlerRanges != 4 {
		t.Errorf("CrawlerRanges = %d, want 4", st.CrawlerRanges)
	}
	// Reload swaps the ranges; a broken file keeps the old ones.
	mustNil(t, os.WriteFile(text, []byte("not a prefix\n"), 0o644))
	if err := b.Reload(); err == nil {
		t.Error("Reload of a broken file succeeded")
	}
	if got := b.Match(bypassReq("/", ""), netip.MustParseAddr("192.0.2.7")); got != challenge.BypassCrawlerRange {
		t.Errorf("after a failed reload: %v, want the old ranges", got)
	}
}

func TestBypassCrawlerDNS(t *testing.T) {
	genuine := netip.MustParseAddr("66.249.66.1")
	spoofPTR := netip.MustParseAddr("198.51.100.66")    // PTR claims googlebot.com, forward disagrees
	otherDomain := netip.MustParseAddr("198.51.100.77") // PTR elsewhere
	res := &fakeResolver{
		ptr: map[string][]string{
			"66.249.66.1":   {"crawl-66-249-66-1.googlebot.com."},
			"198.51.100.66": {"crawl-1.googlebot.com."},
			"198.51.100.77": {"host.evil-googlebot.com."},
		},
		fwd: map[string][]netip.Addr{
			"crawl-66-249-66-1.googlebot.com": {genuine},
			"crawl-1.googlebot.com":           {netip.MustParseAddr("66.249.66.2")},
			"host.evil-googlebot.com":         {otherDomain},
		},
	}
	clock := newClock()
	b, err := challenge.NewBypass(challenge.BypassOptions{Resolver: res, Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	// A browser is never looked up.
	if got := b.Match(bypassReq("/", testUA), genuine); got != challenge.BypassNone || res.count() != 0 {
		t.Fatalf("browser UA: %v after %d lookups", got, res.count())
	}
	// The genuine crawler is not bypassed on its first request (no DNS on
	// the request path), then is, from the cache.
	if got := b.Match(bypassReq("/", googlebot), genuine); got != challenge.BypassNone {
		t.Fatalf("first request: %v, want none while the lookup runs", got)
	}
	eventually(t, challenge.BypassCrawlerDNS, func() challenge.BypassReason { return b.Match(bypassReq("/", googlebot), genuine) })
	calls := res.count()
	for range 10 {
		b.Match(bypassReq("/", googlebot), genuine)
	}
	if res.count() != calls {
		t.Errorf("cached verdict looked up again (%d -> %d calls)", calls, res.count())
	}
	// Impostors are refused, and remembered.
	for _, ip := range []netip.Addr{spoofPTR, otherDomain, netip.MustParseAddr("198.51.100.99")} {
		b.Match(bypassReq("/", googlebot), ip)
		deadline := time.Now().Add(5 * time.Second)
		for b.Stats().Pending > 0 && time.Now().Before(deadline) {
			time.Sleep(time.Millisecond)
		}
		if got := b.Match(bypassReq("/", googlebot), ip); got != challenge.BypassNone {
			t.Errorf("impostor %v: %v", ip, got)
		}
	}
	st := b.Stats()
	if st.Verified != 1 || st.Refused != 3 {
		t.Errorf("stats %+v, want 1 verified, 3 refused", st)
	}
	// Verdicts expire: after the negative TTL the impostor is looked up
	// again.
	before := res.count()
	clock.Advance(2 * time.Hour)
	b.Match(bypassReq("/", googlebot), spoofPTR)
	deadline := time.Now().Add(5 * time.Second)
	for res.count() == before && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if res.count() == before {
		t.Error("expired verdict not looked up again")
	}
}

func TestBypassBounded(t *testing.T) {
	res := &fakeResolver{ptr: map[string][]string{}, fwd: map[string][]netip.Addr{}, block: make(chan struct{})}
	b, err := challenge.NewBypass(challenge.BypassOptions{Resolver: res, MaxPendingLookups: 4, LookupWorkers: 1, DNSCacheSize: 16})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	// A flood of fake crawlers while DNS hangs: the queue stays bounded.
	for i := range 100 {
		b.Match(bypassReq("/", googlebot), netip.AddrFrom4([4]byte{198, 51, 100, byte(i)}))
	}
	st := b.Stats()
	if st.Pending > 4+1 || st.Dropped < 90 {
		t.Errorf("pending %d dropped %d, want <= 5 (4 queued, 1 running) and >= 90", st.Pending, st.Dropped)
	}
	close(res.block)
	// After DNS recovers, the cache never outgrows its capacity.
	for i := range 200 {
		ip := netip.AddrFrom4([4]byte{192, 0, byte(i >> 8), byte(i)})
		b.Match(bypassReq("/", googlebot), ip)
		deadline := time.Now().Add(5 * time.Second)
		for b.Stats().Pending > 0 && time.Now().Before(deadline) {
			time.Sleep(time.Millisecond)
		}
	}
	if st := b.Stats(); st.DNSCacheEntries > st.DNSCacheCapacity || st.DNSCacheEntries == 0 {
		t.Errorf("cache %d of %d", st.DNSCacheEntries, st.DNSCacheCapacity)
	}
}

func TestBypassOptionsValidation(t *testing.T) {
	for _, o := range []challenge.BypassOptions{
		{Paths: []string{"relative"}},
		{Paths: []string{"/a*b*"}},
		{CIDRs: []netip.Prefix{{}}},
		{Crawlers: []challenge.Crawler{{Name: "x"}}},
		{DNSCacheSize: 1},
		{CrawlerRangeFiles: []string{"/nonexistent/ranges.txt"}},
		{LookupTimeout: -1},
	} {
		if b, err := challenge.NewBypass(o); err == nil {
			b.Close()
			t.Errorf("NewBypass(%+v) succeeded", o)
		}
	}
}

func BenchmarkBypassMatch(b *testing.B) {
	bp, err := challenge.NewBypass(challenge.BypassOptions{CIDRs: []netip.Prefix{netip.MustParsePrefix("203.0.113.0/24")}, Resolver: &fakeResolver{}})
	if err != nil {
		b.Fatal(err)
	}
	defer bp.Close()
	r := bypassReq("/news/today", benchUA)
	ip := netip.MustParseAddr("198.51.100.1")
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if bp.Match(r, ip) != challenge.BypassNone {
				b.Fatal("matched")
			}
		}
	})
}

// FuzzParseCrawlerRanges checks the range file parser never panics and
// returns only valid, masked prefixes.
func FuzzParseCrawlerRanges(f *testing.F) {
	f.Add([]byte(`{"prefixes":[{"ipv4Prefix":"66.249.64.0/27"},{"ipv6Prefix":"2001:4860:4801:10::/64"}]}`))
	f.Add([]byte("# c\n192.0.2.1\n198.18.0.0/15 # x\n\n::1\n"))
	f.Add([]byte(`{"prefixes":[{"ipv4Prefix":"1.2.3.4/33"}]}`))
	f.Add([]byte(`{"prefixes":[{}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		ps, err := challenge.ParseCrawlerRanges(bytes.NewReader(b))
		if err != nil {
			return
		}
		for _, p := range ps {
			if !p.IsValid() || p != p.Masked() {
				t.Fatalf("invalid prefix %v from %q", p, strings.TrimSpace(string(b)))
			}
		}
	})
}
