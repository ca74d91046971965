package shield

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/http2"

	"github.com/rampart-shield/rampart/internal/config"
)

// writeCert writes a self-signed certificate for 127.0.0.1 and returns the
// paths and a pool that trusts it.
func writeCert(t *testing.T, dir, name string) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: name},
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, _ := x509.MarshalECPrivateKey(key)
	certFile, keyFile = filepath.Join(dir, name+".crt"), filepath.Join(dir, name+".key")
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600)
	cert, _ := x509.ParseCertificate(der)
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}

// TestTLSAndHTTP2: HTTPS with HTTP/2 through ALPN, h2c with prior knowledge
// on the plain listener, X-Forwarded-Proto, and a certificate swapped on
// reload.
func TestTLSAndHTTP2(t *testing.T) {
	var mu sync.Mutex
	var proto string
	origin := newOrigin(t, func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		proto = r.Header.Get("X-Forwarded-Proto")
		mu.Unlock()
		io.WriteString(w, "hello")
	})
	dir := t.TempDir()
	certFile, keyFile, pool := writeCert(t, dir, "one")
	cfg := testConfig(t, origin.URL, "")
	cfg.Listeners = []config.Listener{{Address: "127.0.0.1:0", TLS: true}, {Address: "127.0.0.1:0"}}
	cfg.TLS.CertFile, cfg.TLS.KeyFile = certFile, keyFile
	s := startShield(t, cfg)
	addrs := s.Addrs()

	h2 := &http.Client{Transport: &http2.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}, Timeout: 5 * time.Second}
	resp, err := h2.Get(addrs[0] + "/x")
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.ProtoMajor != 2 || resp.StatusCode != 200 {
		t.Fatalf("HTTPS: %s %d", resp.Proto, resp.StatusCode)
	}
	mu.Lock()
	if proto != "https" {
		t.Errorf("X-Forwarded-Proto over TLS = %q", proto)
	}
	mu.Unlock()

	h2c := &http.Client{Timeout: 5 * time.Second, Transport: &http2.Transport{
		AllowHTTP: true,
		DialTLSContext: func(ctx context.Context, network, addr string, _ *tls.Config) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, network, addr)
		},
	}}
	resp, err = h2c.Get(addrs[1] + "/y")
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.ProtoMajor != 2 || resp.StatusCode != 200 {
		t.Fatalf("h2c: %s %d", resp.Proto, resp.StatusCode)
	}

	// Reload with a new certificate: new connections get it.
	certFile2, keyFile2, pool2 := writeCert(t, dir, "two")
	os.Rename(certFile2, certFile)
	os.Rename(keyFile2, keyFile)
	next := *cfg
	if err := s.Reload(&next); err != nil {
		t.Fatal(err)
	}
	fresh := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool2}}, Timeout: 5 * time.Second}
	resp, err = fresh.Get(addrs[0] + "/z")
	if err != nil {
		t.Fatalf("the reloaded certificate is not served: %v", err)
	}
	resp.Body.Close()
}
