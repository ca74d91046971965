package shield

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestSlowBodyNeverReachesOrigin: a request body trickled slower than the
// minimum rate is cut with 408 by the shield before the origin sees any of
// it, while an ordinary POST arrives whole.
func TestSlowBodyNeverReachesOrigin(t *testing.T) {
	var posts atomic.Int64
	var got atomic.Value
	origin := newOrigin(t, func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			posts.Add(1)
			b, _ := io.ReadAll(r.Body)
			got.Store(string(b))
		}
		io.WriteString(w, "ok")
	})
	s := startShield(t, testConfig(t, origin.URL, "hardening: {min_body_rate: 1KiB, body_rate_grace: 300ms}\n"))
	addr := strings.TrimPrefix(s.Addrs()[0], "http://")

	// The slow poster announces 100 kB and sends 10 bytes a second.
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(c, "POST /api/comments HTTP/1.1\r\nHost: x\r\nUser-Agent: t\r\nAccept: */*\r\nContent-Type: text/plain\r\nContent-Length: 100000\r\n\r\n")
	done := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(c).ReadString('\n')
		done <- line
	}()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	var status string
loop:
	for {
		select {
		case status = <-done:
			break loop
		case <-tick.C:
			c.Write([]byte("x"))
		}
	}
	if !strings.Contains(status, "408") {
		t.Fatalf("slow body answered %q, want 408", status)
	}
	if n := posts.Load(); n != 0 {
		t.Fatalf("the origin saw %d requests of the slow poster", n)
	}

	// An ordinary POST arrives whole.
	req, _ := http.NewRequest(http.MethodPost, s.Addrs()[0]+"/api/comments", strings.NewReader("a comment"))
	req.Header.Set("User-Agent", "t")
	req.Header.Set("Accept", "*/*")
	resp, err := clientFrom("127.120.0.1").Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || posts.Load() != 1 || got.Load() != "a comment" {
		t.Fatalf("ordinary POST: %d, origin saw %d posts, body %q", resp.StatusCode, posts.Load(), got.Load())
	}
	if s.bodies.reserved.Load() != 0 {
		t.Fatalf("body buffer budget leaked: %d bytes still reserved", s.bodies.reserved.Load())
	}
}
