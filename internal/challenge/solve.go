package challenge

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Puzzle is a challenge as a client sees it: the JSON object inside the
// page's <script type="application/json" id="rampart-challenge"> block, and
// the "puzzle" member of the 403 JSON answer.
type Puzzle struct {
	// Version of the object; 1.
	Version int `json:"v"`
	// Challenge is the signed challenge, opaque to the client; it goes back
	// with the solution.
	Challenge string `json:"challenge"`
	// Seed is the prefix of the hashed input (22 base64url characters).
	Seed string `json:"seed"`
	// Difficulty is the number of leading zero bits SHA-256(Seed + nonce)
	// must have.
	Difficulty int `json:"difficulty"`
	// Expires is when the challenge stops being redeemable (unix seconds).
	Expires int64 `json:"expires"`
	// Verify, Check and Worker are the paths of the verify endpoint, the
	// check endpoint and the worker script.
	Verify string `json:"verify"`
	Check  string `json:"check"`
	Worker string `json:"worker"`
	// Return is the page to go back to (path and query).
	Return string `json:"return"`
	// Method is the method of the challenged request.
	Method string `json:"method"`
	// NoJS is the path of the no-JS pass endpoint when the site offers one.
	NoJS string `json:"nojs,omitempty"`
	// JS asks the page to use the pure-JavaScript SHA-256 (tests only).
	JS bool `json:"js,omitempty"`
}

// Solution is a nonce that solves a Puzzle.
type Solution struct {
	// Nonce is the solution; it is sent in decimal.
	Nonce uint64
	// Hashes is the number of hashes computed to find it.
	Hashes uint64
}

// ErrNoChallenge is returned by ParseChallenge when the body holds no
// challenge.
var ErrNoChallenge = errors.New("challenge: no challenge in body")

// maxNonce is the largest nonce a browser can count exactly (2^53).
const maxNonce = 1 << 53

// ParseChallenge extracts the Puzzle from a challenge page (HTML) or from
// the 403 JSON answer, and checks that it is well-formed.
func ParseChallenge(body []byte) (Puzzle, error) {
	var p Puzzle
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) > 0 && trimmed[0] == '{' {
		var wrap struct {
			Puzzle *Puzzle `json:"puzzle"`
		}
		if err := json.Unmarshal(trimmed, &wrap); err != nil {
			return p, fmt.Errorf("challenge: parsing JSON answer: %w", err)
		}
		if wrap.Puzzle == nil {
			return p, ErrNoChallenge
		}
		p = *wrap.Puzzle
	} else {
		const marker = `id="rampart-challenge"`
		i := bytes.Index(body, []byte(marker))
		if i < 0 {
			return p, ErrNoChallenge
		}
		rest := body[i+len(marker):]
		j := bytes.IndexByte(rest, '>')
		if j < 0 {
			return p, ErrNoChallenge
		}
		rest = rest[j+1:]
		k := bytes.Index(rest, []byte("</script"))
		if k < 0 {
			return p, ErrNoChallenge
		}
		if err := json.Unmarshal(rest[:k], &p); err != nil {
			return p, fmt.Errorf("challenge: parsing page data: %w", err)
		}
	}
	if err := p.validate(); err != nil {
		return Puzzle{}, err
	}
	return p, nil
}

// validate checks what a solver relies on.
func (p *Puzzle) validate() error {
	switch {
	case p.Version != 1:
		return fmt.Errorf("challenge: puzzle version %d, want 1", p.Version)
	case p.Challenge == "":
		return errors.New("challenge: puzzle without challenge")
	case len(p.Seed) == 0 || len(p.Seed) > 40:
		return fmt.Errorf("challenge: puzzle seed of %d characters", len(p.Seed))
	case p.Difficulty < MinDifficulty || p.Difficulty > MaxDifficulty:
		return fmt.Errorf("challenge: puzzle difficulty %d, want %d..%d", p.Difficulty, MinDifficulty, MaxDifficulty)
	case !strings.HasPrefix(p.Verify, "/"):
		return fmt.Errorf("challenge: puzzle verify path %q", p.Verify)
	}
	for i := 0; i < len(p.Seed); i++ {
		if b64dec[p.Seed[i]] == 0xff {
			return errors.New("challenge: puzzle seed is not base64url")
		}
	}
	return nil
}

// Solve finds the smallest nonce n such that SHA-256(p.Seed + decimal(n))
// has p.Difficulty leading zero bits, the way the browser's workers do
// (they split the same sequence between them). It runs on the calling
// goroutine and checks ctx every 16384 hashes. The expected work is
// 2^Difficulty hashes.
func Solve(ctx context.Context, p Puzzle) (Solution, error) {
	if err := p.validate(); err != nil {
		return Solution{}, err
	}
	buf := make([]byte, 0, len(p.Seed)+20)
	buf = append(buf, p.Seed...)
	for n := uint64(0); n < maxNonce; n++ {
		if n&(1<<14-1) == 0 {
			if err := ctx.Err(); err != nil {
				return Solution{Hashes: n}, fmt.Errorf("challenge: solving: %w", err)
			}
		}
		in := strconv.AppendUint(buf, n, 10)
		sum := sha256.Sum256(in)
		if leadingZeroBits(&sum) >= p.Difficulty {
			return Solution{Nonce: n, Hashes: n + 1}, nil
		}
	}
	return Solution{Hashes: maxNonce}, errors.New("challenge: no solution below 2^53")
}

// Form returns the verify endpoint's form for the solution: c (the
// challenge), n (the nonce), u (the return URL) and m (the method).
func (p Puzzle) Form(s Solution) url.Values {
	return url.Values{
		"c": {p.Challenge},
		"n": {strconv.FormatUint(s.Nonce, 10)},
		"u": {p.Return},
		"m": {p.Method},
	}
}

// NewVerifyRequest builds the POST that redeems a solution. origin is the
// scheme and host the challenge came from ("http://127.0.0.1:8080"). The
// answer is a VerifyResponse with the clearance cookie; follow its Next.
func NewVerifyRequest(ctx context.Context, origin string, p Puzzle, s Solution) (*http.Request, error) {
	base, err := url.Parse(origin)
	if err != nil {
		return nil, fmt.Errorf("challenge: parsing origin: %w", err)
	}
	target := base.ResolveReference(&url.URL{Path: p.Verify})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target.String(), strings.NewReader(p.Form(s).Encode()))
	if err != nil {
		return nil, fmt.Errorf("challenge: building verify request: %w", err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return req, nil
}

// ExpiresAt returns p.Expires as a time.
func (p Puzzle) ExpiresAt() time.Time { return time.Unix(p.Expires, 0) }
