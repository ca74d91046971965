package shield

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rampart-shield/rampart/internal/config"
)

// testOrigin is a real origin on loopback that counts what reaches it.
type testOrigin struct {
	*httptest.Server
	hits atomic.Int64
}

func newOrigin(t testing.TB, h http.HandlerFunc) *testOrigin {
	t.Helper()
	o := &testOrigin{}
	if h == nil {
		h = func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/html")
			io.WriteString(w, "<p>origin page "+r.URL.Path+"</p>")
		}
	}
	o.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/healthz" {
			o.hits.Add(1)
		}
		h(w, r)
	}))
	t.Cleanup(o.Close)
	return o
}

// testConfig is a configuration for a shield on loopback ports chosen by
// the kernel, in front of origin.
func testConfig(t testing.TB, origin string, yaml string) *config.Config {
	t.Helper()
	cfg, err := config.Parse([]byte(yaml), "test.yaml")
	if err != nil {
		t.Fatal(err)
	}
	cfg.Listeners = []config.Listener{{Address: "127.0.0.1:0"}}
	cfg.Admin.Listen = "127.0.0.1:0"
	cfg.Upstream.Targets = []string{origin}
	cfg.StateDir = t.TempDir()
	cfg.Upstream.HealthCheck.Path = "/healthz"
	return cfg
}

// startShield starts a shield and stops it when the test ends.
func startShield(t testing.TB, cfg *config.Config) *Shield {
	t.Helper()
	s, err := New(cfg, Options{Version: "test", Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		s.Shutdown(ctx)
	})
	return s
}

// clientFrom returns an HTTP client whose connections come from the given
// loopback source address (Linux accepts any 127/8 source).
func clientFrom(src string) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 5 * time.Second}
	return &http.Client{
		Transport: &http.Transport{DialContext: d.DialContext, MaxIdleConnsPerHost: 4, DisableCompression: true},
		Timeout:   10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}

// get sends a browser-like GET and returns status, the Rampart-Mitigated
// header and the body.
func get(t testing.TB, c *http.Client, url string) (int, string, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	req.Header.Set("User-Agent", "Mozilla/5.0 (X11; Linux x86_64) rampart-test")
	req.Header.Set("Accept", "text/html,*/*")
	resp, err := c.Do(req)
	if err != nil {
		return 0, "", err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get("Rampart-Mitigated"), string(b)
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t testing.TB, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }
