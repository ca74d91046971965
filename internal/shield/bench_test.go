package shield

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/rampart-shield/rampart/internal/verdict"
)

func benchShield(b *testing.B, yaml string) (*Shield, *testOrigin) {
	origin := newOrigin(b, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		w.Write(smallPage)
	})
	cfg := testConfig(b, origin.URL, yaml)
	s, err := New(cfg, Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		b.Fatal(err)
	}
	return s, origin
}

var smallPage = make([]byte, 1024)

// BenchmarkIdentifyDecide is the per-request work before the cache:
// identify the client, check the clearance, decide with the built-in rules.
// It must not allocate.
func BenchmarkIdentifyDecide(b *testing.B) {
	s, _ := benchShield(b, "")
	r := httptest.NewRequest(http.MethodGet, "http://news.example/news/2026/vote", nil)
	r.RemoteAddr = "203.0.113.9:51234"
	r.Header.Set("User-Agent", "Mozilla/5.0")
	r.Header.Set("Accept", "text/html")
	r.Header.Set("Cookie", "theme=dark; lang=en")
	rt := s.rt.Load()
	var f verdict.Facts
	b.ReportAllocs()
	for b.Loop() {
		s.identify(rt, r, &f)
		f.Clearance, _ = s.challenge.Check(r, f.IP)
		d := s.engine.Decide(&f, verdict.ModeNormal, s.now().UnixNano())
		if d.Action != verdict.Allow {
			// The per-IP limit will trip in a long run: that is a decision too.
			_ = d
		}
	}
}

// BenchmarkServeHTTP is the whole request path through the pipeline
// (decision, cache miss on an uncacheable page, admission, proxying to a
// real origin on loopback).
func BenchmarkServeHTTP(b *testing.B) {
	s, _ := benchShield(b, "default_rules: false\n")
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		r := httptest.NewRequest(http.MethodGet, "http://news.example/news/1", nil)
		r.RemoteAddr = "203.0.113.9:51234"
		r.Header.Set("User-Agent", "Mozilla/5.0")
		r.Header.Set("Accept", "text/html")
		for pb.Next() {
			w := httptest.NewRecorder()
			s.ServeHTTP(w, r)
			if w.Code != 200 {
				b.Fatalf("status %d", w.Code)
			}
		}
	})
}
