package netx

import (
	"errors"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/rampart-shield/rampart/internal/verdict"
)

// MitigatedHeader is the response header every shield-generated response
// carries, naming the reason.
const MitigatedHeader = "Rampart-Mitigated"

// ErrBodyTooSlow is returned by a request body that arrives slower than
// Options.MinBodyRate after Options.BodyRateGrace. Answer it with 408
// (see IsBodyTooSlow and WriteMitigated).
var ErrBodyTooSlow = errors.New("netx: request body too slow")

// IsBodyTooSlow reports whether err (from reading a request body, possibly
// wrapped, e.g. by a reverse proxy) is ErrBodyTooSlow.
func IsBodyTooSlow(err error) bool { return errors.Is(err, ErrBodyTooSlow) }

// IsBodyTooLarge reports whether err comes from reading past a body limit
// (Options.MaxBodyBytes or LimitBody); answer it with 413.
func IsBodyTooLarge(err error) bool {
	var mbe *http.MaxBytesError
	return errors.As(err, &mbe)
}

// LimitBody caps r's body at n bytes for one route, with
// http.MaxBytesReader semantics: reads past n fail with *http.MaxBytesError
// (IsBodyTooLarge; answer 413) and HTTP/1 closes the connection after the
// response. A Content-Length over n is refused at once: LimitBody then
// writes 413 itself and returns false. Call it before the body is read.
func LimitBody(w http.ResponseWriter, r *http.Request, n int64) bool {
	if r.ContentLength > n {
		WriteMitigated(w, r, http.StatusRequestEntityTooLarge, ReasonBodyTooLarge, true)
		return false
	}
	if r.Body != nil && r.Body != http.NoBody {
		r.Body = http.MaxBytesReader(w, r.Body, n)
	}
	return true
}

// WriteMitigated writes a short shield-generated response: status, a
// Rampart-Mitigated header naming reason, no caching, and, for HTTP/1 when
// closeConn is set, Connection: close. (On HTTP/2 closeConn is ignored: a
// Connection header would shut down the whole connection.)
func WriteMitigated(w http.ResponseWriter, r *http.Request, status int, reason string, closeConn bool) {
	h := w.Header()
	h.Set(MitigatedHeader, reason)
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	if closeConn && r.ProtoMajor == 1 {
		h.Set("Connection", "close")
	}
	w.WriteHeader(status)
	io.WriteString(w, http.StatusText(status))
	io.WriteString(w, "\n")
}

// serveHTTP runs the per-request hardening, then the handler: the head
// inspector's verdict for this request (HTTP/1), header count and Host
// length (HTTP/2), Range sanity, the body-size cap and the body-rate reader,
// and on HTTP/2 the per-stream write progress deadline. A GET without
// body on HTTP/1 costs no allocation here.
func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	ci := ConnInfoFrom(r.Context())
	if ci == nil {
		s.h.ServeHTTP(w, r)
		return
	}
	o := &ci.raw.g.o
	if ci.h1 != nil {
		n := ci.reqs.Add(1)
		if k := ci.h1.insp.violationFor(n); k != badNone {
			s.refuse(w, r, ci, k)
			return
		}
	} else {
		if len(r.Host) > 255 {
			s.refuse(w, r, ci, badHost)
			return
		}
		cnt := 0
		for _, v := range r.Header {
			cnt += len(v)
		}
		if cnt > o.MaxHeaderCount {
			s.refuse(w, r, ci, badTooManyHeaders)
			return
		}
	}
	if rh, ok := r.Header["Range"]; ok && (len(rh) != 1 || !validRange(rh[0], o.MaxRanges)) {
		s.refuse(w, r, ci, badRange)
		return
	}
	if o.MaxBodyBytes > 0 && r.ContentLength > o.MaxBodyBytes {
		s.c.bodyLarge.Add(1)
		WriteMitigated(w, r, http.StatusRequestEntityTooLarge, ReasonBodyTooLarge, true)
		return
	}
	var br *bodyReader
	if r.Body != nil && r.Body != http.NoBody && r.ContentLength != 0 {
		body := r.Body
		if o.MaxBodyBytes > 0 {
			body = http.MaxBytesReader(w, body, o.MaxBodyBytes)
		}
		br = &bodyReader{rc: body, s: s, ci: ci, rate: o.MinBodyRate, grace: o.BodyRateGrace, now: o.Now}
		br.dl, _ = w.(readDeadliner)
		r.Body = br
	}
	if ci.h1 == nil && o.WriteTimeout > 0 {
		if dl, ok := w.(writeDeadliner); ok {
			w = &h2Writer{ResponseWriter: w, dl: dl, wt: o.WriteTimeout, s: s, ci: ci}
		}
	}
	s.h.ServeHTTP(w, r)
	if br != nil && !br.eof && ci.h1 != nil && br.rate > 0 {
		// net/http may still discard the unread body: bound it.
		ci.h1.SetReadDeadline(o.Now().Add(o.BodyRateGrace))
	}
}

type readDeadliner interface{ SetReadDeadline(time.Time) error }
type writeDeadliner interface{ SetWriteDeadline(time.Time) error }

// refuse answers a request of a refused kind and, on HTTP/1, ends the
// connection after the response.
func (s *Server) refuse(w http.ResponseWriter, r *http.Request, ci *ConnInfo, k badKind) {
	s.c.bad[k].Add(1)
	g := ci.raw.g
	if g.o.OnEvent != nil {
		g.o.OnEvent(verdict.Event{Kind: verdict.EventRequest, Time: g.o.Now(), IP: ci.Peer.Addr(),
			Action: verdict.Drop, Reason: badReasons[k], Status: k.status()})
	}
	if n, ok := s.logLim.allow(g.o.Now()); ok {
		g.o.Logger.Info("netx: bad request refused", "kind", k.String(), "ip", ci.Peer.Addr().String(), "suppressed", n)
	}
	if ci.h1 != nil {
		// Nothing more is read from this connection.
		ci.h1.SetReadDeadline(time.Unix(1, 0))
	}
	WriteMitigated(w, r, k.status(), ReasonBadRequest, true)
}

var badReasons = func() (a [numBadKinds]string) {
	for k := range a {
		a[k] = ReasonBadRequest + "/" + badKind(k).String()
	}
	return a
}()

// bodyReader enforces the minimum body rate: before each read it keeps the
// read deadline at start+grace+bytes/rate (start is the first read), moving
// it only when less than half the grace is left or the client has earned
// half a grace more, so HTTP/2 streams are not flooded with timer updates. A timeout becomes ErrBodyTooSlow.
type bodyReader struct {
	rc    io.ReadCloser
	s     *Server
	ci    *ConnInfo
	dl    readDeadliner
	rate  int64
	grace time.Duration
	now   func() time.Time
	start time.Time
	armed time.Time
	n     int64
	eof   bool
	slow  bool
	large bool
}

func (b *bodyReader) Read(p []byte) (int, error) {
	if b.slow {
		return 0, ErrBodyTooSlow
	}
	if b.rate > 0 && b.dl != nil {
		now := b.now()
		if b.start.IsZero() {
			b.start = now
		}
		want := b.start.Add(b.grace + time.Duration(b.n*int64(time.Second)/b.rate))
		if b.armed.IsZero() || (want.After(b.armed) && (b.armed.Sub(now) < b.grace/2 || want.Sub(b.armed) >= b.grace/2)) {
			b.dl.SetReadDeadline(want)
			b.armed = want
		}
	}
	n, err := b.rc.Read(p)
	b.n += int64(n)
	if err != nil {
		switch {
		case err == io.EOF:
			b.eof = true
			if !b.armed.IsZero() && b.ci.h1 == nil {
				b.dl.SetReadDeadline(time.Time{})
			}
		case b.rate > 0 && errors.Is(err, os.ErrDeadlineExceeded):
			b.slow = true
			b.ci.raw.cut(ReasonBodyTooSlow)
			return n, ErrBodyTooSlow
		case !b.large && IsBodyTooLarge(err):
			b.large = true
			b.s.c.bodyLarge.Add(1)
		}
	}
	return n, err
}

func (b *bodyReader) Close() error { return b.rc.Close() }

// h2Writer keeps an HTTP/2 stream's write deadline WriteTimeout ahead of
// each write (re-arming once less than three quarters are left), so a
// client that stops granting flow-control window is cut while steady
// readers are not.
type h2Writer struct {
	http.ResponseWriter
	dl    writeDeadliner
	wt    time.Duration
	armed time.Time
	s     *Server
	ci    *ConnInfo
	cut   bool
}

func (w *h2Writer) progress() {
	now := time.Now()
	if w.armed.IsZero() || w.armed.Sub(now) < w.wt*3/4 {
		w.armed = now.Add(w.wt)
		w.dl.SetWriteDeadline(w.armed)
	}
}

func (w *h2Writer) failed(err error) {
	if err != nil && !w.cut && !time.Now().Before(w.armed) {
		w.cut = true
		w.s.event(verdict.EventConnClosed, w.ci.Peer.Addr(), ReasonWriteTimeout, w.ci.raw.g)
	}
}

func (w *h2Writer) Write(p []byte) (int, error) {
	w.progress()
	n, err := w.ResponseWriter.Write(p)
	w.failed(err)
	return n, err
}

func (w *h2Writer) WriteString(s string) (int, error) {
	w.progress()
	n, err := io.WriteString(w.ResponseWriter, s)
	w.failed(err)
	return n, err
}

func (w *h2Writer) Flush() { w.FlushError() }

func (w *h2Writer) FlushError() error {
	w.progress()
	var err error
	switch f := w.ResponseWriter.(type) {
	case interface{ FlushError() error }:
		err = f.FlushError()
	case http.Flusher:
		f.Flush()
	}
	w.failed(err)
	return err
}

// Unwrap lets http.ResponseController reach the server's writer.
func (w *h2Writer) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// validRange reports whether a Range header value is acceptable: at most max
// ranges, each well-formed, none overlapping. Units other than bytes are
// ignored by servers and pass.
func validRange(v string, max int) bool {
	unit, set, ok := strings.Cut(v, "=")
	if !ok {
		return false
	}
	if !strings.EqualFold(strings.TrimSpace(unit), "bytes") {
		return true
	}
	type span struct{ a, b int64 } // b = -1: open; a = -1: suffix
	var spans [64]span
	n := 0
	for part := range strings.SplitSeq(set, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue // RFC 9110 allows empty list elements
		}
		if n >= max || n >= len(spans) {
			return false
		}
		first, last, ok := strings.Cut(part, "-")
		if !ok {
			return false
		}
		sp := span{-1, -1}
		var okA, okB bool
		if first != "" {
			sp.a, okA = parseDigits(first)
			if !okA {
				return false
			}
		}
		if last != "" {
			sp.b, okB = parseDigits(last)
			if !okB {
				return false
			}
		}
		switch {
		case first == "" && last == "":
			return false
		case first == "": // suffix
			if sp.b == 0 {
				return false
			}
		case last != "" && sp.b < sp.a:
			return false
		}
		for _, o := range spans[:n] {
			if overlap(o.a, o.b, sp.a, sp.b) {
				return false
			}
		}
		spans[n] = sp
		n++
	}
	return n > 0
}

// overlap reports whether two byte ranges certainly overlap without knowing
// the representation length: two suffix ranges always do; a suffix and an
// absolute range are given the benefit of the doubt.
func overlap(a1, b1, a2, b2 int64) bool {
	if a1 < 0 || a2 < 0 {
		return a1 < 0 && a2 < 0
	}
	end1, end2 := b1, b2
	if end1 < 0 {
		end1 = 1<<63 - 1
	}
	if end2 < 0 {
		end2 = 1<<63 - 1
	}
	return a1 <= end2 && a2 <= end1
}

func parseDigits(s string) (int64, bool) {
	if s == "" || len(s) > 18 {
		return 0, false
	}
	var n int64
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}
