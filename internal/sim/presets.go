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
)

// Attack is one component of a preset. Fields that do not apply to its
// Kind are zero.
type Attack struct {
	// Kind is the technique.
	Kind Kind `json:"kind"`
	// Sources is the number of attacking addresses (scaled by Scale).
	Sources int `json:"sources"`
	// Rate is requests per second per source for the floods and the
	// botnet, and streams per second per connection for h2-rapid-reset.
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

// Sources is the number of attacking addresses over all components.
func (p Preset) Sources() int {
	n := 0
	for _, a := range p.Attacks {
		n += a.Sources
	}
	return n
}

// TotalRate is the summed rate of the rate-driven components.
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
	fmt.Fprintf(&b, "Presets at scale %g (--scale multiplies the number of attacking addresses):\n\n", scale)
	for _, p0 := range presets {
		p := p0.Scaled(scale)
		fmt.Fprintf(&b, "%-15s %s (default duration %v)\n", p.Name, p.Description, p.Duration)
		for _, a := range p.Attacks {
			fmt.Fprintf(&b, "    %-15s %s\n", a.Kind, a.describe())
		}
		if len(p.Attacks) > 1 {
			fmt.Fprintf(&b, "    %-15s %d addresses, %.0f req/s\n", "total", p.Sources(), p.TotalRate())
		}
	}
	return b.String()
}

func (a Attack) describe() string {
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
	if a.Path != "" {
		s += ", path " + a.Path
	}
	return s
}
