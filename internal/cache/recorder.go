package cache

import (
	"bufio"
	"context"
	"errors"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// What a recorder does with the response of a leader, decided when the
// response headers arrive.
const (
	modeUndecided = iota
	// modeStore: storable; written through to the client and buffered.
	modeStore
	// modeShare: a 5xx with no stale copy; written through and buffered
	// so that the followers get it too (it is not stored).
	modeShare
	// modePass: not storable; written through, not buffered.
	modePass
	// modeStale: a 5xx while a stale copy may stand in; discarded.
	modeStale
	// modeRevalidated: 304 to the stale copy's validators; discarded.
	modeRevalidated
)

var errClientGone = errors.New("cache: client gone")

// recorder is the response writer a leader hands to the next handler. It
// never holds back what it writes through: headers go out when the origin's
// arrive and every write and flush is passed on at once, so streams flow.
// It implements Flush, FlushError and Unwrap for http.ResponseController.
type recorder struct {
	c              *Cache
	w              http.ResponseWriter
	hdr            http.Header // next's headers until WriteHeader, then the snapshot to store
	stale          *entry
	sentValidators bool
	clientCtx      context.Context
	cancel         context.CancelFunc
	head           bool        // the client asked HEAD: no body goes to it
	passing        atomic.Bool // the client's departure may cancel the fetch
	// noStale: the stale copy may revalidate but not stand in for a
	// failure (the safety net for keys that dropped unknown parameters).
	noStale bool
	// reserved is what buf holds of the in-flight budget; overBudget
	// means the budget ran out and buf was given up.
	reserved   int64
	overBudget bool

	wroteHeader bool
	mode        int
	status      int
	cc          cacheControl
	respTime    time.Time
	buf         []byte
	written     int64
	tooBig      bool
	clientErr   bool
	// mitigated: the response is the shield's own answer to this client
	// (Rampart-Mitigated: a check, a challenge, a limit), which says
	// nothing about the key's cacheability.
	mitigated bool
}

func (rec *recorder) writesThrough() bool {
	return rec.mode == modeStore || rec.mode == modeShare || rec.mode == modePass
}

func (rec *recorder) discards() bool { return rec.mode == modeStale || rec.mode == modeRevalidated }

// Header returns next's header map; once the headers are written through,
// the client's (so that trailers reach it).
func (rec *recorder) Header() http.Header {
	if rec.wroteHeader && rec.writesThrough() {
		return rec.w.Header()
	}
	return rec.hdr
}

// WriteHeader decides what to do with the response. Informational (1xx)
// responses are dropped.
func (rec *recorder) WriteHeader(code int) {
	if rec.wroteHeader || code < 200 {
		return
	}
	c := rec.c
	rec.wroteHeader = true
	rec.status = code
	rec.respTime = c.o.Now()
	now := rec.respTime.UnixNano()
	switch {
	case code == http.StatusNotModified && rec.sentValidators:
		rec.mode = modeRevalidated
		return
	case code >= 500 && rec.stale != nil && rec.stale.usableOnError(now) && !c.safetyNet(rec.noStale, rec.stale):
		rec.mode = modeStale
		return
	}
	rec.cc = parseResponseCacheControl(rec.hdr)
	_, rec.mitigated = rec.hdr["Rampart-Mitigated"]
	label := hdrMiss
	switch {
	case rec.mitigated && code < 500:
		rec.mode = modePass
		label = hdrBypass
		rec.startPassing()
	case c.storable(code, rec.hdr, rec.cc):
		rec.mode = modeStore
		if n, ok := contentLength(rec.hdr); ok && n > 0 && rec.reserve(int64(allocSize(int(n)))) {
			rec.buf = make([]byte, 0, n)
		}
	case code >= 500:
		rec.mode = modeShare
	default:
		rec.mode = modePass
		label = hdrBypass
		rec.startPassing()
	}
	dst := rec.w.Header()
	for k, v := range rec.hdr {
		dst[k] = v
	}
	dst["Rampart-Cache"] = label
	rec.w.WriteHeader(code)
}

// startPassing lets the client's departure cancel the fetch: nobody else
// will use the response.
func (rec *recorder) startPassing() {
	rec.passing.Store(true)
	if rec.clientCtx.Err() != nil {
		rec.cancel()
	}
}

func (rec *recorder) Write(p []byte) (int, error) {
	if !rec.wroteHeader {
		rec.WriteHeader(http.StatusOK)
	}
	rec.written += int64(len(p))
	switch rec.mode {
	case modeStale, modeRevalidated:
		return len(p), nil
	case modeStore, modeShare:
		if !rec.tooBig && !rec.overBudget {
			if int64(len(rec.buf)+len(p)) > rec.c.o.MaxEntryBytes {
				rec.tooBig = true
				rec.dropBuffer()
			} else {
				rec.buf = append(rec.buf, p...)
				if grown := int64(allocSize(cap(rec.buf))) - rec.reserved; grown > 0 && !rec.reserve(grown) {
					rec.overBudget = true
					rec.dropBuffer()
				}
			}
		}
	}
	if rec.head {
		return len(p), nil
	}
	if rec.clientErr {
		if rec.passing.Load() {
			return 0, errClientGone
		}
		return len(p), nil
	}
	n, err := rec.w.Write(p)
	if err != nil {
		rec.clientErr = true
		if rec.passing.Load() {
			return n, err
		}
		// Keep the fetch going for the followers and the cache.
		return len(p), nil
	}
	return n, nil
}

// reserve takes n more bytes of the in-flight budget for buf.
func (rec *recorder) reserve(n int64) bool {
	if !rec.c.inflight.take(n) {
		return false
	}
	rec.reserved += n
	return true
}

// dropBuffer gives up buffering: the response streams through and is not
// stored, and the client's departure may cancel the fetch.
func (rec *recorder) dropBuffer() {
	rec.buf = nil
	rec.release()
	rec.startPassing()
}

// release returns buf's share of the in-flight budget (once buf is stored,
// the store's weight counts it).
func (rec *recorder) release() {
	rec.c.inflight.give(rec.reserved)
	rec.reserved = 0
}

// Flush implements http.Flusher.
func (rec *recorder) Flush() { _ = rec.FlushError() }

// FlushError is what http.ResponseController.Flush calls.
func (rec *recorder) FlushError() error {
	if !rec.wroteHeader {
		rec.WriteHeader(http.StatusOK)
	}
	if !rec.writesThrough() || rec.clientErr {
		return nil
	}
	return http.NewResponseController(rec.w).Flush()
}

// Hijack is refused: upgrade requests bypass the cache.
func (rec *recorder) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	return nil, nil, http.ErrNotSupported
}

// Unwrap lets http.ResponseController reach the client's writer (deadlines).
func (rec *recorder) Unwrap() http.ResponseWriter { return rec.w }

// complete reports whether the whole body arrived: as many bytes as the
// Content-Length said, if it said.
func (rec *recorder) complete() bool {
	n, ok := contentLength(rec.hdr)
	return !ok || n == rec.written
}

func contentLength(h http.Header) (int64, bool) {
	cl := h["Content-Length"]
	if len(cl) == 0 {
		return 0, false
	}
	n, err := strconv.ParseInt(strings.TrimSpace(cl[0]), 10, 64)
	if err != nil || n < 0 {
		return 0, false
	}
	return n, true
}

// parseResponseCacheControl parses Cache-Control, falling back to Pragma:
// no-cache for HTTP/1.0 origins.
func parseResponseCacheControl(h http.Header) cacheControl {
	if v := h["Cache-Control"]; len(v) > 0 {
		return parseCacheControl(v)
	}
	cc := parseCacheControl(nil)
	for _, p := range h["Pragma"] {
		if strings.Contains(strings.ToLower(p), "no-cache") {
			cc.noCache = true
		}
	}
	return cc
}

// storable reports whether a response may be stored: its status is 200,
// 203, 204, 300, 301, 404 or 410; it sets no cookie; it is neither private
// nor no-store; it does not vary on "*"; it is not an event stream, has no
// trailers, and its announced length fits MaxEntryBytes.
func (c *Cache) storable(status int, h http.Header, cc cacheControl) bool {
	switch status {
	case 200, 203, 204, 300, 301, 404, 410:
	default:
		return false
	}
	if len(h["Set-Cookie"]) > 0 || cc.noStore || cc.private || len(h["Trailer"]) > 0 {
		return false
	}
	for _, v := range h["Vary"] {
		if strings.Contains(v, "*") {
			return false
		}
	}
	if ct := h["Content-Type"]; len(ct) > 0 {
		t := strings.TrimSpace(ct[0])
		if len(t) >= len("text/event-stream") && strings.EqualFold(t[:len("text/event-stream")], "text/event-stream") {
			return false
		}
	}
	if _, ok := h["Content-Length"]; ok {
		n, ok := contentLength(h)
		if !ok || n > c.o.MaxEntryBytes {
			return false
		}
	}
	return true
}

// The writer a leader hands to next keeps the optional interfaces that
// reverse proxies and event streams use.
var (
	_ http.Flusher                              = (*recorder)(nil)
	_ interface{ FlushError() error }           = (*recorder)(nil)
	_ interface{ Unwrap() http.ResponseWriter } = (*recorder)(nil)
	_ http.Hijacker                             = (*recorder)(nil)
)
