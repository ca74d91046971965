package sockio

import (
	"io"
	"net"
	"os"
	"syscall"
)

// Conn is a *net.TCPConn whose Read and Write use raw system calls.
type Conn struct {
	*net.TCPConn
	rc syscall.RawConn

	// The calls' arguments and results, and the functions given to the
	// RawConn, made once so that a call allocates nothing. Reads and
	// writes each have their own, as they may run at the same time.
	rbuf  []byte
	rn    int
	rerr  syscall.Errno
	rfunc func(uintptr) bool
	wbuf  []byte
	wn    int
	werr  syscall.Errno
	wfunc func(uintptr) bool
}

func wrap(tc *net.TCPConn) net.Conn {
	rc, err := tc.SyscallConn()
	if err != nil {
		return tc
	}
	c := &Conn{TCPConn: tc, rc: rc}
	c.rfunc = c.rawRead
	c.wfunc = c.rawWrite
	return c
}

func (c *Conn) rawRead(fd uintptr) bool {
	for {
		n, e := sysRead(fd, c.rbuf)
		switch e {
		case 0:
			c.rn, c.rerr = int(n), 0
			return true
		case syscall.EINTR:
			continue
		case syscall.EAGAIN:
			return false // wait for the poller
		default:
			c.rn, c.rerr = 0, e
			return true
		}
	}
}

func (c *Conn) rawWrite(fd uintptr) bool {
	for len(c.wbuf) > 0 {
		n, e := sysWrite(fd, c.wbuf)
		switch e {
		case 0:
			c.wn += int(n)
			c.wbuf = c.wbuf[n:]
		case syscall.EINTR:
		case syscall.EAGAIN:
			return false // wait for the poller
		default:
			c.werr = e
			return true
		}
	}
	return true
}

// Read reads as (*net.TCPConn).Read does.
func (c *Conn) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	c.rbuf = p
	err := c.rc.Read(c.rfunc)
	c.rbuf = nil
	if err != nil {
		return 0, c.opError("read", err)
	}
	if c.rerr != 0 {
		return 0, c.opError("read", os.NewSyscallError("read", c.rerr))
	}
	if c.rn == 0 {
		return 0, io.EOF
	}
	return c.rn, nil
}

// Write writes as (*net.TCPConn).Write does: all of p unless an error
// (a deadline included) stops it.
func (c *Conn) Write(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	c.wbuf, c.wn, c.werr = p, 0, 0
	err := c.rc.Write(c.wfunc)
	n := c.wn
	c.wbuf = nil
	if err != nil {
		return n, c.opError("write", err)
	}
	if c.werr != 0 {
		return n, c.opError("write", os.NewSyscallError("write", c.werr))
	}
	return n, nil
}

// opError wraps err as the TCPConn would (the RawConn's own "raw-read"
// wrapping taken off).
func (c *Conn) opError(op string, err error) error {
	if oe, ok := err.(*net.OpError); ok {
		err = oe.Err
	}
	return &net.OpError{Op: op, Net: "tcp", Source: c.LocalAddr(), Addr: c.RemoteAddr(), Err: err}
}
