package netx

import (
	"bytes"
	"crypto/tls"
	"errors"
	"net"
	"os"
	"sync/atomic"
	"time"
)

// abortDeadline: net/http sets read deadlines this far in the past to abort
// a background read; timeouts under such deadlines are not hardening
// closures.
var abortDeadline = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano()

// h1Conn is the connection net/http's HTTP/1 server reads from. Every byte
// the client sends passes the head inspector; head lines are only released
// once complete and checked, so a refused head can be replaced whole by a
// harmless one that the handler answers with 400. Read timeouts are
// classified (header timeout or idle) and counted.
type h1Conn struct {
	net.Conn // *tls.Conn or *rawConn
	raw      *rawConn
	info     *ConnInfo
	insp     h1Inspector

	buf []byte // bytes read but not yet returned: [off, off+rel) released, rest held
	off int
	rel int
	sub []byte // replacement head still to return
	// back holds bytes the fast path read and hands back to net/http;
	// they were inspected already and come first.
	back []byte

	readDL atomic.Int64 // last read deadline set, unix nanos (0 = none)
}

// h1TLSConn adds ConnectionState so that net/http sets Request.TLS.
type h1TLSConn struct {
	*h1Conn
}

func (c h1TLSConn) ConnectionState() tls.ConnectionState { return *c.info.TLS }

func (c *h1Conn) SetReadDeadline(t time.Time) error {
	c.storeReadDL(t)
	return c.Conn.SetReadDeadline(t)
}

func (c *h1Conn) SetDeadline(t time.Time) error {
	c.storeReadDL(t)
	return c.Conn.SetDeadline(t)
}

func (c *h1Conn) storeReadDL(t time.Time) {
	if t.IsZero() {
		c.readDL.Store(0)
	} else {
		c.readDL.Store(t.UnixNano())
	}
}

// errRefused is returned by reads after a refused head was replaced.
var errRefused = errors.New("netx: connection refused a bad request")

func (c *h1Conn) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	if len(c.back) > 0 {
		n := copy(p, c.back)
		c.back = c.back[n:]
		if len(c.back) == 0 {
			c.back = nil
		}
		return n, nil
	}
	for {
		if c.rel > 0 {
			n := copy(p, c.buf[c.off:c.off+c.rel])
			c.off += n
			c.rel -= n
			if c.off == len(c.buf) {
				c.buf, c.off = c.buf[:0], 0
			}
			return n, nil
		}
		if c.sub != nil {
			n := copy(p, c.sub)
			c.sub = c.sub[n:]
			if len(c.sub) == 0 {
				c.sub = nil
			}
			return n, nil
		}
		if c.insp.st == stViolated {
			// Swallow whatever else the client sends until the deadline
			// the handler set or the close.
			for {
				if _, err := c.Conn.Read(p); err != nil {
					return 0, err
				}
			}
		}
		held := len(c.buf) - c.off
		if held == 0 {
			n, err := c.Conn.Read(p)
			if n > 0 {
				r, sub := c.insp.feed(p[:n])
				c.sub = sub
				if sub == nil && r < n {
					c.buf = append(c.buf[:0], p[r:n]...)
					c.off = 0
				}
				if r > 0 {
					return r, nil
				}
				if sub != nil || err == nil {
					continue
				}
			}
			if err != nil {
				c.readErr(err)
				return 0, err
			}
			continue
		}
		// A partial head line is held: read more behind it.
		if c.off > 0 {
			c.buf = c.buf[:copy(c.buf, c.buf[c.off:])]
			c.off = 0
		}
		if len(c.buf) == cap(c.buf) {
			c.buf = append(c.buf, 0)[:len(c.buf)]
		}
		start := len(c.buf)
		n, err := c.Conn.Read(c.buf[start:cap(c.buf)])
		c.buf = c.buf[:start+n]
		if n > 0 && (bytes.IndexByte(c.buf[start:], '\n') >= 0 || c.insp.head+len(c.buf) > c.insp.maxHeaderBytes) {
			r, sub := c.insp.feed(c.buf)
			c.rel = r
			c.sub = sub
			if sub != nil {
				c.buf = c.buf[:r]
			}
			continue
		}
		if err != nil {
			c.readErr(err)
			return 0, err
		}
	}
}

// readErr classifies a read error: a timeout while a head is awaited or
// partly read is a header timeout (Slowloris) or an idle close.
func (c *h1Conn) readErr(err error) {
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		return
	}
	if dl := c.readDL.Load(); dl != 0 && dl < abortDeadline {
		return
	}
	reason := c.insp.timeoutClass()
	if len(c.buf) > c.off {
		reason = ReasonHeaderTimeout // a partial head line is held
	}
	if reason != "" {
		c.raw.cut(reason)
	}
}

// SetLinger sets SO_LINGER on the TCP connection underneath, so that a
// handler that hijacks the connection to drop it can reset it.
func (c *h1Conn) SetLinger(sec int) error {
	if tc, ok := c.raw.Conn.(interface{ SetLinger(int) error }); ok {
		return tc.SetLinger(sec)
	}
	return nil
}

// CloseWrite half-closes the connection, so that net/http's lingering close
// after a refused or oversized request lets the client read the response
// before the connection is reset.
func (c *h1Conn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}
