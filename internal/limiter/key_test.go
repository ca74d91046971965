package limiter

import (
	"net/netip"
	"testing"
)

func key(f func(b *KeyBuilder)) uint64 {
	var b KeyBuilder
	f(&b)
	return b.Sum()
}

func TestKeyBuilderDistinct(t *testing.T) {
	ip4 := netip.MustParseAddr("192.0.2.1")
	tests := []struct {
		name string
		a, b func(*KeyBuilder)
	}{
		{"string boundaries",
			func(b *KeyBuilder) { b.Reset("r"); b.AddString("ab"); b.AddString("c") },
			func(b *KeyBuilder) { b.Reset("r"); b.AddString("a"); b.AddString("bc") }},
		{"namespace boundary",
			func(b *KeyBuilder) { b.Reset("a"); b.AddString("b") },
			func(b *KeyBuilder) { b.Reset("ab") }},
		{"namespace versus string",
			func(b *KeyBuilder) { b.Reset("x") },
			func(b *KeyBuilder) { b.Reset(""); b.AddString("x") }},
		{"empty string is a field",
			func(b *KeyBuilder) { b.Reset("r") },
			func(b *KeyBuilder) { b.Reset("r"); b.AddString("") }},
		{"rule namespaces",
			func(b *KeyBuilder) { b.Reset("login"); b.AddAddr(ip4) },
			func(b *KeyBuilder) { b.Reset("search"); b.AddAddr(ip4) }},
		{"address versus its bytes as a string",
			func(b *KeyBuilder) { b.Reset("r"); b.AddAddr(ip4) },
			func(b *KeyBuilder) { b.Reset("r"); b.AddString("\xc0\x00\x02\x01") }},
		{"string versus bytes",
			func(b *KeyBuilder) { b.Reset("r"); b.AddString("ab") },
			func(b *KeyBuilder) { b.Reset("r"); b.AddBytes([]byte("ab")) }},
		{"neighbouring addresses",
			func(b *KeyBuilder) { b.AddAddr(ip4) },
			func(b *KeyBuilder) { b.AddAddr(ip4.Next()) }},
		{"IPv4 versus IPv6 with the same low bytes",
			func(b *KeyBuilder) { b.AddAddr(ip4) },
			func(b *KeyBuilder) { b.AddAddr(netip.MustParseAddr("::c000:201")) }},
		{"address versus host prefix",
			func(b *KeyBuilder) { b.AddAddr(ip4) },
			func(b *KeyBuilder) { b.AddPrefix(netip.MustParsePrefix("192.0.2.1/32")) }},
		{"prefix lengths",
			func(b *KeyBuilder) { b.AddPrefix(netip.MustParsePrefix("192.0.2.0/24")) },
			func(b *KeyBuilder) { b.AddPrefix(netip.MustParsePrefix("192.0.2.0/25")) }},
		{"invalid address versus invalid prefix",
			func(b *KeyBuilder) { b.AddAddr(netip.Addr{}) },
			func(b *KeyBuilder) { b.AddPrefix(netip.Prefix{}) }},
		{"field order",
			func(b *KeyBuilder) { b.AddUint64(1); b.AddString("x") },
			func(b *KeyBuilder) { b.AddString("x"); b.AddUint64(1) }},
		{"integers",
			func(b *KeyBuilder) { b.AddUint64(1) },
			func(b *KeyBuilder) { b.AddUint64(1 << 32) }},
		{"fingerprint keys",
			func(b *KeyBuilder) { b.Reset("ja4"); b.AddString("t13d1516h2_8daaf6152771_02713d6af862") },
			func(b *KeyBuilder) { b.Reset("ja4"); b.AddString("t13d1517h2_8daaf6152771_b0da82dd1658") }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ka, kb := key(tt.a), key(tt.b)
			if ka == kb {
				t.Errorf("both give key %#x", ka)
			}
			if ka == 0 || kb == 0 {
				t.Error("Sum returned 0")
			}
		})
	}
}

func TestKeyBuilderEqual(t *testing.T) {
	tests := []struct {
		name string
		a, b func(*KeyBuilder)
	}{
		{"stable across builders",
			func(b *KeyBuilder) { b.Reset("r"); b.AddString("x"); b.AddUint64(7) },
			func(b *KeyBuilder) { b.Reset("r"); b.AddString("x"); b.AddUint64(7) }},
		{"zero builder is Reset empty",
			func(b *KeyBuilder) { b.AddString("x") },
			func(b *KeyBuilder) { b.Reset(""); b.AddString("x") }},
		{"Reset discards earlier fields",
			func(b *KeyBuilder) { b.Reset("a"); b.AddString("junk"); b.Reset("r"); b.AddString("x") },
			func(b *KeyBuilder) { b.Reset("r"); b.AddString("x") }},
		{"4in6 address is unmapped",
			func(b *KeyBuilder) { b.AddAddr(netip.MustParseAddr("192.0.2.1")) },
			func(b *KeyBuilder) { b.AddAddr(netip.MustParseAddr("::ffff:192.0.2.1")) }},
		{"zone ignored",
			func(b *KeyBuilder) { b.AddAddr(netip.MustParseAddr("fe80::1")) },
			func(b *KeyBuilder) { b.AddAddr(netip.MustParseAddr("fe80::1%eth0")) }},
		{"prefix host bits masked",
			func(b *KeyBuilder) { b.AddPrefix(netip.MustParsePrefix("192.0.2.77/24")) },
			func(b *KeyBuilder) { b.AddPrefix(netip.MustParsePrefix("192.0.2.0/24")) }},
		{"4in6 prefix unmapped",
			func(b *KeyBuilder) { b.AddPrefix(netip.MustParsePrefix("::ffff:192.0.2.0/120")) },
			func(b *KeyBuilder) { b.AddPrefix(netip.MustParsePrefix("192.0.2.0/24")) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if ka, kb := key(tt.a), key(tt.b); ka != kb {
				t.Errorf("keys differ: %#x and %#x", ka, kb)
			}
		})
	}
}

func TestKeyBuilderSumContinues(t *testing.T) {
	var b KeyBuilder
	b.Reset("r")
	b.AddString("a")
	first := b.Sum()
	if b.Sum() != first {
		t.Fatal("Sum changed the builder")
	}
	b.AddString("b")
	if b.Sum() == first {
		t.Fatal("field after Sum ignored")
	}
	if b.Sum() != key(func(b *KeyBuilder) { b.Reset("r"); b.AddString("a"); b.AddString("b") }) {
		t.Fatal("Sum in the middle altered the result")
	}
}

func TestKeyBuilderDoesNotAllocate(t *testing.T) {
	ip := netip.MustParseAddr("2001:db8::1")
	pfx := netip.MustParsePrefix("2001:db8::/64")
	ua := "Mozilla/5.0 (X11; Linux x86_64)"
	var sink uint64
	if allocs := testing.AllocsPerRun(1000, func() {
		var b KeyBuilder
		b.Reset("rule")
		b.AddAddr(ip)
		b.AddPrefix(pfx)
		b.AddString(ua)
		b.AddUint64(42)
		sink += b.Sum()
	}); allocs != 0 {
		t.Errorf("building a key allocates %v times", allocs)
	}
	_ = sink
}
