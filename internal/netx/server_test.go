package netx

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestServeHTTP1(t *testing.T) {
	var sawInfo *ConnInfo
	ts := startServer(t, Options{}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sawInfo = ConnInfoFrom(r.Context())
		fmt.Fprintf(w, "hello %s", r.RemoteAddr)
	}))
	resp, err := http.Get("http://" + ts.addr + "/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.HasPrefix(string(body), "hello 127.0.0.1:") {
		t.Fatalf("got %d %q", resp.StatusCode, body)
	}
	if sawInfo == nil || sawInfo.Proto != "HTTP/1.1" || sawInfo.TLS != nil || !sawInfo.Peer.Addr().IsLoopback() {
		t.Fatalf("ConnInfo = %+v", sawInfo)
	}
}

func TestPipelinedOrdinaryRequests(t *testing.T) {
	ts := startServer(t, Options{}, okHandler())
	c := dialFrom(t, "127.0.0.1", ts.addr)
	reqs := "GET /a HTTP/1.1\r\nHost: x\r\n\r\n" +
		"POST /b HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello" +
		"POST /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;ext=1\r\nde\r\n0\r\nTrailer: 1\r\n\r\n" +
		"GET /d HTTP/1.0\r\n\r\n"
	if _, err := io.WriteString(c, reqs); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	for i, want := range []string{"0", "5", "5", "0"} {
		resp := readResponse(t, br, "GET")
		if resp.StatusCode != 200 || resp.Header.Get("X-Body") != want || resp.Header.Get(MitigatedHeader) != "" {
			t.Fatalf("response %d: %d body=%s mitigated=%q", i, resp.StatusCode, resp.Header.Get("X-Body"), resp.Header.Get(MitigatedHeader))
		}
	}
}
