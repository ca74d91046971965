package cache

import (
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/rampart-shield/rampart/internal/verdict"
)

// TestFreshnessRules sends a request, moves the clock, sends another, and
// checks how the second was answered and how often the origin was asked.
func TestFreshnessRules(t *testing.T) {
	type step struct {
		after   time.Duration
		want    string // Rampart-Cache
		origins int64  // origin requests so far
	}
	tests := []struct {
		name   string
		status int
		hdr    []string // response headers, name/value pairs
		mode   verdict.Mode
		opts   Options
		steps  []step
	}{
		{name: "max-age", hdr: []string{"Cache-Control", "max-age=60"},
			steps: []step{{0, "MISS", 1}, {30 * time.Second, "HIT", 1}, {31 * time.Second, "MISS", 2}, {0, "HIT", 2}}},
		{name: "s-maxage beats max-age", hdr: []string{"Cache-Control", "max-age=600, s-maxage=10"},
			steps: []step{{0, "MISS", 1}, {5 * time.Second, "HIT", 1}, {6 * time.Second, "MISS", 2}}},
		{name: "Expires minus Date", hdr: []string{"Date", "@0", "Expires", "@30"},
			steps: []step{{0, "MISS", 1}, {20 * time.Second, "HIT", 1}, {11 * time.Second, "MISS", 2}}},
		{name: "invalid Expires is stale", hdr: []string{"Expires", "0"},
			steps: []step{{0, "MISS", 1}, {0, "MISS", 2}}},
		{name: "Age counts", hdr: []string{"Cache-Control", "max-age=60", "Age", "50"},
			steps: []step{{0, "MISS", 1}, {5 * time.Second, "HIT", 1}, {6 * time.Second, "MISS", 2}}},
		{name: "no-cache revalidates every time", hdr: []string{"Cache-Control", "no-cache, max-age=60"},
			steps: []step{{0, "MISS", 1}, {0, "MISS", 2}}},
		{name: "no-store is not stored", hdr: []string{"Cache-Control", "no-store"},
			steps: []step{{0, "BYPASS", 1}, {0, "BYPASS", 2}}},
		{name: "private is not stored", hdr: []string{"Cache-Control", "private, max-age=60"},
			steps: []step{{0, "BYPASS", 1}, {0, "BYPASS", 2}}},
		{name: "Set-Cookie is not stored", hdr: []string{"Cache-Control", "public, max-age=60", "Set-Cookie", "a=1"},
			steps: []step{{0, "BYPASS", 1}, {0, "BYPASS", 2}}},
		{name: "Vary star is not stored", hdr: []string{"Cache-Control", "max-age=60", "Vary", "*"},
			steps: []step{{0, "BYPASS", 1}, {0, "BYPASS", 2}}},
		{name: "event stream is not stored", hdr: []string{"Cache-Control", "max-age=60", "Content-Type", "text/event-stream"},
			steps: []step{{0, "BYPASS", 1}, {0, "BYPASS", 2}}},
		{name: "hit-for-pass ends", hdr: []string{"Cache-Control", "no-store"},
			steps: []step{{0, "BYPASS", 1}, {6 * time.Second, "BYPASS", 2}}},
		{name: "404 capped at NotFoundTTL", status: 404, hdr: []string{"Cache-Control", "max-age=3600"},
			steps: []step{{0, "MISS", 1}, {9 * time.Second, "HIT", 1}, {2 * time.Second, "MISS", 2}}},
		{name: "410 keeps its TTL", status: 410, hdr: []string{"Cache-Control", "max-age=3600"},
			steps: []step{{0, "MISS", 1}, {30 * time.Minute, "HIT", 1}}},
		{name: "302 is not stored", status: 302, hdr: []string{"Cache-Control", "max-age=3600", "Location", "/x"},
			steps: []step{{0, "BYPASS", 1}, {0, "BYPASS", 2}}},
		{name: "500 is not stored", status: 500, hdr: []string{"Cache-Control", "max-age=3600"},
			steps: []step{{0, "MISS", 1}, {0, "MISS", 2}}},
		{name: "no freshness in normal mode", hdr: nil,
			steps: []step{{0, "MISS", 1}, {0, "MISS", 2}}},
		{name: "micro-cached when elevated", hdr: nil, mode: verdict.ModeElevated,
			steps: []step{{0, "MISS", 1}, {time.Second, "HIT", 1}, {1500 * time.Millisecond, "MISS", 2}}},
		{name: "micro-caching overrides no-cache", hdr: []string{"Cache-Control", "no-cache, max-age=0, must-revalidate"}, mode: verdict.ModeElevated,
			steps: []step{{0, "MISS", 1}, {time.Second, "HIT", 1}}},
		{name: "micro-caching never stores private", hdr: []string{"Cache-Control", "private"}, mode: verdict.ModeUnderAttack,
			steps: []step{{0, "BYPASS", 1}, {0, "BYPASS", 2}}},
		{name: "micro-caching keeps a longer TTL", hdr: []string{"Cache-Control", "max-age=60"}, mode: verdict.ModeElevated,
			steps: []step{{0, "MISS", 1}, {30 * time.Second, "HIT", 1}}},
		{name: "micro-caching off in normal mode", hdr: []string{"Cache-Control", "max-age=0"}, mode: verdict.ModeNormal,
			steps: []step{{0, "MISS", 1}, {0, "MISS", 2}}},
		{name: "micro-caching from normal mode", hdr: nil, mode: verdict.ModeNormal, opts: Options{ExplicitModes: true, MicroCacheIn: verdict.ModeNormal, NormaliseIn: verdict.ModeUnderAttack},
			steps: []step{{0, "MISS", 1}, {time.Second, "HIT", 1}}},
		{name: "stale-while-revalidate from the origin", hdr: []string{"Cache-Control", "max-age=10, stale-while-revalidate=30"},
			steps: []step{{0, "MISS", 1}, {20 * time.Second, "STALE", 2}}},
		{name: "stale-while-revalidate configured", hdr: []string{"Cache-Control", "max-age=10"}, opts: Options{StaleWhileRevalidate: time.Minute},
			steps: []step{{0, "MISS", 1}, {20 * time.Second, "STALE", 2}, {0, "HIT", 2}}},
		{name: "must-revalidate forbids stale-while-revalidate", hdr: []string{"Cache-Control", "max-age=10, must-revalidate, stale-while-revalidate=30"},
			steps: []step{{0, "MISS", 1}, {20 * time.Second, "MISS", 2}}},
		{name: "under attack serves stale rather than wait", hdr: []string{"Cache-Control", "max-age=10"}, mode: verdict.ModeUnderAttack,
			steps: []step{{0, "MISS", 1}, {20 * time.Minute, "STALE", 2}}},
		{name: "under attack but past stale-if-error", hdr: []string{"Cache-Control", "max-age=10"}, mode: verdict.ModeUnderAttack,
			steps: []step{{0, "MISS", 1}, {2 * time.Hour, "MISS", 2}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := newFakeClock()
			start := clk.Now()
			var m modeVar
			m.set(tt.mode)
			o := tt.opts
			o.Now, o.Mode = clk.Now, m.get
			c := mustNew(t, o)
			org := &origin{handler: func(w http.ResponseWriter, r *http.Request) {
				for i := 0; i+1 < len(tt.hdr); i += 2 {
					v := tt.hdr[i+1]
					var secs int
					if _, err := fmt.Sscanf(v, "@%d", &secs); err == nil {
						v = start.Add(time.Duration(secs) * time.Second).Format(http.TimeFormat)
					}
					w.Header().Add(tt.hdr[i], v)
				}
				if tt.status != 0 {
					w.WriteHeader(tt.status)
				}
				io.WriteString(w, "page")
			}}
			h := c.Middleware(org)
			for i, s := range tt.steps {
				clk.Advance(s.after)
				w := do(h, "GET", "http://example.org/page")
				if got := w.Header().Get("Rampart-Cache"); got != s.want {
					t.Errorf("step %d: Rampart-Cache %q, want %q", i, got, s.want)
				}
				if s.want == "STALE" {
					// The background refresh runs on its own goroutine.
					eventually(t, "background refresh", func() bool { return org.n.Load() >= s.origins })
					eventually(t, "refresh done", func() bool { return c.Stats().Flights == 0 })
				}
				if got := org.n.Load(); got != s.origins {
					t.Errorf("step %d: origin saw %d requests, want %d", i, got, s.origins)
				}
			}
		})
	}
}
