package sim

import (
	"fmt"
	"math"
	"strings"
	"time"
)

// Kind is one attack technique.
type Kind string

// The attack techniques.
const (
	// KindGetFlood requests one page over and over on kept-alive
	// connections.
	KindGetFlood Kind = "get-flood"
	// KindCacheBust requests the front page and articles with random query
	// strings, so that a cache keyed on the full URL never hits.
	KindCacheBust Kind = "cache-bust"
	// KindSearchFlood requests /search with random terms: the origin's most
	// expensive endpoint.
	KindSearchFlood Kind = "search-flood"
	// KindPostFlood posts 1 KiB comments to /api/comments.
	KindPostFlood Kind = "post-flood"
	// KindSlowloris opens connections and sends a request head one header
	// line per Interval, never finishing it.
	KindSlowloris Kind = "slowloris"
	// KindSlowPost sends a complete POST head announcing a large body, then
	// trickles the body, TrickleBytes per Interval.
	KindSlowPost Kind = "slow-post"
	// KindSlowRead pipelines requests for articles with a tiny receive
	// window and reads TrickleBytes of the answers per Interval.
	KindSlowRead Kind = "slow-read"
	// KindH2RapidReset opens HTTP/2 connections (h2c prior knowledge, or
	// TLS with ALPN h2) and sends HEADERS immediately followed by
	// RST_STREAM, Rate streams per second per connection (CVE-2023-44487).
	KindH2RapidReset Kind = "h2-rapid-reset"
	// KindBrowserBotnet is bots that run a real browser: they keep cookies
	// and solve challenges (paying CPU), then request pages at Rate.
	KindBrowserBotnet Kind = "browser-botnet"

	// KindDDoSia replays NoName057(16)'s DDoSia: templates of the target
	// site's most expensive URLs with per-request random placeholders,
	// chosen at random per request (weights 40/25/20/15): GET
	// /search?q=<6-12 alnum>; GET /?page=<1-2 digits> (the demo site's
	// news listing is its front page); a form POST to /api/comments with
	// random name, email, phone and message and one replayed
	// __RequestVerificationToken; a JSON POST to /login of
	// {"login":"<alnum>@gmail.com","password":"<alnum>"}. The client is Go's
	// net/http with its defaults: User-Agent Go-http-client/1.1 (2.0 over
	// HTTP/2), or none at all from one source in ten; no Accept, no
	// cookies, Accept-Encoding: gzip; answers read, redirects not
	// followed.
	KindDDoSia Kind = "ddosia"
	// KindRandom404 requests paths that do not exist: /<word> or
	// /<word>/<word> from a dictionary, one in ten /<word>/<32-128 hex>,
	// with a desktop browser's User-Agent and Accept: */*.
	KindRandom404 Kind = "random-404"
	// KindHeaderRandom requests the front page and articles with every
	// header drawn per request: User-Agent from a pool (15% fake
	// Googlebot/Bingbot), Referer, Accept-Language, forged
	// X-Forwarded-For, X-Real-IP and Client-IP; 20% a random subdomain of
	// the target in Host (the connection still goes to the target), 10% a
	// PHPSESSID cookie, 20% Cache-Control and Pragma: no-cache.
	KindHeaderRandom Kind = "header-random"
	// KindLoginFlood posts random JSON credentials to /login with a
	// browser's User-Agent (one source in twenty malformed by a stray
	// quote), Content-Type: application/json and the target as Origin
	// and Referer, as residential-proxy botnets flood login APIs.
	KindLoginFlood Kind = "login-flood"
	// KindPingback is WordPress pingback reflection: each source is a
	// blog verifying a pingback, on a new connection per request, GET
	// /?<7 digits>=<6 digits> or /news/<n>?<alnum>=<alnum> with User-Agent
	// "WordPress/6.5; https://<blog>.example; verifying pingback from
	// 127.9.9.9" and X-Pingback-Forwarded-For, as WordPress sends them.
	KindPingback Kind = "pingback"
	// KindHeadFlood sends HEAD for the front page and articles with a
	// random query parameter.
	KindHeadFlood Kind = "head-flood"
	// KindCarpet is a carpet (low-and-slow) flood: each source sends pages
	// (70%: the front page and the top 20 articles) and searches for word
	// pairs (30%) with a current browser's full header set, at a rate
	// drawn per source between Rate/2 and 3·Rate/2. Each source takes its
	// browser from a pool that changes with every wave (see Attack.On), as
	// campaigns rotate user agents between waves.
	KindCarpet Kind = "carpet"
)

// Attack is one component of a preset. Fields that do not apply to its
// Kind are zero.
type Attack struct {
	// Kind is the technique.
	Kind Kind `json:"kind"`
	// Sources is the number of attacking addresses (scaled by Scale).
	Sources int `json:"sources"`
	// Rate is requests per second per source for the floods and the
	// botnet (carpet: on average, each source's own rate is drawn between
	// Rate/2 and 3·Rate/2), and streams per second per connection for
	// h2-rapid-reset.
	Rate float64 `json:"rate,omitempty"`
	// Conns is connections per source for the slow attacks and
	// h2-rapid-reset.
	Conns int `json:"conns,omitempty"`
	// Interval is the time between trickles of the slow attacks.
	Interval time.Duration `json:"interval,omitempty"`
	// TrickleBytes is what a slow attack sends (slow-post) or reads
	// (slow-read) per Interval.
	TrickleBytes int `json:"trickle_bytes,omitempty"`
	// Path is the target path (floods on one resource).
	Path string `json:"path,omitempty"`

	// Start, Ramp, On and Off shape the component in time; zero values
	// keep it running at full rate for the whole run. Nothing is sent
	// before Start (an offset from the start of the run). From Start the
	// component runs for On, pauses for Off, and so on, in waves (when On
	// and Off are both set). Its rate rises linearly from 0 to Rate over
	// the first Ramp after Start (slow attacks: the number of connections
	// held rises so). The four are given for the preset's Duration and
	// stretch in proportion when a run is longer or shorter, so a preset
	// keeps its shape: multi-vector shifts technique every third of the
	// run whatever its length. A slow attack closes its connections at the
	// end of each wave (they count as "held").
	Start time.Duration `json:"start,omitempty"`
	Ramp  time.Duration `json:"ramp,omitempty"`
	On    time.Duration `json:"on,omitempty"`
	Off   time.Duration `json:"off,omitempty"`
}

// TotalRate is the attack's request (or stream) rate summed over its
// sources; 0 for the slow attacks.
func (a Attack) TotalRate() float64 {
	if a.Kind == KindH2RapidReset {
		return a.Rate * float64(a.Sources*a.Conns)
	}
	return a.Rate * float64(a.Sources)
}

// Preset is a named attack scenario.
type Preset struct {
	// Name is what --preset takes.
	Name string `json:"name"`
	// Description says what the preset rehearses.
	Description string `json:"description"`
	// Duration is the default run length.
	Duration time.Duration `json:"duration"`
	// Attacks are the components run at once (none for "none").
	Attacks []Attack `json:"attacks"`
}

// stretched returns p with every component's Start, Ramp, On and Off
// multiplied by d/p.Duration, and d as its Duration.
func (p Preset) stretched(d time.Duration) Preset {
	out := p
	out.Duration = d
	if p.Duration <= 0 || d == p.Duration {
		return out
	}
	f := float64(d) / float64(p.Duration)
	scale := func(t time.Duration) time.Duration { return time.Duration(math.Round(float64(t) * f)) }
	out.Attacks = make([]Attack, len(p.Attacks))
	for i, a := range p.Attacks {
		a.Start, a.Ramp, a.On, a.Off = scale(a.Start), scale(a.Ramp), scale(a.On), scale(a.Off)
		out.Attacks[i] = a
	}
	return out
}

// peakRate is the highest summed rate of the rate-driven components at any
// moment of the preset's Duration (sampled every thousandth of it).
func (p Preset) peakRate() float64 {
	var peak float64
	for i := range 1000 {
		at := p.Duration * time.Duration(i) / 1000
		var r float64
		for _, a := range p.Attacks {
			l, _ := a.schedule().level(at)
			r += l * a.TotalRate()
		}
		peak = max(peak, r)
	}
	return peak
}

// Sources is the number of attacking addresses over all components.
func (p Preset) Sources() int {
	n := 0
	for _, a := range p.Attacks {
		n += a.Sources
	}
	return n
}

// TotalRate is the summed rate of the rate-driven components (at full
// rate, as if all ran at once: components in waves or taking turns never
// do).
func (p Preset) TotalRate() float64 {
	var r float64
	for _, a := range p.Attacks {
		r += a.TotalRate()
	}
	return r
}

// Scaled returns p with every component's Sources multiplied by scale,
// rounded, and at least 1. Rates per source, connections per source and
// intervals stay as they are, so scale multiplies the total load.
func (p Preset) Scaled(scale float64) Preset {
	out := p
	out.Attacks = make([]Attack, len(p.Attacks))
	for i, a := range p.Attacks {
		a.Sources = max(1, int(math.Round(float64(a.Sources)*scale)))
		out.Attacks[i] = a
	}
	return out
}

// The defaults are sized for a 2-core machine shared by the simulator, the
// shield and the origin: a few thousand requests per second in all, which
// is several times the demo origin's capacity (16 workers: about 1,600
// pages or 320 searches per second).
var presets = []Preset{
	{Name: "none", Description: "legitimate visitors only: the baseline", Duration: 30 * time.Second},
	{Name: "get-flood", Description: "a few hundred addresses request one article as fast as they are let",
		Duration: 30 * time.Second, Attacks: []Attack{{Kind: KindGetFlood, Sources: 300, Rate: 10, Path: "/news/1"}}},
	{Name: "cache-bust", Description: "thousands of addresses at a low rate each, random query strings on pages",
		Duration: 30 * time.Second, Attacks: []Attack{{Kind: KindCacheBust, Sources: 3000, Rate: 0.5}}},
	{Name: "search-flood", Description: "the expensive endpoint: /search with random terms",
		Duration: 30 * time.Second, Attacks: []Attack{{Kind: KindSearchFlood, Sources: 200, Rate: 5, Path: "/search"}}},
	{Name: "post-flood", Description: "1 KiB comment posts to /api/comments",
		Duration: 30 * time.Second, Attacks: []Attack{{Kind: KindPostFlood, Sources: 200, Rate: 5, Path: "/api/comments"}}},
	{Name: "slowloris", Description: "connections that send a header line every few seconds and never finish",
		Duration: 30 * time.Second, Attacks: []Attack{{Kind: KindSlowloris, Sources: 300, Conns: 2, Interval: 5 * time.Second, Path: "/"}}},
	{Name: "slow-post", Description: "POST heads announcing 1 MB bodies, trickled a few bytes a second",
		Duration: 30 * time.Second, Attacks: []Attack{{Kind: KindSlowPost, Sources: 200, Conns: 1, Interval: time.Second, TrickleBytes: 8, Path: "/api/comments"}}},
	{Name: "slow-read", Description: "pipelined article requests read a few bytes a second through a tiny window",
		Duration: 30 * time.Second, Attacks: []Attack{{Kind: KindSlowRead, Sources: 100, Conns: 2, Interval: time.Second, TrickleBytes: 16, Path: "/news/1"}}},
	{Name: "h2-rapid-reset", Description: "HTTP/2 HEADERS then RST_STREAM at once, over and over (CVE-2023-44487)",
		Duration: 30 * time.Second, Attacks: []Attack{{Kind: KindH2RapidReset, Sources: 10, Conns: 1, Rate: 200, Path: "/news/1"}}},
	{Name: "browser-botnet", Description: "bots in real browsers: they solve challenges (paying CPU) and then request pages",
		Duration: 30 * time.Second, Attacks: []Attack{{Kind: KindBrowserBotnet, Sources: 50, Rate: 2}}},
	{Name: "mixed", Description: "several techniques at once from separate address sets",
		Duration: 30 * time.Second, Attacks: []Attack{
			{Kind: KindGetFlood, Sources: 100, Rate: 10, Path: "/news/1"},
			{Kind: KindCacheBust, Sources: 1000, Rate: 0.5},
			{Kind: KindSearchFlood, Sources: 60, Rate: 5, Path: "/search"},
			{Kind: KindPostFlood, Sources: 40, Rate: 5, Path: "/api/comments"},
			{Kind: KindSlowloris, Sources: 100, Conns: 2, Interval: 5 * time.Second, Path: "/"},
		}},
	// The techniques of real campaigns against government and news sites.
	{Name: "ddosia", Description: "NoName057(16)'s DDoSia: random placeholders in the site's expensive URLs (search, listing pages, comment form, JSON login) from Go's default HTTP client, no cookies",
		Duration: 30 * time.Second, Attacks: []Attack{{Kind: KindDDoSia, Sources: 500, Rate: 3}}},
	{Name: "random-404", Description: "dictionary words and hex junk as paths, every request a 404, from desktop browsers",
		Duration: 30 * time.Second, Attacks: []Attack{{Kind: KindRandom404, Sources: 2000, Rate: 0.5}}},
	{Name: "header-random", Description: "pages with every header random: user agents (15% fake crawlers), referers, forged X-Forwarded-For, random subdomains in Host, session cookies, no-cache",
		Duration: 30 * time.Second, Attacks: []Attack{{Kind: KindHeaderRandom, Sources: 500, Rate: 4}}},
	{Name: "login-flood", Description: "random JSON credentials posted to /login from browser user agents, over a thousand addresses at about one a second each",
		Duration: 30 * time.Second, Attacks: []Attack{{Kind: KindLoginFlood, Sources: 1500, Rate: 1.2}}},
	{Name: "pingback", Description: "WordPress pingback reflection: thousands of blogs verify a pingback, random query strings, a new connection each time",
		Duration: 30 * time.Second, Attacks: []Attack{{Kind: KindPingback, Sources: 3000, Rate: 0.5}}},
	{Name: "head-flood", Description: "HEAD for pages with a random query parameter",
		Duration: 30 * time.Second, Attacks: []Attack{{Kind: KindHeadFlood, Sources: 300, Rate: 8}}},
	{Name: "carpet", Description: "carpet flood under per-address limits: thousands of addresses at 0.1-0.3 req/s each, pages and searches with full browser headers, in waves after a soft start, user agents changing between waves",
		Duration: 30 * time.Second, Attacks: []Attack{
			{Kind: KindCarpet, Sources: 5000, Rate: 0.2, Ramp: 4 * time.Second, On: 8 * time.Second, Off: 4 * time.Second},
		}},
	{Name: "multi-vector", Description: "a campaign that shifts technique every third of the run, as when mitigations engage: ddosia, then carpet with cache-bust, then slowloris with header-random",
		Duration: 30 * time.Second, Attacks: []Attack{
			{Kind: KindDDoSia, Sources: 300, Rate: 3, On: 10 * time.Second, Off: 20 * time.Second},
			{Kind: KindCarpet, Sources: 2500, Rate: 0.2, Start: 10 * time.Second, On: 10 * time.Second, Off: 20 * time.Second},
			{Kind: KindCacheBust, Sources: 1000, Rate: 0.5, Start: 10 * time.Second, On: 10 * time.Second, Off: 20 * time.Second},
			{Kind: KindSlowloris, Sources: 150, Conns: 2, Interval: 5 * time.Second, Path: "/", Start: 20 * time.Second, On: 10 * time.Second, Off: 20 * time.Second},
			{Kind: KindHeaderRandom, Sources: 300, Rate: 3, Start: 20 * time.Second, On: 10 * time.Second, Off: 20 * time.Second},
		}},
}

// Presets returns the built-in presets at scale 1, in listing order.
func Presets() []Preset {
	out := make([]Preset, len(presets))
	for i, p := range presets {
		out[i] = p.Scaled(1)
	}
	return out
}

// LookupPreset returns the preset called name, scaled by scale (which must
// be in (0, 100]).
func LookupPreset(name string, scale float64) (Preset, error) {
	if !(scale > 0 && scale <= 100) {
		return Preset{}, fmt.Errorf("scale %v out of range (0, 100]", scale)
	}
	for _, p := range presets {
		if p.Name == name {
			return p.Scaled(scale), nil
		}
	}
	names := make([]string, len(presets))
	for i, p := range presets {
		names[i] = p.Name
	}
	return Preset{}, fmt.Errorf("unknown preset %q (want one of %s)", name, strings.Join(names, ", "))
}

// FormatPresets writes the presets, scaled by scale, as the table that
// --list-presets prints.
func FormatPresets(scale float64) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Presets at scale %g (--scale multiplies the number of attacking addresses;\n"+
		"start times, ramps and waves stretch with --duration):\n\n", scale)
	for _, p0 := range presets {
		p := p0.Scaled(scale)
		fmt.Fprintf(&b, "%-15s %s (default duration %v)\n", p.Name, p.Description, p.Duration)
		for _, a := range p.Attacks {
			fmt.Fprintf(&b, "    %-15s %s\n", a.Kind, a.describe())
		}
		if len(p.Attacks) > 1 {
			fmt.Fprintf(&b, "    %-15s %d addresses, %.0f req/s", "total", p.Sources(), p.TotalRate())
			if peak := p.peakRate(); peak < p.TotalRate() {
				fmt.Fprintf(&b, " (at most %.0f at once)", peak)
			}
			b.WriteString("\n")
		}
	}
	return b.String()
}

func (a Attack) describe() string {
	if t := a.timing(); t != "" {
		return a.shape() + ", " + t
	}
	return a.shape()
}

// timing describes Start, Ramp, On and Off ("" when all are zero).
func (a Attack) timing() string {
	var parts []string
	if a.Start > 0 {
		parts = append(parts, fmt.Sprintf("from %v", a.Start))
	}
	if a.Ramp > 0 {
		parts = append(parts, fmt.Sprintf("ramp %v", a.Ramp))
	}
	if a.On > 0 && a.Off > 0 {
		parts = append(parts, fmt.Sprintf("waves %v on / %v off", a.On, a.Off))
	}
	return strings.Join(parts, ", ")
}

func (a Attack) shape() string {
	switch a.Kind {
	case KindSlowloris:
		return fmt.Sprintf("%d addresses x %d conns = %d connections, a header line every %v, path %s", a.Sources, a.Conns, a.Sources*a.Conns, a.Interval, a.Path)
	case KindSlowPost:
		return fmt.Sprintf("%d addresses x %d conns = %d connections, %d body bytes every %v, path %s", a.Sources, a.Conns, a.Sources*a.Conns, a.TrickleBytes, a.Interval, a.Path)
	case KindSlowRead:
		return fmt.Sprintf("%d addresses x %d conns = %d connections, reading %d bytes every %v, path %s", a.Sources, a.Conns, a.Sources*a.Conns, a.TrickleBytes, a.Interval, a.Path)
	case KindH2RapidReset:
		return fmt.Sprintf("%d addresses x %d conns x %g streams/s = %.0f streams/s, path %s", a.Sources, a.Conns, a.Rate, a.TotalRate(), a.Path)
	}
	s := fmt.Sprintf("%d addresses x %g req/s = %.0f req/s", a.Sources, a.Rate, a.TotalRate())
	if a.Kind == KindCarpet {
		s = fmt.Sprintf("%d addresses x %.3g-%.3g req/s (%g on average) = %.0f req/s", a.Sources, a.Rate/2, 3*a.Rate/2, a.Rate, a.TotalRate())
	}
	if a.Path != "" {
		s += ", path " + a.Path
	}
	return s
}
