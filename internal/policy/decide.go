package policy

import (
	"errors"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/rampart-shield/rampart/internal/clientid"
	"github.com/rampart-shield/rampart/internal/config"
	"github.com/rampart-shield/rampart/internal/limiter"
	"github.com/rampart-shield/rampart/internal/verdict"
)

// Reasons are the stable labels of decisions the engine takes by itself.
const (
	ReasonAllowList       = "allow-list"
	ReasonClearanceBudget = "clearance-budget"
	ReasonRepeatOffender  = "repeat-offender"
	ReasonUnderAttack     = "under-attack"
)

// Options configures an Engine's state. Rules are installed separately
// (Compile, Swap) so that they can be reloaded while the state lives on.
type Options struct {
	// TableCapacity is the number of rate-limit keys held; default 1<<20.
	TableCapacity int
	// Escalation turns repeated refusals into blocks; nil disables it.
	Escalation *limiter.EscalatorOptions
	// UnknownQuery reports whether a request's query carries a parameter
	// the path is not known to use (rules with query: {unknown: true}); nil
	// means never.
	UnknownQuery func(f *verdict.Facts) bool
	// OnPressure is called (at most once a second) when the rate-limit
	// table evicts live keys: it is too small for the traffic.
	OnPressure func()
	// Now is the clock behind table statistics; default time.Now.
	Now func() time.Time
}

// Engine holds the rate-limit state and the current RuleSet. It is safe for
// concurrent use: rule sets are swapped whole through an atomic pointer and
// the tables are sharded.
type Engine struct {
	table   *limiter.Table
	esc     *limiter.Escalator
	rules   atomic.Pointer[RuleSet]
	unknown func(f *verdict.Facts) bool

	dryRuns atomic.Uint64
}

// NewEngine builds an Engine with an empty rule set.
func NewEngine(o Options) (*Engine, error) {
	if o.Now == nil {
		o.Now = time.Now
	}
	t, err := limiter.NewTable(limiter.TableOptions{Capacity: o.TableCapacity, OnPressure: o.OnPressure, Now: o.Now})
	if err != nil {
		return nil, err
	}
	e := &Engine{table: t, unknown: o.UnknownQuery}
	if o.Escalation != nil {
		eo := *o.Escalation
		if eo.Now == nil {
			eo.Now = o.Now
		}
		if eo.OnPressure == nil {
			eo.OnPressure = o.OnPressure
		}
		if e.esc, err = limiter.NewEscalator(eo); err != nil {
			return nil, err
		}
	}
	empty, err := Compile(nil, nil, nil, 1, 1)
	if err != nil {
		return nil, err
	}
	e.rules.Store(empty)
	return e, nil
}

// Swap installs rs for all following decisions.
func (e *Engine) Swap(rs *RuleSet) {
	if rs == nil {
		panic(errors.New("policy: Swap(nil)"))
	}
	e.rules.Store(rs)
}

// Rules returns the current rule set.
func (e *Engine) Rules() *RuleSet { return e.rules.Load() }

// TableStats reports the rate-limit table's size and health.
func (e *Engine) TableStats() limiter.TableStats { return e.table.Stats() }

// EscalatorStats reports the repeat-offender table's size and health.
func (e *Engine) EscalatorStats() limiter.TableStats {
	if e.esc == nil {
		return limiter.TableStats{}
	}
	return e.esc.Stats()
}

// Decide returns what to do with a request. f.Clearance must already be
// verified. It runs, in order:
//
//  1. allow-listed clients and verified good bots: allow, priority class;
//  2. the clearance budget: a clearance token is itself a rate-limit key;
//  3. the rules with count: requests or responses, in configuration order:
//     a rule without a limit fires when it matches, a rule with one fires
//     when its key is over the limit (responses rules only look; the
//     response is charged by Observe); an allow rule stops evaluation; a
//     challenge rule is satisfied by a valid clearance and evaluation goes
//     on; dry-run rules are recorded in the decision and skipped;
//  4. in under_attack mode, a request without a clearance is challenged,
//     unless its path is on the bypass list.
//
// Refusals (limit, tarpit, drop) count as strikes against the client
// address; enough strikes within the window turn the decision into a block
// whose TTL doubles for repeat offenders. Decide does not allocate.
func (e *Engine) Decide(f *verdict.Facts, mode verdict.Mode, now int64) verdict.Decision {
	rs := e.rules.Load()
	if f.Allowlisted || f.GoodBot {
		return verdict.Decision{Action: verdict.Allow, Reason: ReasonAllowList, Class: verdict.ClassPriority}
	}
	d := verdict.Decision{Action: verdict.Allow, Class: classOf(f)}
	if f.Clearance.Valid {
		var kb limiter.KeyBuilder
		kb.Reset("\x00clearance")
		kb.AddUint64(f.Clearance.ID)
		if ok, retry := e.table.Allow(kb.Sum(), rs.clearance, 1, now); !ok {
			d.Action, d.Reason, d.RetryAfter = verdict.Limit, ReasonClearanceBudget, retry
			return e.strike(f, d, now)
		}
	}
	for _, r := range rs.all {
		if !e.matches(r, f, mode) {
			continue
		}
		if r.maxBody > 0 && (d.MaxBody == 0 || r.maxBody < d.MaxBody) {
			d.MaxBody = r.maxBody
		}
		fired, retry := e.fires(r, f, now)
		if !fired {
			continue
		}
		if e.satisfied(rs, r, f) {
			continue
		}
		if r.dryRun {
			if d.DryRun == "" {
				d.DryRun, d.DryRunAction = r.name, r.action
			}
			e.dryRuns.Add(1)
			continue
		}
		d.Action, d.Rule, d.Reason = r.action, r.name, r.reason
		switch r.action {
		case verdict.Allow:
			return d
		case verdict.Limit, verdict.Tarpit, verdict.Drop:
			d.RetryAfter = retry
			return e.strike(f, d, now)
		case verdict.Block:
			d.BlockTTL = time.Duration(r.ttl)
			return d
		}
		return d
	}
	if mode >= verdict.ModeUnderAttack && !f.Clearance.Valid && !e.bypassed(rs, f) {
		d.Action, d.Reason = verdict.Challenge, ReasonUnderAttack
	}
	return d
}

// satisfied reports whether a fired challenge or check rule is satisfied
// already: a valid clearance satisfies both, a cookie-check token only a
// check, and bypass paths and clients skip both.
func (e *Engine) satisfied(rs *RuleSet, r *rule, f *verdict.Facts) bool {
	switch r.action {
	case verdict.Challenge:
		return f.Clearance.Valid || e.bypassed(rs, f)
	case verdict.Check:
		return f.Clearance.Checked || f.Clearance.Valid || e.bypassed(rs, f)
	}
	return false
}

// DecideMiss is asked by the cache when it cannot answer a request and would
// go to the origin: the count: misses rules run, in order. Allow means go on.
func (e *Engine) DecideMiss(f *verdict.Facts, mode verdict.Mode, now int64) verdict.Decision {
	rs := e.rules.Load()
	d := verdict.Decision{Action: verdict.Allow, Class: classOf(f)}
	if f.Allowlisted || f.GoodBot {
		return d
	}
	for _, r := range rs.misses {
		if !e.matches(r, f, mode) {
			continue
		}
		fired, retry := e.fires(r, f, now)
		if !fired {
			continue
		}
		if e.satisfied(rs, r, f) {
			continue
		}
		if r.dryRun {
			if d.DryRun == "" {
				d.DryRun, d.DryRunAction = r.name, r.action
			}
			e.dryRuns.Add(1)
			continue
		}
		d.Action, d.Rule, d.Reason, d.RetryAfter = r.action, r.name, r.reason, retry
		switch r.action {
		case verdict.Limit, verdict.Tarpit, verdict.Drop:
			return e.strike(f, d, now)
		case verdict.Block:
			d.BlockTTL = time.Duration(r.ttl)
		}
		return d
	}
	return d
}

// Observe charges the count: responses rules for a response that has been
// sent: each rule that matches the request and lists the status (or reads a
// cost header) adds the cost, 1 by default, to the rule's key. h is the
// response header.
func (e *Engine) Observe(f *verdict.Facts, mode verdict.Mode, status int, h http.Header, now int64) {
	rs := e.rules.Load()
	if f.Allowlisted || f.GoodBot {
		return
	}
	for _, r := range rs.responses {
		cost := int64(0)
		for _, s := range r.statuses {
			if status >= s.lo && status <= s.hi {
				cost = 1
				break
			}
		}
		if r.costHeader != "" {
			if v, ok := headerValue(h, r.costHeader); ok {
				if n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64); err == nil && n > 0 {
					cost = n
				}
			}
		}
		if cost == 0 || !e.matches(r, f, mode) {
			continue
		}
		e.table.Charge(e.key(r, f), r.params, cost, now)
	}
}

// DryRuns counts dry-run rules that would have fired.
func (e *Engine) DryRuns() uint64 { return e.dryRuns.Load() }

// strike records a refusal against the client address and upgrades the
// decision to a block when the address has become a repeat offender.
func (e *Engine) strike(f *verdict.Facts, d verdict.Decision, now int64) verdict.Decision {
	if e.esc == nil || !f.IP.IsValid() {
		return d
	}
	var kb limiter.KeyBuilder
	kb.Reset("\x00offender")
	if ip := f.IP.Unmap(); ip.Is6() && f.Prefix.IsValid() && f.Prefix.Contains(ip) {
		// An IPv6 client has a whole network (a /64 by default) to
		// rotate through: its strikes count against the network.
		kb.AddPrefix(f.Prefix)
	} else {
		kb.AddAddr(f.IP)
	}
	if ttl := e.esc.Strike(kb.Sum(), now); ttl > 0 {
		d.Action, d.Reason, d.BlockTTL = verdict.Block, ReasonRepeatOffender, ttl
	}
	return d
}

// fires reports whether a matched rule acts on this request.
func (e *Engine) fires(r *rule, f *verdict.Facts, now int64) (bool, time.Duration) {
	if !r.limited {
		return true, 0
	}
	key := e.key(r, f)
	if r.count == countResponses {
		ok, retry := e.table.Peek(key, r.params, now)
		return !ok, retry
	}
	ok, retry := e.table.Allow(key, r.params, 1, now)
	return !ok, retry
}

func (e *Engine) key(r *rule, f *verdict.Facts) uint64 {
	var kb limiter.KeyBuilder
	kb.Reset(r.name)
	for _, p := range r.by {
		switch p.kind {
		case 'i':
			kb.AddAddr(f.IP)
		case 'p':
			kb.AddPrefix(f.Prefix)
		case 'h':
			kb.AddString(f.Host)
		case 'P':
			kb.AddString(f.Path)
		case 'm':
			kb.AddString(f.Method)
		case 'c':
			kb.AddUint64(f.Clearance.ID)
		case 'j':
			kb.AddString(f.Fingerprints.JA4)
		case '2':
			kb.AddString(f.Fingerprints.HTTP2)
		case 'H':
			v, _ := headerValue(f.Header, p.name)
			kb.AddString(v)
		case 'C':
			v, _ := clientid.CookieValue(f.Header, p.name)
			kb.AddString(v)
		case 'q':
			kb.AddString(queryValue(f.RawQuery, p.name))
		}
	}
	return kb.Sum()
}

func (e *Engine) matches(r *rule, f *verdict.Facts, mode verdict.Mode) bool {
	if r.anyMatch {
		return true
	}
	if r.modes != 0 && r.modes&(1<<mode) == 0 {
		return false
	}
	if r.static >= 0 && f.Static != (r.static == 1) {
		return false
	}
	if r.cleared >= 0 && f.Clearance.Valid != (r.cleared == 1) {
		return false
	}
	if r.nav >= 0 && f.Navigation != (r.nav == 1) {
		return false
	}
	if len(r.methods) > 0 && !contains(r.methods, f.Method) {
		return false
	}
	if len(r.hosts) > 0 && !anyPattern(r.hosts, f.Host) {
		return false
	}
	if len(r.paths) > 0 && !anyPattern(r.paths, f.Path) {
		return false
	}
	if r.clients != nil && !r.clients.Contains(f.IP) {
		return false
	}
	for i := range r.headers {
		fm := &r.headers[i]
		v, ok := headerValue(f.Header, fm.name)
		if !fieldOK(fm, v, ok) {
			return false
		}
	}
	for i := range r.cookies {
		fm := &r.cookies[i]
		v, ok := clientid.CookieValue(f.Header, fm.name)
		if !fieldOK(fm, v, ok) {
			return false
		}
	}
	if q := r.query; q != nil && !e.queryMatches(q, f) {
		return false
	}
	return true
}

func fieldOK(fm *field, v string, ok bool) bool {
	switch fm.present {
	case 0:
		return !ok
	case 1:
		if !ok {
			return false
		}
	}
	if fm.value != nil {
		return ok && fm.value.Match(v)
	}
	return true
}

func anyPattern(ps []config.Pattern, s string) bool {
	for i := range ps {
		if ps[i].Match(s) {
			return true
		}
	}
	return false
}

// queryMatches checks the query-shape conditions: any one of the given
// conditions holding makes the shape match (they describe alternative
// tell-tales of cache busting).
func (e *Engine) queryMatches(q *config.QueryMatch, f *verdict.Facts) bool {
	rq := f.RawQuery
	if q.MinLength > 0 && len(rq) >= q.MinLength {
		return true
	}
	if q.MinParams > 0 && rq != "" && strings.Count(rq, "&")+1 >= q.MinParams {
		return true
	}
	for _, name := range q.Has {
		if hasParam(rq, name) {
			return true
		}
	}
	if q.Unknown && e.unknown != nil && rq != "" && e.unknown(f) {
		return true
	}
	return false
}

func (e *Engine) bypassed(rs *RuleSet, f *verdict.Facts) bool {
	return anyPattern(rs.bypass, f.Path)
}

// classOf is the admission class of a request before any rule: clearance
// holders first; clients that do not even send the headers every browser
// sends are served last.
func classOf(f *verdict.Facts) verdict.Class {
	switch {
	case f.Clearance.Valid:
		return verdict.ClassPriority
	case f.UserAgent == "" || len(f.Header["Accept"]) == 0:
		return verdict.ClassSuspicious
	}
	return verdict.ClassNormal
}

// hasParam reports whether the raw query has a parameter named name.
func hasParam(rq, name string) bool {
	for rq != "" {
		var kv string
		if i := strings.IndexByte(rq, '&'); i >= 0 {
			kv, rq = rq[:i], rq[i+1:]
		} else {
			kv, rq = rq, ""
		}
		k, _, _ := strings.Cut(kv, "=")
		if k == name {
			return true
		}
	}
	return false
}

// queryValue returns the raw (still escaped) value of parameter name.
func queryValue(rq, name string) string {
	for rq != "" {
		var kv string
		if i := strings.IndexByte(rq, '&'); i >= 0 {
			kv, rq = rq[:i], rq[i+1:]
		} else {
			kv, rq = rq, ""
		}
		if k, v, _ := strings.Cut(kv, "="); k == name {
			return v
		}
	}
	return ""
}
