package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/rampart-shield/rampart/internal/sim"
)

func TestParseFlagsErrors(t *testing.T) {
	tests := []struct {
		name     string
		args     []string
		wantErr  string
		loopback bool // the error wraps sim.ErrNotLoopback
	}{
		{"public target", []string{"--target", "http://93.184.216.34/", "--preset", "get-flood"}, "not a loopback address", true},
		{"private target", []string{"--target", "http://192.168.1.10:8080/"}, "not a loopback address", true},
		{"named target", []string{"--target", "http://example.org/"}, "no DNS lookups", true},
		{"public stats", []string{"--target", "http://127.0.0.1:8080/", "--origin-stats", "http://10.0.0.5/__demo/stats"}, "--origin-stats", true},
		{"public origin address", []string{"--origin", "--origin-addr", "0.0.0.0:8081"}, "--origin-addr", true},
		{"no target", []string{"--preset", "get-flood"}, "--target is required", false},
		{"unknown preset", []string{"--target", "http://127.0.0.1:8080/", "--preset", "ping-of-death"}, "unknown preset", false},
		{"bad layout", []string{"--target", "http://127.0.0.1:8080/", "--layout", "random"}, "unknown layout", false},
		{"bad scale", []string{"--target", "http://127.0.0.1:8080/", "--scale", "0"}, "--scale", false},
		{"stats with own origin", []string{"--origin", "--origin-stats", "http://127.0.0.1:1/__demo/stats"}, "exclude each other", false},
		{"stray argument", []string{"--target", "http://127.0.0.1:8080/", "extra"}, "unexpected arguments", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stderr bytes.Buffer
			m := NewMain(&bytes.Buffer{}, &stderr)
			err := m.ParseFlags(tt.args)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("ParseFlags(%q) = %v, want an error containing %q", tt.args, err, tt.wantErr)
			}
			if errors.Is(err, sim.ErrNotLoopback) != tt.loopback {
				t.Errorf("error %q wraps ErrNotLoopback: %v, want %v", err, !tt.loopback, tt.loopback)
			}
		})
	}
}

func TestListPresets(t *testing.T) {
	var out bytes.Buffer
	m := NewMain(&out, &bytes.Buffer{})
	if err := m.ParseFlags([]string{"--list-presets", "--scale", "2"}); err != nil {
		t.Fatal(err)
	}
	if err := m.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, p := range sim.Presets() {
		if !strings.Contains(out.String(), p.Name) {
			t.Errorf("--list-presets lacks %s", p.Name)
		}
	}
	for _, want := range []string{
		"600 addresses x 10 req/s = 6000 req/s",
		"10000 addresses x 0.1-0.3 req/s (0.2 on average) = 2000 req/s, ramp 4s, waves 8s on / 4s off",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("--scale 2 not applied (no %q):\n%s", want, out.String())
		}
	}
}

// TestRunJSONAgainstOwnOrigin runs the whole program: a short get-flood
// against its own demo origin, with --json.
func TestRunJSONAgainstOwnOrigin(t *testing.T) {
	var out, errOut bytes.Buffer
	m := NewMain(&out, &errOut)
	args := []string{"--origin", "--preset", "get-flood", "--scale", "0.02", "--duration", "1s", "--legit", "4",
		"--think-min", "20ms", "--think-max", "60ms", "--json", "--proxy-pid", fmt.Sprint(os.Getpid())}
	if err := m.ParseFlags(args); err != nil {
		t.Fatal(err)
	}
	err := m.Run(context.Background())
	if cerr := m.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatalf("Run: %v\n%s", err, errOut.String())
	}
	if !strings.Contains(errOut.String(), "demo origin listening on http://127.0.0.1:") {
		t.Errorf("origin address not printed: %q", errOut.String())
	}
	var rep map[string]any
	dec := json.NewDecoder(&out)
	if err := dec.Decode(&rep); err != nil {
		t.Fatalf("stdout is not JSON: %v\n%s", err, out.String())
	}
	if dec.More() {
		t.Error("stdout holds more than one JSON object")
	}
	for _, k := range []string{"legit_success_ratio", "legit_p50_ms", "legit_p95_ms", "legit_p99_ms", "attack_sent",
		"attack_reached_origin", "decisions", "proxy_cpu_s", "proxy_rss_bytes"} {
		if _, ok := rep[k]; !ok {
			t.Errorf("report lacks %q", k)
		}
	}
	if sent, reached := rep["attack_sent"].(float64), rep["attack_reached_origin"].(float64); sent == 0 || reached == 0 {
		t.Errorf("attack sent %v, reached %v", sent, reached)
	}
}

// TestOriginOnly serves the origin until the context ends.
func TestOriginOnly(t *testing.T) {
	var errOut bytes.Buffer
	m := NewMain(&bytes.Buffer{}, &errOut)
	if err := m.ParseFlags([]string{"--origin-only"}); err != nil {
		t.Fatal(err)
	}
	urls := make(chan string, 1)
	m.ready = func(u string) { urls <- u }
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	u := <-urls
	resp, err := http.Get(u + "/__demo/stats")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("stats: %d", resp.StatusCode)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run: %v", err)
	}
	if err := m.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
}

func TestWaitForTarget(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	if err := waitForTarget(context.Background(), "http://"+addr+"/", time.Second); err != nil {
		t.Errorf("listening target: %v", err)
	}
	ln.Close()
	if err := waitForTarget(context.Background(), "http://"+addr+"/", 300*time.Millisecond); err == nil {
		t.Error("closed target reported as ready")
	}
}
