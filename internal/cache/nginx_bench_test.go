package cache

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// benchServerEnv makes the test binary serve rampart's cache in front of the
// origin it names, as a separate process (see TestMain).
const benchServerEnv = "RAMPART_CACHE_BENCH_ORIGIN"

func TestMain(m *testing.M) {
	if origin := os.Getenv(benchServerEnv); origin != "" {
		serveForBench(origin)
		return
	}
	os.Exit(m.Run())
}

// serveForBench serves the cache middleware in front of a reverse proxy to
// origin on a free loopback port, prints the address, and exits when its
// standard input closes (its parent is gone).
func serveForBench(origin string) {
	c, err := New(Options{})
	if err != nil {
		panic(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	fmt.Println(ln.Addr().String())
	go (&http.Server{Handler: c.Middleware(proxyTo(origin, 5*time.Second))}).Serve(ln)
	io.Copy(io.Discard, os.Stdin)
}

// BenchmarkHitVsNginx serves the same cached 2 KiB page over loopback
// HTTP/1.1 keep-alive from rampart's cache (an http.Server with the cache
// middleware in front of a reverse proxy, in a child process of its own)
// and from nginx's proxy_cache (two worker processes) in front of the same
// origin, in the same run, with the same Go client. The ratio of the two
// ns/op is the figure for docs/benchmarks.md; run it with -count and
// compare medians, as the sub-benchmarks do not interleave. The client
// shares the machine with the servers, so absolute numbers understate both.
// It is skipped when nginx is not installed.
func BenchmarkHitVsNginx(b *testing.B) {
	nginx, err := exec.LookPath("nginx")
	if err != nil {
		b.Skip("nginx not installed")
	}
	osrv := httptest.NewServer(pageOrigin())
	defer osrv.Close()

	rampartURL, rampartPID := startRampart(b, osrv.Listener.Addr().String())
	nginxURL, nginxPID := startNginx(b, nginx, osrv.Listener.Addr().String())

	for _, tt := range []struct {
		name, url string
		pid       int
	}{{"rampart", rampartURL, rampartPID}, {"nginx", nginxURL, nginxPID}} {
		b.Run(tt.name, func(b *testing.B) {
			client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256, DisableCompression: true}}
			defer client.CloseIdleConnections()
			url := tt.url + "/news/42"
			for range 3 { // warm: miss, then hits
				resp, err := client.Get(url)
				if err != nil {
					b.Fatal(err)
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
			b.SetParallelism(16)
			b.SetBytes(int64(len(page2K)))
			cpu0 := cpuNanos(tt.pid)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					resp, err := client.Get(url)
					if err != nil {
						b.Error(err)
						return
					}
					n, _ := io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != 200 || n != int64(len(page2K)) {
						b.Errorf("status %d, %d bytes", resp.StatusCode, n)
						return
					}
				}
			})
			b.StopTimer()
			if cpu0 >= 0 {
				b.ReportMetric(float64(cpuNanos(tt.pid)-cpu0)/float64(b.N), "server-cpu-ns/op")
			}
		})
	}
}

// cpuNanos returns the CPU time, in nanoseconds, that the process pid and
// its child processes (nginx's workers) have run, from Linux's
// /proc/PID/task/*/schedstat; -1 where that is not available. On a shared
// machine it measures the server's cost better than wall time does.
func cpuNanos(pid int) int64 {
	pids := []int{pid}
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	for _, p := range stats {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		// Fields after the command name, which ends with the last ')':
		// state, ppid, ...
		f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
		if len(f) > 1 && f[1] == strconv.Itoa(pid) {
			var child int
			fmt.Sscan(filepath.Base(filepath.Dir(p)), &child)
			pids = append(pids, child)
		}
	}
	var total int64
	found := false
	for _, p := range pids {
		tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/schedstat", p))
		for _, t := range tasks {
			b, err := os.ReadFile(t)
			if err != nil {
				continue
			}
			var ns int64
			if _, err := fmt.Sscan(string(b), &ns); err == nil {
				total += ns
				found = true
			}
		}
	}
	if !found {
		return -1
	}
	return total
}

// startRampart runs this test binary as a rampart cache server in front of
// origin and stops it when b ends. It returns the URL and the process id.
func startRampart(b *testing.B, origin string) (string, int) {
	b.Helper()
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), benchServerEnv+"="+origin, "GOMAXPROCS=2")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatalf("starting the rampart server: %v", err)
	}
	b.Cleanup(func() {
		stdin.Close()
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			cmd.Process.Kill()
			<-done
		}
	})
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		b.Fatalf("rampart server address: %v", err)
	}
	return "http://" + strings.TrimSpace(line), cmd.Process.Pid
}

// startNginx runs nginx with proxy_cache in front of origin on a free
// loopback port, and stops it when b ends. It returns the URL and the master
// process id.
func startNginx(b *testing.B, bin, origin string) (string, int) {
	b.Helper()
	dir := b.TempDir()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	conf := fmt.Sprintf(`
daemon off;
user root;
worker_processes 2;
error_log %[1]s/error.log warn;
pid %[1]s/nginx.pid;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path %[1]s/body;
  proxy_temp_path %[1]s/proxy;
  fastcgi_temp_path %[1]s/fastcgi;
  uwsgi_temp_path %[1]s/uwsgi;
  scgi_temp_path %[1]s/scgi;
  proxy_cache_path %[1]s/cache levels=1:2 keys_zone=rampart_bench:10m max_size=256m inactive=60m use_temp_path=off;
  keepalive_requests 1000000;
  upstream origin { server %[2]s; keepalive 16; }
  server {
    listen %[3]s;
    location / {
      proxy_pass http://origin;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_cache rampart_bench;
      proxy_cache_valid 200 1h;
      proxy_cache_lock on;
      add_header X-Cache $upstream_cache_status;
    }
  }
}
`, dir, origin, addr)
	path := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		b.Fatal(err)
	}
	cmd := exec.Command(bin, "-p", dir, "-c", path)
	cmd.Stderr = io.Discard
	if err := cmd.Start(); err != nil {
		b.Fatalf("starting nginx: %v", err)
	}
	b.Cleanup(func() {
		cmd.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			cmd.Process.Kill()
			<-done
		}
	})
	url := "http://" + addr
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Get(url + "/news/42")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return url, cmd.Process.Pid
			}
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(filepath.Join(dir, "error.log"))
			b.Fatalf("nginx did not come up on %s: %v\n%s", addr, err, log)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
