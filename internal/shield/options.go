package shield

import (
	"crypto/tls"
	"fmt"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"time"

	"github.com/rampart-shield/rampart/internal/admission"
	"github.com/rampart-shield/rampart/internal/cache"
	"github.com/rampart-shield/rampart/internal/challenge"
	"github.com/rampart-shield/rampart/internal/clientid"
	"github.com/rampart-shield/rampart/internal/config"
	"github.com/rampart-shield/rampart/internal/netx"
	"github.com/rampart-shield/rampart/internal/policy"
	"github.com/rampart-shield/rampart/internal/upstream"
	"github.com/rampart-shield/rampart/internal/verdict"
)

// runtime holds the per-configuration values the request path reads, swapped
// whole on reload.
type runtime struct {
	resolver    *clientid.Resolver
	prefixV4    int
	prefixV6    int
	maxBody     int64
	tarpitDelay time.Duration
	tarpitMax   int64
	bufferBody  int64
	bufferTotal int64
}

func newRuntime(cfg *config.Config) (*runtime, error) {
	trusted := make([]netip.Prefix, len(cfg.Client.TrustedProxies))
	for i, c := range cfg.Client.TrustedProxies {
		trusted[i] = c.Prefix()
	}
	return &runtime{
		resolver:    clientid.NewResolver(trusted),
		prefixV4:    cfg.Client.PrefixV4,
		prefixV6:    cfg.Client.PrefixV6,
		maxBody:     int64(cfg.Hardening.MaxBodyBytes),
		tarpitDelay: cfg.Limits.TarpitDelay.D(),
		tarpitMax:   int64(cfg.Limits.TarpitMax),
		bufferBody:  int64(cfg.Hardening.BufferBody),
		bufferTotal: int64(cfg.Hardening.BufferTotal),
	}, nil
}

func compileRules(cfg *config.Config) (*policy.RuleSet, error) {
	var builtin []config.Rule
	if cfg.DefaultRules {
		builtin = config.BuiltinRules()
	}
	rs, err := policy.Compile(cfg.Rules, builtin, bypassPaths(cfg), cfg.Limits.ClearanceRate.PerSecond(), cfg.Limits.ClearanceBurst)
	if err != nil {
		return nil, fmt.Errorf("rules: %w", err)
	}
	return rs, nil
}

// bypassPaths adds rampart's own endpoints to the operator's bypass list:
// the challenge's verify and check endpoints must be reachable without a
// clearance.
func bypassPaths(cfg *config.Config) []config.Pattern {
	own, _ := config.ParsePattern(challenge.PathPrefix + "*")
	return append([]config.Pattern{own}, cfg.Challenge.BypassPaths...)
}

func netxOptions(cfg *config.Config, l config.Listener, s *Shield) netx.Options {
	h := cfg.Hardening
	o := netx.Options{
		ReadHeaderTimeout:      h.ReadHeaderTimeout.D(),
		IdleTimeout:            h.IdleTimeout.D(),
		WriteTimeout:           h.WriteTimeout.D(),
		TLSHandshakeTimeout:    h.TLSHandshakeTimeout.D(),
		ProxyHeaderTimeout:     h.ProxyHeaderTimeout.D(),
		MinBodyRate:            int64(h.MinBodyRate),
		BodyRateGrace:          h.BodyRateGrace.D(),
		MaxBodyBytes:           int64(h.MaxBodyBytes),
		MaxHeaderBytes:         int(h.MaxHeaderBytes),
		MaxHeaderCount:         h.MaxHeaderCount,
		MaxRanges:              h.MaxRanges,
		MaxConns:               h.MaxConns,
		MaxConnsPerIP:          h.MaxConnsPerIP,
		H2MaxConcurrentStreams: h.H2.MaxConcurrentStreams,
		H2MaxHeaderListSize:    uint32(h.H2.MaxHeaderListSize),
		H2GlitchBudget:         h.H2.GlitchBudget,
		H2ResetBudget:          h.H2.ResetBudget,
		Denied:                 s.deniedAtAccept,
		ProxyProtocol:          l.ProxyProtocol,
		OnEvent:                s.onEdgeEvent,
		Logger:                 s.log,
		Now:                    s.now,
	}
	if h.H2.BudgetRefill > 0 {
		o.H2BudgetRefill = time.Duration(float64(time.Second) / h.H2.BudgetRefill)
	} else {
		o.H2BudgetRefill = -1
	}
	if l.ProxyProtocol {
		o.ProxyTrusted = s.rt.Load().resolver.Trusted
	}
	if l.TLS {
		o.TLS = &netx.TLSOptions{CertFile: cfg.TLS.CertFile, KeyFile: cfg.TLS.KeyFile, ACMEDomains: cfg.TLS.ACMEDomains, ACMEEmail: cfg.TLS.ACMEEmail}
		if len(cfg.TLS.ACMEDomains) > 0 {
			o.TLS.ACMECacheDir = filepath.Join(s.stateDir, "acme")
			o.TLS.ACMEDirectoryURL = cfg.TLS.ACMEDirectory
			o.TLS.ACMECAFile = cfg.TLS.ACMECAFile
		}
		o.TLS.MinVersion = tls.VersionTLS12
		if cfg.TLS.MinVersion == "1.3" {
			o.TLS.MinVersion = tls.VersionTLS13
		}
	}
	return o
}

func challengeOptions(cfg *config.Config, s *Shield) challenge.Options {
	c := cfg.Challenge
	return challenge.Options{
		StateDir:     s.stateDir,
		KeyRotation:  c.KeyRotation.D(),
		Difficulty:   [challenge.NumModes]int{c.Difficulty.Normal, c.Difficulty.Elevated, c.Difficulty.UnderAttack},
		ClearanceTTL: [challenge.NumModes]time.Duration{c.ClearanceTTL.Normal.D(), c.ClearanceTTL.Elevated.D(), c.ClearanceTTL.UnderAttack.D()},
		PrefixV4Bits: cfg.Client.PrefixV4,
		PrefixV6Bits: cfg.Client.PrefixV6,
		NoJS:         c.NoJS,
		AllowNoJS:    s.allowNoJS,
		AllowCheck:   s.allowCheck,
		TemplateDir:  c.TemplateDir,
		Now:          s.now,
		Logger:       s.log,
	}
}

func cacheOptions(cfg *config.Config, s *Shield) cache.Options {
	c := cfg.Cache
	micro, _ := verdict.ParseMode(c.MicroCacheMode)
	norm, _ := verdict.ParseMode(c.NormaliseMode)
	return cache.Options{
		MaxBytes:       int64(c.MaxSize),
		MaxEntryBytes:  int64(c.MaxEntrySize),
		MicroTTL:       c.MicroTTL.D(),
		MicroCacheIn:   micro,
		StaleIfError:   c.StaleIfError.D(),
		CoalesceWait:   c.CoalesceWait.D(),
		SessionCookies: c.SessionCookies,
		KnownParams:    c.KnownParams,
		IgnoreParams:   nonNil(c.IgnoreParams),
		LearnParams:    c.LearnParams,
		LearnAfter:     learnAfter(c.LearnAfter.D()),
		LearnCapacity:  c.LearnCapacity,
		InflightBytes:  int64(c.InflightSize),
		NormaliseIn:    norm,
		ExplicitModes:  true,
		Mode:           s.Mode,
		AdmitMiss:      s.admitMiss,
		RefuseMiss:     s.refuseMiss,
		Now:            s.now,
		Logger:         s.log,
	}
}

func admissionOptions(cfg *config.Config, s *Shield) (admission.Options, error) {
	a := cfg.Admission
	o := admission.Options{
		InitialLimit: a.InitialLimit,
		MinLimit:     a.MinLimit,
		MaxLimit:     a.MaxLimit,
		QueueSize:    a.QueueSize,
		MaxWait:      [verdict.NumClasses]time.Duration{a.MaxWait.Priority.D(), a.MaxWait.Normal.D(), a.MaxWait.Suspicious.D()},
		Logger:       s.log,
	}
	if a.OverloadPage != "" {
		b, err := os.ReadFile(a.OverloadPage)
		if err != nil {
			return o, fmt.Errorf("admission.overload_page: %w", err)
		}
		o.OverloadPage = b
	}
	return o, nil
}

func upstreamOptions(cfg *config.Config, s *Shield) upstream.Options {
	u := cfg.Upstream
	o := upstream.Options{
		Balance: u.Balance,
		HealthCheck: upstream.HealthCheckOptions{
			Disabled:           u.HealthCheck.Disabled,
			Path:               u.HealthCheck.Path,
			Interval:           u.HealthCheck.Interval.D(),
			Timeout:            u.HealthCheck.Timeout.D(),
			HealthyThreshold:   u.HealthCheck.HealthyThreshold,
			UnhealthyThreshold: u.HealthCheck.UnhealthyThreshold,
		},
		Passive: upstream.PassiveOptions{
			MaxFails:    u.Passive.MaxFails,
			Window:      u.Passive.Window.D(),
			EjectFor:    u.Passive.EjectFor.D(),
			MaxEjectFor: u.Passive.MaxEjectFor.D(),
		},
		DialTimeout:           u.DialTimeout.D(),
		ResponseHeaderTimeout: u.ResponseHeaderTimeout.D(),
		IdleConnTimeout:       u.IdleConnTimeout.D(),
		MaxIdleConnsPerHost:   u.MaxIdleConnsPerTarget,
		Via:                   "rampart",
		Client:                s.clientInfo,
		ClassifyError:         classifyError,
		OnResponse:            s.onUpstream,
		Now:                   s.now,
		Logger:                s.log,
	}
	for _, t := range u.Targets {
		pu, _ := url.Parse(t)
		o.Targets = append(o.Targets, upstream.Target{URL: pu, Weight: 1})
	}
	return o
}

// newBypass builds the good-bot recogniser, or returns nil when the
// configuration names no good bots and does not verify crawlers. s may be nil
// (check-config).
func newBypass(cfg *config.Config, s *Shield) (*challenge.Bypass, error) {
	c := cfg.Challenge
	if len(c.GoodBots) == 0 && len(c.GoodBotFiles) == 0 && !c.VerifyCrawlers {
		return nil, nil
	}
	o := challenge.BypassOptions{
		Paths:             []string{}, // paths are the policy's bypass_paths
		CIDRs:             cidrs(c.GoodBots),
		CrawlerRangeFiles: c.GoodBotFiles,
	}
	if !c.VerifyCrawlers {
		o.Crawlers = []challenge.Crawler{}
	}
	if s != nil {
		o.Now, o.Logger = s.now, s.log
	}
	b, err := challenge.NewBypass(o)
	if err != nil {
		return nil, fmt.Errorf("challenge good bots: %w", err)
	}
	return b, nil
}

// nonNil keeps an empty list empty: a nil list would take the cache's own
// default.
func nonNil(ss []string) []string {
	if ss == nil {
		return []string{}
	}
	return ss
}

// learnAfter maps the configuration's 0 (learn at once) to the cache's
// negative.
func learnAfter(d time.Duration) time.Duration {
	if d == 0 {
		return -1
	}
	return d
}

// MemoryLimit is the soft memory limit rampart sets for itself (unless
// GOMEMLIMIT is set): the cache's budget with room for the garbage
// collector, plus the other tables (rate limits, blocks, replay filter).
func MemoryLimit(cfg *config.Config) int64 {
	limit := int64(384 << 20)
	if !cfg.Cache.Disabled {
		limit += int64(cfg.Cache.MaxSize) * 3 / 2
	}
	return limit
}
