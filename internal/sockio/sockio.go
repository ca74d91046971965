// Package sockio reads and writes TCP sockets with raw system calls through
// syscall.RawConn. Go's sockets are non-blocking, so a read or write
// returns at once (EAGAIN when it would block, and then the runtime's
// poller waits, as for any net.Conn); what a raw call skips is the
// scheduler's bookkeeping around a system call that might block (the P
// released and retaken, and the hand-offs sysmon makes for Ps it finds in
// system calls). On the proxy path, with four socket calls per request,
// that is about 6% of a request's CPU time on a 2-core machine (see
// docs/benchmarks.md).
//
// Wrap returns a net.Conn that behaves as the *net.TCPConn it wraps, with
// the same errors (io.EOF at the end, *net.OpError otherwise, deadlines
// honoured); every other method is the TCPConn's. A Conn is safe for the
// same concurrent use as a TCPConn: one reader and one writer at a time.
package sockio

import (
	"net"
)

// Wrap returns c with raw reads and writes when c is a *net.TCPConn on a
// platform that supports them, else c itself.
func Wrap(c net.Conn) net.Conn {
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return c
	}
	return wrap(tc)
}

// Unwrap returns the *net.TCPConn under c, or nil.
func Unwrap(c net.Conn) *net.TCPConn {
	switch c := c.(type) {
	case *net.TCPConn:
		return c
	case *Conn:
		return c.TCPConn
	}
	return nil
}
