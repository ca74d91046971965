package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

var binPath string

// TestMain builds the real rampart binary once; the tests run it as a
// separate process, the way an operator does.
func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "rampart-bin")
	if err != nil {
		panic(err)
	}
	binPath = filepath.Join(dir, "rampart")
	out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "building rampart: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func TestBinaryImportsNoTestOrSimCode(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").Output()
	if err != nil {
		t.Fatal(err)
	}
	for _, dep := range strings.Fields(string(out)) {
		switch {
		case dep == "testing", dep == "net/http/httptest",
			strings.HasSuffix(dep, "/internal/sim"), strings.Contains(dep, "/internal/sim/"):
			t.Errorf("the rampart binary imports %s", dep)
		}
	}
}

func rampart(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	cmd := exec.Command(binPath, args...)
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return stdout.String(), stderr.String(), code
}

func TestVersion(t *testing.T) {
	out, _, code := rampart(t, "version")
	if code != 0 || !strings.HasPrefix(out, "rampart ") {
		t.Fatalf("version: %q %d", out, code)
	}
}

func TestCheckConfig(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.yaml")
	os.WriteFile(good, []byte("upstream:\n  targets: [http://127.0.0.1:8000]\n"), 0o644)
	out, errOut, code := rampart(t, "check-config", good)
	if code != 0 || strings.TrimSpace(out) != "ok" {
		t.Fatalf("good config: %q %q %d", out, errOut, code)
	}
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte("hardening:\n  read_header_timeout: soon\n  max_conns_per_ip: -1\nlists:\n  deny: [300.1.1.1]\nrulez: []\n"), 0o644)
	out, errOut, code = rampart(t, "check-config", bad)
	if code != 1 || out != "" {
		t.Fatalf("bad config: exit %d, stdout %q", code, out)
	}
	lines := strings.Split(strings.TrimSpace(errOut), "\n")
	want := []*regexp.Regexp{
		regexp.MustCompile(`^` + regexp.QuoteMeta(bad) + `:2:24: hardening.read_header_timeout: bad duration "soon"`),
		regexp.MustCompile(`^` + regexp.QuoteMeta(bad) + `:3:21: hardening.max_conns_per_ip: must be between`),
		regexp.MustCompile(`^` + regexp.QuoteMeta(bad) + `:5:10: lists.deny\[0\]: bad CIDR`),
		regexp.MustCompile(`^` + regexp.QuoteMeta(bad) + `:6:1: rulez: unknown key "rulez" \(did you mean "rules"\?\)`),
	}
	if len(lines) != len(want) {
		t.Fatalf("got %d errors, want %d:\n%s", len(lines), len(want), errOut)
	}
	for i, re := range want {
		if !re.MatchString(lines[i]) {
			t.Errorf("error %d = %q, want %s", i, lines[i], re)
		}
	}
	_, errOut, code = rampart(t, "check-config", filepath.Join(dir, "missing.yaml"))
	if code != 1 || !strings.Contains(errOut, "no such file") {
		t.Fatalf("missing file: %d %q", code, errOut)
	}
	// The shipped example must pass.
	if out, errOut, code := rampart(t, "check-config", filepath.Join("..", "..", "examples", "rampart.yaml")); code != 0 {
		t.Fatalf("examples/rampart.yaml: %q %q", out, errOut)
	}
}

// process is a running rampart whose stdout and stderr are collected.
type process struct {
	cmd *exec.Cmd
	mu  sync.Mutex
	out strings.Builder
	err strings.Builder
}

func (p *process) stdout() string { p.mu.Lock(); defer p.mu.Unlock(); return p.out.String() }
func (p *process) stderr() string { p.mu.Lock(); defer p.mu.Unlock(); return p.err.String() }

func start(t *testing.T, args ...string) *process {
	t.Helper()
	p := &process{cmd: exec.Command(binPath, args...)}
	so, _ := p.cmd.StdoutPipe()
	se, _ := p.cmd.StderrPipe()
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	for _, pipe := range []struct {
		r io.Reader
		b *strings.Builder
	}{{so, &p.out}, {se, &p.err}} {
		go func() {
			s := bufio.NewScanner(pipe.r)
			for s.Scan() {
				p.mu.Lock()
				pipe.b.WriteString(s.Text() + "\n")
				p.mu.Unlock()
			}
		}()
	}
	t.Cleanup(func() {
		p.cmd.Process.Kill()
		p.cmd.Wait()
	})
	return p
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func httpGet(url string) (int, string, error) {
	c := &http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), nil
}

// TestRunReloadAndDrain runs the binary with a config file, reloads a good
// and a bad file with SIGHUP, and stops it with SIGTERM while a slow request
// is in flight: the request completes.
func TestRunReloadAndDrain(t *testing.T) {
	release := make(chan struct{})
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			<-release
		}
		io.WriteString(w, "origin:"+r.URL.Path)
	}))
	defer origin.Close()
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "rampart.yaml")
	listen, adminAddr := freePort(t), freePort(t)
	write := func(rules string) {
		os.WriteFile(cfgPath, []byte(fmt.Sprintf("listeners: [{address: %q}]\nadmin: {listen: %q}\nupstream: {targets: [%q], health_check: {path: /healthz}}\nstate_dir: %q\n%s", listen, adminAddr, origin.URL, dir, rules)), 0o644)
	}
	write("")
	p := start(t, "run", "--config", cfgPath)
	base := "http://" + listen
	waitFor(t, "rampart to serve", func() bool {
		code, _, err := httpGet(base + "/x")
		return err == nil && code == 200
	})
	// A good reload: a rule appears.
	write("rules: [{name: no-x, match: {paths: [/x]}, action: limit}]\n")
	p.cmd.Process.Signal(syscall.SIGHUP)
	waitFor(t, "the reloaded rule", func() bool {
		code, _, _ := httpGet(base + "/x")
		return code == 429
	})
	// A bad reload: reported, the running config stays.
	os.WriteFile(cfgPath, []byte("rules: [{name: broken, action: explode}]\n"), 0o644)
	p.cmd.Process.Signal(syscall.SIGHUP)
	waitFor(t, "the refused reload to be logged", func() bool {
		return strings.Contains(p.stderr(), "config reload refused") && strings.Contains(p.stderr(), `unknown action \"explode\"`)
	})
	if code, _, _ := httpGet(base + "/x"); code != 429 {
		t.Fatalf("after a bad reload the running rule is gone: %d", code)
	}
	// SIGTERM with a request in flight: it completes, then the process exits.
	done := make(chan string, 1)
	go func() {
		_, body, err := httpGet(base + "/slow")
		if err != nil {
			body = err.Error()
		}
		done <- body
	}()
	waitFor(t, "the slow request to reach the origin", func() bool {
		_, body, _ := httpGet("http://" + adminAddr + "/metrics")
		return strings.Contains(body, `rampart_upstream_requests_total`) && !strings.Contains(body, "rampart_admission_in_flight 0")
	})
	p.cmd.Process.Signal(syscall.SIGTERM)
	time.AfterFunc(300*time.Millisecond, func() { close(release) })
	if body := <-done; body != "origin:/slow" {
		t.Fatalf("the in-flight request was cut by shutdown: %q", body)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	exited := make(chan error, 1)
	go func() { exited <- p.cmd.Wait() }()
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("exit after SIGTERM: %v\n%s", err, p.stderr())
		}
	case <-ctx.Done():
		t.Fatal("rampart did not exit after SIGTERM")
	}
}

func TestDemo(t *testing.T) {
	listen, adminAddr, originAddr := freePort(t), freePort(t), freePort(t)
	p := start(t, "demo", "--listen", listen, "--admin", adminAddr, "--origin", originAddr, "--state-dir", t.TempDir())
	waitFor(t, "the demo banner", func() bool { return strings.Contains(p.stdout(), "rampart demo is running") })
	for _, want := range []string{"http://" + listen + "/", "http://" + originAddr + "/", "http://" + adminAddr + "/api/v1/status", "http://" + adminAddr + "/metrics"} {
		if !strings.Contains(p.stdout(), want) {
			t.Errorf("banner lacks %s:\n%s", want, p.stdout())
		}
	}
	code, body, err := httpGet("http://" + listen + "/news/1")
	if err != nil || code != 200 || !strings.Contains(body, "<html") {
		t.Fatalf("demo site through rampart: %d %v %.100q", code, err, body)
	}
	code, body, err = httpGet("http://" + adminAddr + "/api/v1/status")
	if err != nil || code != 200 || !strings.Contains(body, `"mode": "normal"`) || !strings.Contains(body, `"mode_auto": true`) {
		t.Fatalf("status: %d %v %q", code, err, body)
	}

	// The admin CLI against the running process.
	adm := []string{"--admin", adminAddr}
	if out, errOut, code := rampart(t, append([]string{"block", "127.0.0.9", "--ttl", "1h", "--reason", "cli test"}, adm...)...); code != 0 || !strings.Contains(out, "blocked 127.0.0.9/32") {
		t.Fatalf("block: %q %q %d", out, errOut, code)
	}
	if out, _, code := rampart(t, append([]string{"blocks"}, adm...)...); code != 0 || !strings.Contains(out, "127.0.0.9/32") || !strings.Contains(out, "cli test") {
		t.Fatalf("blocks: %q %d", out, code)
	}
	if out, _, code := rampart(t, append([]string{"unblock", "127.0.0.9"}, adm...)...); code != 0 || !strings.Contains(out, "unblocked") {
		t.Fatalf("unblock: %q %d", out, code)
	}
	if out, _, code := rampart(t, append([]string{"blocks"}, adm...)...); code != 0 || !strings.Contains(out, "no blocks") {
		t.Fatalf("blocks after unblock: %q %d", out, code)
	}
	if _, errOut, code := rampart(t, append([]string{"block", "not-an-address"}, adm...)...); code != 1 || !strings.Contains(errOut, "bad cidr") {
		t.Fatalf("bad block: %q %d", errOut, code)
	}
	if out, _, code := rampart(t, append([]string{"purge", "--prefix", "127.0.0.1"}, adm...)...); code != 0 || !strings.Contains(out, "purged") {
		t.Fatalf("purge: %q %d", out, code)
	}
	if out, _, code := rampart(t, append([]string{"rotate-keys", "--revoke-all"}, adm...)...); code != 0 || !strings.Contains(out, "every clearance revoked") {
		t.Fatalf("rotate-keys: %q %d", out, code)
	}
	if out, _, code := rampart(t, append([]string{"revoke", "203.0.113.0/24"}, adm...)...); code != 0 || !strings.Contains(out, "revoked") {
		t.Fatalf("revoke: %q %d", out, code)
	}
}
