package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestDefaultsValid(t *testing.T) {
	c := Default()
	c.Upstream.Targets = []string{"http://127.0.0.1:8000"}
	if err := c.Validate(); err != nil {
		t.Fatalf("defaults do not validate: %v", err)
	}
	for i, r := range BuiltinRules() {
		k := &checker{}
		r.validate(k, "builtin", map[string]bool{})
		if len(k.errs) > 0 {
			t.Errorf("builtin rule %d: %v", i, k.errs)
		}
	}
}

func TestEmptyFileIsDefaults(t *testing.T) {
	for _, data := range []string{"", "# only a comment\n", "---\n"} {
		c, err := Parse([]byte(data), "empty.yaml")
		if err != nil {
			t.Fatalf("%q: %v", data, err)
		}
		if c.Hardening.ReadHeaderTimeout.D() != 10*time.Second || !c.DefaultRules {
			t.Errorf("%q: defaults not applied: %+v", data, c.Hardening)
		}
	}
}

func TestParseOverridesDefaults(t *testing.T) {
	c, err := Parse([]byte(`
upstream:
  targets: [http://127.0.0.1:9000]
hardening:
  read_header_timeout: 3s
  max_header_bytes: 8KiB
  h2: {reset_budget: 50}
rules:
  - name: search
    match: {paths: ["/search*"], methods: [GET]}
    limit: {rate: 600/m, burst: 20, by: [ip, "header:X-Api-Key"]}
    action: tarpit
`), "x.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if c.Hardening.ReadHeaderTimeout.D() != 3*time.Second || c.Hardening.MaxHeaderBytes != 8192 || c.Hardening.H2.ResetBudget != 50 {
		t.Errorf("overrides not applied: %+v", c.Hardening)
	}
	if c.Hardening.IdleTimeout.D() != 60*time.Second || c.Hardening.H2.MaxConcurrentStreams != 100 {
		t.Errorf("untouched defaults lost: %+v", c.Hardening)
	}
	if len(c.Rules) != 1 || c.Rules[0].Limit.Rate.PerSecond() != 10 || !c.Rules[0].Match.Paths[0].Match("/search/x") {
		t.Errorf("rule decoded wrong: %+v", c.Rules)
	}
	if err := c.Validate(); err != nil {
		t.Errorf("complete config invalid: %v", err)
	}
}

// TestErrorsNamePosition checks that every kind of mistake is reported with
// the file, line and column of the offending key or value.
func TestErrorsNamePosition(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want []string
	}{
		{"unknown key with suggestion", "hardening:\n  read_header_timout: 5s\n",
			[]string{`x.yaml:2:3: hardening.read_header_timout: unknown key "read_header_timout" (did you mean "read_header_timeout"?)`}},
		{"bad duration", "hardening:\n  idle_timeout: forever\n",
			[]string{`x.yaml:2:17: hardening.idle_timeout: bad duration "forever"`}},
		{"negative duration", "hardening:\n  idle_timeout: -5s\n",
			[]string{`x.yaml:2:17: hardening.idle_timeout: bad duration "-5s": must not be negative`}},
		{"out of range", "hardening:\n  max_conns_per_ip: 0\n",
			[]string{`x.yaml:2:21: hardening.max_conns_per_ip: must be between 1 and`}},
		{"bad cidr", "lists:\n  deny:\n    - 10.0.0.0/8\n    - 10.300.0.0/16\n",
			[]string{`x.yaml:4:7: lists.deny[1]: bad CIDR "10.300.0.0/16"`}},
		{"bad size", "hardening:\n  max_header_bytes: 16 parsecs\n",
			[]string{`x.yaml:2:21: hardening.max_header_bytes: bad size "16 parsecs"`}},
		{"wrong type", "listeners: :8080\n",
			[]string{`x.yaml:1:12: listeners: expected a list`}},
		{"duplicate key", "mode: normal\nmode: elevated\n",
			[]string{`x.yaml:2:1: mode: duplicate key "mode"`}},
		{"bad mode", "mode: panic\n",
			[]string{`x.yaml:1:7: mode: must be one of auto, normal, elevated, under_attack, got "panic"`}},
		{"syntax error", "hardening:\n  a: [1, 2\n",
			[]string{`x.yaml:`, `YAML syntax`}},
		{"rule errors", "rules:\n  - name: r1\n    action: smite\n  - name: r1\n    action: limit\n    limit: {rate: fast}\n",
			[]string{
				`x.yaml:3:13: rules[0].action: unknown action "smite"`,
				`x.yaml:4:11: rules[1].name: rule name "r1" is used twice`,
				`x.yaml:6:19: rules[1].limit.rate: bad rate "fast"`,
			}},
		{"block needs ttl", "rules:\n  - name: b\n    action: block\n",
			[]string{`x.yaml:2:5: rules[0].block_ttl: action block needs a block_ttl`}},
		{"responses need statuses", "rules:\n  - name: r\n    action: limit\n    limit: {rate: 1/s, count: responses}\n",
			[]string{`rules[0].limit.statuses: count: responses needs statuses`}},
		{"bad key part", "rules:\n  - name: r\n    action: limit\n    limit: {rate: 1/s, by: [ip, colour]}\n",
			[]string{`x.yaml:4:33: rules[0].limit.by[1]: unknown key part "colour"`}},
		{"bad regexp", "rules:\n  - name: r\n    action: drop\n    match: {paths: ['/^(unclosed/']}\n",
			[]string{`x.yaml:4:21: rules[0].match.paths[0]: bad regular expression`}},
		{"bad upstream", "upstream:\n  targets: [ftp://origin]\n",
			[]string{`x.yaml:2:13: upstream.targets[0]: bad URL "ftp://origin": the scheme must be http, https, h2c`}},
		{"tls listener without certs", "listeners:\n  - address: \":443\"\n    tls: true\n",
			[]string{`x.yaml:3:10: listeners[0].tls: a TLS listener needs`}},
		{"two documents", "mode: normal\n---\nmode: elevated\n",
			[]string{`x.yaml:2:1: a config file holds one YAML document`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Parse([]byte(tc.yaml), "x.yaml")
			if err == nil {
				t.Fatalf("no error; config %+v", c)
			}
			if c != nil {
				t.Errorf("a config came back with an error")
			}
			var list ErrorList
			if !errors.As(err, &list) {
				t.Fatalf("error is %T, want ErrorList", err)
			}
			msg := err.Error()
			for _, w := range tc.want {
				if !strings.Contains(msg, w) {
					t.Errorf("error\n%s\nlacks\n%s", msg, w)
				}
			}
			if len(list) != len(tc.want) && tc.name != "syntax error" {
				t.Errorf("got %d errors, want %d:\n%s", len(list), len(tc.want), msg)
			}
		})
	}
}

func TestMapsReplaceDefaults(t *testing.T) {
	c, err := Parse([]byte("cache:\n  known_params:\n    \"/find*\": [term]\n"), "x.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Cache.KnownParams) != 1 || c.Cache.KnownParams["/find*"][0] != "term" {
		t.Fatalf("known_params merged with the defaults instead of replacing them: %v", c.Cache.KnownParams)
	}
	if d := Default(); len(d.Cache.KnownParams["/search*"]) == 0 {
		t.Fatal("the default known_params lost the search parameters")
	}
}

func TestValidateNeedsUpstream(t *testing.T) {
	c, err := Parse([]byte("mode: normal\n"), "x.yaml")
	if err != nil {
		t.Fatal(err)
	}
	err = c.Validate()
	if err == nil || !strings.Contains(err.Error(), "upstream.targets: at least one upstream target") {
		t.Fatalf("Validate = %v", err)
	}
	c.Upstream.Targets = []string{"http://127.0.0.1:1"}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestValuesParse(t *testing.T) {
	var d Duration
	if err := d.decodeScalar("1h30m"); err != nil || d.D() != 90*time.Minute {
		t.Errorf("duration: %v %v", d, err)
	}
	var b ByteSize
	for in, want := range map[string]ByteSize{"16KiB": 16384, "16KB": 16384, "2MiB": 2 << 20, "512": 512, "1_000": 1000, "1GiB": 1 << 30} {
		if err := b.decodeScalar(in); err != nil || b != want {
			t.Errorf("size %q = %v, %v; want %v", in, b, err, want)
		}
	}
	var r Rate
	for in, want := range map[string]float64{"10/s": 10, "600/m": 10, "3600/h": 1, "2/10s": 0.2, "0.5/s": 0.5} {
		if err := r.decodeScalar(in); err != nil || r.PerSecond() != want {
			t.Errorf("rate %q = %v, %v; want %v", in, r, err, want)
		}
	}
	for _, bad := range []string{"10", "/s", "-1/s", "0/s", "1/fortnight"} {
		if err := r.decodeScalar(bad); err == nil {
			t.Errorf("rate %q accepted", bad)
		}
	}
	for in, want := range map[string]string{"1.2.3.4": "1.2.3.4/32", "10.1.2.3/8": "10.0.0.0/8", "::ffff:10.0.0.0/104": "10.0.0.0/8", "2001:db8::1": "2001:db8::1/128"} {
		p, err := ParseCIDR(in)
		if err != nil || p.String() != want {
			t.Errorf("cidr %q = %v, %v; want %v", in, p, err, want)
		}
	}
}

func TestPatternMatch(t *testing.T) {
	tests := []struct {
		pat, s string
		want   bool
	}{
		{"/search*", "/search", true},
		{"/search*", "/search/deep/path", true},
		{"/search*", "/news", false},
		{"*.css", "/static/a/b.css", true},
		{"*.css", "/static/a/b.js", false},
		{"/news/*/print", "/news/42/print", true},
		{"/news/*/print", "/news/4/2/print", false},
		{"/robots.txt", "/robots.txt", true},
		{"/robots.txt", "/robots.txt2", false},
		{`/^\/api\/v[0-9]+\//`, "/api/v2/x", true},
		{`/^\/api\/v[0-9]+\//`, "/api/vx/x", false},
		{"/news/", "/news/", true},
		{"*", "/anything", true},
	}
	for _, tc := range tests {
		p, err := ParsePattern(tc.pat)
		if err != nil {
			t.Fatalf("%q: %v", tc.pat, err)
		}
		if got := p.Match(tc.s); got != tc.want {
			t.Errorf("%q.Match(%q) = %v, want %v", tc.pat, tc.s, got, tc.want)
		}
	}
}

// TestExampleConfig keeps the commented example in examples/ valid.
func TestExampleConfig(t *testing.T) {
	path := filepath.Join("..", "..", "examples", "rampart.yaml")
	c, err := Load(path)
	if err != nil {
		t.Fatalf("the example config does not load: %v", err)
	}
	if err := c.Validate(); err != nil {
		t.Fatalf("the example config is incomplete: %v", err)
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte("mode: normal\n"))
	f.Add([]byte("rules:\n  - name: a\n    action: limit\n    limit: {rate: 1/s, by: [ip]}\n"))
	f.Add([]byte("hardening: {h2: {reset_budget: 7}}\nlists: {deny: [1.2.3.4]}\n"))
	if data, err := os.ReadFile(filepath.Join("..", "..", "examples", "rampart.yaml")); err == nil {
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse(data, "f.yaml")
		if (c == nil) == (err == nil) {
			t.Fatalf("Parse returned config %v and error %v", c != nil, err)
		}
		if err != nil && !strings.HasPrefix(err.Error(), "f.yaml:") {
			t.Fatalf("error does not name the file: %v", err)
		}
	})
}
