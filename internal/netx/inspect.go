package netx

import (
	"bytes"
	"strings"
	"sync/atomic"

	"golang.org/x/net/http/httpguts"
)

// badKind is a kind of request refused with 400 (or 431) before it reaches
// the handler.
type badKind uint8

const (
	badNone badKind = iota
	badRequestLine
	badVersion
	badHeaderTooLarge
	badTooManyHeaders
	badHeader
	badObsFold
	badWSBeforeColon
	badBareLF
	badDupHost
	badHost
	badMissingHost
	badDupContentLength
	badContentLength
	badTEAndCL
	badTransferEncoding
	badRange
	numBadKinds
)

var badKindNames = [numBadKinds]string{
	"", "request-line", "version", "header-too-large", "too-many-headers",
	"header", "obs-fold", "ws-before-colon", "bare-lf", "dup-host", "host",
	"missing-host", "dup-content-length", "content-length", "te-and-cl",
	"transfer-encoding", "range",
}

func (k badKind) String() string {
	if k < numBadKinds {
		return badKindNames[k]
	}
	return "unknown"
}

// status is the HTTP status a request of kind k is answered with.
func (k badKind) status() int {
	if k == badHeaderTooLarge || k == badTooManyHeaders {
		return 431
	}
	return 400
}

// BadRequestKinds lists the kinds counted in Stats.BadRequests, for metrics
// that pre-create labels.
func BadRequestKinds() []string {
	out := make([]string, 0, numBadKinds-1)
	for k := badKind(1); k < numBadKinds; k++ {
		out = append(out, k.String())
	}
	return out
}

// Inspector states.
const (
	stReqLine uint8 = iota
	stHeader
	stBody
	stChunkSize
	stChunkExt
	stChunkSizeLF
	stChunkData
	stChunkDataCR
	stChunkDataLF
	stTrailer
	stPass     // stopped inspecting (upgrade, CONNECT, lost framing)
	stViolated // a violation was found; nothing more is delivered
)

// Replacement heads handed to net/http in place of a refused request, so
// that it parses a harmless head and calls the handler, which answers 400.
var (
	subRequest = []byte("GET / HTTP/1.1\r\nHost: rampart.invalid\r\n\r\n")
	subEndHost = []byte("Host: rampart.invalid\r\n\r\n")
	subEnd     = []byte("\r\n")
)

// h1Inspector scans the HTTP/1 byte stream a client sends: it checks each
// request head line by line and skips bodies by their framing
// (Content-Length or chunked) to find the next head. The first violation is
// recorded with the number of the request it belongs to. feed is called by
// the one goroutine reading the connection; violation may be read by any.
type h1Inspector struct {
	maxHeaderBytes int
	maxHeaderCount int

	st       uint8
	req      uint32 // 1-based number of the request being scanned
	head     int    // bytes of the current head so far
	fields   int
	hosts    int
	cls      int
	tes      int
	cl       int64
	chunked  bool
	upgrade  bool
	http10   bool
	post     bool
	lastPOST bool
	skipped  int // leading CR/LF skipped after a POST (net/http allows 4)

	remain int64 // body or chunk bytes left
	digits int
	extLen int
	trLen  int

	violation atomic.Uint64 // req<<8 | kind of the first violation
}

func (in *h1Inspector) init(maxHeaderBytes, maxHeaderCount int) {
	in.maxHeaderBytes = maxHeaderBytes
	in.maxHeaderCount = maxHeaderCount
	in.req = 1
	in.st = stReqLine
}

// violationFor returns the violation recorded for request n, if any.
func (in *h1Inspector) violationFor(n uint32) badKind {
	v := in.violation.Load()
	if v == 0 || uint32(v>>8) != n {
		return badNone
	}
	return badKind(v & 0xff)
}

// atHeadStart reports whether no byte of the next head has been seen, and
// inHead whether a head is partly read.
func (in *h1Inspector) timeoutClass() (reason string) {
	switch in.st {
	case stReqLine:
		if in.head == 0 && in.req > 1 {
			return ReasonIdle
		}
		return ReasonHeaderTimeout
	case stHeader:
		return ReasonHeaderTimeout
	}
	return ""
}

// feed inspects b, the next bytes of the stream. Bytes b[:release] may be
// passed on. If sub is non-nil, a violation was found at b[release]: sub
// must be passed on instead of the rest, and nothing after it. Otherwise
// b[release:] is an incomplete head line that must be presented again,
// with more bytes after it, in the next call.
func (in *h1Inspector) feed(b []byte) (release int, sub []byte) {
	i := 0
	for i < len(b) {
		switch in.st {
		case stPass:
			return len(b), nil
		case stViolated:
			return i, nil
		case stBody, stChunkData:
			k := int64(len(b) - i)
			if k > in.remain {
				k = in.remain
			}
			i += int(k)
			in.remain -= k
			if in.remain == 0 {
				if in.st == stBody {
					in.nextHead()
				} else {
					in.st = stChunkDataCR
				}
			}
		case stChunkSize:
			c := b[i]
			i++
			switch {
			case c >= '0' && c <= '9', c >= 'a' && c <= 'f', c >= 'A' && c <= 'F':
				in.digits++
				if in.digits > 15 {
					in.st = stPass
					break
				}
				in.remain = in.remain<<4 | int64(unhex(c))
			case c == ';' || c == ' ' || c == '\t':
				in.st = stChunkExt
			case c == '\r':
				in.st = stChunkSizeLF
			case c == '\n':
				in.chunkLineEnd()
			default:
				in.st = stPass
			}
			if (in.st == stChunkExt || in.st == stChunkSizeLF) && in.digits == 0 {
				in.st = stPass
			}
		case stChunkExt:
			j := bytes.IndexByte(b[i:], '\n')
			if j < 0 {
				in.extLen += len(b) - i
				i = len(b)
			} else {
				in.extLen += j
				i += j + 1
				in.chunkLineEnd()
			}
			if in.extLen > 4096 {
				in.st = stPass
			}
		case stChunkSizeLF:
			if b[i] != '\n' {
				in.st = stPass
				break
			}
			i++
			in.chunkLineEnd()
		case stChunkDataCR:
			switch b[i] {
			case '\r':
				in.st = stChunkDataLF
			case '\n':
				in.st, in.digits, in.remain = stChunkSize, 0, 0
			default:
				in.st = stPass
				continue
			}
			i++
		case stChunkDataLF:
			if b[i] != '\n' {
				in.st = stPass
				break
			}
			i++
			in.st, in.digits, in.remain = stChunkSize, 0, 0
		case stTrailer:
			c := b[i]
			i++
			switch c {
			case '\n':
				if in.trLen == 0 {
					in.nextHead()
				}
				in.trLen = 0
			case '\r':
			default:
				in.trLen++
				if in.trLen > in.maxHeaderBytes {
					in.st = stPass
				}
			}
		case stReqLine, stHeader:
			j := bytes.IndexByte(b[i:], '\n')
			if j < 0 {
				if in.head+len(b)-i > in.maxHeaderBytes {
					return in.violate(i, badHeaderTooLarge)
				}
				return i, nil
			}
			line := b[i : i+j+1]
			if in.st == stReqLine && in.head == 0 && in.lastPOST &&
				(len(line) == 1 || (len(line) == 2 && line[0] == '\r')) && in.skipped+len(line) <= 4 {
				in.skipped += len(line)
				i += len(line)
				continue
			}
			in.head += len(line)
			if in.head > in.maxHeaderBytes {
				return in.violate(i, badHeaderTooLarge)
			}
			var k badKind
			if in.st == stReqLine {
				k = in.requestLine(line)
			} else if len(line) <= 2 && (len(line) == 1 || line[0] == '\r') {
				if len(line) == 1 {
					k = badBareLF
				} else if k = in.endHead(); k == badNone {
					i += len(line)
					continue
				}
			} else {
				k = in.headerLine(line)
			}
			if k != badNone {
				return in.violate(i, k)
			}
			i += len(line)
		}
	}
	return len(b), nil
}

func unhex(c byte) byte {
	switch {
	case c >= '0' && c <= '9':
		return c - '0'
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10
	default:
		return c - 'A' + 10
	}
}

func (in *h1Inspector) chunkLineEnd() {
	if in.remain == 0 {
		in.st, in.trLen = stTrailer, 0
	} else {
		in.st = stChunkData
	}
	in.extLen = 0
}

func (in *h1Inspector) nextHead() {
	in.req++
	in.st = stReqLine
	in.head = 0
	in.lastPOST = in.post
	in.skipped = 0
}

func (in *h1Inspector) violate(at int, k badKind) (int, []byte) {
	in.violation.CompareAndSwap(0, uint64(in.req)<<8|uint64(k))
	sub := subEnd
	switch {
	case in.st == stReqLine:
		sub = subRequest
	case in.hosts == 0:
		sub = subEndHost
	}
	in.st = stViolated
	return at, sub
}

// endHead is called at the empty line closing a head.
func (in *h1Inspector) endHead() badKind {
	if in.hosts == 0 && !in.http10 && !in.upgrade {
		return badMissingHost
	}
	switch {
	case in.upgrade:
		in.st = stPass
	case in.chunked:
		in.st, in.digits, in.remain = stChunkSize, 0, 0
	case in.cl > 0:
		in.st, in.remain = stBody, in.cl
	default:
		in.nextHead()
	}
	return badNone
}

// trimEOL strips CRLF from line, or reports a bare LF.
func trimEOL(line []byte) ([]byte, bool) {
	n := len(line)
	if n < 2 || line[n-2] != '\r' {
		return nil, false
	}
	return line[:n-2], true
}

func (in *h1Inspector) requestLine(line []byte) badKind {
	s, ok := trimEOL(line)
	if !ok {
		return badBareLF
	}
	in.fields, in.hosts, in.cls, in.tes, in.cl = 0, 0, 0, 0, 0
	in.chunked, in.upgrade, in.http10, in.post = false, false, false, false
	sp := bytes.IndexByte(s, ' ')
	if sp <= 0 || sp > 32 {
		return badRequestLine
	}
	method := s[:sp]
	for _, c := range method {
		if !isToken[c] {
			return badRequestLine
		}
	}
	rest := s[sp+1:]
	sp = bytes.IndexByte(rest, ' ')
	if sp <= 0 {
		return badRequestLine
	}
	for _, c := range rest[:sp] {
		if c <= ' ' || c == 0x7f {
			return badRequestLine
		}
	}
	switch v := rest[sp+1:]; string(v) {
	case "HTTP/1.1":
	case "HTTP/1.0":
		in.http10 = true
	default:
		if bytes.HasPrefix(v, []byte("HTTP/")) {
			return badVersion
		}
		return badRequestLine
	}
	switch string(method) {
	case "POST":
		in.post = true
	case "CONNECT":
		in.upgrade = true
	}
	in.st = stHeader
	return badNone
}

func (in *h1Inspector) headerLine(line []byte) badKind {
	s, ok := trimEOL(line)
	if !ok {
		return badBareLF
	}
	if s[0] == ' ' || s[0] == '\t' {
		return badObsFold
	}
	colon := bytes.IndexByte(s, ':')
	if colon <= 0 {
		return badHeader
	}
	name := s[:colon]
	if c := name[len(name)-1]; c == ' ' || c == '\t' {
		return badWSBeforeColon
	}
	for _, c := range name {
		if !isToken[c] {
			return badHeader
		}
	}
	in.fields++
	if in.fields > in.maxHeaderCount {
		return badTooManyHeaders
	}
	v := s[colon+1:]
	for _, c := range v {
		if badValueByte[c] {
			return badHeader
		}
	}
	v = trimOWS(v)
	switch len(name) {
	case 4:
		if asciiEqualFold(name, "host") {
			if in.hosts > 0 {
				return badDupHost
			}
			if len(v) > 255 || !validHost(v) {
				return badHost
			}
			in.hosts++ // counted once the line is accepted: see violate
		}
	case 7:
		if asciiEqualFold(name, "upgrade") {
			in.upgrade = true
		}
	case 14:
		if asciiEqualFold(name, "content-length") {
			in.cls++
			if in.cls > 1 {
				return badDupContentLength
			}
			if in.tes > 0 {
				return badTEAndCL
			}
			if len(v) == 0 || len(v) > 18 {
				return badContentLength
			}
			var n int64
			for _, c := range v {
				if c < '0' || c > '9' {
					return badContentLength
				}
				n = n*10 + int64(c-'0')
			}
			in.cl = n
		}
	case 17:
		if asciiEqualFold(name, "transfer-encoding") {
			in.tes++
			if in.cls > 0 {
				return badTEAndCL
			}
			if in.tes > 1 || in.http10 || !asciiEqualFold(v, "chunked") {
				return badTransferEncoding
			}
			in.chunked = true
		}
	}
	return badNone
}

func trimOWS(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t') {
		b = b[1:]
	}
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t') {
		b = b[:len(b)-1]
	}
	return b
}

// asciiEqualFold reports whether b equals the lower-case ASCII string s,
// ignoring ASCII case in b.
func asciiEqualFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := 0; i < len(b); i++ {
		c := b[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != s[i] {
			return false
		}
	}
	return true
}

// isToken and badValueByte classify bytes for header names (RFC 9110
// tchar) and values (CTLs other than HTAB).
var isToken, badValueByte = func() (tok, bad [256]bool) {
	for c := 0; c < 256; c++ {
		tok[c] = httpguts.IsTokenRune(rune(c))
		bad[c] = (c < ' ' && c != '\t') || c == 0x7f
	}
	return
}()

// validHost reports whether v holds only the bytes net/http accepts in a
// Host header (RFC 3986 reg-name, IP literal and port characters).
func validHost(v []byte) bool {
	for _, c := range v {
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case strings.IndexByte("-._~!$&'()*+,;=:[]%", c) >= 0:
		default:
			return false
		}
	}
	return true
}
