package sim

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/rampart-shield/rampart/internal/demo"
)

// built is one request of a technique, with its body read.
type built struct {
	req    *http.Request
	source int
	body   string
}

// buildRequests builds n requests of kind from each of sources sources,
// as floodSource does (same identity and rng per source), against target,
// in waves of wave requests when wave > 0.
func buildRequests(t *testing.T, target string, kind Kind, sources, n, wave int) []built {
	t.Helper()
	tg, err := ParseTarget(target)
	if err != nil {
		t.Fatal(err)
	}
	r := &runner{target: tg, cfg: Config{Seed: 1}}
	a := Attack{Kind: kind, Sources: sources, Rate: 0.2, Path: "/news/1"} // Path: for get-flood only
	var out []built
	for idx := range sources {
		rng := rand.New(rand.NewPCG(r.cfg.Seed, uint64(roleAttack)<<32|uint64(idx)))
		id := newFloodIdentity(a, idx, rng)
		for i := range n {
			w := 0
			if wave > 0 {
				w = i / wave
			}
			req, err := r.floodRequest(context.Background(), a, rng, id, w)
			if err != nil {
				t.Fatalf("%s: building request %d of source %d: %v", kind, i, idx, err)
			}
			b := built{req: req, source: idx}
			if req.Body != nil {
				data, err := io.ReadAll(req.Body)
				if err != nil {
					t.Fatal(err)
				}
				b.body = string(data)
			}
			out = append(out, b)
		}
	}
	return out
}

const testTarget = "http://127.0.0.1:8080/"

// checkCommon checks what every attack request must be: addressed to the
// target (whatever its Host header says) and labelled for the origin.
func checkCommon(t *testing.T, reqs []built) {
	t.Helper()
	for _, b := range reqs {
		if b.req.URL.Scheme != "http" || b.req.URL.Host != "127.0.0.1:8080" {
			t.Fatalf("request to %s, not the target", b.req.URL)
		}
		if got := b.req.Header.Get(demo.RoleHeader); got != "attack" {
			t.Fatalf("%s %s: role header %q", b.req.Method, b.req.URL, got)
		}
	}
}

// share returns the fraction of reqs for which f holds.
func share(reqs []built, f func(built) bool) float64 {
	n := 0
	for _, b := range reqs {
		if f(b) {
			n++
		}
	}
	return float64(n) / float64(len(reqs))
}

// distinct counts the distinct values of f over reqs.
func distinct(reqs []built, f func(built) string) int {
	seen := map[string]bool{}
	for _, b := range reqs {
		seen[f(b)] = true
	}
	return len(seen)
}

func between(t *testing.T, what string, got, lo, hi float64) {
	t.Helper()
	if got < lo || got > hi {
		t.Errorf("%s: %.3f, want within [%.2f, %.2f]", what, got, lo, hi)
	}
}

func TestDDoSiaRequests(t *testing.T) {
	reqs := buildRequests(t, testTarget, KindDDoSia, 200, 20, 0)
	checkCommon(t, reqs)
	searchRe := regexp.MustCompile(`^q=[A-Za-z0-9]{6,12}$`)
	pageRe := regexp.MustCompile(`^page=[0-9]{1,2}$`)
	formRe := regexp.MustCompile(`^name=[A-Za-z0-9]{6,12}&email=[A-Za-z0-9]{6,12}%40gmail\.com&phone=[0-9]{11}&message=[A-Za-z0-9]{6,12}&__RequestVerificationToken=` + ddosiaToken + `$`)
	counts := map[string]int{}
	for _, b := range reqs {
		h, u := b.req.Header, b.req.URL
		switch {
		case b.req.Method == http.MethodGet && u.Path == "/search" && searchRe.MatchString(u.RawQuery):
			counts["search"]++
		case b.req.Method == http.MethodGet && u.Path == "/" && pageRe.MatchString(u.RawQuery):
			counts["page"]++
		case b.req.Method == http.MethodPost && u.Path == "/api/comments" && formRe.MatchString(b.body) &&
			h.Get("Content-Type") == "application/x-www-form-urlencoded":
			counts["form"]++
		case b.req.Method == http.MethodPost && u.Path == "/login" && h.Get("Content-Type") == "application/json":
			var cred struct{ Login, Password string }
			if err := json.Unmarshal([]byte(b.body), &cred); err != nil || !regexp.MustCompile(`^[A-Za-z0-9]{6,12}@gmail\.com$`).MatchString(cred.Login) ||
				!regexp.MustCompile(`^[A-Za-z0-9]{6,12}$`).MatchString(cred.Password) {
				t.Errorf("login body %q: %v", b.body, err)
			}
			counts["login"]++
		default:
			t.Errorf("no DDoSia template: %s %s %q", b.req.Method, u, b.body)
		}
		// Go's client defaults: no Accept, gzip, no cookies, and the
		// transport's own User-Agent (absent from the header map) or none
		// (present and empty).
		if _, ok := h["Accept"]; ok {
			t.Errorf("Accept header %q", h.Get("Accept"))
		}
		if h.Get("Accept-Encoding") != "gzip" || h.Get("Cookie") != "" || h.Get("Referer") != "" {
			t.Errorf("headers %v", h)
		}
		if ua, ok := h["User-Agent"]; ok && (len(ua) != 1 || ua[0] != "") {
			t.Errorf("User-Agent %q set by the builder", ua)
		}
	}
	n := float64(len(reqs))
	between(t, "search share", float64(counts["search"])/n, 0.35, 0.45)
	between(t, "listing share", float64(counts["page"])/n, 0.20, 0.30)
	between(t, "form share", float64(counts["form"])/n, 0.16, 0.24)
	between(t, "login share", float64(counts["login"])/n, 0.11, 0.19)
	between(t, "no User-Agent", share(reqs, func(b built) bool { _, ok := b.req.Header["User-Agent"]; return ok }), 0.05, 0.15)
	// The placeholders vary per request (paging has only 110 values).
	notPaging := slices.DeleteFunc(slices.Clone(reqs), func(b built) bool { return b.req.URL.Query().Has("page") })
	if d := distinct(notPaging, func(b built) string { return b.req.URL.String() + b.body }); d != len(notPaging) {
		t.Errorf("only %d distinct requests of %d", d, len(notPaging))
	}
	if d := distinct(reqs, func(b built) string { return b.req.URL.Query().Get("page") }); d < 100 {
		t.Errorf("only %d distinct page numbers", d)
	}
}

// TestDDoSiaOnTheWire checks the headers DDoSia's requests arrive with
// through the simulator's own transport: Go's User-Agent, or none.
func TestDDoSiaOnTheWire(t *testing.T) {
	var mu sync.Mutex
	uas := map[string]int{}
	var accepts int
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		ua, ok := r.Header["User-Agent"]
		if !ok {
			uas["(none)"]++
		} else {
			uas[ua[0]]++
		}
		if r.Header.Get("Accept") != "" {
			accepts++
		}
		mu.Unlock()
		io.Copy(io.Discard, r.Body)
	}))
	defer srv.Close()
	reqs := buildRequests(t, srv.URL+"/", KindDDoSia, 40, 2, 0)
	tg, _ := ParseTarget(srv.URL)
	r := &runner{target: tg, tlsCfg: &tls.Config{}}
	client := &http.Client{Transport: r.transport(netip.Addr{}, 4)}
	for _, b := range reqs {
		req := b.req.Clone(context.Background())
		if b.body != "" {
			req.Body = io.NopCloser(strings.NewReader(b.body))
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	mu.Lock()
	defer mu.Unlock()
	if uas["Go-http-client/1.1"] == 0 || uas["(none)"] == 0 || len(uas) != 2 || accepts != 0 {
		t.Errorf("user agents on the wire %v, %d with Accept", uas, accepts)
	}
}

func TestRandom404Requests(t *testing.T) {
	reqs := buildRequests(t, testTarget, KindRandom404, 50, 40, 0)
	checkCommon(t, reqs)
	words := strings.Join(notFoundWords, "|")
	wordsRe := regexp.MustCompile(`^/(` + words + `)(/(` + words + `))?$`)
	hexRe := regexp.MustCompile(`^/(` + words + `)/[0-9a-f]{32,128}$`)
	o, err := demo.New(demo.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range reqs {
		p := b.req.URL.Path
		if b.req.Method != http.MethodGet || b.req.URL.RawQuery != "" || (!wordsRe.MatchString(p) && !hexRe.MatchString(p)) {
			t.Errorf("not a random 404: %s %s", b.req.Method, b.req.URL)
		}
		h := b.req.Header
		if h.Get("Accept") != "*/*" || !slices.Contains(desktopUAs, h.Get("User-Agent")) {
			t.Errorf("headers %v", h)
		}
		// Every path is a miss on the demo site.
		rec := httptest.NewRecorder()
		o.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, b.req.URL.RequestURI(), nil))
		if rec.Code != http.StatusNotFound {
			t.Errorf("%s: status %d from the demo origin, want 404", p, rec.Code)
		}
	}
	between(t, "hex segments", share(reqs, func(b built) bool { return hexRe.MatchString(b.req.URL.Path) }), 0.06, 0.14)
	if d := distinct(reqs, func(b built) string { return b.req.URL.Path }); d < len(reqs)/2 {
		t.Errorf("only %d distinct paths of %d", d, len(reqs))
	}
}

func TestHeaderRandomRequests(t *testing.T) {
	reqs := buildRequests(t, testTarget, KindHeaderRandom, 20, 100, 0)
	checkCommon(t, reqs)
	pathRe := regexp.MustCompile(`^/(news/[0-9]+)?$`)
	hostRe := regexp.MustCompile(`^[a-z0-9]{6}\.127\.0\.0\.1:8080$`)
	for _, b := range reqs {
		h := b.req.Header
		if b.req.Method != http.MethodGet || !pathRe.MatchString(b.req.URL.Path) || b.req.URL.RawQuery != "" {
			t.Errorf("request %s %s", b.req.Method, b.req.URL)
		}
		ip := h.Get("X-Real-IP")
		if a, err := netip.ParseAddr(ip); err != nil || !a.Is4() || a.IsLoopback() || a.IsPrivate() {
			t.Errorf("X-Real-IP %q", ip)
		}
		if h.Get("Client-IP") != ip || !strings.HasSuffix(h.Get("X-Forwarded-For"), ip) {
			t.Errorf("forwarding headers %q, %q, %q", h.Get("X-Forwarded-For"), ip, h.Get("Client-IP"))
		}
		if b.req.Host != b.req.URL.Host && !hostRe.MatchString(b.req.Host) {
			t.Errorf("Host %q", b.req.Host)
		}
		if c := h.Get("Cookie"); c != "" && !regexp.MustCompile(`^PHPSESSID=[a-z0-9]{26}$`).MatchString(c) {
			t.Errorf("Cookie %q", c)
		}
		if (h.Get("Cache-Control") == "") != (h.Get("Pragma") == "") {
			t.Errorf("Cache-Control %q without Pragma %q", h.Get("Cache-Control"), h.Get("Pragma"))
		}
		if ref, err := url.Parse(h.Get("Referer")); err != nil || ref.Scheme != "https" || ref.Host == "" {
			t.Errorf("Referer %q", h.Get("Referer"))
		}
	}
	between(t, "fake crawlers", share(reqs, func(b built) bool { return slices.Contains(crawlerUAs, b.req.Header.Get("User-Agent")) }), 0.11, 0.19)
	between(t, "random subdomains", share(reqs, func(b built) bool { return b.req.Host != b.req.URL.Host }), 0.16, 0.24)
	between(t, "session cookies", share(reqs, func(b built) bool { return b.req.Header.Get("Cookie") != "" }), 0.07, 0.13)
	between(t, "no-cache", share(reqs, func(b built) bool { return b.req.Header.Get("Pragma") == "no-cache" }), 0.16, 0.24)
	between(t, "front page", share(reqs, func(b built) bool { return b.req.URL.Path == "/" }), 0.25, 0.35)
	// Every header varies, within one source too.
	one := reqs[:100]
	for name, min := range map[string]int{"User-Agent": 10, "Referer": 30, "X-Forwarded-For": 90, "Accept-Language": 8} {
		if d := distinct(one, func(b built) string { return b.req.Header.Get(name) }); d < min {
			t.Errorf("%s: %d distinct values in one source's 100 requests, want %d", name, d, min)
		}
	}
}

// TestHeaderRandomHostStaysOnTarget sends header-random requests through the
// simulator's transport: whatever Host they name, they reach the target.
func TestHeaderRandomHostStaysOnTarget(t *testing.T) {
	var mu sync.Mutex
	hosts := map[string]bool{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		hosts[r.Host] = true
		mu.Unlock()
	}))
	defer srv.Close()
	tg, _ := ParseTarget(srv.URL)
	r := &runner{target: tg, tlsCfg: &tls.Config{}}
	client := &http.Client{Transport: r.transport(netip.Addr{}, 4)}
	reqs := buildRequests(t, srv.URL+"/", KindHeaderRandom, 2, 50, 0)
	for _, b := range reqs {
		resp, err := client.Do(b.req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	mu.Lock()
	defer mu.Unlock()
	sub := 0
	for h := range hosts {
		if strings.HasSuffix(h, "."+tg.HostHeader) {
			sub++
		} else if h != tg.HostHeader {
			t.Errorf("Host %q", h)
		}
	}
	if sub == 0 || !hosts[tg.HostHeader] {
		t.Errorf("hosts seen by the target: %v", hosts)
	}
}

func TestLoginFloodRequests(t *testing.T) {
	reqs := buildRequests(t, testTarget, KindLoginFlood, 400, 3, 0)
	checkCommon(t, reqs)
	for _, b := range reqs {
		h := b.req.Header
		if b.req.Method != http.MethodPost || b.req.URL.Path != "/login" || h.Get("Content-Type") != "application/json" ||
			h.Get("Origin") != "http://127.0.0.1:8080" || h.Get("Referer") != "http://127.0.0.1:8080/login" {
			t.Errorf("request %s %s, headers %v", b.req.Method, b.req.URL, h)
		}
		var cred struct{ Email, Password string }
		if err := json.Unmarshal([]byte(b.body), &cred); err != nil {
			t.Fatalf("body %q: %v", b.body, err)
		}
		user, domain, ok := strings.Cut(cred.Email, "@")
		if !ok || len(user) < 6 || !slices.Contains(mailDomains, domain) || len(cred.Password) < 8 {
			t.Errorf("credentials %+v", cred)
		}
		if ua := h.Get("User-Agent"); !slices.Contains(browserUAs, ua) && strings.Count(ua, `"`) != 1 {
			t.Errorf("User-Agent %q", ua)
		}
	}
	between(t, "malformed user agents", share(reqs, func(b built) bool { return strings.Contains(b.req.Header.Get("User-Agent"), `"`) }), 0.02, 0.09)
	if d := distinct(reqs, func(b built) string { return b.body }); d != len(reqs) {
		t.Errorf("%d distinct credentials in %d requests", d, len(reqs))
	}
}

func TestPingbackRequests(t *testing.T) {
	reqs := buildRequests(t, testTarget, KindPingback, 30, 20, 0)
	checkCommon(t, reqs)
	uaRe := regexp.MustCompile(`^WordPress/6\.5; https://[a-z]{5,12}\.example; verifying pingback from 127\.9\.9\.9$`)
	frontRe := regexp.MustCompile(`^/\?[0-9]{7}=[0-9]{6}$`)
	articleRe := regexp.MustCompile(`^/news/[0-9]+\?[A-Za-z0-9]{4,8}=[A-Za-z0-9]{4,8}$`)
	uaOf := map[int]string{}
	for _, b := range reqs {
		h, uri := b.req.Header, b.req.URL.RequestURI()
		if b.req.Method != http.MethodGet || (!frontRe.MatchString(uri) && !articleRe.MatchString(uri)) {
			t.Errorf("request %s %s", b.req.Method, uri)
		}
		ua := h.Get("User-Agent")
		if !uaRe.MatchString(ua) {
			t.Errorf("User-Agent %q", ua)
		}
		if prev, ok := uaOf[b.source]; ok && prev != ua {
			t.Errorf("source %d changed blogs: %q then %q", b.source, prev, ua)
		}
		uaOf[b.source] = ua
		if !b.req.Close || h.Get("Referer") != b.req.URL.String() || h.Get("X-Pingback-Forwarded-For") != "127.9.9.9" || h.Get("Accept") != "*/*" {
			t.Errorf("close %v, headers %v", b.req.Close, h)
		}
	}
	between(t, "front page", share(reqs, func(b built) bool { return b.req.URL.Path == "/" }), 0.4, 0.6)
	if d := distinct(reqs, func(b built) string { return b.req.Header.Get("User-Agent") }); d != 30 {
		t.Errorf("%d blogs for 30 sources", d)
	}
	if d := distinct(reqs, func(b built) string { return b.req.URL.RawQuery }); d != len(reqs) {
		t.Errorf("%d distinct query strings in %d requests", d, len(reqs))
	}
}

func TestHeadFloodRequests(t *testing.T) {
	reqs := buildRequests(t, testTarget, KindHeadFlood, 10, 50, 0)
	checkCommon(t, reqs)
	pathRe := regexp.MustCompile(`^/(news/[0-9]+)?$`)
	for _, b := range reqs {
		q := b.req.URL.Query()
		if b.req.Method != http.MethodHead || !pathRe.MatchString(b.req.URL.Path) || len(q) != 1 || b.req.Body != nil {
			t.Errorf("request %s %s", b.req.Method, b.req.URL)
		}
		if b.req.Header.Get("User-Agent") == "" {
			t.Errorf("no User-Agent")
		}
	}
	if d := distinct(reqs, func(b built) string { return b.req.URL.RawQuery }); d != len(reqs) {
		t.Errorf("%d distinct query strings in %d requests", d, len(reqs))
	}
}

func TestCarpetRequests(t *testing.T) {
	const perWave = 10
	reqs := buildRequests(t, testTarget, KindCarpet, 60, 3*perWave, perWave)
	checkCommon(t, reqs)
	pageRe := regexp.MustCompile(`^/(news/([0-9]+))?$`)
	var prev built
	for i, b := range reqs {
		h, u := b.req.Header, b.req.URL
		if b.req.Method != http.MethodGet {
			t.Fatalf("method %s", b.req.Method)
		}
		if m := pageRe.FindStringSubmatch(u.Path); m != nil {
			if n, _ := strconv.Atoi(m[2]); n > carpetPages || u.RawQuery != "" {
				t.Errorf("page %s beyond the top %d", u, carpetPages)
			}
		} else if q := u.Query().Get("q"); u.Path != "/search" || len(strings.Fields(q)) < 2 {
			t.Errorf("request %s", u)
		}
		// Full navigation headers, consistent with the browser.
		wave := (i % (3 * perWave)) / perWave
		p := carpetProfile(wave, b.source)
		if h.Get("User-Agent") != p.ua || h.Get("Accept") != p.acceptNav || h.Get("Sec-Fetch-Mode") != "navigate" ||
			h.Get("Sec-Fetch-Dest") != "document" || h.Get("Upgrade-Insecure-Requests") != "1" || h.Get("Accept-Language") == "" {
			t.Errorf("headers %v, want those of %s", h, p.name)
		}
		if (h.Get("Sec-Ch-Ua") != "") != p.chromium {
			t.Errorf("%s: Sec-Ch-Ua %q", p.name, h.Get("Sec-Ch-Ua"))
		}
		// The first page of a wave comes from nowhere, the next from the
		// previous page.
		if i%perWave == 0 {
			if h.Get("Sec-Fetch-Site") != "none" || h.Get("Referer") != "" {
				t.Errorf("first request of a wave: Sec-Fetch-Site %q, Referer %q", h.Get("Sec-Fetch-Site"), h.Get("Referer"))
			}
		} else if h.Get("Sec-Fetch-Site") != "same-origin" || h.Get("Referer") != prev.req.URL.String() {
			t.Errorf("Referer %q after %s", h.Get("Referer"), prev.req.URL)
		}
		prev = b
	}
	between(t, "searches", share(reqs, func(b built) bool { return b.req.URL.Path == "/search" }), 0.25, 0.35)
	// The user agents of one wave are none of the next one's.
	for w := range len(carpetPools) - 1 {
		for _, a := range carpetPools[w] {
			for _, b := range carpetPools[w+1] {
				if a.ua == b.ua {
					t.Errorf("waves %d and %d share %s", w, w+1, a.ua)
				}
			}
		}
	}
	// Each source's rate is drawn within half and one and a half times
	// the attack's.
	rng := rand.New(rand.NewPCG(1, 1))
	var lo, hi float64 = 1, 0
	for idx := range 1000 {
		r := newFloodIdentity(Attack{Kind: KindCarpet, Rate: 0.2}, idx, rng).rate
		lo, hi = min(lo, r), max(hi, r)
	}
	if lo < 0.1 || hi > 0.3 || lo > 0.11 || hi < 0.29 {
		t.Errorf("per-source rates span [%v, %v], want [0.1, 0.3]", lo, hi)
	}
}

// TestFirstFloodsUnchanged pins the headers of the floods that predate the
// campaign techniques.
func TestFirstFloodsUnchanged(t *testing.T) {
	reqs := buildRequests(t, testTarget, KindGetFlood, 3, 1, 0)
	checkCommon(t, reqs)
	for _, b := range reqs {
		p := profiles[b.source%len(profiles)]
		h := b.req.Header
		if b.req.URL.Path != "/news/1" || h.Get("User-Agent") != p.ua || h.Get("Accept") != p.acceptNav ||
			h.Get("Accept-Language") != p.lang || h.Get("Accept-Encoding") != "gzip, deflate, br" || h.Get("Sec-Fetch-Mode") != "" {
			t.Errorf("get-flood request %s, headers %v", b.req.URL, h)
		}
	}
}
