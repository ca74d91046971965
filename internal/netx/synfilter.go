package netx

import (
	"context"
	"errors"
	"net"
	"net/netip"

	"golang.org/x/net/bpf"
)

// The SYN filter drops a denied client's connection attempts in the kernel,
// before the handshake: a classic BPF program attached to each listening
// socket (SO_ATTACH_FILTER) looks at every packet that reaches the
// listener, and for a SYN without ACK whose source address is in one of the
// filter's prefixes it answers 0: the kernel discards the packet, sends no
// SYN-ACK, and rampart spends no system call and no user-space CPU on it.
// The client sees a connection attempt that times out (its kernel retries
// the SYN a few times), not a reset. Every other packet passes after three
// instructions (the TCP flags), so accepted connections, which inherit the
// listener's filter, pay next to nothing.
//
// Classic BPF has no maps: the program compares the source address with
// each prefix in turn, so it is bounded by maxSYNProgram instructions (the
// kernel's limit is 4096): about 1,000 IPv4 or 300 IPv6 prefixes. Prefixes
// beyond that are still refused at accept (Options.Denied), as before.
// Linux only; elsewhere SetSYNDeny reports ErrSYNFilterUnsupported.

// ErrSYNFilterUnsupported is returned where the SYN filter is not available.
var ErrSYNFilterUnsupported = errors.New("netx: the SYN filter needs Linux")

const (
	// maxSYNProgram bounds the program (the kernel accepts up to 4096).
	maxSYNProgram = 4000
	// skfNetOff is SKF_NET_OFF: loads relative to the network header. At
	// the socket filter of a TCP socket the packet data starts at the TCP
	// header.
	skfNetOff  = 0xfff00000 // -0x100000
	tcpFlagSYN = 0x02
	tcpFlagACK = 0x10
	retDrop    = 0
	retAccept  = 0xffffffff
)

// synProgram builds the filter for prefixes, taken in order until the
// program is full; it returns the program and how many prefixes it holds.
func synProgram(prefixes []netip.Prefix) ([]bpf.RawInstruction, int, error) {
	var v4, v6 []bpf.Instruction
	budget := maxSYNProgram - 40 // the fixed part below
	n := 0
	for _, p := range prefixes {
		if !p.IsValid() {
			continue
		}
		p = p.Masked()
		var ins []bpf.Instruction
		if p.Addr().Is4() || p.Addr().Is4In6() && p.Bits() >= 96 {
			if p.Addr().Is4In6() {
				p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
			}
			ins = v4Match(p)
		} else {
			ins = v6Match(p)
		}
		if len(ins) > budget {
			break
		}
		budget -= len(ins)
		n++
		if p.Addr().Is4() {
			v4 = append(v4, ins...)
		} else {
			v6 = append(v6, ins...)
		}
	}
	if n == 0 {
		return nil, 0, nil
	}
	prog := []bpf.Instruction{
		bpf.LoadAbsolute{Off: 13, Size: 1}, // TCP flags
		bpf.JumpIf{Cond: bpf.JumpBitsSet, Val: tcpFlagSYN, SkipTrue: 1},
		bpf.RetConstant{Val: retAccept},
		bpf.JumpIf{Cond: bpf.JumpBitsSet, Val: tcpFlagACK, SkipFalse: 1},
		bpf.RetConstant{Val: retAccept},
		bpf.LoadAbsolute{Off: skfNetOff, Size: 1}, // IP version
		bpf.ALUOpConstant{Op: bpf.ALUOpShiftRight, Val: 4},
		bpf.JumpIf{Cond: bpf.JumpEqual, Val: 4, SkipFalse: 1},
		bpf.Jump{Skip: 3}, // to the IPv4 part
		bpf.JumpIf{Cond: bpf.JumpEqual, Val: 6, SkipFalse: 1},
		bpf.Jump{Skip: uint32(3 + len(v4) + 1)}, // to the IPv6 part
		bpf.RetConstant{Val: retAccept},
		// IPv4: the source address in X.
		bpf.LoadAbsolute{Off: skfNetOff + 12, Size: 4},
		bpf.TAX{},
	}
	prog = append(prog, v4...)
	prog = append(prog, bpf.RetConstant{Val: retAccept})
	// IPv6: the source address in scratch words 0-3.
	for i := range 4 {
		prog = append(prog, bpf.LoadAbsolute{Off: skfNetOff + 8 + uint32(4*i), Size: 4}, bpf.StoreScratch{Src: bpf.RegA, N: i})
	}
	prog = append(prog, v6...)
	prog = append(prog, bpf.RetConstant{Val: retAccept})
	raw, err := bpf.Assemble(prog)
	if err != nil {
		return nil, 0, err
	}
	return raw, n, nil
}

// v4Match drops when the address in X is in p.
func v4Match(p netip.Prefix) []bpf.Instruction {
	a := p.Addr().As4()
	val := uint32(a[0])<<24 | uint32(a[1])<<16 | uint32(a[2])<<8 | uint32(a[3])
	if p.Bits() == 0 {
		return []bpf.Instruction{bpf.RetConstant{Val: retDrop}}
	}
	mask := ^uint32(0) << (32 - p.Bits())
	return []bpf.Instruction{
		bpf.TXA{},
		bpf.ALUOpConstant{Op: bpf.ALUOpAnd, Val: mask},
		bpf.JumpIf{Cond: bpf.JumpEqual, Val: val, SkipFalse: 1},
		bpf.RetConstant{Val: retDrop},
	}
}

// v6Match drops when the address in scratch words 0-3 is in p.
func v6Match(p netip.Prefix) []bpf.Instruction {
	a := p.Addr().As16()
	bits := p.Bits()
	words := (bits + 31) / 32
	if words == 0 {
		return []bpf.Instruction{bpf.RetConstant{Val: retDrop}}
	}
	// Each word: load, mask (if partial), compare; a mismatch skips the
	// rest of the block, which ends with the drop.
	var ins []bpf.Instruction
	for w := range words {
		val := uint32(a[4*w])<<24 | uint32(a[4*w+1])<<16 | uint32(a[4*w+2])<<8 | uint32(a[4*w+3])
		ins = append(ins, bpf.LoadScratch{Dst: bpf.RegA, N: w})
		if rem := bits - 32*w; rem < 32 {
			ins = append(ins, bpf.ALUOpConstant{Op: bpf.ALUOpAnd, Val: ^uint32(0) << (32 - rem)})
		}
		ins = append(ins, bpf.JumpIf{Cond: bpf.JumpEqual, Val: val}) // SkipFalse set below
	}
	ins = append(ins, bpf.RetConstant{Val: retDrop})
	for i, in := range ins {
		if j, ok := in.(bpf.JumpIf); ok {
			j.SkipFalse = uint8(len(ins) - i - 1)
			ins[i] = j
		}
	}
	return ins
}

// SetSYNDeny installs a SYN filter for prefixes on every listener the
// server serves, now and later (nil or empty removes it), and returns how
// many prefixes the filter holds (the first ones, up to the program's
// bound). The caller keeps out anything that must never be dropped (allow
// lists, trusted proxies). On error the listeners keep their previous
// filter.
func (s *Server) SetSYNDeny(prefixes []netip.Prefix) (int, error) {
	prog, n, err := synProgram(prefixes)
	if err != nil {
		return 0, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.synProg = prog
	var errs []error
	for l := range s.listeners {
		if err := attachSYNFilter(l, prog); err != nil {
			errs = append(errs, err)
		}
	}
	return n, errors.Join(errs...)
}

// synFilterNewListener gives a listener that starts serving the current
// filter. Called with s.mu held.
func (s *Server) synFilterNewListener(l net.Listener) {
	if len(s.synProg) == 0 {
		return // a new socket has no filter to remove
	}
	if err := attachSYNFilter(l, s.synProg); err != nil {
		g := s.gen.Load()
		g.o.Logger.Warn("netx: SYN filter not attached to a new listener; denied clients are refused at accept", "err", err)
	}
}

// Listen opens a TCP listener for Serve. It is net.Listen without
// Multipath TCP, which Go enables by default where the kernel has it:
// an MPTCP socket takes no socket filter (the kernel answers EOPNOTSUPP),
// so the SYN filter could not be attached, and a public web front gains
// nothing from MPTCP (browsers do not speak it).
func Listen(ctx context.Context, network, addr string) (net.Listener, error) {
	var lc net.ListenConfig
	lc.SetMultipathTCP(false)
	return lc.Listen(ctx, network, addr)
}
