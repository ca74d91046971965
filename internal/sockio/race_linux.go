//go:build linux && race

package sockio

import "syscall"

// Under the race detector, reads and writes go through package syscall,
// whose annotations tell the detector that what one goroutine wrote before
// sending on a socket happens before what another reads after receiving
// it, as with any net.Conn.
func sysRead(fd uintptr, p []byte) (uintptr, syscall.Errno) {
	n, err := syscall.Read(int(fd), p)
	return uintptr(max(n, 0)), errno(err)
}

func sysWrite(fd uintptr, p []byte) (uintptr, syscall.Errno) {
	n, err := syscall.Write(int(fd), p)
	return uintptr(max(n, 0)), errno(err)
}

func errno(err error) syscall.Errno {
	if err == nil {
		return 0
	}
	if e, ok := err.(syscall.Errno); ok {
		return e
	}
	return syscall.EIO
}
