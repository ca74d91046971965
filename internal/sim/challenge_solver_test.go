package sim

import (
	"context"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/netip"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/rampart-shield/rampart/internal/challenge"
	"github.com/rampart-shield/rampart/internal/demo"
	"github.com/rampart-shield/rampart/internal/verdict"
)

// realChallengeGate puts rampart's real challenge service, in
// under_attack mode at a low difficulty, in front of the demo origin,
// wired the way the shield wires it: the peer address is the client.
func realChallengeGate(t *testing.T, originURL string) (*httptest.Server, *challenge.Service) {
	svc, err := challenge.New(challenge.Options{Difficulty: [challenge.NumModes]int{6, 6, 6}})
	if err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(originURL)
	proxy := &httputil.ReverseProxy{Rewrite: func(pr *httputil.ProxyRequest) {
		pr.SetURL(u)
		pr.SetXForwarded()
	}, ErrorLog: log.New(io.Discard, "", 0)}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ap, err := netip.ParseAddrPort(r.RemoteAddr)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		ip := ap.Addr().Unmap()
		if strings.HasPrefix(r.URL.Path, challenge.PathPrefix) {
			svc.Serve(w, r, ip)
			return
		}
		if cl, _ := svc.Check(r, ip); !cl.Valid {
			svc.Challenge(w, r, ip, verdict.ModeUnderAttack)
			return
		}
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv, svc
}

func TestChallengeSolverAgainstRealChallenge(t *testing.T) {
	o, base := startOrigin(t, demo.Options{})
	gate, svc := realChallengeGate(t, base)
	cfg := shortRun(gate.URL, "browser-botnet")
	cfg.Scale = 0.1
	cfg.Duration = 2 * time.Second
	cfg.Origin = o
	cfg.Solver = ChallengeSolver
	rep, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%s\nchallenge stats: %+v", rep.Summary(), svc.Stats())
	if js := rep.LegitJS; js.ChallengesSolved == 0 || js.SuccessRatio != 1 {
		t.Errorf("JS visitors through the real challenge: %+v", js)
	}
	if nojs := rep.LegitNoJS; nojs.Requests == 0 || nojs.Succeeded != 0 {
		t.Errorf("no-JS visitors: %+v", nojs)
	}
	if rep.AttackerSolves == 0 || *rep.AttackReachedOrigin == 0 {
		t.Errorf("botnet: %d solves, %d reached the origin", rep.AttackerSolves, *rep.AttackReachedOrigin)
	}
	if n := rep.Statuses["legit"]["error:solve"] + rep.Statuses["attack"]["error:solve"]; n != 0 {
		t.Errorf("%d solves failed", n)
	}
}
