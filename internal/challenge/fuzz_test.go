package challenge_test

import (
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"

	"github.com/rampart-shield/rampart/internal/challenge"
	"github.com/rampart-shield/rampart/internal/verdict"
)

// FuzzParseChallenge feeds pages and JSON answers, real and mangled, to
// the client-side parser: it must not panic, and what it accepts must be
// solvable (validated).
func FuzzParseChallenge(f *testing.F) {
	svc, err := challenge.New(challenge.Options{})
	if err != nil {
		f.Fatal(err)
	}
	for _, accept := range []string{"text/html", "application/json", "text/plain"} {
		req := httptest.NewRequest(http.MethodGet, "/x", nil)
		req.Header.Set("Accept", accept)
		rec := httptest.NewRecorder()
		svc.Challenge(rec, req, netip.MustParseAddr("192.0.2.1"), verdict.ModeNormal)
		f.Add(rec.Body.Bytes())
	}
	f.Add([]byte(`{"puzzle":{"v":1,"challenge":"x","seed":"abc","difficulty":99,"verify":"/v"}}`))
	f.Add([]byte(`<script id="rampart-challenge">{"v":1}</script>`))
	f.Fuzz(func(t *testing.T, body []byte) {
		p, err := challenge.ParseChallenge(body)
		if err != nil {
			return
		}
		if p.Difficulty < challenge.MinDifficulty || p.Difficulty > challenge.MaxDifficulty || p.Seed == "" || p.Challenge == "" {
			t.Fatalf("accepted unsolvable puzzle %+v", p)
		}
	})
}
