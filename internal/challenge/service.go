package challenge

import (
	"crypto/hmac"
	"encoding/binary"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rampart-shield/rampart/internal/verdict"
)

// Service issues proof-of-work challenges, verifies their solutions, issues
// and checks clearance tokens, and serves the challenge pages and endpoints.
// It keeps no per-challenge state: challenges and tokens are HMAC-signed
// blobs, and only the fixed-size replay filter remembers redeemed solutions.
// All methods are safe for concurrent use.
type Service struct {
	o     Options
	store keyStore
	pages *pageSet

	ring        atomic.Pointer[keyRing]
	rotMu       sync.Mutex   // serialises key changes and their persistence
	rotateRetry atomic.Int64 // unix nanos before which a failed scheduled rotation is not retried

	rev   atomic.Pointer[revocations]
	revMu sync.Mutex

	mode   atomic.Uint32 // verdict.Mode used by Check to cap token age
	replay *replayFilter

	issued, pagesServed, solved, merged, nojsPasses atomic.Uint64
	checksIssued, checksRefused                     atomic.Uint64
	clientSolves, clientSolveNanos, clientHashes    atomic.Uint64
	failed                                          [NumVerifyResults]atomic.Uint64
	loops                                           [NumLoopCauses]atomic.Uint64
}

// New validates o, loads or creates the signing keys (persisting new ones
// in o.StateDir), loads the templates and returns a ready Service.
func New(o Options) (*Service, error) {
	o, err := o.withDefaults()
	if err != nil {
		return nil, err
	}
	s := &Service{
		o:      o,
		store:  keyStore{dir: o.StateDir},
		replay: newReplayFilter(o.ReplayFilterSize, int64(o.ChallengeTTL/time.Second)),
	}
	ring, err := s.store.load()
	if err != nil {
		return nil, err
	}
	if ring == nil {
		k, err := s.newKey(nil, o.Now())
		if err != nil {
			return nil, err
		}
		ring = &keyRing{cur: k}
		if err := s.store.save(ring); err != nil {
			return nil, err
		}
		o.Logger.Info("challenge: created signing key", "key_id", k.id, "state_dir", o.StateDir)
	}
	s.ring.Store(ring)
	s.pages, err = loadPages(o.TemplateDir, o.NoJS == NoJSPass, o.Logger)
	if err != nil {
		return nil, err
	}
	return s, nil
}

// newKey makes a key with fresh material from Rand; its id follows prev's.
func (s *Service) newKey(prev *key, now time.Time) (*key, error) {
	var buf [36]byte
	if _, err := io.ReadFull(s.o.Rand, buf[:]); err != nil {
		return nil, fmt.Errorf("challenge: reading key material: %w", err)
	}
	id := binary.BigEndian.Uint32(buf[32:])
	if prev != nil {
		id = prev.id + 1
	}
	return newKey(id, [32]byte(buf[:32]), now), nil
}

// signingKey returns the key to sign with now, rotating it first when it is
// older than KeyRotation. A rotation whose key cannot be persisted is not
// made (the old key keeps signing) and is retried a minute later, so that a
// restart never brings back a key that signed nothing.
func (s *Service) signingKey(now time.Time) *key {
	ring := s.ring.Load()
	if now.Sub(ring.cur.created) < s.o.KeyRotation || now.UnixNano() < s.rotateRetry.Load() {
		return ring.cur
	}
	s.rotMu.Lock()
	defer s.rotMu.Unlock()
	ring = s.ring.Load()
	if now.Sub(ring.cur.created) < s.o.KeyRotation {
		return ring.cur
	}
	next, err := s.rotated(ring, now, false)
	if err != nil {
		s.rotateRetry.Store(now.Add(time.Minute).UnixNano())
		s.o.Logger.Error("challenge: scheduled key rotation failed; keeping the current key", "err", err)
		return ring.cur
	}
	s.o.Logger.Info("challenge: rotated signing key", "key_id", next.cur.id, "previous_key_id", ring.cur.id)
	return next.cur
}

// rotated makes, persists and installs the ring after ring; dropAll leaves
// no previous key. The caller holds rotMu.
func (s *Service) rotated(ring *keyRing, now time.Time, dropAll bool) (*keyRing, error) {
	k, err := s.newKey(ring.cur, now)
	if err != nil {
		return nil, err
	}
	next := &keyRing{cur: k, prev: ring.cur}
	if dropAll {
		next.prev = nil
	}
	if err := s.store.save(next); err != nil {
		return nil, err
	}
	s.ring.Store(next)
	return next, nil
}

// Rotate replaces the signing key now. Clearances and challenges signed by
// the key being replaced stay valid until they expire; those signed by the
// key before it are invalid from now on, so rotating twice in a row logs
// everyone out (RevokeAll does that in one step). On error (no key material,
// or the key file cannot be written) nothing changes.
func (s *Service) Rotate() error {
	s.rotMu.Lock()
	defer s.rotMu.Unlock()
	next, err := s.rotated(s.ring.Load(), s.o.Now(), false)
	if err != nil {
		return fmt.Errorf("challenge: rotating key: %w", err)
	}
	s.o.Logger.Info("challenge: rotated signing key on demand", "key_id", next.cur.id)
	return nil
}

// RevokeAll replaces the signing key and forgets the previous one: every
// clearance and every outstanding challenge becomes invalid at once, and
// visitors are challenged again. On error nothing changes.
func (s *Service) RevokeAll() error {
	s.rotMu.Lock()
	defer s.rotMu.Unlock()
	next, err := s.rotated(s.ring.Load(), s.o.Now(), true)
	if err != nil {
		return fmt.Errorf("challenge: revoking all clearances: %w", err)
	}
	s.o.Logger.Warn("challenge: revoked all clearances", "key_id", next.cur.id)
	return nil
}

// RevokePrefix refuses, from now on, clearances issued before now that are
// used from an address in p or are bound to a network in p. Visitors there
// are challenged again and get new tokens. At most MaxRevocations are kept
// (see there); revocations are in memory only (a restart forgets them;
// RevokeAll survives restarts).
func (s *Service) RevokePrefix(p netip.Prefix) {
	if !p.IsValid() {
		return
	}
	if a := p.Addr(); a.Is4In6() {
		p = netip.PrefixFrom(a.Unmap(), max(p.Bits()-96, 0))
	}
	p = p.Masked()
	now := s.o.Now()
	s.revMu.Lock()
	defer s.revMu.Unlock()
	cutoff := now.Add(-s.o.maxClearanceTTL()).UnixNano()
	next, dropped := s.rev.Load().with(revocation{prefix: p, at: now.UnixNano()}, cutoff)
	s.rev.Store(next)
	if dropped > 0 {
		s.o.Logger.Warn("challenge: revocation list full; dropped the oldest", "dropped", dropped, "max", MaxRevocations)
	}
	s.o.Logger.Info("challenge: revoked clearances of prefix", "prefix", p.String())
}

// SetMode sets the mode whose ClearanceTTL caps the age of every clearance
// Check accepts: raising the mode shortens the life of tokens already
// issued. The shield calls it when the mode changes; the default is
// normal. Challenge takes its mode per call instead, since a rule may ask
// for a harder challenge than the mode.
func (s *Service) SetMode(m verdict.Mode) {
	s.mode.Store(uint32(clampMode(m)))
}

func clampMode(m verdict.Mode) verdict.Mode {
	if int(m) >= NumModes {
		return verdict.ModeUnderAttack
	}
	return m
}

// Check verifies the clearance cookie of r for the client ip (the shield's
// resolved client address; r.RemoteAddr and headers are not used): one
// HMAC-SHA256 over the token and one SHA-256 of the User-Agent, no
// allocation. It returns the zero Clearance and the reason when the cookie
// is absent or refused. When several clearance cookies are present (a
// parent domain may set one too), the first valid one wins and otherwise the
// first refusal is reported; at most four are examined.
func (s *Service) Check(r *http.Request, ip netip.Addr) (verdict.Clearance, CheckResult) {
	lines := r.Header["Cookie"]
	if len(lines) == 0 {
		return verdict.Clearance{}, CheckAbsent
	}
	var ua string
	if v := r.Header["User-Agent"]; len(v) > 0 {
		ua = v[0]
	}
	now := s.o.Now().UnixNano()
	res := CheckAbsent
	var c verdict.Clearance
	cookieValues(lines, func(v string) bool {
		t, until, got := s.checkToken(v, ip, ua, now)
		if got == CheckValid {
			res = got
			if t.flags&flagCheck != 0 {
				// A cookie-check token: checked, not cleared; a
				// clearance may follow among the other values.
				c.Checked = true
				return true
			}
			c = verdict.Clearance{Valid: true, Checked: true, ID: t.id, Expires: time.Unix(0, until)}
			return false
		}
		if res == CheckAbsent {
			res = got
		}
		return true
	})
	return c, res
}

// checkToken verifies one token value: layout, key, HMAC, lifetime (capped
// by the current mode's TTL), User-Agent, revocation, and last the network,
// so that CheckPrefix and CheckOtherFamily mean "valid but for the network".
// until is the end of validity in unix nanoseconds.
func (s *Service) checkToken(v string, ip netip.Addr, ua string, now int64) (t token, until int64, res CheckResult) {
	var raw [tokenLen]byte
	if !decodeB64(raw[:], v) {
		return t, 0, CheckMalformed
	}
	t, ok := unmarshalToken(raw[:])
	if !ok {
		return t, 0, CheckMalformed
	}
	k := s.ring.Load().find(t.keyID)
	if k == nil {
		return t, 0, CheckBadSignature
	}
	st := k.get()
	defer k.put(st)
	copy(st.in[:], raw[:tokenBodyLen])
	st.sumIn(tokenBodyLen)
	if !hmac.Equal(st.sum[:], raw[tokenBodyLen:]) {
		return t, 0, CheckBadSignature
	}
	until = t.expires * int64(time.Second)
	if t.expires > (1<<63-1)/int64(time.Second) {
		until = 1<<63 - 1
	}
	until = min(until, t.issued+int64(s.o.ClearanceTTL[s.mode.Load()]))
	if now >= until {
		return t, until, CheckExpired
	}
	if st.hashString(ua) != t.ua {
		return t, until, CheckUserAgent
	}
	if rv := s.rev.Load(); rv != nil {
		at := rv.revokedAt(ip.Unmap())
		if t.flags&flagV4 != 0 {
			at = max(at, rv.revokedAt(netip.AddrFrom4(t.v4)))
		}
		if t.flags&flagV6 != 0 {
			at = max(at, rv.revokedAt(netip.AddrFrom16(t.v6)))
		}
		if at > t.issued {
			return t, until, CheckRevoked
		}
	}
	match, other := t.slotMatch(ip, s.o.PrefixV4Bits, s.o.PrefixV6Bits)
	switch {
	case other:
		return t, until, CheckOtherFamily
	case !match:
		return t, until, CheckPrefix
	}
	return t, until, CheckValid
}

// signToken fills in the key id, signs t and returns the cookie value.
func (s *Service) signToken(t *token, now time.Time) string {
	k := s.signingKey(now)
	t.keyID = k.id
	st := k.get()
	defer k.put(st)
	var raw [tokenLen]byte
	t.marshal(raw[:])
	copy(st.in[:], raw[:tokenBodyLen])
	st.sumIn(tokenBodyLen)
	copy(raw[tokenBodyLen:], st.sum[:])
	return b64.EncodeToString(raw[:])
}

// uaHash returns the truncated SHA-256 of ua.
func (s *Service) uaHash(ua string) [8]byte {
	k := s.ring.Load().cur
	st := k.get()
	defer k.put(st)
	return st.hashString(ua)
}

// newPuzzle issues a challenge for ip and ua at the mode's difficulty.
func (s *Service) newPuzzle(now time.Time, ip netip.Addr, ua string, mode verdict.Mode) (blob string, p puzzle, err error) {
	mode = clampMode(mode)
	k := s.signingKey(now)
	st := k.get()
	defer k.put(st)
	if _, err := io.ReadFull(s.o.Rand, st.in[:seedLen]); err != nil {
		return "", p, fmt.Errorf("challenge: reading seed: %w", err)
	}
	copy(p.seed[:], st.in[:seedLen])
	p.keyID = k.id
	p.expires = now.Add(s.o.ChallengeTTL).Unix()
	p.difficulty = uint8(s.o.Difficulty[mode])
	p.mode = uint8(mode)
	p.bind(ip, s.o.PrefixV4Bits, s.o.PrefixV6Bits)
	p.ua = st.hashString(ua)
	var raw [puzzleLen]byte
	p.marshal(raw[:])
	copy(st.in[:], raw[:puzzleBodyLen])
	st.sumIn(puzzleBodyLen)
	copy(raw[puzzleBodyLen:], st.sum[:])
	s.issued.Add(1)
	return b64.EncodeToString(raw[:]), p, nil
}

// openPuzzle decodes and authenticates a challenge and checks that it is
// unexpired and bound to ip's network (or to the other address family: a
// dual-stack browser may redeem over either) and to ua.
func (s *Service) openPuzzle(blob string, ip netip.Addr, ua string, now time.Time) (p puzzle, res VerifyResult) {
	var raw [puzzleLen]byte
	if !decodeB64(raw[:], blob) {
		return p, VerifyMalformed
	}
	p, ok := unmarshalPuzzle(raw[:])
	if !ok {
		return p, VerifyMalformed
	}
	k := s.ring.Load().find(p.keyID)
	if k == nil {
		return p, VerifyBadSignature
	}
	st := k.get()
	defer k.put(st)
	copy(st.in[:], raw[:puzzleBodyLen])
	st.sumIn(puzzleBodyLen)
	if !hmac.Equal(st.sum[:], raw[puzzleBodyLen:]) {
		return p, VerifyBadSignature
	}
	if now.Unix() >= p.expires {
		return p, VerifyExpired
	}
	ip = ip.Unmap().WithZone("")
	if (ip.Is4() && p.family == 4) || (ip.Is6() && p.family == 6) {
		var q puzzle
		q.bind(ip, s.o.PrefixV4Bits, s.o.PrefixV6Bits)
		if q.addr != p.addr {
			return p, VerifyPrefix
		}
	} else if !ip.IsValid() {
		return p, VerifyPrefix
	}
	if st.hashString(ua) != p.ua {
		return p, VerifyUserAgent
	}
	return p, VerifyOK
}

// redeemed is the outcome of a successful redemption.
type redeemed struct {
	cookie  string
	token   token
	receipt string
	merged  bool
}

// redeem verifies a solution, or a no-JS pass when nojs is set, for the
// client ip and request r, marks the challenge used and issues a clearance.
// A clearance cookie already on r that is valid, or refused only because it
// has no network for ip's family, lends its id and its networks to the new
// token, so a dual-stack browser ends up with one token (one rate budget)
// for both families. A token from another network of the same family lends
// nothing: the visitor moved, and gets a fresh token.
func (s *Service) redeem(r *http.Request, ip netip.Addr, blob, nonce string, nojs bool) (out redeemed, res VerifyResult) {
	now := s.o.Now()
	ua := r.Header.Get("User-Agent")
	p, res := s.openPuzzle(blob, ip, ua, now)
	if res != VerifyOK {
		return out, res
	}
	if !nojs {
		if !validNonce(nonce) {
			return out, VerifyMalformed
		}
		if work(p.seed, nonce) < int(p.difficulty) {
			return out, VerifyInsufficientWork
		}
	} else {
		// A replayed pass must not spend the no-JS budget.
		if s.replay.contains(binary.BigEndian.Uint64(p.seed[:8]), p.expires) {
			return out, VerifyReplayed
		}
		if !s.o.AllowNoJS(ip) {
			return out, VerifyNoJSLimited
		}
	}
	if !s.replay.add(binary.BigEndian.Uint64(p.seed[:8]), p.expires) {
		return out, VerifyReplayed
	}
	var t token
	nowN := now.UnixNano()
	cookieValues(r.Header["Cookie"], func(v string) bool {
		old, _, got := s.checkToken(v, ip, ua, nowN)
		if got == CheckValid || got == CheckOtherFamily {
			// A cookie-check token lends its id and networks too, not
			// its flag: this one is earned by work.
			t.id, t.flags, t.v4, t.v6 = old.id, old.flags&^flagCheck, old.v4, old.v6
			out.merged = true
			return false
		}
		return true
	})
	if !out.merged {
		var id [8]byte
		if _, err := io.ReadFull(s.o.Rand, id[:]); err != nil {
			s.o.Logger.Error("challenge: reading token id", "err", err)
			return out, VerifyMalformed
		}
		t.id = binary.BigEndian.Uint64(id[:])
	}
	t.setSlot(p.netAddr(), s.o.PrefixV4Bits, s.o.PrefixV6Bits)
	t.setSlot(ip, s.o.PrefixV4Bits, s.o.PrefixV6Bits)
	t.issued = nowN
	t.expires = now.Add(s.o.ClearanceTTL[p.mode]).Unix()
	t.ua = p.ua
	out.cookie = s.signToken(&t, now)
	out.token = t
	out.receipt = s.newReceipt(t.id, now)
	out.merged = out.merged && t.flags == flagV4|flagV6
	return out, VerifyOK
}

// receiptTTL is how long a verify receipt lets the check endpoint count a
// missing cookie as a loop.
const receiptTTL = 5 * time.Minute

// newReceipt signs "token id was issued by a verified solution".
func (s *Service) newReceipt(id uint64, now time.Time) string {
	k := s.signingKey(now)
	st := k.get()
	defer k.put(st)
	var raw [receiptLen]byte
	raw[0] = typeReceipt
	binary.BigEndian.PutUint32(raw[1:], k.id)
	binary.BigEndian.PutUint64(raw[5:], id)
	binary.BigEndian.PutUint64(raw[13:], uint64(now.Add(receiptTTL).Unix()))
	copy(st.in[:], raw[:receiptBodyLen])
	st.sumIn(receiptBodyLen)
	copy(raw[receiptBodyLen:], st.sum[:receiptMACLen])
	return b64.EncodeToString(raw[:])
}

// openReceipt authenticates a receipt and returns its token id.
func (s *Service) openReceipt(v string, now time.Time) (uint64, bool) {
	var raw [receiptLen]byte
	if !decodeB64(raw[:], v) || raw[0] != typeReceipt {
		return 0, false
	}
	k := s.ring.Load().find(binary.BigEndian.Uint32(raw[1:]))
	if k == nil {
		return 0, false
	}
	st := k.get()
	defer k.put(st)
	copy(st.in[:], raw[:receiptBodyLen])
	st.sumIn(receiptBodyLen)
	if !hmac.Equal(st.sum[:receiptMACLen], raw[receiptBodyLen:]) {
		return 0, false
	}
	if now.Unix() >= int64(binary.BigEndian.Uint64(raw[13:])) {
		return 0, false
	}
	return binary.BigEndian.Uint64(raw[5:]), true
}

// Stats is a snapshot of the service's counters and table sizes.
type Stats struct {
	// Issued counts challenges issued: pages and 403 JSON/plain answers.
	Issued uint64
	// Pages counts HTML interstitials served.
	Pages uint64
	// Solved counts clearances issued for verified solutions and no-JS
	// passes.
	Solved uint64
	// Merged counts clearances that extended an existing token to the
	// other address family (dual-stack browsers).
	Merged uint64
	// NoJSPasses counts clearances granted without proof of work.
	NoJSPasses uint64
	// ChecksIssued counts cookie-check tokens sent (with a redirect back
	// to the page); ChecksRefused counts requests that were told cookies
	// are needed because their client had had its share of checks.
	ChecksIssued, ChecksRefused uint64
	// Failed counts refused solutions and no-JS passes by reason
	// (Failed[VerifyOK] stays 0).
	Failed [NumVerifyResults]uint64
	// Loops counts browsers that solved a challenge but came back without a
	// usable clearance, by cause; each was shown an explanation instead of
	// another challenge.
	Loops [NumLoopCauses]uint64
	// ReplayEntries and ReplayCapacity are the replay filter's occupancy
	// and fixed size; ReplayEvictions counts fingerprints overwritten
	// because their slots were full.
	ReplayEntries, ReplayCapacity int
	ReplayEvictions               uint64
	// Revocations is the number of prefix revocations in force (at most
	// MaxRevocations).
	Revocations int
	// ClientSolves and ClientSolveTime are the number of solve times the
	// pages reported with their solutions and their sum (each clamped to
	// 10 minutes): the mean is what visitors spend on the interstitial's
	// puzzle. Informational: clients can lie.
	ClientSolves    uint64
	ClientSolveTime time.Duration
	// ClientHashes is the sum of the hash counts the pages reported with
	// those solve times (ClientHashes / ClientSolveTime is the visitors'
	// mean hash rate, what the difficulty should be tuned to).
	ClientHashes uint64
	// KeyID and KeyCreated describe the current signing key.
	KeyID      uint32
	KeyCreated time.Time
}

// Stats returns a snapshot of the counters. It locks each replay shard
// briefly; call it from a metrics scrape, not per request.
func (s *Service) Stats() Stats {
	st := Stats{
		Issued:          s.issued.Load(),
		Pages:           s.pagesServed.Load(),
		Solved:          s.solved.Load(),
		Merged:          s.merged.Load(),
		NoJSPasses:      s.nojsPasses.Load(),
		ChecksIssued:    s.checksIssued.Load(),
		ChecksRefused:   s.checksRefused.Load(),
		ClientSolves:    s.clientSolves.Load(),
		ClientSolveTime: time.Duration(s.clientSolveNanos.Load()),
		ClientHashes:    s.clientHashes.Load(),
		ReplayEntries:   s.replay.size(),
		ReplayCapacity:  s.replay.capacity(),
		ReplayEvictions: s.replay.evictions.Load(),
	}
	for i := range st.Failed {
		st.Failed[i] = s.failed[i].Load()
	}
	for i := range st.Loops {
		st.Loops[i] = s.loops[i].Load()
	}
	if rv := s.rev.Load(); rv != nil {
		st.Revocations = len(rv.list)
	}
	ring := s.ring.Load()
	st.KeyID, st.KeyCreated = ring.cur.id, ring.cur.created
	return st
}
