package shield

import (
	"context"
	"net"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/rampart-shield/rampart/internal/demo"
)

// TestBrowserPassesChallengeThroughRampart drives a real headless Chromium
// through a whole rampart in under_attack mode in front of the demo origin:
// the first navigation is challenged, the browser solves the proof of work,
// lands on the origin's page with a clearance, and the next page is served
// without a second challenge. It records how long the solve took.
func TestBrowserPassesChallengeThroughRampart(t *testing.T) {
	chromium := ""
	for _, p := range []string{os.Getenv("RAMPART_CHROMIUM"), "/usr/bin/chromium", "/usr/bin/chromium-browser"} {
		if _, err := os.Stat(p); p != "" && err == nil {
			chromium = p
			break
		}
	}
	if chromium == "" {
		t.Fatal("chromium is not installed: run scripts/deps.sh (apt-get install -y chromium)")
	}

	origin, err := demo.New(demo.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go origin.Serve(ln)
	t.Cleanup(func() { origin.Close() })

	cfg := testConfig(t, "http://"+ln.Addr().String(), "mode: under_attack\n")
	s := startShield(t, cfg)
	site := s.Addrs()[0]

	opts := append(slices.Clone(chromedp.DefaultExecAllocatorOptions[:]),
		chromedp.ExecPath(chromium),
		chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancelAlloc()
	ctx, cancel := chromedp.NewContext(actx)
	defer cancel()
	ctx, cancelT := context.WithTimeout(ctx, 90*time.Second)
	defer cancelT()

	pageText := func() string {
		text, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body ? document.body.innerText : ""`))
		return text
	}
	waitPage := func(want string) time.Duration {
		start := time.Now()
		for {
			if strings.Contains(pageText(), want) {
				return time.Since(start)
			}
			if time.Since(start) > 60*time.Second {
				t.Fatalf("the browser never reached %q; the page says:\n%s", want, pageText())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}

	before := s.challenge.Stats()
	start := time.Now()
	if err := chromedp.Do(ctx, chromedp.Navigate(site+"/news/1")); err != nil {
		t.Fatal(err)
	}
	waitPage("City of Example")
	total := time.Since(start)
	after := s.challenge.Stats()
	if after.Solved-before.Solved != 1 {
		t.Fatalf("solved %d challenges, want exactly 1", after.Solved-before.Solved)
	}
	solve := time.Duration(0)
	if n := after.ClientSolves - before.ClientSolves; n > 0 {
		solve = (after.ClientSolveTime - before.ClientSolveTime) / time.Duration(n)
	}
	t.Logf("challenge solved in the browser: solve %v, navigation to origin page %v (difficulty %d)", solve, total, cfg.Challenge.Difficulty.UnderAttack)

	// With the clearance, the next navigation goes straight to the origin.
	issued := s.challenge.Stats().Issued
	if err := chromedp.Do(ctx, chromedp.Navigate(site+"/news/2")); err != nil {
		t.Fatal(err)
	}
	waitPage("City of Example")
	if got := s.challenge.Stats().Issued; got != issued {
		t.Fatalf("a cleared browser was challenged again (%d new challenges)", got-issued)
	}
	if st := origin.Stats(); st.Served == 0 {
		t.Fatalf("the origin served nothing")
	}
}
