// Package iplist owns rampart's IP address lists: parsing CIDR prefixes and
// list files (with file:line:col errors), immutable prefix sets for the
// allow, deny and good-bot lists (Set), the dynamic deny set of prefixes
// blocked until a time (Blocks), and the Watcher that reloads list files
// when they change.
//
// Addresses are normalised the same way everywhere: IPv4-mapped IPv6
// addresses (::ffff:192.0.2.1) are treated as the IPv4 address they carry,
// host bits of prefixes are masked off, and zones are not allowed in lists.
// The package knows nothing about HTTP: lookups take a netip.Addr, and the
// hot-path lookups (Set.Contains, Blocks.Contains) do not allocate.
package iplist
