package shield

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

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
detect: {warm_up: 0s, min_rate: 50, min_origin_rate: 50, elevate_after: 2, stand_down: 2s}
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
