package cache

import (
	"context"
	"log/slog"
	"net/http"
	"strings"
)

// nameMatcher recognises cookie or parameter names: exact, prefix ("name*")
// or suffix ("*name"). It does not allocate.
type nameMatcher struct {
	exact    map[string]struct{}
	prefixes []string
	suffixes []string
}

func newNameMatcher(names []string) nameMatcher {
	m := nameMatcher{exact: make(map[string]struct{})}
	for _, n := range names {
		switch {
		case strings.HasSuffix(n, "*"):
			m.prefixes = append(m.prefixes, strings.TrimSuffix(n, "*"))
		case strings.HasPrefix(n, "*"):
			m.suffixes = append(m.suffixes, strings.TrimPrefix(n, "*"))
		default:
			m.exact[n] = struct{}{}
		}
	}
	return m
}

func (m *nameMatcher) matchName(name string) bool {
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
