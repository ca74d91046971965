package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/rampart-shield/rampart/internal/demo"
	"github.com/rampart-shield/rampart/internal/sim"
)

// Main is the rampart-sim program: ParseFlags, then Run, then Close. It can
// run whole inside a test.
type Main struct {
	Stdout, Stderr io.Writer

	cfg         sim.Config
	layout      string
	jsonOut     bool
	listPresets bool
	startOrigin bool
	originOnly  bool
	originAddr  string
	originOpts  demo.Options
	waitTarget  time.Duration
	legit       int
	verbose     bool
	solve       bool

	origin     *demo.Origin
	originURL  string
	originDone chan error
	// ready, if set, is called with the origin's URL once it listens.
	ready func(url string)
}

// NewMain returns a Main writing to stdout and stderr.
func NewMain(stdout, stderr io.Writer) *Main {
	return &Main{Stdout: stdout, Stderr: stderr}
}

// ParseFlags parses the command line. It validates the target and the stats
// URL (loopback only) so that a wrong address fails before anything runs.
func (m *Main) ParseFlags(args []string) error {
	fs := flag.NewFlagSet("rampart-sim", flag.ContinueOnError)
	fs.SetOutput(m.Stderr)
	c := &m.cfg
	fs.StringVar(&c.Target, "target", "", "URL to attack: http(s)://127.x.y.z:port, http://[::1]:port or http://localhost:port (loopback only)")
	fs.StringVar(&c.Preset, "preset", "none", "attack preset (see --list-presets)")
	fs.DurationVar(&c.Duration, "duration", 0, "how long to generate traffic (default: the preset's, 30s; at most 1h)")
	fs.IntVar(&m.legit, "legit", sim.DefaultLegit, "number of legitimate visitors (0: none)")
	fs.BoolVar(&m.jsonOut, "json", false, "print the report as one JSON object instead of the summary")
	fs.Float64Var(&c.Scale, "scale", 1, "multiply the preset's attacking addresses (0 < scale <= 100)")
	fs.StringVar(&m.layout, "layout", "scattered", "source addresses: scattered (roles mixed across many /24s and /16s) or clustered (one /16 per role)")
	fs.Int64Var(&c.MaxRequests, "max-requests", sim.DefaultMaxRequests, "stop after this many requests in all")
	fs.DurationVar(&c.Grace, "grace", sim.DefaultGrace, "longest wind-down after --duration: the hard wall-clock cap is duration+grace")
	fs.StringVar(&c.OriginStats, "origin-stats", "", "the demo origin's /__demo/stats URL (loopback only), to count what reached it")
	fs.BoolVar(&m.startOrigin, "origin", false, "start a demo origin in this process (without --target, attack it directly)")
	fs.BoolVar(&m.originOnly, "origin-only", false, "only serve the demo origin until interrupted")
	fs.StringVar(&m.originAddr, "origin-addr", "127.0.0.1:0", "where --origin and --origin-only listen (loopback only)")
	fs.IntVar(&m.originOpts.Workers, "origin-workers", demo.DefaultWorkers, "demo origin workers")
	fs.IntVar(&m.originOpts.Queue, "origin-queue", demo.DefaultQueue, "demo origin queue length (-1: none)")
	fs.DurationVar(&m.originOpts.PageCost, "origin-page-cost", demo.DefaultPageCost, "worker time per page")
	fs.DurationVar(&m.originOpts.SearchCost, "origin-search-cost", demo.DefaultSearchCost, "worker time per search")
	fs.IntVar(&c.ProxyPID, "proxy-pid", 0, "the shield's process id, to report its CPU time and RSS")
	fs.Float64Var(&c.NoJSShare, "nojs-share", sim.DefaultNoJSShare, "share of legitimate visitors without JavaScript (0 to 1)")
	fs.DurationVar(&c.ThinkMin, "think-min", sim.DefaultThinkMin, "shortest think time between a visitor's pages")
	fs.DurationVar(&c.ThinkMax, "think-max", sim.DefaultThinkMax, "longest think time between a visitor's pages")
	fs.DurationVar(&m.waitTarget, "wait", 0, "wait up to this long for the target to accept connections before starting")
	fs.Uint64Var(&c.Seed, "seed", 1, "seed for addresses and random choices")
	fs.BoolVar(&m.listPresets, "list-presets", false, "print the presets with their parameters (at --scale) and exit")
	fs.BoolVar(&m.verbose, "v", false, "log the simulator's own errors to stderr")
	fs.BoolVar(&m.solve, "solve", true, "JS-capable visitors and the browser botnet solve rampart's challenge in process (false: they fail like no-JS visitors)")
	fs.Usage = func() {
		fmt.Fprintf(m.Stderr, "Usage: rampart-sim --target URL --preset NAME [--duration D] [--legit N] [--json] [flags]\n"+
			"       rampart-sim --origin [--preset NAME] ...   attack an in-process demo origin\n"+
			"       rampart-sim --origin-only --origin-addr 127.0.0.1:8081\n"+
			"       rampart-sim --list-presets [--scale F]\n\nFlags:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if m.listPresets {
		return nil
	}
	var err error
	if c.Layout, err = sim.ParseLayout(m.layout); err != nil {
		return err
	}
	if m.legit == 0 {
		c.Legit = -1
	} else {
		c.Legit = m.legit
	}
	if c.NoJSShare == 0 {
		c.NoJSShare = -1 // an explicit 0 means none
	}
	if c.Scale <= 0 || c.Scale > 100 {
		return fmt.Errorf("--scale %v out of range (0, 100]", c.Scale)
	}
	if m.startOrigin || m.originOnly {
		host, _, err := net.SplitHostPort(m.originAddr)
		if err != nil {
			return fmt.Errorf("--origin-addr: %w", err)
		}
		if _, err := sim.ParseTarget("http://" + net.JoinHostPort(host, "80")); err != nil {
			return fmt.Errorf("--origin-addr: %w", err)
		}
		if m.originOpts.Queue == 0 {
			m.originOpts.Queue = -1
		}
	}
	if m.originOnly {
		return nil
	}
	if c.Target == "" && !m.startOrigin {
		return errors.New("--target is required (or --origin to attack an in-process demo origin)")
	}
	if c.Target != "" {
		if _, err := sim.ParseTarget(c.Target); err != nil {
			return fmt.Errorf("--target: %w", err)
		}
	}
	if c.OriginStats != "" {
		if m.startOrigin {
			return errors.New("--origin-stats and --origin exclude each other: --origin reads its own counters")
		}
		if _, err := sim.ParseTarget(c.OriginStats); err != nil {
			return fmt.Errorf("--origin-stats: %w", err)
		}
	}
	if _, err := sim.LookupPreset(c.Preset, c.Scale); err != nil {
		return err
	}
	if m.solve {
		c.Solver = sim.ChallengeSolver
	}
	if m.verbose {
		c.Logger = slog.New(slog.NewTextHandler(m.Stderr, nil))
	}
	return nil
}

// Run does what the flags ask until it is done or ctx ends.
func (m *Main) Run(ctx context.Context) error {
	if m.listPresets {
		_, err := io.WriteString(m.Stdout, sim.FormatPresets(m.cfg.Scale))
		return err
	}
	if m.startOrigin || m.originOnly {
		if err := m.serveOrigin(); err != nil {
			return err
		}
	}
	if m.originOnly {
		fmt.Fprintln(m.Stderr, "rampart-sim: serving the demo origin until interrupted")
		select {
		case <-ctx.Done():
			return nil
		case err := <-m.originDone:
			return err
		}
	}
	cfg := m.cfg
	if m.origin != nil {
		cfg.Origin = m.origin
		if cfg.Target == "" {
			cfg.Target = m.originURL + "/"
		}
	}
	if m.waitTarget > 0 {
		if err := waitForTarget(ctx, cfg.Target, m.waitTarget); err != nil {
			return err
		}
	}
	rep, err := sim.Run(ctx, cfg)
	if err != nil && rep.Preset == "" {
		return err
	}
	if m.jsonOut {
		enc := json.NewEncoder(m.Stdout)
		if werr := enc.Encode(rep); werr != nil {
			return errors.Join(err, werr)
		}
	} else {
		io.WriteString(m.Stdout, rep.Summary())
	}
	return err
}

// serveOrigin starts the demo origin and says where it listens.
func (m *Main) serveOrigin() error {
	o, err := demo.New(m.originOpts)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", m.originAddr)
	if err != nil {
		return fmt.Errorf("demo origin: %w", err)
	}
	m.origin, m.originURL, m.originDone = o, "http://"+ln.Addr().String(), make(chan error, 1)
	go func() { m.originDone <- o.Serve(ln) }()
	fmt.Fprintf(m.Stderr, "rampart-sim: demo origin listening on %s (stats: %s/__demo/stats, %d workers, queue %d)\n",
		m.originURL, m.originURL, o.Options().Workers, o.Options().Queue)
	if m.ready != nil {
		m.ready(m.originURL)
	}
	return nil
}

// waitForTarget polls the target with TCP connections (no HTTP) until one
// succeeds, for at most d.
func waitForTarget(ctx context.Context, target string, d time.Duration) error {
	t, err := sim.ParseTarget(target)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	var dl net.Dialer
	for {
		c, err := dl.DialContext(ctx, "tcp", t.AddrPort.String())
		if err == nil {
			c.Close()
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("target %s did not accept connections within %v: %w", t.AddrPort, d, err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Close stops the demo origin, if one was started.
func (m *Main) Close() error {
	if m.origin == nil {
		return nil
	}
	m.origin.Close()
	if err := <-m.originDone; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	m.origin = nil
	return nil
}
