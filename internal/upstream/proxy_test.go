package upstream

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// echoHeaders is an origin that answers with the request's headers, Host
// and protocol as JSON.
func echoHeaders(t testing.TB) *httptest.Server {
	t.Helper()
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		out := map[string]string{"Host": r.Host, "Proto": r.Proto}
		for k, v := range r.Header {
			out[k] = strings.Join(v, " | ")
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(out)
	}))
	t.Cleanup(s.Close)
	return s
}

func TestForwardingHeaders(t *testing.T) {
	origin := echoHeaders(t)
	cases := []struct {
		name    string
		opts    func(*Options)
		wrap    func(http.Handler) http.Handler
		reqHdr  map[string]string
		want    map[string]string
		absent  []string
		present []string
	}{
		{
			name:   "untrusted peer: client XFF and X-Real-IP dropped",
			reqHdr: map[string]string{"X-Forwarded-For": "6.6.6.6", "X-Real-Ip": "6.6.6.6", "X-Forwarded-Proto": "https", "X-Forwarded-Host": "evil", "Forwarded": "for=6.6.6.6"},
			want: map[string]string{
				"X-Forwarded-For": "127.0.0.1", "X-Real-Ip": "127.0.0.1", "X-Forwarded-Proto": "http",
				"Via": "1.1 rampart", "Proto": "HTTP/1.1",
			},
			absent: []string{"Forwarded"},
		},
		{
			name: "WithClient: trusted chain kept, client IP first, TLS",
			wrap: func(h http.Handler) http.Handler {
				return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					ci := ClientInfo{IP: netip.MustParseAddr("203.0.113.9"), TLS: true, TrustedChain: "10.0.0.1, 127.0.0.1"}
					h.ServeHTTP(w, r.WithContext(WithClient(r.Context(), ci)))
				})
			},
			reqHdr: map[string]string{"X-Forwarded-For": "6.6.6.6, 203.0.113.9, 10.0.0.1"},
			want: map[string]string{
				"X-Forwarded-For": "203.0.113.9, 10.0.0.1, 127.0.0.1", "X-Real-Ip": "203.0.113.9",
				"X-Forwarded-Proto": "https",
			},
		},
		{
			name: "Client hook wins, mapped v6 unmapped",
			opts: func(o *Options) {
				o.Client = func(*http.Request) ClientInfo {
					return ClientInfo{IP: netip.MustParseAddr("::ffff:198.51.100.4")}
				}
			},
			want: map[string]string{"X-Forwarded-For": "198.51.100.4", "X-Forwarded-Proto": "http"},
		},
		{
			name: "hook without IP falls back to peer but keeps TLS",
			opts: func(o *Options) {
				o.Client = func(*http.Request) ClientInfo { return ClientInfo{TLS: true} }
			},
			want: map[string]string{"X-Forwarded-For": "127.0.0.1", "X-Forwarded-Proto": "https"},
		},
		{
			name:   "Via appended, Host kept, X-Forwarded-Host set",
			reqHdr: map[string]string{"Via": "1.0 fred", "Host": "www.example.org"},
			want:   map[string]string{"Via": "1.0 fred, 1.1 rampart", "Host": "www.example.org", "X-Forwarded-Host": "www.example.org"},
		},
		{
			name:   "Host override and custom Via",
			opts:   func(o *Options) { o.Host = "origin.internal"; o.Via = "edge-1" },
			reqHdr: map[string]string{"Host": "www.example.org"},
			want:   map[string]string{"Via": "1.1 edge-1", "Host": "origin.internal", "X-Forwarded-Host": "www.example.org"},
		},
		{
			name:    "no User-Agent added, Accept-Encoding passes untouched",
			reqHdr:  map[string]string{"Accept-Encoding": "br"},
			want:    map[string]string{"Accept-Encoding": "br"},
			absent:  []string{"User-Agent"},
			present: []string{"X-Forwarded-For"},
		},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			// Alternate the two transports across cases.
			o := Options{Targets: targets(t, origin), DisableFastPath: i%2 == 1, HealthCheck: HealthCheckOptions{Disabled: true}}
			if tc.opts != nil {
				tc.opts(&o)
			}
			var h http.Handler = newPool(t, o)
			if tc.wrap != nil {
				h = tc.wrap(h)
			}
			fe, c := frontend(t, h)
			req, _ := http.NewRequest(http.MethodGet, fe.URL+"/x", nil)
			for k, v := range tc.reqHdr {
				if k == "Host" {
					req.Host = v
					continue
				}
				req.Header.Set(k, v)
			}
			if _, ok := tc.reqHdr["User-Agent"]; !ok {
				req.Header["User-Agent"] = nil
			}
			res, err := c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer res.Body.Close()
			var got map[string]string
			if err := json.NewDecoder(res.Body).Decode(&got); err != nil {
				t.Fatal(err)
			}
			for k, v := range tc.want {
				if got[k] != v {
					t.Errorf("%s = %q, want %q (all: %v)", k, got[k], v, got)
				}
			}
			for _, k := range tc.absent {
				if v, ok := got[k]; ok {
					t.Errorf("%s = %q reached the origin", k, v)
				}
			}
			for _, k := range tc.present {
				if _, ok := got[k]; !ok {
					t.Errorf("%s missing", k)
				}
			}
		})
	}
}

func TestHopByHopHeadersRemoved(t *testing.T) {
	var seen http.Header
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen = r.Header.Clone()
		w.Header().Set("Connection", "X-Origin-Private")
		w.Header().Set("X-Origin-Private", "secret")
		w.Header().Set("Keep-Alive", "timeout=5")
		w.Header().Set("Proxy-Authenticate", "Basic")
		w.Header().Set("X-Public", "yes")
		_, _ = io.WriteString(w, "ok")
	}))
	t.Cleanup(origin.Close)
	p := newPool(t, Options{Targets: targets(t, origin), HealthCheck: HealthCheckOptions{Disabled: true}})
	fe, _ := frontend(t, p)

	// A raw request, so that the client library adds nothing of its own.
	conn, err := net.Dial("tcp", fe.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_, _ = io.WriteString(conn, "GET / HTTP/1.1\r\nHost: site\r\n"+
		"Connection: keep-alive, X-Client-Private\r\nX-Client-Private: secret\r\n"+
		"Keep-Alive: 300\r\nProxy-Authorization: Basic Zm9v\r\nProxy-Connection: keep-alive\r\n"+
		"Te: gzip\r\nTrailer: X-T\r\nX-Public: yes\r\n\r\n")
	res, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, res.Body)
	res.Body.Close()

	for _, h := range []string{"X-Client-Private", "Keep-Alive", "Proxy-Authorization", "Proxy-Connection", "Te", "Trailer"} {
		if v := seen.Get(h); v != "" {
			t.Errorf("request hop-by-hop %s = %q reached the origin", h, v)
		}
	}
	if seen.Get("X-Public") != "yes" {
		t.Errorf("end-to-end request header lost: %v", seen)
	}
	for _, h := range []string{"X-Origin-Private", "Keep-Alive", "Proxy-Authenticate"} {
		if v := res.Header.Get(h); v != "" {
			t.Errorf("response hop-by-hop %s = %q reached the client", h, v)
		}
	}
	if res.Header.Get("X-Public") != "yes" {
		t.Errorf("end-to-end response header lost: %v", res.Header)
	}
}

func TestServerSentEventsStream(t *testing.T) {
	release := make(chan struct{})
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		_, _ = io.WriteString(w, "data: first\n\n")
		w.(http.Flusher).Flush()
		select {
		case <-release:
		case <-r.Context().Done():
			return
		}
		_, _ = io.WriteString(w, "data: second\n\n")
	}))
	t.Cleanup(origin.Close)
	p := newPool(t, Options{Targets: targets(t, origin), HealthCheck: HealthCheckOptions{Disabled: true}})
	fe, c := frontend(t, p)

	res, err := c.Get(fe.URL + "/events")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	br := bufio.NewReader(res.Body)
	line, err := br.ReadString('\n')
	if err != nil {
		t.Fatalf("reading first event while the origin is still open: %v", err)
	}
	if line != "data: first\n" {
		t.Fatalf("first line = %q", line)
	}
	if got := status(p, origin.URL).InFlight; got != 1 {
		t.Errorf("in flight during stream = %d, want 1", got)
	}
	close(release)
	rest, _ := io.ReadAll(br)
	if !strings.Contains(string(rest), "data: second") {
		t.Fatalf("rest = %q", rest)
	}
	waitFor(t, "stream to end", 5*time.Second, func() bool { return status(p, origin.URL).InFlight == 0 })
}

// wsEchoOrigin accepts an Upgrade: websocket request, answers 101 and
// echoes every byte back until the client closes.
func wsEchoOrigin(t testing.TB) *httptest.Server {
	t.Helper()
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.EqualFold(r.Header.Get("Upgrade"), "websocket") {
			http.Error(w, "want upgrade", http.StatusBadRequest)
			return
		}
		conn, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer conn.Close()
		_, _ = brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: test\r\n\r\n")
		_ = brw.Flush()
		_, _ = io.Copy(conn, brw)
	}))
	t.Cleanup(s.Close)
	return s
}

func TestWebSocketUpgrade(t *testing.T) {
	origin := wsEchoOrigin(t)
	observed := make(chan int, 1)
	p := newPool(t, Options{
		Targets: targets(t, origin), HealthCheck: HealthCheckOptions{Disabled: true},
		OnResponse: func(_ *http.Request, status int, _ time.Duration) { observed <- status },
	})
	fe, _ := frontend(t, p)

	conn, err := net.Dial("tcp", fe.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	_, _ = io.WriteString(conn, "GET /ws HTTP/1.1\r\nHost: site\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"+
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
	br := bufio.NewReader(conn)
	res, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusCode != http.StatusSwitchingProtocols || !strings.EqualFold(res.Header.Get("Upgrade"), "websocket") {
		t.Fatalf("status %d, Upgrade %q", res.StatusCode, res.Header.Get("Upgrade"))
	}
	for _, msg := range []string{"hello", "world"} {
		if _, err := io.WriteString(conn, msg); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, len(msg))
		if _, err := io.ReadFull(br, buf); err != nil {
			t.Fatal(err)
		}
		if string(buf) != msg {
			t.Fatalf("echo = %q, want %q", buf, msg)
		}
	}
	if got := status(p, origin.URL).InFlight; got != 1 {
		t.Errorf("in flight during the session = %d, want 1", got)
	}
	conn.Close()
	waitFor(t, "tunnel to close", 5*time.Second, func() bool { return status(p, origin.URL).InFlight == 0 })
	if f := status(p, origin.URL).Failures; f != 0 {
		t.Errorf("failures after a clean close = %d", f)
	}
	if got := <-observed; got != http.StatusSwitchingProtocols {
		t.Errorf("observed status %d, want 101", got)
	}
}

func TestRequestBodyStreams(t *testing.T) {
	gotFirst := make(chan string, 1)
	total := make(chan int, 1)
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		buf := make([]byte, 5)
		if _, err := io.ReadFull(r.Body, buf); err != nil {
			t.Errorf("origin read: %v", err)
			return
		}
		gotFirst <- string(buf)
		rest, _ := io.ReadAll(r.Body)
		total <- len(buf) + len(rest)
		_, _ = io.WriteString(w, "done")
	}))
	t.Cleanup(origin.Close)
	p := newPool(t, Options{Targets: targets(t, origin), HealthCheck: HealthCheckOptions{Disabled: true}})
	fe, c := frontend(t, p)

	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		res, err := c.Post(fe.URL+"/upload", "application/octet-stream", pr)
		if err == nil {
			res.Body.Close()
		}
		done <- err
	}()
	if _, err := io.WriteString(pw, "first"); err != nil {
		t.Fatal(err)
	}
	// The origin must see the first chunk while the client still holds
	// the rest: the body is streamed, not buffered.
	select {
	case s := <-gotFirst:
		if s != "first" {
			t.Fatalf("first chunk = %q", s)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("origin never saw the first chunk before the body ended")
	}
	_, _ = io.WriteString(pw, strings.Repeat("x", 100000))
	pw.Close()
	if n := <-total; n != 5+100000 {
		t.Fatalf("origin got %d bytes", n)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestH2COrigin(t *testing.T) {
	origin := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, r.Proto)
	}))
	var protos http.Protocols
	protos.SetHTTP1(true)
	protos.SetUnencryptedHTTP2(true)
	origin.Config.Protocols = &protos
	origin.Start()
	t.Cleanup(origin.Close)
	u := mustURL(t, strings.Replace(origin.URL, "http://", "h2c://", 1))
	p := newPool(t, Options{Targets: []Target{{URL: u}}, HealthCheck: HealthCheckOptions{Disabled: true}})
	fe, c := frontend(t, p)
	res, body := get(t, c, fe.URL+"/")
	if res.StatusCode != 200 || body != "HTTP/2.0" {
		t.Fatalf("status %d body %q, want HTTP/2.0", res.StatusCode, body)
	}
}

func TestHTTPSOrigin(t *testing.T) {
	origin := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = fmt.Fprintf(w, "%s tls=%v", r.Proto, r.TLS != nil)
	}))
	origin.EnableHTTP2 = true
	origin.Config.ErrorLog = log.New(io.Discard, "", 0) // the untrusted case logs a handshake error
	origin.StartTLS()
	t.Cleanup(origin.Close)
	roots := x509.NewCertPool()
	roots.AddCert(origin.Certificate())
	cases := []struct {
		name, scheme, want string
		tls                *tls.Config
		status             int
	}{
		{"trusted https", "https", "HTTP/1.1 tls=true", &tls.Config{RootCAs: roots}, 200},
		{"trusted h2", "h2", "HTTP/2.0 tls=true", &tls.Config{RootCAs: roots}, 200},
		{"untrusted certificate", "https", "", nil, http.StatusBadGateway},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			u := mustURL(t, strings.Replace(origin.URL, "https://", tc.scheme+"://", 1))
			p := newPool(t, Options{Targets: []Target{{URL: u}}, TLSClientConfig: tc.tls, HealthCheck: HealthCheckOptions{Disabled: true}})
			fe, c := frontend(t, p)
			res, body := get(t, c, fe.URL+"/")
			if res.StatusCode != tc.status {
				t.Fatalf("status %d, want %d (%s)", res.StatusCode, tc.status, body)
			}
			if tc.want != "" && body != tc.want {
				t.Fatalf("body %q, want %q", body, tc.want)
			}
		})
	}
}

func TestOnResponseObserver(t *testing.T) {
	origin := newOrigin(t, "a")
	type obs struct {
		path   string
		status int
	}
	got := make(chan obs, 10)
	clock := newFakeClock()
	p := newPool(t, Options{
		Targets: append(targets(t, origin), Target{URL: mustURL(t, "http://"+deadAddr(t))}),
		Now:     clock.Now, Retries: -1,
		HealthCheck: HealthCheckOptions{Disabled: true},
		OnResponse: func(r *http.Request, status int, d time.Duration) {
			got <- obs{r.URL.Path, status}
		},
	})
	fe, c := frontend(t, p)
	var saw []obs
	for i := 0; i < 2; i++ {
		get(t, c, fe.URL+"/p")
		saw = append(saw, <-got)
	}
	want := []obs{{"/p", 200}, {"/p", 502}}
	if d := cmp.Diff(want, saw, cmp.AllowUnexported(obs{})); d != "" {
		t.Fatalf("observations (-want +got):\n%s", d)
	}
}

func TestClientContextHelpers(t *testing.T) {
	if _, ok := ClientFromContext(context.Background()); ok {
		t.Fatal("empty context has a client")
	}
	ci := ClientInfo{IP: netip.MustParseAddr("192.0.2.1"), TLS: true, TrustedChain: "10.0.0.1"}
	got, ok := ClientFromContext(WithClient(context.Background(), ci))
	if !ok || got != ci {
		t.Fatalf("got %+v, %v", got, ok)
	}
}
