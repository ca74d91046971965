// Package policy decides what happens to a request: allow it, limit it,
// tarpit it, drop it, block its address, or challenge it. The decision is a
// pure function of the request's facts, the shield's mode, the time, and the
// rate-limit state; the package does no I/O and allocates nothing for an
// ordinary request.
//
// Rules come from the configuration and are compiled once into a RuleSet,
// which an Engine swaps in whole (atomic pointer) on reload. The rate-limit
// state lives in the Engine and outlives rule sets: keys are namespaced by
// rule name, so a reload that keeps a rule keeps its counters.
package policy

import (
	"fmt"
	"net/http"
	"net/netip"
	"net/textproto"
	"strconv"
	"strings"

	"github.com/rampart-shield/rampart/internal/config"
	"github.com/rampart-shield/rampart/internal/iplist"
	"github.com/rampart-shield/rampart/internal/limiter"
	"github.com/rampart-shield/rampart/internal/verdict"
)

// counting says what a rule's limit counts.
type counting uint8

const (
	countRequests counting = iota
	countResponses
	countMisses
)

// keyPart is one component of a limit key.
type keyPart struct {
	kind byte // 'i' ip, 'p' prefix, 'h' host, 'P' path, 'm' method, 'H' header, 'C' cookie, 'q' query, 'c' clearance, 'j' ja4, '2' h2
	name string
}

// rule is a compiled config.Rule.
type rule struct {
	name   string
	action verdict.Action
	dryRun bool
	ttl    int64 // block TTL, ns
	reason string

	// match
	hosts    []config.Pattern
	paths    []config.Pattern
	methods  []string
	headers  []field
	cookies  []field
	clients  *iplist.Set
	query    *config.QueryMatch
	static   int8 // -1 any, 0 false, 1 true
	cleared  int8
	nav      int8  // page navigation: -1 any, 0 no, 1 yes
	modes    uint8 // bitmask of verdict.Mode; 0 = all
	maxBody  int64
	anyMatch bool // no condition at all

	// limit
	limited    bool
	params     limiter.Params
	by         []keyPart
	count      counting
	statuses   []statusSpec
	costHeader string
}

type field struct {
	name    string // canonical header name, or cookie name
	present int8   // -1 unspecified, 0 absent, 1 present
	value   *config.Pattern
}

// statusSpec matches one status code (lo == hi) or a class (4xx).
type statusSpec struct{ lo, hi int }

// RuleSet is a compiled, immutable list of rules. Build one with Compile and
// install it with Engine.Swap.
type RuleSet struct {
	requests  []*rule // count: requests (and rules without a limit)
	misses    []*rule // count: misses
	responses []*rule // count: responses
	all       []*rule // in configuration order: requests and responses rules
	// costHeaders are the response headers rules read costs from; the shield
	// strips them before the answer leaves.
	costHeaders []string
	bypass      []config.Pattern
	clearance   limiter.Params
	names       []string
}

// Compile turns configuration rules into a RuleSet. rules are evaluated in
// order; builtin (the default rules) are appended after them when non-nil.
// bypass are the challenge bypass paths; clearanceRate and clearanceBurst the
// budget of one clearance token. Errors name the rule.
func Compile(rules []config.Rule, builtin []config.Rule, bypass []config.Pattern, clearanceRate float64, clearanceBurst int) (*RuleSet, error) {
	rs := &RuleSet{bypass: bypass}
	var err error
	if rs.clearance, err = limiter.NewParams(clearanceRate, clearanceBurst); err != nil {
		return nil, fmt.Errorf("clearance budget: %w", err)
	}
	seen := map[string]bool{}
	for _, list := range [][]config.Rule{rules, builtin} {
		for i := range list {
			cr := &list[i]
			if seen[cr.Name] {
				return nil, fmt.Errorf("rule %q: the name is used twice (a rule of yours shadows a default rule? rename it)", cr.Name)
			}
			seen[cr.Name] = true
			r, err := compileRule(cr)
			if err != nil {
				return nil, fmt.Errorf("rule %q: %w", cr.Name, err)
			}
			rs.names = append(rs.names, r.name)
			switch r.count {
			case countMisses:
				rs.misses = append(rs.misses, r)
			case countResponses:
				rs.responses = append(rs.responses, r)
				rs.all = append(rs.all, r)
				if r.costHeader != "" && !contains(rs.costHeaders, r.costHeader) {
					rs.costHeaders = append(rs.costHeaders, r.costHeader)
				}
			default:
				rs.requests = append(rs.requests, r)
				rs.all = append(rs.all, r)
			}
		}
	}
	return rs, nil
}

// CostHeaders lists the response headers that carry origin-reported costs.
func (rs *RuleSet) CostHeaders() []string { return rs.costHeaders }

// Names lists the rule names in evaluation order.
func (rs *RuleSet) Names() []string { return rs.names }

func compileRule(cr *config.Rule) (*rule, error) {
	act, err := verdict.ParseAction(cr.Action)
	if err != nil {
		return nil, err
	}
	r := &rule{
		name:    cr.Name,
		action:  act,
		dryRun:  cr.DryRun,
		ttl:     int64(cr.BlockTTL),
		reason:  "rule:" + cr.Name,
		static:  tri(cr.Match.Static),
		cleared: tri(cr.Match.Cleared),
		nav:     tri(cr.Match.Navigation),
		maxBody: int64(cr.MaxBody),
		hosts:   cr.Match.Hosts,
		paths:   cr.Match.Paths,
		query:   cr.Match.Query,
	}
	if act == verdict.Block && r.ttl <= 0 {
		return nil, fmt.Errorf("action block needs a block_ttl")
	}
	for _, m := range cr.Match.Methods {
		r.methods = append(r.methods, strings.ToUpper(m))
	}
	for _, h := range cr.Match.Headers {
		r.headers = append(r.headers, field{name: textproto.CanonicalMIMEHeaderKey(h.Name), present: tri(h.Present), value: h.Value})
	}
	for _, c := range cr.Match.Cookies {
		r.cookies = append(r.cookies, field{name: c.Name, present: tri(c.Present), value: c.Value})
	}
	if len(cr.Match.Clients) > 0 {
		ps := make([]netip.Prefix, len(cr.Match.Clients))
		for i, c := range cr.Match.Clients {
			ps[i] = c.Prefix()
		}
		r.clients = iplist.NewSet(ps)
	}
	for _, m := range cr.Match.Modes {
		md, err := verdict.ParseMode(m)
		if err != nil {
			return nil, err
		}
		r.modes |= 1 << md
	}
	r.anyMatch = len(r.hosts) == 0 && len(r.paths) == 0 && len(r.methods) == 0 && len(r.headers) == 0 &&
		len(r.cookies) == 0 && r.clients == nil && r.query == nil && r.static < 0 && r.cleared < 0 && r.nav < 0 && r.modes == 0
	if cr.Match.Miss {
		r.count = countMisses
	}

	if l := cr.Limit; l != nil {
		if act == verdict.Allow {
			return nil, fmt.Errorf("an allow rule cannot have a limit")
		}
		burst := l.Burst
		if burst == 0 {
			burst = max(1, int(l.Rate.PerSecond()+0.999))
		}
		if r.params, err = limiter.NewParams(l.Rate.PerSecond(), burst); err != nil {
			return nil, err
		}
		r.limited = true
		by := l.By
		if len(by) == 0 {
			by = []string{"ip"}
		}
		for _, b := range by {
			kp, err := parseKeyPart(b)
			if err != nil {
				return nil, err
			}
			r.by = append(r.by, kp)
		}
		switch l.Count {
		case "", "requests":
			if cr.Match.Miss && l.Count == "" {
				break
			}
			if cr.Match.Miss {
				return nil, fmt.Errorf("match.miss: true counts misses, not %s", l.Count)
			}
			r.count = countRequests
		case "misses":
			r.count = countMisses
		case "responses":
			if cr.Match.Miss {
				return nil, fmt.Errorf("match.miss: true counts misses, not responses")
			}
			r.count = countResponses
		default:
			return nil, fmt.Errorf("unknown count %q", l.Count)
		}
		for _, s := range l.Statuses {
			sp, err := parseStatus(s)
			if err != nil {
				return nil, err
			}
			r.statuses = append(r.statuses, sp)
		}
		if l.CostHeader != "" {
			r.costHeader = textproto.CanonicalMIMEHeaderKey(l.CostHeader)
		}
	}
	return r, nil
}

func parseKeyPart(s string) (keyPart, error) {
	switch s {
	case "ip":
		return keyPart{kind: 'i'}, nil
	case "prefix":
		return keyPart{kind: 'p'}, nil
	case "host":
		return keyPart{kind: 'h'}, nil
	case "path":
		return keyPart{kind: 'P'}, nil
	case "method":
		return keyPart{kind: 'm'}, nil
	case "clearance":
		return keyPart{kind: 'c'}, nil
	case "ja4":
		return keyPart{kind: 'j'}, nil
	case "h2":
		return keyPart{kind: '2'}, nil
	}
	kind, name, ok := strings.Cut(s, ":")
	if ok && name != "" {
		switch kind {
		case "header":
			return keyPart{kind: 'H', name: textproto.CanonicalMIMEHeaderKey(name)}, nil
		case "cookie":
			return keyPart{kind: 'C', name: name}, nil
		case "query":
			return keyPart{kind: 'q', name: name}, nil
		}
	}
	return keyPart{}, fmt.Errorf("unknown key part %q", s)
}

func parseStatus(s string) (statusSpec, error) {
	if len(s) == 3 && s[1:] == "xx" && s[0] >= '1' && s[0] <= '5' {
		lo := int(s[0]-'0') * 100
		return statusSpec{lo, lo + 99}, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 100 || n > 599 {
		return statusSpec{}, fmt.Errorf("bad status %q", s)
	}
	return statusSpec{n, n}, nil
}

func tri(b *bool) int8 {
	switch {
	case b == nil:
		return -1
	case *b:
		return 1
	}
	return 0
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

// headerValue returns the first value of a canonical header without
// allocating.
func headerValue(h http.Header, canonical string) (string, bool) {
	v := h[canonical]
	if len(v) == 0 {
		return "", false
	}
	return v[0], true
}
