package netx

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strconv"
	"time"
)

// ProxyHeader is a parsed PROXY protocol header.
type ProxyHeader struct {
	// Version is 1 or 2.
	Version int
	// Local reports a header that carries no client address (v1
	// "UNKNOWN", v2 LOCAL command or an unspecified/unix family); the
	// connection's own addresses then stand.
	Local bool
	// Source and Dest are the client and the address it connected to.
	Source, Dest netip.AddrPort
}

// Errors returned by ParseProxyHeader.
var (
	// ErrProxyIncomplete means more bytes are needed.
	ErrProxyIncomplete = errors.New("netx: incomplete PROXY header")
	// ErrProxyInvalid means the bytes are not a valid PROXY header.
	ErrProxyInvalid = errors.New("netx: invalid PROXY header")
)

var proxyV2Sig = []byte("\r\n\r\n\x00\r\nQUIT\n")

const (
	proxyV1Max    = 107
	proxyV2MaxTLV = 2048 // accepted length of the v2 address block + TLVs
)

// ParseProxyHeader parses a PROXY protocol v1 or v2 header at the start of b
// and returns it with the number of bytes it occupies. It returns
// ErrProxyIncomplete when b is a valid prefix of a header and
// ErrProxyInvalid (wrapped) otherwise. v2 TLVs are skipped; a v2 header
// longer than 16+2048 bytes is refused. It does not allocate except for
// errors and is safe for concurrent use.
func ParseProxyHeader(b []byte) (ProxyHeader, int, error) {
	if len(b) == 0 {
		return ProxyHeader{}, 0, ErrProxyIncomplete
	}
	if b[0] == '\r' {
		return parseProxyV2(b)
	}
	return parseProxyV1(b)
}

func parseProxyV1(b []byte) (ProxyHeader, int, error) {
	const prefix = "PROXY "
	n := min(len(b), len(prefix))
	if string(b[:n]) != prefix[:n] {
		return ProxyHeader{}, 0, fmt.Errorf("%w: bad v1 signature", ErrProxyInvalid)
	}
	end := bytes.IndexByte(b[:min(len(b), proxyV1Max)], '\n')
	if end < 0 {
		if len(b) >= proxyV1Max {
			return ProxyHeader{}, 0, fmt.Errorf("%w: v1 line too long", ErrProxyInvalid)
		}
		return ProxyHeader{}, 0, ErrProxyIncomplete
	}
	if end == 0 || b[end-1] != '\r' {
		return ProxyHeader{}, 0, fmt.Errorf("%w: v1 line not CRLF-terminated", ErrProxyInvalid)
	}
	line := b[len(prefix) : end-1]
	var f [5][]byte
	nf := 0
	for len(line) > 0 && nf < 5 {
		i := bytes.IndexByte(line, ' ')
		if i < 0 {
			f[nf] = line
			nf++
			line = nil
			break
		}
		f[nf] = line[:i]
		nf++
		line = line[i+1:]
	}
	h := ProxyHeader{Version: 1}
	if nf >= 1 && string(f[0]) == "UNKNOWN" {
		h.Local = true
		return h, end + 1, nil
	}
	if nf != 5 || len(line) != 0 {
		return ProxyHeader{}, 0, fmt.Errorf("%w: v1 needs 5 fields", ErrProxyInvalid)
	}
	var want4 bool
	switch string(f[0]) {
	case "TCP4":
		want4 = true
	case "TCP6":
	default:
		return ProxyHeader{}, 0, fmt.Errorf("%w: v1 unknown protocol", ErrProxyInvalid)
	}
	src, err1 := parseV1Addr(f[1], f[3], want4)
	dst, err2 := parseV1Addr(f[2], f[4], want4)
	if err1 != nil || err2 != nil {
		return ProxyHeader{}, 0, fmt.Errorf("%w: v1 bad address", ErrProxyInvalid)
	}
	h.Source, h.Dest = src, dst
	return h, end + 1, nil
}

func parseV1Addr(ip, port []byte, want4 bool) (netip.AddrPort, error) {
	a, err := netip.ParseAddr(string(ip))
	if err != nil || a.Is4() != want4 || a.Zone() != "" {
		return netip.AddrPort{}, ErrProxyInvalid
	}
	if len(port) == 0 || len(port) > 5 || (len(port) > 1 && port[0] == '0') {
		return netip.AddrPort{}, ErrProxyInvalid
	}
	p, err := strconv.ParseUint(string(port), 10, 16)
	if err != nil {
		return netip.AddrPort{}, ErrProxyInvalid
	}
	return netip.AddrPortFrom(a, uint16(p)), nil
}

func parseProxyV2(b []byte) (ProxyHeader, int, error) {
	n := min(len(b), len(proxyV2Sig))
	if !bytes.Equal(b[:n], proxyV2Sig[:n]) {
		return ProxyHeader{}, 0, fmt.Errorf("%w: bad v2 signature", ErrProxyInvalid)
	}
	if len(b) < 16 {
		return ProxyHeader{}, 0, ErrProxyIncomplete
	}
	verCmd, famProto := b[12], b[13]
	if verCmd>>4 != 2 {
		return ProxyHeader{}, 0, fmt.Errorf("%w: v2 bad version", ErrProxyInvalid)
	}
	cmd := verCmd & 0xf
	if cmd > 1 {
		return ProxyHeader{}, 0, fmt.Errorf("%w: v2 bad command", ErrProxyInvalid)
	}
	l := int(binary.BigEndian.Uint16(b[14:16]))
	if l > proxyV2MaxTLV {
		return ProxyHeader{}, 0, fmt.Errorf("%w: v2 header too long", ErrProxyInvalid)
	}
	if len(b) < 16+l {
		return ProxyHeader{}, 0, ErrProxyIncomplete
	}
	body := b[16 : 16+l]
	h := ProxyHeader{Version: 2}
	total := 16 + l
	if cmd == 0 { // LOCAL: health checks from the proxy itself
		h.Local = true
		return h, total, nil
	}
	switch famProto >> 4 {
	case 0x1: // AF_INET
		if len(body) < 12 {
			return ProxyHeader{}, 0, fmt.Errorf("%w: v2 short IPv4 block", ErrProxyInvalid)
		}
		src := netip.AddrFrom4([4]byte(body[0:4]))
		dst := netip.AddrFrom4([4]byte(body[4:8]))
		h.Source = netip.AddrPortFrom(src, binary.BigEndian.Uint16(body[8:10]))
		h.Dest = netip.AddrPortFrom(dst, binary.BigEndian.Uint16(body[10:12]))
	case 0x2: // AF_INET6
		if len(body) < 36 {
			return ProxyHeader{}, 0, fmt.Errorf("%w: v2 short IPv6 block", ErrProxyInvalid)
		}
		src := netip.AddrFrom16([16]byte(body[0:16])).Unmap()
		dst := netip.AddrFrom16([16]byte(body[16:32])).Unmap()
		h.Source = netip.AddrPortFrom(src, binary.BigEndian.Uint16(body[32:34]))
		h.Dest = netip.AddrPortFrom(dst, binary.BigEndian.Uint16(body[34:36]))
	case 0x0, 0x3: // AF_UNSPEC, AF_UNIX: no usable client address
		h.Local = true
	default:
		return ProxyHeader{}, 0, fmt.Errorf("%w: v2 bad family", ErrProxyInvalid)
	}
	if p := famProto & 0xf; p > 2 {
		return ProxyHeader{}, 0, fmt.Errorf("%w: v2 bad transport", ErrProxyInvalid)
	}
	return h, total, nil
}

// readProxyHeader reads a PROXY header from c within timeout. It returns the
// header and any bytes read past it, which belong to the next layer.
func readProxyHeader(c net.Conn, deadline time.Time) (ProxyHeader, []byte, error) {
	if err := c.SetReadDeadline(deadline); err != nil {
		return ProxyHeader{}, nil, fmt.Errorf("netx: set PROXY deadline: %w", err)
	}
	buf := make([]byte, 0, 256)
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := c.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		h, used, perr := ParseProxyHeader(buf)
		if perr == nil {
			c.SetReadDeadline(time.Time{})
			var rest []byte
			if used < len(buf) {
				rest = buf[used:]
			}
			return h, rest, nil
		}
		if !errors.Is(perr, ErrProxyIncomplete) {
			return ProxyHeader{}, nil, perr
		}
		if err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return ProxyHeader{}, nil, fmt.Errorf("netx: read PROXY header: %w", err)
		}
	}
}
