package challenge

import "fmt"

// CheckResult says why [Service.Check] accepted or refused a clearance. Its
// String form is a stable metrics label.
type CheckResult uint8

const (
	// CheckAbsent: the request carries no clearance cookie.
	CheckAbsent CheckResult = iota
	// CheckValid: the clearance verified.
	CheckValid
	// CheckMalformed: the cookie is not a token (wrong length, alphabet,
	// type or flags).
	CheckMalformed
	// CheckBadSignature: the HMAC does not verify, or the key that signed
	// it is gone (rotated out twice, or RevokeAll): forged, tampered, or old.
	CheckBadSignature
	// CheckExpired: the token's lifetime, or the current mode's shorter
	// ClearanceTTL counted from its issue, has passed.
	CheckExpired
	// CheckPrefix: the client's network differs from the token's network of
	// the same family (a token replayed from elsewhere, or a visitor that
	// moved beyond its /24 or /64).
	CheckPrefix
	// CheckOtherFamily: the token has no network for the client's address
	// family (a dual-stack browser switching between IPv4 and IPv6). The
	// shield challenges as for any invalid clearance; redeeming that
	// challenge with this cookie yields a token bound to both families, so
	// it happens once.
	CheckOtherFamily
	// CheckUserAgent: the User-Agent differs from the one the token was
	// issued to.
	CheckUserAgent
	// CheckRevoked: the client's network or the token's was revoked
	// (RevokePrefix) after the token was issued.
	CheckRevoked
	// NumCheckResults is the number of results, for arrays and metrics.
	NumCheckResults
)

var checkNames = [NumCheckResults]string{
	"absent", "valid", "malformed", "bad-signature", "expired", "prefix", "other-family", "user-agent", "revoked",
}

// String returns the metrics label of r.
func (r CheckResult) String() string {
	if r < NumCheckResults {
		return checkNames[r]
	}
	return fmt.Sprintf("check(%d)", uint8(r))
}

// VerifyResult says why a solution (or a no-JS pass) was accepted or refused.
// Its String form is a stable metrics label and the "error" of the verify
// endpoint's JSON answer.
type VerifyResult uint8

const (
	// VerifyOK: the solution verified and a clearance was issued.
	VerifyOK VerifyResult = iota
	// VerifyMalformed: the request or the challenge is not well-formed.
	VerifyMalformed
	// VerifyBadSignature: the challenge's HMAC does not verify or its key is
	// gone.
	VerifyBadSignature
	// VerifyExpired: the challenge's ChallengeTTL has passed.
	VerifyExpired
	// VerifyPrefix: the solution comes from another network of the same
	// family than the one the challenge was issued to.
	VerifyPrefix
	// VerifyUserAgent: the User-Agent differs from the one the challenge was
	// issued to.
	VerifyUserAgent
	// VerifyInsufficientWork: the nonce does not give the required number
	// of leading zero bits.
	VerifyInsufficientWork
	// VerifyReplayed: the challenge was already redeemed.
	VerifyReplayed
	// VerifyNoJSDisabled: a no-JS pass was asked for but NoJS is "deny".
	VerifyNoJSDisabled
	// VerifyNoJSLimited: a no-JS pass was refused by AllowNoJS.
	VerifyNoJSLimited
	// NumVerifyResults is the number of results, for arrays and metrics.
	NumVerifyResults
)

var verifyNames = [NumVerifyResults]string{
	"ok", "malformed", "bad-signature", "expired", "prefix", "user-agent", "insufficient-work", "replayed",
	"nojs-disabled", "nojs-limited",
}

// String returns the metrics label of r.
func (r VerifyResult) String() string {
	if r < NumVerifyResults {
		return verifyNames[r]
	}
	return fmt.Sprintf("verify(%d)", uint8(r))
}

// retryable reports whether a fresh challenge may succeed where this one
// failed (the page then reloads, at most a few times).
func (r VerifyResult) retryable() bool {
	switch r {
	case VerifyExpired, VerifyBadSignature, VerifyReplayed, VerifyPrefix:
		return true
	}
	return false
}

// LoopCause says why a browser that solved a challenge came back without a
// usable clearance.
type LoopCause uint8

const (
	// LoopNoCookie: the cookie set by verify did not come back (cookies
	// blocked or stripped by an extension or a proxy).
	LoopNoCookie LoopCause = iota
	// LoopAddress: the cookie came back but the client's network changed
	// (VPN, proxy, mobile network, privacy relay).
	LoopAddress
	// LoopBrowser: the cookie came back with another User-Agent (an
	// extension that randomises it).
	LoopBrowser
	// LoopRechallenged: the cookie is valid, yet the page asked for a
	// challenge again shortly after one was solved (the page's
	// sessionStorage guard noticed); something between the browser and
	// rampart, or a rule, keeps challenging it.
	LoopRechallenged
	// LoopOther: the cookie came back but was refused for another reason.
	LoopOther
	// NumLoopCauses is the number of causes, for arrays and metrics.
	NumLoopCauses
)

var loopNames = [NumLoopCauses]string{"no-cookie", "address", "browser", "rechallenged", "other"}

// String returns the metrics label of c.
func (c LoopCause) String() string {
	if c < NumLoopCauses {
		return loopNames[c]
	}
	return fmt.Sprintf("loop(%d)", uint8(c))
}
