package sim

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
)

// ErrNotLoopback is wrapped by every error that refuses a target outside the
// loopback range. The simulator never sends a packet to such an address.
var ErrNotLoopback = errors.New("not a loopback address: rampart-sim only targets 127.0.0.0/8 and ::1")

// ErrOffTarget is wrapped when a transport asks to dial an address other
// than the validated target (a redirect elsewhere, for instance).
var ErrOffTarget = errors.New("only the validated target may be dialled")

// Target is a validated loopback URL: the simulator dials AddrPort and
// nothing else.
type Target struct {
	// URL is the parsed URL, path included.
	URL *url.URL
	// AddrPort is the loopback address and port the URL names.
	AddrPort netip.AddrPort
	// HostHeader is the Host header to send (the URL's host, with port).
	HostHeader string
	// TLS reports whether the scheme is https.
	TLS bool
}

// Base returns the scheme and authority of t, without a path.
func (t Target) Base() string { return t.URL.Scheme + "://" + t.URL.Host }

// ParseTarget validates raw as a loopback target before anything is sent:
// the scheme must be http or https, the host "localhost" (taken as
// 127.0.0.1, never looked up) or a literal IP address inside 127.0.0.0/8 or
// ::1 (IPv4-mapped forms are unmapped first). No DNS lookup ever happens.
// The port defaults to 80 or 443. Errors for a non-loopback host wrap
// ErrNotLoopback.
func ParseTarget(raw string) (Target, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return Target{}, fmt.Errorf("parsing target %q: %w", raw, err)
	}
	var tlsOn bool
	switch u.Scheme {
	case "http":
	case "https":
		tlsOn = true
	default:
		return Target{}, fmt.Errorf("target %q: scheme must be http or https", raw)
	}
	if u.User != nil {
		return Target{}, fmt.Errorf("target %q: user info is not allowed", raw)
	}
	host := u.Hostname()
	if host == "" {
		return Target{}, fmt.Errorf("target %q: no host", raw)
	}
	addr, err := loopbackAddr(host)
	if err != nil {
		return Target{}, fmt.Errorf("target %q: %w", raw, err)
	}
	port := 80
	if tlsOn {
		port = 443
	}
	if p := u.Port(); p != "" {
		n, err := strconv.ParseUint(p, 10, 16)
		if err != nil || n == 0 {
			return Target{}, fmt.Errorf("target %q: bad port %q", raw, p)
		}
		port = int(n)
	}
	if u.Path == "" {
		u.Path = "/"
	}
	return Target{URL: u, AddrPort: netip.AddrPortFrom(addr, uint16(port)), HostHeader: u.Host, TLS: tlsOn}, nil
}

// loopbackAddr maps host (no port, no brackets) to a loopback address or
// refuses it.
func loopbackAddr(host string) (netip.Addr, error) {
	if strings.EqualFold(host, "localhost") {
		return netip.AddrFrom4([4]byte{127, 0, 0, 1}), nil
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("host %q is neither localhost nor a literal IP address (no DNS lookups): %w", host, ErrNotLoopback)
	}
	if a.Zone() != "" {
		return netip.Addr{}, fmt.Errorf("host %q has a zone: %w", host, ErrNotLoopback)
	}
	a = a.Unmap()
	if !a.IsLoopback() {
		return netip.Addr{}, fmt.Errorf("host %s: %w", a, ErrNotLoopback)
	}
	return a, nil
}

// checkDial refuses to dial anything but want: the dialers of the simulator
// call it with the address a transport asks for, so that a redirect or a
// proxy setting can never lead traffic off the loopback target.
func checkDial(addr string, want netip.AddrPort) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("dial %q: %w", addr, err)
	}
	a, err := loopbackAddr(host)
	if err != nil {
		return fmt.Errorf("dial %q: %w", addr, err)
	}
	if p, err := strconv.ParseUint(port, 10, 16); err != nil || a != want.Addr() || uint16(p) != want.Port() {
		return fmt.Errorf("dial %q (target %s): %w", addr, want, ErrOffTarget)
	}
	return nil
}
