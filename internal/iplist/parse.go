package iplist

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"strconv"
	"strings"
)

const (
	// MaxLineLength is the longest line ParseList accepts, in bytes,
	// including any comment.
	MaxLineLength = 4096
	// MaxErrors is the number of errors ParseList reports before it gives
	// up on a file (a last error says so).
	MaxErrors = 100
)

// ErrInvalidPrefix is wrapped by every syntax error of ParsePrefix and
// ParseList.
var ErrInvalidPrefix = errors.New("invalid prefix")

// ParseError is one error in a list: where it is and what is wrong. Error
// returns "NAME:LINE:COL: message", LINE and COL counted from 1 and COL in
// bytes, as editors and compilers print them.
type ParseError struct {
	Name string // the list's name, usually its file path
	Line int    // line number, from 1
	Col  int    // byte column, from 1
	Msg  string // what is wrong, without the position
	Err  error  // ErrInvalidPrefix for syntax errors, else the cause
}

// Error implements error.
func (e *ParseError) Error() string {
	return fmt.Sprintf("%s:%d:%d: %s", e.Name, e.Line, e.Col, e.Msg)
}

// Unwrap returns the cause, ErrInvalidPrefix for syntax errors.
func (e *ParseError) Unwrap() error { return e.Err }

// ParsePrefix parses one prefix: "203.0.113.0/24", "2001:db8::/32", or a
// bare address, which stands for itself (/32 or /128). Surrounding spaces
// are ignored. Host bits are masked off ("203.0.113.7/24" is
// 203.0.113.0/24). An IPv4-mapped IPv6 prefix of length 96 or more is
// unmapped ("::ffff:203.0.113.0/120" is 203.0.113.0/24); a shorter one stays
// an IPv6 prefix and matches no IPv4 client. Zones, signs, leading zeros in
// the length and lengths beyond the address size are errors; the error says
// which, and wraps ErrInvalidPrefix.
func ParsePrefix(s string) (netip.Prefix, error) {
	p, _, msg := parsePrefix(s)
	if msg != "" {
		return netip.Prefix{}, fmt.Errorf("iplist: %w %q: %s", ErrInvalidPrefix, s, msg)
	}
	return p, nil
}

// parsePrefix parses s; on error it returns the byte offset in s the error
// points at and a message.
func parsePrefix(s string) (p netip.Prefix, off int, msg string) {
	lead := len(s) - len(strings.TrimLeft(s, " \t"))
	s = strings.TrimRight(s[lead:], " \t")
	if s == "" {
		return p, lead, "empty prefix"
	}
	addrPart, bitsPart, hasSlash := strings.Cut(s, "/")
	if addrPart == "" {
		return p, lead, "missing address before '/'"
	}
	if i := strings.IndexAny(addrPart, " \t"); i >= 0 {
		return p, lead + i, "space inside the address"
	}
	addr, err := netip.ParseAddr(addrPart)
	if err != nil {
		m := err.Error()
		if i := strings.Index(m, "): "); i >= 0 {
			m = m[i+3:] // drop netip's `ParseAddr("...")` prefix
		}
		return p, lead, fmt.Sprintf("bad address %q: %s", addrPart, m)
	}
	if addr.Zone() != "" {
		return p, lead + strings.IndexByte(addrPart, '%'), fmt.Sprintf("zone %q not allowed in a prefix", addr.Zone())
	}
	bits := addr.BitLen()
	if hasSlash {
		boff := lead + len(addrPart) + 1
		switch {
		case bitsPart == "":
			return p, boff, "missing prefix length after '/'"
		case strings.TrimLeft(bitsPart, "0123456789") != "":
			return p, boff, fmt.Sprintf("prefix length %q is not a decimal number", bitsPart)
		case len(bitsPart) > 1 && bitsPart[0] == '0':
			return p, boff, fmt.Sprintf("prefix length %q has a leading zero", bitsPart)
		}
		n, err := strconv.Atoi(bitsPart)
		if err != nil || n > addr.BitLen() {
			family := "IPv4"
			if addr.Is6() {
				family = "IPv6"
			}
			return p, boff, fmt.Sprintf("prefix length %s exceeds %d for %s", bitsPart, addr.BitLen(), family)
		}
		bits = n
	}
	if addr.Is4In6() && bits >= 96 {
		addr, bits = addr.Unmap(), bits-96
	}
	p, err = addr.Prefix(bits)
	if err != nil { // unreachable: bits is within range
		return netip.Prefix{}, lead, err.Error()
	}
	return p, 0, ""
}

// ParseList reads a list of prefixes, one per line, as ParsePrefix accepts
// them. '#' starts a comment, on a line of its own or after a prefix; blank
// lines are ignored; CRLF line ends and a UTF-8 byte order mark are
// accepted. It returns every prefix that parsed, in file order (duplicates
// kept), and every error as a *ParseError "NAME:LINE:COL: message". Lines
// longer than MaxLineLength are errors; after MaxErrors errors it stops
// reading and says so. A read error ends the list and is returned wrapped.
// A caller should treat a list with any error as unusable.
func ParseList(r io.Reader, name string) ([]netip.Prefix, []error) {
	var (
		out  []netip.Prefix
		errs []error
		br   = bufio.NewReaderSize(r, MaxLineLength)
	)
	fail := func(line, col int, err error, format string, args ...any) bool {
		if len(errs) == MaxErrors {
			errs = append(errs, &ParseError{Name: name, Line: line, Col: col, Err: ErrInvalidPrefix,
				Msg: fmt.Sprintf("too many errors (%d), giving up", MaxErrors)})
			return false
		}
		errs = append(errs, &ParseError{Name: name, Line: line, Col: col, Err: err, Msg: fmt.Sprintf(format, args...)})
		return true
	}
	for line := 1; ; line++ {
		b, err := br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			// Skip the rest of an overlong line.
			for errors.Is(err, bufio.ErrBufferFull) {
				_, err = br.ReadSlice('\n')
			}
			if !fail(line, MaxLineLength+1, ErrInvalidPrefix, "line longer than %d bytes", MaxLineLength) {
				return out, errs
			}
			if err != nil {
				if err != io.EOF {
					errs = append(errs, fmt.Errorf("%s:%d: read: %w", name, line, err))
				}
				break
			}
			continue
		}
		if err != nil && err != io.EOF {
			// The line is cut short: report the read error, not the
			// fragment.
			errs = append(errs, fmt.Errorf("%s:%d: read: %w", name, line, err))
			break
		}
		if len(b) > 0 && !parseLine(b, line, &out, fail) {
			return out, errs
		}
		if err == io.EOF {
			break
		}
	}
	return out, errs
}

// parseLine parses one raw line (with its line end, if any). It returns
// false when fail says to stop.
func parseLine(b []byte, line int, out *[]netip.Prefix, fail func(int, int, error, string, ...any) bool) bool {
	b = bytes.TrimSuffix(b, []byte("\n"))
	b = bytes.TrimSuffix(b, []byte("\r"))
	start := 0
	if line == 1 && bytes.HasPrefix(b, []byte("\xef\xbb\xbf")) {
		start = 3
	}
	if i := bytes.IndexByte(b, '#'); i >= 0 {
		b = b[:i]
	}
	// Find the first field.
	for start < len(b) && isSpace(b[start]) {
		start++
	}
	if start == len(b) {
		return true
	}
	end := start
	for end < len(b) && !isSpace(b[end]) {
		end++
	}
	rest := end
	for rest < len(b) && isSpace(b[rest]) {
		rest++
	}
	field := string(b[start:end])
	if rest < len(b) {
		return fail(line, rest+1, ErrInvalidPrefix, "unexpected %q after %q (one prefix per line; comments start with '#')",
			b[rest:], field)
	}
	p, off, msg := parsePrefix(field)
	if msg != "" {
		return fail(line, start+off+1, ErrInvalidPrefix, "%s in %q", msg, field)
	}
	*out = append(*out, p)
	return true
}

func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f'
}

// LoadFile reads and parses the list file at path (see ParseList). Any
// error makes it return no prefixes and all the errors joined with
// errors.Join, each "PATH:LINE:COL: message".
func LoadFile(path string) ([]netip.Prefix, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("iplist: load list: %w", err)
	}
	defer f.Close()
	prefixes, errs := ParseList(f, path)
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return prefixes, nil
}
