package netx

import (
	"bufio"
	"context"
	"crypto/tls"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"testing"
	"time"
)

func servedSerial(t *testing.T, addr string) *big.Int {
	t.Helper()
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 3 * time.Second}, "tcp", addr, insecureTLS("http/1.1"))
	if err != nil {
		t.Fatalf("tls dial: %v", err)
	}
	defer c.Close()
	return c.ConnectionState().PeerCertificates[0].SerialNumber
}

func TestReloadCertificates(t *testing.T) {
	topt, cf, kf := tlsOptions(t)
	ts := startServer(t, Options{TLS: topt}, okHandler())
	first := servedSerial(t, ts.addr)

	second := writeCert(t, cf, kf)
	if err := ts.s.ReloadCertificates(); err != nil {
		t.Fatalf("reload: %v", err)
	}
	if got := servedSerial(t, ts.addr); got.Cmp(second) != 0 || got.Cmp(first) == 0 {
		t.Fatalf("served serial %v after reload, want %v", got, second)
	}

	// A bad pair keeps the old certificate.
	dir := t.TempDir()
	otherCert, otherKey := dir+"/c.pem", dir+"/k.pem"
	writeCert(t, otherCert, otherKey)
	otherKeyPEM, _ := os.ReadFile(otherKey)
	for name, write := range map[string]func(){
		"garbage cert":     func() { os.WriteFile(cf, []byte("not a certificate"), 0o600) },
		"mismatched key":   func() { writeCert(t, cf, kf); os.WriteFile(kf, otherKeyPEM, 0o600) },
		"missing key file": func() { os.Remove(kf) },
	} {
		write()
		if err := ts.s.ReloadCertificates(); err == nil {
			t.Fatalf("%s: reload succeeded", name)
		}
		if got := servedSerial(t, ts.addr); got.Cmp(second) != 0 {
			t.Fatalf("%s: served serial %v, want the old %v", name, got, second)
		}
	}
}

func TestShutdownDrains(t *testing.T) {
	started := make(chan struct{}, 2)
	release := make(chan struct{})
	ts := startServer(t, Options{}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		started <- struct{}{}
		<-release
		io.WriteString(w, "done")
	}))

	// An in-flight HTTP/1 request.
	c1 := dialFrom(t, "127.0.0.1", ts.addr)
	io.WriteString(c1, "GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
	// An in-flight HTTP/2 request.
	tr := h2cTransport()
	defer tr.CloseIdleConnections()
	h2res := make(chan string, 1)
	go func() {
		resp, err := (&http.Client{Transport: tr}).Get("http://" + ts.addr + "/slow")
		if err != nil {
			h2res <- err.Error()
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		h2res <- string(b)
	}()
	<-started
	<-started

	shut := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		shut <- ts.s.Shutdown(ctx)
	}()
	select {
	case <-ts.done:
	case <-time.After(3 * time.Second):
		t.Fatal("Serve did not return")
	}
	if ts.err != http.ErrServerClosed {
		t.Fatalf("Serve returned %v", ts.err)
	}
	if c, err := net.DialTimeout("tcp", ts.addr, time.Second); err == nil {
		c.Close()
		t.Fatal("new connection accepted during shutdown")
	}
	select {
	case err := <-shut:
		t.Fatalf("Shutdown returned %v before in-flight requests finished", err)
	default:
	}
	close(release)
	c1.SetReadDeadline(time.Now().Add(3 * time.Second))
	resp := readResponse(t, bufio.NewReader(c1), "GET")
	if b, _ := io.ReadAll(resp.Body); resp.StatusCode != 200 || string(b) != "done" {
		t.Fatalf("in-flight HTTP/1 request: %d %q", resp.StatusCode, b)
	}
	if got := <-h2res; got != "done" {
		t.Fatalf("in-flight HTTP/2 request: %q", got)
	}
	if err := <-shut; err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if n := ts.s.Stats().Open; n != 0 {
		t.Fatalf("%d connections open after Shutdown", n)
	}
}

func TestShutdownDeadlineClosesStragglers(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	started := make(chan struct{}, 1)
	ts := startServer(t, Options{}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		started <- struct{}{}
		<-release
	}))
	c := dialFrom(t, "127.0.0.1", ts.addr)
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	<-started
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := ts.s.Shutdown(ctx); err != context.DeadlineExceeded {
		t.Fatalf("Shutdown = %v, want deadline exceeded", err)
	}
	if !closedByPeer(c, 3*time.Second) {
		t.Fatal("straggler not closed")
	}
}

func TestACMEWithFileFallback(t *testing.T) {
	topt, _, _ := tlsOptions(t)
	topt.ACMEDomains = []string{"www.example.org"}
	topt.ACMECacheDir = t.TempDir()
	ts := startServer(t, Options{TLS: topt}, okHandler())
	// A name outside the ACME list is served from the files, without
	// reaching any CA.
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 3 * time.Second}, "tcp", ts.addr,
		&tls.Config{InsecureSkipVerify: true, ServerName: "localhost"})
	if err != nil {
		t.Fatalf("tls dial: %v", err)
	}
	c.Close()
	// The HTTP-01 handler passes other paths to the fallback.
	h := ts.s.ACMEHTTPHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(299) }))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "http://www.example.org/page", nil))
	if rec.Code != 299 {
		t.Fatalf("fallback not used: %d", rec.Code)
	}
}
