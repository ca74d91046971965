package config

import (
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// checker collects validation errors with the position of the key they are
// about (or its nearest ancestor that came from the file).
type checker struct {
	src  *source
	errs ErrorList
}

func (k *checker) failf(path, format string, args ...any) {
	if k.src != nil && k.src.bad[path] {
		return
	}
	e := &Error{Path: path, Msg: fmt.Sprintf(format, args...)}
	if k.src != nil {
		e.File = k.src.file
		for p := path; p != ""; p = parentPath(p) {
			if pos, ok := k.src.pos[p]; ok {
				e.Pos = pos
				break
			}
		}
	}
	k.errs = append(k.errs, e)
}

func parentPath(p string) string {
	i := strings.LastIndexAny(p, ".[")
	if i < 0 {
		return ""
	}
	return p[:i]
}

func (k *checker) intRange(path string, v, lo, hi int) {
	if v < lo || v > hi {
		k.failf(path, "must be between %d and %d, got %d", lo, hi, v)
	}
}

func (k *checker) durRange(path string, v Duration, lo, hi time.Duration) {
	if v.D() < lo || v.D() > hi {
		k.failf(path, "must be between %v and %v, got %v", lo, hi, v.D())
	}
}

func (k *checker) oneOf(path, v string, allowed ...string) {
	for _, a := range allowed {
		if v == a {
			return
		}
	}
	k.failf(path, "must be one of %s, got %q", strings.Join(allowed, ", "), v)
}

var modes = []string{"normal", "elevated", "under_attack"}

// validate checks every value; complete also requires what only a full
// configuration (after flags) must have.
func (c *Config) validate(complete bool) ErrorList {
	k := &checker{src: c.src}

	if len(c.Listeners) == 0 {
		k.failf("listeners", "at least one listener is needed")
	}
	seen := map[string]bool{}
	for i, l := range c.Listeners {
		p := fmt.Sprintf("listeners[%d]", i)
		if err := checkHostPort(l.Address); err != nil {
			k.failf(p+".address", "%v", err)
		}
		if seen[l.Address] && !strings.HasSuffix(l.Address, ":0") {
			k.failf(p+".address", "address %q is listed twice", l.Address)
		}
		seen[l.Address] = true
		if l.TLS && c.TLS.CertFile == "" && len(c.TLS.ACMEDomains) == 0 {
			k.failf(p+".tls", "a TLS listener needs tls.cert_file and tls.key_file, or tls.acme_domains")
		}
		if l.ProxyProtocol && len(c.Client.TrustedProxies) == 0 {
			k.failf(p+".proxy_protocol", "the PROXY protocol is accepted only from client.trusted_proxies, which is empty")
		}
	}

	c.validateUpstream(k, complete)

	if c.Admin.Listen != "" {
		if err := checkHostPort(c.Admin.Listen); err != nil {
			k.failf("admin.listen", "%v", err)
		}
	}
	if c.Admin.Token != "" && c.Admin.TokenFile != "" {
		k.failf("admin.token_file", "set admin.token or admin.token_file, not both")
	}
	if c.Admin.Token != "" && len(c.Admin.Token) < 16 {
		k.failf("admin.token", "must be at least 16 characters")
	}
	k.oneOf("mode", c.Mode, append([]string{"auto"}, modes...)...)
	dt := c.Detect
	if dt.SurgeFactor <= 1 || dt.SurgeFactor > 1000 {
		k.failf("detect.surge_factor", "must be above 1 and at most 1000, got %v", dt.SurgeFactor)
	}
	if dt.MinRate < 0 || dt.MinOriginRate < 0 {
		k.failf("detect", "min_rate and min_origin_rate must not be negative")
	}
	k.intRange("detect.elevate_after", dt.ElevateAfter, 1, 3600)
	k.intRange("detect.attack_after", dt.AttackAfter, 1, 3600)
	k.intRange("detect.extreme_after", dt.ExtremeAfter, 1, 3600)
	if dt.ExtremeFactor <= 1 || dt.ExtremeMinRate < 0 {
		k.failf("detect.extreme_factor", "must be above 1 (and extreme_min_rate not negative)")
	}
	k.durRange("detect.stand_down", dt.StandDown, time.Second, 24*time.Hour)
	k.durRange("detect.warm_up", dt.WarmUp, 0, 24*time.Hour)

	if (c.TLS.CertFile == "") != (c.TLS.KeyFile == "") {
		k.failf("tls", "tls.cert_file and tls.key_file go together")
	}
	k.oneOf("tls.min_version", c.TLS.MinVersion, "1.2", "1.3")
	for i, d := range c.TLS.ACMEDomains {
		if !validHostname(d) {
			k.failf(fmt.Sprintf("tls.acme_domains[%d]", i), "%q is not a DNS name", d)
		}
	}
	c.validateACME(k)

	k.intRange("client.prefix_v4", c.Client.PrefixV4, 8, 32)
	k.intRange("client.prefix_v6", c.Client.PrefixV6, 16, 128)

	h := c.Hardening
	k.durRange("hardening.read_header_timeout", h.ReadHeaderTimeout, 100*time.Millisecond, 5*time.Minute)
	k.durRange("hardening.idle_timeout", h.IdleTimeout, 100*time.Millisecond, time.Hour)
	k.durRange("hardening.write_timeout", h.WriteTimeout, 100*time.Millisecond, time.Hour)
	k.durRange("hardening.tls_handshake_timeout", h.TLSHandshakeTimeout, 100*time.Millisecond, time.Minute)
	k.durRange("hardening.body_rate_grace", h.BodyRateGrace, 0, time.Hour)
	k.durRange("hardening.proxy_header_timeout", h.ProxyHeaderTimeout, 100*time.Millisecond, time.Minute)
	if h.MinBodyRate < 0 || h.MinBodyRate > 1<<30 {
		k.failf("hardening.min_body_rate", "must be between 0 and 1GiB")
	}
	if h.MaxHeaderBytes < 1<<10 || h.MaxHeaderBytes > 1<<20 {
		k.failf("hardening.max_header_bytes", "must be between 1KiB and 1MiB, got %v", h.MaxHeaderBytes)
	}
	k.intRange("hardening.max_header_count", h.MaxHeaderCount, 8, 10000)
	if h.MaxBodyBytes < 1 {
		k.failf("hardening.max_body_bytes", "must be at least 1 byte")
	}
	k.intRange("hardening.max_ranges", h.MaxRanges, 1, 1000)
	if h.BufferBody < 0 || h.BufferBody > 1<<30 {
		k.failf("hardening.buffer_body", "must be between 0 (stream every body) and 1GiB")
	}
	if h.BufferTotal < h.BufferBody {
		k.failf("hardening.buffer_total", "must be at least hardening.buffer_body")
	}
	k.intRange("hardening.max_conns", h.MaxConns, 1, 10_000_000)
	k.intRange("hardening.max_conns_per_ip", h.MaxConnsPerIP, 1, max(h.MaxConns, 1))
	k.intRange("hardening.h2.max_concurrent_streams", h.H2.MaxConcurrentStreams, 1, 10000)
	if h.H2.MaxHeaderListSize < 1<<10 || h.H2.MaxHeaderListSize > 1<<20 {
		k.failf("hardening.h2.max_header_list_size", "must be between 1KiB and 1MiB, got %v", h.H2.MaxHeaderListSize)
	}
	k.intRange("hardening.h2.glitch_budget", h.H2.GlitchBudget, 1, 1_000_000)
	k.intRange("hardening.h2.reset_budget", h.H2.ResetBudget, 1, 1_000_000)
	if h.H2.BudgetRefill < 0 || h.H2.BudgetRefill > 1e6 {
		k.failf("hardening.h2.budget_refill", "must be between 0 and 1000000")
	}

	l := c.Limits
	k.intRange("limits.table_capacity", l.TableCapacity, 1024, 1<<28)
	k.intRange("limits.blocks_capacity", l.BlocksCapacity, 16, 1<<26)
	if !l.Escalation.Disabled {
		k.intRange("limits.escalation.strikes", l.Escalation.Strikes, 1, 1_000_000)
		k.durRange("limits.escalation.window", l.Escalation.Window, time.Second, 24*time.Hour)
		k.durRange("limits.escalation.base_ttl", l.Escalation.BaseTTL, time.Second, 30*24*time.Hour)
		k.durRange("limits.escalation.max_ttl", l.Escalation.MaxTTL, l.Escalation.BaseTTL.D(), 30*24*time.Hour)
		k.durRange("limits.escalation.forget", l.Escalation.Forget, time.Second, 30*24*time.Hour)
	}
	k.durRange("limits.tarpit_delay", l.TarpitDelay, 0, 5*time.Minute)
	k.intRange("limits.tarpit_max", l.TarpitMax, 0, 1_000_000)
	if l.ClearanceRate <= 0 {
		k.failf("limits.clearance_rate", "must be a positive rate")
	}
	k.intRange("limits.clearance_burst", l.ClearanceBurst, 1, 1_000_000)

	k.durRange("lists.watch_interval", c.Lists.WatchInterval, 100*time.Millisecond, time.Hour)

	names := map[string]bool{}
	for i := range c.Rules {
		c.Rules[i].validate(k, fmt.Sprintf("rules[%d]", i), names)
	}

	ch := c.Challenge
	for _, m := range []struct {
		name string
		d    int
		ttl  Duration
	}{{"normal", ch.Difficulty.Normal, ch.ClearanceTTL.Normal}, {"elevated", ch.Difficulty.Elevated, ch.ClearanceTTL.Elevated}, {"under_attack", ch.Difficulty.UnderAttack, ch.ClearanceTTL.UnderAttack}} {
		k.intRange("challenge.difficulty."+m.name, m.d, 1, 32)
		k.durRange("challenge.clearance_ttl."+m.name, m.ttl, time.Minute, 30*24*time.Hour)
	}
	if ch.Difficulty.Elevated < ch.Difficulty.Normal || ch.Difficulty.UnderAttack < ch.Difficulty.Elevated {
		k.failf("challenge.difficulty", "must not fall as the mode rises (normal <= elevated <= under_attack)")
	}
	longest := max(ch.ClearanceTTL.Normal, ch.ClearanceTTL.Elevated, ch.ClearanceTTL.UnderAttack)
	k.durRange("challenge.key_rotation", ch.KeyRotation, max(time.Minute, longest.D()), 365*24*time.Hour)
	k.oneOf("challenge.nojs", ch.NoJS, "deny", "pass")
	if ch.NoJS == "pass" && ch.NoJSRate <= 0 {
		k.failf("challenge.nojs_rate", "must be a positive rate when nojs is pass")
	}

	cc := c.Cache
	if !cc.Disabled {
		if cc.MaxSize < 1<<20 {
			k.failf("cache.max_size", "must be at least 1MiB, got %v", cc.MaxSize)
		}
		if cc.MaxEntrySize < 1 || cc.MaxEntrySize > cc.MaxSize/4 {
			k.failf("cache.max_entry_size", "must be between 1 byte and a quarter of cache.max_size")
		}
		if cc.InflightSize != 0 && (cc.InflightSize < cc.MaxEntrySize || cc.InflightSize > cc.MaxSize/4) {
			k.failf("cache.inflight_size", "must be 0 (automatic) or between cache.max_entry_size and a quarter of cache.max_size")
		}
		k.durRange("cache.learn_after", cc.LearnAfter, 0, 24*time.Hour)
		k.intRange("cache.learn_capacity", cc.LearnCapacity, 1, 1<<20)
		if cc.LearnParams && int64(cc.LearnCapacity)*3584 > int64(cc.MaxSize)/4 {
			k.failf("cache.learn_capacity", "its table (3.5 KiB a path group) must fit in a quarter of cache.max_size")
		}
		for i, n := range cc.IgnoreParams {
			if n == "" || n == "*" {
				k.failf(fmt.Sprintf("cache.ignore_params[%d]", i), "a parameter name must not be empty or match everything")
			}
		}
		k.durRange("cache.micro_ttl", cc.MicroTTL, 0, time.Hour)
		k.oneOf("cache.micro_cache_mode", cc.MicroCacheMode, modes...)
		k.oneOf("cache.normalise_mode", cc.NormaliseMode, modes...)
		k.durRange("cache.stale_if_error", cc.StaleIfError, 0, 30*24*time.Hour)
		k.durRange("cache.coalesce_wait", cc.CoalesceWait, 0, time.Minute)
		for pat := range cc.KnownParams {
			if _, err := ParsePattern(pat); err != nil {
				k.failf("cache.known_params."+pat, "%v", err)
			}
		}
		for i, n := range cc.SessionCookies {
			if n == "" || n == "*" {
				k.failf(fmt.Sprintf("cache.session_cookies[%d]", i), "a session cookie name must not be empty or match everything")
			}
		}
	}

	a := c.Admission
	if !a.Disabled {
		k.intRange("admission.min_limit", a.MinLimit, 1, 100_000)
		k.intRange("admission.max_limit", a.MaxLimit, max(a.MinLimit, 1), 100_000)
		k.intRange("admission.initial_limit", a.InitialLimit, a.MinLimit, max(a.MaxLimit, a.MinLimit))
		k.intRange("admission.queue_size", a.QueueSize, 0, 1_000_000)
		k.durRange("admission.max_wait.priority", a.MaxWait.Priority, 0, 5*time.Minute)
		k.durRange("admission.max_wait.normal", a.MaxWait.Normal, 0, 5*time.Minute)
		k.durRange("admission.max_wait.suspicious", a.MaxWait.Suspicious, 0, 5*time.Minute)
	}

	k.oneOf("log.level", c.Log.Level, "debug", "info", "warn", "error")
	if c.Log.AccessSample < 0 || c.Log.AccessSample > 1 {
		k.failf("log.access_sample", "must be between 0 and 1, got %v", c.Log.AccessSample)
	}
	k.intRange("log.access_max_per_second", c.Log.AccessMaxPerSecond, 0, 1_000_000)
	return k.errs
}

func (c *Config) validateUpstream(k *checker, complete bool) {
	u := c.Upstream
	if complete && len(u.Targets) == 0 {
		k.failf("upstream.targets", "at least one upstream target is needed (upstream.targets or --upstream)")
	}
	for i, t := range u.Targets {
		p := fmt.Sprintf("upstream.targets[%d]", i)
		pu, err := url.Parse(t)
		switch {
		case err != nil:
			k.failf(p, "bad URL %q: %v", t, err)
		case pu.Scheme != "http" && pu.Scheme != "https" && pu.Scheme != "h2c" && pu.Scheme != "h2":
			k.failf(p, "bad URL %q: the scheme must be http, https, h2c (HTTP/2 without TLS) or h2", t)
		case pu.Host == "":
			k.failf(p, "bad URL %q: no host", t)
		case pu.RawQuery != "" || pu.Fragment != "" || (pu.Path != "" && pu.Path != "/") || pu.User != nil:
			k.failf(p, "bad URL %q: a target is scheme://host:port only (the request path is sent unchanged)", t)
		}
	}
	k.oneOf("upstream.balance", u.Balance, "round_robin", "least_conn")
	hc := u.HealthCheck
	if !hc.Disabled {
		if !strings.HasPrefix(hc.Path, "/") {
			k.failf("upstream.health_check.path", "must start with /, got %q", hc.Path)
		}
		k.durRange("upstream.health_check.interval", hc.Interval, 100*time.Millisecond, time.Hour)
		k.durRange("upstream.health_check.timeout", hc.Timeout, 10*time.Millisecond, time.Minute)
		k.intRange("upstream.health_check.healthy_threshold", hc.HealthyThreshold, 1, 100)
		k.intRange("upstream.health_check.unhealthy_threshold", hc.UnhealthyThreshold, 1, 100)
	}
	k.intRange("upstream.passive.max_fails", u.Passive.MaxFails, 1, 100_000)
	k.durRange("upstream.passive.window", u.Passive.Window, 100*time.Millisecond, time.Hour)
	k.durRange("upstream.passive.eject_for", u.Passive.EjectFor, 100*time.Millisecond, time.Hour)
	k.durRange("upstream.passive.max_eject_for", u.Passive.MaxEjectFor, u.Passive.EjectFor.D(), 24*time.Hour)
	k.durRange("upstream.dial_timeout", u.DialTimeout, 10*time.Millisecond, 5*time.Minute)
	k.durRange("upstream.response_header_timeout", u.ResponseHeaderTimeout, 10*time.Millisecond, time.Hour)
	k.durRange("upstream.idle_conn_timeout", u.IdleConnTimeout, time.Second, time.Hour)
	k.intRange("upstream.max_idle_conns_per_target", u.MaxIdleConnsPerTarget, 1, 100_000)
}

var (
	ruleName   = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)
	methodName = regexp.MustCompile(`^[A-Z]{1,20}$`)
	fieldName  = regexp.MustCompile(`^[!#$%&'*+.^_` + "`" + `|~0-9A-Za-z-]{1,128}$`)
	statusSpec = regexp.MustCompile(`^[1-5]([0-9][0-9]|xx)$`)
)

func (r *Rule) validate(k *checker, p string, names map[string]bool) {
	switch {
	case r.Name == "":
		k.failf(p+".name", "every rule needs a name")
	case !ruleName.MatchString(r.Name):
		k.failf(p+".name", "%q: use letters, digits, '.', '_' and '-' (at most 64)", r.Name)
	case names[r.Name]:
		k.failf(p+".name", "rule name %q is used twice", r.Name)
	}
	names[r.Name] = true
	switch r.Action {
	case "allow", "limit", "tarpit", "drop", "block", "challenge", "check":
	case "":
		k.failf(p+".action", "every rule needs an action (allow, limit, tarpit, drop, block, challenge or check)")
	default:
		k.failf(p+".action", "unknown action %q (want allow, limit, tarpit, drop, block, challenge or check)", r.Action)
	}
	if r.Action == "block" && r.BlockTTL <= 0 {
		k.failf(p+".block_ttl", "action block needs a block_ttl, such as 10m")
	}
	if r.Action != "block" && r.BlockTTL != 0 {
		k.failf(p+".block_ttl", "block_ttl only applies to action block")
	}
	if r.Action == "allow" && r.Limit != nil {
		k.failf(p+".limit", "an allow rule cannot have a limit: it would allow only clients above it")
	}
	if r.MaxBody < 0 {
		k.failf(p+".max_body", "must not be negative")
	}
	m := r.Match
	for i, meth := range m.Methods {
		if !methodName.MatchString(meth) {
			k.failf(fmt.Sprintf("%s.match.methods[%d]", p, i), "%q is not an upper-case HTTP method", meth)
		}
	}
	for i, f := range m.Headers {
		f.validate(k, fmt.Sprintf("%s.match.headers[%d]", p, i))
	}
	for i, f := range m.Cookies {
		f.validate(k, fmt.Sprintf("%s.match.cookies[%d]", p, i))
	}
	for i, md := range m.Modes {
		k.oneOf(fmt.Sprintf("%s.match.modes[%d]", p, i), md, modes...)
	}
	if q := m.Query; q != nil {
		k.intRange(p+".match.query.min_params", q.MinParams, 0, 10000)
		k.intRange(p+".match.query.min_length", q.MinLength, 0, 1<<20)
		if q.MinParams == 0 && q.MinLength == 0 && len(q.Has) == 0 && !q.Unknown {
			k.failf(p+".match.query", "give at least one of min_params, min_length, has, unknown")
		}
	}
	if l := r.Limit; l != nil {
		lp := p + ".limit"
		if l.Rate <= 0 {
			k.failf(lp+".rate", "a limit needs a rate, such as 10/s")
		}
		if l.Burst < 0 || l.Burst > 10_000_000 {
			k.failf(lp+".burst", "must be between 0 (one second's worth) and 10000000")
		}
		for i, b := range l.By {
			if err := checkKeyPart(b); err != nil {
				k.failf(fmt.Sprintf("%s.by[%d]", lp, i), "%v", err)
			}
		}
		if m.Miss && l.Count != "" && l.Count != "misses" {
			k.failf(lp+".count", "a rule with match.miss: true counts misses; got count: %s", l.Count)
		}
		switch l.Count {
		case "", "requests", "misses":
			if len(l.Statuses) > 0 || l.CostHeader != "" {
				k.failf(lp+".count", "statuses and cost_header need count: responses")
			}
		case "responses":
			if len(l.Statuses) == 0 && l.CostHeader == "" {
				k.failf(lp+".statuses", "count: responses needs statuses (such as 4xx) or a cost_header")
			}
		default:
			k.failf(lp+".count", "must be requests, responses or misses, got %q", l.Count)
		}
		for i, s := range l.Statuses {
			if !statusSpec.MatchString(s) {
				k.failf(fmt.Sprintf("%s.statuses[%d]", lp, i), "%q is not a status (404) or class (4xx)", s)
			}
		}
		if l.CostHeader != "" && !fieldName.MatchString(l.CostHeader) {
			k.failf(lp+".cost_header", "%q is not a header name", l.CostHeader)
		}
	}
}

func (f FieldMatch) validate(k *checker, p string) {
	if !fieldName.MatchString(f.Name) {
		k.failf(p+".name", "%q is not a valid field name", f.Name)
	}
	if f.Present == nil && f.Value == nil {
		k.failf(p, "give present: true/false or a value pattern")
	}
	if f.Present != nil && !*f.Present && f.Value != nil {
		k.failf(p, "present: false and a value pattern contradict each other")
	}
}

// KeyParts are the names a limit's by list may use.
var KeyParts = []string{"ip", "prefix", "host", "path", "method", "clearance", "ja4", "h2", "header:NAME", "cookie:NAME", "query:NAME"}

func checkKeyPart(b string) error {
	switch b {
	case "ip", "prefix", "host", "path", "method", "clearance", "ja4", "h2":
		return nil
	}
	if kind, name, ok := strings.Cut(b, ":"); ok && (kind == "header" || kind == "cookie" || kind == "query") {
		if !fieldName.MatchString(name) {
			return fmt.Errorf("%q: %q is not a valid %s name", b, name, kind)
		}
		return nil
	}
	return fmt.Errorf("unknown key part %q (want one of %s)", b, strings.Join(KeyParts, ", "))
}

func checkHostPort(s string) error {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return fmt.Errorf("bad address %q: want host:port, such as :8080 or 127.0.0.1:8080", s)
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 0 || n > 65535 {
		return fmt.Errorf("bad address %q: port must be a number from 0 to 65535", s)
	}
	if host != "" && net.ParseIP(host) == nil && !validHostname(host) {
		return fmt.Errorf("bad address %q: %q is neither an IP address nor a host name", s, host)
	}
	return nil
}

func validHostname(s string) bool {
	if s == "" || len(s) > 253 {
		return false
	}
	for _, label := range strings.Split(strings.TrimSuffix(s, "."), ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, r := range label {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '*') {
				return false
			}
		}
	}
	return true
}

// validateACME checks tls.acme_directory and tls.acme_ca_file. The CA file
// is read here, so that a bad one is reported at its key, not at start.
func (c *Config) validateACME(k *checker) {
	t := c.TLS
	if err := checkACMEDirectory(t.ACMEDirectory); err != nil {
		k.failf("tls.acme_directory", "%v", err)
	}
	if t.ACMECAFile != "" {
		if err := checkCAFile(t.ACMECAFile); err != nil {
			k.failf("tls.acme_ca_file", "%v", err)
		}
	}
	if len(t.ACMEDomains) == 0 {
		if t.ACMEDirectory != DefaultACMEDirectory {
			k.failf("tls.acme_directory", "only applies with tls.acme_domains, which is empty")
		}
		if t.ACMECAFile != "" {
			k.failf("tls.acme_ca_file", "only applies with tls.acme_domains, which is empty")
		}
	}
}

func checkACMEDirectory(s string) error {
	u, err := url.Parse(s)
	switch {
	case s == "":
		return errors.New("must not be empty (the default is Let's Encrypt's production directory, " + DefaultACMEDirectory + ")")
	case err != nil:
		return fmt.Errorf("bad URL %q: %v", s, err)
	case u.Scheme != "https":
		return fmt.Errorf("bad URL %q: an ACME directory is served over https", s)
	case u.Host == "" || u.Hostname() == "":
		return fmt.Errorf("bad URL %q: no host", s)
	case u.User != nil || u.Fragment != "":
		return fmt.Errorf("bad URL %q: a directory URL has no user information or fragment", s)
	}
	return nil
}

func checkCAFile(path string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("cannot read the CA file: %v", err)
	}
	if !x509.NewCertPool().AppendCertsFromPEM(data) {
		return fmt.Errorf("%s holds no PEM certificate", path)
	}
	return nil
}
