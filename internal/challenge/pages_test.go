package challenge_test

import (
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/rampart-shield/rampart/internal/challenge"
	"github.com/rampart-shield/rampart/internal/verdict"
)

func challengeRec(svc *challenge.Service, hdr map[string]string, method string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, "/news/today?page=2&q=%22x%22", nil)
	req.Header.Set("User-Agent", testUA)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	svc.Challenge(rec, req, netip.MustParseAddr("198.51.100.20"), verdict.ModeElevated)
	return rec
}

var (
	scriptRE = regexp.MustCompile(`(?s)<script([^>]*)>(.*?)</script>`)
	styleRE  = regexp.MustCompile(`(?s)<style[^>]*>(.*?)</style>`)
)

func cspHash(s string) string {
	sum := sha256.Sum256([]byte(s))
	return "'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'"
}

func TestChallengePage(t *testing.T) {
	for _, tc := range []struct {
		name, acceptLanguage, wantLang, wantText string
	}{
		{"english-default", "", "en", "checking your browser"},
		{"french", "fr-CH, fr;q=0.9, en;q=0.8", "fr", "vérification de votre navigateur"},
		{"german-by-subtag", "de-AT", "de", "Ihr Browser wird geprüft"},
		{"unknown-falls-back", "es-ES, pt;q=0.5", "en", "checking your browser"},
		{"q-order", "en;q=0.2, de;q=0.9", "de", "Ihr Browser wird geprüft"},
		{"star-beats-low-q", "*;q=0.5, fr;q=0.1", "en", "checking your browser"},
		{"q-zero-excluded", "fr;q=0, de;q=0.1", "de", "Ihr Browser wird geprüft"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			svc := newService(t, newClock())
			rec := challengeRec(svc, map[string]string{"Accept": "text/html", "Sec-Fetch-Mode": "navigate", "Accept-Language": tc.acceptLanguage}, http.MethodGet)
			body := rec.Body.String()
			h := rec.Header()
			if rec.Code != http.StatusForbidden || h.Get("Rampart-Mitigated") != "challenge" || h.Get("Cache-Control") != "no-store" ||
				!strings.HasPrefix(h.Get("Content-Type"), "text/html") {
				t.Fatalf("answer %d headers %v", rec.Code, h)
			}
			if h.Get("Content-Language") != tc.wantLang || !strings.Contains(body, `<html lang="`+tc.wantLang+`">`) {
				t.Errorf("language %q, want %q", h.Get("Content-Language"), tc.wantLang)
			}
			if !strings.Contains(body, tc.wantText) {
				t.Errorf("page lacks %q", tc.wantText)
			}
			if len(body) >= 20<<10 {
				t.Errorf("page is %d bytes, want < 20 KiB", len(body))
			}
			// Accessible: a live status region, a labelled progress bar, a
			// noscript explanation; no images, no CAPTCHA.
			for _, want := range []string{`role="status"`, `aria-live="polite"`, `<label for="rampart-progress">`, "<noscript>", `id="rampart-post"`} {
				if !strings.Contains(body, want) {
					t.Errorf("page lacks %s", want)
				}
			}
			// No external resources, no inline handlers.
			for _, bad := range []string{"http://", "https://", " src=", "<img", " onclick", " onload", "<link"} {
				if strings.Contains(body, bad) {
					t.Errorf("page contains %q", bad)
				}
			}
			// Every executed inline script and every style is allowed by its
			// hash, and nothing else is allowed.
			csp := h.Get("Content-Security-Policy")
			for _, want := range []string{"default-src 'none'", "worker-src 'self'", "connect-src 'self'", "base-uri 'none'", "form-action 'self'"} {
				if !strings.Contains(csp, want) {
					t.Errorf("CSP %q lacks %q", csp, want)
				}
			}
			if strings.Contains(csp, "unsafe-inline") || strings.Contains(csp, "unsafe-eval") {
				t.Errorf("CSP allows unsafe sources: %q", csp)
			}
			executed := 0
			for _, m := range scriptRE.FindAllStringSubmatch(body, -1) {
				if strings.Contains(m[1], "application/json") {
					continue
				}
				executed++
				if !strings.Contains(csp, cspHash(m[2])) {
					t.Errorf("script not allowed by the CSP")
				}
			}
			for _, m := range styleRE.FindAllStringSubmatch(body, -1) {
				if !strings.Contains(csp, cspHash(m[1])) {
					t.Errorf("style not allowed by the CSP")
				}
			}
			if executed != 1 {
				t.Errorf("%d executed scripts, want 1", executed)
			}
			p, err := challenge.ParseChallenge(rec.Body.Bytes())
			if err != nil {
				t.Fatal(err)
			}
			if p.Return != "/news/today?page=2&q=%22x%22" || p.Method != "GET" || p.Difficulty != 5 /* newService: {4, 5, 6} */ {
				t.Errorf("puzzle = %+v", p)
			}
		})
	}
}

func TestChallengeAnswerKinds(t *testing.T) {
	svc := newService(t, newClock())
	for _, tc := range []struct {
		name    string
		hdr     map[string]string
		method  string
		ctype   string
		puzzle  bool
		hasBody bool
	}{
		{"navigation", map[string]string{"Sec-Fetch-Mode": "navigate", "Accept": "*/*"}, "GET", "text/html", true, true},
		{"html-accept-no-fetch-metadata", map[string]string{"Accept": "text/html,*/*;q=0.8"}, "GET", "text/html", true, true},
		{"fetch-cors-with-html", map[string]string{"Sec-Fetch-Mode": "cors", "Accept": "text/html"}, "GET", "text/plain", false, true},
		{"api-json", map[string]string{"Accept": "application/json"}, "GET", "application/json", true, true},
		{"feed-reader", map[string]string{"Accept": "application/rss+xml"}, "GET", "text/plain", false, true},
		{"no-accept", nil, "GET", "text/plain", false, true},
		{"head-navigation", map[string]string{"Sec-Fetch-Mode": "navigate"}, "HEAD", "text/html", false, false},
		{"post-navigation", map[string]string{"Sec-Fetch-Mode": "navigate"}, "POST", "text/html", true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := challengeRec(svc, tc.hdr, tc.method)
			if rec.Code != http.StatusForbidden || rec.Header().Get("Rampart-Mitigated") != "challenge" || rec.Header().Get("Cache-Control") != "no-store" {
				t.Fatalf("answer %d %v", rec.Code, rec.Header())
			}
			if ct := rec.Header().Get("Content-Type"); !strings.HasPrefix(ct, tc.ctype) {
				t.Errorf("Content-Type %q, want %s", ct, tc.ctype)
			}
			if (rec.Body.Len() > 0) != tc.hasBody {
				t.Errorf("body of %d bytes, want body=%v", rec.Body.Len(), tc.hasBody)
			}
			p, err := challenge.ParseChallenge(rec.Body.Bytes())
			if (err == nil) != tc.puzzle {
				t.Errorf("ParseChallenge err = %v, want puzzle=%v", err, tc.puzzle)
			}
			if tc.method == "POST" && p.Method != "POST" {
				t.Errorf("puzzle method %q, want POST", p.Method)
			}
		})
	}
}

func TestReturnURLSanitised(t *testing.T) {
	svc := newService(t, newClock())
	for _, tc := range []struct{ target, want string }{
		{"/plain", "/plain"},
		{"/a?b=<script>", "/a?b=%3Cscript%3E"},
		{"/" + strings.Repeat("a", 3000), "/"},
		{"/p?" + strings.Repeat("q", 3000), "/p"},
		{challenge.PathPrefix + "check", "/"},
	} {
		req := httptest.NewRequest(http.MethodGet, "/", nil)
		req.RequestURI = tc.target
		req.Header.Set("Accept", "application/json")
		rec := httptest.NewRecorder()
		svc.Challenge(rec, req, netip.MustParseAddr("198.51.100.20"), verdict.ModeNormal)
		p, err := challenge.ParseChallenge(rec.Body.Bytes())
		if err != nil {
			t.Fatal(err)
		}
		if p.Return != tc.want {
			t.Errorf("target %.40q: return %.40q, want %.40q", tc.target, p.Return, tc.want)
		}
	}
}

func TestWorkerEndpoint(t *testing.T) {
	svc := newService(t, newClock())
	p := issue(t, svc, netip.MustParseAddr("198.51.100.20"), testUA, verdict.ModeNormal)
	rec := httptest.NewRecorder()
	svc.Serve(rec, httptest.NewRequest(http.MethodGet, p.Worker, nil), netip.MustParseAddr("198.51.100.20"))
	if rec.Code != 200 || !strings.HasPrefix(rec.Header().Get("Content-Type"), "text/javascript") ||
		!strings.Contains(rec.Header().Get("Cache-Control"), "immutable") || !strings.Contains(rec.Body.String(), "onmessage") {
		t.Errorf("worker = %d %v", rec.Code, rec.Header())
	}
	if size := rec.Body.Len() + len(challengeRec(svc, map[string]string{"Sec-Fetch-Mode": "navigate"}, "GET").Body.String()); size >= 20<<10 {
		t.Errorf("page and worker together are %d bytes, want < 20 KiB", size)
	}
}

func TestTemplateDir(t *testing.T) {
	en, err := os.ReadFile("assets/challenge.en.html")
	if err != nil {
		t.Fatal(err)
	}
	t.Run("translation-added", func(t *testing.T) {
		dir := t.TempDir()
		es := strings.ReplaceAll(string(en), "One moment: checking your browser", "Un momento: comprobando su navegador")
		es = strings.Replace(es, `lang="en"`, `lang="es"`, 1)
		mustNil(t, os.WriteFile(filepath.Join(dir, "challenge.es.html"), []byte(es), 0o644))
		svc := newService(t, newClock(), func(o *challenge.Options) { o.TemplateDir = dir })
		rec := challengeRec(svc, map[string]string{"Sec-Fetch-Mode": "navigate", "Accept-Language": "es"}, "GET")
		if !strings.Contains(rec.Body.String(), "comprobando su navegador") || rec.Header().Get("Content-Language") != "es" {
			t.Errorf("Spanish template not used: %v", rec.Header())
		}
		// No Spanish notice: the loop page falls back to English.
		req := httptest.NewRequest(http.MethodPost, challenge.PathPrefix+"nojs", nil)
		req.Header.Set("Accept-Language", "es")
		out := httptest.NewRecorder()
		svc.Serve(out, req, netip.MustParseAddr("198.51.100.20"))
		if out.Header().Get("Content-Language") != "en" {
			t.Errorf("notice language %q, want en", out.Header().Get("Content-Language"))
		}
	})
	for _, tc := range []struct{ name, file, content string }{
		{"external-script", "challenge.en.html", strings.Replace(string(en), "</body>", `<script src="https://cdn.example/x.js"></script></body>`, 1)},
		{"inline-handler", "challenge.en.html", strings.Replace(string(en), "<main>", `<main onclick="x()">`, 1)},
		{"no-data", "challenge.en.html", strings.Replace(string(en), "{{.Data}}", "", 1)},
		{"too-big", "challenge.en.html", strings.Replace(string(en), "<main>", "<main>"+strings.Repeat("<p>padding</p>", 1500), 1)},
		{"syntax", "challenge.fr.html", "{{if}}"},
		{"notice-script", "notice.en.html", "<p>{{.Kind}}</p><script>alert(1)</script>"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			mustNil(t, os.WriteFile(filepath.Join(dir, tc.file), []byte(tc.content), 0o644))
			if _, err := challenge.New(challenge.Options{TemplateDir: dir}); err == nil {
				t.Error("New accepted the template")
			}
		})
	}
}
