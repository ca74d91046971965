package sim

import (
	"bytes"
	"compress/gzip"
	"compress/zlib"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/cookiejar"
	"net/netip"
	"net/url"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/rampart-shield/rampart/internal/demo"
)

// profile is a real browser's request headers. A Chromium browser also
// sends client hints: secChUa, chPlatform and mobile.
type profile struct {
	name, ua, acceptNav, acceptCSS, acceptImg, lang, encoding string
	chromium, mobile                                          bool
	secChUa, chPlatform                                       string
}

// setCommon sets the headers a browser sends with every request.
func (p profile) setCommon(h http.Header) {
	h.Set("User-Agent", p.ua)
	h.Set("Accept-Language", p.lang)
	h.Set("Accept-Encoding", p.encoding)
	if p.chromium {
		h.Set("Sec-Ch-Ua", p.secChUa)
		if p.mobile {
			h.Set("Sec-Ch-Ua-Mobile", "?1")
		} else {
			h.Set("Sec-Ch-Ua-Mobile", "?0")
		}
		h.Set("Sec-Ch-Ua-Platform", p.chPlatform)
	}
}

var profiles = []profile{
	{name: "chrome", chromium: true,
		ua:        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/138.0.0.0 Safari/537.36",
		acceptNav: "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,image/apng,*/*;q=0.8,application/signed-exchange;v=b3;q=0.7",
		acceptCSS: "text/css,*/*;q=0.1", acceptImg: "image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8",
		lang: "en-GB,en;q=0.9", encoding: "gzip, deflate, br, zstd",
		secChUa: `"Not)A;Brand";v="8", "Chromium";v="138", "Google Chrome";v="138"`, chPlatform: `"Windows"`},
	{name: "firefox",
		ua:        "Mozilla/5.0 (X11; Linux x86_64; rv:140.0) Gecko/20100101 Firefox/140.0",
		acceptNav: "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
		acceptCSS: "text/css,*/*;q=0.1", acceptImg: "image/avif,image/webp,image/png,image/svg+xml,image/*;q=0.8,*/*;q=0.5",
		lang: "fr-FR,fr;q=0.8,en-US;q=0.5,en;q=0.3", encoding: "gzip, deflate, br, zstd"},
	{name: "safari",
		ua:        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.5 Safari/605.1.15",
		acceptNav: "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
		acceptCSS: "text/css,*/*;q=0.1", acceptImg: "image/webp,image/avif,image/jxl,image/heic,image/heic-sequence,video/*;q=0.8,image/png,image/svg+xml,image/*;q=0.8,*/*;q=0.5",
		lang: "de-DE,de;q=0.9", encoding: "gzip, deflate, br"},
}

// dest is what a request fetches, as in Sec-Fetch-Dest.
type dest uint8

const (
	destDocument dest = iota
	destStyle
	destScript
	destImage
)

// browser is one simulated browser: its own source address, cookie jar,
// connections and headers. A browser is used by one goroutine.
type browser struct {
	r       *runner
	role    int
	js      bool
	prof    profile
	client  *http.Client
	rng     *rand.Rand
	lat     *latencies // legit only
	reqCtx  context.Context
	visited bool // a navigation happened (Sec-Fetch-Site)
	cache   map[string]time.Time
}

func (r *runner) newBrowser(role, idx int, src netip.Addr, js bool, lat *latencies) *browser {
	jar, _ := cookiejar.New(nil) // never fails without options
	b := &browser{
		r:     r,
		role:  role,
		js:    js,
		prof:  profiles[idx%len(profiles)],
		rng:   rand.New(rand.NewPCG(r.cfg.Seed, uint64(role)<<32|uint64(idx))),
		lat:   lat,
		cache: make(map[string]time.Time),
	}
	timeout := r.cfg.LegitTimeout
	b.reqCtx = r.hardCtx
	if role == roleAttack {
		timeout = r.cfg.AttackTimeout
		b.reqCtx = r.loadCtx
	}
	b.client = &http.Client{Transport: r.transport(src, 6), Jar: jar, Timeout: timeout, CheckRedirect: r.sameTargetRedirects}
	return b
}

func (b *browser) close() { b.client.CloseIdleConnections() }

func (b *browser) newRequest(ctx context.Context, method, path string, body []byte, d dest, referer string) (*http.Request, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, b.r.target.Base()+path, rd)
	if err != nil {
		return nil, err
	}
	h := req.Header
	p := b.prof
	p.setCommon(h)
	site := "same-origin"
	switch d {
	case destDocument:
		h.Set("Accept", p.acceptNav)
		h.Set("Upgrade-Insecure-Requests", "1")
		h.Set("Sec-Fetch-Mode", "navigate")
		h.Set("Sec-Fetch-Dest", "document")
		h.Set("Sec-Fetch-User", "?1")
		if !b.visited {
			site = "none"
		}
	case destStyle:
		h.Set("Accept", p.acceptCSS)
		h.Set("Sec-Fetch-Mode", "no-cors")
		h.Set("Sec-Fetch-Dest", "style")
	case destScript:
		h.Set("Accept", "*/*")
		h.Set("Sec-Fetch-Mode", "no-cors")
		h.Set("Sec-Fetch-Dest", "script")
	case destImage:
		h.Set("Accept", p.acceptImg)
		h.Set("Sec-Fetch-Mode", "no-cors")
		h.Set("Sec-Fetch-Dest", "image")
	}
	h.Set("Sec-Fetch-Site", site)
	if referer != "" {
		h.Set("Referer", b.r.target.Base()+referer)
	}
	if body != nil {
		h.Set("Content-Type", "application/x-www-form-urlencoded")
		h.Set("Origin", b.r.target.Base())
	}
	h.Set(demo.RoleHeader, roleNames[b.role])
	return req, nil
}

// fetch performs one logical request: it follows redirects and, for a
// JS-capable browser with a solver, solves a challenge and asks again (at
// most twice). It returns the decoded body of the final answer and whether
// it succeeded (2xx or 304). Legit outcomes are recorded in b.lat.
//
// No logical request starts once ctx (the load) has ended. One that has
// started runs to its outcome under b.reqCtx: for legitimate visitors the
// run's hard deadline, so that a request the target leaves hanging at the
// end is counted as the failure it is, not dropped; for attackers the load
// itself.
func (b *browser) fetch(ctx context.Context, method, path string, body []byte, d dest, referer string) ([]byte, bool) {
	if ctx.Err() != nil {
		return nil, false
	}
	rctx := b.reqCtx
	start := time.Now()
	for attempt := 0; ; attempt++ {
		if !b.r.take() {
			return nil, false
		}
		if b.role == roleAttack {
			b.r.attackSent.Add(1)
		}
		req, err := b.newRequest(rctx, method, path, body, d, referer)
		if err != nil {
			b.r.log.Error("building a request", "path", path, "err", err)
			return nil, false
		}
		resp, err := b.client.Do(req)
		if err != nil {
			if rctx.Err() != nil {
				return nil, false // the run is over: not the target's doing
			}
			b.r.record(b.role, nil, err)
			b.done(start, false)
			return nil, false
		}
		if d == destDocument {
			b.visited = true
		}
		data, rerr := readBody(resp)
		resp.Body.Close()
		if rerr != nil && rctx.Err() != nil {
			return nil, false
		}
		b.r.record(b.role, resp, rerr)
		if rerr != nil {
			b.done(start, false)
			return nil, false
		}
		if resp.StatusCode == http.StatusForbidden && resp.Header.Get("Rampart-Mitigated") == "challenge" {
			b.noteChallenged()
			if b.js && b.r.cfg.Solver != nil && attempt < 2 && b.solve(rctx, resp, data) {
				continue
			}
			if rctx.Err() != nil {
				return nil, false
			}
			b.done(start, false)
			return data, false
		}
		ok := resp.StatusCode/100 == 2 || resp.StatusCode == http.StatusNotModified
		b.noteCache(path, resp)
		b.done(start, ok)
		return data, ok
	}
}

func (b *browser) done(start time.Time, ok bool) {
	if b.lat != nil {
		b.lat.add(time.Since(start), ok)
	}
}

func (b *browser) noteChallenged() {
	switch {
	case b.role == roleAttack:
	case b.js:
		b.r.challenged.Add(1)
	default:
		b.r.challengedNoJS.Add(1)
	}
}

// solve runs the solver on the browser's thread, measuring its CPU time.
func (b *browser) solve(ctx context.Context, resp *http.Response, body []byte) bool {
	runtime.LockOSThread()
	before := threadCPU()
	err := b.r.cfg.Solver.Solve(ctx, b.client, resp, body)
	cpu := threadCPU() - before
	runtime.UnlockOSThread()
	if err != nil {
		if ctx.Err() == nil {
			b.r.stat[b.role].add("error:solve", 1)
		}
		return false
	}
	if b.role == roleAttack {
		b.r.solves.Add(1)
		b.r.solveCPU.Add(int64(cpu))
	} else {
		b.r.solvedJS.Add(1)
	}
	return true
}

// threadCPU is the CPU time of the calling OS thread.
func threadCPU() time.Duration {
	const rusageThread = 1 // RUSAGE_THREAD, Linux
	var ru syscall.Rusage
	if err := syscall.Getrusage(rusageThread, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// maxBody bounds what a simulated client reads of one answer.
const maxBody = 4 << 20

// readBody reads at most maxBody bytes of resp's body, undoing gzip and
// deflate (other encodings are returned as they are).
func readBody(resp *http.Response) ([]byte, error) {
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return nil, err
	}
	var zr io.ReadCloser
	switch strings.ToLower(resp.Header.Get("Content-Encoding")) {
	case "gzip":
		zr, err = gzip.NewReader(bytes.NewReader(raw))
	case "deflate":
		zr, err = zlib.NewReader(bytes.NewReader(raw))
	default:
		return raw, nil
	}
	if err != nil {
		return nil, fmt.Errorf("decoding %s body: %w", resp.Header.Get("Content-Encoding"), err)
	}
	defer zr.Close()
	return io.ReadAll(io.LimitReader(zr, maxBody))
}

var (
	articleLink = regexp.MustCompile(`href="(/news/[0-9]+)"`)
	assetLink   = regexp.MustCompile(`(?:href|src)="(/static/[^"?#]{1,200})"`)
)

// links returns the article links and static assets of an HTML page (first
// 256 KiB only).
func links(page []byte) (articles, assets []string) {
	if len(page) > 256<<10 {
		page = page[:256<<10]
	}
	for _, m := range articleLink.FindAllSubmatch(page, 200) {
		articles = append(articles, string(m[1]))
	}
	seen := map[string]bool{}
	for _, m := range assetLink.FindAllSubmatch(page, 50) {
		if s := string(m[1]); !seen[s] {
			seen[s] = true
			assets = append(assets, s)
		}
	}
	return articles, assets
}

// noteCache remembers a static answer's max-age, as a browser cache would.
func (b *browser) noteCache(path string, resp *http.Response) {
	if !strings.HasPrefix(path, "/static/") || resp.StatusCode != http.StatusOK {
		return
	}
	if age, ok := maxAge(resp.Header.Get("Cache-Control")); ok && age > 0 {
		b.cache[path] = time.Now().Add(age)
	}
}

// maxAge parses the max-age directive of a Cache-Control value.
func maxAge(cc string) (time.Duration, bool) {
	for _, d := range strings.Split(cc, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(d), "=")
		if !ok || !strings.EqualFold(k, "max-age") {
			continue
		}
		n, err := strconv.ParseInt(strings.Trim(v, `"`), 10, 32)
		if err != nil || n < 0 {
			return 0, false
		}
		return time.Duration(n) * time.Second, true
	}
	return 0, false
}

// loadAssets fetches the page's static assets that are not fresh in the
// browser's cache, as a browser does after a navigation.
func (b *browser) loadAssets(ctx context.Context, assets []string, page string) {
	for _, a := range assets {
		if exp, ok := b.cache[a]; ok && time.Now().Before(exp) {
			continue
		}
		d := destImage
		switch {
		case strings.HasSuffix(a, ".css"):
			d = destStyle
		case strings.HasSuffix(a, ".js"):
			d = destScript
		}
		b.fetch(ctx, http.MethodGet, a, nil, d, page)
		if ctx.Err() != nil {
			return
		}
	}
}

// searchWords are what visitors and bots search for.
var searchWords = []string{"budget", "tram", "library", "flood", "election", "school", "recycling", "housing", "air quality", "opening hours"}

// visit is a legitimate visitor's session until ctx ends: it may sign in,
// then reads the front page and articles, loads their assets, searches now
// and then, sometimes comments, with think time between pages.
func (b *browser) visit(ctx context.Context) {
	defer b.close()
	if !wait(ctx, b.think()/2) { // stagger the start
		return
	}
	if b.rng.IntN(10) == 0 {
		b.fetch(ctx, http.MethodPost, "/login", []byte("user=reader&password=secret"), destDocument, "/")
		if !wait(ctx, b.think()) {
			return
		}
	}
	next, prev := "/", ""
	for ctx.Err() == nil {
		page, ok := b.fetch(ctx, http.MethodGet, next, nil, destDocument, prev)
		var articles []string
		if ok {
			var assets []string
			articles, assets = links(page)
			b.loadAssets(ctx, assets, next)
		}
		if !wait(ctx, b.think()) {
			return
		}
		prev = next
		switch n := b.rng.IntN(100); {
		case n < 60 && len(articles) > 0:
			next = articles[b.rng.IntN(len(articles))]
		case n < 75:
			next = fmt.Sprintf("/news/%d", 1+b.rng.IntN(demo.DefaultArticles))
		case n < 85:
			next = "/search?q=" + url.QueryEscape(searchWords[b.rng.IntN(len(searchWords))])
		case n < 90 && strings.HasPrefix(prev, "/news/"):
			b.fetch(ctx, http.MethodPost, "/api/comments", []byte("c=Thank+you+for+the+update"), destDocument, prev)
			next = prev
		default:
			next = "/"
		}
	}
}

func (b *browser) think() time.Duration {
	lo, hi := b.r.cfg.ThinkMin, b.r.cfg.ThinkMax
	if hi <= lo {
		return lo
	}
	return lo + time.Duration(b.rng.Int64N(int64(hi-lo)))
}

// botnet is a browser-botnet member: cookies and challenge solving like a
// browser, then pages and searches at a.Rate per second (on a's schedule)
// until ctx ends.
func (b *browser) botnet(ctx context.Context, a Attack) {
	defer b.close()
	b.r.paceAttack(ctx, a, 0, b.rng, func(int) bool {
		if b.rng.IntN(2) == 0 {
			b.fetch(ctx, http.MethodGet, fmt.Sprintf("/news/%d", 1+b.rng.IntN(demo.DefaultArticles)), nil, destDocument, "")
		} else {
			b.fetch(ctx, http.MethodGet, "/search?q="+url.QueryEscape(searchWords[b.rng.IntN(len(searchWords))]), nil, destDocument, "")
		}
		return true
	})
}

// pace calls send rate times a second (starting at a random phase) until
// ctx ends or send returns false. A send that overruns its slot delays the
// next one; the schedule never bursts to catch up by more than one slot.
func pace(ctx context.Context, rate float64, rng *rand.Rand, send func() bool) {
	if rate <= 0 {
		return
	}
	interval := time.Duration(float64(time.Second) / rate)
	next := time.Now().Add(time.Duration(rng.Int64N(int64(interval) + 1)))
	for {
		if !wait(ctx, time.Until(next)) {
			return
		}
		if !send() || ctx.Err() != nil {
			return
		}
		next = next.Add(interval)
		if now := time.Now(); now.Sub(next) > interval {
			next = now
		}
	}
}
