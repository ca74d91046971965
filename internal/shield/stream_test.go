package shield

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestStreamsAndUpgrades: server-sent events reach the client before the
// origin finishes, and a WebSocket upgrade passes through the whole
// pipeline (cache, admission, proxy) both ways.
func TestStreamsAndUpgrades(t *testing.T) {
	release := make(chan struct{})
	origin := newOrigin(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/events":
			w.Header().Set("Content-Type", "text/event-stream")
			io.WriteString(w, "data: first\n\n")
			w.(http.Flusher).Flush()
			<-release
			io.WriteString(w, "data: second\n\n")
		case "/ws":
			if r.Header.Get("Upgrade") != "websocket" {
				http.Error(w, "want upgrade", 400)
				return
			}
			conn, brw, err := http.NewResponseController(w).Hijack()
			if err != nil {
				return
			}
			defer conn.Close()
			io.WriteString(conn, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
			buf := make([]byte, 5)
			if _, err := io.ReadFull(brw, buf); err == nil {
				conn.Write(append([]byte("echo:"), buf...))
			}
		default:
			io.WriteString(w, "page")
		}
	})
	s := startShield(t, testConfig(t, origin.URL, ""))
	base := s.Addrs()[0]

	req, _ := http.NewRequest(http.MethodGet, base+"/events", nil)
	req.Header.Set("User-Agent", "t")
	req.Header.Set("Accept", "text/event-stream")
	resp, err := clientFrom("127.110.0.1").Do(req)
	if err != nil {
		t.Fatal(err)
	}
	first := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(resp.Body).ReadString('\n')
		first <- line
	}()
	select {
	case line := <-first:
		if line != "data: first\n" {
			t.Fatalf("first event %q", line)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the event stream was buffered: nothing arrived while the origin kept it open")
	}
	close(release)
	resp.Body.Close()

	c, err := net.DialTimeout("tcp", strings.TrimPrefix(base, "http://"), 3*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(c, "GET /ws HTTP/1.1\r\nHost: x\r\nUser-Agent: t\r\nAccept: */*\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n")
	br := bufio.NewReader(c)
	status, err := br.ReadString('\n')
	if err != nil || !strings.Contains(status, "101") {
		t.Fatalf("upgrade answer %q %v", status, err)
	}
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		if line == "\r\n" {
			break
		}
	}
	io.WriteString(c, "hello")
	got := make([]byte, 10)
	if _, err := io.ReadFull(br, got); err != nil || string(got) != "echo:hello" {
		t.Fatalf("websocket echo %q %v", got, err)
	}
}
