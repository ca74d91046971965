package challenge_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/rampart-shield/rampart/internal/challenge"
	"github.com/rampart-shield/rampart/internal/verdict"
)

// issue returns a puzzle issued by Challenge to ip and ua.
func issue(t *testing.T, svc *challenge.Service, ip netip.Addr, ua string, mode verdict.Mode) challenge.Puzzle {
	t.Helper()
	req := httptest.NewRequest(http.MethodGet, "/page?x=1", nil)
	req.Header.Set("User-Agent", ua)
	req.Header.Set("Accept", "application/json")
	rec := httptest.NewRecorder()
	svc.Challenge(rec, req, ip, mode)
	p, err := challenge.ParseChallenge(rec.Body.Bytes())
	if err != nil {
		t.Fatalf("ParseChallenge: %v\n%s", err, rec.Body)
	}
	return p
}

func solve(t *testing.T, p challenge.Puzzle) challenge.Solution {
	t.Helper()
	sol, err := challenge.Solve(context.Background(), p)
	if err != nil {
		t.Fatal(err)
	}
	return sol
}

func decodeVerify(t *testing.T, rec *httptest.ResponseRecorder) challenge.VerifyResponse {
	t.Helper()
	var vr challenge.VerifyResponse
	if err := json.Unmarshal(rec.Body.Bytes(), &vr); err != nil {
		t.Fatalf("verify answer %d %q: %v", rec.Code, rec.Body, err)
	}
	return vr
}

func TestVerifyRejections(t *testing.T) {
	ip := netip.MustParseAddr("198.51.100.20")
	for _, tc := range []struct {
		name   string
		prep   func(t *testing.T, svc *challenge.Service, c *fakeClock, form url.Values) // mutate the form
		ip     string
		ua     string
		status int
		want   challenge.VerifyResult
		retry  bool
	}{
		{name: "bad-nonce-letters", prep: func(_ *testing.T, _ *challenge.Service, _ *fakeClock, f url.Values) { f.Set("n", "12a") }, status: 400, want: challenge.VerifyMalformed},
		{name: "bad-nonce-leading-zero", prep: func(_ *testing.T, _ *challenge.Service, _ *fakeClock, f url.Values) { f.Set("n", "0"+f.Get("n")) }, status: 400, want: challenge.VerifyMalformed},
		{name: "bad-nonce-too-long", prep: func(_ *testing.T, _ *challenge.Service, _ *fakeClock, f url.Values) { f.Set("n", "12345678901234567") }, status: 400, want: challenge.VerifyMalformed},
		{name: "no-challenge", prep: func(_ *testing.T, _ *challenge.Service, _ *fakeClock, f url.Values) { f.Del("c") }, status: 400, want: challenge.VerifyMalformed},
		{name: "tampered-challenge", prep: func(_ *testing.T, _ *challenge.Service, _ *fakeClock, f url.Values) { f.Set("c", flip(f.Get("c"), 10)) }, status: 403, want: challenge.VerifyBadSignature, retry: true},
		{name: "expired", prep: func(_ *testing.T, _ *challenge.Service, c *fakeClock, _ url.Values) { c.Advance(5 * time.Minute) }, status: 403, want: challenge.VerifyExpired, retry: true},
		{name: "other-prefix", ip: "198.51.101.20", status: 403, want: challenge.VerifyPrefix, retry: true},
		{name: "other-user-agent", ua: "curl/8.0", status: 403, want: challenge.VerifyUserAgent},
		{name: "insufficient-work", prep: func(t *testing.T, _ *challenge.Service, _ *fakeClock, f url.Values) {
			// Find a nonce that does not solve it: the solver's nonce is the
			// first that does, so any smaller one fails.
			if f.Get("n") == "0" {
				t.Skip("nonce 0 solved it")
			}
			f.Set("n", "0")
		}, status: 403, want: challenge.VerifyInsufficientWork},
		{name: "rotated-twice", prep: func(t *testing.T, s *challenge.Service, _ *fakeClock, _ url.Values) {
			mustNil(t, s.Rotate())
			mustNil(t, s.Rotate())
		}, status: 403, want: challenge.VerifyBadSignature, retry: true},
		{name: "replayed", prep: func(t *testing.T, s *challenge.Service, _ *fakeClock, f url.Values) {
			if rec := verifyPost(s, ip, testUA, f); rec.Code != 200 {
				t.Fatalf("first redemption: %d %s", rec.Code, rec.Body)
			}
		}, status: 403, want: challenge.VerifyReplayed, retry: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clock := newClock()
			svc := newService(t, clock)
			p := issue(t, svc, ip, testUA, verdict.ModeNormal)
			form := p.Form(solve(t, p))
			if tc.prep != nil {
				tc.prep(t, svc, clock, form)
			}
			from, ua := ip, testUA
			if tc.ip != "" {
				from = netip.MustParseAddr(tc.ip)
			}
			if tc.ua != "" {
				ua = tc.ua
			}
			rec := verifyPost(svc, from, ua, form)
			vr := decodeVerify(t, rec)
			if rec.Code != tc.status || vr.OK || vr.Error != tc.want.String() || vr.Retry != tc.retry {
				t.Fatalf("verify = %d %+v, want %d error %q retry %v", rec.Code, vr, tc.status, tc.want, tc.retry)
			}
			if len(rec.Result().Cookies()) != 0 {
				t.Error("a refused solution set a cookie")
			}
			if got := svc.Stats().Failed[tc.want]; got != 1 {
				t.Errorf("Stats.Failed[%v] = %d, want 1", tc.want, got)
			}
		})
	}
}

func TestVerifyEndpointLimits(t *testing.T) {
	svc := newService(t, newClock())
	ip := netip.MustParseAddr("198.51.100.20")
	rec := httptest.NewRecorder()
	svc.Serve(rec, httptest.NewRequest(http.MethodGet, challenge.PathPrefix+"verify", nil), ip)
	if rec.Code != http.StatusMethodNotAllowed || rec.Header().Get("Allow") != "POST" {
		t.Errorf("GET verify = %d Allow %q, want 405 POST", rec.Code, rec.Header().Get("Allow"))
	}
	big := url.Values{"c": {strings.Repeat("A", 8<<10)}, "n": {"1"}}
	rec = verifyPost(svc, ip, testUA, big)
	if rec.Code != http.StatusBadRequest {
		t.Errorf("8 KiB body = %d, want 400", rec.Code)
	}
	rec = httptest.NewRecorder()
	svc.Serve(rec, httptest.NewRequest(http.MethodGet, challenge.PathPrefix+"nothing", nil), ip)
	if rec.Code != http.StatusNotFound {
		t.Errorf("unknown endpoint = %d, want 404", rec.Code)
	}
	// Handler without a client address is a wiring error.
	rec = httptest.NewRecorder()
	svc.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, challenge.PathPrefix+"check", nil))
	if rec.Code != http.StatusInternalServerError {
		t.Errorf("Handler without WithClientIP = %d, want 500", rec.Code)
	}
}

func TestVerifySetsCookie(t *testing.T) {
	clock := newClock()
	for _, tc := range []struct {
		name       string
		tls        bool
		mode       verdict.Mode
		wantMaxAge int
	}{
		{"plain-normal", false, verdict.ModeNormal, int((24 * time.Hour).Seconds())},
		{"tls-under-attack", true, verdict.ModeUnderAttack, int(time.Hour.Seconds())},
	} {
		t.Run(tc.name, func(t *testing.T) {
			svc := newService(t, clock)
			ip := netip.MustParseAddr("198.51.100.20")
			p := issue(t, svc, ip, testUA, tc.mode)
			req := httptest.NewRequest(http.MethodPost, "https://example.org"+challenge.PathPrefix+"verify", strings.NewReader(p.Form(solve(t, p)).Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.Header.Set("User-Agent", testUA)
			if !tc.tls {
				req.TLS = nil
			}
			rec := httptest.NewRecorder()
			svc.Serve(rec, req, ip)
			vr := decodeVerify(t, rec)
			if !vr.OK || !strings.HasPrefix(vr.Next, challenge.PathPrefix+"check?") || vr.Receipt == "" {
				t.Fatalf("verify = %d %+v", rec.Code, vr)
			}
			cs := rec.Result().Cookies()
			if len(cs) != 1 {
				t.Fatalf("%d cookies, want 1", len(cs))
			}
			c := cs[0]
			if c.Name != challenge.CookieName || c.Path != "/" || !c.HttpOnly || c.SameSite != http.SameSiteLaxMode ||
				c.Secure != tc.tls || c.MaxAge != tc.wantMaxAge || !c.Expires.IsZero() || c.Domain != "" {
				t.Errorf("cookie = %+v, want host-only, Path=/, HttpOnly, Lax, Secure=%v, Max-Age=%d, no Expires", c, tc.tls, tc.wantMaxAge)
			}
			if rec.Header().Get("Cache-Control") != "no-store" {
				t.Errorf("verify answer Cache-Control = %q", rec.Header().Get("Cache-Control"))
			}
		})
	}
}

// TestDualStack checks the Happy Eyeballs path: a browser cleared over IPv4
// that comes back over IPv6 is challenged once, and its redemption yields
// one token, with the same id, valid over both families; a puzzle issued
// over one family can be redeemed over the other.
func TestDualStack(t *testing.T) {
	clock := newClock()
	svc := newService(t, clock)
	v4 := netip.MustParseAddr("198.51.100.20")
	v6 := netip.MustParseAddr("2001:db8:1:2::20")
	tok4 := obtainCookie(t, svc, v4, testUA)
	c4, _ := svc.Check(reqWithCookie(testUA, tok4), v4)
	if _, res := svc.Check(reqWithCookie(testUA, tok4), v6); res != challenge.CheckOtherFamily {
		t.Fatalf("v4 token over v6: %v, want other-family", res)
	}
	both := obtainCookie(t, svc, v6, testUA, &http.Cookie{Name: challenge.CookieName, Value: tok4})
	for _, ip := range []netip.Addr{v4, v6, netip.MustParseAddr("198.51.100.99"), netip.MustParseAddr("2001:db8:1:2::99")} {
		c, res := svc.Check(reqWithCookie(testUA, both), ip)
		if !c.Valid {
			t.Fatalf("merged token from %v: %v", ip, res)
		}
		if c.ID != c4.ID {
			t.Errorf("merged token id %x, want the original %x (one rate budget per browser)", c.ID, c4.ID)
		}
	}
	if got := svc.Stats().Merged; got != 1 {
		t.Errorf("Stats.Merged = %d, want 1", got)
	}
	// A puzzle issued over v6 redeemed over v4 (the browser switched
	// between page and verify): accepted, token for both.
	p := issue(t, svc, v6, testUA, verdict.ModeNormal)
	rec := verifyPost(svc, v4, testUA, p.Form(solve(t, p)))
	if vr := decodeVerify(t, rec); !vr.OK {
		t.Fatalf("cross-family redemption: %+v", vr)
	}
	tok := rec.Result().Cookies()[0].Value
	for _, ip := range []netip.Addr{v4, v6} {
		if _, res := svc.Check(reqWithCookie(testUA, tok), ip); res != challenge.CheckValid {
			t.Errorf("cross-family token from %v: %v", ip, res)
		}
	}
	// A forged old cookie lends nothing.
	fresh := obtainCookie(t, svc, v6, testUA, &http.Cookie{Name: challenge.CookieName, Value: flip(tok4, 100)})
	if _, res := svc.Check(reqWithCookie(testUA, fresh), v4); res != challenge.CheckOtherFamily {
		t.Errorf("token merged from a forged cookie over v4: %v, want other-family", res)
	}
}

func TestLoopDetection(t *testing.T) {
	ip := netip.MustParseAddr("198.51.100.20")
	type step struct {
		cookie bool   // send the clearance cookie to check
		ip     string // check from this address ("" = ip)
		ua     string
		query  string // extra query
	}
	for _, tc := range []struct {
		name     string
		step     step
		status   int
		location string
		cause    challenge.LoopCause
		counted  bool
	}{
		{name: "cookie-back", step: step{cookie: true}, status: 303, location: "/page?x=1"},
		{name: "cookie-back-post", step: step{cookie: true, query: "&m=POST"}, status: 200},
		{name: "no-cookie", step: step{}, status: 403, cause: challenge.LoopNoCookie, counted: true},
		{name: "address-changed", step: step{cookie: true, ip: "203.0.113.1"}, status: 403, cause: challenge.LoopAddress, counted: true},
		{name: "family-changed", step: step{cookie: true, ip: "2001:db8::1"}, status: 403, cause: challenge.LoopAddress, counted: true},
		{name: "browser-changed", step: step{cookie: true, ua: "Other/1.0"}, status: 403, cause: challenge.LoopBrowser, counted: true},
		{name: "guard-rechallenged", step: step{cookie: true, query: "&loop=1"}, status: 403, cause: challenge.LoopRechallenged, counted: true},
		{name: "guard-no-cookie", step: step{query: "&loop=1"}, status: 403, cause: challenge.LoopNoCookie, counted: true},
		{name: "no-receipt", step: step{query: "&r=bogus"}, status: 303, location: "/page?x=1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			svc := newService(t, newClock())
			p := issue(t, svc, ip, testUA, verdict.ModeNormal)
			rec := verifyPost(svc, ip, testUA, p.Form(solve(t, p)))
			vr := decodeVerify(t, rec)
			if !vr.OK {
				t.Fatalf("verify: %+v", vr)
			}
			target := vr.Next + tc.step.query
			if strings.Contains(tc.step.query, "&r=") {
				target = challenge.PathPrefix + "check?u=%2Fpage%3Fx%3D1" + tc.step.query
			}
			req := httptest.NewRequest(http.MethodGet, target, nil)
			ua := testUA
			if tc.step.ua != "" {
				ua = tc.step.ua
			}
			req.Header.Set("User-Agent", ua)
			req.Header.Set("Accept-Language", "de")
			if tc.step.cookie {
				req.AddCookie(rec.Result().Cookies()[0])
			}
			from := ip
			if tc.step.ip != "" {
				from = netip.MustParseAddr(tc.step.ip)
			}
			out := httptest.NewRecorder()
			svc.Serve(out, req, from)
			if out.Code != tc.status {
				t.Fatalf("check = %d, want %d\n%s", out.Code, tc.status, out.Body)
			}
			if tc.location != "" && out.Header().Get("Location") != tc.location {
				t.Errorf("Location = %q, want %q", out.Header().Get("Location"), tc.location)
			}
			loops := svc.Stats().Loops
			if tc.counted {
				if loops[tc.cause] != 1 {
					t.Errorf("Stats.Loops = %v, want one %v", loops, tc.cause)
				}
				if out.Header().Get("Rampart-Mitigated") != "challenge-loop" {
					t.Errorf("Rampart-Mitigated = %q", out.Header().Get("Rampart-Mitigated"))
				}
				if body := out.Body.String(); !strings.Contains(body, `lang="de"`) || strings.Contains(body, "rampart-challenge") {
					t.Errorf("loop page is not the German explanation:\n%s", body)
				}
			} else if loops != [challenge.NumLoopCauses]uint64{} {
				t.Errorf("Stats.Loops = %v, want none", loops)
			}
		})
	}
}

func TestCheckEndpointNoOpenRedirect(t *testing.T) {
	svc := newService(t, newClock())
	ip := netip.MustParseAddr("198.51.100.20")
	for _, u := range []string{"//evil.example/", "/\\evil.example", "https://evil.example/", "javascript:alert(1)", "/" + challenge.PathPrefix[1:] + "check", "/a\"><script>"} {
		req := httptest.NewRequest(http.MethodGet, challenge.PathPrefix+"check?u="+url.QueryEscape(u), nil)
		rec := httptest.NewRecorder()
		svc.Serve(rec, req, ip)
		if loc := rec.Header().Get("Location"); rec.Code != 303 || loc != "/" {
			t.Errorf("check?u=%q: %d Location %q, want 303 /", u, rec.Code, loc)
		}
	}
}

func TestNoJS(t *testing.T) {
	ip := netip.MustParseAddr("198.51.100.20")
	post := func(svc *challenge.Service, p challenge.Puzzle) *httptest.ResponseRecorder {
		form := url.Values{"c": {p.Challenge}, "u": {p.Return}}
		req := httptest.NewRequest(http.MethodPost, challenge.PathPrefix+"nojs", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("User-Agent", testUA)
		rec := httptest.NewRecorder()
		svc.Serve(rec, req, ip)
		return rec
	}
	t.Run("deny", func(t *testing.T) {
		svc := newService(t, newClock())
		p := issue(t, svc, ip, testUA, verdict.ModeNormal)
		if p.NoJS != "" {
			t.Errorf("puzzle offers a no-JS pass %q with NoJS deny", p.NoJS)
		}
		if rec := post(svc, p); rec.Code != http.StatusForbidden || len(rec.Result().Cookies()) != 0 {
			t.Errorf("nojs with deny = %d, cookies %v", rec.Code, rec.Result().Cookies())
		}
	})
	t.Run("pass", func(t *testing.T) {
		allowed := 1
		var asked []netip.Addr
		svc := newService(t, newClock(), func(o *challenge.Options) {
			o.NoJS = challenge.NoJSPass
			o.AllowNoJS = func(a netip.Addr) bool { asked = append(asked, a); allowed--; return allowed >= 0 }
		})
		p := issue(t, svc, ip, testUA, verdict.ModeNormal)
		rec := post(svc, p)
		if rec.Code != http.StatusSeeOther || !strings.HasPrefix(rec.Header().Get("Location"), challenge.PathPrefix+"check?") {
			t.Fatalf("nojs pass = %d %q", rec.Code, rec.Header().Get("Location"))
		}
		tok := rec.Result().Cookies()[0].Value
		if _, res := svc.Check(reqWithCookie(testUA, tok), ip); res != challenge.CheckValid {
			t.Errorf("no-JS clearance: %v", res)
		}
		if rec := post(svc, p); rec.Code != http.StatusForbidden {
			t.Errorf("second use of the same challenge = %d, want 403", rec.Code)
		}
		p2 := issue(t, svc, ip, testUA, verdict.ModeNormal)
		if rec := post(svc, p2); rec.Code != http.StatusTooManyRequests || rec.Header().Get("Retry-After") == "" {
			t.Errorf("over the limit = %d Retry-After %q, want 429", rec.Code, rec.Header().Get("Retry-After"))
		}
		st := svc.Stats()
		if st.NoJSPasses != 1 || st.Failed[challenge.VerifyNoJSLimited] != 1 || st.Failed[challenge.VerifyReplayed] != 1 {
			t.Errorf("stats = %+v", st)
		}
		if len(asked) == 0 || asked[0] != ip {
			t.Errorf("AllowNoJS asked for %v, want %v", asked, ip)
		}
	})
}

func TestOptionsValidation(t *testing.T) {
	for _, tc := range []struct {
		name string
		o    challenge.Options
	}{
		{"difficulty-too-high", challenge.Options{Difficulty: [challenge.NumModes]int{33, 33, 33}}},
		{"difficulty-falls", challenge.Options{Difficulty: [challenge.NumModes]int{20, 10, 22}}},
		{"ttl-too-short", challenge.Options{ClearanceTTL: [challenge.NumModes]time.Duration{time.Second}}},
		{"ttl-beyond-rotation", challenge.Options{KeyRotation: time.Hour}},
		{"challenge-ttl-short", challenge.Options{ChallengeTTL: time.Second}},
		{"challenge-ttl-fraction", challenge.Options{ChallengeTTL: 90500 * time.Millisecond}},
		{"v4-bits", challenge.Options{PrefixV4Bits: 33}},
		{"v6-bits", challenge.Options{PrefixV6Bits: 8}},
		{"nojs-unknown", challenge.Options{NoJS: "maybe"}},
		{"nojs-pass-unlimited", challenge.Options{NoJS: challenge.NoJSPass}},
		{"replay-small", challenge.Options{ReplayFilterSize: 10}},
		{"template-dir-missing", challenge.Options{TemplateDir: "/nonexistent/rampart"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := challenge.New(tc.o); err == nil {
				t.Errorf("New(%+v) succeeded", tc.o)
			}
		})
	}
	if _, err := challenge.New(challenge.Options{}); err != nil {
		t.Errorf("New(Options{}) = %v, want the defaults to be valid", err)
	}
}

// TestMovedVisitorGetsFreshToken: a token refused for another network of
// the same family does not lend its id or its other slot.
func TestMovedVisitorGetsFreshToken(t *testing.T) {
	svc := newService(t, newClock())
	a := netip.MustParseAddr("198.51.100.20")
	b := netip.MustParseAddr("203.0.113.20")
	old := obtainCookie(t, svc, a, testUA)
	oldC, _ := svc.Check(reqWithCookie(testUA, old), a)
	fresh := obtainCookie(t, svc, b, testUA, &http.Cookie{Name: challenge.CookieName, Value: old})
	c, res := svc.Check(reqWithCookie(testUA, fresh), b)
	if !c.Valid || c.ID == oldC.ID {
		t.Fatalf("moved visitor: %v id %x, want a valid token with a new id (old %x)", res, c.ID, oldC.ID)
	}
	if _, res := svc.Check(reqWithCookie(testUA, fresh), a); res != challenge.CheckPrefix {
		t.Errorf("fresh token from the old network: %v, want prefix", res)
	}
	if svc.Stats().Merged != 0 {
		t.Errorf("Merged = %d, want 0", svc.Stats().Merged)
	}
}
