package netx

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/acme/autocert"
)

// TestACMEDirectoryOptions: the directory URL and the CA file are checked by
// NewServer, and each directory other than Let's Encrypt production gets its
// own cache. The issuance itself is tested against Pebble in
// internal/shield (TestACMEIssuanceWithPebble).
func TestACMEDirectoryOptions(t *testing.T) {
	dir := t.TempDir()
	ca := filepath.Join(dir, "ca.pem")
	writeCert(t, ca, filepath.Join(dir, "ca.key"))
	empty := filepath.Join(dir, "empty.pem")
	if err := os.WriteFile(empty, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	cache := filepath.Join(dir, "acme")
	acmeOpts := func(directory, caFile string) Options {
		return Options{TLS: &TLSOptions{ACMEDomains: []string{"www.example.org"}, ACMECacheDir: cache,
			ACMEDirectoryURL: directory, ACMECAFile: caFile}}
	}

	for _, tc := range []struct {
		name, directory, caFile, want string
	}{
		{"http directory", "http://127.0.0.1:14000/dir", "", "TLS.ACMEDirectoryURL must be an https URL"},
		{"directory without host", "https:///dir", "", "TLS.ACMEDirectoryURL must be an https URL"},
		{"missing CA file", "https://127.0.0.1:14000/dir", filepath.Join(dir, "missing.pem"), "netx: read the ACME CA file: open "},
		{"empty CA file", "https://127.0.0.1:14000/dir", empty, "netx: the ACME CA file " + empty + " holds no PEM certificate"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewServer(acmeOpts(tc.directory, tc.caFile), okHandler())
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("NewServer = %v, want an error containing %q", err, tc.want)
			}
		})
	}

	cacheOf := func(directory, caFile string) (string, *autocert.Manager) {
		t.Helper()
		s, err := NewServer(acmeOpts(directory, caFile), okHandler())
		if err != nil {
			t.Fatalf("NewServer(%q, %q): %v", directory, caFile, err)
		}
		return string(s.certs.acme.Cache.(autocert.DirCache)), s.certs.acme
	}
	if got, m := cacheOf("", ""); got != cache || m.Client != nil {
		t.Errorf("default directory: cache %s (want %s), client %v (want autocert's)", got, cache, m.Client)
	}
	if got, _ := cacheOf(autocert.DefaultACMEDirectory, ""); got != cache {
		t.Errorf("Let's Encrypt production named: cache %s, want %s", got, cache)
	}
	staging, m := cacheOf("https://acme-staging-v02.api.letsencrypt.org/directory", "")
	if filepath.Dir(staging) != cache || !strings.HasPrefix(filepath.Base(staging), "acme-staging-v02.api.letsencrypt.org+") {
		t.Errorf("staging cache = %s, want %s/acme-staging-v02.api.letsencrypt.org+HASH", staging, cache)
	}
	if m.Client == nil || m.Client.DirectoryURL != "https://acme-staging-v02.api.letsencrypt.org/directory" || m.Client.HTTPClient != nil {
		t.Errorf("staging client = %+v, want the staging directory and the default HTTP client", m.Client)
	}
	a, m := cacheOf("https://127.0.0.1:14000/dir", ca)
	b, _ := cacheOf("https://127.0.0.1:14001/dir", ca)
	if a == b || filepath.Base(a) == "" || !strings.HasPrefix(filepath.Base(a), "127.0.0.1_14000+") {
		t.Errorf("two test CAs share a cache or it is badly named: %s, %s", a, b)
	}
	if m.Client.HTTPClient == nil {
		t.Error("with a CA file the ACME client has no HTTP client of its own")
	}
}

// TestACMEHTTPHostWithPort: the HTTP-01 handler accepts a Host header with a
// port for a configured name (a CA validating on a port other than 80) and
// still refuses other names.
func TestACMEHTTPHostWithPort(t *testing.T) {
	s, err := NewServer(Options{TLS: &TLSOptions{ACMEDomains: []string{"www.example.org"}, ACMECacheDir: t.TempDir()}}, okHandler())
	if err != nil {
		t.Fatal(err)
	}
	h := s.ACMEHTTPHandler(nil)
	for _, tc := range []struct {
		host string
		want int
	}{
		{"www.example.org", http.StatusNotFound}, // allowed; no such token
		{"www.example.org:5002", http.StatusNotFound},
		{"other.example.org", http.StatusForbidden},
		{"other.example.org:5002", http.StatusForbidden},
	} {
		req := httptest.NewRequest("GET", "http://"+tc.host+"/.well-known/acme-challenge/no-such-token", nil)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != tc.want {
			t.Errorf("Host %s: %d %s, want %d", tc.host, rec.Code, strings.TrimSpace(rec.Body.String()), tc.want)
		}
	}
}
