package netx

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/acme"
	"golang.org/x/net/bpf"
	"golang.org/x/net/http2"

	"github.com/rampart-shield/rampart/internal/sockio"
	"github.com/rampart-shield/rampart/internal/verdict"
)

// Server is the edge server. Create it with NewServer, give it listeners
// with Serve, stop it with Shutdown. All methods are safe for concurrent
// use.
//
// A connection goes: accept; deny check and connection caps (rejected
// connections are reset, before TLS and any parsing); PROXY header (trusted
// peers only, then the gate again on the address it names); TLS handshake
// or h2c preface sniffing; then HTTP/2 (golang.org/x/net/http2 behind the
// frame guard) or HTTP/1 (net/http behind the head inspector). Every
// request then passes the per-request hardening before the handler.
type Server struct {
	h       http.Handler
	hf      http.Handler
	certs   *certSource
	tlsConf *tls.Config
	proxy   bool

	gen  atomic.Pointer[gen]
	gmu  sync.Mutex
	gens []*gen

	gate     connGate
	c        counters
	logLim   logLimiter
	shutting atomic.Bool

	// The sweeper watches long-running fast-path requests (h1serve.go).
	sweepOnce sync.Once
	sweepStop chan struct{}

	mu        sync.Mutex
	listeners map[net.Listener]struct{}
	conns     map[*rawConn]struct{}
	// synProg is the SYN filter given to listeners (none while empty);
	// guarded by mu.
	synProg []bpf.RawInstruction
}

// gen is one generation of options with the servers built from them.
// SetOptions makes a new one; connections keep the one they started with.
type gen struct {
	o      Options
	h1     *http.Server
	ln     *memListener
	h2     *http2.Server
	h2base *http.Server
	start  sync.Once
	conns  atomic.Int64
}

// NewServer validates o, fills its defaults and returns a Server that
// passes hardened requests to h. With o.TLS it loads the certificate files
// (an error if they do not load) and prepares ACME.
func NewServer(o Options, h http.Handler) (*Server, error) {
	if h == nil {
		return nil, errors.New("netx: nil handler")
	}
	o = o.withDefaults()
	if err := o.validate(); err != nil {
		return nil, err
	}
	s := &Server{
		h:         h,
		proxy:     o.ProxyProtocol,
		listeners: make(map[net.Listener]struct{}),
		conns:     make(map[*rawConn]struct{}),
	}
	s.hf = http.HandlerFunc(s.serveHTTP)
	if o.TLS != nil {
		certs, err := newCertSource(o.TLS)
		if err != nil {
			return nil, err
		}
		s.certs = certs
		s.tlsConf = s.tlsConfig()
	}
	g, err := s.newGen(o)
	if err != nil {
		return nil, err
	}
	s.gen.Store(g)
	s.gens = []*gen{g}
	return s, nil
}

func nonNeg(d time.Duration) time.Duration { return max(d, 0) }

func (s *Server) newGen(o Options) (*gen, error) {
	g := &gen{o: o, ln: newMemListener()}
	errLog := slog.NewLogLogger(o.Logger.Handler(), slog.LevelDebug)
	var p http.Protocols
	p.SetHTTP1(true)
	g.h1 = &http.Server{
		Handler:                      s.hf,
		ReadHeaderTimeout:            nonNeg(o.ReadHeaderTimeout),
		IdleTimeout:                  nonNeg(o.IdleTimeout),
		MaxHeaderBytes:               o.MaxHeaderBytes + 4096, // the inspector answers first
		DisableGeneralOptionsHandler: true,
		ErrorLog:                     errLog,
		Protocols:                    &p,
		ConnContext: func(ctx context.Context, c net.Conn) context.Context {
			var ci *ConnInfo
			switch c := c.(type) {
			case *h1Conn:
				ci = c.info
			case h1TLSConn:
				ci = c.info
			}
			return context.WithValue(ctx, connInfoKey{}, ci)
		},
	}
	g.h2 = &http2.Server{
		MaxConcurrentStreams: uint32(o.H2MaxConcurrentStreams),
		IdleTimeout:          nonNeg(o.IdleTimeout),
	}
	g.h2base = &http.Server{
		Handler:        s.hf,
		MaxHeaderBytes: int(o.H2MaxHeaderListSize),
		IdleTimeout:    nonNeg(o.IdleTimeout),
		ErrorLog:       errLog,
	}
	if err := http2.ConfigureServer(g.h2base, g.h2); err != nil {
		return nil, fmt.Errorf("netx: configure HTTP/2: %w", err)
	}
	return g, nil
}

// SetOptions replaces timeouts, limits, budgets and hooks without dropping
// connections: new connections (and the gate) use the new values at once;
// connections already set up keep the values they started with. The PROXY
// setting and TLS cannot change (certificates reload through
// ReloadCertificates); o.TLS is ignored.
func (s *Server) SetOptions(o Options) error {
	o = o.withDefaults()
	if err := o.validate(); err != nil {
		return err
	}
	if o.ProxyProtocol != s.proxy {
		return errors.New("netx: ProxyProtocol cannot change on a running server")
	}
	ng, err := s.newGen(o)
	if err != nil {
		return err
	}
	s.gmu.Lock()
	old := s.gen.Load()
	keep := s.gens[:0]
	for _, g := range s.gens {
		if g == old || g.conns.Load() > 0 {
			keep = append(keep, g)
		}
	}
	s.gens = append(keep, ng)
	s.gen.Store(ng)
	s.gmu.Unlock()
	old.ln.Close() // its HTTP/1 accept loop ends; its connections live on
	return nil
}

func (s *Server) trackListener(l net.Listener, add bool) {
	s.mu.Lock()
	if add {
		s.listeners[l] = struct{}{}
		s.synFilterNewListener(l)
	} else {
		delete(s.listeners, l)
	}
	s.mu.Unlock()
}

func (s *Server) track(c *rawConn) {
	s.mu.Lock()
	s.conns[c] = struct{}{}
	s.mu.Unlock()
}

func (s *Server) untrack(c *rawConn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
}

// Serve accepts connections on l, a plain TCP listener (Serve does TLS
// itself when Options.TLS is set), until l fails or Shutdown is called,
// when it returns http.ErrServerClosed. Serve may run on several listeners
// at once.
func (s *Server) Serve(l net.Listener) error {
	if s.shutting.Load() {
		return http.ErrServerClosed
	}
	s.trackListener(l, true)
	defer s.trackListener(l, false)
	var delay time.Duration
	for {
		c, err := l.Accept()
		if err != nil {
			if s.shutting.Load() {
				return http.ErrServerClosed
			}
			if errors.Is(err, net.ErrClosed) {
				return fmt.Errorf("netx: accept: %w", err)
			}
			// EMFILE, ECONNABORTED and friends pass; back off meanwhile.
			delay = min(max(2*delay, 5*time.Millisecond), time.Second)
			g := s.gen.Load()
			if _, ok := s.logLim.allow(g.o.Now()); ok {
				g.o.Logger.Warn("netx: accept failed; retrying", "err", err, "delay", delay)
			}
			time.Sleep(delay)
			continue
		}
		delay = 0
		s.c.accepted.Add(1)
		s.accept(c)
	}
}

// accept runs the gate on a new connection in the accept loop itself: a
// rejected connection costs no goroutine and no TLS.
func (s *Server) accept(c net.Conn) {
	g := s.gen.Load()
	peer := addrPort(c.RemoteAddr())
	ip := peer.Addr()
	if s.proxy && g.o.ProxyTrusted(ip) {
		// The client address comes with the PROXY header; only the
		// global cap applies to the proxy's own address.
		if !s.gate.acquireGlobal(g.o.MaxConns) {
			s.reject(c, ip, ReasonGlobalCap, g)
			return
		}
		go s.serveConn(c, g, peer, true, netip.Addr{})
		return
	}
	key, reason := s.admit(ip, g)
	if reason != "" {
		s.reject(c, ip, reason, g)
		return
	}
	go s.serveConn(c, g, peer, false, key)
}

// admit applies the deny check, the global cap and the per-IP cap to ip and
// takes the slots; it returns the per-IP key or the reason for refusal.
func (s *Server) admit(ip netip.Addr, g *gen) (netip.Addr, string) {
	if d := g.o.Denied; d != nil && d(ip) {
		return netip.Addr{}, ReasonDenied
	}
	if !s.gate.acquireGlobal(g.o.MaxConns) {
		return netip.Addr{}, ReasonGlobalCap
	}
	key := gateKey(ip, g.o.ConnCapIPv6Bits)
	if !s.gate.acquireKey(key, g.o.MaxConnsPerIP) {
		s.gate.releaseGlobal()
		return netip.Addr{}, ReasonPerIPCap
	}
	return key, ""
}

// reject closes c with RST and reports it.
func (s *Server) reject(c net.Conn, ip netip.Addr, reason string, g *gen) {
	resetClose(c)
	s.event(verdict.EventConnRejected, ip, reason, g)
}

// serveConn sets a gated connection up and serves it.
func (s *Server) serveConn(c net.Conn, g *gen, peer netip.AddrPort, proxied bool, key netip.Addr) {
	rc := &rawConn{Conn: sockio.Wrap(c), s: s, g: g, peer: peer, local: addrPort(c.LocalAddr()),
		remote: c.RemoteAddr(), localA: c.LocalAddr(), key: key, keyed: !proxied}
	s.track(rc)
	if s.shutting.Load() {
		rc.Close()
		return
	}
	ci := &ConnInfo{raw: rc}
	if proxied {
		h, rest, err := readProxyHeader(c, g.o.Now().Add(g.o.ProxyHeaderTimeout))
		if err != nil {
			s.event(verdict.EventConnRejected, peer.Addr(), ReasonProxyHeader, g)
			rc.reset()
			return
		}
		rc.pre = rest
		if !h.Local {
			ci.Proxied = true
			rc.peer, rc.local = h.Source, h.Dest
			rc.remote = net.TCPAddrFromAddrPort(h.Source)
			rc.localA = net.TCPAddrFromAddrPort(h.Dest)
		}
		// The gate, again, on the client the header names.
		key, reason := s.admitKey(rc.peer.Addr(), g)
		if reason != "" {
			s.event(verdict.EventConnRejected, rc.peer.Addr(), reason, g)
			rc.reset()
			return
		}
		rc.key, rc.keyed = key, true
	}
	ci.Peer, ci.Local = rc.peer, rc.local
	rc.info = ci

	if s.tlsConf != nil {
		s.c.handshakes.Add(1)
		tc := tls.Server(rc, s.tlsConf)
		rc.SetDeadline(g.o.Now().Add(g.o.TLSHandshakeTimeout))
		ctx, cancel := context.WithTimeout(context.Background(), g.o.TLSHandshakeTimeout)
		err := tc.HandshakeContext(ctx)
		cancel()
		if err != nil {
			rc.cut(ReasonTLSHandshake)
			rc.Close()
			return
		}
		rc.SetDeadline(time.Time{})
		st := tc.ConnectionState()
		ci.TLS, ci.ALPN, ci.ClientHello = &st, st.NegotiatedProtocol, rc.hello
		if st.NegotiatedProtocol == "h2" {
			ci.Proto = "HTTP/2.0"
		} else {
			ci.Proto = "HTTP/1.1"
		}
		if g.o.OnConn != nil && st.NegotiatedProtocol != acme.ALPNProto {
			g.o.OnConn(ci)
		}
		switch st.NegotiatedProtocol {
		case "h2":
			s.serveH2(tc, rc, ci, 24, false)
			return
		case acme.ALPNProto:
			tc.Close() // the TLS-ALPN-01 challenge is the handshake itself
			return
		}
		s.serveH1(tc, rc, ci)
		return
	}
	isH2, pre, err := sniffPreface(rc, g.o.Now().Add(g.o.ReadHeaderTimeout))
	if err != nil {
		if errors.Is(err, errDeadline) {
			rc.cut(ReasonHeaderTimeout)
		}
		rc.Close()
		return
	}
	if isH2 {
		ci.Proto = "HTTP/2.0"
	} else {
		ci.Proto = "HTTP/1.1"
	}
	if g.o.OnConn != nil {
		g.o.OnConn(ci)
	}
	if isH2 {
		s.serveH2(rc, rc, ci, 0, true)
		return
	}
	rc.pre = append(pre, rc.pre...) // sniffed bytes, then any read ahead by the PROXY parser
	s.serveH1(rc, rc, ci)
}

// admitKey applies the deny check and the per-IP cap (the global slot is
// already held).
func (s *Server) admitKey(ip netip.Addr, g *gen) (netip.Addr, string) {
	if d := g.o.Denied; d != nil && d(ip) {
		return netip.Addr{}, ReasonDenied
	}
	key := gateKey(ip, g.o.ConnCapIPv6Bits)
	if !s.gate.acquireKey(key, g.o.MaxConnsPerIP) {
		return netip.Addr{}, ReasonPerIPCap
	}
	return key, ""
}

func (c *rawConn) reset() {
	if tc := sockio.Unwrap(c.Conn); tc != nil {
		tc.SetLinger(0)
	}
	c.Close()
}

const h2Preface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

var errDeadline = errors.New("netx: deadline")

// sniffPreface reads until the bytes either differ from the HTTP/2 client
// preface or complete it. It returns the bytes read when they differ.
func sniffPreface(rc *rawConn, deadline time.Time) (bool, []byte, error) {
	rc.Conn.SetReadDeadline(deadline)
	var buf [len(h2Preface)]byte
	n := 0
	for n < len(buf) {
		m, err := rc.Read(buf[n:])
		n += m
		if string(buf[:n]) != h2Preface[:n] {
			return false, append([]byte(nil), buf[:n]...), nil
		}
		if err != nil {
			if isTimeout(err) {
				return false, nil, errDeadline
			}
			return false, nil, err
		}
	}
	return true, nil, nil
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func (s *Server) serveH1(inner net.Conn, rc *rawConn, ci *ConnInfo) {
	hc := &h1Conn{Conn: inner, raw: rc, info: ci}
	ci.h1 = hc
	var nc net.Conn = hc
	if ci.TLS != nil {
		nc = h1TLSConn{hc}
	}
	s.c.h1.Add(1)
	g := s.gen.Load()
	rc.g = g
	hc.insp.init(g.o.MaxHeaderBytes, g.o.MaxHeaderCount)
	if !s.serveFast(hc, nc, rc, ci, g) {
		return
	}
	// A request the fast path leaves to net/http: the connection goes to
	// the current generation's server for the rest of its life.
	for {
		g := s.gen.Load()
		rc.g = g
		g.conns.Add(1)
		rc.counted = g
		g.start.Do(func() { go g.h1.Serve(g.ln) })
		if g.ln.handoff(nc) {
			return
		}
		g.conns.Add(-1)
		rc.counted = nil
		if s.shutting.Load() {
			nc.Close()
			return
		}
	}
}

func (s *Server) serveH2(inner net.Conn, rc *rawConn, ci *ConnInfo, skip int, sawPreface bool) {
	g := s.gen.Load()
	rc.g = g
	g.conns.Add(1)
	rc.counted = g
	hc := &h2Conn{Conn: inner, raw: rc, info: ci, s: s, g: g, skip: skip}
	var nc net.Conn = hc
	if ci.TLS != nil {
		nc = h2TLSConn{hc}
	}
	s.c.h2.Add(1)
	if s.shutting.Load() {
		nc.Close()
		return
	}
	g.h2.ServeConn(nc, &http2.ServeConnOpts{
		Context:          context.WithValue(context.Background(), connInfoKey{}, ci),
		BaseConfig:       g.h2base,
		Handler:          s.hf,
		SawClientPreface: sawPreface,
	})
	nc.Close()
}

// Shutdown stops accepting, lets in-flight requests finish (HTTP/1 idle
// connections are closed at once; HTTP/2 connections get GOAWAY and close
// when their streams are done) and returns when every connection is closed.
// When ctx ends first, it closes the remaining connections and returns
// ctx's error.
func (s *Server) Shutdown(ctx context.Context) error {
	s.shutting.Store(true)
	s.mu.Lock()
	for l := range s.listeners {
		l.Close()
	}
	for c := range s.conns {
		if fc := c.fast.Load(); fc != nil {
			fc.kick()
		}
	}
	s.mu.Unlock()
	s.stopSweeper()
	s.gmu.Lock()
	gens := append([]*gen(nil), s.gens...)
	s.gmu.Unlock()
	var wg sync.WaitGroup
	for _, g := range gens {
		g.ln.Close()
		wg.Go(func() { g.h1.Shutdown(ctx) })
		wg.Go(func() { g.h2base.Shutdown(ctx) })
	}
	defer wg.Wait()
	tick := time.Millisecond
	for s.gate.open.Load() > 0 {
		t := time.NewTimer(tick)
		select {
		case <-ctx.Done():
			t.Stop()
			s.mu.Lock()
			conns := make([]*rawConn, 0, len(s.conns))
			for c := range s.conns {
				conns = append(conns, c)
			}
			s.mu.Unlock()
			for _, c := range conns {
				c.Close()
			}
			return ctx.Err()
		case <-t.C:
		}
		tick = min(2*tick, 100*time.Millisecond)
	}
	return nil
}
