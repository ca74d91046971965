//go:build !linux

package sockio

import "net"

// Conn is not used off Linux: Wrap returns the TCPConn itself.
type Conn struct {
	*net.TCPConn
}

func wrap(tc *net.TCPConn) net.Conn { return tc }
