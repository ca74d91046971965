package netx

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"

	"golang.org/x/crypto/acme"
	"golang.org/x/crypto/acme/autocert"
)

// certSource serves certificates from files (reloadable) and/or ACME.
type certSource struct {
	o    TLSOptions
	file atomic.Pointer[tls.Certificate]
	acme *autocert.Manager
}

func newCertSource(o *TLSOptions) (*certSource, error) {
	cs := &certSource{o: *o}
	cs.o.ACMEDomains = slices.Clone(o.ACMEDomains)
	if o.CertFile != "" {
		if err := cs.reload(); err != nil {
			return nil, err
		}
	}
	if len(o.ACMEDomains) > 0 {
		client, err := acmeClient(o)
		if err != nil {
			return nil, err
		}
		cs.acme = &autocert.Manager{
			Prompt:     autocert.AcceptTOS,
			Cache:      autocert.DirCache(acmeCacheDir(o.ACMECacheDir, o.ACMEDirectoryURL)),
			HostPolicy: hostPolicy(o.ACMEDomains),
			Email:      o.ACMEEmail,
			Client:     client,
		}
	}
	return cs, nil
}

// hostPolicy allows exactly names. autocert's HTTP-01 handler checks the
// Host header, which carries a port when the CA validates on a port other
// than 80 (Pebble does; Let's Encrypt always uses 80): the port is dropped
// before the check. SNI names never have one.
func hostPolicy(names []string) autocert.HostPolicy {
	allow := autocert.HostWhitelist(names...)
	return func(ctx context.Context, host string) error {
		if h, _, err := net.SplitHostPort(host); err == nil {
			host = h
		}
		return allow(ctx, host)
	}
}

// acmeClient returns the ACME client for o's directory, trusting the roots
// in o.ACMECAFile besides the system's; nil (autocert's own client for Let's
// Encrypt production) when neither is set.
func acmeClient(o *TLSOptions) (*acme.Client, error) {
	if o.ACMEDirectoryURL == "" && o.ACMECAFile == "" {
		return nil, nil
	}
	c := &acme.Client{DirectoryURL: o.ACMEDirectoryURL}
	if c.DirectoryURL == "" {
		c.DirectoryURL = autocert.DefaultACMEDirectory
	}
	if o.ACMECAFile == "" {
		return c, nil
	}
	data, err := os.ReadFile(o.ACMECAFile)
	if err != nil {
		return nil, fmt.Errorf("netx: read the ACME CA file: %w", err)
	}
	roots, err := x509.SystemCertPool()
	if err != nil {
		roots = x509.NewCertPool() // no system roots: the file's only
	}
	if !roots.AppendCertsFromPEM(data) {
		return nil, fmt.Errorf("netx: the ACME CA file %s holds no PEM certificate", o.ACMECAFile)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}
	c.HTTPClient = &http.Client{Transport: tr}
	return c, nil
}

// acmeCacheDir returns dir for Let's Encrypt production and, for any other
// directory, a subdirectory named after it, HOST+HASH (8 hex digits of the
// URL's SHA-256): a name none of autocert's own files can take (HOST,
// HOST+rsa, acme_account+key, +http-01-TOKEN). So a staging or test CA's
// account and certificates never mix with production's.
func acmeCacheDir(dir, directoryURL string) string {
	if directoryURL == "" || directoryURL == autocert.DefaultACMEDirectory {
		return dir
	}
	host := directoryURL
	if u, err := url.Parse(directoryURL); err == nil && u.Host != "" {
		host = u.Host
	}
	host = strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '.' || r == '-' {
			return r
		}
		return '_'
	}, strings.ToLower(host))
	sum := sha256.Sum256([]byte(directoryURL))
	return filepath.Join(dir, host+"+"+hex.EncodeToString(sum[:4]))
}

// reload reads the certificate files; on error the old pair stays.
func (cs *certSource) reload() error {
	if cs.o.CertFile == "" {
		return nil
	}
	c, err := tls.LoadX509KeyPair(cs.o.CertFile, cs.o.KeyFile)
	if err != nil {
		return fmt.Errorf("netx: load certificate %s / %s: %w", cs.o.CertFile, cs.o.KeyFile, err)
	}
	cs.file.Store(&c)
	return nil
}

func (cs *certSource) isACMEName(name string) bool {
	for _, d := range cs.o.ACMEDomains {
		if d == name {
			return true
		}
	}
	return false
}

func (cs *certSource) getCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	if cs.acme != nil && (cs.isACMEName(hello.ServerName) || slices.Contains(hello.SupportedProtos, acme.ALPNProto)) {
		return cs.acme.GetCertificate(hello)
	}
	if c := cs.file.Load(); c != nil {
		return c, nil
	}
	if cs.acme != nil {
		return cs.acme.GetCertificate(hello)
	}
	return nil, errors.New("netx: no certificate")
}

// tlsConfig builds the server TLS configuration: TLS 1.2+, AEAD-only
// ECDHE suites for TLS 1.2 (TLS 1.3 suites and curves are Go's defaults,
// which include the X25519MLKEM768 hybrid), ALPN h2 and http/1.1 (and
// acme-tls/1 with ACME), and a GetConfigForClient hook that captures the
// ClientHello for fingerprints.
func (s *Server) tlsConfig() *tls.Config {
	minV := s.certs.o.MinVersion
	if minV == 0 {
		minV = tls.VersionTLS12
	}
	protos := []string{"h2", "http/1.1"}
	if s.certs.acme != nil {
		protos = append(protos, acme.ALPNProto)
	}
	return &tls.Config{
		MinVersion: minV,
		CipherSuites: []uint16{
			tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
			tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
			tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
			tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
			tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
			tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
		},
		NextProtos:     protos,
		GetCertificate: s.certs.getCertificate,
		GetConfigForClient: func(hello *tls.ClientHelloInfo) (*tls.Config, error) {
			if rc, ok := hello.Conn.(*rawConn); ok {
				rc.hello = &ClientHello{
					ServerName:        hello.ServerName,
					CipherSuites:      hello.CipherSuites,
					SupportedVersions: hello.SupportedVersions,
					SupportedCurves:   hello.SupportedCurves,
					SupportedPoints:   hello.SupportedPoints,
					SignatureSchemes:  hello.SignatureSchemes,
					SupportedProtos:   hello.SupportedProtos,
					Extensions:        hello.Extensions,
				}
			}
			return nil, nil
		},
	}
}

// ReloadCertificates reads the certificate and key files again (the lead
// calls it on SIGHUP). On error the previous pair keeps being served and the
// error says why. It is a no-op without certificate files and safe for
// concurrent use; new handshakes use the new pair at once.
func (s *Server) ReloadCertificates() error {
	if s.certs == nil {
		return nil
	}
	return s.certs.reload()
}

// ACMEHTTPHandler returns a handler for the plain listener that answers ACME
// HTTP-01 challenges and passes everything else to fallback (nil: redirect
// to https). Without ACME it returns fallback itself.
func (s *Server) ACMEHTTPHandler(fallback http.Handler) http.Handler {
	if s.certs == nil || s.certs.acme == nil {
		if fallback == nil {
			return http.NotFoundHandler()
		}
		return fallback
	}
	return s.certs.acme.HTTPHandler(fallback)
}
