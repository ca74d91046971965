package challenge

import (
	"crypto/sha256"
	"encoding/binary"
	"math/bits"
	"net/netip"
)

const (
	// Challenge: type(1) keyID(4) seed(16) expires-unix(8) difficulty(1)
	// mode(1) family(1) masked-address(16) uaHash(8) | mac(32).
	puzzleBodyLen = 1 + 4 + 16 + 8 + 1 + 1 + 1 + 16 + 8
	puzzleLen     = puzzleBodyLen + macLen
	puzzleB64Len  = (puzzleLen*8 + 5) / 6
	seedLen       = 16
	seedB64Len    = (seedLen*8 + 5) / 6

	// Receipt: type(1) keyID(4) tokenID(8) expires-unix(8) | mac(16).
	receiptBodyLen = 1 + 4 + 8 + 8
	receiptMACLen  = 16
	receiptLen     = receiptBodyLen + receiptMACLen
	receiptB64Len  = (receiptLen*8 + 5) / 6

	// maxNonceLen is the longest decimal nonce accepted: 2^53 (the largest
	// integer a JavaScript number counts exactly) has 16 digits.
	maxNonceLen = 16
)

// puzzle is a decoded challenge.
type puzzle struct {
	keyID      uint32
	seed       [seedLen]byte
	expires    int64 // unix seconds
	difficulty uint8
	mode       uint8
	family     uint8 // 4 or 6
	addr       [16]byte
	ua         [8]byte
}

func (p *puzzle) marshal(b []byte) {
	_ = b[puzzleBodyLen-1]
	b[0] = typePuzzle
	binary.BigEndian.PutUint32(b[1:], p.keyID)
	copy(b[5:21], p.seed[:])
	binary.BigEndian.PutUint64(b[21:], uint64(p.expires))
	b[29] = p.difficulty
	b[30] = p.mode
	b[31] = p.family
	copy(b[32:48], p.addr[:])
	copy(b[48:56], p.ua[:])
}

func unmarshalPuzzle(b []byte) (p puzzle, ok bool) {
	if len(b) < puzzleBodyLen || b[0] != typePuzzle {
		return p, false
	}
	p.keyID = binary.BigEndian.Uint32(b[1:])
	copy(p.seed[:], b[5:21])
	p.expires = int64(binary.BigEndian.Uint64(b[21:]))
	p.difficulty = b[29]
	p.mode = b[30]
	p.family = b[31]
	copy(p.addr[:], b[32:48])
	copy(p.ua[:], b[48:56])
	if p.difficulty < MinDifficulty || p.difficulty > MaxDifficulty || int(p.mode) >= NumModes ||
		(p.family != 4 && p.family != 6) {
		return p, false
	}
	return p, true
}

// bind records ip's network in the puzzle.
func (p *puzzle) bind(ip netip.Addr, v4Bits, v6Bits int) {
	ip = ip.Unmap().WithZone("")
	if ip.Is4() {
		pf, _ := ip.Prefix(v4Bits)
		a := pf.Addr().As4()
		copy(p.addr[:], a[:])
		p.family = 4
		return
	}
	pf, _ := ip.Prefix(v6Bits)
	p.addr = pf.Addr().As16()
	p.family = 6
}

// addr returns the puzzle's network address.
func (p *puzzle) netAddr() netip.Addr {
	if p.family == 4 {
		return netip.AddrFrom4([4]byte(p.addr[:4]))
	}
	return netip.AddrFrom16(p.addr)
}

// seedString returns the base64url seed, the prefix of the hashed input.
func (p *puzzle) seedString() string { return b64.EncodeToString(p.seed[:]) }

// validNonce reports whether n is a canonical decimal nonce: digits only,
// no leading zero (except "0" itself), at most maxNonceLen digits.
func validNonce(n string) bool {
	if len(n) == 0 || len(n) > maxNonceLen || (len(n) > 1 && n[0] == '0') {
		return false
	}
	for i := 0; i < len(n); i++ {
		if n[i] < '0' || n[i] > '9' {
			return false
		}
	}
	return true
}

// work returns the number of leading zero bits of SHA-256(seed || nonce).
func work(seed [seedLen]byte, nonce string) int {
	var buf [seedB64Len + maxNonceLen]byte
	b64.Encode(buf[:seedB64Len], seed[:])
	n := copy(buf[seedB64Len:], nonce)
	sum := sha256.Sum256(buf[:seedB64Len+n])
	return leadingZeroBits(&sum)
}

// leadingZeroBits counts the zero bits before the first one bit of h.
func leadingZeroBits(h *[sha256.Size]byte) int {
	for i, b := range h {
		if b != 0 {
			return i*8 + bits.LeadingZeros8(b)
		}
	}
	return 8 * sha256.Size
}
