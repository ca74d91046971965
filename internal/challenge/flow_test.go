package challenge_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/rampart-shield/rampart/internal/challenge"
)

// visitor is a Go client that behaves like a browser with JavaScript.
type visitor struct {
	t      *testing.T
	srv    *httptest.Server
	client *http.Client
	ip     string // value for testIPHeader, "" = the socket's address
	ua     string
}

func newVisitor(t *testing.T, srv *httptest.Server) *visitor {
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	c := srv.Client()
	c.Jar = jar
	c.Timeout = 10 * time.Second
	return &visitor{t: t, srv: srv, client: c, ua: "Mozilla/5.0 (X11; Linux x86_64) TestBrowser/1.0"}
}

func (v *visitor) do(req *http.Request) (*http.Response, []byte) {
	v.t.Helper()
	req.Header.Set("User-Agent", v.ua)
	if v.ip != "" {
		req.Header.Set(testIPHeader, v.ip)
	}
	resp, err := v.client.Do(req)
	if err != nil {
		v.t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		v.t.Fatal(err)
	}
	return resp, body
}

// navigate GETs path as a page navigation.
func (v *visitor) navigate(path string) (*http.Response, []byte) {
	v.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, v.srv.URL+path, nil)
	req.Header.Set("Accept", "text/html,application/xhtml+xml")
	req.Header.Set("Sec-Fetch-Mode", "navigate")
	return v.do(req)
}

// redeem solves the challenge in body and posts it; it returns the
// verify answer.
func (v *visitor) redeem(body []byte) (challenge.VerifyResponse, int) {
	v.t.Helper()
	p, err := challenge.ParseChallenge(body)
	if err != nil {
		v.t.Fatalf("ParseChallenge: %v\n%s", err, body)
	}
	sol, err := challenge.Solve(context.Background(), p)
	if err != nil {
		v.t.Fatalf("Solve: %v", err)
	}
	req, err := challenge.NewVerifyRequest(context.Background(), v.srv.URL, p, sol)
	if err != nil {
		v.t.Fatal(err)
	}
	resp, out := v.do(req)
	var vr challenge.VerifyResponse
	if err := json.Unmarshal(out, &vr); err != nil {
		v.t.Fatalf("verify answer %d %q: %v", resp.StatusCode, out, err)
	}
	return vr, resp.StatusCode
}

// pass goes through the whole challenge for path and returns the final page.
func (v *visitor) pass(path string) (*http.Response, []byte) {
	v.t.Helper()
	resp, body := v.navigate(path)
	if resp.StatusCode != http.StatusForbidden || resp.Header.Get("Rampart-Mitigated") != "challenge" {
		v.t.Fatalf("first visit: %d %q, want 403 challenge", resp.StatusCode, resp.Header.Get("Rampart-Mitigated"))
	}
	vr, status := v.redeem(body)
	if !vr.OK {
		v.t.Fatalf("verify: %d %+v", status, vr)
	}
	req, _ := http.NewRequest(http.MethodGet, v.srv.URL+vr.Next, nil)
	req.Header.Set("Accept", "text/html")
	req.Header.Set("Sec-Fetch-Mode", "navigate")
	return v.do(req)
}

func newShieldServer(t *testing.T, svc *challenge.Service) (*httptest.Server, *shield) {
	sh := &shield{svc: svc, origin: origin()}
	srv := httptest.NewServer(sh)
	t.Cleanup(srv.Close)
	return srv, sh
}

func TestFlowReachesOrigin(t *testing.T) {
	clock := newClock()
	svc := newService(t, clock)
	srv, sh := newShieldServer(t, svc)
	v := newVisitor(t, srv)
	resp, body := v.pass("/news/today?page=2&x=%3Cb%3E")
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), originPage) {
		t.Fatalf("after challenge: %d %q", resp.StatusCode, body)
	}
	if !strings.Contains(string(body), "GET /news/today?page=2&x=%3Cb%3E") {
		t.Errorf("origin saw %q, want the original URL", body)
	}
	if got := sh.lastResult(); got != challenge.CheckValid {
		t.Errorf("last check = %v, want valid", got)
	}
	// The clearance holds for later requests of any kind.
	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/api/data", nil)
	req.Header.Set("Accept", "application/json")
	resp, body = v.do(req)
	if resp.StatusCode != http.StatusOK {
		t.Errorf("API call with clearance: %d %s", resp.StatusCode, body)
	}
	st := svc.Stats()
	if st.Solved != 1 || st.Pages != 1 || st.Issued != 1 {
		t.Errorf("stats = %+v, want 1 page, 1 issued, 1 solved", st)
	}
}
