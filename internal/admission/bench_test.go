package admission

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/rampart-shield/rampart/internal/verdict"
)

// BenchmarkAdmissionAcquireRelease is the fast path: a slot is free.
func BenchmarkAdmissionAcquireRelease(b *testing.B) {
	clk := newFakeClock()
	l := mustNew(b, Options{Now: clk.Now, InitialLimit: 1000, MaxLimit: 1000, ProbeInterval: -1})
	finishProbe(b, l, clk, time.Millisecond)
	ctx := b.Context()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			t, err := l.Acquire(ctx, verdict.ClassNormal, 0)
			if err != nil {
				b.Error(err)
				return
			}
			t.Release(time.Millisecond, Success)
		}
	})
}

// BenchmarkAdmissionQueued is the slow path: more goroutines than slots, so
// most requests wait in the queue for a release.
func BenchmarkAdmissionQueued(b *testing.B) {
	clk := newFakeClock()
	l := mustNew(b, Options{Now: clk.Now, InitialLimit: 2, MinLimit: 2, ProbeInterval: -1})
	finishProbe(b, l, clk, time.Millisecond)
	ctx := b.Context()
	b.SetParallelism(8)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			t, err := l.Acquire(ctx, verdict.ClassNormal, 0)
			if err != nil {
				b.Error(err)
				return
			}
			t.Release(time.Millisecond, Success)
		}
	})
}

// BenchmarkAdmissionMiddleware is the gate around a trivial handler.
func BenchmarkAdmissionMiddleware(b *testing.B) {
	clk := newFakeClock()
	l := mustNew(b, Options{Now: clk.Now, InitialLimit: 1000, MaxLimit: 1000, ProbeInterval: -1})
	finishProbe(b, l, clk, time.Millisecond)
	h := l.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusOK)
	}), Hooks{})
	req := httptest.NewRequest("GET", "/", nil)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		w := &nopWriter{h: http.Header{}}
		for pb.Next() {
			h.ServeHTTP(w, req)
		}
	})
}

type nopWriter struct{ h http.Header }

func (w *nopWriter) Header() http.Header         { return w.h }
func (w *nopWriter) Write(p []byte) (int, error) { return len(p), nil }
func (w *nopWriter) WriteHeader(int)             {}
