package admin

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeBackend is a hand-written in-memory Backend.
type fakeBackend struct {
	mu      sync.Mutex
	blocks  map[netip.Prefix]Block
	purged  []string
	rotated int
	revoked []netip.Prefix
}

func (f *fakeBackend) Status() any { return map[string]string{"mode": "normal"} }
func (f *fakeBackend) Blocks() []Block {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []Block
	for _, b := range f.blocks {
		out = append(out, b)
	}
	return out
}
func (f *fakeBackend) Block(p netip.Prefix, ttl time.Duration, reason string) (Block, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	b := Block{CIDR: p.String(), Reason: reason, Added: time.Now(), Expires: time.Now().Add(ttl)}
	f.blocks[p] = b
	return b, nil
}
func (f *fakeBackend) Unblock(p netip.Prefix) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	_, ok := f.blocks[p]
	delete(f.blocks, p)
	return ok
}
func (f *fakeBackend) PurgeCache(prefix string) (int, error) {
	f.purged = append(f.purged, prefix)
	return 3, nil
}
func (f *fakeBackend) RotateKeys() error { f.rotated++; return nil }
func (f *fakeBackend) RevokeAll() error  { f.rotated += 100; return nil }
func (f *fakeBackend) RevokePrefix(p netip.Prefix) error {
	f.revoked = append(f.revoked, p)
	return nil
}

func TestTokenRequiredBeyondLoopback(t *testing.T) {
	fb := &fakeBackend{blocks: map[netip.Prefix]Block{}}
	for _, addr := range []string{":9901", "0.0.0.0:9901", "192.0.2.1:9901", "[::]:9901"} {
		if _, err := New(Options{Listen: addr, Backend: fb}); !errors.Is(err, ErrTokenRequired) {
			t.Errorf("%s without token: %v", addr, err)
		}
	}
	for _, addr := range []string{"127.0.0.1:9901", "[::1]:9901", "localhost:9901", "127.9.9.9:1"} {
		if _, err := New(Options{Listen: addr, Backend: fb}); err != nil {
			t.Errorf("%s: %v", addr, err)
		}
	}
}

func TestAPIWithClient(t *testing.T) {
	fb := &fakeBackend{blocks: map[netip.Prefix]Block{}}
	s, err := New(Options{Listen: "0.0.0.0:0", Token: "0123456789abcdef-secret", Backend: fb, Metrics: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("m 1\n")) })})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(s)
	defer srv.Close()
	ctx := context.Background()

	// Without the token: 401, except /healthz.
	bad := NewClient(srv.URL, "wrong")
	if _, err := bad.Blocks(ctx); err == nil || !strings.Contains(err.Error(), "401") {
		t.Fatalf("wrong token: %v", err)
	}
	resp, err := http.Get(srv.URL + "/metrics")
	if err != nil || resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("metrics without token: %v %v", resp.StatusCode, err)
	}
	resp.Body.Close()
	resp, err = http.Get(srv.URL + "/healthz")
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("healthz: %v %v", resp, err)
	}
	resp.Body.Close()

	c := NewClient(srv.URL, "0123456789abcdef-secret")
	b, err := c.Block(ctx, "203.0.113.7", time.Hour, "scraper")
	if err != nil {
		t.Fatal(err)
	}
	if b.CIDR != "203.0.113.7/32" || b.Reason != "scraper" {
		t.Errorf("block = %+v", b)
	}
	if _, err := c.Block(ctx, "2001:db8::1", time.Minute, ""); err != nil {
		t.Fatal(err)
	}
	if _, ok := fb.blocks[netip.MustParsePrefix("2001:db8::1/128")]; !ok {
		t.Errorf("v6 bare address not stored as /128: %v", fb.blocks)
	}
	if _, err := c.Block(ctx, "not-an-ip", time.Minute, ""); err == nil || !strings.Contains(err.Error(), "bad cidr") {
		t.Errorf("bad cidr: %v", err)
	}
	if _, err := c.Block(ctx, "10.0.0.0/8", -time.Minute, ""); err == nil || !strings.Contains(err.Error(), "bad ttl") {
		t.Errorf("bad ttl: %v", err)
	}
	list, err := c.Blocks(ctx)
	if err != nil || len(list) != 2 {
		t.Fatalf("blocks: %v %v", list, err)
	}
	if err := c.Unblock(ctx, "203.0.113.7"); err != nil {
		t.Fatal(err)
	}
	if err := c.Unblock(ctx, "203.0.113.7"); err == nil || !strings.Contains(err.Error(), "404") {
		t.Errorf("second unblock: %v", err)
	}
	if n, err := c.Purge(ctx, "news.example/news/"); err != nil || n != 3 || fb.purged[0] != "news.example/news/" {
		t.Errorf("purge: %d %v %v", n, err, fb.purged)
	}
	if err := c.RotateKeys(ctx, false); err != nil || fb.rotated != 1 {
		t.Errorf("rotate: %v %d", err, fb.rotated)
	}
	if err := c.RotateKeys(ctx, true); err != nil || fb.rotated != 101 {
		t.Errorf("revoke all: %v %d", err, fb.rotated)
	}
	if err := c.RevokePrefix(ctx, "198.51.100.7/24"); err != nil || len(fb.revoked) != 1 || fb.revoked[0].String() != "198.51.100.0/24" {
		t.Errorf("revoke prefix: %v %v", err, fb.revoked)
	}
	var st map[string]string
	if err := c.Status(ctx, &st); err != nil || st["mode"] != "normal" {
		t.Errorf("status: %v %v", st, err)
	}
	// Unknown JSON fields are refused rather than ignored.
	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/api/v1/blocks", strings.NewReader(`{"cidr":"1.2.3.4","tll":"1h"}`))
	req.Header.Set("Authorization", "Bearer 0123456789abcdef-secret")
	resp, err = http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("unknown field: %v %v", resp.StatusCode, err)
	}
	resp.Body.Close()
}

func TestEnsureToken(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	tok, err := EnsureToken(dir)
	if err != nil || len(tok) != 64 {
		t.Fatalf("token %q %v", tok, err)
	}
	fi, err := os.Stat(filepath.Join(dir, TokenFile))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("token file mode %v %v", fi.Mode(), err)
	}
	again, err := EnsureToken(dir)
	if err != nil || again != tok {
		t.Fatalf("second call changed the token: %q %v", again, err)
	}
}
