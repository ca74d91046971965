package upstream

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"net/http/httputil"
	"net/netip"
	"net/textproto"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// rawOrigin is a loopback origin that writes canned raw answers, chosen by
// the last path segment, so that the direct path meets heads net/http's
// server would never write (odd case, folded lines, bare LF, duplicates).
// Every answer's body, where it has one, is the request it received as
// JSON, so that tests see what reached the origin.
type rawOrigin struct {
	l     net.Listener
	conns sync.WaitGroup
	mu    sync.Mutex
	open  int // connections accepted
}

func newRawOrigin(t testing.TB) *rawOrigin {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	o := &rawOrigin{l: l}
	go o.serve()
	t.Cleanup(func() {
		l.Close()
		o.conns.Wait()
	})
	return o
}

func (o *rawOrigin) URL() string { return "http://" + o.l.Addr().String() }

func (o *rawOrigin) accepted() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.open
}

func (o *rawOrigin) serve() {
	for {
		c, err := o.l.Accept()
		if err != nil {
			return
		}
		o.mu.Lock()
		o.open++
		o.mu.Unlock()
		o.conns.Add(1)
		go func() {
			defer o.conns.Done()
			defer c.Close()
			br := bufio.NewReader(c)
			for {
				c.SetReadDeadline(time.Now().Add(10 * time.Second))
				req, err := http.ReadRequest(br)
				if err != nil {
					return
				}
				resp, closeAfter := rawAnswer(req)
				if _, err := io.WriteString(c, resp); err != nil || closeAfter {
					return
				}
			}
		}()
	}
}

// seen is what the origin received, as JSON.
func seen(r *http.Request) string {
	keys := make([]string, 0, len(r.Header))
	for k := range r.Header {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	m := map[string]any{"method": r.Method, "uri": r.RequestURI, "host": r.Host}
	for _, k := range keys {
		m["h:"+k] = r.Header[k]
	}
	b, _ := json.Marshal(m)
	return string(b)
}

// rawAnswer returns the raw answer to r and whether to close after it.
func rawAnswer(r *http.Request) (string, bool) {
	body := seen(r)
	name := r.URL.Path[strings.LastIndexByte(r.URL.Path, '/')+1:]
	cl := fmt.Sprintf("Content-Length: %d\r\n", len(body))
	if r.Method == http.MethodHead {
		body = ""
	}
	switch name {
	case "plain":
		return "HTTP/1.1 200 OK\r\nServer: raw\r\nContent-Type: text/plain\r\n" + cl + "\r\n" + body, false
	case "odd":
		// Lower-case and duplicated names, white space, hop-by-hop fields
		// and a field the Connection header names.
		return "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\nx-multi: a\r\nX-Multi: b\r\n" +
			"Set-Cookie: a=1\r\nSet-Cookie: b=2\r\nConnection: X-Hop, keep-alive\r\nX-Hop: secret\r\n" +
			"Keep-Alive: timeout=5\r\nProxy-Authenticate: Basic\r\nCache-Control:   no-store  \r\n" +
			"x-custom-header: v\r\nETAG: \"1\"\r\nRampart-Cache: origin\r\n" + cl + "\r\n" + body, false
	case "noreason":
		return "HTTP/1.1 200\r\nContent-Type: text/plain\r\n" + cl + "\r\n" + body, false
	case "chunked", "chunked-unannounced":
		hd, tr := "Trailer: X-Sum\r\n", "X-Sum: 42\r\n"
		if name == "chunked-unannounced" {
			hd, tr = "", "X-Late: 1\r\n"
		}
		hd = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n" + hd + "Transfer-Encoding: chunked\r\n\r\n"
		if r.Method == http.MethodHead {
			return hd, false
		}
		return hd + fmt.Sprintf("%x\r\n%s\r\n0\r\n%s\r\n", len(body), body, tr), false
	case "eof":
		return "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n" + body, true
	case "close":
		return "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nConnection: close\r\n" + cl + "\r\n" + body, true
	case "sse":
		return "HTTP/1.1 200 OK\r\nContent-Type: Text/Event-Stream; charset=utf-8\r\n" + cl + "\r\n" + body, false
	case "eof-head":
		return "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n", true
	case "204":
		return "HTTP/1.1 204 No Content\r\nX-A: 1\r\n\r\n", false
	case "304":
		return "HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\nEtag: \"x\"\r\n\r\n", false
	case "head-nocl":
		if r.Method == http.MethodHead {
			return "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n", false
		}
		return "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n" + cl + "\r\n" + body, false
	case "hints":
		return "HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n" +
			"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n" + cl + "\r\n" + body, false
	case "http10":
		return "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n" + cl + "\r\n" + body, true
	case "bigheader":
		return "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nX-Big: " + strings.Repeat("a", 5000) + "\r\n" + cl + "\r\n" + body, false
	case "manyfields":
		var b strings.Builder
		for i := 0; i < maxDirectFields+5; i++ {
			fmt.Fprintf(&b, "X-F%d: %d\r\n", i, i)
		}
		return "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n" + b.String() + cl + "\r\n" + body, false
	case "big":
		big := body + strings.Repeat("z", 200<<10)
		if r.Method == http.MethodHead {
			big = ""
		}
		return fmt.Sprintf("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n%s", len(body)+200<<10, big), false
	case "fold":
		return "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nX-Fold: a\r\n b\r\n" + cl + "\r\n" + body, false
	case "dupcl":
		return "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n" + cl + cl + "\r\n" + body, false
	case "badcl":
		return "HTTP/1.1 200 OK\r\nContent-Length: 1x\r\n\r\n" + body, true
	case "lf":
		return "HTTP/1.1 200 OK\nContent-Type: text/plain\n" + strings.TrimSuffix(cl, "\r\n") + "\n\n" + body, false
	case "ctl":
		return "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nX-Bad: a\x01b\r\n" + cl + "\r\n" + body, true
	case "502":
		return "HTTP/1.1 502 Bad Gateway\r\nContent-Type: text/plain\r\n" + cl + "\r\n" + body, false
	case "599":
		return "HTTP/1.1 599 Odd\r\nContent-Type: text/plain\r\n" + cl + "\r\n" + body, false
	case "short":
		return "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 100000\r\n\r\npartial", true
	case "extra":
		if r.Method == http.MethodHead {
			return "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nEXTRA", false
		}
		return "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nokEXTRA", false
	}
	return "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n", false
}

// answer is what a client saw, for comparing the two paths.
type answer struct {
	Status  int
	Header  http.Header
	Body    string
	Trailer http.Header
	Hints   []string
	Err     string
}

func fetch(t *testing.T, c *http.Client, method, url string, hdr http.Header) answer {
	t.Helper()
	var a answer
	trace := &httptrace.ClientTrace{Got1xxResponse: func(code int, h textproto.MIMEHeader) error {
		a.Hints = append(a.Hints, fmt.Sprintf("%d %v", code, h))
		return nil
	}}
	req, err := http.NewRequestWithContext(httptrace.WithClientTrace(context.Background(), trace), method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Host = "site.example"
	for k, v := range hdr {
		req.Header[k] = v
	}
	res, err := c.Do(req)
	if err != nil {
		a.Err = "request failed"
		return a
	}
	b, err := io.ReadAll(res.Body)
	res.Body.Close()
	if err != nil {
		a.Err = "body broken"
	}
	a.Status, a.Header, a.Body, a.Trailer = res.StatusCode, res.Header, string(b), res.Trailer
	a.Header.Del("Date")
	return a
}

var directNames = []string{
	"plain", "odd", "noreason", "chunked", "chunked-unannounced", "eof", "close", "sse", "204", "304",
	"head-nocl", "hints", "http10", "bigheader", "manyfields", "big", "fold", "dupcl", "badcl",
	"lf", "ctl", "502", "599", "short", "extra", "eof-head",
}

var directRequests = []struct {
	name string
	path string
	hdr  http.Header
}{
	{"bare", "/", nil},
	{"browser", "/a/b?x=1&y=2", http.Header{
		"User-Agent": {"Mozilla/5.0"}, "Accept": {"text/html"}, "Cookie": {"a=1", "b=2"},
		"Accept-Language": {"en"}, "Connection": {"keep-alive"},
	}},
	{"forwarding headers dropped", "/", http.Header{
		"X-Forwarded-For": {"6.6.6.6"}, "X-Forwarded-Host": {"evil"}, "X-Forwarded-Proto": {"https"},
		"Forwarded": {"for=6.6.6.6"}, "X-Real-Ip": {"6.6.6.6"}, "Via": {"1.0 other", "1.1 second"},
	}},
	{"connection-named and hop-by-hop", "/", http.Header{
		"Connection": {"X-Client-Hop, Via"}, "X-Client-Hop": {"1"}, "Via": {"1.0 hidden"},
		"Keep-Alive": {"timeout=5"}, "Te": {"trailers, deflate"}, "Proxy-Authorization": {"Basic x"},
		"Trailer": {"X-T"},
	}},
	{"user agent named in Connection", "/", http.Header{"Connection": {"user-agent"}, "User-Agent": {"ua"}}},
	{"empty user agent", "/", http.Header{"User-Agent": {""}}},
	{"values with spaces", "/", http.Header{"X-Space": {"  v  "}, "User-Agent": {" ua "}}},
	{"semicolon query", "/q?a=1;b=2&c=3", nil},
	{"bad escape query", "/q?a=%zz&b=1", nil},
	{"force query", "/q?", nil},
	{"escaped path", "/a%2Fb/c%20d", nil},
}

// TestDirectMatchesReverseProxy sends the same requests through a pool on
// the direct path and one on net/http's Transport and ReverseProxy
// (DisableFastPath), to an origin that writes unusual answers, and
// compares what the origin received and what the client saw.
func TestDirectMatchesReverseProxy(t *testing.T) {
	origin := newRawOrigin(t)
	tg := []Target{{URL: mustURL(t, origin.URL())}}
	direct := newPool(t, Options{Targets: tg, HealthCheck: HealthCheckOptions{Disabled: true}})
	ref := newPool(t, Options{Targets: tg, HealthCheck: HealthCheckOptions{Disabled: true}, DisableFastPath: true})
	if !direct.direct || ref.direct {
		t.Fatalf("direct path: %v and %v, want true and false", direct.direct, ref.direct)
	}
	feD, clD := frontend(t, direct)
	feR, clR := frontend(t, ref)
	for _, name := range directNames {
		for _, rq := range directRequests {
			for _, method := range []string{http.MethodGet, http.MethodHead} {
				t.Run(name+"/"+rq.name+"/"+method, func(t *testing.T) {
					path := strings.TrimSuffix(strings.SplitN(rq.path, "?", 2)[0], "/") + "/" + name
					if q := strings.SplitN(rq.path, "?", 2); len(q) == 2 {
						path += "?" + q[1]
					}
					got := fetch(t, clD, method, feD.URL+path, rq.hdr)
					want := fetch(t, clR, method, feR.URL+path, rq.hdr)
					if d := cmp.Diff(want, got); d != "" {
						t.Fatalf("direct path differs from ReverseProxy (-ReverseProxy +direct):\n%s", d)
					}
				})
			}
		}
	}
	// Everything the in-place parser takes must have taken it.
	if n := direct.replays.Load(); n == 0 {
		t.Fatal("no answer was replayed: the unusual cases did not reach net/http's parser")
	}
}

// TestDirectInPlace checks which answers the in-place parser takes and that
// the connection is kept for them.
func TestDirectInPlace(t *testing.T) {
	cases := []struct {
		name    string
		method  string
		inPlace bool
		reuse   bool
	}{
		{"plain", "GET", true, true},
		{"plain", "HEAD", true, true},
		{"odd", "GET", true, true},
		{"noreason", "GET", true, true},
		{"big", "GET", true, true},
		{"204", "GET", true, true},
		{"304", "GET", true, true},
		{"502", "GET", true, true},
		{"599", "GET", true, true},
		{"close", "GET", true, false},
		{"extra", "GET", true, false},
		{"chunked", "GET", false, true},
		{"sse", "GET", false, true},
		{"head-nocl", "HEAD", false, true},
		{"hints", "GET", false, true},
		{"bigheader", "GET", false, true},
		{"manyfields", "GET", false, true},
		{"fold", "GET", false, true},
		{"lf", "GET", false, true},
	}
	for _, tc := range cases {
		t.Run(tc.name+"/"+tc.method, func(t *testing.T) {
			origin := newRawOrigin(t)
			p := newPool(t, Options{Targets: []Target{{URL: mustURL(t, origin.URL())}}, HealthCheck: HealthCheckOptions{Disabled: true}})
			fe, cl := frontend(t, p)
			for i := 0; i < 3; i++ {
				a := fetch(t, cl, tc.method, fe.URL+"/"+tc.name, nil)
				if a.Err != "" || a.Status == http.StatusBadGateway && tc.name != "502" {
					t.Fatalf("request %d: %+v", i, a)
				}
			}
			if got := p.replays.Load() == 0; got != tc.inPlace {
				t.Fatalf("in place %v, want %v (%d replays)", got, tc.inPlace, p.replays.Load())
			}
			conns := 1
			if !tc.reuse {
				conns = 3
			}
			if n := origin.accepted(); n != conns {
				t.Fatalf("origin accepted %d connections for 3 requests, want %d", n, conns)
			}
		})
	}
}

// TestDirectFailures checks that broken answers count against the origin
// and reach the client as the shield's pages or as a cut response.
func TestDirectFailures(t *testing.T) {
	cases := []struct {
		path  string
		check func(answer) bool
	}{
		{"/badcl", func(a answer) bool {
			return a.Status == http.StatusBadGateway && a.Header.Get(HeaderMitigated) == ReasonUpstreamError
		}},
		// The client sees the connection close before the answer (net/http
		// had not sent the buffered head when the handler aborted).
		{"/short", func(a answer) bool { return a.Err != "" }},
		{"/502", func(a answer) bool { return a.Status == http.StatusBadGateway && a.Header.Get(HeaderMitigated) == "" }},
		// A head cut off by the close.
		{"/eof-head", func(a answer) bool { return a.Status == http.StatusBadGateway }},
	}
	for _, tc := range cases {
		t.Run(tc.path, func(t *testing.T) {
			origin := newRawOrigin(t)
			p := newPool(t, Options{Targets: []Target{{URL: mustURL(t, origin.URL())}}, HealthCheck: HealthCheckOptions{Disabled: true}})
			fe, cl := frontend(t, p)
			if a := fetch(t, cl, "GET", fe.URL+tc.path, nil); !tc.check(a) {
				t.Fatalf("client saw %+v", a)
			}
			waitFor(t, "in flight to drain", 5*time.Second, func() bool { return p.Health()[0].InFlight == 0 })
			if st := p.Health()[0]; st.Failures == 0 {
				t.Fatalf("not counted as a failure: %+v", st)
			}
		})
	}
}

// TestDirectOnResponse checks the status and duration reported for the
// direct path, including the 499 of a client that leaves.
func TestDirectOnResponse(t *testing.T) {
	origin := newRawOrigin(t)
	type obs struct {
		status int
		d      time.Duration
	}
	got := make(chan obs, 8)
	p := newPool(t, Options{
		Targets: []Target{{URL: mustURL(t, origin.URL())}}, HealthCheck: HealthCheckOptions{Disabled: true},
		OnResponse: func(_ *http.Request, status int, d time.Duration) { got <- obs{status, d} },
	})
	fe, cl := frontend(t, p)
	for _, tc := range []struct {
		path string
		want int
	}{{"/plain", 200}, {"/502", 502}, {"/chunked", 200}, {"/badcl", 502}} {
		fetch(t, cl, "GET", fe.URL+tc.path, nil)
		if o := <-got; o.status != tc.want || o.d <= 0 {
			t.Fatalf("%s: OnResponse %+v, want status %d", tc.path, o, tc.want)
		}
	}
}

func FuzzParseHead(f *testing.F) {
	for _, name := range directNames {
		req, _ := http.NewRequest("GET", "http://site/"+name, nil)
		req.RequestURI = "/" + name
		resp, _ := rawAnswer(req)
		f.Add(resp, false)
		f.Add(resp, true)
	}
	f.Fuzz(func(t *testing.T, raw string, head bool) {
		method := http.MethodGet
		if head {
			method = http.MethodHead
		}
		end, complete := headEnd([]byte(raw))
		if !complete {
			return
		}
		pc := &h1Conn{}
		var a directAnswer
		if !pc.parseHead([]byte(raw[:end]), method, &a) {
			return
		}
		// What the in-place parser takes, net/http must read the same way.
		req, _ := http.NewRequest(method, "http://site/", nil)
		res, err := http.ReadResponse(bufio.NewReader(strings.NewReader(raw)), req)
		if err != nil {
			t.Fatalf("in place took %q; net/http: %v", raw[:end], err)
		}
		if res.StatusCode != a.status {
			t.Fatalf("status %d, net/http %d", a.status, res.StatusCode)
		}
		if want := res.ContentLength; method != http.MethodHead && want != a.clen {
			t.Fatalf("length %d, net/http %d", a.clen, want)
		}
		if res.Close != a.close {
			t.Fatalf("close %v, net/http %v", a.close, res.Close)
		}
		h := http.Header{}
		for _, fl := range pc.fields {
			h[fl.key] = append(h[fl.key], fl.value)
		}
		if a.close {
			delete(h, "Connection") // net/http drops it; hop-by-hop either way
		}
		if d := cmp.Diff(res.Header, h); d != "" {
			t.Fatalf("header (-net/http +in place):\n%s", d)
		}
	})
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// requestsFor returns what the origin would parse from the direct path's
// request for r, and from ReverseProxy's (the pool's Rewrite, then the
// fast transport's writer), or nil where the bytes do not parse.
func requestsFor(t testing.TB, p *Pool, r *http.Request) (direct, ref *http.Request) {
	t.Helper()
	u := p.ups[0]
	var d strings.Builder
	bw := bufio.NewWriter(&d)
	fw := p.forwarding(r)
	writeDirect(bw, r, u, &fw)
	_ = bw.Flush()
	direct, _ = http.ReadRequest(bufio.NewReader(strings.NewReader(d.String())))

	var s strings.Builder
	rp := &httputil.ReverseProxy{
		Rewrite: p.rewrite,
		Transport: roundTripFunc(func(out *http.Request) (*http.Response, error) {
			out.URL.Scheme, out.URL.Host = u.scheme, u.host
			bw := bufio.NewWriter(&s)
			if err := writeRequest(bw, out); err != nil {
				return nil, err
			}
			_ = bw.Flush()
			return &http.Response{StatusCode: http.StatusNoContent, Header: http.Header{}, Body: http.NoBody, Request: out}, nil
		}),
	}
	rp.ServeHTTP(httptest.NewRecorder(), r)
	ref, _ = http.ReadRequest(bufio.NewReader(strings.NewReader(s.String())))
	return direct, ref
}

func compareRequests(t testing.TB, direct, ref *http.Request) {
	t.Helper()
	if (direct == nil) != (ref == nil) {
		t.Fatalf("parsable: direct %v, ReverseProxy %v", direct != nil, ref != nil)
	}
	if direct == nil {
		return
	}
	if direct.Method != ref.Method || direct.RequestURI != ref.RequestURI || direct.Host != ref.Host {
		t.Fatalf("request line: direct %s %s %s, ReverseProxy %s %s %s",
			direct.Method, direct.RequestURI, direct.Host, ref.Method, ref.RequestURI, ref.Host)
	}
	if d := cmp.Diff(ref.Header, direct.Header); d != "" {
		t.Fatalf("headers (-ReverseProxy +direct):\n%s", d)
	}
}

func TestWriteDirectMatchesReverseProxy(t *testing.T) {
	origin := newRawOrigin(t)
	tg := []Target{{URL: mustURL(t, origin.URL())}}
	pools := map[string]*Pool{
		"peer": newPool(t, Options{Targets: tg, HealthCheck: HealthCheckOptions{Disabled: true}}),
		"client with chain": newPool(t, Options{Targets: tg, HealthCheck: HealthCheckOptions{Disabled: true}, Host: "origin.internal",
			Client: func(*http.Request) ClientInfo {
				return ClientInfo{IP: netip.MustParseAddr("::ffff:203.0.113.9"), TLS: true, TrustedChain: "10.0.0.1, 10.0.0.2 "}
			}}),
		"client without address": newPool(t, Options{Targets: tg, HealthCheck: HealthCheckOptions{Disabled: true},
			Client: func(*http.Request) ClientInfo { return ClientInfo{TLS: true} }}),
	}
	for pname, p := range pools {
		for _, rq := range directRequests {
			for _, method := range []string{http.MethodGet, http.MethodHead} {
				t.Run(pname+"/"+rq.name+"/"+method, func(t *testing.T) {
					r := httptest.NewRequest(method, "http://site.example"+rq.path, nil)
					for k, v := range rq.hdr {
						r.Header[k] = v
					}
					direct, ref := requestsFor(t, p, r)
					if direct == nil {
						t.Fatal("direct request does not parse")
					}
					compareRequests(t, direct, ref)
				})
			}
		}
	}
}

func FuzzWriteDirect(f *testing.F) {
	for _, rq := range directRequests {
		f.Add(rq.path, rq.hdr.Get("User-Agent"), rq.hdr.Get("Connection"), rq.hdr.Get("Via"), "v")
	}
	origin := newRawOrigin(f)
	p := newPool(f, Options{Targets: []Target{{URL: mustURL(f, origin.URL())}}, HealthCheck: HealthCheckOptions{Disabled: true}})
	f.Fuzz(func(t *testing.T, target, ua, conn, via, xa string) {
		if !strings.HasPrefix(target, "/") {
			return
		}
		r, err := http.ReadRequest(bufio.NewReader(strings.NewReader("GET " + target + " HTTP/1.1\r\nHost: site.example\r\n\r\n")))
		if err != nil {
			return
		}
		r.RemoteAddr = "192.0.2.1:1234"
		r.Header["User-Agent"] = []string{ua}
		r.Header["Connection"] = []string{conn}
		r.Header["Via"] = []string{via}
		r.Header["X-A"] = []string{xa}
		if !p.canUseDirect(r) {
			return
		}
		direct, ref := requestsFor(t, p, r)
		if ref != nil && direct == nil {
			t.Fatalf("direct path wrote an unparsable request for %q", target)
		}
		compareRequests(t, direct, ref)
	})
}
