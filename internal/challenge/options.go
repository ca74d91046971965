package challenge

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"time"

	"github.com/rampart-shield/rampart/internal/verdict"
)

// CookieName is the name of the clearance cookie.
const CookieName = "rampart_clearance"

// PathPrefix is the URL path under which every endpoint of the package lives.
// The shield routes it to [Service.Handler] after the deny list and the IP
// rate limits, before the challenge rule.
const PathPrefix = "/.rampart/challenge/"

// NumModes is the number of shield modes, for arrays indexed by
// [verdict.Mode]. (verdict keeps its own count unexported.)
const NumModes = int(verdict.ModeUnderAttack) + 1

// Default values of [Options]. They are exported so that the configuration
// reference and the shield can quote them.
const (
	// DefaultKeyRotation is how often the signing key changes.
	DefaultKeyRotation = 24 * time.Hour
	// DefaultChallengeTTL is how long a challenge can be redeemed.
	DefaultChallengeTTL = 5 * time.Minute
	// DefaultPrefixV4Bits is the IPv4 network a clearance is bound to.
	DefaultPrefixV4Bits = 24
	// DefaultPrefixV6Bits is the IPv6 network a clearance is bound to.
	DefaultPrefixV6Bits = 64
	// DefaultReplayFilterSize is the number of redemptions remembered.
	DefaultReplayFilterSize = 1 << 20
	// NoJSDeny offers visitors without JavaScript an explanation only.
	NoJSDeny = "deny"
	// NoJSPass also offers them a rate-limited pass without proof of work.
	NoJSPass = "pass"
)

// DefaultDifficulty is the number of leading zero bits of SHA-256 asked for
// in each mode; each bit doubles the expected work (2^d hashes). Measured in
// headless Chromium on the development machine (AMD EPYC, 2 cores; one core
// is about one core of a mid-range laptop), the page's pure-JavaScript
// SHA-256 does about 1.6 million hashes per second per core (WebCrypto about
// 0.37 million: its per-call overhead dominates one-block inputs). The
// median solve with two workers, worker start-up included, is about 0.2 s
// at 2^18 and 0.65 s at 2^21 (TestBrowserSolveTimes); a laptop with four
// cores takes about half the hashing time. Normal and elevated ask 18 bits:
// there the challenge is asked of readers who need the origin or trip a
// rule, and its job is to show that a browser runs; under_attack asks 21.
// These are the defaults of rampart's configuration too (challenge.
// difficulty). See TestBrowserSolveTimes and docs/benchmarks.md.
var DefaultDifficulty = [NumModes]int{18, 18, 21}

// DefaultClearanceTTL is the lifetime of a clearance issued in each mode.
// Lifetimes shrink under attack so that a clearance bought once does not
// carry a bot through a whole incident.
var DefaultClearanceTTL = [NumModes]time.Duration{24 * time.Hour, 4 * time.Hour, time.Hour}

// Limits enforced by [New].
const (
	// MinDifficulty and MaxDifficulty bound Options.Difficulty (the page
	// checks the first 32 bits of the hash).
	MinDifficulty = 1
	MaxDifficulty = 32
	// MinClearanceTTL and MaxClearanceTTL bound Options.ClearanceTTL.
	MinClearanceTTL = time.Minute
	MaxClearanceTTL = 7 * 24 * time.Hour
	// MinChallengeTTL and MaxChallengeTTL bound Options.ChallengeTTL.
	MinChallengeTTL = 10 * time.Second
	MaxChallengeTTL = time.Hour
	// MinKeyRotation bounds Options.KeyRotation from below.
	MinKeyRotation = time.Minute
	// MinReplayFilter and MaxReplayFilter bound Options.ReplayFilterSize.
	MinReplayFilter = 1 << 10
	MaxReplayFilter = 1 << 26
	// MaxReturnURL is the longest original URL (path and query) a
	// challenge carries back; a longer one returns the visitor to its path
	// alone, or to "/" if the path alone is still too long.
	MaxReturnURL = 2048
)

// Options configures a [Service]. The zero value of every field selects the
// documented default, so Options{} is a valid in-memory configuration for
// tests.
type Options struct {
	// StateDir is the directory in which the signing keys are kept, in a
	// file named keys.json with 0600 permissions (the directory is created
	// with 0700 if missing). New refuses a key file readable by group or
	// others. "" keeps the keys in memory only: a restart then logs
	// everyone out.
	StateDir string
	// KeyRotation is how often the signing key is replaced; default 24h.
	// Rotation happens lazily, when a token or challenge is next issued.
	// Tokens signed by the previous key stay valid until they expire, so
	// KeyRotation must be at least the longest ClearanceTTL.
	KeyRotation time.Duration
	// Difficulty is the number of leading zero bits of SHA-256 a solution
	// must have, per mode. Zero entries take DefaultDifficulty; the values
	// must not decrease with the mode and lie in [MinDifficulty,
	// MaxDifficulty].
	Difficulty [NumModes]int
	// ClearanceTTL is the lifetime of a clearance issued in each mode; zero
	// entries take DefaultClearanceTTL. While the shield runs in a mode
	// (SetMode), a clearance older than that mode's TTL is refused even if
	// it was issued for longer.
	ClearanceTTL [NumModes]time.Duration
	// ChallengeTTL is how long an issued challenge can be solved and
	// redeemed; default 5m.
	ChallengeTTL time.Duration
	// PrefixV4Bits and PrefixV6Bits are the network sizes a clearance is
	// bound to; defaults 24 and 64, so a visitor moving inside its /24 or
	// /64 keeps its clearance. Ranges: 8..32 and 16..128.
	PrefixV4Bits, PrefixV6Bits int
	// NoJS is what a visitor without JavaScript is offered: "deny" (the
	// default: an explanation only) or "pass" (a button that grants a
	// clearance without proof of work, rate-limited by AllowNoJS).
	NoJS string
	// AllowNoJS reports whether a no-JS pass may be granted to ip now. It
	// is required when NoJS is "pass"; the shield backs it with a limiter.
	// It must be safe for concurrent use.
	AllowNoJS func(ip netip.Addr) bool
	// AllowCheck reports whether a cookie-check token may be sent to ip
	// now (Service.CookieCheck); past it, the client is told that cookies
	// are needed instead of being sent round again. Nil allows every
	// check. It must be safe for concurrent use.
	AllowCheck func(ip netip.Addr) bool
	// TemplateDir optionally holds operator templates that replace or add
	// to the embedded ones: challenge.<lang>.html and notice.<lang>.html
	// (see the package documentation for the fields they may use). ""
	// uses the embedded English, French and German templates only.
	TemplateDir string
	// ReplayFilterSize is the number of redeemed challenges the replay
	// filter remembers (8 bytes each); default 1<<20 (8 MiB). It is
	// rounded up to a power of two.
	ReplayFilterSize int
	// Now is the clock; default time.Now.
	Now func() time.Time
	// Rand is the source of key material, challenge seeds and token IDs;
	// default crypto/rand.Reader. It must be safe for concurrent use.
	Rand io.Reader
	// Logger receives rotation, persistence and template messages, never
	// one line per request; default discards.
	Logger *slog.Logger

	// forceJSFallback makes every page ask its workers for the pure
	// JavaScript SHA-256; only tests set it (export_test.go).
	forceJSFallback bool
}

// errOptions marks a configuration error returned by New.
var errOptions = errors.New("challenge: invalid options")

// withDefaults returns a copy of o with defaults filled in, or an error
// saying which field is wrong.
func (o Options) withDefaults() (Options, error) {
	bad := func(format string, args ...any) (Options, error) {
		return Options{}, fmt.Errorf("%w: %s", errOptions, fmt.Sprintf(format, args...))
	}
	if o.KeyRotation == 0 {
		o.KeyRotation = DefaultKeyRotation
	}
	if o.KeyRotation < MinKeyRotation {
		return bad("KeyRotation %v is below %v", o.KeyRotation, MinKeyRotation)
	}
	for m := range NumModes {
		if o.Difficulty[m] == 0 {
			o.Difficulty[m] = DefaultDifficulty[m]
		}
		if d := o.Difficulty[m]; d < MinDifficulty || d > MaxDifficulty {
			return bad("Difficulty[%s] = %d, want %d..%d", verdict.Mode(m), d, MinDifficulty, MaxDifficulty)
		}
		if m > 0 && o.Difficulty[m] < o.Difficulty[m-1] {
			return bad("Difficulty[%s] = %d is below Difficulty[%s] = %d; difficulty must not fall as the mode rises",
				verdict.Mode(m), o.Difficulty[m], verdict.Mode(m-1), o.Difficulty[m-1])
		}
		if o.ClearanceTTL[m] == 0 {
			o.ClearanceTTL[m] = DefaultClearanceTTL[m]
		}
		if t := o.ClearanceTTL[m]; t < MinClearanceTTL || t > MaxClearanceTTL {
			return bad("ClearanceTTL[%s] = %v, want %v..%v", verdict.Mode(m), t, MinClearanceTTL, MaxClearanceTTL)
		}
		if o.ClearanceTTL[m] > o.KeyRotation {
			return bad("ClearanceTTL[%s] = %v exceeds KeyRotation %v: tokens would outlive the key that signed them",
				verdict.Mode(m), o.ClearanceTTL[m], o.KeyRotation)
		}
	}
	if o.ChallengeTTL == 0 {
		o.ChallengeTTL = DefaultChallengeTTL
	}
	if o.ChallengeTTL < MinChallengeTTL || o.ChallengeTTL > MaxChallengeTTL {
		return bad("ChallengeTTL %v, want %v..%v", o.ChallengeTTL, MinChallengeTTL, MaxChallengeTTL)
	}
	if o.ChallengeTTL%time.Second != 0 {
		return bad("ChallengeTTL %v is not a whole number of seconds", o.ChallengeTTL)
	}
	if o.PrefixV4Bits == 0 {
		o.PrefixV4Bits = DefaultPrefixV4Bits
	}
	if o.PrefixV4Bits < 8 || o.PrefixV4Bits > 32 {
		return bad("PrefixV4Bits %d, want 8..32", o.PrefixV4Bits)
	}
	if o.PrefixV6Bits == 0 {
		o.PrefixV6Bits = DefaultPrefixV6Bits
	}
	if o.PrefixV6Bits < 16 || o.PrefixV6Bits > 128 {
		return bad("PrefixV6Bits %d, want 16..128", o.PrefixV6Bits)
	}
	switch o.NoJS {
	case "":
		o.NoJS = NoJSDeny
	case NoJSDeny:
	case NoJSPass:
		if o.AllowNoJS == nil {
			return bad(`NoJS "pass" needs AllowNoJS: unlimited passes would let every bot through`)
		}
	default:
		return bad(`NoJS %q, want "deny" or "pass"`, o.NoJS)
	}
	if o.ReplayFilterSize == 0 {
		o.ReplayFilterSize = DefaultReplayFilterSize
	}
	if o.ReplayFilterSize < MinReplayFilter || o.ReplayFilterSize > MaxReplayFilter {
		return bad("ReplayFilterSize %d, want %d..%d", o.ReplayFilterSize, MinReplayFilter, MaxReplayFilter)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Rand == nil {
		o.Rand = rand.Reader
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o, nil
}

// maxClearanceTTL is the longest clearance lifetime of any mode.
func (o *Options) maxClearanceTTL() time.Duration {
	m := o.ClearanceTTL[0]
	for _, t := range o.ClearanceTTL[1:] {
		m = max(m, t)
	}
	return m
}
