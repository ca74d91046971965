package shield

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rampart-shield/rampart/internal/challenge"
	"github.com/rampart-shield/rampart/internal/config"
	"github.com/rampart-shield/rampart/internal/verdict"
)

// TestAutoModeDetectsAndStandsDown: with mode auto, a flood raises the mode
// to elevated within seconds (pages are then micro-cached), and the mode
// steps back down when the flood ends.
func TestAutoModeDetectsAndStandsDown(t *testing.T) {
	origin := newOrigin(t, nil)
	s := startShield(t, testConfig(t, origin.URL, `
mode: auto
default_rules: false  # no per-address limits: this test is about detection
detect: {warm_up: 0s, min_rate: 10, min_origin_rate: 50, elevate_after: 2, stand_down: 2s}
`))
	if s.Mode() != verdict.ModeNormal || !s.auto.Load() {
		t.Fatalf("start: %v auto=%v", s.Mode(), s.auto.Load())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := clientFrom(fmt.Sprintf("127.130.%d.1", i))
			for n := 0; ctx.Err() == nil && s.Mode() == verdict.ModeNormal; n++ {
				get(t, c, fmt.Sprintf("%s/news/%d?x=%d", s.Addrs()[0], n%5, n))
			}
		}()
	}
	waitFor(t, "the flood to raise the mode", 12*time.Second, func() bool { return s.Mode() == verdict.ModeElevated })
	cancel()
	wg.Wait()
	if why := s.ModeReason(); !strings.Contains(why, "surge") {
		t.Errorf("reason %q", why)
	}
	waitFor(t, "the mode to stand down", 10*time.Second, func() bool { return s.Mode() == verdict.ModeNormal })
	if !strings.Contains(s.ModeReason(), "quiet") {
		t.Errorf("stand-down reason %q", s.ModeReason())
	}
}

// The detector's baseline survives a restart through the state directory;
// a file that is too old or not valid is ignored.
func TestBaselineKeptAcrossRestart(t *testing.T) {
	origin := newOrigin(t, nil)
	cfg := testConfig(t, origin.URL, "mode: auto\n")
	path := filepath.Join(cfg.StateDir, baselineFile)

	s, err := New(cfg, Options{Version: "test", Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the baseline to learn", 5*time.Second, func() bool {
		s.modeMu.Lock()
		defer s.modeMu.Unlock()
		return s.detector.Learned()
	})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	var saved savedBaseline
	data, err := os.ReadFile(path)
	if err != nil || json.Unmarshal(data, &saved) != nil || time.Since(saved.Saved) > time.Minute {
		t.Fatalf("baseline not saved at shutdown: %v %s", err, data)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("baseline file mode: %v %v", fi.Mode(), err)
	}

	write := func(b savedBaseline) {
		data, _ := json.Marshal(b)
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	baseline := func(s *Shield) float64 {
		s.modeMu.Lock()
		defer s.modeMu.Unlock()
		r, _ := s.detector.Baseline()
		return r
	}
	write(savedBaseline{RequestsPerS: 4321, OriginPerS: 99, Saved: time.Now().Add(-time.Hour)})
	s2 := startShield(t, cfg)
	if got := baseline(s2); got != 4321 || !strings.Contains(s2.ModeReason(), "baseline saved") {
		t.Fatalf("restart: baseline %v, reason %q", got, s2.ModeReason())
	}

	write(savedBaseline{RequestsPerS: 4321, Saved: time.Now().Add(-8 * 24 * time.Hour)})
	cfg3 := *cfg
	cfg3.Listeners = []config.Listener{{Address: "127.0.0.1:0"}}
	if s3 := startShield(t, &cfg3); baseline(s3) != 0 {
		t.Fatalf("an 8-day-old baseline was used: %v", baseline(s3))
	}
	if err := os.WriteFile(path, []byte("{not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	if s4 := startShield(t, &cfg3); baseline(s4) != 0 {
		t.Fatalf("a broken baseline file was used: %v", baseline(s4))
	}
}

// The configuration's default difficulties are the challenge package's, so
// the figures measured there (TestBrowserSolveTimes) are the binary's.
func TestDefaultDifficultiesAgree(t *testing.T) {
	d := config.Default().Challenge.Difficulty
	if got := [challenge.NumModes]int{d.Normal, d.Elevated, d.UnderAttack}; got != challenge.DefaultDifficulty {
		t.Fatalf("config difficulty %v, challenge.DefaultDifficulty %v", got, challenge.DefaultDifficulty)
	}
}

// TestFloodOnsetTripsAtOnce: a flood far past the detector's threshold
// raises the mode within a fraction of a second (the tripwire), well
// before the next one-second reading would count it as a surge for
// elevate_after seconds.
func TestFloodOnsetTripsAtOnce(t *testing.T) {
	origin := newOrigin(t, nil)
	s := startShield(t, testConfig(t, origin.URL, `
mode: auto
default_rules: false
detect: {warm_up: 0s, min_rate: 5, min_origin_rate: 1000, elevate_after: 5}
`))
	// Young baseline: the threshold is 10 x 5/s, a trip needs 100/s.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	start := time.Now()
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			c := clientFrom(fmt.Sprintf("127.131.%d.1", i))
			for n := 0; ctx.Err() == nil && s.Mode() == verdict.ModeNormal; n++ {
				get(t, c, fmt.Sprintf("%s/news/%d", s.Addrs()[0], n%5))
			}
		})
	}
	waitFor(t, "the flood to raise the mode", 8*time.Second, func() bool { return s.Mode() == verdict.ModeElevated })
	took := time.Since(start)
	cancel()
	wg.Wait()
	if why := s.ModeReason(); !strings.Contains(why, "fast trip") {
		t.Fatalf("raised by %q after %v, want the tripwire", why, took)
	}
	// elevate_after 5 would have taken five seconds of surge.
	if took > 1500*time.Millisecond {
		t.Fatalf("raised after %v", took)
	}
}

// TestQueueTripsAtOnce: requests piling up for a saturated origin raise the
// mode within a fraction of a second (the tripwire reads the admission
// queue), though their rate is far under any surge threshold and the
// one-second readings would take elevate_after seconds.
func TestQueueTripsAtOnce(t *testing.T) {
	hold := make(chan struct{})
	origin := newOrigin(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-hold:
		case <-r.Context().Done():
		}
		w.Header().Set("Cache-Control", "no-store")
	})
	s := startShield(t, testConfig(t, origin.URL, `
mode: auto
default_rules: false
detect: {warm_up: 0s, min_rate: 100000, min_origin_rate: 100000, elevate_after: 5}
admission: {initial_limit: 2, min_limit: 2, max_limit: 2, queue_size: 512}
`))
	start := time.Now()
	var wg sync.WaitGroup
	for i := range 40 {
		wg.Go(func() {
			get(t, clientFrom(fmt.Sprintf("127.132.%d.1", i)), fmt.Sprintf("%s/search?q=%d", s.Addrs()[0], i))
		})
	}
	waitFor(t, "the queue to raise the mode", 4*time.Second, func() bool { return s.Mode() == verdict.ModeElevated })
	took := time.Since(start)
	close(hold)
	wg.Wait()
	if why := s.ModeReason(); !strings.Contains(why, "queued for the origin (fast trip)") {
		t.Fatalf("raised by %q after %v, want the tripwire on the queue", why, took)
	}
	if took > 1500*time.Millisecond {
		t.Fatalf("raised after %v", took)
	}
}
