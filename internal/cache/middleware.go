package cache

import (
	"context"
	"hash/maphash"
	"net/http"
	"runtime/debug"
	"slices"
	"strings"
	"time"

	"github.com/rampart-shield/rampart/internal/verdict"
)

// Middleware puts the cache in front of next (admission control, then the
// upstream proxy). Per request:
//
//   - Methods other than GET and HEAD, upgrades, requests with
//     Authorization or a session cookie go to next untouched
//     (Rampart-Cache: BYPASS), and so does a Range request on a miss below
//     NormaliseIn. Request Cache-Control and Pragma are ignored: a reload
//     must not become a way to flood the origin.
//   - A fresh copy is served (HIT); HEAD gets it without a body; a
//     conditional request matching its validators gets 304; a Range
//     request gets its range.
//   - A stale copy within stale-while-revalidate (or, in under_attack
//     mode, within stale-if-error) is served at once (STALE) while one
//     background request, bounded by MaxRefreshes, refreshes it.
//   - Otherwise AdmitMiss is asked, then concurrent misses of one key make
//     one request to next (the leader's, MISS); the others wait up to
//     CoalesceWait for its response. The leader's request carries the
//     normalised query and Accept-Encoding, no Range or client
//     conditionals, the stale copy's validators if any, and is not
//     cancelled if its client leaves (unless the response turns out not
//     storable), so a flood of cancelled requests cannot starve the
//     followers. A 304 refreshes the stale copy; a 5xx, a timeout or an
//     admission refusal is replaced by the stale copy (STALE) if one may
//     stand in; a storable response is streamed to the client while it is
//     stored; anything else streams through (BYPASS) and marks the key
//     hit-for-pass for HitForPass, releasing the followers to go to next
//     on their own. A response that would overrun InflightBytes streams
//     through unstored, without a hit-for-pass mark.
//   - The safety net: when a key dropped a query parameter that may change
//     the page (neither ignored nor a proven cache-buster) and the copy
//     found is micro-cached (the origin did not mark it cacheable), the
//     copy is served only while fresh, at most MicroTTL old: never STALE,
//     neither at once nor in place of a failure. Such requests wait for
//     the (coalesced) origin request instead, or get the origin's error or
//     the miss limit's 429. A visitor whose search parameter is not known
//     then sees another search's results at most MicroTTL old, never an
//     hour-old copy; a cache-busting flood still costs the origin one
//     request per key and MicroTTL.
//
// Responses are never held back: the writer passed to next writes through
// and flushes at once (server-sent events flow), and supports
// http.ResponseController. The handler is safe for concurrent use.
func (c *Cache) Middleware(next http.Handler) http.Handler {
	return &handler{c: c, next: next}
}

type handler struct {
	c    *Cache
	next http.Handler
}

// fetchKey is what a miss knows about its key.
type fetchKey struct {
	key     string // primary or variant key
	primary string // primary key
	hash    uint64 // hash of key
	dropped bool   // normalisation dropped query parameters
	// unknown: a dropped parameter may change the page, so a
	// micro-cached copy must not be served stale (the safety net).
	unknown bool
	query   string // the normalised query, when dropped
}

// safetyNet reports, and counts, whether the safety net keeps the stale
// copy e from a request whose key dropped a parameter that may change the
// page (unknown): a micro-cached copy (the origin did not mark the page
// cacheable) is then served only while fresh, at most MicroTTL old, never
// stale, neither at once (stale-while-revalidate, under_attack) nor in
// place of a failure.
func (c *Cache) safetyNet(unknown bool, e *entry) bool {
	if unknown && e.micro {
		c.st.safetyNet.Add(1)
		return true
	}
	return false
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	c := h.c
	if (r.Method != http.MethodGet && r.Method != http.MethodHead) || len(r.Header["Upgrade"]) > 0 || c.private(r) {
		h.bypass(w, r)
		return
	}
	mode := c.o.Mode()
	kb := getKeyBuf()
	var filter *paramFilter
	var pf paramFilter
	if mode >= c.o.NormaliseIn {
		c.params.filterFor(r.URL.Path, &pf)
		filter = &pf
	}
	buildPrimary(kb, r, filter)
	if kb.unknown {
		c.st.droppedUnknown.Add(1)
	}
	e, hash := c.lookup(kb, r)
	now := c.o.Now().UnixNano()
	if e != nil && e.kind == kindPass {
		if now < e.passUntil {
			putKeyBuf(kb)
			h.bypass(w, r)
			return
		}
		e = nil
	}
	if e != nil {
		if e.fresh(now) {
			putKeyBuf(kb)
			c.st.hits.Add(1)
			c.serve(w, r, e, hdrHit, now)
			c.learnHit(r, mode, e.status, now)
			return
		}
		if e.staleServable(now, mode >= verdict.ModeUnderAttack) && !c.safetyNet(kb.unknown, e) {
			k := fetchKey{key: e.key, primary: e.key[:kb.primary], hash: hash, dropped: kb.dropped}
			if kb.dropped {
				k.query = kb.normalisedQuery()
			}
			putKeyBuf(kb)
			h.startRefresh(r, e, k, mode)
			c.st.stale.Add(1)
			c.serve(w, r, e, hdrStale, now)
			return
		}
	}
	if len(r.Header["Range"]) > 0 && mode < c.o.NormaliseIn {
		putKeyBuf(kb)
		h.bypass(w, r)
		return
	}
	if c.o.AdmitMiss != nil && !c.o.AdmitMiss(r) {
		unknown := kb.unknown
		putKeyBuf(kb)
		c.st.missLimited.Add(1)
		if e != nil && e.usableOnError(now) && !c.safetyNet(unknown, e) {
			c.st.stale.Add(1)
			c.serve(w, r, e, hdrStale, now)
			return
		}
		if c.o.RefuseMiss != nil && c.o.RefuseMiss(w, r) {
			return
		}
		refuseMiss(w, r)
		return
	}
	k := fetchKey{key: string(kb.b), hash: hash, dropped: kb.dropped, unknown: kb.unknown}
	k.primary = k.key[:kb.primary]
	if kb.dropped {
		k.query = kb.normalisedQuery()
	}
	putKeyBuf(kb)
	h.miss(w, r, k, e, mode)
}

// lookup finds the entry of the key in kb, following a Vary marker to the
// variant of r (kb then holds the variant key). It returns the hash of the
// key the request belongs to, for coalescing.
func (c *Cache) lookup(kb *keyBuf, r *http.Request) (*entry, uint64) {
	h := maphash.Bytes(c.seed, kb.b)
	e := c.get(h, kb.b)
	if e == nil || e.kind != kindVary {
		return e, h
	}
	kb.b = appendVary(kb.b, e.varyNames, r)
	h = maphash.Bytes(c.seed, kb.b)
	v := c.get(h, kb.b)
	if v != nil && v.kind == kindVary {
		v = nil
	}
	return v, h
}

func (h *handler) bypass(w http.ResponseWriter, r *http.Request) {
	h.c.st.bypass.Add(1)
	w.Header()["Rampart-Cache"] = hdrBypass
	h.next.ServeHTTP(w, r)
}

var (
	hdrMissLimit  = []string{"miss-limit"}
	hdrRetryOne   = []string{"1"}
	hdrNoStore    = []string{"no-store"}
	hdrTextPlain  = []string{"text/plain; charset=utf-8"}
	missLimitBody = []byte("Too many requests for pages that are not in the cache. Please try again in a moment.\n")
)

// refuseMiss answers a miss that AdmitMiss refused and no stale copy covers.
func refuseMiss(w http.ResponseWriter, r *http.Request) {
	hd := w.Header()
	hd["Rampart-Mitigated"] = hdrMissLimit
	hd["Retry-After"] = hdrRetryOne
	hd["Cache-Control"] = hdrNoStore
	hd["Content-Type"] = hdrTextPlain
	hd["Rampart-Cache"] = hdrMiss
	w.WriteHeader(http.StatusTooManyRequests)
	if r.Method != http.MethodHead {
		_, _ = w.Write(missLimitBody)
	}
}

// miss coalesces r with the other misses of its key: it leads the fetch or
// waits for it.
func (h *handler) miss(w http.ResponseWriter, r *http.Request, k fetchKey, stale *entry, mode verdict.Mode) {
	c := h.c
	for attempt := 0; attempt < 2; attempt++ {
		f, leader := c.flights.join(k.hash, k.key)
		if leader {
			c.st.misses.Add(1)
			h.fetch(w, r, k, stale, f, mode, false)
			return
		}
		res, ok := c.wait(r.Context(), f)
		now := c.o.Now().UnixNano()
		if !ok {
			if r.Context().Err() != nil {
				return // the client left
			}
			c.st.coalesceTimeouts.Add(1)
			if stale != nil && stale.usableOnError(now) && !c.safetyNet(k.unknown, stale) {
				c.st.stale.Add(1)
				c.serve(w, r, stale, hdrStale, now)
				return
			}
			c.st.misses.Add(1)
			h.fetch(w, r, k, stale, nil, mode, false)
			return
		}
		if res.e == nil || res.stale && c.safetyNet(k.unknown, res.e) {
			h.bypass(w, r) // not storable, the leader failed, or the safety net
			return
		}
		if c.matches(res.e, k, r) {
			c.st.coalesced.Add(1)
			if res.stale {
				c.st.stale.Add(1)
			}
			c.serve(w, r, res.e, res.label, now)
			return
		}
		// The response varies and r wants another variant: look that up,
		// or coalesce on it.
		k.key = k.primary + string(appendVary(nil, res.e.varyNames, r))
		k.hash = maphash.String(c.seed, k.key)
		stale = nil
		if e := c.getString(k.hash, k.key); e != nil && e.kind == kindResponse {
			if e.fresh(now) {
				c.st.hits.Add(1)
				c.serve(w, r, e, hdrHit, now)
				return
			}
			stale = e
		}
	}
	h.bypass(w, r)
}

// wait waits for f up to CoalesceWait or until ctx ends.
func (c *Cache) wait(ctx context.Context, f *flight) (flightResult, bool) {
	c.st.waiting.Add(1)
	defer c.st.waiting.Add(-1)
	t := time.NewTimer(c.o.CoalesceWait)
	defer t.Stop()
	select {
	case <-f.done:
		return f.res, true
	case <-t.C:
	case <-ctx.Done():
	}
	return flightResult{}, false
}

// matches reports whether the flight's response e answers r, whose key is k.
func (c *Cache) matches(e *entry, k fetchKey, r *http.Request) bool {
	if e.key == k.key {
		return true
	}
	if e.varyNames == nil {
		return e.key == k.primary
	}
	kb := getKeyBuf()
	kb.b = append(kb.b[:0], k.primary...)
	kb.b = appendVary(kb.b, e.varyNames, r)
	ok := e.key == string(kb.b)
	putKeyBuf(kb)
	return ok
}

func (c *Cache) getString(h uint64, key string) *entry {
	e, ok := c.store.GetIfPresent(h)
	if !ok || e.key != key {
		return nil
	}
	return e
}

// Request headers the leader does not forward: the stored response must be
// the whole representation, whatever this client asked.
var strippedConditionals = []string{"Range", "If-Range", "If-None-Match", "If-Modified-Since", "If-Match", "If-Unmodified-Since"}

// fetch sends r to next for key k and stores what can be stored. With f it
// leads the flight f and completes it. bg marks a background refresh: w is
// a discard writer and r's context already bounded.
func (h *handler) fetch(w http.ResponseWriter, r *http.Request, k fetchKey, stale *entry, f *flight, mode verdict.Mode, bg bool) {
	c := h.c
	base := r.Context()
	if !bg {
		base = context.WithoutCancel(base)
	}
	ctx, cancel := context.WithCancel(base)
	defer cancel()
	out := r.Clone(ctx)
	if out.Method == http.MethodHead {
		out.Method = http.MethodGet
	}
	for _, name := range strippedConditionals {
		delete(out.Header, name)
	}
	if set := acceptedCodings(r.Header["Accept-Encoding"]); set == 0 {
		delete(out.Header, "Accept-Encoding")
	} else {
		out.Header["Accept-Encoding"] = []string{codingSets[set]}
	}
	if k.dropped {
		out.URL.RawQuery = k.query
		out.RequestURI = out.URL.RequestURI()
	}
	rec := &recorder{c: c, w: w, hdr: make(http.Header), stale: stale, clientCtx: r.Context(), cancel: cancel, head: r.Method == http.MethodHead}
	rec.noStale = k.unknown && stale != nil && stale.micro
	defer rec.release()
	if stale != nil {
		if stale.etag != "" {
			out.Header["If-None-Match"] = []string{stale.etag}
			rec.sentValidators = true
		}
		if stale.lastMod != "" {
			out.Header["If-Modified-Since"] = []string{stale.lastMod}
			rec.sentValidators = true
		}
	}
	if !bg {
		stop := context.AfterFunc(r.Context(), func() {
			if rec.passing.Load() {
				cancel()
			}
		})
		defer stop()
	}

	panicked, pv := h.run(rec, out)
	res := h.finish(rec, r, k, stale, mode, panicked)
	c.flights.complete(k.hash, f, res)
	c.learnFetch(r, mode, rec, res, k)
	if panicked {
		if pv != http.ErrAbortHandler {
			c.o.Logger.Error("cache: handler panicked", "panic", pv, "url", r.URL.String(), "background", bg)
		}
		if !bg && !rec.discards() {
			panic(pv)
		}
	}
	if bg || !rec.discards() {
		return
	}
	now := c.o.Now().UnixNano()
	if rec.mode == modeStale {
		c.st.stale.Add(1)
		c.serve(w, r, res.e, hdrStale, now)
		return
	}
	c.serve(w, r, res.e, hdrMiss, now)
}

// run calls next, catching a panic so that the flight is completed and a
// stale copy can still be served.
func (h *handler) run(rec *recorder, out *http.Request) (panicked bool, pv any) {
	defer func() {
		if p := recover(); p != nil {
			panicked, pv = true, p
			if p != http.ErrAbortHandler {
				h.c.o.Logger.Debug("cache: panic stack", "stack", string(debug.Stack()))
			}
		}
	}()
	h.next.ServeHTTP(rec, out)
	return false, nil
}

// finish acts on a leader's response once next has returned: it stores,
// revalidates or marks the key, and returns what the followers get.
func (h *handler) finish(rec *recorder, r *http.Request, k fetchKey, stale *entry, mode verdict.Mode, panicked bool) flightResult {
	c := h.c
	now := c.o.Now()
	nowNs := now.UnixNano()
	if !rec.wroteHeader {
		switch {
		case !panicked:
			rec.WriteHeader(http.StatusOK) // what net/http does for a silent handler
		case stale != nil && stale.usableOnError(nowNs) && !c.safetyNet(rec.noStale, stale):
			rec.mode = modeStale
		default:
			return flightResult{}
		}
	}
	switch rec.mode {
	case modeStale:
		return flightResult{e: stale, label: hdrStale, stale: true}
	case modeRevalidated:
		hd := stale.mergedHeader(rec.hdr)
		fr := c.computeFreshness(stale.status, hd, parseResponseCacheControl(hd), now, c.micro(mode))
		e := newResponseEntry(stale.key, stale.status, hd, stale.body, fr, stale.varyNames)
		e.digest = stale.digest
		if e.expireAt() > nowNs {
			c.put(e)
		}
		c.st.revalidated.Add(1)
		return flightResult{e: e, label: hdrHit}
	case modeStore:
		if rec.tooBig {
			c.st.notStored.Add(1)
			c.markPass(k.key, nowNs)
			return flightResult{}
		}
		if panicked || rec.overBudget || !rec.complete() {
			if rec.overBudget {
				c.st.notStored.Add(1)
			}
			return flightResult{}
		}
		e := c.storeResponse(rec, r, k, mode, now)
		if e == nil {
			return flightResult{}
		}
		return flightResult{e: e, label: hdrHit}
	case modeShare:
		if panicked || rec.tooBig || rec.overBudget || !rec.complete() {
			return flightResult{}
		}
		return flightResult{e: newSharedEntry(k.key, rec.status, rec.hdr, rec.buf, nowNs), label: hdrMiss}
	default: // modePass
		if !panicked && !rec.mitigated {
			c.st.notStored.Add(1)
			c.markPass(k.key, nowNs)
		}
		return flightResult{}
	}
}

func (c *Cache) micro(mode verdict.Mode) bool { return mode >= c.o.MicroCacheIn && c.o.MicroTTL > 0 }

func (c *Cache) markPass(key string, now int64) {
	c.st.hitForPass.Add(1)
	c.put(newPassEntry(key, now, c.o.HitForPass))
}

// storeResponse stores a complete storable response, under the primary key
// or, if it varies, under its variant key with a Vary marker at the primary
// key. It returns nil if the response is of no use (already expired) or the
// URL has MaxVariants variants.
func (c *Cache) storeResponse(rec *recorder, r *http.Request, k fetchKey, mode verdict.Mode, now time.Time) *entry {
	nowNs := now.UnixNano()
	f := c.computeFreshness(rec.status, rec.hdr, rec.cc, rec.respTime, c.micro(mode))
	if f.expireAt() <= nowNs {
		c.st.notStored.Add(1)
		return nil
	}
	body := rec.buf
	if cap(body)-len(body) > len(body)/8+64 {
		body = slices.Clip(append([]byte(nil), body...))
	}
	var digest uint64
	if c.learning(r, mode) && rec.status/100 == 2 {
		digest = maphash.Bytes(c.seed, body) | 1
	}
	names, _ := parseVary(rec.hdr["Vary"])
	if len(names) == 0 {
		e := newResponseEntry(k.primary, rec.status, rec.hdr, body, f, nil)
		e.digest = digest
		c.put(e)
		c.st.stored.Add(1)
		return e
	}
	ph := maphash.String(c.seed, k.primary)
	variants := int32(1)
	mf := f
	if old := c.getString(ph, k.primary); old != nil && old.kind == kindVary && slices.Equal(old.varyNames, names) {
		variants = old.variants.Load() + 1
		if int(variants) > c.o.MaxVariants {
			c.st.notStored.Add(1)
			return nil
		}
		mf.freshUntil = max(mf.freshUntil, old.freshUntil)
		mf.swrUntil = max(mf.swrUntil, old.swrUntil)
		mf.sieUntil = max(mf.sieUntil, old.sieUntil)
	}
	key := k.primary + string(appendVary(nil, names, r))
	e := newResponseEntry(key, rec.status, rec.hdr, body, f, names)
	e.digest = digest
	c.put(newVaryEntry(k.primary, names, mf, variants))
	c.put(e)
	c.st.stored.Add(1)
	return e
}

// learning reports whether r's answer feeds the learned-parameters table:
// learning is on, the mode is below NormaliseIn and r has a query.
func (c *Cache) learning(r *http.Request, mode verdict.Mode) bool {
	return c.params.learned != nil && mode < c.o.NormaliseIn && r.URL.RawQuery != ""
}

// learnHit tells the learned-parameters table that r's parameters were seen
// (a hit brings no new body to compare).
func (c *Cache) learnHit(r *http.Request, mode verdict.Mode, status int, now int64) {
	if !c.learning(r, mode) || status/100 != 2 {
		return
	}
	o := observation{path: r.URL.Path, query: r.URL.RawQuery, now: now}
	cfg := c.params.configured(r.URL.Path)
	c.params.learned.observe(&o, &cfg, &c.params.ignore)
}

// learnFetch feeds the learned-parameters table with what the origin
// answered r: a 2xx body that was stored (or revalidated) is compared by its
// digest; other 2xx answers only count as sightings.
func (c *Cache) learnFetch(r *http.Request, mode verdict.Mode, rec *recorder, res flightResult, k fetchKey) {
	if !c.learning(r, mode) || !rec.wroteHeader || res.stale {
		return
	}
	o := observation{path: r.URL.Path, query: r.URL.RawQuery, now: c.o.Now().UnixNano()}
	switch e := res.e; {
	case (rec.mode == modeStore || rec.mode == modeRevalidated) && e != nil && e.digest != 0 && e.status/100 == 2:
		o.digest, o.hasDigest = e.digest, true
		if strings.HasPrefix(e.key, k.primary) {
			o.variant = e.key[len(k.primary):]
		}
	case rec.status/100 == 2:
	default:
		return
	}
	cfg := c.params.configured(r.URL.Path)
	c.params.learned.observe(&o, &cfg, &c.params.ignore)
}

// startRefresh refreshes e in the background unless a refresh of it, or a
// fetch of its key, is running or MaxRefreshes are.
func (h *handler) startRefresh(r *http.Request, e *entry, k fetchKey, mode verdict.Mode) {
	c := h.c
	if !e.refreshing.CompareAndSwap(false, true) {
		return
	}
	select {
	case c.refresh <- struct{}{}:
	default:
		e.refreshing.Store(false)
		c.st.refreshesSkipped.Add(1)
		return
	}
	f, leader := c.flights.join(k.hash, k.key)
	if !leader || f == nil {
		<-c.refresh
		e.refreshing.Store(false)
		return
	}
	c.st.refreshes.Add(1)
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), c.o.RefreshTimeout)
	out := r.Clone(ctx)
	go func() {
		defer func() {
			cancel()
			<-c.refresh
			e.refreshing.Store(false)
		}()
		h.fetch(&discardWriter{h: make(http.Header)}, out, k, e, f, mode, true)
	}()
}
