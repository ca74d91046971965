package upstream

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httputil"
	"net/netip"
	"net/textproto"
	"net/url"
	"strings"
	"time"

	"golang.org/x/net/http/httpguts"
)

// The direct path proxies the requests that make up almost all of a site's
// traffic, and of a flood: GET and HEAD without a body and without an
// Upgrade, when every origin of the pool speaks HTTP/1.1 ("http" or
// "https" targets with the fast path on). It does what ReverseProxy with
// the pool's Rewrite and RoundTripper does, without building an outbound
// request or a response object:
//
//   - the request is written straight from the inbound one into the
//     connection's buffer, leaving out the hop-by-hop headers (and those
//     the Connection header names), Forwarded, X-Forwarded-*, X-Real-Ip and
//     Via, which are written afresh as Rewrite would set them; the query
//     is cleaned as ReverseProxy cleans it;
//   - the answer's head is parsed in place from the connection's read
//     buffer into one string, and its fields go into the ResponseWriter's
//     header map with one []string backing array (no textproto map, no
//     second copy), hop-by-hop fields left out;
//   - a body of known length is copied from the read buffer and the
//     connection to the client; a small page arrives with its head in one
//     read and leaves with it in one write.
//
// Answers the in-place parser does not take on (informational 1xx
// answers, chunked or close-delimited bodies, server-sent events, HTTP/1.0,
// heads over 4 KiB, anything unusual) are read with net/http's parser and
// handed to a ReverseProxy that only replays them, so that everything
// beyond the common case behaves exactly as before. Retries, breakers,
// passive ejection, latency and in-flight accounting, OnResponse and the
// error pages are the pool's, as on the ReverseProxy path.

// maxDirectFields bounds the header fields the in-place parser takes;
// answers with more take the net/http parser.
const maxDirectFields = 64

// headerField is one parsed response header field.
type headerField struct {
	key, value string
}

// canUseDirect reports whether r may take the direct path.
func (p *Pool) canUseDirect(r *http.Request) bool {
	if !p.direct || (r.Method != http.MethodGet && r.Method != http.MethodHead) {
		return false
	}
	if r.Body != nil && r.Body != http.NoBody {
		return false
	}
	if _, up := r.Header["Upgrade"]; up {
		return false
	}
	if r.URL == nil || r.URL.Opaque != "" {
		return false
	}
	host := r.Host
	if p.host != "" {
		host = p.host
	}
	return !strings.ContainsAny(host, " \t\r\n/\\?#")
}

// directAnswer is the origin's answer on the direct path, its head parsed
// in place (res nil) or by net/http (res set).
type directAnswer struct {
	pc     *h1Conn
	stop   func() bool
	res    *http.Response
	status int
	clen   int64 // body length; 0 when there is none (HEAD, 204, 304)
	head   int   // bytes of the head, still buffered in pc.br
	close  bool  // the origin will close the connection
}

// serveDirect proxies r on the direct path.
func (p *Pool) serveDirect(w http.ResponseWriter, r *http.Request) {
	if p.onResponse == nil {
		p.proxyDirect(w, r)
		return
	}
	start := p.now()
	status := 0
	defer func() {
		if status == 0 {
			status = statusClientClosed
		}
		p.onResponse(r, status, p.now().Sub(start))
	}()
	status = p.proxyDirect(w, r)
}

// proxyDirect runs the attempts of one request, as poolTransport does, and
// answers it. It returns the status written (0 when the client went away
// before an answer).
func (p *Pool) proxyDirect(w http.ResponseWriter, r *http.Request) (status int) {
	ctx := r.Context()
	fw := p.forwarding(r)
	var triedArr [maxTries]*upstream
	tries := 1 + p.retries
	var lastErr error
	for attempt := 0; attempt < tries; attempt++ {
		u, probe := p.pick(triedArr[:attempt])
		if u == nil {
			break
		}
		triedArr[attempt] = u
		u.inflight.Add(1)
		u.requests.Add(1)
		start := p.now()
		var a directAnswer
		err := u.h1.exchangeDirect(ctx, w, r, u, &fw, &a)
		if err == nil {
			u.observeLatency(p.now().Sub(start))
			switch a.status {
			case http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
				p.recordFailure(u, probe, &statusError{a.status})
			default:
				p.recordSuccess(u, probe)
			}
			if a.res != nil {
				return p.replay(w, r, u, a.res)
			}
			return p.respondDirect(w, r, u, &a)
		}
		u.inflight.Add(-1)
		if ctx.Err() != nil {
			releaseProbe(u, probe)
			return 0
		}
		if p.classify != nil {
			if status, reason, ok := p.classify(err); ok {
				releaseProbe(u, probe)
				return p.answerError(w, r, &proxyError{status: status, reason: reason, err: err})
			}
		}
		p.recordFailure(u, probe, err)
		lastErr = err
		if !isDialError(err) {
			break
		}
	}
	if lastErr == nil {
		return p.answerError(w, r, &proxyError{status: http.StatusBadGateway, reason: ReasonUpstreamError, err: ErrNoUpstream})
	}
	status, reason := upstreamErrorStatus(lastErr)
	return p.answerError(w, r, &proxyError{status: status, reason: reason, err: lastErr})
}

// exchangeDirect sends r to the origin and reads the head of its answer
// into a, retrying once on a fresh connection when a reused one turns out
// to have been closed by the origin.
func (t *h1Transport) exchangeDirect(ctx context.Context, w http.ResponseWriter, r *http.Request, u *upstream, fw *forwarding, a *directAnswer) error {
	for attempt := 0; ; attempt++ {
		pc, err := t.getConn(ctx, attempt > 0)
		if err != nil {
			return err
		}
		err = pc.exchangeDirect(ctx, w, r, u, fw, a)
		if err == nil {
			return nil
		}
		if errors.Is(err, errStaleConn) && attempt == 0 {
			continue
		}
		return err
	}
}

func (pc *h1Conn) exchangeDirect(ctx context.Context, w http.ResponseWriter, r *http.Request, u *upstream, fw *forwarding, a *directAnswer) error {
	stop := pc.begin(ctx)
	writeDirect(pc.bw, r, u, fw)
	if err := pc.send(); err != nil {
		return pc.fail(ctx, stop, err)
	}
	*a = directAnswer{pc: pc, stop: stop}
	for {
		b, _ := pc.br.Peek(pc.br.Buffered())
		end, complete := headEnd(b)
		if complete {
			if pc.parseHead(b[:end], r.Method, a) {
				if a.status == http.StatusRequestTimeout && pc.reused {
					// An unsolicited 408 on a reused connection: the
					// origin was closing it (see readResponse).
					return pc.fail(ctx, stop, errStaleConn)
				}
				a.head = end
				pc.lr.n = -1
				return nil
			}
			break
		}
		if len(b) == pc.br.Size() {
			break // a head over the buffer: net/http's parser takes it
		}
		if _, err := pc.br.Peek(len(b) + 1); err != nil {
			if len(b) == 0 || !errors.Is(err, io.EOF) {
				return pc.fail(ctx, stop, timeoutHeaders(err))
			}
			break // net/http reports what is wrong with the bytes read
		}
	}
	res, err := pc.readResponse(ctx, r, stop, func(code int, h textproto.MIMEHeader) error {
		// As ReverseProxy forwards 1xx answers.
		rh := w.Header()
		for k, vv := range h {
			for _, v := range vv {
				rh.Add(k, v)
			}
		}
		w.WriteHeader(code)
		clear(rh)
		return nil
	})
	if err != nil {
		return err
	}
	a.res, a.status = res, res.StatusCode
	return nil
}

// headEnd returns the length of the head at the start of b (up to and
// including the first empty line) and whether b holds all of it. A bare LF
// ends lines too, so that such heads reach net/http's parser instead of
// waiting for bytes that never come.
func headEnd(b []byte) (int, bool) {
	i := 0
	for {
		j := bytes.IndexByte(b[i:], '\n')
		if j < 0 {
			return 0, false
		}
		empty := j == 0 || (j == 1 && b[i] == '\r')
		i += j + 1
		if empty {
			return i, true
		}
	}
}

// parseHead parses a complete response head in place. It returns false,
// consuming nothing, when the answer is not one the direct path answers
// itself: then net/http's parser reads it. On success the fields are in
// pc.fields (their strings share one allocation) and a is filled in.
func (pc *h1Conn) parseHead(b []byte, method string, a *directAnswer) bool {
	// Status line: "HTTP/1.1 200 OK", reason optional.
	nl := bytes.IndexByte(b, '\n')
	if nl < 13 || b[nl-1] != '\r' || string(b[:9]) != "HTTP/1.1 " {
		return false
	}
	code := 0
	for _, c := range b[9:12] {
		if c < '0' || c > '9' {
			return false
		}
		code = code*10 + int(c-'0')
	}
	if code < 200 || code > 599 || (b[12] != ' ' && nl != 13) {
		return false
	}
	// One pass to validate and count, so that the strings are made once.
	fields := 0
	for i := nl + 1; ; {
		j := bytes.IndexByte(b[i:], '\n')
		if j < 1 || b[i+j-1] != '\r' {
			return false // bare LF
		}
		line := b[i : i+j-1]
		i += j + 1
		if len(line) == 0 {
			break
		}
		colon := bytes.IndexByte(line, ':')
		if colon <= 0 {
			return false
		}
		for _, c := range line[:colon] {
			if !httpguts.IsTokenRune(rune(c)) {
				return false // obs-fold, spaces before the colon, bad names
			}
		}
		for _, c := range line[colon+1:] {
			if (c < ' ' && c != '\t') || c == 0x7f {
				return false
			}
		}
		if fields++; fields > maxDirectFields {
			return false
		}
	}
	head := string(b[nl+1:])
	pc.fields = pc.fields[:0]
	clen, clens := int64(-1), 0
	a.close = false
	event, te, trailer := false, false, false
	for len(head) > 2 {
		line, rest, _ := strings.Cut(head, "\r\n")
		head = rest
		k, v, _ := strings.Cut(line, ":")
		k = canonicalKey(k)
		v = textproto.TrimString(v)
		pc.fields = append(pc.fields, headerField{k, v})
		switch k {
		case "Content-Length":
			clens++
			n, ok := parseLength(v)
			if !ok {
				return false
			}
			clen = n
		case "Transfer-Encoding":
			te = true
		case "Trailer":
			trailer = true
		case "Connection":
			if httpguts.HeaderValuesContainsToken([]string{v}, "close") {
				a.close = true
			}
		case "Content-Type":
			if containsFold(v, "event-stream") {
				event = true // streamed: ReverseProxy flushes every write
			}
		}
	}
	if te || trailer || event || clens > 1 {
		return false
	}
	a.status = code
	switch {
	case method == http.MethodHead:
		if clens == 0 {
			return false // unknown length: ReverseProxy flushes at once
		}
		a.clen = 0
	case code == http.StatusNoContent || code == http.StatusNotModified:
		a.clen = 0
	case clens == 0:
		return false // delimited by the close
	default:
		a.clen = clen
	}
	return true
}

// parseLength parses a Content-Length value as net/http does, refusing
// what it refuses (signs, spaces inside, more than 18 digits...).
func parseLength(v string) (int64, bool) {
	if v == "" || len(v) > 18 {
		return 0, false
	}
	var n int64
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}

func containsFold(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if strings.EqualFold(s[i:i+len(sub)], sub) {
			return true
		}
	}
	return false
}

// commonHeaders are header names interned by canonicalKey, so that an
// origin writing them in another case costs no allocation.
var commonHeaders = func() map[string]string {
	m := map[string]string{}
	for _, k := range []string{
		"Accept-Ranges", "Access-Control-Allow-Origin", "Age", "Alt-Svc", "Cache-Control",
		"Connection", "Content-Disposition", "Content-Encoding", "Content-Language",
		"Content-Length", "Content-Location", "Content-Range", "Content-Security-Policy",
		"Content-Type", "Cross-Origin-Opener-Policy", "Cross-Origin-Resource-Policy", "Date",
		"Etag", "Expires", "Keep-Alive", "Last-Modified", "Link", "Location", "Permissions-Policy",
		"Pragma", "Referrer-Policy", "Retry-After", "Server", "Set-Cookie",
		"Strict-Transport-Security", "Trailer", "Transfer-Encoding", "Upgrade", "Vary", "Via",
		"Www-Authenticate", "X-Content-Type-Options", "X-Frame-Options", "X-Powered-By",
		"X-Xss-Protection",
	} {
		m[k] = k
	}
	return m
}()

// canonicalKey returns the canonical form of a valid header name k
// (textproto's), without allocating when k is already canonical or a
// common name.
func canonicalKey(k string) string {
	upper := true
	canonical := true
	for i := 0; i < len(k); i++ {
		c := k[i]
		if upper && 'a' <= c && c <= 'z' || !upper && 'A' <= c && c <= 'Z' {
			canonical = false
			break
		}
		upper = c == '-'
	}
	if canonical {
		return k
	}
	if len(k) <= 64 {
		var buf [64]byte
		b := buf[:len(k)]
		upper = true
		for i := 0; i < len(k); i++ {
			c := k[i]
			if upper && 'a' <= c && c <= 'z' {
				c -= 'a' - 'A'
			} else if !upper && 'A' <= c && c <= 'Z' {
				c += 'a' - 'A'
			}
			b[i] = c
			upper = c == '-'
		}
		if s, ok := commonHeaders[string(b)]; ok {
			return s
		}
	}
	return textproto.CanonicalMIMEHeaderKey(k)
}

// respondDirect answers with a head parsed in place and its body of known
// length; it returns the status.
func (p *Pool) respondDirect(w http.ResponseWriter, r *http.Request, u *upstream, a *directAnswer) int {
	pc := a.pc
	h := w.Header()
	fields := pc.fields
	// The values' backing array is shared; each field gets a capacity-1
	// slice of it, so that appending to one never overwrites another.
	vals := make([]string, len(fields))
	var conn string
	for i, f := range fields {
		vals[i] = f.value
		if f.key == "Connection" {
			if conn == "" {
				conn = f.value
			} else {
				conn += "," + f.value
			}
		}
	}
	for i, f := range fields {
		if hopByHop(f.key) || (conn != "" && namedIn(conn, f.key)) {
			continue
		}
		if prev, ok := h[f.key]; ok {
			h[f.key] = append(prev, f.value)
		} else {
			h[f.key] = vals[i : i+1 : i+1]
		}
	}
	w.WriteHeader(a.status)
	_, _ = pc.br.Discard(a.head)
	err := p.copyDirectBody(w, r, u, a)
	u.inflight.Add(-1)
	if err != nil {
		if r.Context().Value(http.ServerContextKey) != nil {
			panic(http.ErrAbortHandler)
		}
	}
	return a.status
}

// copyDirectBody copies a.clen bytes of body to w, from the read buffer
// first, then from the connection, and returns the connection to the idle
// stack when the body was read whole. An origin that breaks off counts as
// a failure; a client that goes away does not.
func (p *Pool) copyDirectBody(w http.ResponseWriter, r *http.Request, u *upstream, a *directAnswer) error {
	pc := a.pc
	left := a.clen
	for left > 0 && pc.br.Buffered() > 0 {
		b, _ := pc.br.Peek(int(min(left, int64(pc.br.Buffered()))))
		n, err := w.Write(b)
		_, _ = pc.br.Discard(n)
		left -= int64(n)
		if err != nil {
			a.stop()
			pc.close()
			return err
		}
	}
	if left > 0 {
		_ = pc.c.SetReadDeadline(time.Time{})
		pc.rdl = 0
		buf := sharedBuffers.Get()
		defer sharedBuffers.Put(buf)
		for left > 0 {
			n, rerr := pc.br.Read(buf[:min(left, int64(len(buf)))])
			if n > 0 {
				left -= int64(n)
				if _, werr := w.Write(buf[:n]); werr != nil {
					a.stop()
					pc.close()
					return werr
				}
			}
			if rerr != nil && left > 0 {
				if rerr == io.EOF {
					rerr = io.ErrUnexpectedEOF
				}
				cancelled := !a.stop() || pc.cancelled.Load()
				pc.close()
				if !cancelled && r.Context().Err() == nil {
					p.recordFailure(u, false, rerr)
				}
				if rerr != context.Canceled {
					_, _ = logWriter{p}.Write([]byte("httputil: ReverseProxy read error during body copy: " + rerr.Error()))
				}
				return rerr
			}
		}
	}
	if !a.stop() || a.close || pc.br.Buffered() > 0 {
		pc.close() // cancelled, closing, or bytes beyond the body
		return nil
	}
	pc.t.putIdle(pc)
	return nil
}

// replay answers with a response read by net/http's parser through a
// ReverseProxy whose transport hands back that response, so that unusual
// answers (streams, trailers, unknown lengths) behave exactly as on the
// ReverseProxy path.
func (p *Pool) replay(w http.ResponseWriter, r *http.Request, u *upstream, res *http.Response) int {
	p.replays.Add(1)
	res.Body = p.trackBody(u, r, res)
	sw := &statusWriter{ResponseWriter: w}
	ctx := context.WithValue(r.Context(), replayKey{}, res)
	p.replayer.ServeHTTP(sw, r.WithContext(ctx))
	if sw.status == 0 {
		return res.StatusCode
	}
	return sw.status
}

type replayKey struct{}

// replayTransport returns the response stored in the request's context.
type replayTransport struct{}

func (replayTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	res, ok := req.Context().Value(replayKey{}).(*http.Response)
	if !ok {
		return nil, errors.New("upstream: no response to replay")
	}
	return res, nil
}

func newReplayer(p *Pool) *httputil.ReverseProxy {
	return &httputil.ReverseProxy{
		Rewrite:      func(*httputil.ProxyRequest) {},
		Transport:    replayTransport{},
		BufferPool:   sharedBuffers,
		ErrorHandler: p.handleError,
		ErrorLog:     p.proxy.ErrorLog,
	}
}

// hopByHop reports whether k (canonical) is one of the hop-by-hop headers
// ReverseProxy removes.
func hopByHop(k string) bool {
	switch k {
	case "Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate",
		"Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade":
		return true
	}
	return false
}

// namedIn reports whether the comma-separated list conn (a Connection
// header) names the header k.
func namedIn(conn, k string) bool {
	for conn != "" {
		var item string
		item, conn, _ = strings.Cut(conn, ",")
		if strings.EqualFold(textproto.TrimString(item), k) {
			return true
		}
	}
	return false
}

// forwarding is what the direct path writes into the forwarding headers.
type forwarding struct {
	ip    netip.Addr // the client, when known as an address
	ipStr string     // the client as text, when known only so ("" if unknown)
	tls   bool
	chain string
	via   string
	host  string // Host to send; "" for the origin's own
}

// forwarding resolves the client of r as Rewrite does.
func (p *Pool) forwarding(r *http.Request) forwarding {
	fw := forwarding{via: p.viaFor(r)[0], host: r.Host}
	if p.host != "" {
		fw.host = p.host
	}
	var ci ClientInfo
	ok := false
	if p.client != nil {
		ci, ok = p.client(r), true
	} else {
		ci, ok = ClientFromContext(r.Context())
	}
	switch {
	case ok && ci.IP.IsValid():
		fw.ip, fw.tls, fw.chain = ci.IP.Unmap(), ci.TLS, ci.TrustedChain
	case ok:
		fw.tls, fw.chain = ci.TLS, ci.TrustedChain
		fw.ipStr = peerIP(r.RemoteAddr)
	default:
		fw.tls = r.TLS != nil
		fw.ipStr = peerIP(r.RemoteAddr)
	}
	return fw
}

// writeDirect writes the outbound request for r in origin form into bw:
// what ReverseProxy with the pool's Rewrite and writeRequest would send,
// header order aside.
func writeDirect(bw *bufio.Writer, r *http.Request, u *upstream, fw *forwarding) {
	path := r.URL.EscapedPath()
	if path == "" {
		path = "/"
	}
	_, _ = bw.WriteString(r.Method)
	_ = bw.WriteByte(' ')
	_, _ = bw.WriteString(path)
	if q := cleanQuery(r.URL.RawQuery); q != "" || r.URL.ForceQuery {
		_ = bw.WriteByte('?')
		_, _ = bw.WriteString(q)
	}
	host := fw.host
	if host == "" {
		host = u.host
	}
	_, _ = bw.WriteString(" HTTP/1.1\r\nHost: ")
	_, _ = bw.WriteString(host)
	_, _ = bw.WriteString("\r\n")
	hdr := r.Header
	conn := ""
	if cv := hdr["Connection"]; len(cv) > 0 {
		conn = cv[0]
		for _, v := range cv[1:] {
			conn += "," + v
		}
	}
	if ua := hdr["User-Agent"]; len(ua) > 0 && ua[0] != "" && (conn == "" || !namedIn(conn, "User-Agent")) {
		_, _ = bw.WriteString("User-Agent: ")
		writeValue(bw, ua[0], 0)
		_, _ = bw.WriteString("\r\n")
	}
	var via []string
	for k, vv := range hdr {
		switch k {
		case "Host", "User-Agent", "Forwarded", hdrXFF, hdrXFH, hdrXFP, hdrXReal:
			continue
		case hdrVia:
			if conn == "" || !namedIn(conn, k) {
				via = vv
			}
			continue
		}
		if hopByHop(k) || (conn != "" && namedIn(conn, k)) || !httpguts.ValidHeaderFieldName(k) {
			continue
		}
		for _, v := range vv {
			_, _ = bw.WriteString(k)
			_, _ = bw.WriteString(": ")
			writeValue(bw, v, trimLeft|trimRight)
			_, _ = bw.WriteString("\r\n")
		}
	}
	if httpguts.HeaderValuesContainsToken(hdr["Te"], "trailers") {
		_, _ = bw.WriteString("Te: trailers\r\n")
	}
	if fw.ip.IsValid() || fw.ipStr != "" {
		var scratch [64]byte
		ip := scratch[:0]
		if fw.ip.IsValid() {
			ip = fw.ip.AppendTo(ip)
		} else {
			ip = append(ip, fw.ipStr...)
		}
		_, _ = bw.WriteString("X-Forwarded-For: ")
		_, _ = bw.Write(ip)
		if fw.chain != "" {
			_, _ = bw.WriteString(", ")
			writeValue(bw, fw.chain, trimRight)
		}
		_, _ = bw.WriteString("\r\nX-Real-Ip: ")
		_, _ = bw.Write(ip)
		_, _ = bw.WriteString("\r\n")
	}
	if r.Host != "" {
		_, _ = bw.WriteString("X-Forwarded-Host: ")
		writeValue(bw, r.Host, trimLeft|trimRight)
		_, _ = bw.WriteString("\r\n")
	}
	if fw.tls {
		_, _ = bw.WriteString("X-Forwarded-Proto: https\r\n")
	} else {
		_, _ = bw.WriteString("X-Forwarded-Proto: http\r\n")
	}
	_, _ = bw.WriteString("Via: ")
	for i, v := range via {
		if i > 0 {
			_, _ = bw.WriteString(", ")
			writeValue(bw, v, 0)
		} else {
			writeValue(bw, v, trimLeft)
		}
	}
	if len(via) > 0 {
		_, _ = bw.WriteString(", ")
	}
	_, _ = bw.WriteString(fw.via)
	_, _ = bw.WriteString("\r\n\r\n")
}

// Trimming for writeValue.
const (
	trimLeft = 1 << iota
	trimRight
)

// writeValue writes a header value as Header.Write does: CR and LF become
// spaces, and white space goes from the ends asked for (Header.Write trims
// both; values joined into one are trimmed at the outer ends only).
func writeValue(bw *bufio.Writer, v string, trim int) {
	if strings.ContainsAny(v, "\r\n") {
		v = newlineToSpace.Replace(v)
	}
	if trim&trimLeft != 0 {
		v = strings.TrimLeft(v, " \t")
	}
	if trim&trimRight != 0 {
		v = strings.TrimRight(v, " \t")
	}
	_, _ = bw.WriteString(v)
}

// cleanQuery drops unparsable query parameters as ReverseProxy does for
// Rewrite: a query with a semicolon, a bad percent escape or more than
// 10,000 parameters is parsed and re-encoded; others pass unchanged.
func cleanQuery(s string) string {
	reencode := func(s string) string {
		v, _ := url.ParseQuery(s)
		return v.Encode()
	}
	if strings.Count(s, "&")+1 > 10000 {
		return reencode(s)
	}
	for i := 0; i < len(s); {
		switch s[i] {
		case ';':
			return reencode(s)
		case '%':
			if i+2 >= len(s) || !isHex(s[i+1]) || !isHex(s[i+2]) {
				return reencode(s)
			}
			i += 3
		default:
			i++
		}
	}
	return s
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}
