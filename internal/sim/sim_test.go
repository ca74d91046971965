package sim

import (
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

var targetTests = []struct {
	name, raw string
	want      string // AddrPort, or "" for an error
	loopErr   bool   // the error wraps ErrNotLoopback
}{
	{"ipv4 loopback", "http://127.0.0.1:8080/", "127.0.0.1:8080", false},
	{"other 127 address", "http://127.45.6.7:81/x", "127.45.6.7:81", false},
	{"localhost", "http://localhost:9000", "127.0.0.1:9000", false},
	{"localhost upper case", "http://LOCALHOST/", "127.0.0.1:80", false},
	{"https default port", "https://127.0.0.1/", "127.0.0.1:443", false},
	{"ipv6 loopback", "http://[::1]:8080/", "[::1]:8080", false},
	{"mapped loopback", "http://[::ffff:127.0.0.2]:8080/", "127.0.0.2:8080", false},
	{"public ipv4", "http://93.184.216.34/", "", true},
	{"private ipv4", "http://10.0.0.1:8080/", "", true},
	{"unspecified", "http://0.0.0.0:8080/", "", true},
	{"ipv6 unspecified", "http://[::]:8080/", "", true},
	{"public ipv6", "http://[2001:db8::1]/", "", true},
	{"hostname", "http://example.org/", "", true},
	{"hostname resolving to loopback", "http://localtest.me/", "", true},
	{"localhost suffix", "http://localhost.example.org/", "", true},
	{"decimal ip", "http://2130706433/", "", true},
	{"zoned loopback", "http://[::1%25lo]:80/", "", true},
	{"bad scheme", "ftp://127.0.0.1/", "", false},
	{"no scheme", "127.0.0.1:8080", "", false},
	{"user info", "http://user:pw@127.0.0.1/", "", false},
	{"port zero", "http://127.0.0.1:0/", "", false},
	{"port too big", "http://127.0.0.1:70000/", "", false},
	{"empty", "", "", false},
}

func TestParseTarget(t *testing.T) {
	for _, tt := range targetTests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseTarget(tt.raw)
			if tt.want == "" {
				if err == nil {
					t.Fatalf("ParseTarget(%q) = %v, want an error", tt.raw, got.AddrPort)
				}
				if errors.Is(err, ErrNotLoopback) != tt.loopErr {
					t.Errorf("error %q: wraps ErrNotLoopback = %v, want %v", err, !tt.loopErr, tt.loopErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseTarget(%q): %v", tt.raw, err)
			}
			if got.AddrPort.String() != tt.want {
				t.Errorf("AddrPort = %v, want %s", got.AddrPort, tt.want)
			}
		})
	}
}

func FuzzParseTarget(f *testing.F) {
	for _, tt := range targetTests {
		f.Add(tt.raw)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		got, err := ParseTarget(raw)
		if err != nil {
			return
		}
		if !got.AddrPort.Addr().IsLoopback() {
			t.Fatalf("ParseTarget(%q) accepted %v", raw, got.AddrPort)
		}
		if err := checkDial(got.AddrPort.String(), got.AddrPort); err != nil {
			t.Fatalf("the target's own address is refused: %v", err)
		}
	})
}

func TestCheckDial(t *testing.T) {
	want := netip.MustParseAddrPort("127.0.0.1:8080")
	tests := []struct {
		name, addr string
		wantErr    error
	}{
		{"the target", "127.0.0.1:8080", nil},
		{"localhost is the target", "localhost:8080", nil},
		{"other port", "127.0.0.1:8081", ErrOffTarget},
		{"other loopback", "127.0.0.2:8080", ErrOffTarget},
		{"elsewhere", "192.0.2.1:8080", ErrNotLoopback},
		{"a name", "example.org:8080", ErrNotLoopback},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := checkDial(tt.addr, want)
			if tt.wantErr == nil && err != nil || tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Errorf("checkDial(%s) = %v, want %v", tt.addr, err, tt.wantErr)
			}
		})
	}
}

func TestAssignAddrsScattered(t *testing.T) {
	target := netip.MustParseAddr("127.0.0.1")
	legit, attack, err := AssignAddrs(LayoutScattered, 50, 3000, 1, target)
	if err != nil {
		t.Fatal(err)
	}
	if len(legit) != 50 || len(attack) != 3000 {
		t.Fatalf("got %d legit, %d attack addresses", len(legit), len(attack))
	}
	checkDistinctLoopback(t, legit, attack, target)
	roles := map[netip.Prefix][2]int{}
	slash16 := map[netip.Prefix]bool{}
	for i, set := range [][]netip.Addr{legit, attack} {
		for _, a := range set {
			p := netip.PrefixFrom(a, 24).Masked()
			c := roles[p]
			c[i]++
			roles[p] = c
			slash16[netip.PrefixFrom(a, 16).Masked()] = true
		}
	}
	// 3050 clients at 16 per /24: 191 blocks, spread over many /16s.
	if len(roles) != 191 {
		t.Errorf("%d /24s, want 191", len(roles))
	}
	if len(slash16) < 100 {
		t.Errorf("only %d /16s", len(slash16))
	}
	for p, c := range roles {
		if c[0] > 0 && c[1] == 0 {
			t.Errorf("/24 %v holds only legit visitors: %v", p, c)
		}
	}
	// The same seed gives the same addresses; another seed others.
	legit2, _, _ := AssignAddrs(LayoutScattered, 50, 3000, 1, target)
	if d := cmp.Diff(legit, legit2, cmp.Comparer(func(a, b netip.Addr) bool { return a == b })); d != "" {
		t.Errorf("same seed, other addresses:\n%s", d)
	}
	legit3, _, _ := AssignAddrs(LayoutScattered, 50, 3000, 2, target)
	if legit3[0] == legit[0] && legit3[1] == legit[1] {
		t.Error("another seed gives the same addresses")
	}
}

func TestAssignAddrsClustered(t *testing.T) {
	avoid := netip.MustParseAddr("127.10.0.3") // the target sits in the legit /16
	legit, attack, err := AssignAddrs(LayoutClustered, 300, 700, 1, avoid)
	if err != nil {
		t.Fatal(err)
	}
	checkDistinctLoopback(t, legit, attack, avoid)
	legitNet, attackNet := netip.MustParsePrefix("127.10.0.0/16"), netip.MustParsePrefix("127.66.0.0/16")
	for i, a := range legit {
		if !legitNet.Contains(a) && a != netip.MustParseAddr("127.11.0.3") {
			t.Errorf("legit %d at %v outside %v", i, a, legitNet)
		}
	}
	for i, a := range attack {
		if !attackNet.Contains(a) {
			t.Errorf("attacker %d at %v outside %v", i, a, attackNet)
		}
	}
	if got := legit[299]; got != netip.MustParseAddr("127.10.1.46") {
		t.Errorf("legit 299 at %v, want 127.10.1.46 (254 per /24, hosts 1-254)", got)
	}
}

func TestAssignAddrsLimits(t *testing.T) {
	if _, _, err := AssignAddrs(LayoutScattered, -1, 0, 1, netip.Addr{}); err == nil {
		t.Error("negative count accepted")
	}
	if _, _, err := AssignAddrs(LayoutClustered, 0, maxClientsPerRole+1, 1, netip.Addr{}); err == nil {
		t.Error("too many attackers accepted")
	}
	l, a, err := AssignAddrs(LayoutScattered, 0, 0, 1, netip.Addr{})
	if err != nil || len(l)+len(a) != 0 {
		t.Errorf("empty layout: %v %v %v", l, a, err)
	}
	l, a, err = AssignAddrs(LayoutScattered, 0, maxClientsPerRole, 7, netip.Addr{})
	if err != nil || len(a) != maxClientsPerRole {
		t.Fatalf("largest layout: %d %v", len(a), err)
	}
	checkDistinctLoopback(t, l, a, netip.Addr{})
}

func checkDistinctLoopback(t *testing.T, legit, attack []netip.Addr, avoid netip.Addr) {
	t.Helper()
	seen := map[netip.Addr]bool{}
	servers := netip.MustParsePrefix("127.0.0.0/16")
	for _, a := range append(append([]netip.Addr{}, legit...), attack...) {
		switch {
		case seen[a]:
			t.Fatalf("address %v assigned twice", a)
		case !a.Is4() || !a.IsLoopback():
			t.Fatalf("address %v is not IPv4 loopback", a)
		case servers.Contains(a) || a == avoid:
			t.Fatalf("address %v collides with the servers' range or the target", a)
		}
		seen[a] = true
	}
}

func TestParseLayout(t *testing.T) {
	for in, want := range map[string]Layout{"": LayoutScattered, "scattered": LayoutScattered, "clustered": LayoutClustered} {
		if got, err := ParseLayout(in); err != nil || got != want || (in != "" && got.String() != in) {
			t.Errorf("ParseLayout(%q) = %v, %v", in, got, err)
		}
	}
	if _, err := ParseLayout("random"); err == nil {
		t.Error("unknown layout accepted")
	}
}

func TestPresets(t *testing.T) {
	wantNames := []string{"none", "get-flood", "cache-bust", "search-flood", "post-flood", "slowloris", "slow-post",
		"slow-read", "h2-rapid-reset", "browser-botnet", "mixed",
		"ddosia", "random-404", "header-random", "login-flood", "pingback", "head-flood", "carpet", "multi-vector"}
	var names []string
	for _, p := range Presets() {
		names = append(names, p.Name)
		if p.Duration <= 0 || p.Duration > MaxDuration {
			t.Errorf("%s: duration %v", p.Name, p.Duration)
		}
		// Sized for a 2-core machine: a few thousand requests a second.
		if r := p.TotalRate(); r > 3000 {
			t.Errorf("%s: %v req/s at scale 1", p.Name, r)
		}
		for _, a := range p.Attacks {
			if a.Sources < 1 {
				t.Errorf("%s/%s: %d sources", p.Name, a.Kind, a.Sources)
			}
			switch a.Kind {
			case KindSlowloris, KindSlowPost, KindSlowRead:
				if a.Conns < 1 || a.Interval <= 0 {
					t.Errorf("%s/%s: conns %d interval %v", p.Name, a.Kind, a.Conns, a.Interval)
				}
			default:
				if a.Rate <= 0 {
					t.Errorf("%s/%s: rate %v", p.Name, a.Kind, a.Rate)
				}
			}
			// Waves need both halves; every component starts within the
			// run; a ramp spans a few waves at most.
			if (a.On > 0) != (a.Off > 0) || a.Start < 0 || a.Start >= p.Duration || a.Ramp < 0 || a.Ramp > p.Duration {
				t.Errorf("%s/%s: start %v, ramp %v, on %v, off %v", p.Name, a.Kind, a.Start, a.Ramp, a.On, a.Off)
			}
			if a.On > 0 && a.Ramp > 10*(a.On+a.Off) {
				t.Errorf("%s/%s: ramp %v over more than 10 waves", p.Name, a.Kind, a.Ramp)
			}
		}
		if p.Description == "" {
			t.Errorf("%s: no description", p.Name)
		}
	}
	if d := cmp.Diff(wantNames, names); d != "" {
		t.Errorf("preset names (-want +got):\n%s", d)
	}
	cb, err := LookupPreset("cache-bust", 1)
	if err != nil {
		t.Fatal(err)
	}
	if a := cb.Attacks[0]; a.Sources < 1000 || a.Rate > 1 {
		t.Errorf("cache-bust should be thousands of addresses at a low rate: %+v", a)
	}
	carpet, err := LookupPreset("carpet", 1)
	if err != nil {
		t.Fatal(err)
	}
	if a := carpet.Attacks[0]; a.Sources < 1000 || a.Rate != 0.2 || a.On == 0 || a.Off == 0 {
		t.Errorf("carpet should be thousands of addresses at 0.1-0.3 req/s, in waves: %+v", a)
	}
	// The campaign techniques, each exercised by a preset of its own.
	for _, k := range []Kind{KindDDoSia, KindRandom404, KindHeaderRandom, KindLoginFlood, KindPingback, KindHeadFlood, KindCarpet} {
		p, err := LookupPreset(string(k), 1)
		if err != nil || len(p.Attacks) != 1 || p.Attacks[0].Kind != k {
			t.Errorf("preset %s: %+v, %v", k, p, err)
		}
	}
}

func TestLookupPresetScale(t *testing.T) {
	tests := []struct {
		name        string
		preset      string
		scale       float64
		wantSources []int
		wantRate    float64
		wantErr     bool
	}{
		{"get-flood unscaled", "get-flood", 1, []int{300}, 3000, false},
		{"get-flood tenth", "get-flood", 0.1, []int{30}, 300, false},
		{"get-flood doubled", "get-flood", 2, []int{600}, 6000, false},
		{"rounds to at least one", "get-flood", 0.0001, []int{1}, 10, false},
		{"mixed half", "mixed", 0.5, []int{50, 500, 30, 20, 50}, 500 + 250 + 150 + 100, false},
		{"rapid reset rate is per connection", "h2-rapid-reset", 1, []int{10}, 2000, false},
		{"slowloris has no rate", "slowloris", 1, []int{300}, 0, false},
		{"ddosia", "ddosia", 1, []int{500}, 1500, false},
		{"carpet rate is the average", "carpet", 1, []int{5000}, 1000, false},
		{"multi-vector tenth", "multi-vector", 0.1, []int{30, 250, 100, 15, 30}, 90 + 50 + 50 + 90, false},
		{"none", "none", 1, nil, 0, false},
		{"unknown", "syn-flood", 1, nil, 0, true},
		{"zero scale", "get-flood", 0, nil, 0, true},
		{"negative scale", "get-flood", -1, nil, 0, true},
		{"huge scale", "get-flood", 101, nil, 0, true},
		{"NaN scale", "get-flood", math.NaN(), nil, 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := LookupPreset(tt.preset, tt.scale)
			if (err != nil) != tt.wantErr {
				t.Fatalf("LookupPreset error = %v, want error %v", err, tt.wantErr)
			}
			if err != nil {
				return
			}
			var sources []int
			for _, a := range p.Attacks {
				sources = append(sources, a.Sources)
			}
			if d := cmp.Diff(tt.wantSources, sources); d != "" {
				t.Errorf("sources (-want +got):\n%s", d)
			}
			if got := p.TotalRate(); math.Abs(got-tt.wantRate) > 1e-9 {
				t.Errorf("total rate %v, want %v", got, tt.wantRate)
			}
		})
	}
	// Scaling must not change the table it came from.
	if p, _ := LookupPreset("get-flood", 1); p.Attacks[0].Sources != 300 {
		t.Errorf("scaling modified the preset table: %d", p.Attacks[0].Sources)
	}
}

func TestFormatPresets(t *testing.T) {
	out := FormatPresets(1)
	for _, want := range []string{
		"get-flood", "300 addresses x 10 req/s = 3000 req/s, path /news/1",
		"cache-bust", "3000 addresses x 0.5 req/s = 1500 req/s",
		"slowloris", "300 addresses x 2 conns = 600 connections, a header line every 5s",
		"h2-rapid-reset", "10 addresses x 1 conns x 200 streams/s = 2000 streams/s",
		"total           1300 addresses, 2000 req/s",
		"ddosia", "500 addresses x 3 req/s = 1500 req/s",
		"carpet", "5000 addresses x 0.1-0.3 req/s (0.2 on average) = 1000 req/s, ramp 4s, waves 8s on / 4s off",
		"multi-vector", "slowloris       150 addresses x 2 conns = 300 connections, a header line every 5s, path /, from 20s, waves 10s on / 20s off",
		"total           4250 addresses, 2800 req/s (at most 1000 at once)",
		"stretch with --duration",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("--list-presets output lacks %q:\n%s", want, out)
		}
	}
}

func TestPercentile(t *testing.T) {
	ms := func(v ...int) []time.Duration {
		out := make([]time.Duration, len(v))
		for i, x := range v {
			out[i] = time.Duration(x) * time.Millisecond
		}
		return out
	}
	hundred := make([]int, 100)
	for i := range hundred {
		hundred[i] = i + 1
	}
	tests := []struct {
		name   string
		sorted []time.Duration
		p      float64
		want   time.Duration
	}{
		{"empty", nil, 50, 0},
		{"single", ms(7), 99, 7 * time.Millisecond},
		{"median of odd", ms(1, 2, 3, 4, 5), 50, 3 * time.Millisecond},
		{"median of even takes the lower", ms(1, 2, 3, 4), 50, 2 * time.Millisecond},
		{"p95 of 1..100", ms(hundred...), 95, 95 * time.Millisecond},
		{"p99 of 1..100", ms(hundred...), 99, 99 * time.Millisecond},
		{"p99 of 10 is the max", ms(1, 2, 3, 4, 5, 6, 7, 8, 9, 10), 99, 10 * time.Millisecond},
		{"p100", ms(1, 2, 3), 100, 3 * time.Millisecond},
		{"p0 is the min", ms(4, 5), 0, 4 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Percentile(tt.sorted, tt.p); got != tt.want {
				t.Errorf("Percentile(p%v) = %v, want %v", tt.p, got, tt.want)
			}
		})
	}
}

func TestRatio(t *testing.T) {
	tests := []struct {
		num, den int64
		want     float64
	}{{0, 0, 0}, {5, 0, 0}, {99, 100, 0.99}, {1, 3, 1.0 / 3}, {0, 7, 0}}
	for _, tt := range tests {
		if got := Ratio(tt.num, tt.den); got != tt.want {
			t.Errorf("Ratio(%d, %d) = %v, want %v", tt.num, tt.den, got, tt.want)
		}
	}
}

func TestLatenciesSummary(t *testing.T) {
	l := newLatencies(1)
	for i := 1; i <= 200; i++ {
		l.add(time.Duration(i)*time.Millisecond, i%50 != 0) // 4 of 200 fail
	}
	got := l.summary(3)
	want := GroupStats{Visitors: 3, Requests: 200, Succeeded: 196, SuccessRatio: 0.98, P50ms: 100, P95ms: 190, P99ms: 198}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("(-want +got):\n%s", d)
	}
	other := newLatencies(2)
	other.add(time.Second, false)
	m := mergeLatencies(l, other, 3).summary(4)
	if m.Requests != 201 || m.Succeeded != 196 || m.P99ms != 199 {
		t.Errorf("merged: %+v", m)
	}
}

func TestLatenciesReservoir(t *testing.T) {
	l := newLatencies(1)
	l.limit = 100
	for i := range 10000 {
		l.add(time.Duration(i), true)
	}
	if len(l.samples) != 100 || l.seen != 10000 {
		t.Fatalf("kept %d of %d", len(l.samples), l.seen)
	}
	// A uniform sample of 0..9999 has a median near 5000.
	if p := Percentile(sortedCopy(l.samples), 50); p < 3000 || p > 7000 {
		t.Errorf("reservoir median %v, want near 5000", p)
	}
}

func sortedCopy(s []time.Duration) []time.Duration {
	out := append([]time.Duration(nil), s...)
	for i := 1; i < len(out); i++ {
		for j := i; j > 0 && out[j] < out[j-1]; j-- {
			out[j], out[j-1] = out[j-1], out[j]
		}
	}
	return out
}

var procStatTests = []struct {
	name, in string
	want     time.Duration
	wantErr  bool
}{
	{"plain", "1234 (rampart) S 1 1234 1234 0 -1 4194560 500 0 0 0 250 50 0 0 20 0 12 0 100 1000000 2000 18446744073709551615", 3 * time.Second, false},
	{"name with spaces and parens", "99 (a (b) c) R 1 2 3 4 5 6 7 8 9 10 1 2 0 0", 30 * time.Millisecond, false},
	{"no name", "1234 rampart S", 0, true},
	{"too short", "1 (x) S 1 2 3", 0, true},
	{"not a number", "1 (x) S 1 2 3 4 5 6 7 8 9 10 a 2", 0, true},
	{"out of range", "1 (x) S 1 2 3 4 5 6 7 8 9 10 9223372036854775807 2", 0, true},
}

func TestParseProcStat(t *testing.T) {
	for _, tt := range procStatTests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseProcStat([]byte(tt.in))
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Errorf("ParseProcStat = %v, %v; want %v, error %v", got, err, tt.want, tt.wantErr)
			}
		})
	}
}

func FuzzParseProcStat(f *testing.F) {
	for _, tt := range procStatTests {
		f.Add([]byte(tt.in))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if d, err := ParseProcStat(b); err == nil && d < 0 {
			t.Errorf("negative CPU time %v", d)
		}
	})
}

var procStatusTests = []struct {
	name, in        string
	wantRSS, wantHW int64
	wantErr         bool
}{
	{"plain", "Name:\trampart\nVmHWM:\t   20480 kB\nVmRSS:\t   10240 kB\nThreads:\t8\n", 10 << 20, 20 << 20, false},
	{"kernel thread", "Name:\tkthreadd\nThreads:\t1\n", 0, 0, true},
	{"bad unit", "VmHWM:\t1 MB\nVmRSS:\t1 kB\n", 0, 0, true},
	{"bad number", "VmHWM:\tx kB\nVmRSS:\t1 kB\n", 0, 0, true},
	{"negative", "VmHWM:\t-1 kB\nVmRSS:\t1 kB\n", 0, 0, true},
}

func TestParseProcStatus(t *testing.T) {
	for _, tt := range procStatusTests {
		t.Run(tt.name, func(t *testing.T) {
			rss, hw, err := ParseProcStatus([]byte(tt.in))
			if (err != nil) != tt.wantErr || rss != tt.wantRSS || hw != tt.wantHW {
				t.Errorf("ParseProcStatus = %d, %d, %v; want %d, %d, error %v", rss, hw, err, tt.wantRSS, tt.wantHW, tt.wantErr)
			}
		})
	}
}

func FuzzParseProcStatus(f *testing.F) {
	for _, tt := range procStatusTests {
		f.Add([]byte(tt.in))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if rss, hw, err := ParseProcStatus(b); err == nil && (rss < 0 || hw < 0) {
			t.Errorf("negative sizes %d %d", rss, hw)
		}
	})
}

func TestMaxAge(t *testing.T) {
	tests := []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"public, max-age=3600", time.Hour, true},
		{"max-age=10", 10 * time.Second, true},
		{`MAX-AGE="5"`, 5 * time.Second, true},
		{"no-store", 0, false},
		{"max-age=-1", 0, false},
		{"", 0, false},
	}
	for _, tt := range tests {
		if got, ok := maxAge(tt.in); got != tt.want || ok != tt.ok {
			t.Errorf("maxAge(%q) = %v, %v", tt.in, got, ok)
		}
	}
}

func TestLinks(t *testing.T) {
	page := []byte(`<link rel="stylesheet" href="/static/style.css"><script src="/static/app.js"></script>
<img src="/static/logo.svg"><a href="/news/1">a</a><a href="/news/22">b</a><a href="/static/style.css">again</a><a href="https://elsewhere/news/3">x</a>`)
	articles, assets := links(page)
	if d := cmp.Diff([]string{"/news/1", "/news/22"}, articles); d != "" {
		t.Errorf("articles (-want +got):\n%s", d)
	}
	if d := cmp.Diff([]string{"/static/style.css", "/static/app.js", "/static/logo.svg"}, assets); d != "" {
		t.Errorf("assets (-want +got):\n%s", d)
	}
}

func TestNoJSSpread(t *testing.T) {
	tests := []struct {
		legit int
		share float64
		want  int
	}{{50, 0.1, 5}, {6, 0.1, 1}, {4, 0.1, 0}, {10, 1, 10}, {10, 0, 0}, {0, 0.5, 0}}
	for _, tt := range tests {
		r := &runner{cfg: Config{Legit: tt.legit, NoJSShare: tt.share}}
		n := 0
		for i := range tt.legit {
			if r.isNoJS(i) {
				n++
			}
		}
		if n != tt.want || r.noJSCount() != tt.want {
			t.Errorf("legit %d share %v: %d no-JS (count %d), want %d", tt.legit, tt.share, n, r.noJSCount(), tt.want)
		}
	}
}

func TestTallyBounded(t *testing.T) {
	var tl tally
	for i := range 1000 {
		tl.add(fmt.Sprint("label-", i), 1)
	}
	tl.add("label-3", 1)
	m := tl.snapshot()
	if len(m) > maxLabels {
		t.Errorf("%d labels, bound %d", len(m), maxLabels)
	}
	var sum int64
	for _, v := range m {
		sum += v
	}
	if sum != 1001 || m["label-3"] != 2 || m["other"] != 1000-(maxLabels-1) {
		t.Errorf("sum %d, label-3 %d, other %d", sum, m["label-3"], m["other"])
	}
}

func BenchmarkRecord(b *testing.B) {
	r := &runner{}
	resp := &http.Response{StatusCode: 200, Header: http.Header{"Rampart-Mitigated": {"rate-limit"}, "Rampart-Cache": {"HIT"}}}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			r.record(roleAttack, resp, nil)
		}
	})
}

func BenchmarkLatenciesAdd(b *testing.B) {
	l := newLatencies(1)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			l.add(time.Millisecond, true)
		}
	})
}
