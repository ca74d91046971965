package admission

import (
	"bufio"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rampart-shield/rampart/internal/verdict"
)

func TestMiddlewareRefuses(t *testing.T) {
	var noWait [verdict.NumClasses]time.Duration
	for i := range noWait {
		noWait[i] = -1
	}
	tests := []struct {
		name        string
		o           Options
		method      string
		openCircuit bool
		wantReason  string
		wantRetry   string
		wantBody    string
		wantType    string
	}{
		{name: "over the limit", method: "GET", wantReason: "overload", wantRetry: "5", wantBody: string(defaultOverloadPage), wantType: "text/html; charset=utf-8"},
		{name: "HEAD has no body", method: "HEAD", wantReason: "overload", wantRetry: "5", wantType: "text/html; charset=utf-8"},
		{name: "operator page and retry", method: "GET", o: Options{OverloadPage: []byte("busy"), OverloadContentType: "text/plain", RetryAfter: 1500 * time.Millisecond},
			wantReason: "overload", wantRetry: "2", wantBody: "busy", wantType: "text/plain"},
		{name: "circuit open", method: "GET", openCircuit: true, o: Options{BreakerFailures: 1, BreakerOpen: 3 * time.Second, BreakerMaxOpen: time.Minute},
			wantReason: "origin-down", wantRetry: "3", wantBody: string(defaultOverloadPage), wantType: "text/html; charset=utf-8"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.o.MaxWait = noWait
			l, _ := limiterAt(t, 1, tt.o)
			hold, _ := l.Acquire(t.Context(), verdict.ClassNormal, 0)
			if tt.openCircuit {
				hold.Release(time.Millisecond, Dropped)
			} else {
				defer hold.Release(time.Millisecond, Success)
			}
			reached := false
			h := l.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { reached = true }), Hooks{})
			srv := httptest.NewServer(h)
			defer srv.Close()
			req, _ := http.NewRequest(tt.method, srv.URL+"/page", nil)
			resp, err := srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if reached {
				t.Error("the origin was reached")
			}
			if resp.StatusCode != http.StatusServiceUnavailable {
				t.Errorf("status %d, want 503", resp.StatusCode)
			}
			for k, want := range map[string]string{
				"Rampart-Mitigated": tt.wantReason, "Retry-After": tt.wantRetry,
				"Cache-Control": "no-store", "Content-Type": tt.wantType,
			} {
				if got := resp.Header.Get(k); got != want {
					t.Errorf("%s: %q, want %q", k, got, want)
				}
			}
			if string(body) != tt.wantBody {
				t.Errorf("body %q, want %q", body, tt.wantBody)
			}
		})
	}
}

// TestMiddlewareReleasesAtHeaders: the slot is returned when the origin's
// headers pass, so a slow reader (or an event stream) does not hold it, and
// flushes pass through.
func TestMiddlewareReleasesAtHeaders(t *testing.T) {
	l, _ := limiterAt(t, 1, Options{})
	more := make(chan struct{})
	h := l.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		io.WriteString(w, "data: one\n\n")
		if err := http.NewResponseController(w).Flush(); err != nil {
			t.Errorf("flush through the gate: %v", err)
		}
		<-more
		io.WriteString(w, "data: two\n\n")
	}), Hooks{})
	srv := httptest.NewServer(h)
	defer srv.Close()
	resp, err := srv.Client().Get(srv.URL + "/events")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	line, err := br.ReadString('\n')
	if err != nil || line != "data: one\n" {
		t.Fatalf("first event %q, %v: the stream was not flushed", line, err)
	}
	if s := l.Stats(); s.InFlight != 0 {
		t.Errorf("in flight %d while the body streams, want 0", s.InFlight)
	}
	close(more)
	rest, _ := io.ReadAll(br)
	if !strings.Contains(string(rest), "data: two") {
		t.Errorf("rest of stream %q", rest)
	}
}

func TestMiddlewareOutcomes(t *testing.T) {
	tests := []struct {
		status  int
		dropped bool
	}{
		{200, false}, {404, false}, {500, false}, {502, true}, {503, true}, {504, true},
	}
	for _, tt := range tests {
		t.Run(strconv.Itoa(tt.status), func(t *testing.T) {
			l, _ := limiterAt(t, 4, Options{})
			h := l.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(tt.status)
			}), Hooks{ClassOf: func(*http.Request) (verdict.Class, uint64) { return verdict.ClassPriority, 0 }})
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
			s := l.Stats()
			if got := s.Dropped == 1; got != tt.dropped {
				t.Errorf("dropped %d, want dropped=%v", s.Dropped, tt.dropped)
			}
			if s.InFlight != 0 || s.Admitted[verdict.ClassPriority] != 1 {
				t.Errorf("in flight %d admitted %v", s.InFlight, s.Admitted)
			}
		})
	}
}

func TestMiddlewarePanicReleases(t *testing.T) {
	l, _ := limiterAt(t, 1, Options{})
	h := l.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		panic(http.ErrAbortHandler)
	}), Hooks{})
	func() {
		defer func() {
			if recover() == nil {
				t.Error("panic swallowed")
			}
		}()
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/", nil))
	}()
	if s := l.Stats(); s.InFlight != 0 || s.Dropped != 0 {
		t.Errorf("after a panic: in flight %d dropped %d, want 0 and 0", s.InFlight, s.Dropped)
	}
}
