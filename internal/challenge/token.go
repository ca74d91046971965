package challenge

import (
	"encoding/base64"
	"encoding/binary"
	"net/netip"
	"strings"
)

// Wire formats. Every signed blob starts with a type byte, so that a token,
// a challenge and a receipt signed by the same key can never be mistaken for
// one another, and ends with HMAC-SHA256 over everything before it. All are
// carried as unpadded base64url.
const (
	typeToken   = 'T'
	typePuzzle  = 'P'
	typeReceipt = 'R'

	macLen = 32

	// Token: type(1) keyID(4) id(8) issued-unix-nanos(8) expires-unix(8)
	// flags(1) v4(4) v6(16) uaHash(8) | mac(32).
	tokenBodyLen = 1 + 4 + 8 + 8 + 8 + 1 + 4 + 16 + 8
	tokenLen     = tokenBodyLen + macLen
	tokenB64Len  = (tokenLen*8 + 5) / 6

	flagV4 = 1 << 0
	flagV6 = 1 << 1
	// flagCheck marks a cookie-check token: it proves the client keeps
	// cookies, not that it did any work (see Service.CookieCheck).
	flagCheck = 1 << 2
)

// token is a decoded clearance token.
type token struct {
	keyID   uint32
	id      uint64
	issued  int64 // unix nanoseconds
	expires int64 // unix seconds
	flags   byte
	v4      [4]byte
	v6      [16]byte
	ua      [8]byte
}

// marshal writes the token body into b (len >= tokenBodyLen).
func (t *token) marshal(b []byte) {
	_ = b[tokenBodyLen-1]
	b[0] = typeToken
	binary.BigEndian.PutUint32(b[1:], t.keyID)
	binary.BigEndian.PutUint64(b[5:], t.id)
	binary.BigEndian.PutUint64(b[13:], uint64(t.issued))
	binary.BigEndian.PutUint64(b[21:], uint64(t.expires))
	b[29] = t.flags
	copy(b[30:34], t.v4[:])
	copy(b[34:50], t.v6[:])
	copy(b[50:58], t.ua[:])
}

// unmarshalToken decodes a token body; it checks only the layout.
func unmarshalToken(b []byte) (t token, ok bool) {
	if len(b) < tokenBodyLen || b[0] != typeToken {
		return t, false
	}
	t.keyID = binary.BigEndian.Uint32(b[1:])
	t.id = binary.BigEndian.Uint64(b[5:])
	t.issued = int64(binary.BigEndian.Uint64(b[13:]))
	t.expires = int64(binary.BigEndian.Uint64(b[21:]))
	t.flags = b[29]
	copy(t.v4[:], b[30:34])
	copy(t.v6[:], b[34:50])
	copy(t.ua[:], b[50:58])
	if t.flags&(flagV4|flagV6) == 0 || t.flags&^(flagV4|flagV6|flagCheck) != 0 {
		return t, false
	}
	return t, true
}

// setSlot binds the token to ip's network of the given size.
func (t *token) setSlot(ip netip.Addr, v4Bits, v6Bits int) {
	ip = ip.Unmap().WithZone("")
	if ip.Is4() {
		p, _ := ip.Prefix(v4Bits)
		t.v4 = p.Addr().As4()
		t.flags |= flagV4
	} else if ip.Is6() {
		p, _ := ip.Prefix(v6Bits)
		t.v6 = p.Addr().As16()
		t.flags |= flagV6
	}
}

// slotMatch reports whether ip lies in the token's network of its family:
// matched, or no slot for that family (otherFamily), or mismatch.
func (t *token) slotMatch(ip netip.Addr, v4Bits, v6Bits int) (match, otherFamily bool) {
	ip = ip.Unmap().WithZone("")
	switch {
	case ip.Is4():
		if t.flags&flagV4 == 0 {
			return false, true
		}
		p, _ := ip.Prefix(v4Bits)
		return p.Addr().As4() == t.v4, false
	case ip.Is6():
		if t.flags&flagV6 == 0 {
			return false, true
		}
		p, _ := ip.Prefix(v6Bits)
		return p.Addr().As16() == t.v6, false
	}
	return false, false
}

// b64 is the alphabet of every blob on the wire.
var b64 = base64.RawURLEncoding

// b64dec maps a base64url character to its value, or 0xff.
var b64dec = func() (t [256]byte) {
	for i := range t {
		t[i] = 0xff
	}
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	for i := range len(alphabet) {
		t[alphabet[i]] = byte(i)
	}
	return t
}()

// decodeB64 decodes unpadded base64url s into dst, which must hold exactly
// len(dst) bytes worth of s. It rejects wrong lengths, foreign characters
// and non-zero trailing bits (so every blob has one spelling). It works on a
// string so that no conversion allocates.
func decodeB64(dst []byte, s string) bool {
	if len(s) != (len(dst)*8+5)/6 {
		return false
	}
	var acc uint32
	var bits uint
	j := 0
	for i := 0; i < len(s); i++ {
		v := b64dec[s[i]]
		if v == 0xff {
			return false
		}
		acc = acc<<6 | uint32(v)
		bits += 6
		if bits >= 8 {
			bits -= 8
			dst[j] = byte(acc >> bits)
			j++
			acc &= 1<<bits - 1
		}
	}
	return acc == 0 && j == len(dst)
}

// maxCookieCandidates bounds how many rampart_clearance cookies one request
// may make us verify (a parent domain may set its own).
const maxCookieCandidates = 4

// cookieValues calls fn with each value of the clearance cookie in the
// Cookie header lines, at most maxCookieCandidates times, until fn returns
// false. It parses in place: no allocation.
func cookieValues(lines []string, fn func(v string) bool) {
	n := 0
	for _, line := range lines {
		for len(line) > 0 {
			var part string
			if i := strings.IndexByte(line, ';'); i >= 0 {
				part, line = line[:i], line[i+1:]
			} else {
				part, line = line, ""
			}
			part = strings.TrimLeft(part, " \t")
			if len(part) <= len(CookieName) || part[len(CookieName)] != '=' || part[:len(CookieName)] != CookieName {
				continue
			}
			v := strings.TrimRight(part[len(CookieName)+1:], " \t")
			if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
				v = v[1 : len(v)-1]
			}
			n++
			if !fn(v) || n >= maxCookieCandidates {
				return
			}
		}
	}
}
