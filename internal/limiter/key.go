package limiter

import (
	"encoding/binary"
	"hash/maphash"
	"net/netip"
)

// keySeed is the process-wide random seed of every KeyBuilder. Keys are
// therefore stable within one process and differ between processes (and
// between cluster nodes): they are table keys, not identifiers to share.
var keySeed = maphash.MakeSeed()

// Field tags: every field is written as a tag byte, then a fixed-size or
// length-prefixed body, so that different field sequences never produce the
// same byte stream ("ab"+"c" differs from "a"+"bc", and an address differs
// from a string holding the same bytes).
const (
	tagNamespace byte = iota + 1
	tagString
	tagAddrInvalid
	tagAddr4
	tagAddr6
	tagPrefixInvalid
	tagPrefix4
	tagPrefix6
	tagUint64
	tagBytes
)

// KeyBuilder builds a 64-bit table key from a sequence of typed fields,
// without allocating. It hashes with hash/maphash under one random seed per
// process, so an attacker cannot predict keys or aim them at one bucket.
//
// Use one KeyBuilder per goroutine (a local variable or a field of a
// per-request struct); it is not safe for concurrent use. Start every key
// with Reset, naming the rule or purpose, then add the fields:
//
//	var kb limiter.KeyBuilder
//	kb.Reset("login-per-ip")
//	kb.AddAddr(facts.IP)
//	key := kb.Sum()
//
// Composite keys (rule + IP, rule + prefix + header value, ...) are simply
// more Add calls. A TLS or HTTP/2 fingerprint string (JA4, Akamai) is keyed
// with AddString. Each field is framed with its type and length, so
// different field boundaries give different keys. The zero KeyBuilder is
// ready to use and behaves as after Reset("").
type KeyBuilder struct {
	h      maphash.Hash
	seeded bool
}

// Reset starts a new key in namespace (a rule name or purpose), so that the
// same client keyed by two rules gets two keys.
func (b *KeyBuilder) Reset(namespace string) {
	b.h.SetSeed(keySeed)
	b.seeded = true
	b.writeLen(tagNamespace, len(namespace))
	b.h.WriteString(namespace)
}

func (b *KeyBuilder) start() {
	if !b.seeded {
		b.Reset("")
	}
}

func (b *KeyBuilder) writeLen(tag byte, n int) {
	var buf [9]byte
	buf[0] = tag
	binary.LittleEndian.PutUint64(buf[1:], uint64(n))
	b.h.Write(buf[:])
}

// AddString adds a string field, such as a header value, a host name or a
// TLS/HTTP2 fingerprint.
func (b *KeyBuilder) AddString(s string) {
	b.start()
	b.writeLen(tagString, len(s))
	b.h.WriteString(s)
}

// AddBytes adds a byte-string field; it is distinct from AddString of the
// same bytes.
func (b *KeyBuilder) AddBytes(p []byte) {
	b.start()
	b.writeLen(tagBytes, len(p))
	b.h.Write(p)
}

// AddAddr adds an IP address. IPv4-mapped IPv6 addresses are unmapped first
// (::ffff:192.0.2.1 keys as 192.0.2.1) and zones are ignored. The invalid
// (zero) Addr is a field of its own.
func (b *KeyBuilder) AddAddr(a netip.Addr) {
	b.start()
	a = a.Unmap()
	var buf [17]byte
	switch {
	case a.Is4():
		buf[0] = tagAddr4
		a4 := a.As4()
		copy(buf[1:], a4[:])
		b.h.Write(buf[:5])
	case a.Is6():
		buf[0] = tagAddr6
		a16 := a.As16()
		copy(buf[1:], a16[:])
		b.h.Write(buf[:17])
	default:
		b.h.WriteByte(tagAddrInvalid)
	}
}

// AddPrefix adds a network prefix. Host bits are masked off and an
// IPv4-mapped IPv6 prefix of length 96 or more is unmapped, so
// 192.0.2.7/24, 192.0.2.0/24 and ::ffff:192.0.2.0/120 give one key. The
// invalid (zero) Prefix is a field of its own.
func (b *KeyBuilder) AddPrefix(p netip.Prefix) {
	b.start()
	var buf [18]byte
	if !p.IsValid() {
		b.h.WriteByte(tagPrefixInvalid)
		return
	}
	p = p.Masked()
	a, bits := p.Addr(), p.Bits()
	if a.Is4In6() && bits >= 96 {
		a, bits = a.Unmap(), bits-96
	}
	if a.Is4() {
		buf[0] = tagPrefix4
		a4 := a.As4()
		copy(buf[1:], a4[:])
		buf[5] = byte(bits)
		b.h.Write(buf[:6])
		return
	}
	buf[0] = tagPrefix6
	a16 := a.As16()
	copy(buf[1:], a16[:])
	buf[17] = byte(bits)
	b.h.Write(buf[:18])
}

// AddUint64 adds an integer field, such as a clearance token ID or a port.
func (b *KeyBuilder) AddUint64(x uint64) {
	b.start()
	var buf [9]byte
	buf[0] = tagUint64
	binary.LittleEndian.PutUint64(buf[1:], x)
	b.h.Write(buf[:])
}

// Sum returns the key of the fields added since Reset. It is never 0 (0 is
// mapped to 1), and does not change the builder, so more fields may follow.
func (b *KeyBuilder) Sum() uint64 {
	b.start()
	s := b.h.Sum64()
	if s == 0 {
		return 1
	}
	return s
}
