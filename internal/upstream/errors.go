package upstream

import (
	"context"
	_ "embed"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
)

// HeaderMitigated is the response header naming why the shield answered
// instead of the origin.
const HeaderMitigated = "Rampart-Mitigated"

// Reasons sent in the Rampart-Mitigated header by the pool itself.
const (
	// ReasonUpstreamError: no origin could be reached, or the one asked
	// sent a broken answer (502).
	ReasonUpstreamError = "upstream-error"
	// ReasonUpstreamTimeout: the origin did not connect or answer in time
	// (504).
	ReasonUpstreamTimeout = "upstream-timeout"
	// ReasonClientBody: the client's request body could not be read (400;
	// 408 when it timed out, 413 when it was too large).
	ReasonClientBody = "client-body"
)

// statusClientClosed is reported to OnResponse when the client went away
// before it was answered (nginx's 499). It is never written.
const statusClientClosed = 499

// ErrNoUpstream is the cause logged when no origin may be asked: every one
// is down or ejected and no probe is due.
var ErrNoUpstream = errors.New("upstream: no origin available")

// proxyError is what the pool's RoundTripper returns: the status and the
// reason to answer with, and the cause for the log.
type proxyError struct {
	status int
	reason string
	err    error
}

func (e *proxyError) Error() string { return e.err.Error() }
func (e *proxyError) Unwrap() error { return e.err }

// statusError records a 502/503/504 answered by the origin itself.
type statusError struct{ code int }

func (e *statusError) Error() string { return "origin answered " + strconv.Itoa(e.code) }

// upstreamErrorStatus maps an origin failure to 504 for timeouts and 502
// for everything else.
func upstreamErrorStatus(err error) (int, string) {
	if isTimeout(err) {
		return http.StatusGatewayTimeout, ReasonUpstreamTimeout
	}
	return http.StatusBadGateway, ReasonUpstreamError
}

func isTimeout(err error) bool {
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, os.ErrDeadlineExceeded) {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// classifyBodyError maps an error reading the client's request body.
func classifyBodyError(err error) (int, string) {
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &mbe):
		return http.StatusRequestEntityTooLarge, ReasonClientBody
	case isTimeout(err):
		return http.StatusRequestTimeout, ReasonClientBody
	default:
		return http.StatusBadRequest, ReasonClientBody
	}
}

// handleError is ReverseProxy's ErrorHandler: it answers with the shield's
// page, or with nothing when the client is gone.
func (p *Pool) handleError(w http.ResponseWriter, r *http.Request, err error) {
	if p.answerError(w, r, err) == 0 {
		if sw, ok := w.(*statusWriter); ok && sw.status == 0 {
			sw.status = statusClientClosed
		}
	}
}

// answerError writes the shield's page for err and returns its status, or
// writes nothing and returns 0 when the client is gone.
func (p *Pool) answerError(w http.ResponseWriter, r *http.Request, err error) int {
	status, reason := http.StatusBadGateway, ReasonUpstreamError
	var pe *proxyError
	switch {
	case errors.As(err, &pe):
		status, reason = pe.status, pe.reason
	case r.Context().Err() != nil:
		status = statusClientClosed
	}
	if status == statusClientClosed {
		return 0
	}
	if status < 400 || status > 599 {
		status = http.StatusBadGateway
	}
	if !isToken(reason) {
		reason = ReasonUpstreamError
	}
	if p.errLog.allow(p.nowNanos()) {
		p.log.Info("answered for the origin", slog.Int("status", status),
			slog.String("reason", reason), slog.String("error", err.Error()))
	}
	writePage(w, r, status, reason)
	return status
}

//go:embed pages/error.html
var errorTemplate string

// page is a pre-rendered error answer.
type page struct {
	html, text       []byte
	htmlLen, textLen []string
}

var (
	hdrTypeHTML = []string{"text/html; charset=utf-8"}
	hdrTypeText = []string{"text/plain; charset=utf-8"}
	hdrNoStore  = []string{"no-store"}
	hdrNoSniff  = []string{"nosniff"}

	pageMessages = map[int]string{
		http.StatusBadRequest:            "The request body could not be read.",
		http.StatusRequestTimeout:        "The request body arrived too slowly.",
		http.StatusRequestEntityTooLarge: "The request body is too large.",
		http.StatusBadGateway:            "The site's server could not be reached or sent a broken answer.",
		http.StatusGatewayTimeout:        "The site's server took too long to answer.",
	}
	pages        = map[int]*page{}
	reasonValues = map[string][]string{}
)

func init() {
	for code := range pageMessages {
		pages[code] = renderPage(code)
	}
	for _, r := range []string{ReasonUpstreamError, ReasonUpstreamTimeout, ReasonClientBody} {
		reasonValues[r] = []string{r}
	}
}

func renderPage(code int) *page {
	title := http.StatusText(code)
	if title == "" {
		title = "Error"
	}
	msg, ok := pageMessages[code]
	if !ok {
		msg = "The request could not be completed."
	}
	status := strconv.Itoa(code)
	html := strings.NewReplacer("{{STATUS}}", status, "{{TITLE}}", title, "{{MESSAGE}}", msg).Replace(errorTemplate)
	text := status + " " + title + ": " + msg + "\n"
	return &page{
		html: []byte(html), text: []byte(text),
		htmlLen: []string{strconv.Itoa(len(html))}, textLen: []string{strconv.Itoa(len(text))},
	}
}

// wantsHTML reports whether an Accept header asks for HTML: a media range
// text/html or application/xhtml+xml, any case, with a q above zero. A
// missing Accept gets plain text.
func wantsHTML(accept string) bool {
	for len(accept) > 0 {
		var item string
		item, accept, _ = strings.Cut(accept, ",")
		mt, params, _ := strings.Cut(item, ";")
		mt = strings.TrimSpace(mt)
		if !strings.EqualFold(mt, "text/html") && !strings.EqualFold(mt, "application/xhtml+xml") {
			continue
		}
		if !qIsZero(params) {
			return true
		}
	}
	return false
}

// qIsZero reports whether media-range parameters carry q=0 (q=0, q=0.0 ...).
func qIsZero(params string) bool {
	for len(params) > 0 {
		var kv string
		kv, params, _ = strings.Cut(params, ";")
		k, v, ok := strings.Cut(strings.TrimSpace(kv), "=")
		if !ok || !strings.EqualFold(strings.TrimSpace(k), "q") {
			continue
		}
		v = strings.TrimSpace(v)
		if v == "" || v[0] != '0' {
			return false
		}
		return strings.Trim(v[1:], ".0") == ""
	}
	return false
}

// writePage writes the shield's own answer: small HTML for browsers, plain
// text otherwise, never cached, with Rampart-Mitigated: reason.
func writePage(w http.ResponseWriter, r *http.Request, status int, reason string) {
	pg := pages[status]
	if pg == nil {
		pg = renderPage(status)
	}
	h := w.Header()
	body, length, ctype := pg.text, pg.textLen, hdrTypeText
	if wantsHTML(r.Header.Get("Accept")) {
		body, length, ctype = pg.html, pg.htmlLen, hdrTypeHTML
	}
	h["Content-Type"] = ctype
	h["Content-Length"] = length
	h["Cache-Control"] = hdrNoStore
	h["X-Content-Type-Options"] = hdrNoSniff
	if rv, ok := reasonValues[reason]; ok {
		h[HeaderMitigated] = rv
	} else {
		h[HeaderMitigated] = []string{reason}
	}
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		_, _ = w.Write(body)
	}
}
