package netx

import (
	"fmt"
	"net"
	"syscall"

	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// attachSYNFilter installs prog on a listening TCP socket, replacing its
// filter (atomically, in the kernel); an empty prog removes it.
func attachSYNFilter(l net.Listener, prog []bpf.RawInstruction) error {
	sc, ok := l.(syscall.Conn)
	if !ok {
		return fmt.Errorf("netx: SYN filter: %T is not a socket listener", l)
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return fmt.Errorf("netx: SYN filter: %w", err)
	}
	var serr error
	cerr := rc.Control(func(fd uintptr) {
		if len(prog) == 0 {
			serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_DETACH_FILTER, 0)
			if serr == unix.ENOENT {
				serr = nil // there was none
			}
			return
		}
		fp := unix.SockFprog{Len: uint16(len(prog)), Filter: (*unix.SockFilter)(&toSockFilter(prog)[0])}
		serr = unix.SetsockoptSockFprog(int(fd), unix.SOL_SOCKET, unix.SO_ATTACH_FILTER, &fp)
	})
	if cerr != nil {
		return fmt.Errorf("netx: SYN filter: %w", cerr)
	}
	if serr != nil {
		return fmt.Errorf("netx: SYN filter: setsockopt: %w", serr)
	}
	return nil
}

func toSockFilter(prog []bpf.RawInstruction) []unix.SockFilter {
	out := make([]unix.SockFilter, len(prog))
	for i, in := range prog {
		out[i] = unix.SockFilter{Code: in.Op, Jt: in.Jt, Jf: in.Jf, K: in.K}
	}
	return out
}
