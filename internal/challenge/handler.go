package challenge

import (
	"context"
	"encoding/json"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// maxFormBody bounds the body of the verify and nojs endpoints.
const maxFormBody = 4 << 10

// ctxKey is the context key of the client address.
type ctxKey struct{}

// WithClientIP returns ctx carrying the client address the shield resolved;
// Handler reads it from there.
func WithClientIP(ctx context.Context, ip netip.Addr) context.Context {
	return context.WithValue(ctx, ctxKey{}, ip)
}

// ClientIP returns the address stored by WithClientIP.
func ClientIP(ctx context.Context) (netip.Addr, bool) {
	ip, ok := ctx.Value(ctxKey{}).(netip.Addr)
	return ip, ok && ip.IsValid()
}

// Handler serves everything under PathPrefix, taking the client address
// from the request context (WithClientIP); a request without one is a
// wiring error and gets 500. Use Serve to pass the address directly.
func (s *Service) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ip, ok := ClientIP(r.Context())
		if !ok {
			s.o.Logger.Error("challenge: request without client address; wrap it with challenge.WithClientIP")
			http.Error(w, "500 Internal Server Error: client address unknown", http.StatusInternalServerError)
			return
		}
		s.Serve(w, r, ip)
	})
}

// Serve answers a request under PathPrefix for the client ip:
//
//	POST verify             redeem a solution, set the clearance cookie (JSON answer)
//	GET  check              after verify: 303 to the page if the cookie came back, else explain
//	POST nojs               redeem a challenge without work (NoJS "pass", AllowNoJS permitting)
//	GET  worker.<hash>.js   the solver worker (cacheable for a year)
//
// Anything else is 404.
func (s *Service) Serve(w http.ResponseWriter, r *http.Request, ip netip.Addr) {
	rest, ok := strings.CutPrefix(r.URL.Path, PathPrefix)
	h := w.Header()
	h["X-Content-Type-Options"] = hdrNoSniff
	if ok && rest == s.pages.workerName {
		s.serveWorker(w, r)
		return
	}
	h["Cache-Control"] = hdrNoStore
	switch {
	case !ok:
		http.NotFound(w, r)
	case rest == "verify":
		s.serveVerify(w, r, ip)
	case rest == "check":
		s.serveCheck(w, r, ip)
	case rest == "nojs":
		s.serveNoJS(w, r, ip)
	default:
		http.NotFound(w, r)
	}
}

func allow(w http.ResponseWriter, r *http.Request, methods ...string) bool {
	for _, m := range methods {
		if r.Method == m {
			return true
		}
	}
	w.Header().Set("Allow", strings.Join(methods, ", "))
	http.Error(w, "405 Method Not Allowed", http.StatusMethodNotAllowed)
	return false
}

func (s *Service) serveWorker(w http.ResponseWriter, r *http.Request) {
	if !allow(w, r, http.MethodGet, http.MethodHead) {
		return
	}
	h := w.Header()
	h["Content-Type"] = hdrJS
	h["Cache-Control"] = hdrImmutable
	h["Content-Security-Policy"] = s.pages.workerCSP
	h["Content-Length"] = []string{strconv.Itoa(len(s.pages.worker))}
	if r.Method == http.MethodHead {
		return
	}
	w.Write(s.pages.worker)
}

// VerifyResponse is the JSON answer of the verify endpoint.
type VerifyResponse struct {
	// OK reports whether the solution was accepted; the answer then sets
	// the clearance cookie.
	OK bool `json:"ok"`
	// Next is where the browser goes next (the check endpoint, which sends
	// it on to the original page once the cookie comes back).
	Next string `json:"next,omitempty"`
	// Receipt proves to the check endpoint that this browser was cleared,
	// so a missing cookie is recognised as a loop.
	Receipt string `json:"receipt,omitempty"`
	// Error is the VerifyResult label when OK is false.
	Error string `json:"error,omitempty"`
	// Retry says a fresh challenge may succeed (expired, replayed, key
	// rotated, network changed).
	Retry bool `json:"retry,omitempty"`
}

func (s *Service) serveVerify(w http.ResponseWriter, r *http.Request, ip netip.Addr) {
	if !allow(w, r, http.MethodPost) {
		return
	}
	form, ok := s.readForm(w, r)
	if !ok {
		s.failed[VerifyMalformed].Add(1)
		writeJSON(w, http.StatusBadRequest, VerifyResponse{Error: VerifyMalformed.String()})
		return
	}
	ret := sanitizeReturn(form.Get("u"))
	out, res := s.redeem(r, ip, form.Get("c"), form.Get("n"), false)
	if res != VerifyOK {
		s.failed[res].Add(1)
		status := http.StatusForbidden
		if res == VerifyMalformed {
			status = http.StatusBadRequest
		}
		writeJSON(w, status, VerifyResponse{Error: res.String(), Retry: res.retryable()})
		return
	}
	s.solved.Add(1)
	if out.merged {
		s.merged.Add(1)
	}
	if ms, err := strconv.ParseUint(form.Get("ms"), 10, 32); err == nil {
		h, _ := strconv.ParseUint(form.Get("h"), 10, 64)
		s.clientSolves.Add(1)
		s.clientSolveNanos.Add(uint64(min(time.Duration(ms)*time.Millisecond, 10*time.Minute)))
		s.clientHashes.Add(min(h, 1<<40))
	}
	s.setCookie(w, r, out)
	writeJSON(w, http.StatusOK, VerifyResponse{
		OK:      true,
		Next:    checkURL(ret, out.receipt, form.Get("m")),
		Receipt: out.receipt,
	})
}

// readForm parses a small urlencoded POST body.
func (s *Service) readForm(w http.ResponseWriter, r *http.Request) (url.Values, bool) {
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBody)
	if err := r.ParseForm(); err != nil {
		return nil, false
	}
	return r.PostForm, true
}

// checkURL is the check endpoint's address for a return URL, a receipt and
// the original method.
func checkURL(ret, receipt, method string) string {
	q := url.Values{"u": {ret}, "r": {receipt}}
	if m := cleanMethod(method); method != "" && m != http.MethodGet && m != http.MethodHead {
		q.Set("m", m)
	}
	return PathPrefix + "check?" + q.Encode()
}

// setCookie sets the clearance cookie: host-only, Path=/, HttpOnly,
// SameSite=Lax, Secure over TLS, and Max-Age rather than Expires so that a
// client whose clock is wrong does not throw it away.
func (s *Service) setCookie(w http.ResponseWriter, r *http.Request, out redeemed) {
	maxAge := int(out.token.expires - s.o.Now().Unix())
	http.SetCookie(w, &http.Cookie{
		Name:     CookieName,
		Value:    out.cookie,
		Path:     "/",
		MaxAge:   max(maxAge, 1),
		HttpOnly: true,
		Secure:   r.TLS != nil,
		SameSite: http.SameSiteLaxMode,
	})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, _ := json.Marshal(v) // plain struct: cannot fail
	w.Header()["Content-Type"] = hdrJSON
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
}

// serveCheck is where the browser lands after verify. With the cookie back,
// it sends the browser on to its page (or, for a POST, explains that the
// form must be sent again). Without it, and with a receipt proving a
// solution was accepted moments ago, the browser would loop: the check
// counts the loop and explains the cause instead. loop=1 comes from the
// page's sessionStorage guard (challenged again right after a solution).
func (s *Service) serveCheck(w http.ResponseWriter, r *http.Request, ip netip.Addr) {
	if !allow(w, r, http.MethodGet, http.MethodHead) {
		return
	}
	q := r.URL.Query()
	ret := sanitizeReturn(q.Get("u"))
	_, res := s.Check(r, ip)
	loop := q.Get("loop") == "1"
	_, receipt := s.openReceipt(q.Get("r"), s.o.Now())
	switch {
	case res == CheckValid && !loop:
		if m := q.Get("m"); m != "" && m != http.MethodGet && m != http.MethodHead {
			s.renderNotice(w, r, http.StatusOK, "resend", ret)
			return
		}
		http.Redirect(w, r, ret, http.StatusSeeOther)
	case !receipt:
		// Not right after a verify of ours: nothing to diagnose. The page
		// will challenge normally if needed.
		http.Redirect(w, r, ret, http.StatusSeeOther)
	default:
		cause := loopCauseOf(res, loop)
		s.loops[cause].Add(1)
		w.Header()["Rampart-Mitigated"] = hdrMitigatedLoop
		s.renderNotice(w, r, http.StatusForbidden, cause.String(), ret)
	}
}

// loopCauseOf maps a check result seen after a verified solution to the
// cause shown to the visitor.
func loopCauseOf(res CheckResult, guard bool) LoopCause {
	switch res {
	case CheckValid:
		if guard {
			return LoopRechallenged
		}
	case CheckAbsent:
		return LoopNoCookie
	case CheckPrefix, CheckOtherFamily:
		return LoopAddress
	case CheckUserAgent:
		return LoopBrowser
	}
	return LoopOther
}

// serveNoJS grants a clearance without proof of work for a valid,
// unredeemed challenge, when NoJS is "pass" and AllowNoJS agrees, then
// sends the browser through the check endpoint like a solution would.
func (s *Service) serveNoJS(w http.ResponseWriter, r *http.Request, ip netip.Addr) {
	if !allow(w, r, http.MethodPost) {
		return
	}
	form, ok := s.readForm(w, r)
	ret := "/"
	if ok {
		ret = sanitizeReturn(form.Get("u"))
	}
	if s.o.NoJS != NoJSPass {
		s.failed[VerifyNoJSDisabled].Add(1)
		s.renderNotice(w, r, http.StatusForbidden, "nojs-disabled", ret)
		return
	}
	if !ok {
		s.failed[VerifyMalformed].Add(1)
		s.renderNotice(w, r, http.StatusBadRequest, "invalid", ret)
		return
	}
	out, res := s.redeem(r, ip, form.Get("c"), "", true)
	switch res {
	case VerifyOK:
	case VerifyNoJSLimited:
		s.failed[res].Add(1)
		w.Header().Set("Retry-After", "60")
		s.renderNotice(w, r, http.StatusTooManyRequests, "nojs-limited", ret)
		return
	default:
		s.failed[res].Add(1)
		s.renderNotice(w, r, http.StatusForbidden, "invalid", ret)
		return
	}
	s.solved.Add(1)
	s.nojsPasses.Add(1)
	if out.merged {
		s.merged.Add(1)
	}
	s.setCookie(w, r, out)
	http.Redirect(w, r, checkURL(ret, out.receipt, ""), http.StatusSeeOther)
}

// renderNotice writes a notice page of kind in the visitor's language.
func (s *Service) renderNotice(w http.ResponseWriter, r *http.Request, status int, kind, ret string) {
	lang := pickLanguage(r.Header.Get("Accept-Language"), s.pages.noticeLangs)
	n := s.pages.notice[lang]
	var b strings.Builder
	host := r.Host
	if h, _, ok := strings.Cut(host, ":"); ok && !strings.Contains(host, "]") {
		host = h
	}
	if err := n.t.Execute(&b, noticeData{Kind: kind, Return: ret, Host: host}); err != nil {
		// Checked for every kind at load; only a failing writer gets here.
		s.o.Logger.Error("challenge: rendering notice", "kind", kind, "err", err)
		http.Error(w, "500 Internal Server Error", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h["Content-Type"] = hdrHTML
	h["Content-Security-Policy"] = n.csp
	h["Referrer-Policy"] = hdrReferrer
	h["X-Frame-Options"] = hdrFrame
	h["Content-Language"] = []string{lang}
	h["Cache-Control"] = hdrNoStore
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		w.Write([]byte(b.String()))
	}
}
