// Package verdict is rampart's shared vocabulary: the facts known about a
// client and its request, the modes the shield runs in, the decisions the
// policy takes, the priority classes later stages honour, and the events every
// stage emits. It imports nothing of rampart's, so every package can speak it.
package verdict

import (
	"fmt"
	"net/http"
	"net/netip"
	"time"
)

// Mode is how alarmed the shield is. Higher modes challenge more, cache more
// aggressively and shorten clearance lifetimes.
type Mode uint8

const (
	// ModeNormal is peace time: rate limits and lists only.
	ModeNormal Mode = iota
	// ModeElevated is a suspected attack: micro-caching for anonymous
	// visitors, cache keys without unknown query parameters, and (with the
	// built-in rules) a cookie check for requests the cache cannot answer.
	ModeElevated
	// ModeUnderAttack also challenges every request without a clearance
	// and serves stale copies rather than queueing at the origin.
	ModeUnderAttack
	// NumModes is the number of modes, for arrays indexed by Mode.
	NumModes
)

const numModes = NumModes

var modeNames = [numModes]string{"normal", "elevated", "under_attack"}

// String returns the configuration spelling of m.
func (m Mode) String() string {
	if m < numModes {
		return modeNames[m]
	}
	return fmt.Sprintf("mode(%d)", uint8(m))
}

// ParseMode parses the configuration spelling of a mode.
func ParseMode(s string) (Mode, error) {
	for i, n := range modeNames {
		if n == s {
			return Mode(i), nil
		}
	}
	return 0, fmt.Errorf("unknown mode %q (want normal, elevated or under_attack)", s)
}

// Action is what the shield does with a request.
type Action uint8

const (
	// Allow passes the request on to the cache and the origin.
	Allow Action = iota
	// Limit answers 429 with Retry-After.
	Limit
	// Tarpit holds the request for a while, then answers 429. The number of
	// requests held at once is bounded; past the bound it behaves as Limit.
	Tarpit
	// Drop closes the connection without answering.
	Drop
	// Block adds the client address to the deny set for a TTL and drops.
	Block
	// Challenge asks the client to prove it runs a browser (proof of work)
	// unless it already holds a valid clearance.
	Challenge
	// Check asks the client to show that it keeps cookies (a redirect back
	// to the same URL that sets a token) unless it already holds a token
	// or a clearance. Browsers, with JavaScript or without, pass at the
	// cost of one round trip; flood tools that keep no cookies do not.
	Check
	numActions
)

// NumActions is the number of actions, for arrays indexed by Action.
const NumActions = numActions

var actionNames = [numActions]string{"allow", "limit", "tarpit", "drop", "block", "challenge", "check"}

// String returns the configuration spelling of a.
func (a Action) String() string {
	if a < numActions {
		return actionNames[a]
	}
	return fmt.Sprintf("action(%d)", uint8(a))
}

// ParseAction parses the configuration spelling of an action.
func ParseAction(s string) (Action, error) {
	for i, n := range actionNames {
		if n == s {
			return Action(i), nil
		}
	}
	return 0, fmt.Errorf("unknown action %q (want allow, limit, tarpit, drop, block, challenge or check)", s)
}

// Actions lists every action, in order, for metrics that pre-create labels.
func Actions() []Action {
	out := make([]Action, numActions)
	for i := range out {
		out[i] = Action(i)
	}
	return out
}

// Class is a request's priority for every stage after the decision: rate
// limit budgets and the admission queue in front of the origin. Lower values
// are served first.
type Class uint8

const (
	// ClassPriority is a client holding a valid clearance or on an allow list.
	ClassPriority Class = iota
	// ClassNormal is an ordinary anonymous visitor.
	ClassNormal
	// ClassSuspicious is a client a rule marked as suspicious (for example
	// one that is near its limits); it is served last and shed first.
	ClassSuspicious
	// NumClasses is the number of classes, for arrays indexed by Class.
	NumClasses
)

var classNames = [NumClasses]string{"priority", "normal", "suspicious"}

// String returns the name of c as used in metrics and logs.
func (c Class) String() string {
	if c < NumClasses {
		return classNames[c]
	}
	return fmt.Sprintf("class(%d)", uint8(c))
}

// Clearance is what a verified clearance cookie says about its holder.
// The zero value means "no valid clearance".
type Clearance struct {
	// Valid reports whether a clearance earned by a solved challenge
	// verified (signature, expiry, prefix, User-Agent).
	Valid bool
	// Checked reports that the client passed the cookie check: it holds a
	// valid cookie-check token or a valid clearance. It satisfies check
	// rules, never challenges.
	Checked bool
	// ID identifies the token; it is used as a rate-limit key so that one
	// clearance cannot be shared by a botnet.
	ID uint64
	// Expires is when the token stops being valid.
	Expires time.Time
}

// Facts is what the shield knows about a request when it decides. It is built
// once per request by the identification step and passed by pointer; nothing
// downstream mutates it except the stage that owns a field.
type Facts struct {
	// IP is the client address: the peer, or the right-most untrusted
	// X-Forwarded-For entry when the peer is a trusted proxy. IPv4-mapped
	// IPv6 addresses are unmapped.
	IP netip.Addr
	// Prefix is the client's network: IPv4 /24 and IPv6 /64 by default.
	Prefix netip.Prefix
	// TLS reports whether the request came over TLS.
	TLS bool
	// ProtoMajor is 1 or 2.
	ProtoMajor int
	// Host is the request host without port, lower case.
	Host string
	// Method is the request method.
	Method string
	// Path is the request path (not unescaped beyond what net/http did).
	Path string
	// RawQuery is the query string without '?'.
	RawQuery string
	// Navigation reports whether the request looks like a top-level page
	// navigation (Sec-Fetch-Mode: navigate, or an Accept that prefers HTML
	// from clients that do not send Sec-Fetch-Mode).
	Navigation bool
	// Static reports whether the path names a static asset (by extension).
	Static bool
	// Allowlisted reports whether the client is on an allow list.
	Allowlisted bool
	// GoodBot reports whether the client is a verified crawler or monitor.
	GoodBot bool
	// Clearance is the verified clearance, if any.
	Clearance Clearance
	// Fingerprints holds TLS and HTTP/2 fingerprints once a later stage
	// computes them; empty strings mean unknown.
	Fingerprints Fingerprints
	// Header is the request's header, read only. Rules match and key on
	// header and cookie values through it.
	Header http.Header
	// UserAgent is the User-Agent header value.
	UserAgent string
}

// Fingerprints are passive client fingerprints. They are filled in by the
// edge when available and can be used as rate-limit keys and rule matches.
type Fingerprints struct {
	// JA4 is the JA4 TLS client fingerprint.
	JA4 string
	// HTTP2 is the Akamai-style HTTP/2 fingerprint (SETTINGS, WINDOW_UPDATE,
	// PRIORITY, pseudo-header order).
	HTTP2 string
	// HeaderOrder is a hash of the request header names in order.
	HeaderOrder string
}

// Decision is the outcome of the policy for one request.
type Decision struct {
	// Action is what to do.
	Action Action
	// Rule names the rule that decided, or "" for the built-in default.
	Rule string
	// Reason is a short stable label for metrics and the
	// Rampart-Mitigated header, such as "rate-limit" or "deny-list".
	Reason string
	// RetryAfter is the advised wait for Limit and Tarpit.
	RetryAfter time.Duration
	// BlockTTL is how long a Block lasts.
	BlockTTL time.Duration
	// Class is the priority the request carries into later stages.
	Class Class
	// DryRun names a dry-run rule that would have acted, if any; the
	// request itself is not affected by it.
	DryRun string
	// DryRunAction is what the dry-run rule would have done.
	DryRunAction Action
	// MaxBody, when positive, lowers the request body limit for this
	// request (a rule's max_body).
	MaxBody int64
}

// EventKind says what an Event reports.
type EventKind uint8

const (
	// EventRequest is one request answered (by the shield or the origin).
	EventRequest EventKind = iota
	// EventConnRejected is a connection closed at accept by the conn gate.
	EventConnRejected
	// EventConnClosed is a connection closed by a hardening rule after it
	// was accepted (header timeout, body rate, HTTP/2 glitch budget, ...).
	EventConnClosed
	// EventBlock is an address added to the deny set.
	EventBlock
	// EventModeChange is a change of the shield mode.
	EventModeChange
)

// Event is one observation emitted by a stage of the pipeline. Events are
// passed by value; a sink must not retain pointers into them.
type Event struct {
	Kind   EventKind
	Time   time.Time
	IP     netip.Addr
	Action Action
	// Reason is a short stable label (a rule name, a hardening rule, ...).
	Reason string
	// Status is the HTTP status returned, for EventRequest.
	Status int
	// Cache is the cache status ("HIT", "MISS", "STALE", "" if bypassed).
	Cache string
	// Duration is the total time spent on the request.
	Duration time.Duration
	// Upstream is the time spent waiting for the origin (0 if not asked).
	Upstream time.Duration
	// Class is the priority class of the request.
	Class Class
}
