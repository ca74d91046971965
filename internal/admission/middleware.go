package admission

import (
	"bufio"
	"context"
	"errors"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/rampart-shield/rampart/internal/verdict"
)

// Header values shared by every refusal. Handlers downstream only replace
// header slices (Set) or append to them (Add, which copies: their capacity
// equals their length), never write into them.
var (
	hdrOverload   = []string{"overload"}
	hdrOriginDown = []string{"origin-down"}
	hdrNoStore    = []string{"no-store"}
)

// Hooks are the callbacks Middleware takes from the shield. Nil fields are
// left out.
type Hooks struct {
	// ClassOf gives a request's priority class and client key (see
	// Acquire for what the key buys). Nil: every request is
	// verdict.ClassNormal from one client.
	ClassOf func(*http.Request) (verdict.Class, uint64)
	// Recheck is called for every admitted request, before it goes to the
	// origin: what the shield decided about it may no longer hold (the
	// mode rose while it waited in the queue, or behind another request
	// for the same page in the cache, because of the very flood it came
	// with). It returns false when it answered the request itself; the
	// slot is then handed back unused.
	Recheck func(http.ResponseWriter, *http.Request) bool
}

// Middleware puts the Limiter in front of next (the upstream proxy). Each
// request acquires a slot with the class and client key hooks.ClassOf gives
// it and releases it when next writes the response
// headers: its latency is the time to headers, and the slot is not held
// while a slow client reads the body (a slow reader cannot pin the origin's
// capacity, and event streams do not hold slots). The outcome is Dropped for
// 502, 503 and 504, Ignore when the client has gone or next panicked, and
// Success otherwise.
//
// A request that cannot be admitted (queue full, deadline passed, circuit
// open) gets 503 with Retry-After, Cache-Control: no-store,
// Rampart-Mitigated: overload (origin-down while the circuit is open) and the
// overload page. The cache in front replaces it with a stale copy when it has
// one. The handler is safe for concurrent use; an admitted request costs one
// small allocation (the response writer wrapper).
func (l *Limiter) Middleware(next http.Handler, hooks Hooks) http.Handler {
	g := &gate{
		l:               l,
		next:            next,
		classOf:         hooks.ClassOf,
		recheck:         hooks.Recheck,
		hdrRetryQueue:   []string{l.retryAfter},
		hdrRetryBreaker: []string{l.retryBreaker},
		hdrContentType:  []string{l.o.OverloadContentType},
		hdrLength:       []string{strconv.Itoa(len(l.o.OverloadPage))},
	}
	return g
}

type gate struct {
	l       *Limiter
	next    http.Handler
	classOf func(*http.Request) (verdict.Class, uint64)
	recheck func(http.ResponseWriter, *http.Request) bool

	hdrRetryQueue, hdrRetryBreaker, hdrContentType, hdrLength []string
}

func (g *gate) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	class, flow := verdict.ClassNormal, uint64(0)
	if g.classOf != nil {
		class, flow = g.classOf(r)
	}
	ctx := r.Context()
	t, err := g.l.Acquire(ctx, class, flow)
	if err != nil {
		g.refuse(w, r, err)
		return
	}
	if g.recheck != nil && !g.recheck(w, r) {
		t.Release(0, Ignore)
		return
	}
	rw := &releaseWriter{ResponseWriter: w, t: t, now: g.l.o.Now, ctx: ctx}
	rw.start = rw.now()
	completed := false
	defer func() {
		if !rw.released {
			if completed {
				rw.release(http.StatusOK)
			} else {
				rw.released = true
				rw.t.Release(rw.now().Sub(rw.start), Ignore)
			}
		}
	}()
	g.next.ServeHTTP(rw, r)
	completed = true
}

// refuse answers a request that was not admitted.
func (g *gate) refuse(w http.ResponseWriter, r *http.Request, err error) {
	h := w.Header()
	if errors.Is(err, ErrCircuitOpen) {
		h["Retry-After"] = g.hdrRetryBreaker
		h["Rampart-Mitigated"] = hdrOriginDown
	} else {
		h["Retry-After"] = g.hdrRetryQueue
		h["Rampart-Mitigated"] = hdrOverload
	}
	h["Content-Type"] = g.hdrContentType
	h["Content-Length"] = g.hdrLength
	h["Cache-Control"] = hdrNoStore
	w.WriteHeader(http.StatusServiceUnavailable)
	if r.Method != http.MethodHead {
		_, _ = w.Write(g.l.o.OverloadPage)
	}
}

// releaseWriter releases the ticket when the response headers are written.
// It keeps Flush and the other http.ResponseController methods working.
type releaseWriter struct {
	http.ResponseWriter
	t        Ticket
	now      func() time.Time
	start    time.Time
	ctx      context.Context
	released bool
}

func (rw *releaseWriter) release(code int) {
	rw.released = true
	rtt := rw.now().Sub(rw.start)
	outcome := Success
	switch {
	case rw.ctx.Err() != nil:
		outcome = Ignore
	case code == http.StatusBadGateway, code == http.StatusServiceUnavailable, code == http.StatusGatewayTimeout:
		outcome = Dropped
	}
	rw.t.Release(rtt, outcome)
}

func (rw *releaseWriter) WriteHeader(code int) {
	if !rw.released && (code >= 200 || code == http.StatusSwitchingProtocols) {
		rw.release(code)
	}
	rw.ResponseWriter.WriteHeader(code)
}

func (rw *releaseWriter) Write(p []byte) (int, error) {
	if !rw.released {
		rw.release(http.StatusOK)
	}
	return rw.ResponseWriter.Write(p)
}

// Flush implements http.Flusher.
func (rw *releaseWriter) Flush() { _ = rw.FlushError() }

// FlushError is what http.ResponseController.Flush calls.
func (rw *releaseWriter) FlushError() error {
	if !rw.released {
		rw.release(http.StatusOK)
	}
	return http.NewResponseController(rw.ResponseWriter).Flush()
}

// Hijack supports protocol upgrades through the gate; the slot is released
// first, as for 101 Switching Protocols.
func (rw *releaseWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	if !rw.released {
		rw.release(http.StatusSwitchingProtocols)
	}
	return http.NewResponseController(rw.ResponseWriter).Hijack()
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (rw *releaseWriter) Unwrap() http.ResponseWriter { return rw.ResponseWriter }

var (
	_ http.Flusher                              = (*releaseWriter)(nil)
	_ interface{ FlushError() error }           = (*releaseWriter)(nil)
	_ interface{ Unwrap() http.ResponseWriter } = (*releaseWriter)(nil)
	_ http.Hijacker                             = (*releaseWriter)(nil)
)
