package sim

import (
	"fmt"
	"net/netip"
)

// Layout is how the simulator spreads its clients over 127.0.0.0/8.
type Layout uint8

const (
	// LayoutScattered interleaves legitimate visitors and attackers across
	// many /24s and /16s, as on the real internet, where bots on
	// residential proxies share carrier networks with people: every /24
	// holds both roles (when there are enough attackers), so a defence that
	// only works because the attack sits in one prefix is not rewarded.
	LayoutScattered Layout = iota
	// LayoutClustered packs legitimate visitors into 127.10.0.0/16 and
	// attackers into 127.66.0.0/16, for comparison.
	LayoutClustered
)

// String returns the flag spelling of l.
func (l Layout) String() string {
	if l == LayoutClustered {
		return "clustered"
	}
	return "scattered"
}

// ParseLayout parses "scattered" (also "") or "clustered".
func ParseLayout(s string) (Layout, error) {
	switch s {
	case "", "scattered":
		return LayoutScattered, nil
	case "clustered":
		return LayoutClustered, nil
	}
	return 0, fmt.Errorf("unknown layout %q (want scattered or clustered)", s)
}

const (
	// hostsPerBlock is how many clients share a /24 in the scattered layout.
	hostsPerBlock = 16
	// maxClientsPerRole bounds each role: a clustered /16 holds 254·256.
	maxClientsPerRole = 254 * 256
)

// AssignAddrs returns a source address for each of legit visitors and
// attack clients. No address is 127.0.0.1 (nor anything in 127.0.0.0/16,
// where servers listen) or avoid (the target's own address); all are
// distinct. The scattered layout places clients, roles interleaved evenly,
// round-robin into ceil((legit+attack)/16) distinct /24 blocks picked by a
// hash of seed over 127.1.0.0-127.254.255.0; the same seed gives the same
// addresses.
func AssignAddrs(layout Layout, legit, attack int, seed uint64, avoid netip.Addr) (legitAddrs, attackAddrs []netip.Addr, err error) {
	if legit < 0 || attack < 0 || legit > maxClientsPerRole || attack > maxClientsPerRole {
		return nil, nil, fmt.Errorf("client counts %d legit, %d attack: each must be in [0, %d]", legit, attack, maxClientsPerRole)
	}
	legitAddrs = make([]netip.Addr, 0, legit)
	attackAddrs = make([]netip.Addr, 0, attack)
	if layout == LayoutClustered {
		for i := range legit {
			legitAddrs = append(legitAddrs, clusteredAddr(10, i, avoid))
		}
		for i := range attack {
			attackAddrs = append(attackAddrs, clusteredAddr(66, i, avoid))
		}
		return legitAddrs, attackAddrs, nil
	}

	total := legit + attack
	if total == 0 {
		return legitAddrs, attackAddrs, nil
	}
	nBlocks := (total + hostsPerBlock - 1) / hostsPerBlock
	blocks := make([][2]byte, 0, nBlocks)
	used := make(map[[2]byte]bool, nBlocks)
	for k := uint64(0); len(blocks) < nBlocks; k++ {
		h := splitmix64(seed ^ (k * 0x9e3779b97f4a7c15))
		b := [2]byte{byte(1 + h%254), byte(h >> 16)}
		if !used[b] {
			used[b] = true
			blocks = append(blocks, b)
		}
	}
	// Legit visitors sit at evenly spaced positions among all clients.
	isLegit := make([]bool, total)
	for j := range legit {
		isLegit[j*total/legit] = true
	}
	for p := range total {
		b := blocks[p%nBlocks]
		host := byte(1 + p/nBlocks)
		a := netip.AddrFrom4([4]byte{127, b[0], b[1], host})
		if a == avoid {
			a = netip.AddrFrom4([4]byte{127, b[0], b[1], host + 128})
		}
		if isLegit[p] {
			legitAddrs = append(legitAddrs, a)
		} else {
			attackAddrs = append(attackAddrs, a)
		}
	}
	return legitAddrs, attackAddrs, nil
}

// clusteredAddr is client i of a role packed into 127.second.0.0/16,
// skipping host bytes 0 and 255.
func clusteredAddr(second byte, i int, avoid netip.Addr) netip.Addr {
	a := netip.AddrFrom4([4]byte{127, second, byte(i / 254), byte(1 + i%254)})
	if a == avoid {
		// The target sits inside the cluster: use the matching address of
		// the neighbouring /16.
		a = netip.AddrFrom4([4]byte{127, second + 1, byte(i / 254), byte(1 + i%254)})
	}
	return a
}

// splitmix64 is a fast, well-mixing 64-bit hash (Steele, Lea, Flood).
func splitmix64(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}
