package netx

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rampart-shield/rampart/internal/sockio"
	"github.com/rampart-shield/rampart/internal/verdict"
)

// writeChunk is the largest piece written under one progress deadline.
const writeChunk = 16 << 10

// rawConn wraps an accepted connection. It owns the gate slots (released on
// Close), replays bytes read ahead by the PROXY parser or the h2c sniffer,
// reports the client address from the PROXY header, and turns WriteTimeout
// into a progress deadline: each piece of at most writeChunk bytes must be
// taken by the kernel within WriteTimeout.
type rawConn struct {
	net.Conn
	s        *Server
	g        *gen
	peer     netip.AddrPort
	local    netip.AddrPort
	remote   net.Addr
	localA   net.Addr
	key      netip.Addr
	keyed    bool // holds a per-IP slot for key
	pre      []byte
	explicit atomic.Int64 // explicit write deadline (unix nanos), 0 = none
	armed    atomic.Int64 // write deadline in force (unix nanos), 0 = none
	hello    *ClientHello // captured by GetConfigForClient
	closed   sync.Once
	cutOnce  atomic.Bool // a hardening closure was already counted
	// info is set once the connection is set up, for the closure hooks.
	info *ConnInfo
	// counted is the generation whose connection count this holds.
	counted *gen
	// fast is the connection's fast-path state while the HTTP/1 fast
	// path serves it (for the sweeper and Shutdown).
	fast atomic.Pointer[fastConn]
}

func (c *rawConn) RemoteAddr() net.Addr { return c.remote }
func (c *rawConn) LocalAddr() net.Addr  { return c.localA }

func (c *rawConn) Read(p []byte) (int, error) {
	if len(c.pre) > 0 {
		n := copy(p, c.pre)
		c.pre = c.pre[n:]
		if len(c.pre) == 0 {
			c.pre = nil
		}
		return n, nil
	}
	return c.Conn.Read(p)
}

func (c *rawConn) SetWriteDeadline(t time.Time) error {
	if t.IsZero() {
		c.explicit.Store(0)
		c.armed.Store(0)
	} else {
		c.explicit.Store(t.UnixNano())
		c.armed.Store(t.UnixNano())
	}
	return c.Conn.SetWriteDeadline(t)
}

func (c *rawConn) SetDeadline(t time.Time) error {
	if err := c.SetWriteDeadline(t); err != nil {
		return err
	}
	return c.Conn.SetReadDeadline(t)
}

func (c *rawConn) Write(p []byte) (int, error) {
	wt := c.g.o.WriteTimeout
	if wt <= 0 {
		return c.Conn.Write(p)
	}
	// The deadline is moved only when it is more than slack behind
	// now+wt (or when an explicit deadline is nearer), so a busy
	// connection does not change a timer on every write: each piece is
	// given between wt-slack and wt.
	slack := int64(min(time.Second, wt/8))
	written := 0
	for len(p) > 0 {
		chunk := p
		if len(chunk) > writeChunk {
			chunk = chunk[:writeChunk]
		}
		now := time.Now().UnixNano()
		dl := now + int64(wt)
		exp := c.explicit.Load()
		if exp != 0 && exp < dl {
			dl = exp
		}
		if a := c.armed.Load(); a == 0 || a > dl || dl-a > slack {
			c.Conn.SetWriteDeadline(time.Unix(0, dl))
			c.armed.Store(dl)
		}
		n, err := c.Conn.Write(chunk)
		written += n
		if err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) && (exp == 0 || exp > now+int64(wt)) {
				c.cut(ReasonWriteTimeout)
			}
			return written, err
		}
		p = p[n:]
	}
	return written, nil
}

// cut counts a hardening closure of this connection once.
func (c *rawConn) cut(reason string) {
	if c.cutOnce.CompareAndSwap(false, true) {
		c.s.event(verdict.EventConnClosed, c.peer.Addr(), reason, c.g)
	}
}

// CloseWrite half-closes the TCP connection, for lingering closes.
func (c *rawConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

func (c *rawConn) Close() error {
	err := net.ErrClosed
	c.closed.Do(func() {
		err = c.Conn.Close()
		c.s.untrack(c)
		if c.counted != nil {
			c.counted.conns.Add(-1)
		}
		if c.keyed {
			c.s.gate.releaseKey(c.key)
		}
		c.s.gate.releaseGlobal()
	})
	return err
}

// resetClose closes c with RST (SO_LINGER 0) so no TIME_WAIT is left behind.
func resetClose(c net.Conn) {
	if tc := sockio.Unwrap(c); tc != nil {
		tc.SetLinger(0)
	}
	c.Close()
}

// addrPort converts a net.Addr to a netip.AddrPort with IPv4-mapped
// addresses unmapped; non-IP addresses give the zero value.
func addrPort(a net.Addr) netip.AddrPort {
	switch a := a.(type) {
	case *net.TCPAddr:
		ap := a.AddrPort()
		return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	case nil:
		return netip.AddrPort{}
	default:
		ap, err := netip.ParseAddrPort(a.String())
		if err != nil {
			return netip.AddrPort{}
		}
		return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	}
}

// ConnInfo describes the connection a request arrived on. It is created once
// per connection and shared by its requests; treat it as read-only.
type ConnInfo struct {
	// Peer is the client address: the PROXY header's source when one was
	// honoured, else the socket peer. IPv4-mapped addresses are unmapped.
	Peer netip.AddrPort
	// Local is the address the client connected to (PROXY destination
	// when honoured).
	Local netip.AddrPort
	// Proxied reports whether a PROXY header supplied Peer and Local.
	Proxied bool
	// TLS is the connection's TLS state, nil for plain connections.
	TLS *tls.ConnectionState
	// ALPN is the negotiated protocol ("h2", "http/1.1" or "") on TLS.
	ALPN string
	// Proto is "HTTP/1.1" or "HTTP/2.0" (h2 over TLS and h2c alike).
	Proto string
	// ClientHello holds what the TLS ClientHello said, for fingerprints
	// (JA4); nil for plain connections.
	ClientHello *ClientHello
	// Fingerprints is a slot for passive fingerprints computed by a later
	// stage (JA4, HTTP/2); netx leaves it empty. Fill it in Options.OnConn,
	// before requests run, so handlers read it without a race.
	Fingerprints verdict.Fingerprints

	raw  *rawConn
	h1   *h1Conn // nil for HTTP/2
	reqs atomic.Uint32
}

// ClientHello is the part of a TLS ClientHello kept for fingerprinting.
// Slices are owned by the ClientHello and must not be modified.
type ClientHello struct {
	// ServerName is the SNI host name ("" if none).
	ServerName string
	// CipherSuites, SupportedVersions, SupportedCurves, SupportedPoints,
	// SignatureSchemes and SupportedProtos (ALPN) are as crypto/tls
	// reports them from the ClientHello, in the client's order.
	CipherSuites      []uint16
	SupportedVersions []uint16
	SupportedCurves   []tls.CurveID
	SupportedPoints   []uint8
	SignatureSchemes  []tls.SignatureScheme
	SupportedProtos   []string
	// Extensions lists the extension types as crypto/tls reports them, in
	// the order sent (JA4 sorts them itself).
	Extensions []uint16
}

type connInfoKey struct{}

// ConnInfoFrom returns the ConnInfo of the connection that ctx (a request
// context from a netx Server) belongs to, or nil.
func ConnInfoFrom(ctx context.Context) *ConnInfo {
	ci, _ := ctx.Value(connInfoKey{}).(*ConnInfo)
	return ci
}

// memListener hands connections set up by Serve to a net/http.Server.
type memListener struct {
	ch     chan net.Conn
	done   chan struct{}
	closed sync.Once
}

func newMemListener() *memListener {
	return &memListener{ch: make(chan net.Conn), done: make(chan struct{})}
}

func (l *memListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.ch:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *memListener) Close() error {
	l.closed.Do(func() { close(l.done) })
	return nil
}

func (l *memListener) Addr() net.Addr { return memAddr{} }

// handoff passes c to the server; false once the listener is closed.
func (l *memListener) handoff(c net.Conn) bool {
	select {
	case l.ch <- c:
		return true
	case <-l.done:
		return false
	}
}

type memAddr struct{}

func (memAddr) Network() string { return "memory" }
func (memAddr) String() string  { return "netx" }
