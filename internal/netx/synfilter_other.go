//go:build !linux

package netx

import (
	"net"

	"golang.org/x/net/bpf"
)

func attachSYNFilter(net.Listener, []bpf.RawInstruction) error { return ErrSYNFilterUnsupported }
