package config

import (
	"fmt"
	"net/netip"
	"path"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Duration is a time.Duration written as Go spells it: "250ms", "10s", "1h30m".
// A bare "0" means zero.
type Duration time.Duration

func (d *Duration) decodeScalar(s string) error {
	if s == "0" {
		*d = 0
		return nil
	}
	x, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("bad duration %q (write it like 500ms, 10s, 5m or 1h)", s)
	}
	if x < 0 {
		return fmt.Errorf("bad duration %q: must not be negative", s)
	}
	*d = Duration(x)
	return nil
}

// D returns d as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

func (d Duration) String() string { return time.Duration(d).String() }

// ByteSize is a number of bytes, written as a whole number with an optional
// unit: B, KB/KiB (1024), MB/MiB, GB/GiB. "16KiB" and "16KB" both mean 16384.
type ByteSize int64

func (b *ByteSize) decodeScalar(s string) error {
	t := strings.TrimSpace(s)
	i := 0
	for i < len(t) && (t[i] >= '0' && t[i] <= '9' || t[i] == '_') {
		i++
	}
	if i == 0 {
		return fmt.Errorf("bad size %q (write it like 512, 16KiB, 10MiB or 1GiB)", s)
	}
	n, err := strconv.ParseInt(strings.ReplaceAll(t[:i], "_", ""), 10, 64)
	if err != nil {
		return fmt.Errorf("bad size %q: %v", s, err)
	}
	var mul int64
	switch strings.ToLower(strings.TrimSpace(t[i:])) {
	case "", "b":
		mul = 1
	case "k", "kb", "kib":
		mul = 1 << 10
	case "m", "mb", "mib":
		mul = 1 << 20
	case "g", "gb", "gib":
		mul = 1 << 30
	default:
		return fmt.Errorf("bad size %q: unknown unit %q (use B, KiB, MiB or GiB)", s, t[i:])
	}
	if n > (1<<62)/mul {
		return fmt.Errorf("bad size %q: too large", s)
	}
	*b = ByteSize(n * mul)
	return nil
}

func (b ByteSize) String() string {
	switch {
	case b != 0 && b%(1<<30) == 0:
		return fmt.Sprintf("%dGiB", b>>30)
	case b != 0 && b%(1<<20) == 0:
		return fmt.Sprintf("%dMiB", b>>20)
	case b != 0 && b%(1<<10) == 0:
		return fmt.Sprintf("%dKiB", b>>10)
	}
	return strconv.FormatInt(int64(b), 10)
}

// Rate is a number of events per unit of time, written "10/s", "600/m",
// "5000/h" or "2/10s". Its value is kept in events per second.
type Rate float64

func (r *Rate) decodeScalar(s string) error {
	num, per, ok := strings.Cut(strings.TrimSpace(s), "/")
	if !ok {
		return fmt.Errorf("bad rate %q (write it like 10/s, 600/m or 2/10s)", s)
	}
	n, err := strconv.ParseFloat(strings.TrimSpace(num), 64)
	if err != nil || n <= 0 {
		return fmt.Errorf("bad rate %q: the count must be a positive number", s)
	}
	var d time.Duration
	switch per = strings.TrimSpace(per); per {
	case "s":
		d = time.Second
	case "m":
		d = time.Minute
	case "h":
		d = time.Hour
	default:
		d, err = time.ParseDuration(per)
		if err != nil || d <= 0 {
			return fmt.Errorf("bad rate %q: the period must be s, m, h or a duration like 10s", s)
		}
	}
	*r = Rate(n / d.Seconds())
	return nil
}

func (r Rate) String() string {
	if r >= 1 || r == 0 {
		return strconv.FormatFloat(float64(r), 'g', -1, 64) + "/s"
	}
	return strconv.FormatFloat(float64(r)*60, 'g', -1, 64) + "/m"
}

// PerSecond returns the rate in events per second.
func (r Rate) PerSecond() float64 { return float64(r) }

// CIDR is an IPv4 or IPv6 network ("203.0.113.0/24", "2001:db8::/32") or a
// bare address, taken as a /32 or /128. Host bits are cleared.
type CIDR netip.Prefix

func (c *CIDR) decodeScalar(s string) error {
	p, err := ParseCIDR(s)
	if err != nil {
		return err
	}
	*c = CIDR(p)
	return nil
}

// Prefix returns c as a netip.Prefix.
func (c CIDR) Prefix() netip.Prefix { return netip.Prefix(c) }

func (c CIDR) String() string { return netip.Prefix(c).String() }

// ParseCIDR parses a network or a bare address the way the configuration does.
func ParseCIDR(s string) (netip.Prefix, error) {
	s = strings.TrimSpace(s)
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("bad CIDR %q (write it like 203.0.113.0/24 or 2001:db8::/32)", s)
		}
		if p.Addr().Is4In6() && p.Bits() >= 96 {
			p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
		}
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("bad CIDR %q (write it like 203.0.113.0/24, 2001:db8::/32 or a single address)", s)
	}
	if a.Zone() != "" {
		return netip.Prefix{}, fmt.Errorf("bad CIDR %q: zones are not allowed", s)
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// Pattern matches a string either as a glob or, when written between
// slashes ("/^\/api\/v[0-9]+\//"), as a regular expression (RE2 syntax).
// Globs use path.Match syntax, plus a trailing "*" that also crosses "/":
// "/static/*" matches "/static/css/site.css".
type Pattern struct {
	Source string
	re     *regexp.Regexp
	// prefix is set for globs of the form "literal*" (the common case),
	// which match by prefix without path.Match.
	prefix string
	// suffix is set for globs of the form "*literal" ("*.css").
	suffix  string
	literal bool
}

func (p *Pattern) decodeScalar(s string) error {
	q, err := ParsePattern(s)
	if err != nil {
		return err
	}
	*p = q
	return nil
}

// ParsePattern compiles a glob or a /regexp/.
func ParsePattern(s string) (Pattern, error) {
	p := Pattern{Source: s}
	if len(s) >= 2 && s[0] == '/' && s[len(s)-1] == '/' && strings.Count(s, "/") >= 2 && !strings.HasPrefix(s, "//") && looksLikeRegexp(s) {
		re, err := regexp.Compile(s[1 : len(s)-1])
		if err != nil {
			return p, fmt.Errorf("bad regular expression %s: %v", s, err)
		}
		p.re = re
		return p, nil
	}
	if s == "" {
		return p, fmt.Errorf("empty pattern")
	}
	if _, err := path.Match(s, ""); err != nil {
		return p, fmt.Errorf("bad glob %q: %v", s, err)
	}
	if i := strings.IndexAny(s, `*?[\`); i < 0 {
		p.literal = true
	} else if i == len(s)-1 && s[i] == '*' {
		p.prefix = s[:i]
	} else if i == 0 && s[0] == '*' && !strings.ContainsAny(s[1:], `*?[\`) {
		p.suffix = s[1:]
	}
	return p, nil
}

// looksLikeRegexp tells "/^\/api/" (a regexp) from "/news/" (a literal path
// that happens to start and end with a slash). A regexp needs a regexp
// metacharacter.
func looksLikeRegexp(s string) bool {
	return strings.ContainsAny(s[1:len(s)-1], `^$\.*+?()[]{}|`)
}

// Match reports whether s matches the pattern. It does not allocate.
func (p *Pattern) Match(s string) bool {
	switch {
	case p.re != nil:
		return p.re.MatchString(s)
	case p.literal:
		return s == p.Source
	case p.prefix != "" || p.Source == "*":
		return strings.HasPrefix(s, p.prefix)
	case p.suffix != "":
		return strings.HasSuffix(s, p.suffix)
	}
	ok, _ := path.Match(p.Source, s)
	return ok
}

// IsZero reports whether no pattern was set.
func (p Pattern) IsZero() bool { return p.Source == "" }

func (p Pattern) String() string { return p.Source }
