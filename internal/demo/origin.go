package demo

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Defaults for the zero fields of Options.
const (
	DefaultWorkers    = 16
	DefaultQueue      = 64
	DefaultSearchCost = 50 * time.Millisecond
	DefaultPageCost   = 10 * time.Millisecond
	DefaultArticles   = 50
	DefaultMaxBody    = 1 << 20
	DefaultMaxStreams = 256
	DefaultMaxConns   = 512
	DefaultTick       = time.Second
	DefaultTopSources = 256
)

// Options configures an Origin. Every zero field takes its documented
// default.
type Options struct {
	// Workers is how many requests are worked on at once (default 16).
	Workers int
	// Queue is how many more requests may wait for a worker, first come
	// first served (default 64; negative means no queue). Past Workers+Queue
	// the origin answers 503 at once.
	Queue int
	// SearchCost is how long /search holds its worker (default 50ms; negative
	// means none). It is a timer wait, not CPU work, so the origin's capacity
	// does not depend on how busy the machine is.
	SearchCost time.Duration
	// PageCost is how long a page (/, /news/{id}, /login) holds its worker
	// (default 10ms; negative means none), also a timer wait. Static assets,
	// comments and 404s cost nothing beyond writing the answer.
	PageCost time.Duration
	// Articles is the number of news articles, /news/1 to /news/N
	// (default 50).
	Articles int
	// MaxBody bounds the request bodies /api/comments and /login read
	// (default 1 MiB); longer bodies are answered 413.
	MaxBody int64
	// MaxStreams bounds the open /events streams (default 256); past it,
	// 503.
	MaxStreams int
	// MaxConns bounds the connections a listener passed to Serve holds at
	// once (default 512). When full, Serve stops accepting, as a
	// thread-per-connection server does, so slowloris drowns the bare origin.
	MaxConns int
	// Tick is the interval between /events ticks (default 1s).
	Tick time.Duration
	// TopSources is the fixed capacity of the per-source table
	// (default 256).
	TopSources int
	// Now returns the current time (default time.Now); latencies are
	// measured with it.
	Now func() time.Time
	// Logger receives the origin's own errors (default: discarded). Nothing
	// is logged per request.
	Logger *slog.Logger
}

const maxWorkers = 1 << 16

func (o *Options) setDefaults() error {
	switch {
	case o.Workers < 0 || o.Workers > maxWorkers:
		return fmt.Errorf("demo: Workers %d out of range [0, %d]", o.Workers, maxWorkers)
	case o.Queue > maxWorkers*16:
		return fmt.Errorf("demo: Queue %d exceeds %d", o.Queue, maxWorkers*16)
	case o.Articles < 0 || o.Articles > 100000:
		return fmt.Errorf("demo: Articles %d out of range [0, 100000]", o.Articles)
	case o.MaxBody < 0:
		return fmt.Errorf("demo: negative MaxBody %d", o.MaxBody)
	case o.MaxStreams < 0, o.MaxConns < 0, o.TopSources < 0:
		return errors.New("demo: MaxStreams, MaxConns and TopSources must not be negative")
	case o.Tick < 0:
		return fmt.Errorf("demo: negative Tick %v", o.Tick)
	case o.TopSources > 1<<20:
		return fmt.Errorf("demo: TopSources %d exceeds %d", o.TopSources, 1<<20)
	}
	if o.Workers == 0 {
		o.Workers = DefaultWorkers
	}
	switch {
	case o.Queue == 0:
		o.Queue = DefaultQueue
	case o.Queue < 0:
		o.Queue = 0
	}
	switch {
	case o.SearchCost == 0:
		o.SearchCost = DefaultSearchCost
	case o.SearchCost < 0:
		o.SearchCost = 0
	}
	switch {
	case o.PageCost == 0:
		o.PageCost = DefaultPageCost
	case o.PageCost < 0:
		o.PageCost = 0
	}
	if o.Articles == 0 {
		o.Articles = DefaultArticles
	}
	if o.MaxBody == 0 {
		o.MaxBody = DefaultMaxBody
	}
	if o.MaxStreams == 0 {
		o.MaxStreams = DefaultMaxStreams
	}
	if o.MaxConns == 0 {
		o.MaxConns = DefaultMaxConns
	}
	if o.Tick == 0 {
		o.Tick = DefaultTick
	}
	if o.TopSources == 0 {
		o.TopSources = DefaultTopSources
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return nil
}

// Origin is the demo website. It is safe for concurrent use; create it with
// New.
type Origin struct {
	opt      Options
	home     []byte
	articles []article

	// admitted counts requests holding or waiting for a worker; slots holds
	// one token per busy worker.
	admitted atomic.Int64
	slots    chan struct{}
	inFlight atomic.Int64
	queued   atomic.Int64
	streams  atomic.Int64
	conns    atomic.Int64
	serial   atomic.Uint64
	sessions atomic.Uint64

	c       counters
	sources *topSources
	sinceMu sync.Mutex
	since   time.Time

	// work holds a worker for d; tests replace it to hold workers at will.
	work func(ctx context.Context, d time.Duration) error

	closeOnce sync.Once
	done      chan struct{}
	srvMu     sync.Mutex
	servers   []*http.Server
}

// New validates o, fills in defaults and returns an Origin.
func New(o Options) (*Origin, error) {
	if err := o.setDefaults(); err != nil {
		return nil, err
	}
	home, articles := renderSite(o.Articles)
	org := &Origin{
		opt:      o,
		home:     home,
		articles: articles,
		slots:    make(chan struct{}, o.Workers),
		sources:  newTopSources(o.TopSources),
		since:    o.Now(),
		work:     wait,
		done:     make(chan struct{}),
	}
	return org, nil
}

// wait blocks for d or until ctx ends.
func wait(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Options returns the options in force, defaults filled in.
func (o *Origin) Options() Options { return o.opt }

// Handler returns the site's handler, control endpoints included.
func (o *Origin) Handler() http.Handler { return http.HandlerFunc(o.serveHTTP) }

// Stats returns a snapshot of the counters.
func (o *Origin) Stats() Stats {
	o.sinceMu.Lock()
	since := o.since
	o.sinceMu.Unlock()
	return Stats{
		Since:           since,
		Workers:         o.opt.Workers,
		Queue:           o.opt.Queue,
		Served:          o.sum(outServed),
		Rejected:        o.sum(outRejected),
		Canceled:        o.sum(outCanceled),
		InFlight:        o.inFlight.Load(),
		QueueDepth:      o.queued.Load(),
		PeakQueueDepth:  o.c.peakQueue.Load(),
		Streams:         o.streams.Load(),
		Conns:           o.conns.Load(),
		Latency:         o.c.hist.summary(),
		Legit:           o.c.role(RoleLegit),
		Attack:          o.c.role(RoleAttack),
		Unknown:         o.c.role(RoleUnknown),
		Sources:         o.sources.snapshot(),
		SourcesCapacity: o.opt.TopSources,
	}
}

func (o *Origin) sum(out outcome) uint64 {
	var n uint64
	for r := range numRoles {
		n += o.c.byRole[r][out].Load()
	}
	return n
}

// Reset zeroes the counters, the latency histogram and the source table.
// The gauges (in flight, queue depth, streams) are left as they are.
func (o *Origin) Reset() {
	o.c.reset()
	o.sources.reset()
	o.sinceMu.Lock()
	o.since = o.opt.Now()
	o.sinceMu.Unlock()
}

// Serve accepts connections on l, at most Options.MaxConns at once, and
// serves the site on them over HTTP/1.1 and HTTP/2 with prior knowledge
// (h2c), with ordinary server timeouts (30s to read a request head, 60s to
// read a whole request, 120s idle). It returns when l fails or Close is
// called (then with http.ErrServerClosed).
func (o *Origin) Serve(l net.Listener) error {
	protos := new(http.Protocols)
	protos.SetHTTP1(true)
	protos.SetUnencryptedHTTP2(true)
	srv := &http.Server{
		Protocols:         protos,
		Handler:           o.Handler(),
		ReadHeaderTimeout: 30 * time.Second,
		ReadTimeout:       60 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(o.opt.Logger.Handler(), slog.LevelDebug),
	}
	o.srvMu.Lock()
	select {
	case <-o.done:
		o.srvMu.Unlock()
		return http.ErrServerClosed
	default:
	}
	o.servers = append(o.servers, srv)
	o.srvMu.Unlock()
	err := srv.Serve(&limitListener{Listener: l, slots: make(chan struct{}, o.opt.MaxConns), done: o.done, open: &o.conns})
	if err != nil && !errors.Is(err, http.ErrServerClosed) {
		o.opt.Logger.Error("demo origin stopped serving", "addr", l.Addr().String(), "err", err)
		return fmt.Errorf("demo: serving on %s: %w", l.Addr(), err)
	}
	return err
}

// acceptedConns is the number of connections open under Serve.
func (o *Origin) acceptedConns() int64 { return o.conns.Load() }

// Close ends the /events streams and closes the servers started by Serve and
// their connections. It is safe to call more than once.
func (o *Origin) Close() error {
	o.closeOnce.Do(func() { close(o.done) })
	o.srvMu.Lock()
	servers := o.servers
	o.servers = nil
	o.srvMu.Unlock()
	var errs []error
	for _, s := range servers {
		errs = append(errs, s.Close())
	}
	return errors.Join(errs...)
}

// classify returns the class of r.
func classify(r *http.Request) Class {
	switch r.Method {
	case http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete:
		return ClassPost
	}
	p := r.URL.Path
	switch {
	case strings.HasPrefix(p, "/static/"):
		return ClassStatic
	case p == "/search":
		return ClassSearch
	case p == "/", p == "/login", strings.HasPrefix(p, "/news/"):
		return ClassPage
	}
	return ClassOther
}

func (o *Origin) serveHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/healthz":
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		io.WriteString(w, "ok\n")
		return
	case "/__demo/stats":
		o.serveStats(w, r)
		return
	case "/__demo/reset":
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", "POST")
			http.Error(w, "use POST", http.StatusMethodNotAllowed)
			return
		}
		o.Reset()
		w.WriteHeader(http.StatusNoContent)
		return
	}

	start := o.opt.Now()
	role := ParseRole(r.Header.Get(RoleHeader))
	class := classify(r)
	if src := SourceAddr(r.RemoteAddr, r.Header); src.IsValid() {
		o.sources.add(src, role)
	}
	if r.URL.Path == "/events" {
		o.serveEvents(w, r, role, class)
		return
	}

	if n := o.admitted.Add(1); n > int64(o.opt.Workers+o.opt.Queue) {
		o.admitted.Add(-1)
		o.c.count(role, class, outRejected)
		o.overloaded(w)
		return
	}
	// A request that has just been handed a freed worker still counts as
	// queued for a moment, so depth can briefly read Queue+1: the peak is
	// capped at the real bound.
	depth := o.queued.Add(1)
	o.c.notePeak(min(depth, int64(o.opt.Queue)))
	select {
	case o.slots <- struct{}{}:
		o.queued.Add(-1)
	case <-r.Context().Done():
		o.queued.Add(-1)
		o.admitted.Add(-1)
		o.c.count(role, class, outCanceled)
		return
	}
	o.inFlight.Add(1)
	defer func() {
		o.inFlight.Add(-1)
		<-o.slots
		o.admitted.Add(-1)
		o.c.count(role, class, outServed)
		o.c.hist.observe(o.opt.Now().Sub(start))
	}()
	o.route(w, r)
}

func (o *Origin) overloaded(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("Retry-After", "1")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusServiceUnavailable)
	io.WriteString(w, "origin overloaded\n")
}

// answer writes a served response with the origin's headers.
func (o *Origin) answer(w http.ResponseWriter, status int, ctype string, cost time.Duration, body []byte) {
	h := w.Header()
	h.Set("Content-Type", ctype)
	h.Set("Content-Length", strconv.Itoa(len(body)))
	h.Set("X-Origin-Cost", strconv.FormatInt(cost.Milliseconds(), 10))
	h.Set("X-Origin-Serial", strconv.FormatUint(o.serial.Add(1), 10))
	w.WriteHeader(status)
	w.Write(body)
}

const htmlType = "text/html; charset=utf-8"

func (o *Origin) route(w http.ResponseWriter, r *http.Request) {
	p := r.URL.Path
	isGet := r.Method == http.MethodGet || r.Method == http.MethodHead
	switch {
	case p == "/" && isGet:
		if err := o.work(r.Context(), o.opt.PageCost); err != nil {
			return
		}
		if c, err := r.Cookie("session"); err == nil && c.Value != "" {
			w.Header().Set("Cache-Control", "private, no-store")
			o.answer(w, http.StatusOK, htmlType, o.opt.PageCost, renderHome(o.articles, c.Value))
			return
		}
		w.Header().Set("Cache-Control", "public, max-age=10")
		o.answer(w, http.StatusOK, htmlType, o.opt.PageCost, o.home)
	case strings.HasPrefix(p, "/news/") && isGet:
		id, err := strconv.Atoi(p[len("/news/"):])
		if err != nil || id < 1 || id > len(o.articles) || p[len("/news/")] == '+' {
			o.notFound(w)
			return
		}
		if err := o.work(r.Context(), o.opt.PageCost); err != nil {
			return
		}
		o.answer(w, http.StatusOK, htmlType, o.opt.PageCost, o.articles[id-1].page)
	case strings.HasPrefix(p, "/static/") && isGet:
		a, ok := assets[p]
		if !ok {
			o.notFound(w)
			return
		}
		w.Header().Set("Cache-Control", "public, max-age=3600")
		o.answer(w, http.StatusOK, a.ctype, 0, a.body)
	case p == "/search" && isGet:
		if err := o.work(r.Context(), o.opt.SearchCost); err != nil {
			return
		}
		o.answer(w, http.StatusOK, htmlType, o.opt.SearchCost, renderSearch(o.articles, r.URL.Query().Get("q")))
	case p == "/api/comments":
		if r.Method != http.MethodPost {
			o.notAllowed(w, "POST")
			return
		}
		n, ok := o.readBody(w, r)
		if !ok {
			return
		}
		w.Header().Set("Cache-Control", "no-store")
		o.answer(w, http.StatusCreated, "application/json", 0,
			fmt.Appendf(nil, "{\"id\":%d,\"bytes\":%d}\n", o.serial.Load()+1, n))
	case p == "/login":
		o.serveLogin(w, r, isGet)
	default:
		o.notFound(w)
	}
}

// readBody reads and discards r's body up to MaxBody bytes, answering 413 or
// 400 itself when it fails.
func (o *Origin) readBody(w http.ResponseWriter, r *http.Request) (int64, bool) {
	n, err := io.Copy(io.Discard, http.MaxBytesReader(w, r.Body, o.opt.MaxBody))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			o.answer(w, http.StatusRequestEntityTooLarge, "text/plain; charset=utf-8", 0, []byte("body too large\n"))
		} else {
			o.answer(w, http.StatusBadRequest, "text/plain; charset=utf-8", 0, []byte("could not read body\n"))
		}
		return n, false
	}
	return n, true
}

func (o *Origin) serveLogin(w http.ResponseWriter, r *http.Request, isGet bool) {
	if !isGet && r.Method != http.MethodPost {
		o.notAllowed(w, "GET, HEAD, POST")
		return
	}
	if r.Method == http.MethodPost {
		if _, ok := o.readBody(w, r); !ok {
			return
		}
	}
	if err := o.work(r.Context(), o.opt.PageCost); err != nil {
		return
	}
	sess := "reader-" + strconv.FormatUint(o.sessions.Add(1), 10)
	http.SetCookie(w, &http.Cookie{Name: "session", Value: sess, Path: "/", HttpOnly: true, SameSite: http.SameSiteLaxMode})
	if r.Method == http.MethodPost {
		w.Header().Set("Location", "/")
		o.answer(w, http.StatusSeeOther, htmlType, o.opt.PageCost, []byte("<!doctype html><p>Signed in. <a href=\"/\">Continue</a></p>\n"))
		return
	}
	o.answer(w, http.StatusOK, htmlType, o.opt.PageCost,
		[]byte("<!doctype html>\n<title>Signed in</title>\n<p>You are signed in as "+sess+". <a href=\"/\">Continue</a></p>\n"))
}

func (o *Origin) notFound(w http.ResponseWriter) {
	o.answer(w, http.StatusNotFound, "text/plain; charset=utf-8", 0, []byte("not found\n"))
}

func (o *Origin) notAllowed(w http.ResponseWriter, allow string) {
	w.Header().Set("Allow", allow)
	o.answer(w, http.StatusMethodNotAllowed, "text/plain; charset=utf-8", 0, []byte("method not allowed\n"))
}

func (o *Origin) serveStats(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "use GET", http.StatusMethodNotAllowed)
		return
	}
	body, err := json.MarshalIndent(o.Stats(), "", "  ")
	if err != nil {
		o.opt.Logger.Error("demo: encoding stats", "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.Write(append(body, '\n'))
}

// serveEvents streams server-sent events: one "tick" event per Options.Tick
// until the client leaves, ?ticks=N ticks were sent, or Close is called.
func (o *Origin) serveEvents(w http.ResponseWriter, r *http.Request, role Role, class Class) {
	if n := o.streams.Add(1); n > int64(o.opt.MaxStreams) {
		o.streams.Add(-1)
		o.c.count(role, class, outRejected)
		o.overloaded(w)
		return
	}
	defer o.streams.Add(-1)
	o.c.count(role, class, outServed)
	limit := -1
	if v := r.URL.Query().Get("ticks"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			http.Error(w, "ticks must be a non-negative integer", http.StatusBadRequest)
			return
		}
		limit = n
	}
	rc := http.NewResponseController(w)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Origin-Serial", strconv.FormatUint(o.serial.Add(1), 10))
	w.WriteHeader(http.StatusOK)
	if err := rc.Flush(); err != nil {
		return
	}
	t := time.NewTicker(o.opt.Tick)
	defer t.Stop()
	for n := 1; limit < 0 || n <= limit; n++ {
		select {
		case <-t.C:
		case <-r.Context().Done():
			return
		case <-o.done:
			return
		}
		if _, err := fmt.Fprintf(w, "id: %d\nevent: tick\ndata: {\"n\":%d,\"time\":%q}\n\n", n, n, o.opt.Now().UTC().Format(time.RFC3339Nano)); err != nil {
			return
		}
		if err := rc.Flush(); err != nil {
			return
		}
	}
}

// limitListener holds at most cap(slots) accepted connections at once; when
// full, Accept waits for one to close.
type limitListener struct {
	net.Listener
	slots chan struct{}
	done  chan struct{}
	open  *atomic.Int64
}

func (l *limitListener) Accept() (net.Conn, error) {
	select {
	case l.slots <- struct{}{}:
	case <-l.done:
		return nil, http.ErrServerClosed
	}
	c, err := l.Listener.Accept()
	if err != nil {
		<-l.slots
		return nil, err
	}
	l.open.Add(1)
	return &limitConn{Conn: c, release: func() { l.open.Add(-1); <-l.slots }}, nil
}

type limitConn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *limitConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}
