package netx

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

func TestHTTP2OverTLS(t *testing.T) {
	topt, _, _ := tlsOptions(t)
	var got atomic.Value
	onConn := func(ci *ConnInfo) { ci.Fingerprints.JA4 = "seen-" + ci.Proto }
	ts := startServer(t, Options{TLS: topt, OnConn: onConn}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ci := ConnInfoFrom(r.Context())
		got.Store(fmt.Sprintf("proto=%d tls=%v alpn=%s hello=%v remote=%s fp=%s", r.ProtoMajor, r.TLS != nil,
			ci.ALPN, ci.ClientHello != nil && len(ci.ClientHello.CipherSuites) > 0, r.RemoteAddr[:9], ci.Fingerprints.JA4))
		io.WriteString(w, "ok")
	}))
	tr := &http.Transport{TLSClientConfig: insecureTLS(), ForceAttemptHTTP2: true}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr}).Get("https://" + ts.addr + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	want := "proto=2 tls=true alpn=h2 hello=true remote=127.0.0.1 fp=seen-HTTP/2.0"
	if resp.ProtoMajor != 2 || got.Load() != want {
		t.Fatalf("client proto %d, handler saw %q, want %q", resp.ProtoMajor, got.Load(), want)
	}
	// HTTP/1.1 over TLS sets r.TLS too.
	tr1 := &http.Transport{TLSClientConfig: insecureTLS("http/1.1")}
	defer tr1.CloseIdleConnections()
	resp, err = (&http.Client{Transport: tr1}).Get("https://" + ts.addr + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if want := "proto=1 tls=true alpn=http/1.1 hello=true remote=127.0.0.1 fp=seen-HTTP/1.1"; got.Load() != want {
		t.Fatalf("handler saw %q, want %q", got.Load(), want)
	}
}

func h2cTransport() *http2.Transport {
	return &http2.Transport{AllowHTTP: true, DialTLSContext: func(ctx context.Context, network, addr string, _ *tls.Config) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, addr)
	}}
}

func TestH2CPriorKnowledge(t *testing.T) {
	ts := startServer(t, Options{}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "%d %v %s", r.ProtoMajor, r.TLS == nil, r.RemoteAddr[:9])
	}))
	tr := h2cTransport()
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr}).Get("http://" + ts.addr + "/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != "2 true 127.0.0.1" {
		t.Fatalf("body %q", body)
	}
}

// rawH2 is a raw HTTP/2 client connection for attack tests.
type rawH2 struct {
	c      net.Conn
	fr     *http2.Framer
	enc    *hpack.Encoder
	hbuf   bytes.Buffer
	goaway atomic.Value // http2.ErrCode
	closed chan struct{}
}

func dialRawH2(t *testing.T, addr string) *rawH2 {
	t.Helper()
	c := dialFrom(t, "127.0.0.1", addr)
	h := &rawH2{c: c, closed: make(chan struct{})}
	h.fr = http2.NewFramer(c, c)
	h.fr.AllowIllegalWrites = true
	h.enc = hpack.NewEncoder(&h.hbuf)
	io.WriteString(c, http2.ClientPreface)
	h.fr.WriteSettings()
	go func() {
		defer close(h.closed)
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		for {
			f, err := h.fr.ReadFrame()
			if err != nil {
				return
			}
			if f, ok := f.(*http2.GoAwayFrame); ok {
				h.goaway.Store(f.ErrCode)
			}
		}
	}()
	return h
}

func (h *rawH2) headerBlock(path string) []byte {
	h.hbuf.Reset()
	for _, f := range [][2]string{{":method", "GET"}, {":scheme", "http"}, {":path", path}, {":authority", "x"}} {
		h.enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]})
	}
	return append([]byte(nil), h.hbuf.Bytes()...)
}

// expectCut waits for the server to send GOAWAY(ENHANCE_YOUR_CALM) and close.
func (h *rawH2) expectCut(t *testing.T) {
	t.Helper()
	select {
	case <-h.closed:
	case <-time.After(10 * time.Second):
		t.Fatal("connection not closed")
	}
	if code, _ := h.goaway.Load().(http2.ErrCode); code != http2.ErrCodeEnhanceYourCalm {
		t.Fatalf("GOAWAY code %v, want ENHANCE_YOUR_CALM", h.goaway.Load())
	}
}

func TestH2Attacks(t *testing.T) {
	block := func(h *rawH2) []byte { return h.headerBlock("/") }
	tests := []struct {
		name   string
		attack func(h *rawH2) error
		reason func(Stats) uint64
	}{
		{"rapid reset", func(h *rawH2) error {
			for i := uint32(0); i < 1000; i++ {
				sid := 2*i + 1
				if err := h.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: sid, BlockFragment: block(h), EndHeaders: true, EndStream: true}); err != nil {
					return err
				}
				if err := h.fr.WriteRSTStream(sid, http2.ErrCodeCancel); err != nil {
					return err
				}
			}
			return nil
		}, func(s Stats) uint64 { return s.ClosedH2Resets }},
		{"continuation flood", func(h *rawH2) error {
			if err := h.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: block(h)}); err != nil {
				return err
			}
			var pad bytes.Buffer
			hpack.NewEncoder(&pad).WriteField(hpack.HeaderField{Name: "x-pad", Value: "a"})
			for i := 0; i < 5000; i++ {
				if err := h.fr.WriteContinuation(1, false, pad.Bytes()); err != nil {
					return err
				}
			}
			return nil
		}, func(s Stats) uint64 { return s.ClosedH2Glitches }},
		{"MadeYouReset window update 0", func(h *rawH2) error {
			for i := uint32(0); i < 1000; i++ {
				sid := 2*i + 1
				if err := h.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: sid, BlockFragment: block(h), EndHeaders: true}); err != nil {
					return err
				}
				if err := h.fr.WriteWindowUpdate(sid, 0); err != nil {
					return err
				}
			}
			return nil
		}, func(s Stats) uint64 { return s.ClosedH2Glitches }},
		{"MadeYouReset data after end stream", func(h *rawH2) error {
			for i := uint32(0); i < 1000; i++ {
				sid := 2*i + 1
				if err := h.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: sid, BlockFragment: block(h), EndHeaders: true, EndStream: true}); err != nil {
					return err
				}
				if err := h.fr.WriteData(sid, true, []byte("x")); err != nil {
					return err
				}
			}
			return nil
		}, func(s Stats) uint64 { return s.ClosedH2Glitches }},
		{"ping flood", func(h *rawH2) error {
			for i := 0; i < 5000; i++ {
				if err := h.fr.WritePing(false, [8]byte{byte(i)}); err != nil {
					return err
				}
			}
			return nil
		}, func(s Stats) uint64 { return s.ClosedH2Glitches }},
		{"empty data flood", func(h *rawH2) error {
			if err := h.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: block(h), EndHeaders: true}); err != nil {
				return err
			}
			for i := 0; i < 5000; i++ {
				if err := h.fr.WriteData(1, false, nil); err != nil {
					return err
				}
			}
			return nil
		}, func(s Stats) uint64 { return s.ClosedH2Glitches }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ts := startServer(t, Options{}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				io.Copy(io.Discard, r.Body)
			}))
			h := dialRawH2(t, ts.addr)
			tc.attack(h) // write errors are expected once the server hangs up
			h.expectCut(t)
			waitFor(t, "closure counted", 3*time.Second, func() bool { return tc.reason(ts.s.Stats()) == 1 })
			if st := ts.s.Stats(); st.H2GoAways < 1 {
				t.Fatalf("H2GoAways = %d", st.H2GoAways)
			}
		})
	}
}

func TestH2OrdinaryClientNotCut(t *testing.T) {
	started := make(chan struct{}, 1)
	ts := startServer(t, Options{}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/hang" {
			started <- struct{}{}
			<-r.Context().Done()
			return
		}
		io.WriteString(w, strings.Repeat("x", 100))
	}))
	tr := h2cTransport()
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr}
	var wg sync.WaitGroup
	var fails atomic.Int32
	for w := 0; w < 5; w++ {
		wg.Go(func() {
			for i := 0; i < 60; i++ {
				resp, err := client.Get("http://" + ts.addr + "/page")
				if err != nil {
					fails.Add(1)
					continue
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		})
	}
	for i := 0; i < 10; i++ { // a few cancelled requests
		ctx, cancel := context.WithCancel(context.Background())
		req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+ts.addr+"/hang", nil)
		done := make(chan struct{})
		go func() {
			defer close(done)
			if resp, err := client.Do(req); err == nil {
				resp.Body.Close()
			}
		}()
		<-started
		cancel()
		<-done
	}
	wg.Wait()
	st := ts.s.Stats()
	if fails.Load() != 0 || st.ClosedH2Glitches != 0 || st.ClosedH2Resets != 0 || st.H2Conns != 1 {
		t.Fatalf("fails=%d glitches=%d resets=%d conns=%d", fails.Load(), st.ClosedH2Glitches, st.ClosedH2Resets, st.H2Conns)
	}
}

func TestBudget(t *testing.T) {
	t0 := time.Unix(1000, 0)
	var b budget
	for i := 0; i < 10; i++ {
		if !b.spend(t0, 1, 10, time.Second) {
			t.Fatalf("spend %d refused within budget", i)
		}
	}
	if b.spend(t0, 1, 10, time.Second) {
		t.Fatal("11th spend allowed")
	}
	b = budget{}
	now := t0
	for i := 0; i < 600; i++ { // one a second, for ten minutes, with a budget of 10 and 1/s refill
		now = now.Add(time.Second)
		if !b.spend(now, 1, 10, time.Second) {
			t.Fatalf("steady spender cut at %d", i)
		}
	}
	if !b.spend(now.Add(time.Hour), 10, 10, time.Second) || b.spend(now.Add(time.Hour), 1, 10, time.Second) {
		t.Fatal("refill is not capped at the capacity")
	}
}
