package upstream

import (
	"context"
	"net"
	"net/http"
	"net/http/httputil"
	"net/netip"
	"strings"
)

// ClientInfo is what the pool is told about the client of a request; the
// forwarding headers are built from it and from nothing the client sent.
type ClientInfo struct {
	// IP is the client address as resolved by the edge: the peer, or the
	// right-most untrusted X-Forwarded-For entry behind trusted proxies.
	// An invalid (zero) IP makes the pool fall back to the TCP peer.
	IP netip.Addr
	// TLS reports whether the client reached the shield over TLS (or a
	// trusted proxy in front said it reached that proxy over TLS). It sets
	// X-Forwarded-Proto.
	TLS bool
	// TrustedChain is the verified part of the incoming X-Forwarded-For
	// chain after the client: the addresses of the trusted proxies the
	// request passed through, in order, comma-separated, ending with the
	// peer. It is empty when the peer is the client itself. The origin
	// receives "X-Forwarded-For: IP, TrustedChain"; nothing else the client
	// put in X-Forwarded-For is forwarded.
	TrustedChain string
}

type clientKey struct{}

// WithClient returns a copy of ctx carrying ci, for requests handed to a
// Pool whose Options.Client is nil. It allocates a context value; a caller
// that already keeps per-request facts in its context can avoid that by
// setting Options.Client instead.
func WithClient(ctx context.Context, ci ClientInfo) context.Context {
	return context.WithValue(ctx, clientKey{}, ci)
}

// ClientFromContext returns the ClientInfo attached by WithClient, if any.
func ClientFromContext(ctx context.Context) (ClientInfo, bool) {
	ci, ok := ctx.Value(clientKey{}).(ClientInfo)
	return ci, ok
}

// clientInfo resolves the client of r: Options.Client, else the context,
// else the TCP peer. ip is the client address as text ("" if unknown).
func (p *Pool) clientInfo(r *http.Request) (ip string, tls bool, chain string) {
	var ci ClientInfo
	ok := false
	if p.client != nil {
		ci, ok = p.client(r), true
	} else {
		ci, ok = ClientFromContext(r.Context())
	}
	if ok && ci.IP.IsValid() {
		return ci.IP.Unmap().String(), ci.TLS, ci.TrustedChain
	}
	if ok {
		tls, chain = ci.TLS, ci.TrustedChain
	} else {
		tls = r.TLS != nil
	}
	return peerIP(r.RemoteAddr), tls, chain
}

// peerIP returns the address part of a RemoteAddr "host:port" without
// allocating, or "" when it is not an IP address.
func peerIP(remote string) string {
	host, _, err := net.SplitHostPort(remote)
	if err != nil {
		host = remote
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return ""
	}
	if a.Is4In6() || a.Zone() != "" {
		return a.Unmap().WithZone("").String()
	}
	return host
}

// Canonical header keys written directly into the outbound map.
const (
	hdrXFF   = "X-Forwarded-For"
	hdrXFP   = "X-Forwarded-Proto"
	hdrXFH   = "X-Forwarded-Host"
	hdrXReal = "X-Real-Ip"
	hdrVia   = "Via"
)

// rewrite builds the outbound request. ReverseProxy has already removed
// hop-by-hop headers (including those named in Connection) and the
// client's Forwarded and X-Forwarded-* headers. The origin's address is set
// per attempt by the pool's RoundTripper, not here.
//
// Allocation: one []string backing X-Forwarded-For, X-Real-Ip and
// X-Forwarded-Host; the client address string when it came as a
// netip.Addr; the joined X-Forwarded-For when a trusted chain is present.
func (p *Pool) rewrite(pr *httputil.ProxyRequest) {
	in, out := pr.In, pr.Out
	h := out.Header
	ip, tls, chain := p.clientInfo(in)
	vals := make([]string, 3)
	if ip != "" {
		xff := ip
		if chain != "" {
			xff = ip + ", " + chain
		}
		vals[0], vals[1] = xff, ip
		h[hdrXFF] = vals[0:1:1]
		h[hdrXReal] = vals[1:2:2]
	} else {
		delete(h, hdrXReal)
	}
	if in.Host != "" {
		vals[2] = in.Host
		h[hdrXFH] = vals[2:3:3]
	}
	if tls {
		h[hdrXFP] = p.protoHTTPS
	} else {
		h[hdrXFP] = p.protoHTTP
	}
	via := p.viaFor(in)
	if prior := h[hdrVia]; len(prior) > 0 {
		h[hdrVia] = []string{strings.Join(prior, ", ") + ", " + via[0]}
	} else {
		h[hdrVia] = via
	}
	if p.host != "" {
		out.Host = p.host
	}
}

// viaFor returns the shared, capacity-limited Via value for the inbound
// protocol version ("1.1 rampart", "2 rampart", ...).
func (p *Pool) viaFor(r *http.Request) []string {
	switch {
	case r.ProtoMajor == 1 && r.ProtoMinor == 1:
		return p.via11
	case r.ProtoMajor == 2:
		return p.via2
	case r.ProtoMajor == 1 && r.ProtoMinor == 0:
		return p.via10
	case r.ProtoMajor == 3:
		return p.via3
	default:
		return p.via11
	}
}
