package limiter_test

import (
	"fmt"
	"net/netip"
	"time"

	"github.com/rampart-shield/rampart/internal/limiter"
)

// A policy keys each rule by rule name and client address, asks the table,
// and escalates repeated violations into growing blocks.
func Example() {
	table, err := limiter.NewTable(limiter.TableOptions{Capacity: 1 << 16})
	if err != nil {
		panic(err)
	}
	esc, err := limiter.NewEscalator(limiter.EscalatorOptions{Strikes: 3})
	if err != nil {
		panic(err)
	}
	login, err := limiter.NewParams(1, 2) // 1 request/s, bursts of 2
	if err != nil {
		panic(err)
	}

	client := netip.MustParseAddr("203.0.113.7")
	var kb limiter.KeyBuilder
	kb.Reset("login")
	kb.AddAddr(client)
	key := kb.Sum()

	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano()
	for i := range 6 {
		ok, retry := table.Allow(key, login, 1, now)
		if ok {
			fmt.Printf("request %d: allowed\n", i+1)
			continue
		}
		block := esc.Strike(key, now)
		fmt.Printf("request %d: 429, retry after %v, block for %v\n", i+1, retry, block)
	}
	// Output:
	// request 1: allowed
	// request 2: allowed
	// request 3: 429, retry after 1s, block for 0s
	// request 4: 429, retry after 1s, block for 0s
	// request 5: 429, retry after 1s, block for 1m0s
	// request 6: 429, retry after 1s, block for 1m0s
}
