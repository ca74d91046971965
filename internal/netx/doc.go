// Package netx is rampart's edge: it owns the listeners, the conn gate
// (deny check, per-client and global connection caps, all applied at accept
// before TLS), the PROXY protocol (v1 and v2, from trusted peers only), TLS
// (certificate files reloaded on demand, or ACME through autocert), the
// HTTP/1.1 and HTTP/2 servers (h2 over TLS via ALPN and h2c with prior
// knowledge on plain listeners; HTTP/1.1 requests without a body are
// served by a fast path of netx's own, the rest by net/http: h1serve.go)
// and the connection hardening that sits in
// front of every handler: header, idle, body-rate and write-progress
// timeouts, header and body size limits, an HTTP/1 head inspector that
// refuses protocol oddities and request-smuggling shapes with 400, and an
// HTTP/2 frame guard that spends a per-connection glitch budget on Rapid
// Reset, CONTINUATION floods, MadeYouReset and control-frame floods and ends
// such connections with GOAWAY.
//
// netx decides no policy. It asks injected functions (Options.Denied,
// Options.ProxyTrusted) and reports what it did through counters
// (Server.Stats) and an optional event hook (Options.OnEvent). Every response
// it generates itself carries a Rampart-Mitigated header naming the reason.
package netx
