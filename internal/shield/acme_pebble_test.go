package shield

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/acme/autocert"

	"github.com/rampart-shield/rampart/internal/config"
)

// pebbleVersion is the Pebble that scripts/deps.sh installs.
const pebbleVersion = "v2.10.3"

const (
	acmeDomain = "www.rampart.test" // the name in tls.acme_domains
	otherName  = "other.rampart.test"
)

// TestACMEIssuanceWithPebble issues real certificates through the ACME
// wiring (tls.acme_domains, tls.acme_directory, tls.acme_ca_file) from
// Pebble, Let's Encrypt's test CA, on loopback. pebble-challtestsrv is
// Pebble's DNS and answers 127.0.0.1 for every name, so Pebble validates
// each challenge against rampart's own listeners. In each case the other
// challenge's port points nowhere, so only the challenge under test can
// succeed:
//
//   - tls-alpn-01: one TLS listener, and certificate files for the names
//     outside tls.acme_domains;
//   - http-01: a TLS and a plain listener, no certificate files. autocert
//     tries tls-alpn-01 first, Pebble fails it, and autocert goes on with
//     http-01 on the plain listener.
func TestACMEIssuanceWithPebble(t *testing.T) {
	if config.DefaultACMEDirectory != autocert.DefaultACMEDirectory {
		t.Errorf("config.DefaultACMEDirectory = %s, autocert's is %s", config.DefaultACMEDirectory, autocert.DefaultACMEDirectory)
	}
	pebble := findGoTool(t, "pebble")
	challtestsrv := findGoTool(t, "pebble-challtestsrv")
	for _, challenge := range []string{"tls-alpn-01", "http-01"} {
		t.Run(challenge, func(t *testing.T) {
			testPebbleIssuance(t, pebble, challtestsrv, challenge)
		})
	}
}

func testPebbleIssuance(t *testing.T, pebble, challtestsrv, challenge string) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	dir := t.TempDir()
	caFile, pebbleCert, pebbleKey := writePebbleCA(t, dir)
	dnsPort, acmePort, mgmtPort := freePort(t, true), freePort(t, false), freePort(t, false)
	nowhere := freePort(t, false) // nothing listens there
	directory := fmt.Sprintf("https://127.0.0.1:%d/dir", acmePort)

	dns := startProcess(t, ctx, challtestsrv, nil,
		"-dnsserver", fmt.Sprintf("127.0.0.1:%d", dnsPort),
		"-defaultIPv4", "127.0.0.1", "-defaultIPv6", "", // Pebble would try an AAAA answer first
		"-management", fmt.Sprintf("127.0.0.1:%d", freePort(t, false)),
		"-http01", "", "-https01", "", "-tlsalpn01", "", "-doh", "")

	// rampart first: Pebble must know its ports. It reaches no CA before
	// the first handshake for the ACME name.
	origin := newOrigin(t, nil)
	yaml := fmt.Sprintf("tls:\n  acme_domains: [%s]\n  acme_email: ops@rampart.test\n  acme_directory: %s\n  acme_ca_file: %s\n",
		acmeDomain, directory, caFile)
	cfg := testConfig(t, origin.URL, yaml)
	var fileCert []byte
	if challenge == "tls-alpn-01" {
		cfg.Listeners = []config.Listener{{Address: "127.0.0.1:0", TLS: true}}
		cfg.TLS.CertFile, cfg.TLS.KeyFile, _ = writeCert(t, dir, "file")
		fileCert = pemFileDER(t, cfg.TLS.CertFile)
	} else {
		cfg.Listeners = []config.Listener{{Address: "127.0.0.1:0", TLS: true}, {Address: "127.0.0.1:0"}}
	}
	s := startShield(t, cfg)
	addrs := s.Addrs()
	tlsAddr := strings.TrimPrefix(addrs[0], "https://")
	httpPort, tlsPort := nowhere, portOf(t, tlsAddr)
	if challenge == "http-01" {
		httpPort, tlsPort = portOf(t, strings.TrimPrefix(addrs[1], "http://")), nowhere
	}

	pc := map[string]any{"pebble": map[string]any{
		"listenAddress":           fmt.Sprintf("127.0.0.1:%d", acmePort),
		"managementListenAddress": fmt.Sprintf("127.0.0.1:%d", mgmtPort),
		"certificate":             pebbleCert,
		"privateKey":              pebbleKey,
		"httpPort":                httpPort,
		"tlsPort":                 tlsPort,
		"keyAlgorithm":            "ecdsa",
		"retryAfter":              map[string]int{"authz": 1, "order": 1},
		"profiles":                map[string]any{"default": map[string]any{"description": "90 days", "validityPeriod": 90 * 24 * 3600}},
	}}
	pcData, _ := json.Marshal(pc)
	pcFile := filepath.Join(dir, "pebble.json")
	if err := os.WriteFile(pcFile, pcData, 0o600); err != nil {
		t.Fatal(err)
	}
	ca := startProcess(t, ctx, pebble, []string{
		"PEBBLE_VA_NOSLEEP=1",      // no random sleep before each validation
		"PEBBLE_WFE_NONCEREJECT=0", // no bad-nonce retries (each costs the client a second or more)
	}, "-config", pcFile, "-dnsserver", fmt.Sprintf("127.0.0.1:%d", dnsPort))

	// Wait for the DNS and for the directory, through the CA file that
	// rampart is given.
	caPool := x509.NewCertPool()
	caPool.AppendCertsFromPEM(mustRead(t, caFile))
	toPebble := &http.Client{Timeout: 3 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: caPool}}}
	t.Cleanup(toPebble.CloseIdleConnections)
	waitFor(t, "pebble-challtestsrv's DNS", 30*time.Second, func() bool {
		dns.mustRun(t)
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", dnsPort), time.Second)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
	waitFor(t, "Pebble's directory", 30*time.Second, func() bool {
		ca.mustRun(t)
		resp, err := toPebble.Get(directory)
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	// Pebble's issuing root is made at each start; the management
	// interface hands it out.
	roots := x509.NewCertPool()
	resp, err := toPebble.Get(fmt.Sprintf("https://127.0.0.1:%d/roots/0", mgmtPort))
	if err != nil {
		t.Fatalf("Pebble's root: %v", err)
	}
	rootPEM, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !roots.AppendCertsFromPEM(rootPEM) {
		t.Fatalf("Pebble's root: %s\n%s", resp.Status, rootPEM)
	}

	// An HTTPS request for the ACME name: the first handshake waits for
	// the issuance (or times out at hardening.tls_handshake_timeout while
	// it goes on), so retry until a deadline.
	var dialer net.Dialer
	client := &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: roots},
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return dialer.DialContext(ctx, network, tlsAddr) // the name resolves to rampart
		},
	}}
	t.Cleanup(client.CloseIdleConnections)
	start := time.Now()
	var lastErr string
	var got *http.Response
	waitFor(t, "an HTTPS response with a certificate from Pebble (the errors are logged)", 60*time.Second, func() bool {
		ca.mustRun(t)
		resp, err := client.Get("https://" + acmeDomain + "/page")
		if err != nil {
			if err.Error() != lastErr {
				t.Logf("after %v: %v", time.Since(start).Round(time.Millisecond), err)
				lastErr = err.Error()
			}
			return false
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		got = resp
		return true
	})
	t.Logf("%s: certificate issued and served after %v", challenge, time.Since(start).Round(time.Millisecond))
	if got.StatusCode != http.StatusOK || origin.hits.Load() == 0 {
		t.Errorf("the request over the issued certificate: %s, origin hits %d", got.Status, origin.hits.Load())
	}
	leaf := got.TLS.PeerCertificates[0]
	if len(got.TLS.VerifiedChains) == 0 || len(leaf.DNSNames) != 1 || leaf.DNSNames[0] != acmeDomain {
		t.Fatalf("served certificate: names %v, issuer %q, %d verified chains", leaf.DNSNames, leaf.Issuer, len(got.TLS.VerifiedChains))
	}
	if _, err := leaf.Verify(x509.VerifyOptions{DNSName: acmeDomain, Roots: roots, Intermediates: poolOf(got.TLS.PeerCertificates[1:])}); err != nil {
		t.Fatalf("the served certificate does not chain to Pebble's root: %v", err)
	}

	// The certificate and account are cached apart from Let's Encrypt
	// production's (STATE_DIR/acme itself).
	cached, _ := filepath.Glob(filepath.Join(cfg.StateDir, "acme", fmt.Sprintf("127.0.0.1_%d+*", acmePort), acmeDomain+"*"))
	if len(cached) == 0 {
		entries, _ := filepath.Glob(filepath.Join(cfg.StateDir, "acme", "*"))
		t.Errorf("no cached certificate in the directory's own cache; STATE_DIR/acme holds %v", entries)
	}
	if _, err := os.Stat(filepath.Join(cfg.StateDir, "acme", acmeDomain)); err == nil {
		t.Errorf("the certificate from Pebble was cached with production's")
	}

	// A name outside tls.acme_domains never reaches the CA: it gets the
	// file certificate, or without files, no certificate at all.
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 3 * time.Second}, "tcp", tlsAddr,
		&tls.Config{ServerName: otherName, InsecureSkipVerify: true})
	switch {
	case fileCert != nil && err != nil:
		t.Errorf("%s: handshake failed: %v (want the file certificate)", otherName, err)
	case fileCert != nil:
		if c := conn.ConnectionState().PeerCertificates[0]; !bytes.Equal(c.Raw, fileCert) {
			t.Errorf("%s: served %v from %q, want the file certificate", otherName, c.DNSNames, c.Issuer)
		}
		conn.Close()
	case err == nil:
		c := conn.ConnectionState().PeerCertificates[0]
		conn.Close()
		t.Errorf("%s: served %v from %q, want the handshake refused", otherName, c.DNSNames, c.Issuer)
	}
}

// findGoTool returns the path of a program installed by scripts/deps.sh:
// on PATH, or in the Go bin directory ($(go env GOBIN), else
// $(go env GOPATH)/bin). Without it the test fails and says what to install.
func findGoTool(t *testing.T, name string) string {
	t.Helper()
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	var dirs []string
	if out, err := exec.Command("go", "env", "GOBIN", "GOPATH").Output(); err == nil {
		lines := strings.Split(string(out), "\n")
		if len(lines) >= 2 {
			if gobin := strings.TrimSpace(lines[0]); gobin != "" {
				dirs = append(dirs, gobin)
			}
			for _, gp := range filepath.SplitList(strings.TrimSpace(lines[1])) {
				dirs = append(dirs, filepath.Join(gp, "bin"))
			}
		}
	}
	for _, d := range dirs {
		p := filepath.Join(d, name)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return p
		}
	}
	t.Fatalf("%s is not on PATH nor in %v: run scripts/deps.sh, or go install github.com/letsencrypt/pebble/v2/cmd/%s@%s", name, dirs, name, pebbleVersion)
	return ""
}

// process is a helper program run for one test, killed at its cleanup.
type process struct {
	name   string
	out    *lockedBuffer
	exited chan struct{} // closed when it has exited, with err set
	err    error
}

func startProcess(t *testing.T, ctx context.Context, path string, env []string, args ...string) *process {
	t.Helper()
	p := &process{name: filepath.Base(path), out: &lockedBuffer{}, exited: make(chan struct{})}
	cmd := exec.CommandContext(ctx, path, args...) // killed at the deadline at the latest
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = p.out, p.out
	cmd.WaitDelay = 2 * time.Second
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", p.name, err)
	}
	go func() {
		p.err = cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		cmd.Process.Kill()
		select {
		case <-p.exited:
		case <-time.After(5 * time.Second):
			t.Errorf("%s (pid %d) did not exit after kill", p.name, cmd.Process.Pid)
		}
		if t.Failed() || testing.Verbose() {
			t.Logf("%s output:\n%s", p.name, p.out.String())
		}
	})
	return p
}

// mustRun fails the test at once if the process has exited.
func (p *process) mustRun(t *testing.T) {
	t.Helper()
	select {
	case <-p.exited:
		t.Fatalf("%s exited: %v\n%s", p.name, p.err, p.out.String())
	default:
	}
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// freePort returns a loopback port that was free a moment ago, for TCP and,
// with udp, for UDP too (a DNS server takes both).
func freePort(t *testing.T, udp bool) int {
	t.Helper()
	for range 20 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		if !udp {
			l.Close()
			return port
		}
		u, err := net.ListenPacket("udp", "127.0.0.1:"+strconv.Itoa(port))
		l.Close()
		if err == nil {
			u.Close()
			return port
		}
	}
	t.Fatal("no loopback port free for both TCP and UDP")
	return 0
}

func portOf(t *testing.T, hostport string) int {
	t.Helper()
	_, p, err := net.SplitHostPort(hostport)
	n, err2 := strconv.Atoi(p)
	if err != nil || err2 != nil {
		t.Fatalf("bad address %q", hostport)
	}
	return n
}

// writePebbleCA makes a CA and, signed by it, the certificate of Pebble's
// HTTPS (its directory and management interface) for 127.0.0.1. The CA is
// what rampart is given as tls.acme_ca_file. (The localhost certificate in
// Pebble's module expires in October 2027, and the test would then need the
// module cache; a fresh pair needs neither.)
func writePebbleCA(t *testing.T, dir string) (caFile, certFile, keyFile string) {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "rampart test ACME directory CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: "pebble"},
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	caFile, certFile, keyFile = filepath.Join(dir, "acme-ca.pem"), filepath.Join(dir, "pebble.crt"), filepath.Join(dir, "pebble.key")
	for _, f := range []struct {
		path, typ string
		der       []byte
	}{{caFile, "CERTIFICATE", caDER}, {certFile, "CERTIFICATE", der}, {keyFile, "EC PRIVATE KEY", kder}} {
		if err := os.WriteFile(f.path, pem.EncodeToMemory(&pem.Block{Type: f.typ, Bytes: f.der}), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return caFile, certFile, keyFile
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// pemFileDER returns the first certificate of a PEM file.
func pemFileDER(t *testing.T, path string) []byte {
	t.Helper()
	b, _ := pem.Decode(mustRead(t, path))
	if b == nil {
		t.Fatalf("%s: no PEM", path)
	}
	return b.Bytes
}

func poolOf(certs []*x509.Certificate) *x509.CertPool {
	p := x509.NewCertPool()
	for _, c := range certs {
		p.AddCert(c)
	}
	return p
}
