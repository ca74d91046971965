package netx

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"net/url"
	"time"

	"github.com/rampart-shield/rampart/internal/verdict"
)

// Default values used for zero fields of Options. Each one is documented on
// the field it fills, with the attack it stops.
const (
	DefaultReadHeaderTimeout      = 10 * time.Second
	DefaultIdleTimeout            = 60 * time.Second
	DefaultWriteTimeout           = 30 * time.Second
	DefaultTLSHandshakeTimeout    = 10 * time.Second
	DefaultProxyHeaderTimeout     = 5 * time.Second
	DefaultMinBodyRate            = 1024 // bytes per second
	DefaultBodyRateGrace          = 5 * time.Second
	DefaultMaxBodyBytes           = 10 << 20
	DefaultMaxHeaderBytes         = 16 << 10
	DefaultMaxHeaderCount         = 100
	DefaultMaxRanges              = 8
	DefaultMaxConnsCeiling        = 65536
	DefaultMaxConnsPerIP          = 256
	DefaultConnCapIPv6Bits        = 64
	DefaultH2MaxConcurrentStreams = 100
	DefaultH2GlitchBudget         = 100
	DefaultH2ResetBudget          = 100
	DefaultH2BudgetRefill         = 250 * time.Millisecond
)

// Options configures a Server. Every zero field takes the documented default;
// a negative duration or limit disables the rule where that is said. Options
// is copied by NewServer and SetOptions; later changes to the caller's value
// have no effect.
type Options struct {
	// ReadHeaderTimeout bounds the time from the first byte of a request
	// (or from accept, for the first request) to the end of its header.
	// Stops Slowloris: a client that dribbles header bytes is closed.
	// Default 10 s.
	ReadHeaderTimeout time.Duration
	// IdleTimeout closes a keep-alive connection (HTTP/1) or an HTTP/2
	// connection without open streams after this long without a request.
	// Stops idle-connection hoarding. Default 60 s.
	IdleTimeout time.Duration
	// WriteTimeout is a progress deadline: every write to the socket (in
	// pieces of at most 16 KiB) must complete within it, so a reader that
	// stops reading is cut while slow but steady readers (SSE, large
	// downloads) are not. On HTTP/2 it also applies per stream to writes
	// that wait for flow-control window. Stops slow-read attacks.
	// Default 30 s.
	WriteTimeout time.Duration
	// TLSHandshakeTimeout bounds the TLS handshake. Stops handshake
	// stalling. Default 10 s.
	TLSHandshakeTimeout time.Duration
	// ProxyHeaderTimeout bounds the reading of a PROXY protocol header.
	// Default 5 s.
	ProxyHeaderTimeout time.Duration

	// MinBodyRate is the minimum request-body rate in bytes per second
	// once BodyRateGrace has passed since the handler started reading
	// the body: the read deadline is kept at start+grace+bytes/rate.
	// Slower bodies fail with ErrBodyTooSlow (answer 408). Stops slow
	// POST (R.U.D.Y.). Default 1024; negative disables.
	MinBodyRate int64
	// BodyRateGrace is the grace period before MinBodyRate applies.
	// Default 5 s.
	BodyRateGrace time.Duration
	// MaxBodyBytes caps a request body; larger bodies are answered 413
	// (up front when Content-Length says so, else when the handler reads
	// past the cap). Stops memory and upstream exhaustion by huge
	// uploads. Default 10 MiB; negative disables. Per-route values:
	// LimitBody.
	MaxBodyBytes int64
	// MaxHeaderBytes caps the request line plus header of an HTTP/1
	// request (431). Default 16 KiB.
	MaxHeaderBytes int
	// MaxHeaderCount caps the number of header fields of a request (431).
	// Stops hash-flooding and parser exhaustion. Default 100.
	MaxHeaderCount int
	// MaxRanges caps the number of ranges in a Range header; more, or
	// overlapping or unparsable ranges, are answered 400. Stops
	// range amplification (CVE-2011-3192 style). Default 8.
	MaxRanges int

	// MaxConns caps open connections in total; connections over it are
	// reset at accept, before TLS. Default min(65536, (RLIMIT_NOFILE-512)/2):
	// a proxied request holds a client and an upstream descriptor, so half
	// the descriptor limit (less headroom for files, logs and listeners)
	// is what the process can actually serve; never below 64.
	MaxConns int
	// MaxConnsPerIP caps open connections per client address (per
	// ConnCapIPv6Bits prefix for IPv6); over it, connections are reset
	// at accept, before TLS. Stops a single source from hoarding
	// connections. Default 256 (browsers open 6 to 20; a large NAT some
	// hundred at most). The counter table holds only addresses with open
	// connections, so its size is bounded by MaxConns.
	MaxConnsPerIP int
	// ConnCapIPv6Bits is the IPv6 prefix length the per-IP cap counts
	// by, since one IPv6 host holds a whole /64. Default 64.
	ConnCapIPv6Bits int

	// H2MaxConcurrentStreams is the SETTINGS_MAX_CONCURRENT_STREAMS the
	// server advertises. Default 100.
	H2MaxConcurrentStreams int
	// H2MaxHeaderListSize is the SETTINGS_MAX_HEADER_LIST_SIZE the server
	// advertises; header blocks whose encoded size exceeds twice this end
	// the connection at once (CONTINUATION flood). Default MaxHeaderBytes.
	H2MaxHeaderListSize uint32
	// H2GlitchBudget is the per-connection budget of HTTP/2 protocol
	// glitches: empty DATA frames without END_STREAM, WINDOW_UPDATE with
	// increment 0, PING, PRIORITY, repeated SETTINGS, unknown frame types,
	// more than two CONTINUATION frames per header block, and every
	// RST_STREAM the server is provoked into sending (MadeYouReset,
	// CVE-2025-8671). A connection that spends it gets GOAWAY
	// (ENHANCE_YOUR_CALM) and is closed. Default 100.
	H2GlitchBudget int
	// H2ResetBudget is the per-connection budget of client RST_STREAM
	// frames (Rapid Reset, CVE-2023-44487). Default 100.
	H2ResetBudget int
	// H2BudgetRefill is how often one unit of each budget is regained (a
	// leaky bucket), so a long-lived legitimate connection that cancels a
	// few streams a minute never runs dry while a flood spends the budget
	// in milliseconds. Default 250 ms (4 units a second, 240 a minute).
	H2BudgetRefill time.Duration

	// Denied reports whether a client address is denied (deny list,
	// blocks). It runs at accept, before TLS and any HTTP parsing, and
	// must be fast and safe for concurrent use. Nil denies nothing.
	Denied func(netip.Addr) bool

	// ProxyProtocol expects a PROXY protocol v1 or v2 header on every
	// connection from a peer that ProxyTrusted accepts; the address it
	// carries is the client address for the gate and the handler.
	// Connections from other peers are served as direct clients and any
	// PROXY header they send is not honoured (it fails as a bad request).
	ProxyProtocol bool
	// ProxyTrusted reports whether a peer may send a PROXY header.
	// Required when ProxyProtocol is set.
	ProxyTrusted func(netip.Addr) bool

	// TLS enables TLS on every listener given to Serve. Nil serves plain
	// HTTP (with h2c prior knowledge). Fixed at NewServer.
	TLS *TLSOptions

	// OnConn, if set, is called once per connection after the TLS
	// handshake (or h2c sniffing) and before any request is read, with
	// the connection's ConnInfo. It may fill ConnInfo.Fingerprints (JA4
	// from ConnInfo.ClientHello); it must not keep ci past the call
	// except read-only, and must be fast: it runs on the connection's
	// goroutine.
	OnConn func(ci *ConnInfo)

	// OnEvent, if set, is called for every connection rejected at accept
	// and every connection closed by a hardening rule (not per request).
	// It runs on the connection's goroutine and must be cheap and safe
	// for concurrent use.
	OnEvent func(verdict.Event)
	// Logger receives rate-limited notes about rejections and closures
	// (at most 20 lines in a burst, then 10 a second, each saying how many
	// were suppressed) and net/http's own error log at debug level.
	// Default: discard (netx never logs through the global logger).
	Logger *slog.Logger
	// Now is the clock used for budgets, body-rate deadlines and events.
	// It must follow wall-clock time, since deadlines are handed to the
	// kernel poller. Default time.Now.
	Now func() time.Time
}

// TLSOptions configures TLS. Either CertFile and KeyFile, or ACMEDomains, or
// both (the files then serve names outside ACMEDomains) must be set.
type TLSOptions struct {
	// CertFile and KeyFile are a PEM certificate chain and its key. They
	// are read by NewServer and again by Server.ReloadCertificates.
	CertFile, KeyFile string
	// ACMEDomains enables automatic certificates (ACME, TLS-ALPN-01 on
	// the TLS listener and HTTP-01 through Server.ACMEHTTPHandler) for
	// exactly these host names.
	ACMEDomains []string
	// ACMEEmail is the contact address given to the CA (optional).
	ACMEEmail string
	// ACMECacheDir is where account keys and certificates are kept
	// (a directory in the state directory). Required with ACMEDomains.
	// Those of a directory other than Let's Encrypt production are kept
	// in a subdirectory named after it (HOST+HASH), so that certificates
	// from a staging or test CA are never served once the operator
	// switches to production.
	ACMECacheDir string
	// ACMEDirectoryURL is the CA's directory, an https URL. Default Let's
	// Encrypt production (autocert.DefaultACMEDirectory).
	ACMEDirectoryURL string
	// ACMECAFile is a PEM file of root certificates trusted, besides the
	// system's, for the HTTPS of ACMEDirectoryURL (a private or test CA).
	// It is read by NewServer, which fails if it holds no certificate.
	ACMECAFile string
	// MinVersion is the lowest TLS version accepted. Default TLS 1.2;
	// lower values are refused.
	MinVersion uint16
}

// withDefaults returns o with every zero field filled in.
func (o Options) withDefaults() Options {
	setDur := func(d *time.Duration, def time.Duration) {
		if *d == 0 {
			*d = def
		}
	}
	setDur(&o.ReadHeaderTimeout, DefaultReadHeaderTimeout)
	setDur(&o.IdleTimeout, DefaultIdleTimeout)
	setDur(&o.WriteTimeout, DefaultWriteTimeout)
	setDur(&o.TLSHandshakeTimeout, DefaultTLSHandshakeTimeout)
	setDur(&o.ProxyHeaderTimeout, DefaultProxyHeaderTimeout)
	setDur(&o.BodyRateGrace, DefaultBodyRateGrace)
	setDur(&o.H2BudgetRefill, DefaultH2BudgetRefill)
	if o.MinBodyRate == 0 {
		o.MinBodyRate = DefaultMinBodyRate
	}
	if o.MaxBodyBytes == 0 {
		o.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if o.MaxHeaderBytes == 0 {
		o.MaxHeaderBytes = DefaultMaxHeaderBytes
	}
	if o.MaxHeaderCount == 0 {
		o.MaxHeaderCount = DefaultMaxHeaderCount
	}
	if o.MaxRanges == 0 {
		o.MaxRanges = DefaultMaxRanges
	}
	if o.MaxConns == 0 {
		o.MaxConns = defaultMaxConns()
	}
	if o.MaxConnsPerIP == 0 {
		o.MaxConnsPerIP = DefaultMaxConnsPerIP
	}
	if o.ConnCapIPv6Bits == 0 {
		o.ConnCapIPv6Bits = DefaultConnCapIPv6Bits
	}
	if o.H2MaxConcurrentStreams == 0 {
		o.H2MaxConcurrentStreams = DefaultH2MaxConcurrentStreams
	}
	if o.H2MaxHeaderListSize == 0 {
		o.H2MaxHeaderListSize = uint32(o.MaxHeaderBytes)
	}
	if o.H2GlitchBudget == 0 {
		o.H2GlitchBudget = DefaultH2GlitchBudget
	}
	if o.H2ResetBudget == 0 {
		o.H2ResetBudget = DefaultH2ResetBudget
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return o
}

// validate reports the first invalid field of o (after withDefaults).
func (o *Options) validate() error {
	var errs []error
	for _, d := range []struct {
		name string
		v    time.Duration
	}{
		{"ReadHeaderTimeout", o.ReadHeaderTimeout}, {"IdleTimeout", o.IdleTimeout},
		{"WriteTimeout", o.WriteTimeout}, {"TLSHandshakeTimeout", o.TLSHandshakeTimeout},
		{"ProxyHeaderTimeout", o.ProxyHeaderTimeout}, {"BodyRateGrace", o.BodyRateGrace},
		{"H2BudgetRefill", o.H2BudgetRefill},
	} {
		if d.v < 0 {
			errs = append(errs, fmt.Errorf("%s must not be negative (got %v)", d.name, d.v))
		}
	}
	if o.MaxHeaderBytes < 1024 {
		errs = append(errs, fmt.Errorf("MaxHeaderBytes must be at least 1024 (got %d)", o.MaxHeaderBytes))
	}
	if o.MaxHeaderCount < 8 {
		errs = append(errs, fmt.Errorf("MaxHeaderCount must be at least 8 (got %d)", o.MaxHeaderCount))
	}
	if o.MaxRanges < 1 {
		errs = append(errs, fmt.Errorf("MaxRanges must be at least 1 (got %d)", o.MaxRanges))
	}
	if o.MaxConns < 1 || o.MaxConnsPerIP < 1 {
		errs = append(errs, fmt.Errorf("MaxConns and MaxConnsPerIP must be positive (got %d, %d)", o.MaxConns, o.MaxConnsPerIP))
	}
	if o.ConnCapIPv6Bits < 16 || o.ConnCapIPv6Bits > 128 {
		errs = append(errs, fmt.Errorf("ConnCapIPv6Bits must be in 16..128 (got %d)", o.ConnCapIPv6Bits))
	}
	if o.H2MaxConcurrentStreams < 1 || o.H2MaxConcurrentStreams > 1<<20 {
		errs = append(errs, fmt.Errorf("H2MaxConcurrentStreams must be in 1..1048576 (got %d)", o.H2MaxConcurrentStreams))
	}
	if o.H2MaxHeaderListSize < 1024 {
		errs = append(errs, fmt.Errorf("H2MaxHeaderListSize must be at least 1024 (got %d)", o.H2MaxHeaderListSize))
	}
	if o.H2GlitchBudget < 1 || o.H2ResetBudget < 1 {
		errs = append(errs, fmt.Errorf("H2GlitchBudget and H2ResetBudget must be positive (got %d, %d)", o.H2GlitchBudget, o.H2ResetBudget))
	}
	if o.ProxyProtocol && o.ProxyTrusted == nil {
		errs = append(errs, errors.New("ProxyProtocol requires ProxyTrusted"))
	}
	if t := o.TLS; t != nil {
		if (t.CertFile == "") != (t.KeyFile == "") {
			errs = append(errs, errors.New("TLS.CertFile and TLS.KeyFile must be set together"))
		}
		if t.CertFile == "" && len(t.ACMEDomains) == 0 {
			errs = append(errs, errors.New("TLS needs CertFile and KeyFile or ACMEDomains"))
		}
		if len(t.ACMEDomains) > 0 && t.ACMECacheDir == "" {
			errs = append(errs, errors.New("TLS.ACMEDomains requires TLS.ACMECacheDir"))
		}
		if t.ACMEDirectoryURL != "" {
			if u, err := url.Parse(t.ACMEDirectoryURL); err != nil || u.Scheme != "https" || u.Host == "" {
				errs = append(errs, fmt.Errorf("TLS.ACMEDirectoryURL must be an https URL (got %q)", t.ACMEDirectoryURL))
			}
		}
		if t.MinVersion != 0 && t.MinVersion < tls.VersionTLS12 {
			errs = append(errs, fmt.Errorf("TLS.MinVersion must be TLS 1.2 or later (got %#x)", t.MinVersion))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("netx: invalid options: %w", err)
	}
	return nil
}
