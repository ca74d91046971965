package iplist

import (
	"context"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// recorder collects a watcher's callbacks, in order, on one channel.
type recorder struct {
	events chan event
}

type event struct {
	change string // "file=prefix,prefix", or "" for an error
	err    error
}

func newRecorder() *recorder { return &recorder{events: make(chan event, 100)} }

func (r *recorder) opts(paths ...string) WatcherOptions {
	return WatcherOptions{
		Paths:    paths,
		Interval: MinWatchInterval,
		OnChange: func(path string, ps []netip.Prefix) {
			var s []string
			for _, p := range ps {
				s = append(s, p.String())
			}
			r.events <- event{change: filepath.Base(path) + "=" + strings.Join(s, ",")}
		},
		OnError: func(path string, err error) { r.events <- event{err: err} },
	}
}

// next waits (up to a deadline) for the next callback.
func (r *recorder) next(t *testing.T) event {
	t.Helper()
	select {
	case ev := <-r.events:
		return ev
	case <-time.After(10 * time.Second):
		t.Fatal("no callback within 10s")
		return event{}
	}
}

// expectNothing checks that no callback has run.
func (r *recorder) expectNothing(t *testing.T, when string) {
	t.Helper()
	select {
	case ev := <-r.events:
		t.Fatalf("%s: unexpected callback %+v", when, ev)
	default:
	}
}

func (r *recorder) expectChange(t *testing.T, want string) {
	t.Helper()
	if ev := r.next(t); ev.err != nil || ev.change != want {
		t.Fatalf("callback %+v, want change %q", ev, want)
	}
}

func (r *recorder) expectError(t *testing.T, contains ...string) {
	t.Helper()
	ev := r.next(t)
	if ev.err == nil {
		t.Fatalf("change %q, want an error", ev.change)
	}
	for _, c := range contains {
		if !strings.Contains(ev.err.Error(), c) {
			t.Fatalf("error %q does not contain %q", ev.err, c)
		}
	}
}

// rewrite replaces a file's content atomically (a temporary file renamed
// over it, as operators are told to do), with an mtime a second later than
// the old one so the change is seen even with coarse timestamps.
func rewrite(t *testing.T, path, content string) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	touch(t, tmp, fi.ModTime().Add(time.Second))
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

func touch(t *testing.T, path string, mtime time.Time) {
	t.Helper()
	if err := os.Chtimes(path, mtime, mtime); err != nil {
		t.Fatal(err)
	}
}

func TestNewWatcherValidation(t *testing.T) {
	ok := func(string, []netip.Prefix) {}
	for name, o := range map[string]WatcherOptions{
		"no paths":       {OnChange: ok},
		"empty path":     {Paths: []string{""}, OnChange: ok},
		"no OnChange":    {Paths: []string{"x"}},
		"short interval": {Paths: []string{"x"}, OnChange: ok, Interval: time.Millisecond},
		"negative max":   {Paths: []string{"x"}, OnChange: ok, MaxBytes: -1},
	} {
		if _, err := NewWatcher(o); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	w, err := NewWatcher(WatcherOptions{Paths: []string{"x"}, OnChange: ok})
	if err != nil || w.o.Interval != DefaultWatchInterval || w.o.MaxBytes != DefaultMaxListBytes {
		t.Errorf("defaults: %+v, %v", w, err)
	}
}

func TestWatcherPoll(t *testing.T) {
	dir := t.TempDir()
	path := writeFile(t, dir, "deny.txt", "10.0.0.0/8\n")
	rec := newRecorder()
	w, err := NewWatcher(rec.opts(path))
	if err != nil {
		t.Fatal(err)
	}

	w.Poll()
	rec.expectChange(t, "deny.txt=10.0.0.0/8")
	w.Poll()
	rec.expectNothing(t, "unchanged file")

	rewrite(t, path, "10.0.0.0/8\n192.0.2.0/24\n")
	w.Poll()
	rec.expectChange(t, "deny.txt=10.0.0.0/8,192.0.2.0/24")

	// A touch without a change of content delivers nothing.
	fi, _ := os.Stat(path)
	touch(t, path, fi.ModTime().Add(time.Second))
	w.Poll()
	rec.expectNothing(t, "touched file")

	// A bad file is reported with file:line:col and the old list stays
	// (no OnChange); the error is reported once.
	rewrite(t, path, "10.0.0.0/8\n192.0.2.0/33\n")
	w.Poll()
	rec.expectError(t, path+":2:11: prefix length 33 exceeds 32")
	w.Poll()
	rec.expectNothing(t, "same bad file")
	fi, _ = os.Stat(path)
	touch(t, path, fi.ModTime().Add(time.Second))
	w.Poll()
	rec.expectNothing(t, "same bad file, touched")

	// Fixing it delivers the new list.
	rewrite(t, path, "198.51.100.0/24\n")
	w.Poll()
	rec.expectChange(t, "deny.txt=198.51.100.0/24")

	// A vanished file is an error, reported once; its return is a change.
	if err := os.Rename(path, path+".old"); err != nil {
		t.Fatal(err)
	}
	w.Poll()
	rec.expectError(t, "deny.txt")
	w.Poll()
	rec.expectNothing(t, "still missing")
	writeFile(t, dir, "deny.txt", "203.0.113.0/24\n")
	w.Poll()
	rec.expectChange(t, "deny.txt=203.0.113.0/24")
}

func TestWatcherTooLarge(t *testing.T) {
	path := writeFile(t, t.TempDir(), "big.txt", strings.Repeat("10.0.0.0/8\n", 100))
	rec := newRecorder()
	o := rec.opts(path)
	o.MaxBytes = 500
	w, err := NewWatcher(o)
	if err != nil {
		t.Fatal(err)
	}
	w.Poll()
	rec.expectError(t, "larger than 500 bytes")
}

func TestWatcherRun(t *testing.T) {
	dir := t.TempDir()
	a := writeFile(t, dir, "a.txt", "10.0.0.0/8\n")
	b := writeFile(t, dir, "b.txt", "bogus\n")
	rec := newRecorder()
	w, err := NewWatcher(rec.opts(a, b))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()

	rec.expectChange(t, "a.txt=10.0.0.0/8")
	rec.expectError(t, b+":1:1: bad address")

	rewrite(t, a, "2001:db8::/32\n")
	rec.expectChange(t, "a.txt=2001:db8::/32")
	rewrite(t, b, "192.0.2.1\n")
	rec.expectChange(t, "b.txt=192.0.2.1/32")

	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Run returned %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not stop")
	}
}
