// Package challenge owns rampart's proof-of-work challenge and the clearance
// that solving it earns: the signed, stateless challenges, the clearance
// tokens and their cookie, the signing keys (rotation and persistence), the
// replay filter, prefix revocation, the embedded interstitial and notice
// pages with their translations, the solver worker script, the endpoints
// under PathPrefix, an in-process solver for the simulator, and the allow
// lists that let crawlers, feeds and monitors skip the challenge (Bypass).
// It never reaches the upstream and keeps no per-challenge state.
//
// # How a visitor gets through
//
// The shield calls Check on every request (one HMAC-SHA256, no allocation).
// Without a valid clearance, when the policy says challenge, it calls
// Challenge, which answers 403 with Rampart-Mitigated: challenge:
//
//   - page navigations (Sec-Fetch-Mode: navigate, or Accept naming text/html
//     from clients without Sec-Fetch-Mode) get the HTML interstitial;
//   - requests whose Accept names JSON get {"error":"challenge","message":…,
//     "puzzle":{…}};
//   - everything else gets a short text/plain answer.
//
// # Wire protocol (what a browser, the simulator or a custom client does)
//
// 1. The challenge. The page holds, in
// <script type="application/json" id="rampart-challenge">, and the JSON
// answer holds as "puzzle", the object described by Puzzle:
//
//	{"v":1,"challenge":"<signed, 118 chars base64url>","seed":"<22 chars>",
//	 "difficulty":16,"expires":<unix s>,"verify":"/.rampart/challenge/verify",
//	 "check":"/.rampart/challenge/check","worker":"/.rampart/challenge/worker.<hash>.js",
//	 "return":"/the/page?q","method":"GET"}
//
// The challenge is HMAC-signed and binds: a random 128-bit seed, the
// difficulty, the expiry (ChallengeTTL), the client's network (/24 or /64),
// a hash of its User-Agent, the mode and the key id.
//
// 2. The work. Find a nonce n (decimal ASCII, no leading zeros, n < 2^53)
// such that SHA-256(seed || decimal(n)) starts with difficulty zero bits.
// ParseChallenge and Solve do this in Go. The page does it in Web Workers,
// one per core (up to 8), each trying start, start+k, start+2k, … with
// WebCrypto or a pure-JavaScript SHA-256: where WebCrypto is missing (pages
// served over plain HTTP to a name other than localhost are not a secure
// context) the pure-JavaScript one; where both exist, each worker times
// three short runs of each and keeps the faster (in Chromium the
// pure-JavaScript one-block hash is about four times faster than
// WebCrypto, whose per-call overhead dominates). The page shows progress
// in a <progress> bar and a role=status live region.
//
// 3. Redemption. POST /.rampart/challenge/verify with an
// application/x-www-form-urlencoded body (NewVerifyRequest builds it):
//
//	c=<challenge>&n=<nonce>&u=<return URL>&m=<method>
//
// sent with the same User-Agent, from the same network (or from the other
// address family: a dual-stack browser may switch). The answer is JSON
// (VerifyResponse): {"ok":true,"next":"/.rampart/challenge/check?r=…&u=…",
// "receipt":"…"} with Set-Cookie: rampart_clearance=<token>; Path=/;
// Max-Age=<TTL>; HttpOnly; SameSite=Lax (and Secure over TLS), or
// {"ok":false,"error":"<VerifyResult>","retry":true|false} with 400 or 403.
// Each challenge is redeemed once (a second try is "replayed").
//
// 4. The check. GET next, with the cookie. If the cookie came back, the
// answer is 303 See Other to the return URL (for an original POST, a page
// saying the form was not kept and must be sent again: bodies are never
// replayed). If it did not, the answer is a 403 page explaining the cause
// (cookies blocked, network or User-Agent changed, ...) with
// Rampart-Mitigated: challenge-loop, instead of another challenge: a
// browser that solved a challenge is never sent round again. The page also
// keeps the receipt in sessionStorage for a minute: challenged again for the
// same URL within that minute, it goes to next with loop=1 rather than
// solving again.
//
// 5. Afterwards, the cookie is the clearance. A Go client with a cookie jar
// that follows redirects does steps 3 to 5 with:
//
//	p, _ := challenge.ParseChallenge(body)
//	sol, _ := challenge.Solve(ctx, p)
//	req, _ := challenge.NewVerifyRequest(ctx, "http://127.0.0.1:8080", p, sol)
//	resp, _ := client.Do(req) // decode VerifyResponse, then client.Get(origin + v.Next)
//
// Without JavaScript, the page's <noscript> explains what is needed and,
// when Options.NoJS is "pass", offers a button that POSTs c and u to
// /.rampart/challenge/nojs; AllowNoJS rate-limits these passes, and a
// granted pass goes through the check endpoint too.
//
// # The clearance token
//
// The cookie value is 120 base64url characters: type 'T', key id, a random
// 64-bit id (Clearance.ID: the shield's per-token rate-limit key), issue
// time, expiry, one IPv4 and one IPv6 network slot, the truncated SHA-256 of
// the User-Agent, and HMAC-SHA256 over all of it. Check refuses (and says
// why, as a CheckResult) tokens that are malformed, forged or signed by a
// key no longer held, expired (or older than the current mode's
// ClearanceTTL), used from another network of the same family, from a
// family the token has no slot for, with another User-Agent, or revoked.
// A visitor moving inside its /24 or /64 keeps its clearance; a dual-stack
// browser is challenged once on its second family, and the verify endpoint,
// seeing its still-valid cookie, issues a token with both slots and the same
// id.
//
// # Keys
//
// Challenges, tokens and receipts are signed with the current key; the
// previous key is kept so its tokens stay valid until they expire.
// Rotation happens every KeyRotation (lazily, at the next issue), on demand
// (Rotate), or for everything at once (RevokeAll). Keys are persisted in
// StateDir/keys.json (0600) so a restart does not log everyone out.
//
// # Templates
//
// The pages are html/template files: challenge.<lang>.html (the
// interstitial) and notice.<lang>.html (loop explanations, no-JS and
// resend notices). English, French and German are embedded; files of the
// same names in Options.TemplateDir replace or add languages, chosen by
// Accept-Language. A challenge template sees .Lang, .Data (the puzzle JSON;
// only inside <script type="application/json" id="rampart-challenge">),
// .Script (the solver; inside a plain <script>), .NoJSPass, .NoJSAction,
// .Challenge and .Return (in HTML text or quoted attributes only); it must
// keep the elements the script uses (rampart-text, rampart-status,
// rampart-progress, rampart-post). A notice template sees .Kind, .Return and
// .Host and may not contain scripts. Inline scripts and styles are hashed
// into the page's Content-Security-Policy at load; external scripts and
// inline event handlers are refused, and a page over MaxPageSize is refused.
package challenge
