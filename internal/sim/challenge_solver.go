package sim

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"

	"github.com/rampart-shield/rampart/internal/challenge"
	"github.com/rampart-shield/rampart/internal/demo"
)

// ChallengeSolver solves rampart's proof-of-work challenge in process, as
// the challenge page does in a browser (the exchange is documented in
// package challenge): it parses the puzzle from the 403 page or JSON answer,
// finds the nonce with challenge.Solve on the calling goroutine, POSTs it
// to the verify endpoint with the visitor's User-Agent and headers (the
// answer sets the clearance cookie in the visitor's jar), then GETs the
// check endpoint without following its redirect, as the page does before
// it returns to the original URL; the visitor then asks for that URL again.
// It is safe for concurrent use.
var ChallengeSolver Solver = SolverFunc(solveChallenge)

func solveChallenge(ctx context.Context, client *http.Client, challenged *http.Response, body []byte) error {
	p, err := challenge.ParseChallenge(body)
	if err != nil {
		return fmt.Errorf("parsing the challenge: %w", err)
	}
	sol, err := challenge.Solve(ctx, p)
	if err != nil {
		return fmt.Errorf("solving the challenge: %w", err)
	}
	orig := challenged.Request
	base := orig.URL.Scheme + "://" + orig.URL.Host
	req, err := challenge.NewVerifyRequest(ctx, base, p, sol)
	if err != nil {
		return err
	}
	copyBrowserHeaders(req.Header, orig.Header)
	req.Header.Set("Accept", "application/json")
	req.Header.Set("Origin", base)
	req.Header.Set("Referer", orig.URL.String())
	req.Header.Set("Sec-Fetch-Mode", "cors")
	req.Header.Set("Sec-Fetch-Dest", "empty")
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("redeeming the solution: %w", err)
	}
	var v challenge.VerifyResponse
	derr := json.NewDecoder(io.LimitReader(resp.Body, 64<<10)).Decode(&v)
	resp.Body.Close()
	switch {
	case derr != nil:
		return fmt.Errorf("redeeming the solution: status %d, decoding the answer: %w", resp.StatusCode, derr)
	case !v.OK:
		return fmt.Errorf("redeeming the solution: status %d, refused: %s", resp.StatusCode, v.Error)
	case v.Next == "":
		return nil
	}

	check, err := http.NewRequestWithContext(ctx, http.MethodGet, base+v.Next, nil)
	if err != nil {
		return fmt.Errorf("building the check request: %w", err)
	}
	copyBrowserHeaders(check.Header, orig.Header)
	for _, k := range []string{"Accept", "Sec-Fetch-Mode", "Sec-Fetch-Dest", "Upgrade-Insecure-Requests"} {
		if v := orig.Header.Get(k); v != "" {
			check.Header.Set(k, v)
		}
	}
	check.Header.Set("Sec-Fetch-Site", "same-origin")
	noFollow := *client
	noFollow.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	cresp, err := noFollow.Do(check)
	if err != nil {
		return fmt.Errorf("checking the clearance: %w", err)
	}
	io.Copy(io.Discard, io.LimitReader(cresp.Body, 64<<10))
	cresp.Body.Close()
	if cresp.StatusCode/100 != 3 && cresp.StatusCode/100 != 2 {
		return fmt.Errorf("checking the clearance: status %d (%s)", cresp.StatusCode, cresp.Header.Get("Rampart-Mitigated"))
	}
	return nil
}

// copyBrowserHeaders copies the headers that identify the browser: the
// challenge binds the User-Agent, and the simulator's role marker keeps
// the origin's counts right.
func copyBrowserHeaders(dst, src http.Header) {
	for _, k := range []string{"User-Agent", "Accept-Language", "Accept-Encoding", "Sec-Ch-Ua", "Sec-Ch-Ua-Mobile", "Sec-Ch-Ua-Platform", demo.RoleHeader} {
		if v := src.Get(k); v != "" {
			dst.Set(k, v)
		}
	}
}
