package shield

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptrace"
	"net/netip"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rampart-shield/rampart/internal/admin"
	"github.com/rampart-shield/rampart/internal/config"
	"github.com/rampart-shield/rampart/internal/verdict"
)

func TestProxyForwardsHeaders(t *testing.T) {
	var got http.Header
	var mu sync.Mutex
	origin := newOrigin(t, func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		got = r.Header.Clone()
		mu.Unlock()
		w.Header().Set("X-Origin-Cost", "7")
		io.WriteString(w, "ok")
	})
	s := startShield(t, testConfig(t, origin.URL, `
rules:
  - name: cost
    limit: {rate: 100/s, count: responses, cost_header: X-Origin-Cost}
    action: limit
`))
	req, _ := http.NewRequest(http.MethodGet, s.Addrs()[0]+"/page?x=1", nil)
	req.Header.Set("X-Forwarded-For", "6.6.6.6")
	req.Header.Set("Connection", "X-Secret")
	req.Header.Set("X-Secret", "hop")
	req.Header.Set("User-Agent", "test")
	req.Header.Set("Accept", "*/*")
	resp, err := clientFrom("127.10.0.7").Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	if v := resp.Header.Get("X-Origin-Cost"); v != "" {
		t.Errorf("the origin's cost header leaked to the client: %q", v)
	}
	mu.Lock()
	defer mu.Unlock()
	if xff := got.Get("X-Forwarded-For"); xff != "127.10.0.7" {
		t.Errorf("X-Forwarded-For = %q, want only the real client (a client-supplied value must not pass)", xff)
	}
	if p := got.Get("X-Forwarded-Proto"); p != "http" {
		t.Errorf("X-Forwarded-Proto = %q", p)
	}
	if h := got.Get("X-Forwarded-Host"); !strings.HasPrefix(h, "127.0.0.1:") {
		t.Errorf("X-Forwarded-Host = %q", h)
	}
	if v := got.Get("Via"); !strings.Contains(v, "rampart") {
		t.Errorf("Via = %q", v)
	}
	if v := got.Get("X-Secret"); v != "" {
		t.Errorf("hop-by-hop header named in Connection reached the origin: %q", v)
	}
}

// TestAbusiveIPLimited: one address over its limit gets 429s while its
// neighbours in other networks are untouched.
func TestAbusiveIPLimited(t *testing.T) {
	origin := newOrigin(t, nil)
	s := startShield(t, testConfig(t, origin.URL, `
rules:
  - name: pages-per-ip
    limit: {rate: 1/s, burst: 5, by: [ip]}
    action: limit
`))
	url := s.Addrs()[0] + "/news/1"
	abusive := clientFrom("127.20.1.1")
	var codes []int
	for range 12 {
		code, mit, _ := get(t, abusive, url)
		codes = append(codes, code)
		if code == 429 && mit != "rule:pages-per-ip" {
			t.Errorf("429 without the rule named: %q", mit)
		}
	}
	ok, limited := 0, 0
	for _, c := range codes {
		switch c {
		case 200:
			ok++
		case 429:
			limited++
		}
	}
	if ok < 5 || ok > 6 || limited < 6 {
		t.Fatalf("abusive client: %v (want 5 or 6 passes, then 429s)", codes)
	}
	for _, src := range []string{"127.21.1.1", "127.22.7.9", "127.20.2.1"} {
		for range 5 {
			if code, mit, _ := get(t, clientFrom(src), url); code != 200 {
				t.Fatalf("neighbour %s got %d (%s)", src, code, mit)
			}
		}
	}
}

// TestPrefixFloodCaught: many addresses of one network, each far below the
// per-address limit, are caught by the per-network limit; another network is
// untouched.
func TestPrefixFloodCaught(t *testing.T) {
	origin := newOrigin(t, nil)
	s := startShield(t, testConfig(t, origin.URL, `
default_rules: false
rules:
  - name: per-ip
    limit: {rate: 5/s, burst: 10, by: [ip]}
    action: limit
  - name: per-prefix
    limit: {rate: 1/s, burst: 30, by: [prefix]}
    action: limit
`))
	url := s.Addrs()[0] + "/"
	limited := 0
	for i := 1; i <= 40; i++ {
		c := clientFrom(fmt.Sprintf("127.30.5.%d", i))
		for range 2 {
			code, mit, _ := get(t, c, url)
			if code == 429 {
				if mit != "rule:per-prefix" {
					t.Fatalf("limited by %q, want the prefix rule", mit)
				}
				limited++
			}
		}
	}
	// 80 requests against a burst of 30 (plus a little refill while the
	// test runs): most of the rest must be refused.
	if limited < 40 {
		t.Fatalf("prefix flood: only %d of 80 refused", limited)
	}
	if code, mit, _ := get(t, clientFrom("127.31.5.1"), url); code != 200 {
		t.Fatalf("another network got %d (%s)", code, mit)
	}
}

// dialRaw connects from src and sends one request; it returns the answer's
// status line, or the error (EOF, reset) when the shield closed the
// connection without answering.
func dialRaw(src, addr string) (string, error) {
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 3 * time.Second}
	c, err := d.Dial("tcp", strings.TrimPrefix(addr, "http://"))
	if err != nil {
		return "", err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(3 * time.Second))
	if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\nUser-Agent: t\r\nAccept: */*\r\n\r\n"); err != nil {
		return "", err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(line), nil
}

func TestBlockedClosedAtAccept(t *testing.T) {
	origin := newOrigin(t, nil)
	cfg := testConfig(t, origin.URL, `
lists:
  deny: [127.40.0.0/16]
  syn_filter: false  # this test is about the accept-time check; TestSYNFilterFollowsBlocks covers the kernel's
rules:
  - name: trap
    match: {paths: ["/wp-login.php"]}
    action: block
    block_ttl: 1h
`)
	s := startShield(t, cfg)
	addr := s.Addrs()[0]

	// Deny list from the config.
	if line, err := dialRaw("127.40.1.1", addr); err == nil {
		t.Fatalf("deny-listed client got an answer: %q", line)
	}
	// A block through the admin API.
	c := admin.NewClient(s.AdminURL(), "")
	if _, err := c.Block(context.Background(), "127.41.1.1", time.Hour, "test"); err != nil {
		t.Fatal(err)
	}
	if line, err := dialRaw("127.41.1.1", addr); err == nil {
		t.Fatalf("blocked client got an answer: %q", line)
	}
	if line, err := dialRaw("127.41.1.2", addr); err != nil || !strings.Contains(line, "200") {
		t.Fatalf("neighbour of a blocked address: %q %v", line, err)
	}
	// A block rule: the request that trips it is dropped, and the address
	// is closed at accept from then on.
	code, _, body := get(t, clientFrom("127.42.1.1"), addr+"/wp-login.php")
	if code != 0 {
		t.Fatalf("trap request answered %d", code)
	}
	_ = body
	if line, err := dialRaw("127.42.1.1", addr); err == nil {
		t.Fatalf("address blocked by a rule got an answer: %q", line)
	}
	st := s.edgeStats()
	if st.RejectedDenied < 3 {
		t.Errorf("rejected-at-accept counter = %d, want >= 3", st.RejectedDenied)
	}
	blocks, _ := c.Blocks(context.Background())
	found := false
	for _, b := range blocks {
		if b.CIDR == "127.42.1.1/32" && b.Reason == "rule:trap" {
			found = true
		}
	}
	if !found {
		t.Errorf("rule block not listed: %+v", blocks)
	}
	// Unblocking opens the door again.
	if err := c.Unblock(context.Background(), "127.41.1.1"); err != nil {
		t.Fatal(err)
	}
	if line, err := dialRaw("127.41.1.1", addr); err != nil || !strings.Contains(line, "200") {
		t.Fatalf("after unblock: %q %v", line, err)
	}
}

// TestReloadKeepsConnections: a rule reload changes behaviour on a
// connection that stays open.
func TestReloadKeepsConnections(t *testing.T) {
	origin := newOrigin(t, nil)
	cfg := testConfig(t, origin.URL, "")
	s := startShield(t, cfg)
	c := clientFrom("127.50.0.1")
	url := s.Addrs()[0] + "/reports"

	var reused []bool
	do := func() int {
		req, _ := http.NewRequest(http.MethodGet, url, nil)
		req.Header.Set("User-Agent", "t")
		req.Header.Set("Accept", "*/*")
		req = req.WithContext(httptrace.WithClientTrace(req.Context(), &httptrace.ClientTrace{
			GotConn: func(i httptrace.GotConnInfo) { reused = append(reused, i.Reused) },
		}))
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := do(); code != 200 {
		t.Fatalf("before reload: %d", code)
	}
	next := testConfig(t, origin.URL, `
rules:
  - name: no-reports
    match: {paths: ["/reports"]}
    action: limit
`)
	next.Listeners, next.Admin, next.StateDir = cfg.Listeners, cfg.Admin, cfg.StateDir
	if err := s.Reload(next); err != nil {
		t.Fatal(err)
	}
	if code := do(); code != 429 {
		t.Fatalf("after reload: %d, want 429", code)
	}
	if len(reused) != 2 || !reused[1] {
		t.Fatalf("the connection was not kept across the reload: reused=%v", reused)
	}
	// A bad configuration is refused and the running one stays.
	bad := *next
	bad.Rules = []config.Rule{{Name: "x", Action: "block"}}
	if err := s.Reload(&bad); err == nil {
		t.Fatal("a rule without block_ttl was accepted")
	}
	if code := do(); code != 429 {
		t.Fatalf("after a refused reload: %d, want the running rule's 429", code)
	}
}

func TestUnderAttackChallenges(t *testing.T) {
	origin := newOrigin(t, nil)
	s := startShield(t, testConfig(t, origin.URL, "mode: under_attack\n"))
	c := clientFrom("127.60.0.1")
	code, mit, body := get(t, c, s.Addrs()[0]+"/news/1")
	if code != 403 || mit != "challenge" || !strings.Contains(body, "<html") {
		t.Fatalf("navigation: %d %q %.80q", code, mit, body)
	}
	req, _ := http.NewRequest(http.MethodGet, s.Addrs()[0]+"/api-ish", nil)
	req.Header.Set("Accept", "application/json")
	req.Header.Set("Sec-Fetch-Mode", "cors")
	req.Header.Set("User-Agent", "t")
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 403 || resp.Header.Get("Rampart-Mitigated") != "challenge" || strings.Contains(string(b), "<html") {
		t.Fatalf("non-navigation: %d %q %q", resp.StatusCode, resp.Header.Get("Rampart-Mitigated"), b)
	}
	if code, mit, _ := get(t, c, s.Addrs()[0]+"/robots.txt"); code != 200 {
		t.Fatalf("bypass path: %d %q", code, mit)
	}
	if origin.hits.Load() != 1 {
		t.Fatalf("the origin saw %d requests, want only the bypassed one", origin.hits.Load())
	}
	if s.Mode() != verdict.ModeUnderAttack {
		t.Fatalf("mode %v", s.Mode())
	}
}

func TestStatusAPI(t *testing.T) {
	origin := newOrigin(t, nil)
	s := startShield(t, testConfig(t, origin.URL, ""))
	get(t, clientFrom("127.70.0.1"), s.Addrs()[0]+"/")
	resp, err := http.Get(s.AdminURL() + "/api/v1/status")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var st map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"mode", "uptime_s", "connections", "requests_per_s", "upstreams", "upstream_health"} {
		if _, ok := st[k]; !ok {
			t.Errorf("status lacks %q: %v", k, st)
		}
	}
	if st["mode"] != "normal" || st["upstream_health"] != "ok" {
		t.Errorf("status: %v", st)
	}
	m, err := http.Get(s.AdminURL() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	mb, _ := io.ReadAll(m.Body)
	m.Body.Close()
	for _, want := range []string{`rampart_requests_total{action="allow",status="2xx"} 1`, "rampart_connections_open", "rampart_table_capacity{table=\"ratelimit\"}", "rampart_upstream_healthy"} {
		if !strings.Contains(string(mb), want) {
			t.Errorf("metrics lack %q", want)
		}
	}
}

func TestOriginDownGivesShieldPage(t *testing.T) {
	origin := newOrigin(t, nil)
	url := origin.URL
	origin.Close()
	cfg := testConfig(t, url, "")
	cfg.Upstream.HealthCheck.Disabled = true
	s := startShield(t, cfg)
	code, mit, _ := get(t, clientFrom("127.80.0.1"), s.Addrs()[0]+"/nothing-cached")
	if code != 502 && code != 503 {
		t.Fatalf("origin down: %d", code)
	}
	if mit == "" {
		t.Fatalf("a shield-generated error page lacks Rampart-Mitigated")
	}
}

var _ = errors.New

// TestDenyFileReloadedOnChange: a deny list file is picked up when it
// changes on disk; a file with a bad line keeps the previous contents.
func TestDenyFileReloadedOnChange(t *testing.T) {
	origin := newOrigin(t, nil)
	path := t.TempDir() + "/deny.txt"
	if err := os.WriteFile(path, []byte("# nobody yet\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(t, origin.URL, fmt.Sprintf("lists:\n  deny_files: [%q]\n  watch_interval: 100ms\n", path))
	s := startShield(t, cfg)
	addr := s.Addrs()[0]
	if line, err := dialRaw("127.90.0.1", addr); err != nil || !strings.Contains(line, "200") {
		t.Fatalf("before: %q %v", line, err)
	}
	os.WriteFile(path, []byte("127.90.0.0/24  # the campaign\n"), 0o644)
	waitFor(t, "the deny file to be reloaded", 5*time.Second, func() bool {
		_, err := dialRaw("127.90.0.1", addr)
		return err != nil
	})
	// A bad line: the file is refused as a whole, the old list stays.
	os.WriteFile(path, []byte("127.90.0.0/24\nnot-a-cidr\n"), 0o644)
	waitFor(t, "the bad file to be seen", 5*time.Second, func() bool { return s.listErrors.Load() > 0 })
	if line, err := dialRaw("127.90.0.1", addr); err == nil {
		t.Fatalf("a bad file replaced the deny list: %q", line)
	}
	if line, err := dialRaw("127.91.0.1", addr); err != nil || !strings.Contains(line, "200") {
		t.Fatalf("outside the list: %q %v", line, err)
	}
}

func TestDryRunAndTarpit(t *testing.T) {
	origin := newOrigin(t, nil)
	cfg := testConfig(t, origin.URL, `
limits: {tarpit_delay: 200ms, tarpit_max: 1}
rules:
  - name: would-drop
    match: {paths: ["/dry"]}
    action: drop
    dry_run: true
  - name: slow-down
    match: {paths: ["/tar"]}
    action: tarpit
`)
	s := startShield(t, cfg)
	c := clientFrom("127.95.0.1")
	if code, _, _ := get(t, c, s.Addrs()[0]+"/dry"); code != 200 {
		t.Fatalf("dry-run rule acted: %d", code)
	}
	if s.engine.DryRuns() != 1 {
		t.Fatalf("dry runs %d", s.engine.DryRuns())
	}
	// Two tarpitted requests at once: one is held, the other (over
	// tarpit_max) is answered at once. Both get 429.
	type res struct {
		code int
		d    time.Duration
	}
	out := make(chan res, 2)
	for i := range 2 {
		go func() {
			t0 := time.Now()
			code, _, _ := get(t, clientFrom(fmt.Sprintf("127.96.0.%d", i+1)), s.Addrs()[0]+"/tar")
			out <- res{code, time.Since(t0)}
		}()
	}
	a, b := <-out, <-out
	if a.code != 429 || b.code != 429 {
		t.Fatalf("tarpit answers %d %d", a.code, b.code)
	}
	fast, slow := min(a.d, b.d), max(a.d, b.d)
	if slow < 200*time.Millisecond {
		t.Fatalf("nothing was held: %v %v", fast, slow)
	}
	if fast >= 200*time.Millisecond {
		t.Fatalf("the tarpit held more than tarpit_max requests: %v %v", fast, slow)
	}
}

func TestGoodBotsSkipChallenge(t *testing.T) {
	origin := newOrigin(t, nil)
	dir := t.TempDir()
	// A search engine's published ranges, in its JSON format.
	os.WriteFile(dir+"/crawler.json", []byte(`{"prefixes":[{"ipv4Prefix":"127.98.0.0/16"}]}`), 0o644)
	s := startShield(t, testConfig(t, origin.URL, fmt.Sprintf(`
mode: under_attack
challenge:
  good_bots: [127.97.0.0/16]
  good_bot_files: [%q]
`, dir+"/crawler.json")))
	for _, src := range []string{"127.97.0.1", "127.98.3.4"} {
		if code, mit, _ := get(t, clientFrom(src), s.Addrs()[0]+"/news/1"); code != 200 {
			t.Errorf("good bot %s: %d %q", src, code, mit)
		}
	}
	if code, mit, _ := get(t, clientFrom("127.99.0.1"), s.Addrs()[0]+"/news/1"); code != 403 || mit != "challenge" {
		t.Errorf("ordinary client under attack: %d %q", code, mit)
	}
}

// In elevated mode a request the cache cannot answer must come from a
// client that keeps cookies: a browser (with a cookie jar, following
// redirects) gets a 307 that sets a token and comes back to its page at
// once; a client that keeps no cookies never reaches the origin, and after
// its share of redirects is told that cookies are needed. Pages in the
// cache are served to anyone.
func TestElevatedChecksCookiesOnMisses(t *testing.T) {
	origin := newOrigin(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		w.Header().Set("Cache-Control", "max-age=60")
		io.WriteString(w, "<p>page "+r.URL.Path+" "+r.Method+"</p>")
	})
	s := startShield(t, testConfig(t, origin.URL, "mode: elevated\n"))
	base := s.Addrs()[0]

	// Without cookies, and without following: a 307 back to the page
	// with a token, and the origin untouched.
	c := clientFrom("127.61.0.1")
	req, _ := http.NewRequest(http.MethodGet, base+"/news/7?a=1", nil)
	req.Header.Set("User-Agent", "Go-http-client/1.1")
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusTemporaryRedirect || resp.Header.Get("Rampart-Mitigated") != "cookie-check" ||
		resp.Header.Get("Location") != "/news/7?a=1" || !strings.HasPrefix(resp.Header.Get("Set-Cookie"), "rampart_clearance=") {
		t.Fatalf("unchecked miss: %d %v", resp.StatusCode, resp.Header)
	}
	if n := origin.hits.Load(); n != 0 {
		t.Fatalf("the origin saw %d requests for a checked miss", n)
	}
	// A client that follows redirects but keeps no cookies loops until
	// its share of checks is spent, then is told cookies are needed.
	loop := clientFrom("127.61.0.2")
	loop.CheckRedirect = nil // follow, up to 10
	for i := 0; i < 3; i++ {
		req, _ := http.NewRequest(http.MethodGet, base+"/news/8", nil)
		req.Header.Set("User-Agent", "Go-http-client/1.1")
		resp, err := loop.Do(req)
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == 403 && resp.Header.Get("Rampart-Mitigated") == "cookie-check" && strings.Contains(string(b), "cookies") {
				break
			}
			if i == 2 {
				t.Fatalf("cookie-less client: %d %q", resp.StatusCode, b)
			}
		}
	}
	if n := origin.hits.Load(); n != 0 {
		t.Fatalf("the origin saw %d requests from clients without cookies", n)
	}

	// A browser: cookie jar, redirects followed. Its page, its form post
	// (the 307 keeps the method and body) and its next miss go through.
	jar, _ := cookiejar.New(nil)
	b := clientFrom("127.61.0.3")
	b.Jar, b.CheckRedirect = jar, nil
	code, mit, body := get(t, b, base+"/news/9")
	if code != 200 || mit != "" || !strings.Contains(body, "page /news/9 GET") {
		t.Fatalf("browser's page: %d %q %.80q", code, mit, body)
	}
	req, _ = http.NewRequest(http.MethodPost, base+"/comment", strings.NewReader("text=hello"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("User-Agent", "Mozilla/5.0 rampart-test")
	resp, err = b.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	pb, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(pb), "POST") {
		t.Fatalf("browser's post: %d %q", resp.StatusCode, pb)
	}
	if n := origin.hits.Load(); n != 2 {
		t.Fatalf("the origin saw %d requests, want the page and the post", n)
	}
	// The page is in the cache now: served to the cookie-less client.
	code, mit, body = get(t, c, base+"/news/9")
	if code != 200 || mit != "" || !strings.Contains(body, "page /news/9") {
		t.Fatalf("cached page for an unchecked visitor: %d %q %.80q", code, mit, body)
	}

	// A session cookie makes the cache pass the request through: the miss
	// rules still run.
	req, _ = http.NewRequest(http.MethodGet, base+"/news/10", nil)
	req.Header.Set("Accept", "text/html")
	req.Header.Set("User-Agent", "Mozilla/5.0 rampart-test")
	req.Header.Set("Cookie", "wordpress_logged_in_x=1")
	resp, err = c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusTemporaryRedirect || resp.Header.Get("Rampart-Mitigated") != "cookie-check" {
		t.Fatalf("session-cookie navigation: %d %q", resp.StatusCode, resp.Header.Get("Rampart-Mitigated"))
	}
	if n := origin.hits.Load(); n != 2 {
		t.Fatalf("the origin saw %d requests, want 2", n)
	}
}

// A block earned by an IPv6 client covers its /64: the host cannot come
// back from the next address of its network. IPv4 blocks stay /32.
func TestIPv6BlockCoversNetwork(t *testing.T) {
	origin := newOrigin(t, nil)
	s := startShield(t, testConfig(t, origin.URL, ""))
	s.block(netip.MustParseAddr("2001:db8:7:7::1"), time.Minute, "test")
	s.block(netip.MustParseAddr("192.0.2.10"), time.Minute, "test")
	for addr, want := range map[string]bool{
		"2001:db8:7:7::1": true, "2001:db8:7:7:ffff::9": true, "2001:db8:7:8::1": false,
		"192.0.2.10": true, "192.0.2.11": false, "::ffff:192.0.2.10": true,
	} {
		if got := s.deniedAtAccept(netip.MustParseAddr(addr).Unmap()); got != want {
			t.Errorf("%s denied at accept: %v, want %v", addr, got, want)
		}
	}
}

// With the SYN filter (the default), denied and blocked networks get no
// handshake at all, within a second of a block; unblocking lets the
// network in at once; a deny entry that overlaps the allow list is left to
// the accept check, which lets the allowed address in.
func TestSYNFilterFollowsBlocks(t *testing.T) {
	origin := newOrigin(t, nil)
	s := startShield(t, testConfig(t, origin.URL, `
lists:
  deny: [127.43.0.0/16, 127.44.0.0/16]
  allow: [127.44.0.1/32]
rules:
  - name: trap
    match: {paths: ["/wp-login.php"]}
    action: block
    block_ttl: 1h
`))
	addr := strings.TrimPrefix(s.Addrs()[0], "http://")
	// An unanswered SYN shows as a timeout; 500 ms is far more than a
	// handshake on loopback takes, even under -race on a busy machine.
	try := func(src string) string {
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 500 * time.Millisecond}
		c, err := d.Dial("tcp", addr)
		if err != nil {
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				return "timeout"
			}
			return err.Error()
		}
		c.Close()
		return "connected"
	}
	// The filter is attached when each listener starts serving (a SYN in
	// the microseconds before that is reset at accept).
	waitFor(t, "the deny list in the SYN filter", 3*time.Second, func() bool { return try("127.43.2.2") == "timeout" })
	if held, wanted := s.SYNFilterHeld(); held != 1 || wanted != 1 {
		t.Fatalf("filter holds %d of %d networks, want the deny entry that does not overlap the allow list", held, wanted)
	}
	if line, err := dialRaw("127.44.0.1", s.Addrs()[0]); err != nil || !strings.Contains(line, "200") {
		t.Fatalf("allow-listed address inside a denied network: %q %v", line, err)
	}
	if line, err := dialRaw("127.44.0.2", s.Addrs()[0]); err == nil {
		t.Fatalf("its denied neighbour got an answer: %q", line)
	}

	// A block earned by a rule reaches the kernel within a second or so.
	get(t, clientFrom("127.45.1.1"), s.Addrs()[0]+"/wp-login.php")
	waitFor(t, "the block in the SYN filter", 3*time.Second, func() bool { return try("127.45.1.1") == "timeout" })
	if got := try("127.45.1.2"); got != "connected" {
		t.Fatalf("neighbour of a blocked address: %s", got)
	}
	c := admin.NewClient(s.AdminURL(), "")
	if err := c.Unblock(context.Background(), "127.45.1.1"); err != nil {
		t.Fatal(err)
	}
	if got := try("127.45.1.1"); got != "connected" {
		t.Fatalf("right after unblock: %s", got)
	}
}
