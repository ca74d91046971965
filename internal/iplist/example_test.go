package iplist_test

import (
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/rampart-shield/rampart/internal/iplist"
)

func ExampleParseList() {
	list := "# partners\n192.0.2.0/24\n2001:db8::/32  # v6 office\n198.51.100.7\n10.0.0.0/33\n"
	prefixes, errs := iplist.ParseList(strings.NewReader(list), "allow.txt")
	for _, err := range errs {
		fmt.Println(err)
	}
	set := iplist.NewSet(prefixes)
	for _, ip := range []string{"192.0.2.55", "::ffff:198.51.100.7", "203.0.113.1"} {
		fmt.Println(ip, set.Contains(netip.MustParseAddr(ip)))
	}
	// Output:
	// allow.txt:5:10: prefix length 33 exceeds 32 for IPv4 in "10.0.0.0/33"
	// 192.0.2.55 true
	// ::ffff:198.51.100.7 true
	// 203.0.113.1 false
}

func ExampleBlocks() {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	blocks, err := iplist.NewBlocks(iplist.BlocksOptions{Now: func() time.Time { return now }})
	if err != nil {
		panic(err)
	}
	if _, err := blocks.Add(netip.MustParsePrefix("203.0.113.0/24"), time.Hour, "flood"); err != nil {
		panic(err)
	}
	if _, err := blocks.Add(netip.MustParsePrefix("203.0.113.9/32"), time.Minute, "login-abuse"); err != nil {
		panic(err)
	}
	b, _ := blocks.Lookup(netip.MustParseAddr("203.0.113.9"))
	fmt.Println(b.Prefix, b.Reason)
	now = now.Add(2 * time.Minute)
	b, _ = blocks.Lookup(netip.MustParseAddr("203.0.113.9"))
	fmt.Println(b.Prefix, b.Reason, "swept", blocks.Sweep())
	// Output:
	// 203.0.113.9/32 login-abuse
	// 203.0.113.0/24 flood swept 1
}
