package challenge

import (
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"

	"github.com/rampart-shield/rampart/internal/verdict"
)

// Header values shared by every response; slices are assigned to the
// header map directly (len == cap, so a later Add copies instead of
// writing into them).
var (
	hdrNoStore       = []string{"no-store"}
	hdrNoSniff       = []string{"nosniff"}
	hdrMitigated     = []string{"challenge"}
	hdrMitigatedLoop = []string{"challenge-loop"}
	hdrHTML          = []string{"text/html; charset=utf-8"}
	hdrJSON          = []string{"application/json"}
	hdrText          = []string{"text/plain; charset=utf-8"}
	hdrJS            = []string{"text/javascript; charset=utf-8"}
	hdrReferrer      = []string{"same-origin"}
	hdrFrame         = []string{"SAMEORIGIN"}
	hdrImmutable     = []string{"public, max-age=31536000, immutable"}
	hdrVaryAccept    = []string{"Accept, Accept-Language, Sec-Fetch-Mode"}
)

// bufPool holds page buffers (*[]byte).
var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 16<<10); return &b }}

// IsNavigation reports whether r looks like a top-level page navigation:
// Sec-Fetch-Mode: navigate, or, from clients that do not send
// Sec-Fetch-Mode, an Accept header naming text/html. Only navigations get
// the HTML interstitial; everything else gets a short 403.
func IsNavigation(r *http.Request) bool {
	if m := r.Header["Sec-Fetch-Mode"]; len(m) > 0 {
		return m[0] == "navigate"
	}
	for _, a := range r.Header["Accept"] {
		if strings.Contains(a, "text/html") {
			return true
		}
	}
	return false
}

// wantsJSON reports whether a non-navigation request prefers JSON.
func wantsJSON(r *http.Request) bool {
	for _, a := range r.Header["Accept"] {
		if strings.Contains(a, "json") {
			return true
		}
	}
	return false
}

// Challenge answers a request that needs a clearance, for the client ip, at
// the difficulty of mode (clamped to under_attack). Page navigations
// (IsNavigation) get the HTML interstitial in the language Accept-Language
// prefers; other requests get a 403 JSON answer (when Accept names JSON)
// carrying the same challenge, or a short text/plain one. Every answer is
// 403 with Rampart-Mitigated: challenge and Cache-Control: no-store; pages
// carry a strict Content-Security-Policy. Issuing costs one HMAC and 16
// random bytes, and no memory is kept.
func (s *Service) Challenge(w http.ResponseWriter, r *http.Request, ip netip.Addr, mode verdict.Mode) {
	h := w.Header()
	h["Cache-Control"] = hdrNoStore
	h["X-Content-Type-Options"] = hdrNoSniff
	h["Rampart-Mitigated"] = hdrMitigated
	h["Vary"] = hdrVaryAccept
	var ua string
	if v := r.Header["User-Agent"]; len(v) > 0 {
		ua = v[0]
	}
	blob, p, err := s.newPuzzle(s.o.Now(), ip, ua, mode)
	if err != nil {
		s.o.Logger.Error("challenge: issuing challenge", "err", err)
		h["Content-Type"] = hdrText
		w.WriteHeader(http.StatusServiceUnavailable)
		w.Write([]byte("503 Service Unavailable: the challenge could not be issued.\n"))
		return
	}
	ret := returnURL(r)
	bp := bufPool.Get().(*[]byte)
	defer bufPool.Put(bp)
	buf := (*bp)[:0]
	nav := IsNavigation(r)
	switch {
	case nav:
		var al string
		if v := r.Header["Accept-Language"]; len(v) > 0 {
			al = v[0]
		}
		page := s.pages.challenge[s.pages.pick(al)]
		h["Content-Type"] = hdrHTML
		h["Content-Security-Policy"] = page.csp
		h["Referrer-Policy"] = hdrReferrer
		h["X-Frame-Options"] = hdrFrame
		h["Content-Language"] = page.lang1
		for i, part := range page.parts {
			buf = append(buf, part...)
			if i == len(page.fields) {
				break
			}
			switch page.fields[i] {
			case fieldData:
				buf = s.appendPuzzleJSON(buf, blob, &p, ret, r.Method)
			case fieldChallenge:
				buf = append(buf, blob...)
			case fieldReturn:
				buf = appendHTMLEscaped(buf, ret)
			}
		}
		s.pagesServed.Add(1)
	case wantsJSON(r):
		h["Content-Type"] = hdrJSON
		buf = append(buf, `{"error":"challenge","message":"This site asks visitors to prove they use a web browser. Load the page in a browser with JavaScript, or solve the puzzle as documented.","puzzle":`...)
		buf = s.appendPuzzleJSON(buf, blob, &p, ret, r.Method)
		buf = append(buf, "}\n"...)
	default:
		h["Content-Type"] = hdrText
		buf = append(buf, "403 Forbidden: this site asks visitors to prove they use a web browser.\nLoad the page in a browser with JavaScript turned on.\n"...)
	}
	*bp = buf
	h["Content-Length"] = []string{strconv.Itoa(len(buf))}
	w.WriteHeader(http.StatusForbidden)
	if r.Method != http.MethodHead {
		w.Write(buf)
	}
}

// appendPuzzleJSON appends the challenge object that pages, the JSON answer
// and ParseChallenge share (see Puzzle).
func (s *Service) appendPuzzleJSON(b []byte, blob string, p *puzzle, ret, method string) []byte {
	b = append(b, `{"v":1,"challenge":"`...)
	b = append(b, blob...)
	b = append(b, `","seed":"`...)
	b = b64.AppendEncode(b, p.seed[:])
	b = append(b, `","difficulty":`...)
	b = strconv.AppendUint(b, uint64(p.difficulty), 10)
	b = append(b, `,"expires":`...)
	b = strconv.AppendInt(b, p.expires, 10)
	b = append(b, `,"verify":"`+PathPrefix+`verify","check":"`+PathPrefix+`check","worker":"`+PathPrefix...)
	b = append(b, s.pages.workerName...)
	b = append(b, `","return":`...)
	b = appendJSONString(b, ret)
	b = append(b, `,"method":`...)
	b = appendJSONString(b, cleanMethod(method))
	if s.o.NoJS == NoJSPass {
		b = append(b, `,"nojs":"`+PathPrefix+`nojs"`...)
	}
	if s.o.forceJSFallback {
		b = append(b, `,"js":true`...)
	}
	return append(b, '}')
}

// cleanMethod returns method if it is a plain upper-case token, else POST.
func cleanMethod(m string) string {
	if len(m) == 0 || len(m) > 16 {
		return http.MethodPost
	}
	for i := 0; i < len(m); i++ {
		if m[i] < 'A' || m[i] > 'Z' {
			return http.MethodPost
		}
	}
	return m
}

// appendJSONString appends s as a JSON string, escaping everything outside
// printable ASCII and the characters that matter inside HTML (<, >, &, ',
// ") as \u00XX, so the result is safe in a <script> data block.
func appendJSONString(b []byte, s string) []byte {
	const hexDigits = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c < 0x20 || c >= 0x7f || c == '<' || c == '>' || c == '&' || c == '\'' || c == '"' || c == '\\':
			b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
		default:
			b = append(b, c)
		}
	}
	return append(b, '"')
}

// appendHTMLEscaped appends s escaped for HTML text and quoted attributes.
func appendHTMLEscaped(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '&':
			b = append(b, "&amp;"...)
		case '<':
			b = append(b, "&lt;"...)
		case '>':
			b = append(b, "&gt;"...)
		case '"':
			b = append(b, "&#34;"...)
		case '\'':
			b = append(b, "&#39;"...)
		default:
			b = append(b, c)
		}
	}
	return b
}

// returnURL is where the visitor goes once cleared: the request's path and
// query, made safe (see sanitizeReturn), shortened to the path alone when
// longer than MaxReturnURL.
func returnURL(r *http.Request) string {
	u := r.RequestURI
	if u == "" || u[0] != '/' {
		u = r.URL.RequestURI()
	}
	if safeReturn(u) {
		return u
	}
	u = escapeUnsafe(u)
	if len(u) > MaxReturnURL {
		u, _, _ = strings.Cut(u, "?")
	}
	return sanitizeReturn(u)
}

// sanitizeReturn returns u if it is a safe same-site path (see safeReturn),
// else "/". It is applied to every return URL a client sends back, so the
// endpoints are no open redirect.
func sanitizeReturn(u string) string {
	if safeReturn(u) {
		return u
	}
	return "/"
}

// safeReturn reports whether u is a local path ("/..." but not "//" or
// "/\", which browsers read as another host), at most MaxReturnURL long,
// of printable ASCII without quotes, angle brackets or backslashes, and
// not under PathPrefix (which would loop).
func safeReturn(u string) bool {
	if len(u) == 0 || len(u) > MaxReturnURL || u[0] != '/' || strings.HasPrefix(u, PathPrefix) {
		return false
	}
	if len(u) > 1 && (u[1] == '/' || u[1] == '\\') {
		return false
	}
	for i := 0; i < len(u); i++ {
		if !safeURLByte(u[i]) {
			return false
		}
	}
	return true
}

func safeURLByte(c byte) bool {
	return c > 0x20 && c < 0x7f && c != '"' && c != '<' && c != '>' && c != '\\' && c != '`' && c != '{' && c != '}' && c != '|' && c != '^' && c != '\''
}

// escapeUnsafe percent-encodes the bytes safeURLByte refuses.
func escapeUnsafe(u string) string {
	const hexDigits = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(u); i++ {
		if c := u[i]; safeURLByte(c) {
			b.WriteByte(c)
		} else {
			b.WriteByte('%')
			b.WriteByte(hexDigits[c>>4])
			b.WriteByte(hexDigits[c&0xf])
		}
	}
	return b.String()
}
