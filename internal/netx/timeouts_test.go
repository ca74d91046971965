package netx

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestSlowloris(t *testing.T) {
	tests := []struct {
		name  string
		sends string
	}{
		{"partial request line", "GET / HT"},
		{"partial header", "GET / HTTP/1.1\r\nHost: x\r\nX-A: "},
		{"silent connection", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ts := startServer(t, Options{ReadHeaderTimeout: 150 * time.Millisecond}, okHandler())
			c := dialFrom(t, "127.0.0.1", ts.addr)
			// Dribble: one byte at a time, slower than the header timeout allows in total.
			go func() {
				for i := 0; i < len(tc.sends); i++ {
					if _, err := c.Write([]byte{tc.sends[i]}); err != nil {
						return
					}
					time.Sleep(10 * time.Millisecond)
				}
			}()
			if !closedByPeer(c, 5*time.Second) {
				t.Fatal("connection still open after the header timeout")
			}
			waitFor(t, "header-timeout counted", 2*time.Second, func() bool { return ts.s.Stats().ClosedHeaderTimeout == 1 })
		})
	}
}

func TestIdleTimeout(t *testing.T) {
	ts := startServer(t, Options{IdleTimeout: 150 * time.Millisecond}, okHandler())
	c := dialFrom(t, "127.0.0.1", ts.addr)
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	br := bufio.NewReader(c)
	c.SetReadDeadline(time.Now().Add(3 * time.Second))
	if resp := readResponse(t, br, "GET"); resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	if !closedByPeer(c, 5*time.Second) {
		t.Fatal("idle connection not closed")
	}
	waitFor(t, "idle counted", 2*time.Second, func() bool { return ts.s.Stats().ClosedIdle == 1 })
	if n := ts.s.Stats().ClosedHeaderTimeout; n != 0 {
		t.Fatalf("idle close counted as header timeout (%d)", n)
	}
}

// bodyHandler reads the body and answers as the lead's proxy would.
func bodyHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, err := io.Copy(io.Discard, r.Body)
		switch {
		case IsBodyTooSlow(err):
			WriteMitigated(w, r, http.StatusRequestTimeout, ReasonBodyTooSlow, true)
		case IsBodyTooLarge(err):
			WriteMitigated(w, r, http.StatusRequestEntityTooLarge, ReasonBodyTooLarge, true)
		case err != nil:
			http.Error(w, err.Error(), 500)
		default:
			fmt.Fprintf(w, "%d", n)
		}
	})
}

func TestSlowPOST(t *testing.T) {
	ts := startServer(t, Options{MinBodyRate: 1000, BodyRateGrace: 200 * time.Millisecond}, bodyHandler())
	c := dialFrom(t, "127.0.0.1", ts.addr)
	io.WriteString(c, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n")
	stop := make(chan struct{})
	defer close(stop)
	go func() { // 10 bytes every 20 ms: 500 B/s, half the minimum
		tk := time.NewTicker(20 * time.Millisecond)
		defer tk.Stop()
		for i := 0; i < 500; i++ {
			select {
			case <-stop:
				return
			case <-tk.C:
			}
			if _, err := io.WriteString(c, "0123456789"); err != nil {
				return
			}
		}
	}()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	resp := readResponse(t, bufio.NewReader(c), "POST")
	if resp.StatusCode != 408 || resp.Header.Get(MitigatedHeader) != ReasonBodyTooSlow {
		t.Fatalf("got %d %q, want 408 body-too-slow", resp.StatusCode, resp.Header.Get(MitigatedHeader))
	}
	if n := ts.s.Stats().ClosedBodyTooSlow; n != 1 {
		t.Fatalf("ClosedBodyTooSlow = %d", n)
	}
}

func TestSteadyPOSTPasses(t *testing.T) {
	ts := startServer(t, Options{MinBodyRate: 1000, BodyRateGrace: 300 * time.Millisecond}, bodyHandler())
	c := dialFrom(t, "127.0.0.1", ts.addr)
	io.WriteString(c, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3000\r\n\r\n")
	go func() { // 100 bytes every 20 ms: 5000 B/s, five times the minimum
		for i := 0; i < 30; i++ {
			if _, err := io.WriteString(c, strings.Repeat("x", 100)); err != nil {
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
	}()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	resp := readResponse(t, bufio.NewReader(c), "POST")
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || string(body) != "3000" {
		t.Fatalf("got %d %q", resp.StatusCode, body)
	}
}

func TestSlowReadCutSSEKept(t *testing.T) {
	var bigErr atomic.Value
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/big":
			chunk := make([]byte, 64<<10)
			for i := 0; i < 1024; i++ { // up to 64 MiB
				if _, err := w.Write(chunk); err != nil {
					bigErr.Store(err)
					return
				}
			}
		case "/sse":
			w.Header().Set("Content-Type", "text/event-stream")
			for i := 0; i < 12; i++ {
				fmt.Fprintf(w, "data: %d\n\n", i)
				w.(http.Flusher).Flush()
				time.Sleep(50 * time.Millisecond)
			}
		}
	})
	ts := startServer(t, Options{WriteTimeout: 200 * time.Millisecond}, h)

	// A reader that never reads.
	d := net.Dialer{Control: nil}
	raw, err := d.Dial("tcp", ts.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	raw.(*net.TCPConn).SetReadBuffer(4096)
	io.WriteString(raw, "GET /big HTTP/1.1\r\nHost: x\r\n\r\n")

	// A slow but steady SSE reader, running three times longer than WriteTimeout.
	resp, err := http.Get("http://" + ts.addr + "/sse")
	if err != nil {
		t.Fatal(err)
	}
	events := 0
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if strings.HasPrefix(sc.Text(), "data: ") {
			events++
		}
	}
	resp.Body.Close()
	if events != 12 {
		t.Fatalf("SSE reader got %d events, want 12", events)
	}
	waitFor(t, "stalled reader cut", 10*time.Second, func() bool { return ts.s.Stats().ClosedWriteTimeout == 1 })
	waitFor(t, "handler write failed", 5*time.Second, func() bool { return bigErr.Load() != nil })
}

func TestSizeLimits(t *testing.T) {
	o := Options{MaxHeaderBytes: 2048, MaxHeaderCount: 10, MaxBodyBytes: 1000}
	many := strings.Repeat("X-A: b\r\n", 11)
	tests := []struct {
		name, req  string
		status     int
		mitigation string
	}{
		{"header bytes", "GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + strings.Repeat("a", 3000) + "\r\n\r\n", 431, ReasonBadRequest},
		{"header count", "GET / HTTP/1.1\r\nHost: x\r\n" + many + "\r\n", 431, ReasonBadRequest},
		{"content-length over max", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n", 413, ReasonBodyTooLarge},
		{"chunked over max", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n7d0\r\n" + strings.Repeat("z", 2000) + "\r\n0\r\n\r\n", 413, ReasonBodyTooLarge},
		{"within limits", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n0123456789", 200, ""},
	}
	ts := startServer(t, o, bodyHandler())
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := dialFrom(t, "127.0.0.1", ts.addr)
			io.WriteString(c, tc.req)
			c.SetReadDeadline(time.Now().Add(5 * time.Second))
			resp := readResponse(t, bufio.NewReader(c), "POST")
			if resp.StatusCode != tc.status || resp.Header.Get(MitigatedHeader) != tc.mitigation {
				t.Fatalf("got %d %q, want %d %q", resp.StatusCode, resp.Header.Get(MitigatedHeader), tc.status, tc.mitigation)
			}
		})
	}
	st := ts.s.Stats()
	if st.BadRequests["header-too-large"] != 1 || st.BadRequests["too-many-headers"] != 1 || st.BodyTooLarge != 2 {
		t.Fatalf("stats: bad=%v large=%d", st.BadRequests, st.BodyTooLarge)
	}
}
