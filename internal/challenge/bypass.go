package challenge

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gaissmai/bart"
)

// BypassReason says why a request may skip the challenge. Its String form
// is a stable metrics label.
type BypassReason uint8

const (
	// BypassNone: no allow list matched; the request is challenged as usual.
	BypassNone BypassReason = iota
	// BypassPath: the path is allow-listed (feeds, robots.txt, an API).
	BypassPath
	// BypassCIDR: the client is in an allow-listed network (monitoring,
	// partners, configured good bots).
	BypassCIDR
	// BypassCrawlerRange: the client is in a crawler's published IP ranges.
	BypassCrawlerRange
	// BypassCrawlerDNS: the client claims a crawler's User-Agent and its
	// address was verified by forward-confirmed reverse DNS.
	BypassCrawlerDNS
	// NumBypassReasons is the number of reasons, for arrays and metrics.
	NumBypassReasons
)

var bypassNames = [NumBypassReasons]string{"none", "path", "cidr", "crawler-range", "crawler-dns"}

// String returns the metrics label of r.
func (r BypassReason) String() string {
	if r < NumBypassReasons {
		return bypassNames[r]
	}
	return fmt.Sprintf("bypass(%d)", uint8(r))
}

// GoodBot reports whether the reason is a verified crawler (for
// verdict.Facts.GoodBot; the other reasons set Facts.Allowlisted).
func (r BypassReason) GoodBot() bool { return r == BypassCrawlerRange || r == BypassCrawlerDNS }

// Crawler names a search-engine crawler that may be verified by reverse
// DNS: a request whose User-Agent contains one of UserAgent is looked up,
// and passes if its address's PTR name lies in one of Domains and that name
// resolves back to the address.
type Crawler struct {
	Name      string
	UserAgent []string
	Domains   []string
}

// DefaultCrawlers are the crawlers whose operators document reverse-DNS
// verification.
var DefaultCrawlers = []Crawler{
	{Name: "google", UserAgent: []string{"Googlebot", "Google-InspectionTool", "GoogleOther", "Storebot-Google", "AdsBot-Google", "Mediapartners-Google"},
		Domains: []string{"googlebot.com", "google.com", "googleusercontent.com"}},
	{Name: "bing", UserAgent: []string{"bingbot", "BingPreview", "msnbot", "adidxbot"}, Domains: []string{"search.msn.com"}},
	{Name: "apple", UserAgent: []string{"Applebot"}, Domains: []string{"applebot.apple.com"}},
	{Name: "yandex", UserAgent: []string{"YandexBot", "YandexImages", "YandexMobileBot"}, Domains: []string{"yandex.ru", "yandex.net", "yandex.com"}},
	{Name: "baidu", UserAgent: []string{"Baiduspider"}, Domains: []string{"baidu.com", "baidu.jp"}},
}

// DefaultBypassPaths are the paths that never get a challenge unless
// BypassOptions.Paths says otherwise: machine-read files that browsers do
// not navigate to (the configuration's challenge.bypass_paths default is
// its own list). APIs are not among them: login, registration and search
// APIs are what floods against news and government sites aim at; an API
// used by non-browser clients is added by the operator. Note that "/feed*"
// also matches "/feedback".
var DefaultBypassPaths = []string{"/.well-known/*", "/robots.txt", "/favicon.ico", "/sitemap*.xml", "*.rss", "/feed*", "/rss*", "/atom*"}

// Resolver is the DNS the crawler verification uses; *net.Resolver
// satisfies it, and tests replace it.
type Resolver interface {
	LookupAddr(ctx context.Context, addr string) ([]string, error)
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
}

// BypassOptions configures a Bypass. Zero fields take the documented
// defaults.
type BypassOptions struct {
	// Paths skip the challenge. A pattern holds at most one '*', which
	// matches any run of characters ("/api/*", "*.rss", "/sitemap*.xml");
	// a pattern without one matches exactly, or as a prefix when it ends
	// in "/". nil takes DefaultBypassPaths; an empty non-nil slice allows
	// none. Paths skip only the challenge, never the rate limits.
	Paths []string
	// CIDRs are networks that skip the challenge (monitoring, partners).
	CIDRs []netip.Prefix
	// CrawlerRangeFiles are files of published crawler ranges: the JSON
	// the large search engines publish ({"prefixes":[{"ipv4Prefix":…},
	// {"ipv6Prefix":…}]}) or one CIDR or address per line (# comments).
	// Reload re-reads them.
	CrawlerRangeFiles []string
	// Crawlers are verified by forward-confirmed reverse DNS; nil takes
	// DefaultCrawlers, an empty non-nil slice turns DNS verification off.
	Crawlers []Crawler
	// Resolver does the lookups; default net.DefaultResolver.
	Resolver Resolver
	// DNSCacheSize is the number of verdicts remembered (by address);
	// default 8192. The oldest entry is evicted when full.
	DNSCacheSize int
	// DNSPositiveTTL and DNSNegativeTTL are how long a verified and a
	// refused address are remembered; defaults 24h and 1h. Lookup errors
	// (timeouts, SERVFAIL) are remembered for a minute.
	DNSPositiveTTL, DNSNegativeTTL time.Duration
	// LookupTimeout bounds one verification (PTR plus forward lookups);
	// default 3s.
	LookupTimeout time.Duration
	// MaxPendingLookups bounds the verifications queued at once (plus
	// LookupWorkers running); default 64. Past it, new claimants are not looked up (counted as dropped)
	// until the queue drains: a flood of fake crawlers cannot make us a DNS
	// amplifier.
	MaxPendingLookups int
	// LookupWorkers is the number of goroutines doing lookups; default 2.
	LookupWorkers int
	// Now is the clock; default time.Now.
	Now func() time.Time
	// Logger receives load and lookup errors; default discards.
	Logger *slog.Logger
}

// Bypass decides which requests skip the challenge: allow-listed paths,
// allow-listed networks, and verified crawlers, by published ranges or by
// forward-confirmed reverse DNS. Reverse DNS never runs on the request path:
// Match answers from the cache and queues a lookup on a miss, so a crawler's
// first request is treated like any other (challenged, with a plain 403 for
// non-navigations) and later ones pass once verified. Match is safe for
// concurrent use and does not allocate. Close stops the lookup workers.
type Bypass struct {
	o      BypassOptions
	exact  map[string]bool
	globs  []pathGlob
	cidrs  *bart.Lite
	ranges atomic.Pointer[bart.Lite]

	mu      sync.Mutex
	cache   map[netip.Addr]dnsVerdict
	order   []netip.Addr // FIFO ring for eviction
	next    int
	pending map[netip.Addr]bool
	queue   chan lookupJob
	stop    chan struct{}
	wg      sync.WaitGroup

	lookups, dropped, verified, refused atomic.Uint64
}

type dnsVerdict struct {
	ok      bool
	expires int64 // unix nanos
}

type lookupJob struct {
	ip      netip.Addr
	crawler int
}

// NewBypass validates o, loads the crawler range files and starts the
// lookup workers.
func NewBypass(o BypassOptions) (*Bypass, error) {
	if o.Paths == nil {
		o.Paths = DefaultBypassPaths
	}
	if o.Crawlers == nil {
		o.Crawlers = DefaultCrawlers
	}
	if o.Resolver == nil {
		o.Resolver = net.DefaultResolver
	}
	def := func(v *int, d, lo, hi int, name string) error {
		if *v == 0 {
			*v = d
		}
		if *v < lo || *v > hi {
			return fmt.Errorf("%w: %s %d, want %d..%d", errOptions, name, *v, lo, hi)
		}
		return nil
	}
	if err := errors.Join(
		def(&o.DNSCacheSize, 8192, 16, 1<<22, "DNSCacheSize"),
		def(&o.MaxPendingLookups, 64, 1, 1<<16, "MaxPendingLookups"),
		def(&o.LookupWorkers, 2, 1, 64, "LookupWorkers"),
	); err != nil {
		return nil, err
	}
	for _, d := range []*time.Duration{&o.DNSPositiveTTL, &o.DNSNegativeTTL, &o.LookupTimeout} {
		if *d < 0 {
			return nil, fmt.Errorf("%w: negative duration in BypassOptions", errOptions)
		}
	}
	if o.DNSPositiveTTL == 0 {
		o.DNSPositiveTTL = 24 * time.Hour
	}
	if o.DNSNegativeTTL == 0 {
		o.DNSNegativeTTL = time.Hour
	}
	if o.LookupTimeout == 0 {
		o.LookupTimeout = 3 * time.Second
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	b := &Bypass{
		o:       o,
		exact:   map[string]bool{},
		cidrs:   new(bart.Lite),
		cache:   make(map[netip.Addr]dnsVerdict, o.DNSCacheSize),
		order:   make([]netip.Addr, o.DNSCacheSize),
		pending: map[netip.Addr]bool{},
		queue:   make(chan lookupJob, o.MaxPendingLookups),
		stop:    make(chan struct{}),
	}
	for _, p := range o.Paths {
		if p == "" || (p[0] != '/' && p[0] != '*') || strings.Count(p, "*") > 1 {
			return nil, fmt.Errorf("%w: bypass path %q must start with / or * and hold at most one *", errOptions, p)
		}
		switch before, after, star := strings.Cut(p, "*"); {
		case star:
			b.globs = append(b.globs, pathGlob{before, after})
		case strings.HasSuffix(p, "/"):
			b.globs = append(b.globs, pathGlob{p, ""})
		default:
			b.exact[p] = true
		}
	}
	for _, c := range o.CIDRs {
		if !c.IsValid() {
			return nil, fmt.Errorf("%w: invalid bypass CIDR %v", errOptions, c)
		}
		b.cidrs.Insert(c.Masked())
	}
	for _, c := range o.Crawlers {
		if len(c.UserAgent) == 0 || len(c.Domains) == 0 {
			return nil, fmt.Errorf("%w: crawler %q needs User-Agent tokens and domains", errOptions, c.Name)
		}
	}
	if err := b.Reload(); err != nil {
		return nil, err
	}
	for range o.LookupWorkers {
		b.wg.Add(1)
		go b.worker()
	}
	return b, nil
}

// Reload re-reads the crawler range files and swaps them in whole; on error
// the old ranges stay.
func (b *Bypass) Reload() error {
	t := new(bart.Lite)
	for _, name := range b.o.CrawlerRangeFiles {
		f, err := os.Open(name)
		if err != nil {
			return fmt.Errorf("challenge: opening crawler ranges: %w", err)
		}
		ps, err := ParseCrawlerRanges(io.LimitReader(f, 16<<20))
		f.Close()
		if err != nil {
			return fmt.Errorf("challenge: %s: %w", name, err)
		}
		for _, p := range ps {
			t.Insert(p)
		}
	}
	b.ranges.Store(t)
	return nil
}

// ParseCrawlerRanges reads published crawler ranges: the JSON format of
// the large search engines ({"prefixes":[{"ipv4Prefix":"66.249.64.0/27"},
// {"ipv6Prefix":"2001:4860:4801:10::/64"}]}) or text with one CIDR or
// address per line, '#' starting a comment.
func ParseCrawlerRanges(r io.Reader) ([]netip.Prefix, error) {
	br := bufio.NewReader(r)
	first, _ := br.Peek(64)
	if s := strings.TrimSpace(string(first)); strings.HasPrefix(s, "{") {
		var doc struct {
			Prefixes []struct {
				V4 string `json:"ipv4Prefix"`
				V6 string `json:"ipv6Prefix"`
			} `json:"prefixes"`
		}
		if err := json.NewDecoder(br).Decode(&doc); err != nil {
			return nil, fmt.Errorf("parsing crawler ranges JSON: %w", err)
		}
		out := make([]netip.Prefix, 0, len(doc.Prefixes))
		for i, p := range doc.Prefixes {
			s := p.V4 + p.V6
			if p.V4 != "" && p.V6 != "" || s == "" {
				return nil, fmt.Errorf("crawler ranges entry %d: want one of ipv4Prefix, ipv6Prefix", i)
			}
			pf, err := netip.ParsePrefix(s)
			if err != nil {
				return nil, fmt.Errorf("crawler ranges entry %d: %w", i, err)
			}
			out = append(out, pf.Masked())
		}
		return out, nil
	}
	var out []netip.Prefix
	sc := bufio.NewScanner(br)
	for line := 1; sc.Scan(); line++ {
		s, _, _ := strings.Cut(sc.Text(), "#")
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		pf, err := netip.ParsePrefix(s)
		if err != nil {
			a, aerr := netip.ParseAddr(s)
			if aerr != nil {
				return nil, fmt.Errorf("line %d: %w", line, err)
			}
			pf = netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen())
		}
		out = append(out, pf.Masked())
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading crawler ranges: %w", err)
	}
	return out, nil
}

// Match reports whether r from ip skips the challenge, and why.
func (b *Bypass) Match(r *http.Request, ip netip.Addr) BypassReason {
	if b.matchPath(r.URL.Path) {
		return BypassPath
	}
	ip = ip.Unmap()
	if b.cidrs.Lookup(ip) {
		return BypassCIDR
	}
	if b.ranges.Load().Lookup(ip) {
		return BypassCrawlerRange
	}
	var ua string
	if v := r.Header["User-Agent"]; len(v) > 0 {
		ua = v[0]
	}
	c := b.claimedCrawler(ua)
	if c < 0 {
		return BypassNone
	}
	now := b.o.Now().UnixNano()
	b.mu.Lock()
	v, ok := b.cache[ip]
	if ok && now < v.expires {
		b.mu.Unlock()
		if v.ok {
			return BypassCrawlerDNS
		}
		return BypassNone
	}
	if !b.pending[ip] {
		select {
		case b.queue <- lookupJob{ip: ip, crawler: c}:
			b.pending[ip] = true
		default:
			b.dropped.Add(1)
		}
	}
	b.mu.Unlock()
	return BypassNone
}

// pathGlob matches paths that start with prefix and end with suffix.
type pathGlob struct{ prefix, suffix string }

func (b *Bypass) matchPath(p string) bool {
	if b.exact[p] {
		return true
	}
	for _, g := range b.globs {
		if len(p) >= len(g.prefix)+len(g.suffix) && strings.HasPrefix(p, g.prefix) && strings.HasSuffix(p, g.suffix) {
			return true
		}
	}
	return false
}

// claimedCrawler returns the index of the crawler ua claims to be, or -1.
func (b *Bypass) claimedCrawler(ua string) int {
	if ua == "" {
		return -1
	}
	for i, c := range b.o.Crawlers {
		for _, tok := range c.UserAgent {
			if strings.Contains(ua, tok) {
				return i
			}
		}
	}
	return -1
}

func (b *Bypass) worker() {
	defer b.wg.Done()
	for {
		select {
		case <-b.stop:
			return
		case job := <-b.queue:
			ok, err := b.verify(job)
			b.lookups.Add(1)
			ttl := b.o.DNSNegativeTTL
			switch {
			case err != nil:
				ttl = time.Minute
				b.refused.Add(1)
				b.o.Logger.Debug("challenge: crawler lookup failed", "ip", job.ip, "err", err)
			case ok:
				ttl = b.o.DNSPositiveTTL
				b.verified.Add(1)
			default:
				b.refused.Add(1)
			}
			b.store(job.ip, dnsVerdict{ok: ok, expires: b.o.Now().Add(ttl).UnixNano()})
		}
	}
}

// verify does the forward-confirmed reverse DNS check for one address.
func (b *Bypass) verify(job lookupJob) (bool, error) {
	ctx, cancel := context.WithTimeout(context.Background(), b.o.LookupTimeout)
	defer cancel()
	names, err := b.o.Resolver.LookupAddr(ctx, job.ip.String())
	if err != nil {
		var dnsErr *net.DNSError
		if errors.As(err, &dnsErr) && dnsErr.IsNotFound {
			return false, nil
		}
		return false, fmt.Errorf("reverse lookup: %w", err)
	}
	domains := b.o.Crawlers[job.crawler].Domains
	for i, name := range names {
		if i >= 4 {
			break // a PTR set this large is not a crawler's
		}
		name = strings.ToLower(strings.TrimSuffix(name, "."))
		if !inDomains(name, domains) {
			continue
		}
		addrs, err := b.o.Resolver.LookupNetIP(ctx, "ip", name)
		if err != nil {
			continue
		}
		for _, a := range addrs {
			if a.Unmap() == job.ip {
				return true, nil
			}
		}
	}
	return false, nil
}

func inDomains(name string, domains []string) bool {
	for _, d := range domains {
		if name == d || strings.HasSuffix(name, "."+d) {
			return true
		}
	}
	return false
}

// store records a verdict, evicting the oldest when the cache is full.
func (b *Bypass) store(ip netip.Addr, v dnsVerdict) {
	b.mu.Lock()
	defer b.mu.Unlock()
	delete(b.pending, ip)
	if _, ok := b.cache[ip]; !ok {
		if len(b.cache) >= b.o.DNSCacheSize {
			delete(b.cache, b.order[b.next])
		}
		b.order[b.next] = ip
		b.next = (b.next + 1) % len(b.order)
	}
	b.cache[ip] = v
}

// Close stops the lookup workers; Match keeps answering from the cache and
// queues nothing new once the queue is full.
func (b *Bypass) Close() {
	select {
	case <-b.stop:
	default:
		close(b.stop)
	}
	b.wg.Wait()
}

// BypassStats is a snapshot of a Bypass's counters and table sizes.
type BypassStats struct {
	// DNSCacheEntries and DNSCacheCapacity are the verdict cache's size and
	// fixed capacity; Pending is the lookups queued or running.
	DNSCacheEntries, DNSCacheCapacity, Pending int
	// Lookups counts finished verifications; Verified and Refused split
	// them; Dropped counts claimants not looked up because the queue was
	// full.
	Lookups, Verified, Refused, Dropped uint64
	// CrawlerRanges is the number of published crawler prefixes loaded.
	CrawlerRanges int
}

// Stats returns a snapshot of the counters.
func (b *Bypass) Stats() BypassStats {
	b.mu.Lock()
	st := BypassStats{DNSCacheEntries: len(b.cache), DNSCacheCapacity: b.o.DNSCacheSize, Pending: len(b.pending)}
	b.mu.Unlock()
	st.Lookups, st.Verified, st.Refused, st.Dropped = b.lookups.Load(), b.verified.Load(), b.refused.Load(), b.dropped.Load()
	st.CrawlerRanges = b.ranges.Load().Size()
	return st
}
