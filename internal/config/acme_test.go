package config

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// writeCAFile writes a self-signed CA certificate as PEM and returns its path.
func writeCAFile(t *testing.T) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "test ACME CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestACMEDirectoryAndCAFile(t *testing.T) {
	c, err := Parse(nil, "x.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if c.TLS.ACMEDirectory != DefaultACMEDirectory || c.TLS.ACMECAFile != "" {
		t.Fatalf("defaults: acme_directory %q, acme_ca_file %q", c.TLS.ACMEDirectory, c.TLS.ACMECAFile)
	}
	ca := writeCAFile(t)
	c, err = Parse([]byte("tls:\n  acme_domains: [www.example.org]\n  acme_directory: https://127.0.0.1:14000/dir\n  acme_ca_file: "+ca+"\n"), "x.yaml")
	if err != nil {
		t.Fatalf("a private CA does not validate: %v", err)
	}
	if c.TLS.ACMEDirectory != "https://127.0.0.1:14000/dir" || c.TLS.ACMECAFile != ca {
		t.Fatalf("not decoded: %+v", c.TLS)
	}
}

// TestACMEErrors: every mistake in the ACME keys is reported at its key.
func TestACMEErrors(t *testing.T) {
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty.pem")
	notPEM := filepath.Join(dir, "key.pem")
	os.WriteFile(empty, nil, 0o644)
	os.WriteFile(notPEM, []byte("-----BEGIN EC PRIVATE KEY-----\nAAAA\n-----END EC PRIVATE KEY-----\n"), 0o600)
	missing := filepath.Join(dir, "missing.pem")
	const domains = "tls:\n  acme_domains: [www.example.org]\n"
	tests := []struct {
		name string
		yaml string
		want string
	}{
		{"http directory", domains + "  acme_directory: http://127.0.0.1:14000/dir\n",
			`x.yaml:3:19: tls.acme_directory: bad URL "http://127.0.0.1:14000/dir": an ACME directory is served over https`},
		{"not a URL", domains + "  acme_directory: \"https://[::1/dir\"\n",
			`x.yaml:3:19: tls.acme_directory: bad URL "https://[::1/dir"`},
		{"no host", domains + "  acme_directory: https:///dir\n",
			`x.yaml:3:19: tls.acme_directory: bad URL "https:///dir": no host`},
		{"empty directory", domains + "  acme_directory: \"\"\n",
			`x.yaml:3:19: tls.acme_directory: must not be empty`},
		{"unreadable CA file", domains + "  acme_ca_file: " + missing + "\n",
			`x.yaml:3:17: tls.acme_ca_file: cannot read the CA file: open ` + missing + `: no such file or directory`},
		{"empty CA file", domains + "  acme_ca_file: " + empty + "\n",
			`x.yaml:3:17: tls.acme_ca_file: ` + empty + ` holds no PEM certificate`},
		{"CA file without certificates", domains + "  acme_ca_file: " + notPEM + "\n",
			`x.yaml:3:17: tls.acme_ca_file: ` + notPEM + ` holds no PEM certificate`},
		{"directory without domains", "tls:\n  acme_directory: https://acme-staging-v02.api.letsencrypt.org/directory\n",
			`x.yaml:2:19: tls.acme_directory: only applies with tls.acme_domains, which is empty`},
		{"CA file without domains", "tls:\n  acme_ca_file: " + writeCAFile(t) + "\n",
			`x.yaml:2:17: tls.acme_ca_file: only applies with tls.acme_domains, which is empty`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.yaml), "x.yaml")
			if err == nil {
				t.Fatal("no error")
			}
			if msg := err.Error(); !strings.Contains(msg, tc.want) || strings.Count(msg, "\n") > 0 {
				t.Fatalf("error\n%s\nwant exactly one, containing\n%s", msg, tc.want)
			}
		})
	}
}
