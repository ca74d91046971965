package upstream

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// stallOrigin never answers until the request is cancelled or the test
// ends; hits counts requests that reached it.
func stallOrigin(t testing.TB, hits *atomic.Int32) *httptest.Server {
	t.Helper()
	done := make(chan struct{})
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		select {
		case <-r.Context().Done():
		case <-done:
		}
	}))
	t.Cleanup(s.Close)
	t.Cleanup(func() { close(done) })
	return s
}

func TestErrorPages(t *testing.T) {
	var hits atomic.Int32
	slow := stallOrigin(t, &hits)
	dead := "http://" + deadAddr(t)
	cases := []struct {
		name     string
		target   string
		method   string
		accept   string
		status   int
		reason   string
		ctype    string
		contains string
	}{
		{"refused, browser", dead, "GET", "text/html,*/*;q=0.8", 502, ReasonUpstreamError, "text/html; charset=utf-8", "<h1>502 Bad Gateway</h1>"},
		{"refused, API client", dead, "GET", "application/json", 502, ReasonUpstreamError, "text/plain; charset=utf-8", "502 Bad Gateway: "},
		{"refused, HEAD", dead, "HEAD", "text/html", 502, ReasonUpstreamError, "text/html; charset=utf-8", ""},
		{"header timeout, browser", slow.URL, "GET", "text/html", 504, ReasonUpstreamTimeout, "text/html; charset=utf-8", "<h1>504 Gateway Timeout</h1>"},
		{"header timeout, curl", slow.URL, "GET", "*/*", 504, ReasonUpstreamTimeout, "text/plain; charset=utf-8", "504 Gateway Timeout: "},
	}
	for _, tc := range cases {
		for _, path := range []string{"fast path", "net/http transport"} {
			t.Run(tc.name+"/"+path, func(t *testing.T) {
				p := newPool(t, Options{
					Targets:               []Target{{URL: mustURL(t, tc.target)}},
					ResponseHeaderTimeout: 30 * time.Millisecond,
					DisableFastPath:       path != "fast path",
					HealthCheck:           HealthCheckOptions{Disabled: true},
				})
				fe, cl := frontend(t, p)
				req, _ := http.NewRequest(tc.method, fe.URL+"/page", nil)
				req.Header.Set("Accept", tc.accept)
				res, err := cl.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				body, _ := io.ReadAll(res.Body)
				res.Body.Close()
				if res.StatusCode != tc.status || res.Header.Get(HeaderMitigated) != tc.reason {
					t.Fatalf("status %d %s=%q, want %d %q", res.StatusCode, HeaderMitigated, res.Header.Get(HeaderMitigated), tc.status, tc.reason)
				}
				if ct := res.Header.Get("Content-Type"); ct != tc.ctype {
					t.Fatalf("Content-Type %q, want %q", ct, tc.ctype)
				}
				if res.Header.Get("Cache-Control") != "no-store" {
					t.Fatalf("Cache-Control %q", res.Header.Get("Cache-Control"))
				}
				if tc.contains == "" && len(body) != 0 {
					t.Fatalf("HEAD got a body of %d bytes", len(body))
				}
				if !strings.Contains(string(body), tc.contains) {
					t.Fatalf("body %q does not contain %q", body, tc.contains)
				}
				if st := p.Health()[0]; st.Failures != 1 {
					t.Fatalf("failures = %d, want 1", st.Failures)
				}
			})
		}
	}
}

func TestClientCancelIsNotAFailure(t *testing.T) {
	var hits atomic.Int32
	slow := stallOrigin(t, &hits)
	statuses := make(chan int, 1)
	p := newPool(t, Options{
		Targets:     targets(t, slow),
		Passive:     PassiveOptions{MaxFails: 1},
		HealthCheck: HealthCheckOptions{Disabled: true},
		OnResponse:  func(_ *http.Request, status int, _ time.Duration) { statuses <- status },
	})
	fe, cl := frontend(t, p)
	for i := 0; i < 3; i++ {
		ctx, cancel := context.WithCancel(context.Background())
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, fe.URL+"/", nil)
		errc := make(chan error, 1)
		go func() {
			res, err := cl.Do(req)
			if err == nil {
				res.Body.Close()
			}
			errc <- err
		}()
		waitFor(t, "request to reach the origin", 5*time.Second, func() bool { return hits.Load() == int32(i+1) })
		cancel()
		if err := <-errc; !errors.Is(err, context.Canceled) {
			t.Fatalf("client error %v", err)
		}
		if got := <-statuses; got != statusClientClosed {
			t.Fatalf("observed status %d, want %d", got, statusClientClosed)
		}
	}
	waitFor(t, "in flight to drain", 5*time.Second, func() bool { return p.Health()[0].InFlight == 0 })
	if st := p.Health()[0]; st.Failures != 0 || st.Breaker != BreakerClosed {
		t.Fatalf("client cancellations counted against the origin: %+v", st)
	}
}

var errBodyTooSlow = errors.New("test: body too slow")

// failingBody yields n bytes, then err.
type failingBody struct {
	n   int
	err error
}

func (b *failingBody) Read(p []byte) (int, error) {
	if b.n == 0 {
		return 0, b.err
	}
	k := min(len(p), b.n)
	for i := range p[:k] {
		p[i] = 'x'
	}
	b.n -= k
	return k, nil
}

func (b *failingBody) Close() error { return nil }

func TestClientBodyErrors(t *testing.T) {
	origin := newOrigin(t, "a")
	classify := func(err error) (int, string, bool) {
		if errors.Is(err, errBodyTooSlow) {
			return http.StatusRequestTimeout, "body-too-slow", true
		}
		return 0, "", false
	}
	cases := []struct {
		name     string
		classify func(error) (int, string, bool)
		wrap     func(w http.ResponseWriter, r *http.Request) io.ReadCloser
		status   int
		reason   string
	}{
		{
			name: "hook maps the edge's slow-body error to 408", classify: classify,
			wrap: func(_ http.ResponseWriter, r *http.Request) io.ReadCloser {
				return &failingBody{n: 10, err: errBodyTooSlow}
			},
			status: 408, reason: "body-too-slow",
		},
		{
			name: "without a hook a body error is the client's 400",
			wrap: func(_ http.ResponseWriter, r *http.Request) io.ReadCloser {
				return &failingBody{n: 10, err: io.ErrUnexpectedEOF}
			},
			status: 400, reason: ReasonClientBody,
		},
		{
			name: "hook declines: default applies", classify: classify,
			wrap: func(_ http.ResponseWriter, r *http.Request) io.ReadCloser {
				return &failingBody{n: 0, err: io.ErrUnexpectedEOF}
			},
			status: 400, reason: ReasonClientBody,
		},
		{
			name:   "body over a MaxBytesReader limit is 413",
			wrap:   func(w http.ResponseWriter, r *http.Request) io.ReadCloser { return http.MaxBytesReader(w, r.Body, 16) },
			status: 413, reason: ReasonClientBody,
		},
		{
			name: "body read timeout is 408",
			wrap: func(_ http.ResponseWriter, r *http.Request) io.ReadCloser {
				return &failingBody{n: 1, err: context.DeadlineExceeded}
			},
			status: 408, reason: ReasonClientBody,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := newPool(t, Options{
				Targets:       targets(t, origin),
				Passive:       PassiveOptions{MaxFails: 1},
				ClassifyError: tc.classify,
				HealthCheck:   HealthCheckOptions{Disabled: true},
			})
			fe, cl := frontend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				r.Body = tc.wrap(w, r)
				p.ServeHTTP(w, r)
			}))
			res, err := cl.Post(fe.URL+"/upload", "text/plain", strings.NewReader(strings.Repeat("y", 64<<10)))
			if err != nil {
				t.Fatal(err)
			}
			_, _ = io.Copy(io.Discard, res.Body)
			res.Body.Close()
			if res.StatusCode != tc.status || res.Header.Get(HeaderMitigated) != tc.reason {
				t.Fatalf("status %d %q, want %d %q", res.StatusCode, res.Header.Get(HeaderMitigated), tc.status, tc.reason)
			}
			if st := p.Health()[0]; st.Failures != 0 || st.Breaker != BreakerClosed {
				t.Fatalf("client body error counted against the origin: %+v", st)
			}
		})
	}
}

func TestBrokenResponseBodyIsAFailure(t *testing.T) {
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "1000")
		_, _ = io.WriteString(w, "partial")
		conn, _, err := http.NewResponseController(w).Hijack()
		if err == nil {
			conn.Close()
		}
	}))
	t.Cleanup(origin.Close)
	p := newPool(t, Options{Targets: targets(t, origin), HealthCheck: HealthCheckOptions{Disabled: true}})
	fe, cl := frontend(t, p)
	res, err := cl.Get(fe.URL + "/")
	if err == nil {
		_, err = io.ReadAll(res.Body)
		res.Body.Close()
	}
	if err == nil {
		t.Fatal("client got a complete answer from a truncated origin body")
	}
	waitFor(t, "failure to be counted", 5*time.Second, func() bool { return p.Health()[0].Failures == 1 })
	if st := p.Health()[0]; st.InFlight != 0 {
		t.Fatalf("in flight %d after a broken body", st.InFlight)
	}
}

func TestWritePageOtherStatus(t *testing.T) {
	rec := httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodGet, "/", nil)
	writePage(rec, req, http.StatusTooManyRequests, "custom-reason")
	if rec.Code != 429 || rec.Header().Get(HeaderMitigated) != "custom-reason" ||
		!strings.HasPrefix(rec.Body.String(), "429 Too Many Requests") {
		t.Fatalf("got %d %q %q", rec.Code, rec.Header().Get(HeaderMitigated), rec.Body.String())
	}
}
