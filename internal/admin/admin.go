// Package admin owns the operators' side of rampart: the admin HTTP API
// (status, blocks, cache purge, key rotation), the /metrics and /healthz
// endpoints, the bearer-token rule (required whenever the listener is not on
// loopback) and the small client the CLI uses to call the API.
package admin

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Block is one entry of the dynamic block list, as the API shows it.
type Block struct {
	CIDR    string    `json:"cidr"`
	Reason  string    `json:"reason"`
	Added   time.Time `json:"added"`
	Expires time.Time `json:"expires"`
}

// Backend is what the admin API operates on; the shield implements it.
type Backend interface {
	// Status returns a JSON-encodable snapshot for GET /api/v1/status.
	Status() any
	Blocks() []Block
	Block(p netip.Prefix, ttl time.Duration, reason string) (Block, error)
	Unblock(p netip.Prefix) bool
	// PurgeCache removes cached entries whose key starts with prefix
	// ("" purges everything) and returns how many.
	PurgeCache(prefix string) (int, error)
	// RotateKeys rotates the challenge signing keys; clearances signed by
	// the previous key stay valid until they expire.
	RotateKeys() error
	// RevokeAll invalidates every clearance and outstanding challenge at
	// once (new key, previous key dropped).
	RevokeAll() error
	// RevokePrefix invalidates the clearances issued to one network.
	RevokePrefix(p netip.Prefix) error
}

// Options configures the admin API.
type Options struct {
	// Listen is the address the server will be bound to; it decides whether
	// a token is required.
	Listen string
	// Token is the bearer token; required when Listen is not loopback.
	Token string
	// Metrics serves /metrics.
	Metrics http.Handler
	// Backend is required.
	Backend Backend
	// Logger receives audit lines for every change made through the API.
	Logger *slog.Logger
}

// Server is the admin API handler.
type Server struct {
	o   Options
	mux *http.ServeMux
}

// MaxBlockTTL caps a block made through the API.
const MaxBlockTTL = 365 * 24 * time.Hour

// ErrTokenRequired is returned by New when the admin listener is not on
// loopback and no token was given.
var ErrTokenRequired = errors.New("admin: a bearer token is required when the admin listener is not on loopback")

// New validates o and builds the API.
func New(o Options) (*Server, error) {
	if o.Backend == nil {
		return nil, errors.New("admin: no backend")
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if !IsLoopback(o.Listen) && o.Token == "" {
		return nil, ErrTokenRequired
	}
	s := &Server{o: o, mux: http.NewServeMux()}
	s.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Write([]byte("ok\n"))
	})
	if o.Metrics != nil {
		s.mux.Handle("GET /metrics", s.auth(o.Metrics))
	}
	s.mux.Handle("GET /api/v1/status", s.auth(http.HandlerFunc(s.status)))
	s.mux.Handle("GET /api/v1/blocks", s.auth(http.HandlerFunc(s.listBlocks)))
	s.mux.Handle("POST /api/v1/blocks", s.auth(http.HandlerFunc(s.addBlock)))
	s.mux.Handle("DELETE /api/v1/blocks/{cidr...}", s.auth(http.HandlerFunc(s.deleteBlock)))
	s.mux.Handle("DELETE /api/v1/cache", s.auth(http.HandlerFunc(s.purge)))
	s.mux.Handle("POST /api/v1/challenge/rotate", s.auth(http.HandlerFunc(s.rotate)))
	s.mux.Handle("POST /api/v1/challenge/revoke", s.auth(http.HandlerFunc(s.revoke)))
	// Profiles of the running shield, for finding where a flood spends CPU.
	s.mux.Handle("GET /debug/pprof/", s.auth(http.HandlerFunc(pprof.Index)))
	s.mux.Handle("GET /debug/pprof/profile", s.auth(http.HandlerFunc(pprof.Profile)))
	s.mux.Handle("GET /debug/pprof/trace", s.auth(http.HandlerFunc(pprof.Trace)))
	return s, nil
}

// ServeHTTP serves the API.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

// IsLoopback reports whether a host:port listens on loopback only.
// "localhost" counts; an empty host (all interfaces) does not.
func IsLoopback(hostport string) bool {
	host, _, err := net.SplitHostPort(hostport)
	if err != nil {
		host = hostport
	}
	if host == "localhost" {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.Unmap().IsLoopback()
}

func (s *Server) auth(next http.Handler) http.Handler {
	if s.o.Token == "" {
		return next
	}
	want := []byte("Bearer " + s.o.Token)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got := []byte(r.Header.Get("Authorization"))
		if subtle.ConstantTimeCompare(got, want) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="rampart"`)
			writeError(w, http.StatusUnauthorized, "a valid bearer token is required")
			return
		}
		next.ServeHTTP(w, r)
	})
}

func (s *Server) status(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, s.o.Backend.Status())
}

func (s *Server) listBlocks(w http.ResponseWriter, r *http.Request) {
	list := s.o.Backend.Blocks()
	if list == nil {
		list = []Block{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"blocks": list})
}

// blockRequest is the body of POST /api/v1/blocks.
type blockRequest struct {
	CIDR   string `json:"cidr"`
	TTL    string `json:"ttl"`
	Reason string `json:"reason"`
}

func (s *Server) addBlock(w http.ResponseWriter, r *http.Request) {
	var req blockRequest
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		writeError(w, http.StatusBadRequest, "bad JSON body: "+err.Error())
		return
	}
	p, err := ParseCIDR(req.CIDR)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	ttl := 10 * time.Minute
	if req.TTL != "" {
		if ttl, err = time.ParseDuration(req.TTL); err != nil || ttl <= 0 || ttl > MaxBlockTTL {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("bad ttl %q: a positive duration up to %v, such as 10m", req.TTL, MaxBlockTTL))
			return
		}
	}
	if len(req.Reason) > 200 {
		writeError(w, http.StatusBadRequest, "reason: at most 200 characters")
		return
	}
	if req.Reason == "" {
		req.Reason = "manual"
	}
	b, err := s.o.Backend.Block(p, ttl, req.Reason)
	if err != nil {
		writeError(w, http.StatusServiceUnavailable, err.Error())
		return
	}
	s.o.Logger.Info("admin: block added", "cidr", b.CIDR, "ttl", ttl.String(), "reason", b.Reason, "from", r.RemoteAddr)
	writeJSON(w, http.StatusCreated, b)
}

func (s *Server) deleteBlock(w http.ResponseWriter, r *http.Request) {
	p, err := ParseCIDR(r.PathValue("cidr"))
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	if !s.o.Backend.Unblock(p) {
		writeError(w, http.StatusNotFound, "no block for "+p.String())
		return
	}
	s.o.Logger.Info("admin: block removed", "cidr", p.String(), "from", r.RemoteAddr)
	writeJSON(w, http.StatusOK, map[string]string{"unblocked": p.String()})
}

func (s *Server) purge(w http.ResponseWriter, r *http.Request) {
	prefix := r.URL.Query().Get("prefix")
	n, err := s.o.Backend.PurgeCache(prefix)
	if err != nil {
		writeError(w, http.StatusServiceUnavailable, err.Error())
		return
	}
	s.o.Logger.Info("admin: cache purged", "prefix", prefix, "entries", n, "from", r.RemoteAddr)
	writeJSON(w, http.StatusOK, map[string]int{"purged": n})
}

func (s *Server) rotate(w http.ResponseWriter, r *http.Request) {
	all := r.URL.Query().Get("revoke_all") == "true"
	rotate := s.o.Backend.RotateKeys
	if all {
		rotate = s.o.Backend.RevokeAll
	}
	if err := rotate(); err != nil {
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	s.o.Logger.Info("admin: challenge keys rotated", "revoke_all", all, "from", r.RemoteAddr)
	writeJSON(w, http.StatusOK, map[string]bool{"rotated": true, "revoked_all": all})
}

func (s *Server) revoke(w http.ResponseWriter, r *http.Request) {
	p, err := ParseCIDR(r.URL.Query().Get("prefix"))
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	if err := s.o.Backend.RevokePrefix(p); err != nil {
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	s.o.Logger.Info("admin: clearances revoked", "prefix", p.String(), "from", r.RemoteAddr)
	writeJSON(w, http.StatusOK, map[string]string{"revoked": p.String()})
}

// ParseCIDR accepts a network or a bare address (as a /32 or /128).
func ParseCIDR(s string) (netip.Prefix, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return netip.Prefix{}, errors.New("cidr is required, such as 203.0.113.7 or 203.0.113.0/24")
	}
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("bad cidr %q", s)
		}
		if p.Addr().Is4In6() && p.Bits() >= 96 {
			p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
		}
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil || a.Zone() != "" {
		return netip.Prefix{}, fmt.Errorf("bad cidr %q: want an address or a network", s)
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}

func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]string{"error": msg})
}

// TokenFile is the name of the generated token file in the state directory.
const TokenFile = "admin.token"

// EnsureToken returns the token stored in dir/admin.token, creating it (32
// random bytes, hex, file mode 0600) when absent.
func EnsureToken(dir string) (string, error) {
	path := filepath.Join(dir, TokenFile)
	if b, err := os.ReadFile(path); err == nil {
		tok := strings.TrimSpace(string(b))
		if len(tok) >= 16 {
			return tok, nil
		}
		return "", fmt.Errorf("admin token file %s is too short", path)
	} else if !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("reading admin token: %w", err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("creating state dir: %w", err)
	}
	var raw [32]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return "", err
	}
	tok := hex.EncodeToString(raw[:])
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return "", fmt.Errorf("writing admin token: %w", err)
	}
	if _, err := f.WriteString(tok + "\n"); err != nil {
		f.Close()
		return "", fmt.Errorf("writing admin token: %w", err)
	}
	return tok, f.Close()
}
