package challenge_test

import (
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rampart-shield/rampart/internal/challenge"
	"github.com/rampart-shield/rampart/internal/verdict"
)

const testUA = "Mozilla/5.0 TestBrowser/1.0"

func reqWithCookie(ua, cookie string) *http.Request {
	r := httptest.NewRequest(http.MethodGet, "/page", nil)
	r.Header.Set("User-Agent", ua)
	if cookie != "" {
		r.Header.Set("Cookie", challenge.CookieName+"="+cookie)
	}
	return r
}

func TestCheck(t *testing.T) {
	v4 := netip.MustParseAddr("198.51.100.20")
	v6 := netip.MustParseAddr("2001:db8:1:2:3:4:5:6")
	for _, tc := range []struct {
		name   string
		issue  netip.Addr                                                          // address the token is issued to
		change func(t *testing.T, s *challenge.Service, c *fakeClock, tok *string) // optional mutation
		ip     string                                                              // address of the checked request
		ua     string
		want   challenge.CheckResult
	}{
		{name: "valid", issue: v4, ip: "198.51.100.20", want: challenge.CheckValid},
		{name: "valid-same-24", issue: v4, ip: "198.51.100.254", want: challenge.CheckValid},
		{name: "valid-v4-mapped", issue: v4, ip: "::ffff:198.51.100.20", want: challenge.CheckValid},
		{name: "valid-v6-same-64", issue: v6, ip: "2001:db8:1:2:ffff::1", want: challenge.CheckValid},
		{name: "absent", issue: v4, ip: "198.51.100.20", change: func(_ *testing.T, _ *challenge.Service, _ *fakeClock, tok *string) { *tok = "" }, want: challenge.CheckAbsent},
		{name: "malformed-short", issue: v4, ip: "198.51.100.20", change: func(_ *testing.T, _ *challenge.Service, _ *fakeClock, tok *string) { *tok = "abc" }, want: challenge.CheckMalformed},
		{name: "malformed-alphabet", issue: v4, ip: "198.51.100.20", change: func(_ *testing.T, _ *challenge.Service, _ *fakeClock, tok *string) { *tok = "+" + (*tok)[1:] }, want: challenge.CheckMalformed},
		{name: "tampered-body", issue: v4, ip: "198.51.100.20", change: func(_ *testing.T, _ *challenge.Service, _ *fakeClock, tok *string) { *tok = flip(*tok, 10) }, want: challenge.CheckBadSignature},
		{name: "tampered-mac", issue: v4, ip: "198.51.100.20", change: func(_ *testing.T, _ *challenge.Service, _ *fakeClock, tok *string) { *tok = flip(*tok, 100) }, want: challenge.CheckBadSignature},
		{name: "forged-other-key", issue: v4, ip: "198.51.100.20", change: func(t *testing.T, _ *challenge.Service, c *fakeClock, tok *string) {
			other := newService(t, c, func(o *challenge.Options) { o.Rand = newRand(99) })
			*tok = obtainCookie(t, other, v4, testUA)
		}, want: challenge.CheckBadSignature},
		{name: "expired", issue: v4, ip: "198.51.100.20", change: func(_ *testing.T, _ *challenge.Service, c *fakeClock, _ *string) { c.Advance(24 * time.Hour) }, want: challenge.CheckExpired},
		{name: "not-yet-expired", issue: v4, ip: "198.51.100.20", change: func(_ *testing.T, _ *challenge.Service, c *fakeClock, _ *string) {
			c.Advance(24*time.Hour - time.Second)
		}, want: challenge.CheckValid},
		{name: "mode-shortens-lifetime", issue: v4, ip: "198.51.100.20", change: func(_ *testing.T, s *challenge.Service, c *fakeClock, _ *string) {
			c.Advance(2 * time.Hour)
			s.SetMode(verdict.ModeUnderAttack)
		}, want: challenge.CheckExpired},
		{name: "other-prefix", issue: v4, ip: "198.51.101.20", want: challenge.CheckPrefix},
		{name: "other-v6-prefix", issue: v6, ip: "2001:db8:1:3::1", want: challenge.CheckPrefix},
		{name: "other-family-v6", issue: v4, ip: "2001:db8::1", want: challenge.CheckOtherFamily},
		{name: "other-family-v4", issue: v6, ip: "198.51.100.20", want: challenge.CheckOtherFamily},
		{name: "user-agent", issue: v4, ip: "198.51.100.20", ua: "curl/8.0", want: challenge.CheckUserAgent},
		{name: "revoked-prefix", issue: v4, ip: "198.51.100.20", change: func(_ *testing.T, s *challenge.Service, c *fakeClock, _ *string) {
			c.Advance(time.Second)
			s.RevokePrefix(netip.MustParsePrefix("198.51.100.0/24"))
		}, want: challenge.CheckRevoked},
		{name: "revoked-host", issue: v4, ip: "198.51.100.20", change: func(_ *testing.T, s *challenge.Service, c *fakeClock, _ *string) {
			c.Advance(time.Millisecond)
			s.RevokePrefix(netip.MustParsePrefix("198.51.100.20/32"))
		}, want: challenge.CheckRevoked},
		{name: "revoked-wider", issue: v4, ip: "198.51.100.20", change: func(_ *testing.T, s *challenge.Service, c *fakeClock, _ *string) {
			c.Advance(time.Millisecond)
			s.RevokePrefix(netip.MustParsePrefix("198.51.100.128/25"))
			s.RevokePrefix(netip.MustParsePrefix("198.0.0.0/8"))
		}, want: challenge.CheckRevoked},
		{name: "revoked-elsewhere", issue: v4, ip: "198.51.100.20", change: func(_ *testing.T, s *challenge.Service, c *fakeClock, _ *string) {
			s.RevokePrefix(netip.MustParsePrefix("203.0.113.0/24"))
		}, want: challenge.CheckValid},
		{name: "issued-after-revocation", issue: v4, ip: "198.51.100.20", change: func(t *testing.T, s *challenge.Service, c *fakeClock, tok *string) {
			s.RevokePrefix(netip.MustParsePrefix("198.51.100.0/24"))
			c.Advance(time.Millisecond)
			*tok = obtainCookie(t, s, v4, testUA)
		}, want: challenge.CheckValid},
		{name: "rotated-once", issue: v4, ip: "198.51.100.20", change: func(t *testing.T, s *challenge.Service, _ *fakeClock, _ *string) {
			mustNil(t, s.Rotate())
		}, want: challenge.CheckValid},
		{name: "rotated-twice", issue: v4, ip: "198.51.100.20", change: func(t *testing.T, s *challenge.Service, _ *fakeClock, _ *string) {
			mustNil(t, s.Rotate())
			mustNil(t, s.Rotate())
		}, want: challenge.CheckBadSignature},
		{name: "revoke-all", issue: v4, ip: "198.51.100.20", change: func(t *testing.T, s *challenge.Service, _ *fakeClock, _ *string) {
			mustNil(t, s.RevokeAll())
		}, want: challenge.CheckBadSignature},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clock := newClock()
			svc := newService(t, clock)
			tok := obtainCookie(t, svc, tc.issue, testUA)
			if tc.change != nil {
				tc.change(t, svc, clock, &tok)
			}
			ua := testUA
			if tc.ua != "" {
				ua = tc.ua
			}
			c, res := svc.Check(reqWithCookie(ua, tok), netip.MustParseAddr(tc.ip))
			if res != tc.want {
				t.Fatalf("Check = %v, want %v", res, tc.want)
			}
			if c.Valid != (tc.want == challenge.CheckValid) {
				t.Errorf("Clearance.Valid = %v with result %v", c.Valid, res)
			}
			if c.Valid && (c.ID == 0 || !c.Expires.After(clock.Now())) {
				t.Errorf("valid clearance %+v lacks id or future expiry", c)
			}
			if !c.Valid && c != (verdict.Clearance{}) {
				t.Errorf("refused clearance is not zero: %+v", c)
			}
		})
	}
}

func flip(s string, i int) string {
	b := []byte(s)
	if b[i] == 'A' {
		b[i] = 'B'
	} else {
		b[i] = 'A'
	}
	return string(b)
}

func mustNil(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func TestCheckSeveralCookies(t *testing.T) {
	clock := newClock()
	svc := newService(t, clock)
	ip := netip.MustParseAddr("198.51.100.20")
	tok := obtainCookie(t, svc, ip, testUA)
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.Header.Set("User-Agent", testUA)
	r.Header.Add("Cookie", "a=1; "+challenge.CookieName+"=garbage")
	r.Header.Add("Cookie", challenge.CookieName+"=\""+tok+"\"; b=2")
	if c, res := svc.Check(r, ip); !c.Valid {
		t.Fatalf("Check = %v, want the second cookie to win", res)
	}
	r.Header.Del("Cookie")
	r.Header.Add("Cookie", challenge.CookieName+"=garbage; "+challenge.CookieName+"x="+tok)
	if _, res := svc.Check(r, ip); res != challenge.CheckMalformed {
		t.Fatalf("Check = %v, want malformed (the first refusal)", res)
	}
}

// TestScheduledRotation checks that rotation happens lazily after
// KeyRotation and that the previous key's tokens stay valid until they
// expire.
func TestScheduledRotation(t *testing.T) {
	clock := newClock()
	svc := newService(t, clock, func(o *challenge.Options) { o.KeyRotation = 48 * time.Hour })
	ip := netip.MustParseAddr("198.51.100.20")
	first := svc.Stats().KeyID
	clock.Advance(47 * time.Hour)
	tok := obtainCookie(t, svc, ip, testUA)
	if svc.Stats().KeyID != first {
		t.Fatal("rotated before KeyRotation")
	}
	clock.Advance(2 * time.Hour)
	obtainCookie(t, svc, ip, testUA) // issuing rotates
	if svc.Stats().KeyID == first {
		t.Fatal("did not rotate after KeyRotation")
	}
	if _, res := svc.Check(reqWithCookie(testUA, tok), ip); res != challenge.CheckValid {
		t.Fatalf("token of the previous key: %v, want valid", res)
	}
	clock.Advance(23 * time.Hour)
	if _, res := svc.Check(reqWithCookie(testUA, tok), ip); res != challenge.CheckExpired {
		t.Fatalf("token after its TTL: %v, want expired", res)
	}
}

func TestKeysPersist(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	clock := newClock()
	opt := func(o *challenge.Options) { o.StateDir = dir }
	svc := newService(t, clock, opt)
	ip := netip.MustParseAddr("198.51.100.20")
	tok := obtainCookie(t, svc, ip, testUA)
	path := filepath.Join(dir, "keys.json")
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("key file mode %v, want 0600", fi.Mode().Perm())
	}
	// A restart keeps the clearance.
	svc2 := newService(t, clock, opt)
	if _, res := svc2.Check(reqWithCookie(testUA, tok), ip); res != challenge.CheckValid {
		t.Fatalf("after restart: %v, want valid", res)
	}
	// Rotation is persisted too: after a rotation and a restart, the old
	// token is still valid (previous key) and new ones use the new key.
	mustNil(t, svc2.Rotate())
	svc3 := newService(t, clock, opt)
	if svc3.Stats().KeyID != svc2.Stats().KeyID {
		t.Errorf("restart after rotation: key %d, want %d", svc3.Stats().KeyID, svc2.Stats().KeyID)
	}
	if _, res := svc3.Check(reqWithCookie(testUA, tok), ip); res != challenge.CheckValid {
		t.Fatalf("after rotation and restart: %v, want valid", res)
	}
	// A key file others can read is refused.
	mustNil(t, os.Chmod(path, 0o644))
	if _, err := challenge.New(challenge.Options{StateDir: dir}); err == nil || !strings.Contains(err.Error(), "0600") {
		t.Errorf("New with a 0644 key file: %v, want a permissions error", err)
	}
	mustNil(t, os.Chmod(path, 0o600))
	mustNil(t, os.WriteFile(path, []byte(`{"version":1,"keys":[]}`), 0o600))
	if _, err := challenge.New(challenge.Options{StateDir: dir}); err == nil {
		t.Error("New with an empty key file succeeded")
	}
}

func TestRevocationsBounded(t *testing.T) {
	clock := newClock()
	svc := newService(t, clock)
	for i := range challenge.MaxRevocations + 10 {
		svc.RevokePrefix(netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(i >> 8), byte(i), 0}), 24))
	}
	if n := svc.Stats().Revocations; n != challenge.MaxRevocations {
		t.Errorf("revocations = %d, want the cap %d", n, challenge.MaxRevocations)
	}
	// Revocations older than the longest clearance lifetime are dropped.
	clock.Advance(25 * time.Hour)
	svc.RevokePrefix(netip.MustParsePrefix("192.0.2.0/24"))
	if n := svc.Stats().Revocations; n != 1 {
		t.Errorf("revocations after expiry = %d, want 1", n)
	}
}

// TestCheckDoesNotAllocate guards the hot path's zero allocations (the
// race detector's sync.Pool drops items on purpose, so it is skipped there).
func TestCheckDoesNotAllocate(t *testing.T) {
	if raceEnabled {
		t.Skip("sync.Pool drops items under the race detector")
	}
	svc := newService(t, newClock())
	ip := netip.MustParseAddr("198.51.100.20")
	r := clearedRequest(t, svc, ip)
	for name, req := range map[string]*http.Request{"valid": r, "absent": httptest.NewRequest(http.MethodGet, "/", nil)} {
		if n := testing.AllocsPerRun(200, func() { svc.Check(req, ip) }); n != 0 {
			t.Errorf("Check(%s) allocates %.1f times per call", name, n)
		}
	}
}
