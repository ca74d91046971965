package challenge_test

import (
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rampart-shield/rampart/internal/challenge"
	"github.com/rampart-shield/rampart/internal/verdict"
)

// checkCookie runs CookieCheck for a request from ip with ua and returns
// the answer.
func checkCookie(t *testing.T, svc *challenge.Service, method, target, ua string, ip netip.Addr) *http.Response {
	t.Helper()
	r := httptest.NewRequest(method, target, strings.NewReader("a=1"))
	r.Header.Set("User-Agent", ua)
	w := httptest.NewRecorder()
	svc.CookieCheck(w, r, ip, verdict.ModeElevated)
	return w.Result()
}

// withCookie is a request from ua carrying the cookies of resp.
func withCookie(resp *http.Response, ua string) *http.Request {
	r := httptest.NewRequest(http.MethodGet, "/news/1", nil)
	r.Header.Set("User-Agent", ua)
	for _, c := range resp.Cookies() {
		r.AddCookie(c)
	}
	return r
}

// TestCookieCheckToken: the check sends a 307 back to the same URL with a
// token; the token makes the client checked (not cleared), for its network
// and User-Agent only, until it expires; it never satisfies a challenge.
func TestCookieCheckToken(t *testing.T) {
	clock := newClock()
	svc := newService(t, clock)
	ip := netip.MustParseAddr("198.51.100.7")
	const ua = "Mozilla/5.0 TestBrowser"
	resp := checkCookie(t, svc, http.MethodPost, "/comment?id=4", ua, ip)
	if resp.StatusCode != http.StatusTemporaryRedirect || resp.Header.Get("Location") != "/comment?id=4" ||
		resp.Header.Get("Rampart-Mitigated") != "cookie-check" || resp.Header.Get("Cache-Control") != "no-store" {
		t.Fatalf("check answer: %d %v", resp.StatusCode, resp.Header)
	}
	cookies := resp.Cookies()
	if len(cookies) != 1 || cookies[0].Name != challenge.CookieName || !cookies[0].HttpOnly || cookies[0].MaxAge <= 0 {
		t.Fatalf("cookie: %+v", cookies)
	}

	c, res := svc.Check(withCookie(resp, ua), ip)
	if !c.Checked || c.Valid || res != challenge.CheckValid {
		t.Fatalf("own network and UA: %+v %v, want checked, not cleared", c, res)
	}
	if c, _ := svc.Check(withCookie(resp, ua), netip.MustParseAddr("198.51.100.200")); !c.Checked {
		t.Fatalf("same /24: %+v", c)
	}
	if c, _ := svc.Check(withCookie(resp, ua), netip.MustParseAddr("203.0.113.7")); c.Checked {
		t.Fatalf("another network: %+v", c)
	}
	if c, _ := svc.Check(withCookie(resp, "curl/8"), ip); c.Checked {
		t.Fatalf("another User-Agent: %+v", c)
	}
	clock.Advance(5 * time.Hour) // past the elevated mode's lifetime (4 h)
	if c, _ := svc.Check(withCookie(resp, ua), ip); c.Checked {
		t.Fatalf("expired token: %+v", c)
	}
	if st := svc.Stats(); st.ChecksIssued != 1 || st.ChecksRefused != 0 {
		t.Fatalf("stats: %+v", st)
	}
}

// TestCookieCheckBudget: past AllowCheck's budget the client is told that
// cookies are needed (403), with no token; HEAD gets no body.
func TestCookieCheckBudget(t *testing.T) {
	var left atomic.Int32
	left.Store(2)
	svc := newService(t, newClock(), func(o *challenge.Options) {
		o.AllowCheck = func(netip.Addr) bool { return left.Add(-1) >= 0 }
	})
	ip := netip.MustParseAddr("2001:db8::7")
	for i := 0; i < 2; i++ {
		if resp := checkCookie(t, svc, http.MethodGet, "/", "ua", ip); resp.StatusCode != http.StatusTemporaryRedirect {
			t.Fatalf("check %d: %d", i, resp.StatusCode)
		}
	}
	resp := checkCookie(t, svc, http.MethodGet, "/", "ua", ip)
	if resp.StatusCode != http.StatusForbidden || len(resp.Cookies()) != 0 || resp.Header.Get("Rampart-Mitigated") != "cookie-check" {
		t.Fatalf("over budget: %d %v", resp.StatusCode, resp.Header)
	}
	head := checkCookie(t, svc, http.MethodHead, "/", "ua", ip)
	if head.ContentLength <= 0 || head.StatusCode != http.StatusForbidden {
		t.Fatalf("HEAD over budget: %d len %d", head.StatusCode, head.ContentLength)
	}
	if st := svc.Stats(); st.ChecksIssued != 2 || st.ChecksRefused != 2 {
		t.Fatalf("stats: %+v", st)
	}
}

// TestSolvingAfterCookieCheck: a visitor who passed the cookie check and
// then solves a challenge gets a real clearance (the check token lends its
// id, not its limitation).
func TestSolvingAfterCookieCheck(t *testing.T) {
	svc := newService(t, newClock())
	srv, sh := newShieldServer(t, svc)
	v := newVisitor(t, srv)
	ip := netip.MustParseAddr("127.0.0.1")
	resp := checkCookie(t, svc, http.MethodGet, "/", v.ua, ip)
	u := srv.URL + "/"
	req, _ := http.NewRequest(http.MethodGet, u, nil)
	for _, c := range resp.Cookies() {
		req.AddCookie(c)
	}
	v.client.Jar.SetCookies(req.URL, resp.Cookies())
	if page, body := v.pass("/news/1"); page.StatusCode != 200 || !strings.Contains(string(body), originPage) {
		t.Fatalf("after solving: %d %.80q", page.StatusCode, body)
	}
	if sh.lastResult() != challenge.CheckValid {
		t.Fatalf("last check %v", sh.lastResult())
	}
}
