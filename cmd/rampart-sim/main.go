// Command rampart-sim rehearses an attack against a shield on this machine
// and measures what got through: a crowd of legitimate browsers and one of
// the attack presets, all from scattered source addresses in 127.0.0.0/8. It
// only ever targets loopback addresses. See package sim for the details.
//
// A typical drill, three terminals:
//
//	rampart-sim --origin-only --origin-addr 127.0.0.1:8081
//	rampart run --upstream http://127.0.0.1:8081 --listen 127.0.0.1:8080
//	rampart-sim --target http://127.0.0.1:8080 --origin-stats http://127.0.0.1:8081/__demo/stats \
//	    --preset get-flood --proxy-pid $(pidof rampart) --json
//
// or, with one rampart-sim that starts the origin and waits for the shield:
//
//	rampart-sim --origin --origin-addr 127.0.0.1:8081 --target http://127.0.0.1:8080 --wait 30s --preset mixed
//
// Without --target, --origin runs the preset against the bare demo origin.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	m := NewMain(os.Stdout, os.Stderr)
	if err := m.ParseFlags(os.Args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		fmt.Fprintln(os.Stderr, "rampart-sim:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := m.Run(ctx)
	stop()
	if cerr := m.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "rampart-sim:", err)
		os.Exit(1)
	}
}
