package cache

import (
	"context"
	"log/slog"
	"net/http"
	"strings"
)

// nameMatcher recognises cookie or parameter names: exact, prefix ("name*")
// or suffix ("*name"). Without suffix patterns, a name whose first byte no
// exact name or prefix starts with is rejected without a map lookup. It does
// not allocate.
type nameMatcher struct {
	exact    map[string]struct{}
	prefixes []string
	suffixes []string
	first    [4]uint64 // first bytes of exact names and prefixes
	any      bool      // an empty prefix ("*"): everything matches
}

func newNameMatcher(names []string) nameMatcher {
	m := nameMatcher{exact: make(map[string]struct{})}
	for _, n := range names {
		switch {
		case strings.HasSuffix(n, "*"):
			p := strings.TrimSuffix(n, "*")
			m.prefixes = append(m.prefixes, p)
			m.addFirst(p)
		case strings.HasPrefix(n, "*"):
			m.suffixes = append(m.suffixes, strings.TrimPrefix(n, "*"))
		default:
			m.exact[n] = struct{}{}
			m.addFirst(n)
		}
	}
	return m
}

func (m *nameMatcher) addFirst(s string) {
	if s == "" {
		m.any = true
		return
	}
	m.first[s[0]>>6] |= 1 << (s[0] & 63)
}

func (m *nameMatcher) matchName(name string) bool {
	if len(m.suffixes) == 0 && !m.any && (name == "" || m.first[name[0]>>6]&(1<<(name[0]&63)) == 0) {
		return name == "" && m.hasExact("")
	}
	if _, ok := m.exact[name]; ok {
		return true
	}
	for _, p := range m.prefixes {
		if strings.HasPrefix(name, p) {
			return true
		}
	}
	for _, s := range m.suffixes {
		if strings.HasSuffix(name, s) {
			return true
		}
	}
	return false
}

func (m *nameMatcher) hasExact(name string) bool {
	_, ok := m.exact[name]
	return ok
}

// hasSession reports whether any Cookie header value names a session cookie.
// It parses "a=1; b=2" loosely (as browsers send it) and does not allocate.
func (m *nameMatcher) hasSession(cookies []string) bool {
	for _, v := range cookies {
		for v != "" {
			var pair string
			pair, v, _ = strings.Cut(v, ";")
			name, _, _ := strings.Cut(pair, "=")
			name = strings.TrimSpace(name)
			if name != "" && m.matchName(name) {
				return true
			}
		}
	}
	return false
}

// private reports whether r belongs to a logged-in user: it carries
// Authorization or a session cookie. Such requests never touch the cache.
func (c *Cache) private(r *http.Request) bool {
	if len(r.Header["Authorization"]) > 0 {
		return true
	}
	if ck := r.Header["Cookie"]; len(ck) > 0 {
		return c.sessions.hasSession(ck)
	}
	return false
}

// slogLogger adapts *slog.Logger to otter's Logger.
type slogLogger struct{ l *slog.Logger }

func (s slogLogger) Warn(ctx context.Context, msg string, err error) {
	s.l.WarnContext(ctx, "cache store: "+msg, "err", err)
}

func (s slogLogger) Error(ctx context.Context, msg string, err error) {
	s.l.ErrorContext(ctx, "cache store: "+msg, "err", err)
}
