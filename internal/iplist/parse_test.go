package iplist

import (
	"errors"
	"io"
	"net/netip"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

var parsePrefixTests = []struct {
	name    string
	in      string
	want    string // the prefix's String(), or "" for an error
	wantErr string // a substring of the error
}{
	{name: "IPv4 prefix", in: "203.0.113.0/24", want: "203.0.113.0/24"},
	{name: "IPv4 host bits masked", in: "203.0.113.77/24", want: "203.0.113.0/24"},
	{name: "IPv6 prefix", in: "2001:db8::/32", want: "2001:db8::/32"},
	{name: "IPv6 host bits masked", in: "2001:db8:1:2::1/32", want: "2001:db8::/32"},
	{name: "bare IPv4", in: "192.0.2.1", want: "192.0.2.1/32"},
	{name: "bare IPv6", in: "2001:db8::1", want: "2001:db8::1/128"},
	{name: "4in6 address unmapped", in: "::ffff:192.0.2.1", want: "192.0.2.1/32"},
	{name: "4in6 prefix unmapped", in: "::ffff:192.0.2.0/120", want: "192.0.2.0/24"},
	{name: "4in6 /96 is all IPv4", in: "::ffff:0:0/96", want: "0.0.0.0/0"},
	{name: "short 4in6 prefix stays IPv6", in: "::ffff:0:0/80", want: "::/80"},
	{name: "IPv4 default route", in: "0.0.0.0/0", want: "0.0.0.0/0"},
	{name: "IPv6 default route", in: "::/0", want: "::/0"},
	{name: "longest IPv6", in: "2001:db8::1/128", want: "2001:db8::1/128"},
	{name: "surrounding spaces", in: " \t10.0.0.0/8 ", want: "10.0.0.0/8"},
	{name: "empty", in: "", wantErr: "empty prefix"},
	{name: "only spaces", in: "   ", wantErr: "empty prefix"},
	{name: "missing address", in: "/24", wantErr: "missing address"},
	{name: "missing length", in: "10.0.0.0/", wantErr: "missing prefix length"},
	{name: "IPv4 length too long", in: "10.0.0.0/33", wantErr: "prefix length 33 exceeds 32 for IPv4"},
	{name: "IPv6 length too long", in: "2001:db8::/129", wantErr: "exceeds 128 for IPv6"},
	{name: "huge length", in: "10.0.0.0/99999999999999999999", wantErr: "exceeds 32"},
	{name: "negative length", in: "10.0.0.0/-1", wantErr: "not a decimal number"},
	{name: "plus sign", in: "10.0.0.0/+8", wantErr: "not a decimal number"},
	{name: "leading zero", in: "10.0.0.0/08", wantErr: "leading zero"},
	{name: "two slashes", in: "10.0.0.0/8/8", wantErr: "not a decimal number"},
	{name: "octet too big", in: "10.0.0.256", wantErr: "value >255"},
	{name: "short IPv4", in: "1.2.3", wantErr: "too short"},
	{name: "junk", in: "bogus", wantErr: `bad address "bogus"`},
	{name: "hostname", in: "example.com", wantErr: "bad address"},
	{name: "zone", in: "fe80::1%eth0", wantErr: `zone "eth0" not allowed`},
	{name: "zone in prefix", in: "fe80::1%eth0/64", wantErr: "zone"},
	{name: "space before length", in: "10.0.0.0 /8", wantErr: "space inside"},
	{name: "range syntax", in: "10.0.0.1-10.0.0.9", wantErr: "bad address"},
}

func TestParsePrefix(t *testing.T) {
	for _, tt := range parsePrefixTests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := ParsePrefix(tt.in)
			if tt.wantErr != "" {
				if err == nil {
					t.Fatalf("ParsePrefix(%q) = %v, want an error", tt.in, p)
				}
				if !strings.Contains(err.Error(), tt.wantErr) {
					t.Errorf("error %q does not say %q", err, tt.wantErr)
				}
				if !errors.Is(err, ErrInvalidPrefix) {
					t.Errorf("error %q does not wrap ErrInvalidPrefix", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParsePrefix(%q): %v", tt.in, err)
			}
			if p.String() != tt.want {
				t.Errorf("ParsePrefix(%q) = %v, want %v", tt.in, p, tt.want)
			}
		})
	}
}

func TestParseList(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []string
		errs []string // exact error strings
	}{
		{
			name: "comments and blank lines",
			in:   "# office networks\n\n10.0.0.0/8   # corp\n  192.0.2.1\t#host\n   \n#end",
			want: []string{"10.0.0.0/8", "192.0.2.1/32"},
		},
		{
			name: "CRLF line ends",
			in:   "10.0.0.0/8\r\n# c\r\n2001:db8::/32\r\n",
			want: []string{"10.0.0.0/8", "2001:db8::/32"},
		},
		{
			name: "byte order mark",
			in:   "\xef\xbb\xbf10.0.0.0/8\n",
			want: []string{"10.0.0.0/8"},
		},
		{
			name: "no final newline",
			in:   "10.0.0.0/8\n192.0.2.0/24",
			want: []string{"10.0.0.0/8", "192.0.2.0/24"},
		},
		{
			name: "duplicates kept in order",
			in:   "192.0.2.9/24\n10.0.0.0/8\n192.0.2.0/24\n",
			want: []string{"192.0.2.0/24", "10.0.0.0/8", "192.0.2.0/24"},
		},
		{
			name: "empty",
			in:   "",
		},
		{
			name: "errors with line and column",
			in:   "10.0.0.0/8\nbogus\n  10.0.0.0/33\n1.2.3.4 5.6.7.8\n\tfe80::1%eth0 # link local\n192.0.2.0/24",
			want: []string{"10.0.0.0/8", "192.0.2.0/24"},
			errs: []string{
				`list.txt:2:1: bad address "bogus": unable to parse IP in "bogus"`,
				`list.txt:3:12: prefix length 33 exceeds 32 for IPv4 in "10.0.0.0/33"`,
				`list.txt:4:9: unexpected "5.6.7.8" after "1.2.3.4" (one prefix per line; comments start with '#')`,
				`list.txt:5:9: zone "eth0" not allowed in a prefix in "fe80::1%eth0"`,
			},
		},
		{
			name: "CRLF error column",
			in:   "10.0.0.0/8\r\n10.0.0.0/x\r\n",
			want: []string{"10.0.0.0/8"},
			errs: []string{`list.txt:2:10: prefix length "x" is not a decimal number in "10.0.0.0/x"`},
		},
		{
			name: "overlong line is skipped",
			in:   "10.0.0.0/8\n" + strings.Repeat("9", MaxLineLength+10) + "\n192.0.2.0/24\n",
			want: []string{"10.0.0.0/8", "192.0.2.0/24"},
			errs: []string{"list.txt:2:4097: line longer than 4096 bytes"},
		},
		{
			name: "overlong last line",
			in:   "10.0.0.0/8\n" + strings.Repeat("#", MaxLineLength*3),
			want: []string{"10.0.0.0/8"},
			errs: []string{"list.txt:2:4097: line longer than 4096 bytes"},
		},
		{
			name: "line of exactly the limit",
			in:   "10.0.0.0/8 #" + strings.Repeat("x", MaxLineLength-13) + "\n",
			want: []string{"10.0.0.0/8"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, errs := ParseList(strings.NewReader(tt.in), "list.txt")
			var gotS, errS []string
			for _, p := range got {
				gotS = append(gotS, p.String())
			}
			for _, e := range errs {
				errS = append(errS, e.Error())
				var pe *ParseError
				if !errors.As(e, &pe) || !errors.Is(e, ErrInvalidPrefix) {
					t.Errorf("error %v is not a *ParseError wrapping ErrInvalidPrefix", e)
				}
			}
			if diff := cmp.Diff(tt.want, gotS); diff != "" {
				t.Errorf("prefixes (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.errs, errS); diff != "" {
				t.Errorf("errors (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseListTooManyErrors(t *testing.T) {
	in := strings.Repeat("junk\n", 500) + "10.0.0.0/8\n"
	_, errs := ParseList(strings.NewReader(in), "big")
	if len(errs) != MaxErrors+1 {
		t.Fatalf("%d errors, want %d", len(errs), MaxErrors+1)
	}
	if last := errs[len(errs)-1].Error(); last != "big:101:1: too many errors (100), giving up" {
		t.Errorf("last error %q", last)
	}
}

type failingReader struct {
	data string
	err  error
}

func (r *failingReader) Read(p []byte) (int, error) {
	if r.data == "" {
		return 0, r.err
	}
	n := copy(p, r.data)
	r.data = r.data[n:]
	return n, nil
}

func TestParseListReadError(t *testing.T) {
	boom := errors.New("disk on fire")
	got, errs := ParseList(&failingReader{data: "10.0.0.0/8\n192.0", err: boom}, "f")
	if len(got) != 1 || len(errs) != 1 || !errors.Is(errs[0], boom) {
		t.Fatalf("got %v, errors %v; want one prefix and the read error", got, errs)
	}
	if !strings.HasPrefix(errs[0].Error(), "f:2: read: ") {
		t.Errorf("read error %q does not say where", errs[0])
	}
}

func TestLoadFile(t *testing.T) {
	dir := t.TempDir()
	good := writeFile(t, dir, "good.txt", "10.0.0.0/8\n2001:db8::/32\n")
	bad := writeFile(t, dir, "bad.txt", "10.0.0.0/8\nnope\n10.0.0.0/40\n")

	ps, err := LoadFile(good)
	if err != nil || len(ps) != 2 {
		t.Fatalf("LoadFile(good) = %v, %v", ps, err)
	}
	ps, err = LoadFile(bad)
	if err == nil || ps != nil {
		t.Fatalf("LoadFile(bad) = %v, %v; want no prefixes and an error", ps, err)
	}
	msg := err.Error()
	for _, want := range []string{bad + ":2:1: ", bad + ":3:10: "} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q lacks %q", msg, want)
		}
	}
	if _, err := LoadFile(dir + "/missing.txt"); err == nil {
		t.Error("LoadFile of a missing file succeeded")
	}
}

// checkPrefix asserts the invariants of every prefix this package returns.
func checkPrefix(t *testing.T, p netip.Prefix) {
	t.Helper()
	if !p.IsValid() || p != p.Masked() || p.Addr().Zone() != "" {
		t.Fatalf("prefix %v is not valid, masked and zone-free", p)
	}
	if p.Addr().Is4In6() && p.Bits() >= 96 {
		t.Fatalf("prefix %v should have been unmapped", p)
	}
	q, err := ParsePrefix(p.String())
	if err != nil || q != p {
		t.Fatalf("prefix %v does not round-trip: %v, %v", p, q, err)
	}
}

func FuzzParsePrefix(f *testing.F) {
	for _, tt := range parsePrefixTests {
		f.Add(tt.in)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := ParsePrefix(s)
		if err != nil {
			if !errors.Is(err, ErrInvalidPrefix) {
				t.Fatalf("error %v does not wrap ErrInvalidPrefix", err)
			}
		} else {
			checkPrefix(t, p)
		}
		// Whatever the standard library accepts without a zone, we
		// accept as the same network.
		if np, nerr := netip.ParsePrefix(strings.TrimSpace(s)); nerr == nil && s == strings.TrimSpace(s) {
			want, _ := normalise(np)
			if err != nil || p != want {
				t.Fatalf("netip accepts %q as %v; ParsePrefix = %v, %v", s, want, p, err)
			}
		}
	})
}

func FuzzParseList(f *testing.F) {
	f.Add("# c\n10.0.0.0/8 # x\r\n\n2001:db8::/32\n")
	f.Add("\xef\xbb\xbf192.0.2.1\n")
	f.Add("bogus\n10.0.0.0/33\n1.2.3.4 5.6.7.8\n")
	for _, tt := range parsePrefixTests {
		f.Add(tt.in + "\n" + tt.in + " # comment")
	}
	f.Fuzz(func(t *testing.T, in string) {
		ps, errs := ParseList(strings.NewReader(in), "fuzz")
		for _, p := range ps {
			checkPrefix(t, p)
		}
		if len(errs) > MaxErrors+1 {
			t.Fatalf("%d errors", len(errs))
		}
		lines := strings.Count(in, "\n") + 1
		for _, e := range errs {
			var pe *ParseError
			if !errors.As(e, &pe) {
				t.Fatalf("error %v is not a *ParseError", e)
			}
			if pe.Line < 1 || pe.Line > lines || pe.Col < 1 || !strings.HasPrefix(e.Error(), "fuzz:") {
				t.Fatalf("bad position in %v (input has %d lines)", e, lines)
			}
		}
		if len(ps) > lines {
			t.Fatalf("%d prefixes from %d lines", len(ps), lines)
		}
		_ = io.EOF
	})
}
