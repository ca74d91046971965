package netx

import (
	"io"
	"net/http"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// h2Statuses is a raw HTTP/2 client that records response statuses.
type h2Statuses struct {
	*rawH2
	status atomic.Value // string
}

func dialH2Statuses(t *testing.T, addr string, settings ...http2.Setting) *h2Statuses {
	t.Helper()
	c := dialFrom(t, "127.0.0.1", addr)
	h := &h2Statuses{rawH2: &rawH2{c: c, closed: make(chan struct{})}}
	h.fr = http2.NewFramer(c, c)
	h.fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	h.enc = hpack.NewEncoder(&h.hbuf)
	io.WriteString(c, http2.ClientPreface)
	h.fr.WriteSettings(settings...)
	go func() {
		defer close(h.closed)
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		for {
			f, err := h.fr.ReadFrame()
			if err != nil {
				return
			}
			if mh, ok := f.(*http2.MetaHeadersFrame); ok {
				h.status.Store(mh.PseudoValue("status"))
			}
		}
	}()
	return h
}

func TestH2SlowPOST(t *testing.T) {
	ts := startServer(t, Options{MinBodyRate: 1000, BodyRateGrace: 200 * time.Millisecond}, bodyHandler())
	h := dialH2Statuses(t, ts.addr)
	h.hbuf.Reset()
	for _, f := range [][2]string{{":method", "POST"}, {":scheme", "http"}, {":path", "/"}, {":authority", "x"}, {"content-length", "100000"}} {
		h.enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]})
	}
	h.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: h.hbuf.Bytes(), EndHeaders: true})
	stop := make(chan struct{})
	defer close(stop)
	go func() { // 10 bytes every 20 ms: half the minimum rate
		for i := 0; i < 500; i++ {
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
			if err := h.fr.WriteData(1, false, []byte("0123456789")); err != nil {
				return
			}
		}
	}()
	waitFor(t, "408 on the stream", 5*time.Second, func() bool { return h.status.Load() == "408" })
	if n := ts.s.Stats().ClosedBodyTooSlow; n != 1 {
		t.Fatalf("ClosedBodyTooSlow = %d", n)
	}
}

func TestH2SlowReadCut(t *testing.T) {
	var wrote atomic.Int64
	var werr atomic.Value
	ts := startServer(t, Options{WriteTimeout: 200 * time.Millisecond}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		chunk := make([]byte, 4096)
		for i := 0; i < 1000; i++ {
			n, err := w.Write(chunk)
			wrote.Add(int64(n))
			if err != nil {
				werr.Store(err)
				return
			}
			w.(http.Flusher).Flush()
		}
	}))
	// A tiny stream window and no WINDOW_UPDATE ever: the stream stalls.
	h := dialH2Statuses(t, ts.addr, http2.Setting{ID: http2.SettingInitialWindowSize, Val: 1024})
	h.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: h.headerBlock("/big"), EndHeaders: true, EndStream: true})
	waitFor(t, "stalled stream cut", 5*time.Second, func() bool { return werr.Load() != nil })
	if n := ts.s.Stats().ClosedWriteTimeout; n != 1 {
		t.Fatalf("ClosedWriteTimeout = %d (wrote %s bytes)", n, strconv.FormatInt(wrote.Load(), 10))
	}
}
