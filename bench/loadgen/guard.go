package main

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"

	"github.com/rampart-shield/rampart/internal/sim"
)

// maxSources bounds the source addresses one run may bind.
const maxSources = 1 << 16

// errNotLoopback is wrapped when a source address is outside the loopback
// range; targets are refused with sim.ErrNotLoopback.
var errNotLoopback = errors.New("not a loopback address: loadgen only uses 127.0.0.0/8 and ::1")

// parseTarget validates a target URL (http only: the load generator does
// not speak TLS) with the simulator's loopback guard.
func parseTarget(raw string) (sim.Target, error) {
	t, err := sim.ParseTarget(raw)
	if err != nil {
		return sim.Target{}, err
	}
	if t.TLS {
		return sim.Target{}, fmt.Errorf("target %q: https is not supported, use plain http on loopback", raw)
	}
	return t, nil
}

// parseAddr validates a host:port target for connect mode with the same
// guard.
func parseAddr(hostport string) (netip.AddrPort, error) {
	if hostport == "" {
		return netip.AddrPort{}, errors.New("--addr is required")
	}
	t, err := sim.ParseTarget("http://" + hostport)
	if err != nil {
		return netip.AddrPort{}, err
	}
	if t.URL.Port() == "" {
		return netip.AddrPort{}, fmt.Errorf("--addr %q: a port is required", hostport)
	}
	return t.AddrPort, nil
}

// parseSources parses a comma-separated list of loopback source addresses
// and inclusive IPv4 ranges ("127.0.77.1-127.0.77.16"). Empty means one
// source chosen by the kernel (nil). Every address must be a loopback
// address; at most maxSources in all.
func parseSources(s string) ([]netip.Addr, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, nil
	}
	var out []netip.Addr
	for part := range strings.SplitSeq(s, ",") {
		part = strings.TrimSpace(part)
		lo, hi, isRange := strings.Cut(part, "-")
		a, err := loopbackSource(lo)
		if err != nil {
			return nil, err
		}
		if !isRange {
			out = append(out, a)
		} else {
			b, err := loopbackSource(hi)
			if err != nil {
				return nil, err
			}
			if !a.Is4() || !b.Is4() || b.Less(a) {
				return nil, fmt.Errorf("source range %q: want two IPv4 addresses, low first", part)
			}
			for x := a; ; x = x.Next() {
				out = append(out, x)
				if len(out) > maxSources {
					break
				}
				if x == b {
					break
				}
			}
		}
		if len(out) > maxSources {
			return nil, fmt.Errorf("more than %d source addresses", maxSources)
		}
	}
	return out, nil
}

// loopbackSource parses one literal source address and refuses anything
// outside the loopback range.
func loopbackSource(s string) (netip.Addr, error) {
	a, err := netip.ParseAddr(strings.TrimSpace(s))
	if err != nil {
		return netip.Addr{}, fmt.Errorf("source %q: %w", s, err)
	}
	if a.Zone() != "" {
		return netip.Addr{}, fmt.Errorf("source %q has a zone: %w", s, errNotLoopback)
	}
	a = a.Unmap()
	if !a.IsLoopback() {
		return netip.Addr{}, fmt.Errorf("source %s: %w", a, errNotLoopback)
	}
	return a, nil
}
