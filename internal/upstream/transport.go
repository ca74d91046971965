package upstream

import (
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
)

// newTransport builds the tuned transport of one origin: no proxy from the
// environment, keep-alive with MaxIdleConnsPerHost idle connections, no
// transparent compression (Accept-Encoding passes through untouched),
// bounded dial, TLS handshake and response header waits.
func newTransport(o *Options, kind string) *http.Transport {
	d := &net.Dialer{Timeout: o.DialTimeout, KeepAlive: defaultTCPKeepAlive}
	t := &http.Transport{
		Proxy:                  nil,
		DialContext:            d.DialContext,
		TLSHandshakeTimeout:    o.DialTimeout,
		ResponseHeaderTimeout:  o.ResponseHeaderTimeout,
		IdleConnTimeout:        o.IdleConnTimeout,
		MaxIdleConns:           o.MaxIdleConnsPerHost,
		MaxIdleConnsPerHost:    o.MaxIdleConnsPerHost,
		ExpectContinueTimeout:  defaultExpectContinueTimeout,
		DisableCompression:     true,
		MaxResponseHeaderBytes: 1 << 20,
	}
	if o.TLSClientConfig != nil {
		t.TLSClientConfig = o.TLSClientConfig.Clone()
	} else {
		t.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	var protos http.Protocols
	switch kind {
	case "http", "https":
		protos.SetHTTP1(true)
	case "h2c":
		protos.SetUnencryptedHTTP2(true)
	case "h2":
		protos.SetHTTP2(true)
	}
	t.Protocols = &protos
	return t
}

// poolTransport is the RoundTripper of the pool's single ReverseProxy: it
// picks an origin per attempt, retries failed connections of bodiless
// requests on other origins, keeps the per-origin counters and feeds the
// passive ejection. Its errors are *proxyError.
//
// A request is retried on another origin (up to Options.Retries times) only
// when connecting failed and none of its body was read, so nothing can
// have reached an origin.
type poolTransport struct{ p *Pool }

func (t poolTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	p := t.p
	var rb *reqBody
	if req.Body != nil && req.Body != http.NoBody {
		rb = &reqBody{rc: req.Body}
		req.Body = rb
	}
	var triedArr [maxTries]*upstream
	tries := 1 + p.retries
	var lastErr error
	for attempt := 0; attempt < tries; attempt++ {
		u, probe := p.pick(triedArr[:attempt])
		if u == nil {
			break
		}
		triedArr[attempt] = u
		req.URL.Scheme, req.URL.Host = u.scheme, u.host
		u.inflight.Add(1)
		u.requests.Add(1)
		start := p.now()
		res, err := u.rt.RoundTrip(req)
		if err == nil {
			u.observeLatency(p.now().Sub(start))
			switch res.StatusCode {
			case http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
				p.recordFailure(u, probe, &statusError{res.StatusCode})
			default:
				p.recordSuccess(u, probe)
			}
			res.Body = p.trackBody(u, req, res)
			return res, nil
		}
		u.inflight.Add(-1)
		if ctxErr := req.Context().Err(); ctxErr != nil {
			releaseProbe(u, probe)
			return nil, &proxyError{status: statusClientClosed, reason: "client-closed", err: err}
		}
		if p.classify != nil {
			if status, reason, ok := p.classify(err); ok {
				releaseProbe(u, probe)
				return nil, &proxyError{status: status, reason: reason, err: err}
			}
		}
		if rb != nil {
			if berr := rb.failure(); berr != nil {
				releaseProbe(u, probe)
				status, reason := classifyBodyError(berr)
				return nil, &proxyError{status: status, reason: reason, err: err}
			}
		}
		p.recordFailure(u, probe, err)
		lastErr = err
		// Retry only when nothing can have reached the origin: the
		// connection failed and not a byte of the body was read.
		if !isDialError(err) || (rb != nil && rb.touched.Load()) {
			break
		}
	}
	if lastErr == nil {
		return nil, &proxyError{status: http.StatusBadGateway, reason: ReasonUpstreamError, err: ErrNoUpstream}
	}
	status, reason := upstreamErrorStatus(lastErr)
	return nil, &proxyError{status: status, reason: reason, err: lastErr}
}

// isDialError reports whether err happened while connecting, before any
// byte of the request could reach the origin.
func isDialError(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

// reqBody watches the client's request body so that an error reading it
// (the client was slow, too big, or vanished) is blamed on the client and
// not on the origin. The transport reads it from its own goroutine, hence
// the lock.
type reqBody struct {
	rc      io.ReadCloser
	touched atomic.Bool // a Read happened: the body cannot be replayed
	mu      sync.Mutex
	err     error
}

func (b *reqBody) Read(p []byte) (int, error) {
	b.touched.Store(true)
	n, err := b.rc.Read(p)
	if err != nil && err != io.EOF {
		b.mu.Lock()
		if b.err == nil {
			b.err = err
		}
		b.mu.Unlock()
	}
	return n, err
}

// Close does not reach the inbound body: the transport closes request
// bodies even when it failed to connect, and a retry must still read it.
// ReverseProxy closes the inbound body itself when the request is done.
func (b *reqBody) Close() error { return nil }

func (b *reqBody) failure() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.err
}

// trackBody wraps a response body so the origin's in-flight count drops
// when ReverseProxy closes it, and a broken body counts as a failure. A
// 101 Switching Protocols body stays writable for the WebSocket tunnel.
func (p *Pool) trackBody(u *upstream, req *http.Request, res *http.Response) io.ReadCloser {
	if rwc, ok := res.Body.(io.ReadWriteCloser); ok && res.StatusCode == http.StatusSwitchingProtocols {
		return &trackedConn{trackedBody: trackedBody{rc: rwc, p: p, u: u, req: req}, w: rwc}
	}
	return &trackedBody{rc: res.Body, p: p, u: u, req: req}
}

type trackedBody struct {
	rc     io.ReadCloser
	p      *Pool
	u      *upstream
	req    *http.Request
	closed atomic.Bool
	failed atomic.Bool
}

func (b *trackedBody) Read(buf []byte) (int, error) {
	n, err := b.rc.Read(buf)
	if err != nil && err != io.EOF && b.req.Context().Err() == nil && !b.closed.Load() &&
		b.failed.CompareAndSwap(false, true) {
		b.p.recordFailure(b.u, false, err)
	}
	return n, err
}

func (b *trackedBody) Close() error {
	if b.closed.CompareAndSwap(false, true) {
		b.u.inflight.Add(-1)
	}
	return b.rc.Close()
}

type trackedConn struct {
	trackedBody
	w io.Writer
}

func (c *trackedConn) Write(b []byte) (int, error) { return c.w.Write(b) }

// bufferPool is ReverseProxy's copy-buffer pool. It stores array pointers
// so that Put does not allocate.
type bufferPool struct{ p sync.Pool }

const copyBufSize = 32 << 10

var sharedBuffers = &bufferPool{}

func (b *bufferPool) Get() []byte {
	if a, ok := b.p.Get().(*[copyBufSize]byte); ok {
		return a[:]
	}
	return make([]byte, copyBufSize)
}

func (b *bufferPool) Put(buf []byte) {
	if cap(buf) < copyBufSize {
		return
	}
	b.p.Put((*[copyBufSize]byte)(buf[:copyBufSize]))
}
