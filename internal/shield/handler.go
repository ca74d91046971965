package shield

import (
	"context"
	"encoding/binary"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/rampart-shield/rampart/internal/challenge"
	"github.com/rampart-shield/rampart/internal/clientid"
	"github.com/rampart-shield/rampart/internal/limiter"
	"github.com/rampart-shield/rampart/internal/netx"
	"github.com/rampart-shield/rampart/internal/upstream"
	"github.com/rampart-shield/rampart/internal/verdict"
)

// request is what the shield knows about one request as it passes the
// stages after the decision (cache, admission, upstream); it travels in the
// request context.
type request struct {
	facts    verdict.Facts
	decision verdict.Decision
	mode     verdict.Mode
	start    time.Time
	// missChecked: the miss rules ran for this request (it was about to
	// go to the origin); miss is their refusal, if they refused.
	missChecked bool
	miss        verdict.Decision
	// w is the client's response writer, to tell the client's own request
	// from the cache's background refreshes made on its behalf.
	w *statusWriter
	// peer is the TCP (or PROXY protocol) peer address.
	peer netip.Addr
	// upstream is the time the origin took, in ns (atomic: a background
	// cache refresh may still be at the origin when the request ends).
	upstream atomic.Int64
	// sw is the storage of w (one allocation for both).
	sw statusWriter
}

type requestKey struct{}

func requestFrom(r *http.Request) *request {
	rq, _ := r.Context().Value(requestKey{}).(*request)
	return rq
}

// ServeHTTP is the request path: identify the client, check its clearance,
// decide, act on the decision, and pass allowed requests to the cache,
// admission and the origin.
func (s *Shield) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := s.now()
	rt := s.rt.Load()
	rq := &request{start: start, mode: s.Mode()}
	f := &rq.facts
	rq.peer = s.identify(rt, r, f)

	sw := &rq.sw
	*sw = statusWriter{ResponseWriter: w, costHeaders: s.engine.Rules().CostHeaders()}
	rq.w = sw
	defer s.finish(sw, r, rq)

	if !f.Allowlisted && (s.lists.denied(f.IP) || s.blocks.Contains(f.IP)) {
		// Blocked while the connection was open, or behind a trusted
		// proxy (whose connection the conn gate cannot judge).
		rq.decision = verdict.Decision{Action: verdict.Drop, Reason: "deny-list"}
		if f.IP != rq.peer {
			// The connection is shared with other clients of the proxy:
			// refuse the request, not the connection.
			netx.WriteMitigated(sw, r, http.StatusForbidden, "deny-list", false)
			return
		}
		s.drop(sw, r)
		return
	}

	f.Clearance, _ = s.challenge.Check(r, f.IP)
	d := s.engine.Decide(f, rq.mode, start.UnixNano())
	rq.decision = d
	if d.DryRun != "" {
		s.dryRun(rq, d)
	}

	switch d.Action {
	case verdict.Allow:
	case verdict.Challenge:
		if !strings.HasPrefix(r.URL.Path, challenge.PathPrefix) {
			s.challenge.Challenge(sw, r, f.IP, rq.mode)
			return
		}
	case verdict.Check:
		if !strings.HasPrefix(r.URL.Path, challenge.PathPrefix) {
			s.challenge.CookieCheck(sw, r, f.IP, rq.mode)
			return
		}
	default:
		s.act(sw, r, rq)
		return
	}
	if strings.HasPrefix(r.URL.Path, challenge.PathPrefix) {
		s.challenge.Serve(sw, r, f.IP)
		return
	}

	maxBody := rt.maxBody
	if d.MaxBody > 0 && d.MaxBody < maxBody {
		maxBody = d.MaxBody
	}
	if !netx.LimitBody(sw, r, maxBody) {
		return
	}
	release, ok := s.bodies.buffer(sw, r, rt.bufferBody, rt.bufferTotal)
	defer release()
	if !ok {
		return
	}
	ctx := context.WithValue(r.Context(), requestKey{}, rq)
	s.pipeline.ServeHTTP(sw, r.WithContext(ctx))
}

// identify fills the facts of a request. It does not allocate beyond what
// the standard library already did.
func (s *Shield) identify(rt *runtime, r *http.Request, f *verdict.Facts) (peer netip.Addr) {
	if ci := netx.ConnInfoFrom(r.Context()); ci != nil {
		peer = ci.Peer.Addr()
		f.Fingerprints = ci.Fingerprints
	} else if ap, err := netip.ParseAddrPort(r.RemoteAddr); err == nil {
		peer = ap.Addr()
	}
	xff := r.Header["X-Forwarded-For"]
	f.IP = rt.resolver.ClientIP(peer, xff)
	f.Prefix = clientid.Prefix(f.IP, rt.prefixV4, rt.prefixV6)
	f.TLS = r.TLS != nil
	f.ProtoMajor = r.ProtoMajor
	f.Host = clientid.HostOnly(r.Host)
	f.Method = r.Method
	f.Path = r.URL.Path
	f.RawQuery = r.URL.RawQuery
	f.Header = r.Header
	if ua := r.Header["User-Agent"]; len(ua) > 0 {
		f.UserAgent = ua[0]
	}
	f.Navigation = clientid.IsNavigation(r.Method, r.Header)
	f.Static = clientid.IsStatic(f.Path)
	f.Allowlisted = s.lists.allowed(f.IP)
	if b := s.bypass.Load(); b != nil && !f.Allowlisted {
		f.GoodBot = b.Match(r, f.IP) != challenge.BypassNone
	}
	return peer.Unmap()
}

// act carries out a refusal: limit, tarpit, drop or block.
func (s *Shield) act(w http.ResponseWriter, r *http.Request, rq *request) {
	d := rq.decision
	switch d.Action {
	case verdict.Limit:
		s.tooMany(w, r, d)
	case verdict.Tarpit:
		rt := s.rt.Load()
		if s.tarpitted.Add(1) <= rt.tarpitMax && rt.tarpitDelay > 0 {
			t := time.NewTimer(rt.tarpitDelay)
			select {
			case <-t.C:
			case <-r.Context().Done():
				t.Stop()
			}
		}
		s.tarpitted.Add(-1)
		s.tooMany(w, r, d)
	case verdict.Block:
		s.block(rq.facts.IP, d.BlockTTL, d.Reason)
		s.drop(w, r)
	case verdict.Drop:
		s.drop(w, r)
	}
}

func (s *Shield) tooMany(w http.ResponseWriter, r *http.Request, d verdict.Decision) {
	secs := int64((d.RetryAfter + time.Second - 1) / time.Second)
	if secs < 1 {
		secs = 1
	}
	w.Header().Set("Retry-After", strconv.FormatInt(secs, 10))
	netx.WriteMitigated(w, r, http.StatusTooManyRequests, d.Reason, false)
}

// drop closes the connection without an answer: HTTP/1 connections are
// hijacked and reset; on HTTP/2 the stream is reset (the connection carries
// other streams).
func (s *Shield) drop(w http.ResponseWriter, r *http.Request) {
	if r.ProtoMajor == 1 {
		if conn, _, err := http.NewResponseController(w).Hijack(); err == nil {
			if tc, ok := conn.(interface{ SetLinger(int) error }); ok {
				tc.SetLinger(0)
			}
			conn.Close()
			return
		}
	}
	panic(http.ErrAbortHandler)
}

// block adds an address to the deny set; its connections are closed at
// accept from now on. An IPv6 address is blocked with its network
// (limits.prefix_v6, a /64 by default): one host holds a whole /64 and
// can take a new address from it for every connection.
func (s *Shield) block(ip netip.Addr, ttl time.Duration, reason string) {
	if !ip.IsValid() || ttl <= 0 {
		return
	}
	ip = ip.Unmap()
	p := netip.PrefixFrom(ip, ip.BitLen())
	if ip.Is6() {
		p = clientid.Prefix(ip, 32, s.rt.Load().prefixV6)
	}
	if _, err := s.blocks.Add(p, ttl, reason); err != nil {
		s.log.Warn("block not added", "cidr", p.String(), "err", err.Error())
		return
	}
	s.metrics.blocksAdded.WithLabelValues(reason).Inc()
	select {
	case s.synKick <- struct{}{}:
	default:
	}
}

// finish records the outcome of a request: response-counting rules,
// metrics and the access log.
func (s *Shield) finish(sw *statusWriter, r *http.Request, rq *request) {
	if p := recover(); p != nil {
		s.record(sw, r, rq)
		panic(p)
	}
	s.record(sw, r, rq)
}

func (s *Shield) record(sw *statusWriter, r *http.Request, rq *request) {
	status := sw.status
	if status == 0 {
		status = 499 // the client went away or the connection was dropped
	}
	now := s.now()
	if sw.status != 0 && rq.decision.Action == verdict.Allow {
		s.engine.Observe(&rq.facts, rq.mode, status, sw.costs(), now.UnixNano())
	}
	cacheStatus := sw.Header().Get("Rampart-Cache")
	s.metrics.request(rq.decision, status, cacheStatus, now.Sub(rq.start), time.Duration(rq.upstream.Load()))
	s.access.log(r, rq, status, cacheStatus, now.Sub(rq.start))
}

// clientInfo tells the upstream pool who the client is, for the forwarding
// headers.
func (s *Shield) clientInfo(r *http.Request) upstream.ClientInfo {
	rq := requestFrom(r)
	if rq == nil {
		return upstream.ClientInfo{}
	}
	ci := upstream.ClientInfo{IP: rq.facts.IP, TLS: rq.facts.TLS}
	if xff := r.Header["X-Forwarded-For"]; len(xff) > 0 {
		rt := s.rt.Load()
		if cinfo := netx.ConnInfoFrom(r.Context()); cinfo != nil && rt.resolver.Trusted(cinfo.Peer.Addr()) {
			ci.TrustedChain = rt.resolver.TrustedChain(cinfo.Peer.Addr(), xff)
		}
	}
	return ci
}

// onUpstream records how long the origin took for a request.
func (s *Shield) onUpstream(r *http.Request, status int, d time.Duration) {
	if rq := requestFrom(r); rq != nil {
		rq.upstream.Store(int64(d))
	}
}

// classOf gives admission the request's priority class and its client key
// for the fair queue: the address, or its /64 for IPv6 (one host holds a
// whole /64 and can take a new address for every request).
func (s *Shield) classOf(r *http.Request) (verdict.Class, uint64) {
	rq := requestFrom(r)
	if rq == nil {
		return verdict.ClassNormal, 0
	}
	return rq.decision.Class, flowKey(rq.facts.IP)
}

// flowKey is the fair queue's key for a client address.
func flowKey(ip netip.Addr) uint64 {
	if ip.Is4() || ip.Is4In6() {
		b := ip.Unmap().As4()
		return 1<<63 | uint64(binary.BigEndian.Uint32(b[:]))
	}
	b := ip.As16()
	return binary.BigEndian.Uint64(b[:8])
}

// admitMiss runs the miss rules when a request would go to the origin: the
// cache asks before it fetches a miss, and originGate asks for the requests
// the cache passes through. A refusal is kept in the request for refuseMiss.
func (s *Shield) admitMiss(r *http.Request) bool {
	rq := requestFrom(r)
	if rq == nil {
		return true
	}
	rq.missChecked = true
	d := s.engine.DecideMiss(&rq.facts, rq.mode, s.now().UnixNano())
	if d.DryRun != "" {
		s.dryRun(rq, d)
	}
	if d.Action == verdict.Allow {
		return true
	}
	rq.miss = d
	rq.decision.Action, rq.decision.Rule, rq.decision.Reason = d.Action, d.Rule, d.Reason
	s.metrics.missRefused.WithLabelValues(d.Reason).Inc()
	if d.Action == verdict.Block {
		s.block(rq.facts.IP, d.BlockTTL, d.Reason)
	}
	return false
}

// refuseMiss answers a request the miss rules refused: the challenge for a
// challenge rule, the cookie check for a check rule; false leaves the
// answer to the caller (the cache's own 429 for a miss limit).
func (s *Shield) refuseMiss(w http.ResponseWriter, r *http.Request) bool {
	rq := requestFrom(r)
	if rq == nil {
		return false
	}
	switch rq.miss.Action {
	case verdict.Challenge:
		s.challenge.Challenge(w, r, rq.facts.IP, rq.mode)
	case verdict.Check:
		s.challenge.CookieCheck(w, r, rq.facts.IP, rq.mode)
	default:
		return false
	}
	return true
}

// recheck runs the miss rules again for a client's request admitted to the
// origin in a higher mode than the one it arrived in (it waited in the
// admission queue, or behind another request for the same page in the
// cache), so that the requests a flood queued before the shield saw it do
// not reach the origin after it has: each gets what a request arriving now
// would get. The cache's background refreshes (for which the miss rules
// never ran) pass. It reports whether the request may go on.
func (s *Shield) recheck(w http.ResponseWriter, r *http.Request) bool {
	rq := requestFrom(r)
	mode := s.Mode()
	if rq == nil || !rq.missChecked || mode <= rq.mode {
		return true
	}
	rq.mode = mode
	if s.admitMiss(r) {
		return true
	}
	s.answerMiss(w, r, rq)
	return false
}

// answerMiss answers a request the miss rules refused: challenge, check,
// 429 or a dropped connection.
func (s *Shield) answerMiss(w http.ResponseWriter, r *http.Request, rq *request) {
	if s.refuseMiss(w, r) {
		return
	}
	switch rq.miss.Action {
	case verdict.Limit, verdict.Tarpit:
		s.tooMany(w, r, rq.miss)
	default: // drop, block
		s.drop(w, r)
	}
}

// originGate runs the miss rules for the client requests that reach the
// origin without the cache having asked: other methods than GET and HEAD,
// logged-in visitors, keys the cache passes through, and everything when
// the cache is off. The cache's background refreshes pass.
func (s *Shield) originGate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rq := requestFrom(r)
		if rq == nil || rq.missChecked || w != http.ResponseWriter(rq.w) || s.admitMiss(r) {
			next.ServeHTTP(w, r)
			return
		}
		s.answerMiss(w, r, rq)
	})
}

// unknownQuery tells rules whether a query carries parameters the cache has
// not seen the path use.
func (s *Shield) unknownQuery(f *verdict.Facts) bool {
	if s.cache == nil {
		return false
	}
	return s.cache.UnknownParams(f.Path, f.RawQuery)
}

// allowNoJS rate-limits clearances given without proof of work, per network.
func (s *Shield) allowNoJS(ip netip.Addr) bool {
	rt := s.rt.Load()
	p := clientid.Prefix(ip, rt.prefixV4, rt.prefixV6)
	var kb limiter.KeyBuilder
	kb.Reset("nojs")
	kb.AddPrefix(p)
	ok, _ := s.nojs.Allow(kb.Sum(), *s.nojsRate.Load(), 1, s.now().UnixNano())
	return ok
}

// checkParams is the cookie-check budget per client (address, IPv6 /64): a
// browser needs one token per lifetime (a few with several User-Agents or
// after a restart); a client that keeps no cookies gets ten redirects,
// then one every six seconds, and is told otherwise that cookies are
// needed.
var checkParams = func() limiter.Params {
	p, err := limiter.NewParams(1.0/6, 10)
	if err != nil {
		panic(err)
	}
	return p
}()

// allowCheck rate-limits the cookie-check tokens sent to one client.
func (s *Shield) allowCheck(ip netip.Addr) bool {
	var kb limiter.KeyBuilder
	kb.Reset("check")
	kb.AddPrefix(clientid.Prefix(ip, 32, 64))
	ok, _ := s.nojs.Allow(kb.Sum(), checkParams, 1, s.now().UnixNano())
	return ok
}

// deniedAtAccept is the conn gate's check: deny lists and blocks, unless the
// address is allow-listed.
func (s *Shield) deniedAtAccept(ip netip.Addr) bool {
	if s.lists.allowed(ip) {
		return false
	}
	return s.lists.denied(ip) || s.blocks.Contains(ip)
}

// classifyError maps request-body errors to the right status for the
// upstream pool.
func classifyError(err error) (int, string, bool) {
	switch {
	case netx.IsBodyTooSlow(err):
		return http.StatusRequestTimeout, netx.ReasonBodyTooSlow, true
	case netx.IsBodyTooLarge(err):
		return http.StatusRequestEntityTooLarge, netx.ReasonBodyTooLarge, true
	}
	return 0, "", false
}

func (s *Shield) onEdgeEvent(e verdict.Event) {
	s.metrics.edgeEvent(e)
}

// statusWriter records the status and strips the origin's cost headers
// before the response leaves.
type statusWriter struct {
	http.ResponseWriter
	status      int
	costHeaders []string
	costVals    http.Header
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 && (code >= 200 || code == http.StatusSwitchingProtocols) {
		w.status = code
		if len(w.costHeaders) > 0 {
			h := w.ResponseWriter.Header()
			for _, name := range w.costHeaders {
				if v, ok := h[name]; ok {
					if w.costVals == nil {
						w.costVals = make(http.Header, len(w.costHeaders))
					}
					w.costVals[name] = v
					delete(h, name)
				}
			}
		}
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// Flush keeps streamed responses (SSE) flowing through the wrapper.
func (w *statusWriter) Flush() {
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	http.NewResponseController(w.ResponseWriter).Flush()
}

var emptyHeader = http.Header{}

// costs returns the stripped cost headers (read only).
func (w *statusWriter) costs() http.Header {
	if w.costVals == nil {
		return emptyHeader
	}
	return w.costVals
}

// dryRun counts and logs (rate-limited) what a dry-run rule would have done.
func (s *Shield) dryRun(rq *request, d verdict.Decision) {
	s.metrics.dryRun(d.DryRun, d.DryRunAction)
	if s.dryRunLog.allow(s.now()) {
		s.log.Info("dry-run rule would have acted", "rule", d.DryRun, "action", d.DryRunAction.String(),
			"ip", rq.facts.IP.String(), "method", rq.facts.Method, "path", rq.facts.Path)
	}
}
