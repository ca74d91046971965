package cache

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// BenchmarkHitVsNginx serves the same cached 2 KiB page over loopback
// HTTP/1.1 keep-alive from rampart's cache (an http.Server with the cache
// middleware in front of a reverse proxy) and from nginx's proxy_cache in
// front of the same origin, in the same run, with the same Go client. The
// ratio of the two ns/op is the figure for docs/benchmarks.md. The client
// shares the machine with the server, so absolute numbers understate both.
// It is skipped when nginx is not installed.
func BenchmarkHitVsNginx(b *testing.B) {
	nginx, err := exec.LookPath("nginx")
	if err != nil {
		b.Skip("nginx not installed")
	}
	osrv := httptest.NewServer(pageOrigin())
	defer osrv.Close()

	c := mustNew(b, Options{})
	rsrv := httptest.NewServer(c.Middleware(proxyTo(osrv.Listener.Addr().String(), 5*time.Second)))
	defer rsrv.Close()

	nginxURL := startNginx(b, nginx, osrv.Listener.Addr().String())

	for _, tt := range []struct{ name, url string }{{"rampart", rsrv.URL}, {"nginx", nginxURL}} {
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
		})
	}
}

// startNginx runs nginx with proxy_cache in front of origin on a free
// loopback port, and stops it when b ends.
func startNginx(b *testing.B, bin, origin string) string {
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
				return url
			}
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(filepath.Join(dir, "error.log"))
			b.Fatalf("nginx did not come up on %s: %v\n%s", addr, err, log)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
