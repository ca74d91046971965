// Package clientid identifies the client of a request: its address (the peer,
// or the right-most untrusted X-Forwarded-For entry when the peer is a
// trusted proxy), its network prefix, and cheap request traits the policy
// keys on (page navigation, static asset, cookie values). It keeps no global
// state and allocates nothing on the request path.
package clientid

import (
	"net/http"
	"net/netip"
	"strings"
)

// Resolver finds the client address of a request. The zero value trusts no
// proxy: the peer address is the client. It is immutable and safe for
// concurrent use; build a new one to change the trusted list.
type Resolver struct {
	trusted []netip.Prefix
}

// NewResolver returns a Resolver that reads X-Forwarded-For only when the
// peer is inside one of trusted. Trusted-proxy lists are short (a load
// balancer tier, a CDN's ranges); they are scanned linearly, which for a few
// dozen prefixes is faster than any trie.
func NewResolver(trusted []netip.Prefix) *Resolver {
	t := make([]netip.Prefix, 0, len(trusted))
	for _, p := range trusted {
		if p.Addr().Is4In6() {
			p = netip.PrefixFrom(p.Addr().Unmap(), max(p.Bits()-96, 0))
		}
		t = append(t, p.Masked())
	}
	return &Resolver{trusted: t}
}

// Trusted reports whether a is a trusted proxy.
func (r *Resolver) Trusted(a netip.Addr) bool {
	if r == nil {
		return false
	}
	a = a.Unmap()
	for _, p := range r.trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// ClientIP returns the client address for a request that arrived from peer
// with the given X-Forwarded-For header values. When peer is trusted, the
// chain is walked from the right and the first address that is not itself a
// trusted proxy is the client; an unparsable entry stops the walk and the
// last trusted hop is returned, since anything left of garbage is
// client-controlled. Without trusted proxies the headers are ignored.
func (r *Resolver) ClientIP(peer netip.Addr, xff []string) netip.Addr {
	peer = peer.Unmap()
	if len(xff) == 0 || !r.Trusted(peer) {
		return peer
	}
	client := peer
	walkForwarded(xff, func(a netip.Addr, ok bool) bool {
		if !ok {
			return false // anything left of garbage is client-controlled
		}
		client = a
		return r.Trusted(a)
	})
	return client
}

// walkForwarded visits the X-Forwarded-For entries from the right-most
// (nearest hop) to the left-most, skipping empty ones, until visit returns
// false. ok is false for an entry that is not an address.
func walkForwarded(xff []string, visit func(a netip.Addr, ok bool) bool) {
	for i := len(xff) - 1; i >= 0; i-- {
		v := xff[i]
		for len(v) > 0 {
			var part string
			if j := strings.LastIndexByte(v, ','); j >= 0 {
				part, v = v[j+1:], v[:j]
			} else {
				part, v = v, ""
			}
			part = strings.TrimSpace(part)
			if part == "" {
				continue
			}
			if !visit(parseForwardedAddr(part)) {
				return
			}
		}
	}
}

// parseForwardedAddr parses "1.2.3.4", "1.2.3.4:5678", "2001:db8::1" and
// "[2001:db8::1]:5678" without allocating.
func parseForwardedAddr(s string) (netip.Addr, bool) {
	if a, err := netip.ParseAddr(s); err == nil {
		return a.Unmap(), a.Zone() == ""
	}
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().Unmap(), ap.Addr().Zone() == ""
	}
	return netip.Addr{}, false
}

// Prefix returns the network of a used for per-network limits and clearance
// binding: the first v4bits of an IPv4 address, the first v6bits of an IPv6
// one.
func Prefix(a netip.Addr, v4bits, v6bits int) netip.Prefix {
	a = a.Unmap()
	bits := v6bits
	if a.Is4() {
		bits = v4bits
	}
	p, _ := a.Prefix(bits)
	return p
}

// IsNavigation reports whether a request is a top-level page navigation:
// Sec-Fetch-Mode: navigate from browsers that send fetch metadata, else a GET
// whose Accept names text/html (older browsers, and what non-browsers send
// when they pretend to be one).
func IsNavigation(method string, h http.Header) bool {
	if method != http.MethodGet && method != http.MethodHead {
		return false
	}
	if m := h["Sec-Fetch-Mode"]; len(m) > 0 {
		return m[0] == "navigate"
	}
	for _, v := range h["Accept"] {
		if strings.Contains(v, "text/html") {
			return true
		}
	}
	return false
}

// staticExt lists the extensions of static assets: cheap, cacheable, and
// requested by the dozen per page view.
var staticExt = [...]string{
	".css", ".js", ".mjs", ".map", ".png", ".jpg", ".jpeg", ".gif", ".webp", ".avif", ".svg", ".ico",
	".woff", ".woff2", ".ttf", ".otf", ".eot", ".mp4", ".webm", ".mp3", ".ogg", ".pdf", ".txt", ".json",
}

// IsStatic reports whether path names a static asset, by extension.
func IsStatic(path string) bool {
	dot := strings.LastIndexByte(path, '.')
	if dot < 0 || strings.IndexByte(path[dot:], '/') >= 0 {
		return false
	}
	ext := path[dot:]
	if len(ext) > 6 {
		return false
	}
	for _, e := range staticExt {
		if len(e) == len(ext) && strings.EqualFold(e, ext) {
			return true
		}
	}
	return false
}

// CookieValue returns the value of the first cookie named name in the Cookie
// headers of h, without parsing every cookie into objects (no allocation).
// Quotes around the value are removed.
func CookieValue(h http.Header, name string) (string, bool) {
	for _, line := range h["Cookie"] {
		for len(line) > 0 {
			var part string
			if i := strings.IndexByte(line, ';'); i >= 0 {
				part, line = line[:i], line[i+1:]
			} else {
				part, line = line, ""
			}
			part = strings.TrimSpace(part)
			k, v, ok := strings.Cut(part, "=")
			if !ok || k != name {
				continue
			}
			if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
				v = v[1 : len(v)-1]
			}
			return v, true
		}
	}
	return "", false
}

// HasCookie reports whether any cookie name matches one of names, where a
// name ending in '*' matches by prefix. It is used to spot logged-in
// visitors.
func HasCookie(h http.Header, names []string) bool {
	for _, line := range h["Cookie"] {
		for len(line) > 0 {
			var part string
			if i := strings.IndexByte(line, ';'); i >= 0 {
				part, line = line[:i], line[i+1:]
			} else {
				part, line = line, ""
			}
			k, _, _ := strings.Cut(strings.TrimSpace(part), "=")
			for _, n := range names {
				if p, ok := strings.CutSuffix(n, "*"); ok {
					if strings.HasPrefix(k, p) {
						return true
					}
				} else if k == n {
					return true
				}
			}
		}
	}
	return false
}

// HostOnly returns the host of a Host header value, lower-cased only if it
// needs to be (the common already-lower case does not allocate), without the
// port.
func HostOnly(host string) string {
	if i := strings.LastIndexByte(host, ':'); i >= 0 && !strings.HasSuffix(host, "]") {
		host = host[:i]
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	for i := 0; i < len(host); i++ {
		if c := host[i]; c >= 'A' && c <= 'Z' {
			return strings.ToLower(host)
		}
	}
	return host
}

// TrustedChain returns the part of the X-Forwarded-For chain that the
// shield can vouch for: the trusted proxies to the right of the client, in
// order, then the peer, comma-separated. The origin is sent
// "X-Forwarded-For: client, chain". It returns "" when the peer is not
// trusted (the peer is then the client). It allocates the result.
func (r *Resolver) TrustedChain(peer netip.Addr, xff []string) string {
	peer = peer.Unmap()
	if !r.Trusted(peer) {
		return ""
	}
	var hops []string
	walkForwarded(xff, func(a netip.Addr, ok bool) bool {
		if !ok || !r.Trusted(a) {
			return false
		}
		hops = append(hops, a.String())
		return true
	})
	// hops were collected right to left; the chain reads left to right.
	out := make([]string, 0, len(hops)+1)
	for i := len(hops) - 1; i >= 0; i-- {
		out = append(out, hops[i])
	}
	out = append(out, peer.String())
	return strings.Join(out, ", ")
}
