package challenge

import (
	"bytes"
	"encoding/base64"
	"net/netip"
	"strings"
	"testing"
	"time"
)

func TestReplayFilter(t *testing.T) {
	const span = 300
	f := newReplayFilter(MinReplayFilter, span)
	if f.capacity() != MinReplayFilter {
		t.Fatalf("capacity %d, want %d", f.capacity(), MinReplayFilter)
	}
	exp := int64(1_000_000_200)
	for _, tc := range []struct {
		name    string
		fp      uint64
		expires int64
		want    bool
	}{
		{"first", 42, exp, true},
		{"again", 42, exp, false},
		{"other", 43, exp, true},
		{"zero-fingerprint", 0, exp, true},
		{"zero-again", 0, exp, false},
		{"next-generation", 42, exp + span, true},
		{"next-generation-again", 42, exp + span, false},
		{"still-remembered", 42, exp, false},
		{"generation-after-next-recycles", 42, exp + 2*span, true},
		{"recycled-generation-refused", 43, exp, false},
	} {
		if got := f.add(tc.fp, tc.expires); got != tc.want {
			t.Errorf("%s: add(%d, %d) = %v, want %v", tc.name, tc.fp, tc.expires, got, tc.want)
		}
	}
	// Flooding it never grows it: past its capacity it evicts.
	g := newReplayFilter(MinReplayFilter, span)
	for i := range uint64(4 * MinReplayFilter) {
		g.add(i*0x9e3779b97f4a7c15+1, exp)
	}
	if n := g.size(); n > g.capacity() {
		t.Errorf("size %d beyond capacity %d", n, g.capacity())
	}
	if g.evictions.Load() == 0 {
		t.Error("no evictions after 4x capacity")
	}
}

func TestDecodeB64MatchesStdlib(t *testing.T) {
	for _, s := range []string{"", "AA", "AAA", "_-_-", "QUJD", "QUJDRA", "QUJDRB"} {
		want, err := base64.RawURLEncoding.Strict().DecodeString(s)
		dst := make([]byte, len(s)*6/8)
		ok := decodeB64(dst, s)
		if ok != (err == nil) || (ok && !bytes.Equal(dst, want)) {
			t.Errorf("decodeB64(%q) = %v %x, stdlib %x %v", s, ok, dst, want, err)
		}
	}
}

// FuzzDecodeB64 compares the allocation-free decoder with the standard
// library's strict one.
func FuzzDecodeB64(f *testing.F) {
	for _, s := range []string{"", "AA", "QUJD", "QUJDRA", "QUJDRB", "a+b/", strings.Repeat("A", tokenB64Len)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n := len(s) * 6 / 8
		dst := make([]byte, n)
		ok := decodeB64(dst, s)
		want, err := base64.RawURLEncoding.Strict().DecodeString(s)
		if ok && (err != nil || !bytes.Equal(dst, want)) {
			t.Fatalf("decodeB64(%q) accepted %x, stdlib %x %v", s, dst, want, err)
		}
		if !ok && err == nil && len(want) == n && (len(want)*8+5)/6 == len(s) {
			t.Fatalf("decodeB64(%q) refused what stdlib decodes to %x", s, want)
		}
	})
}

// FuzzCookieValues checks that the in-place Cookie parser finds exactly
// the clearance values, bounded in number, and never panics.
func FuzzCookieValues(f *testing.F) {
	for _, s := range []string{"", "rampart_clearance=abc", "a=1; rampart_clearance=\"x\"; b=2", "rampart_clearance", "rampart_clearance=;rampart_clearance= v ",
		strings.Repeat("rampart_clearance=1;", 10), "rampart_clearancex=1", ";;; ;"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		n := 0
		cookieValues([]string{line, line}, func(v string) bool {
			n++
			if !strings.Contains(line, v) {
				t.Fatalf("value %q not in %q", v, line)
			}
			return true
		})
		if n > maxCookieCandidates {
			t.Fatalf("%d candidates, cap %d", n, maxCookieCandidates)
		}
	})
}

// FuzzPickLanguage checks the Accept-Language parser never panics and
// only returns available languages.
func FuzzPickLanguage(f *testing.F) {
	for _, s := range []string{"", "fr", "fr-CH, fr;q=0.9, en;q=0.8, de;q=0.7, *;q=0.5", "de;q=1.0", "en;q=0.", "xx;q=abc", ";q=0.5", ",,,", "fr;Q=0.001"} {
		f.Add(s)
	}
	avail := []string{"de", "en", "fr"}
	f.Fuzz(func(t *testing.T, h string) {
		got := pickLanguage(h, avail)
		if got != "de" && got != "en" && got != "fr" {
			t.Fatalf("pickLanguage(%q) = %q", h, got)
		}
	})
}

func TestParseQ(t *testing.T) {
	for in, want := range map[string]int{"": 1000, "q=1": 1000, "q=0.5": 500, "q=0.123": 123, "q=0": 0, "q=1.000": 1000, "q=2": 0, "q=0.1234": 0, "x=1;q=0.3": 300, "q=.5": 0} {
		if got := parseQ(in); got != want {
			t.Errorf("parseQ(%q) = %d, want %d", in, got, want)
		}
	}
}

// FuzzParseKeyFile checks the key file parser never panics and accepts
// only usable rings.
func FuzzParseKeyFile(f *testing.F) {
	k := newKey(7, [32]byte{1}, time.Unix(1e9, 0))
	f.Add(marshalKeyFile(&keyRing{cur: k}))
	f.Add(marshalKeyFile(&keyRing{cur: k, prev: newKey(6, [32]byte{2}, time.Unix(1e9, 0))}))
	f.Add([]byte(`{"version":1,"keys":[]}`))
	f.Add([]byte(`{"version":2}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := parseKeyFile(b)
		if err == nil && (r.cur == nil || (r.prev != nil && r.prev.id == r.cur.id)) {
			t.Fatalf("accepted an unusable ring from %q", b)
		}
	})
}

// FuzzSanitizeReturn checks that whatever a client sends, the return URL
// is a local path safe in HTML attributes and JSON.
func FuzzSanitizeReturn(f *testing.F) {
	for _, s := range []string{"/", "/a?b", "//evil", "/\\evil", "https://x", "/a\"b", "/<x>", PathPrefix + "check", "/" + strings.Repeat("a", 3000)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, u string) {
		for _, got := range []string{sanitizeReturn(u), sanitizeReturn(escapeUnsafe(u))} {
			if !safeReturn(got) || strings.ContainsAny(got, "\"'<>\\ \t\r\n") || strings.HasPrefix(got, "//") {
				t.Fatalf("sanitizeReturn(%q) = %q", u, got)
			}
		}
	})
}

// FuzzToken feeds arbitrary cookie values to the token checker: nothing
// but tokens signed by the service may verify.
func FuzzToken(f *testing.F) {
	s, err := New(Options{Now: func() time.Time { return time.Unix(1.7e9, 0) }})
	if err != nil {
		f.Fatal(err)
	}
	ip := netip.MustParseAddr("192.0.2.1")
	var tk token
	tk.id, tk.issued, tk.expires = 1, 1.7e9*1e9, 1.7e9+3600
	tk.setSlot(ip, 24, 64)
	tk.ua = s.uaHash("ua")
	good := s.signToken(&tk, time.Unix(1.7e9, 0))
	f.Add(good)
	f.Add(good[:len(good)-1] + "A")
	f.Add("")
	f.Add(strings.Repeat("A", tokenB64Len))
	f.Fuzz(func(t *testing.T, v string) {
		_, _, res := s.checkToken(v, ip, "ua", 1.7e9*1e9)
		if res == CheckValid && v != good {
			t.Fatalf("forged token %q verified", v)
		}
	})
}

// FuzzPuzzle feeds arbitrary challenges and nonces to redemption: nothing
// unsigned may verify, and nothing may panic.
func FuzzPuzzle(f *testing.F) {
	now := time.Unix(1.7e9, 0)
	s, err := New(Options{Now: func() time.Time { return now }, Difficulty: [NumModes]int{1, 1, 1}})
	if err != nil {
		f.Fatal(err)
	}
	ip := netip.MustParseAddr("192.0.2.1")
	blob, _, err := s.newPuzzle(now, ip, "ua", 0)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(blob, "0")
	f.Add(blob, "1")
	f.Add(blob[:len(blob)-2]+"AA", "1")
	f.Add("", "")
	f.Add(strings.Repeat("_", puzzleB64Len), "123")
	f.Fuzz(func(t *testing.T, c, n string) {
		p, res := s.openPuzzle(c, ip, "ua", now)
		if res == VerifyOK && c != blob {
			t.Fatalf("forged challenge %q opened", c)
		}
		if res == VerifyOK && validNonce(n) {
			work(p.seed, n)
		}
	})
}
