package netx

import (
	"crypto/tls"
	"encoding/binary"
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// HTTP/2 frame types and flags the guard looks at (RFC 9113).
const (
	frData         = 0x0
	frHeaders      = 0x1
	frPriority     = 0x2
	frRSTStream    = 0x3
	frSettings     = 0x4
	frPushPromise  = 0x5
	frPing         = 0x6
	frGoAway       = 0x7
	frWindowUpdate = 0x8
	frContinuation = 0x9
	frPriorityUpd  = 0x10 // RFC 9218 PRIORITY_UPDATE, sent by browsers

	flEndStream  = 0x1
	flAck        = 0x1
	flEndHeaders = 0x4

	errCodeNo              = 0x0
	errCodeEnhanceYourCalm = 0xb
)

const (
	evHeader = 1 << iota
	evEnd
)

// frameScan follows HTTP/2 frame boundaries in a byte stream, keeping the
// current 9-byte header and the first 8 payload bytes.
type frameScan struct {
	hdr    [9]byte
	hn     int
	length uint32
	remain uint32
	typ    byte
	flags  byte
	sid    uint32
	cap    [8]byte
	cn     int
}

// step consumes bytes of b and reports whether a frame header and/or a whole
// frame were just completed.
func (f *frameScan) step(b []byte) (n, ev int) {
	if f.hn < 9 {
		n = copy(f.hdr[f.hn:], b)
		f.hn += n
		if f.hn < 9 {
			return n, 0
		}
		f.length = uint32(f.hdr[0])<<16 | uint32(f.hdr[1])<<8 | uint32(f.hdr[2])
		f.typ, f.flags = f.hdr[3], f.hdr[4]
		f.sid = binary.BigEndian.Uint32(f.hdr[5:9]) & 0x7fffffff
		f.remain = f.length
		f.cn = 0
		if f.remain == 0 {
			f.hn = 0
			return n, evHeader | evEnd
		}
		return n, evHeader
	}
	k := uint32(len(b))
	if k > f.remain {
		k = f.remain
	}
	if f.cn < len(f.cap) {
		f.cn += copy(f.cap[f.cn:], b[:k])
	}
	f.remain -= k
	if f.remain == 0 {
		f.hn = 0
		return int(k), evEnd
	}
	return int(k), 0
}

func (f *frameScan) atBoundary() bool { return f.hn == 0 }

// budget is a leaky bucket of capacity units, one regained per every.
type budget struct {
	tokens int
	last   time.Time
}

// spend takes cost units at time now and reports whether the budget holds.
func (b *budget) spend(now time.Time, cost, capacity int, every time.Duration) bool {
	if b.last.IsZero() {
		b.tokens, b.last = capacity, now
	} else if every > 0 {
		if el := now.Sub(b.last); el >= every {
			k := el / every
			if k > time.Duration(capacity) {
				k = time.Duration(capacity)
			}
			b.tokens += int(k)
			b.last = b.last.Add(k * every)
			if b.tokens >= capacity {
				b.tokens, b.last = capacity, now
			}
		}
	}
	b.tokens -= cost
	return b.tokens >= 0
}

var errH2Cut = errors.New("netx: HTTP/2 connection ended by the glitch guard")

// h2Conn is the connection the HTTP/2 server reads from and writes to. It
// parses the frame headers flowing both ways (9 bytes each; payloads are
// skipped except the few bytes of WINDOW_UPDATE, RST_STREAM and GOAWAY),
// spends the connection's glitch and reset budgets, and when one runs dry
// injects GOAWAY(ENHANCE_YOUR_CALM) at the next outgoing frame boundary,
// half-closes, drains briefly and lets the server close.
type h2Conn struct {
	net.Conn // *tls.Conn or *rawConn
	raw      *rawConn
	info     *ConnInfo
	s        *Server
	g        *gen

	// read side: only the server's frame-reading goroutine.
	skip         int // client preface bytes still to pass (TLS: 24)
	in           frameScan
	blockBytes   int
	contFrames   int
	settingsRecv int
	acksRecv     int

	settingsSent atomic.Int32
	maxStream    atomic.Uint32
	tripped      atomic.Bool

	bmu     sync.Mutex
	glitch  budget
	resets  budget
	wmu     sync.Mutex
	out     frameScan
	dead    bool
	pending bool
}

type h2TLSConn struct{ *h2Conn }

func (c h2TLSConn) ConnectionState() tls.ConnectionState { return *c.info.TLS }

func (c *h2Conn) spend(b *budget, cost, capacity int, reason string) string {
	o := &c.g.o
	c.bmu.Lock()
	ok := b.spend(o.Now(), cost, capacity, o.H2BudgetRefill)
	c.bmu.Unlock()
	if ok {
		return ""
	}
	return reason
}

func (c *h2Conn) glitches(cost int) string {
	return c.spend(&c.glitch, cost, c.g.o.H2GlitchBudget, ReasonH2Glitches)
}

func (c *h2Conn) Read(p []byte) (int, error) {
	if c.tripped.Load() {
		return c.drain(p)
	}
	n, err := c.Conn.Read(p)
	if n > 0 {
		if reason := c.inbound(p[:n]); reason != "" {
			c.trip(reason, false)
			return c.drain(p)
		}
	}
	return n, err
}

// inbound accounts the client's frames in b.
func (c *h2Conn) inbound(b []byte) string {
	for len(b) > 0 {
		if c.skip > 0 {
			k := min(c.skip, len(b))
			c.skip -= k
			b = b[k:]
			continue
		}
		n, ev := c.in.step(b)
		b = b[n:]
		if ev&evHeader != 0 {
			if r := c.onInHeader(); r != "" {
				return r
			}
		}
		if ev&evEnd != 0 && c.in.typ == frWindowUpdate && c.in.cn >= 4 {
			if binary.BigEndian.Uint32(c.in.cap[:4])&0x7fffffff == 0 {
				if r := c.glitches(1); r != "" {
					return r
				}
			}
		}
	}
	return ""
}

func (c *h2Conn) onInHeader() string {
	f := &c.in
	o := &c.g.o
	switch f.typ {
	case frData:
		if f.length == 0 && f.flags&flEndStream == 0 {
			return c.glitches(1)
		}
	case frHeaders:
		if f.sid > c.maxStream.Load() {
			c.maxStream.Store(f.sid)
		}
		c.blockBytes, c.contFrames = int(f.length), 0
		if c.blockBytes > 2*int(o.H2MaxHeaderListSize) {
			return c.glitches(o.H2GlitchBudget + 1)
		}
	case frContinuation:
		c.contFrames++
		c.blockBytes += int(f.length)
		if c.blockBytes > 2*int(o.H2MaxHeaderListSize) {
			return c.glitches(o.H2GlitchBudget + 1)
		}
		if c.contFrames > 2 || f.length == 0 {
			return c.glitches(1)
		}
	case frRSTStream:
		return c.spend(&c.resets, 1, o.H2ResetBudget, ReasonH2Resets)
	case frSettings:
		if f.flags&flAck != 0 {
			if c.acksRecv < int(c.settingsSent.Load()) {
				c.acksRecv++
				return ""
			}
			return c.glitches(1)
		}
		c.settingsRecv++
		if c.settingsRecv > 1 {
			return c.glitches(1)
		}
	case frPriority, frPushPromise, frPing:
		return c.glitches(1)
	case frGoAway, frWindowUpdate, frPriorityUpd:
	default:
		return c.glitches(1)
	}
	return ""
}

// provoked reports whether a server RST_STREAM with this code was caused by
// the client (MadeYouReset and protocol violations), as opposed to the
// handler's own cancellation or an internal error.
func provoked(code uint32) bool {
	switch code {
	case 0x1, 0x3, 0x5, 0x6, 0x7, 0x9, 0xb: // PROTOCOL, FLOW_CONTROL, STREAM_CLOSED, FRAME_SIZE, REFUSED_STREAM, COMPRESSION, ENHANCE_YOUR_CALM
		return true
	}
	return false
}

func (c *h2Conn) Write(p []byte) (int, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.dead {
		return 0, net.ErrClosed
	}
	if c.pending {
		k := 0
		for k < len(p) && !c.out.atBoundary() {
			n, _ := c.out.step(p[k:])
			k += n
		}
		n, err := c.Conn.Write(p[:k])
		if err == nil && c.out.atBoundary() {
			c.injectLocked()
		}
		return n, errH2Cut
	}
	n, err := c.Conn.Write(p)
	if n > 0 {
		c.outbound(p[:n])
	}
	if c.pending && !c.dead && c.out.atBoundary() {
		c.injectLocked()
	}
	return n, err
}

// outbound accounts the server's frames in b (wmu held).
func (c *h2Conn) outbound(b []byte) {
	for len(b) > 0 {
		n, ev := c.out.step(b)
		b = b[n:]
		f := &c.out
		if ev&evHeader != 0 {
			switch f.typ {
			case frSettings:
				if f.flags&flAck == 0 {
					c.settingsSent.Add(1)
				}
			case frGoAway:
				c.s.c.goaways.Add(1)
			}
		}
		if ev&evEnd == 0 {
			continue
		}
		switch f.typ {
		case frRSTStream:
			if f.cn >= 4 && provoked(binary.BigEndian.Uint32(f.cap[:4])) {
				if r := c.glitches(1); r != "" {
					c.trip(r, true)
				}
			}
		case frGoAway:
			if f.cn >= 8 && binary.BigEndian.Uint32(f.cap[4:8]) == errCodeNo &&
				!c.s.shutting.Load() && !c.tripped.Load() {
				c.raw.cut(ReasonIdle)
			}
		}
	}
}

// trip ends the connection for reason: GOAWAY now if the outgoing stream is
// at a frame boundary, else at the next one; a fallback closes the
// connection if no boundary comes within a second.
func (c *h2Conn) trip(reason string, writeLocked bool) {
	if !c.tripped.CompareAndSwap(false, true) {
		return
	}
	c.raw.cut(reason)
	if !writeLocked {
		c.wmu.Lock()
		defer c.wmu.Unlock()
	}
	if c.dead {
		return
	}
	// From outbound (writeLocked), the frame that tripped has ended but
	// the rest of the write it came in is on the wire already: Write
	// injects once that is at a frame boundary.
	if !writeLocked && c.out.atBoundary() {
		c.injectLocked()
		return
	}
	c.pending = true
	time.AfterFunc(time.Second, c.forceClose)
}

// injectLocked writes GOAWAY(ENHANCE_YOUR_CALM), half-closes and bounds the
// drain that follows (wmu held).
func (c *h2Conn) injectLocked() {
	var f [17]byte
	f[2] = 8
	f[3] = frGoAway
	binary.BigEndian.PutUint32(f[9:13], c.maxStream.Load())
	binary.BigEndian.PutUint32(f[13:17], errCodeEnhanceYourCalm)
	if _, err := c.Conn.Write(f[:]); err == nil {
		c.s.c.goaways.Add(1)
	}
	c.dead = true
	c.pending = false
	c.raw.CloseWrite()
	c.raw.Conn.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
}

func (c *h2Conn) forceClose() {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if !c.dead {
		c.dead = true
		c.raw.Conn.SetReadDeadline(time.Unix(1, 0))
		c.raw.Close()
	}
}

// drain discards what the client still sends (at most 256 KiB, until the
// deadline set by injectLocked), so the close does not reset the GOAWAY
// away, then fails the server's read.
func (c *h2Conn) drain(p []byte) (int, error) {
	for total := 0; total < 256<<10; {
		n, err := c.raw.Conn.Read(p)
		total += n
		if err != nil {
			break
		}
	}
	return 0, errH2Cut
}
