// Command rampart is a self-hosted DDoS shield: a hardened reverse proxy that
// sits in front of a website and keeps it readable under attack.
//
//	rampart demo                     demo origin + shield on loopback
//	rampart run --listen A --upstream U [--admin A] [--config F] [--tls-cert F --tls-key F] [--mode M]
//	rampart check-config FILE
//	rampart block CIDR [--ttl D] [--reason R] | unblock CIDR | blocks
//	rampart purge [--prefix P]
//	rampart rotate-keys [--revoke-all] | revoke CIDR
//	rampart version
//
// This file only parses flags and calls into internal/shield and
// internal/admin; the whole program runs in tests through run().
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"
	"time"

	"github.com/rampart-shield/rampart/internal/admin"
	"github.com/rampart-shield/rampart/internal/config"
	"github.com/rampart-shield/rampart/internal/demo"
	"github.com/rampart-shield/rampart/internal/shield"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

const usage = `rampart: a self-hosted DDoS shield

Usage:
  rampart demo [--listen ADDR] [--origin ADDR] [--admin ADDR] [--mode M] [--config FILE]
  rampart run --upstream URL [--upstream URL ...] [--listen ADDR ...] [--admin ADDR]
              [--config FILE] [--tls-cert FILE --tls-key FILE] [--mode M] [--state-dir DIR]
  rampart check-config FILE
  rampart block CIDR [--ttl 10m] [--reason TEXT]   (admin API client; --admin, --token)
  rampart unblock CIDR
  rampart blocks
  rampart purge [--prefix HOST/PATH]
  rampart rotate-keys [--revoke-all]             (--revoke-all: every clearance stops working now)
  rampart revoke CIDR                            (clearances issued to one network stop working)
  rampart version

Signals: SIGHUP reloads the config file and certificates (a bad file is
reported and the running config stays); SIGTERM and SIGINT drain in-flight
requests, then exit.
`

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	cmd, rest := args[0], args[1:]
	var err error
	switch cmd {
	case "run":
		err = runShield(ctx, rest, stdout, stderr, false)
	case "demo":
		err = runShield(ctx, rest, stdout, stderr, true)
	case "check-config":
		return checkConfig(rest, stdout, stderr)
	case "block", "unblock", "blocks", "purge", "rotate-keys", "revoke":
		err = adminCommand(ctx, cmd, rest, stdout)
	case "version", "--version", "-v":
		fmt.Fprintf(stdout, "rampart %s\n", version)
		return 0
	case "help", "--help", "-h":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "rampart: unknown command %q\n\n%s", cmd, usage)
		return 2
	}
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	var ue usageError
	if errors.As(err, &ue) {
		fmt.Fprintf(stderr, "rampart %s: %v\n", cmd, err)
		return 2
	}
	if err != nil {
		fmt.Fprintf(stderr, "rampart %s: %v\n", cmd, err)
		return 1
	}
	return 0
}

type usageError struct{ error }

// stringList is a repeatable string flag.
type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, ",") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }

func checkConfig(args []string, stdout, stderr io.Writer) int {
	if len(args) != 1 {
		fmt.Fprintln(stderr, "usage: rampart check-config FILE")
		return 2
	}
	cfg, err := config.Load(args[0])
	if err == nil {
		// A file alone may leave the upstream to --upstream; everything it
		// does say must be right, and it must be runnable as far as it goes.
		err = shield.Check(cfg)
	}
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	fmt.Fprintln(stdout, "ok")
	return 0
}

func runShield(ctx context.Context, args []string, stdout, stderr io.Writer, isDemo bool) error {
	name := "run"
	if isDemo {
		name = "demo"
	}
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	var listens, upstreams stringList
	fs.Var(&listens, "listen", "public address to listen on (repeatable); default 127.0.0.1:8080")
	fs.Var(&upstreams, "upstream", "origin URL (repeatable: several form a pool)")
	adminAddr := fs.String("admin", "", "admin API address (default 127.0.0.1:9901; \"off\" disables it)")
	cfgFile := fs.String("config", "", "YAML config file (flags override it)")
	tlsCert := fs.String("tls-cert", "", "TLS certificate file (PEM); the listeners then serve HTTPS")
	tlsKey := fs.String("tls-key", "", "TLS key file (PEM)")
	mode := fs.String("mode", "", "auto (detect attacks and escalate; the default), or pin the mode: normal, elevated, under_attack")
	stateDir := fs.String("state-dir", "", "directory for keys, tokens and certificates")
	originAddr := fs.String("origin", "127.0.0.1:8000", "demo only: where the demo origin listens")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usageError{err}
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Errorf("unexpected argument %q", fs.Arg(0))}
	}
	if !isDemo && (*originAddr != "127.0.0.1:8000") {
		return usageError{errors.New("--origin is only for rampart demo")}
	}

	load := func() (*config.Config, error) {
		cfg := config.Default()
		if *cfgFile != "" {
			var err error
			if cfg, err = config.Load(*cfgFile); err != nil {
				return nil, err
			}
		}
		if len(listens) > 0 {
			cfg.Listeners = cfg.Listeners[:0]
			for _, l := range listens {
				cfg.Listeners = append(cfg.Listeners, config.Listener{Address: l})
			}
		}
		if len(upstreams) > 0 {
			cfg.Upstream.Targets = append([]string(nil), upstreams...)
		}
		if *adminAddr == "off" {
			cfg.Admin.Listen = ""
		} else if *adminAddr != "" {
			cfg.Admin.Listen = *adminAddr
		}
		if *tlsCert != "" || *tlsKey != "" {
			cfg.TLS.CertFile, cfg.TLS.KeyFile = *tlsCert, *tlsKey
			for i := range cfg.Listeners {
				cfg.Listeners[i].TLS = true
			}
		}
		if *mode != "" {
			cfg.Mode = *mode
		}
		if *stateDir != "" {
			cfg.StateDir = *stateDir
		}
		if err := cfg.Validate(); err != nil {
			return nil, err
		}
		return cfg, nil
	}

	var origin *demo.Origin
	if isDemo {
		var err error
		origin, err = demo.New(demo.Options{})
		if err != nil {
			return err
		}
		ln, err := listenTCP(*originAddr)
		if err != nil {
			return fmt.Errorf("demo origin: %w", err)
		}
		go origin.Serve(ln)
		defer origin.Close()
		upstreams = stringList{"http://" + ln.Addr().String()}
	}

	cfg, err := load()
	if err != nil {
		return err
	}
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(shield.MemoryLimit(cfg))
	}
	s, err := shield.New(cfg, shield.Options{Version: version, Stderr: stderr})
	if err != nil {
		return err
	}
	if err := s.Start(); err != nil {
		return err
	}
	if isDemo {
		printDemo(stdout, s, upstreams[0])
	} else {
		for _, a := range s.Addrs() {
			fmt.Fprintf(stdout, "rampart: serving %s\n", a)
		}
	}

	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	for {
		select {
		case <-hup:
			cfg, err := load()
			if err != nil {
				s.Logger().Error("config reload refused; the running config stays", "err", err.Error())
				continue
			}
			if err := s.Reload(cfg); err != nil {
				s.Logger().Error("config reload failed; the running config stays", "err", err.Error())
			}
		case <-ctx.Done():
			sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			err := s.Shutdown(sctx)
			cancel()
			return err
		}
	}
}

func printDemo(w io.Writer, s *shield.Shield, origin string) {
	site := s.Addrs()[0]
	fmt.Fprintf(w, `rampart demo is running (Ctrl-C stops it).

  site, through rampart   %s/
  demo origin, direct     %s/   (stats: %s/__demo/stats)
`, site, origin, origin)
	if a := s.AdminURL(); a != "" {
		fmt.Fprintf(w, `  admin API status        %s/api/v1/status
  metrics                 %s/metrics
`, a, a)
	}
	fmt.Fprintf(w, `
Try: curl -i %s/news/1
     rampart-sim --target %s --origin-stats %s/__demo/stats --preset get-flood
`, site, site, origin)
}

func adminCommand(ctx context.Context, cmd string, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet(cmd, flag.ContinueOnError)
	addr := fs.String("admin", "127.0.0.1:9901", "admin API address")
	token := fs.String("token", os.Getenv("RAMPART_ADMIN_TOKEN"), "admin bearer token (default $RAMPART_ADMIN_TOKEN)")
	ttl := fs.Duration("ttl", 10*time.Minute, "block: how long")
	reason := fs.String("reason", "manual", "block: why (shown in the block list)")
	prefix := fs.String("prefix", "", "purge: host/path prefix to purge (empty: everything)")
	revokeAll := fs.Bool("revoke-all", false, "rotate-keys: drop the previous key too, so every clearance stops working now")
	// Allow the positional CIDR before the flags: rampart block 1.2.3.4 --ttl 1h
	var pos []string
	for len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		pos, args = append(pos, args[0]), args[1:]
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usageError{err}
	}
	pos = append(pos, fs.Args()...)
	c := admin.NewClient(*addr, *token)
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	switch cmd {
	case "block":
		if len(pos) != 1 {
			return usageError{errors.New("usage: rampart block CIDR [--ttl D] [--reason R]")}
		}
		b, err := c.Block(ctx, pos[0], *ttl, *reason)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "blocked %s until %s (%s)\n", b.CIDR, b.Expires.Format(time.RFC3339), b.Reason)
	case "unblock":
		if len(pos) != 1 {
			return usageError{errors.New("usage: rampart unblock CIDR")}
		}
		if err := c.Unblock(ctx, pos[0]); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "unblocked %s\n", pos[0])
	case "blocks":
		list, err := c.Blocks(ctx)
		if err != nil {
			return err
		}
		if len(list) == 0 {
			fmt.Fprintln(stdout, "no blocks")
		}
		for _, b := range list {
			fmt.Fprintf(stdout, "%-40s until %s  %s\n", b.CIDR, b.Expires.Format(time.RFC3339), b.Reason)
		}
	case "purge":
		n, err := c.Purge(ctx, *prefix)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "purged %d entries\n", n)
	case "rotate-keys":
		if err := c.RotateKeys(ctx, *revokeAll); err != nil {
			return err
		}
		if *revokeAll {
			fmt.Fprintln(stdout, "challenge keys rotated; every clearance revoked")
		} else {
			fmt.Fprintln(stdout, "challenge keys rotated; clearances signed by the previous key stay valid until they expire")
		}
	case "revoke":
		if len(pos) != 1 {
			return usageError{errors.New("usage: rampart revoke CIDR")}
		}
		if err := c.RevokePrefix(ctx, pos[0]); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "clearances of %s revoked\n", pos[0])
	}
	return nil
}

func listenTCP(addr string) (net.Listener, error) {
	return net.Listen("tcp", addr)
}
