package iplist

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"sync"
	"time"
)

const (
	// DefaultWatchInterval is how often a Watcher polls by default.
	DefaultWatchInterval = 5 * time.Second
	// MinWatchInterval is the shortest poll interval a Watcher accepts.
	MinWatchInterval = 10 * time.Millisecond
	// DefaultMaxListBytes is the default size limit of a watched file.
	DefaultMaxListBytes = 64 << 20
)

// WatcherOptions configures a Watcher.
type WatcherOptions struct {
	// Paths are the list files to watch; at least one.
	Paths []string
	// Interval is the time between polls; default 5s, at least 10ms.
	Interval time.Duration
	// MaxBytes is the largest file accepted; larger files are reported
	// through OnError and not loaded. Default 64 MiB.
	MaxBytes int64
	// OnChange receives a file's complete new list each time its content
	// changes and parses without error (and on the first poll). Required.
	OnChange func(path string, prefixes []netip.Prefix)
	// OnError receives the error when a file cannot be read, is too
	// large, or does not parse (all its "file:line:col: message" errors,
	// joined). The previous list stays in force: OnChange is not called.
	// The same error is reported once, not on every poll. Optional.
	OnError func(path string, err error)
}

// Watcher reloads list files when they change. Each poll it compares every
// file's size and modification time with the last poll; when they differ it
// reads the file and compares a SHA-256 of the content, so a touch without a
// change delivers nothing. A changed file is parsed with ParseList and
// delivered whole through OnChange, or, if any line is wrong, reported
// through OnError while the old list stays in force. A file that changes
// while it is being read is read again at the next poll; writing list files
// atomically (write a temporary file, then rename it over the old one) is
// still the safe way to update them.
//
// Callbacks run on the polling goroutine, one at a time. Poll and Run may
// be called from different goroutines; polls do not overlap.
type Watcher struct {
	o     WatcherOptions
	mu    sync.Mutex // serialises polls; guards files
	files []watchedFile
}

type watchedFile struct {
	path    string
	known   bool // size and mtime hold the last fully read version
	size    int64
	mtime   time.Time
	hash    [sha256.Size]byte
	hashed  bool
	lastErr string // the error last reported, to report it once
}

// NewWatcher validates o and returns a watcher; nothing is read until Poll
// or Run.
func NewWatcher(o WatcherOptions) (*Watcher, error) {
	if len(o.Paths) == 0 {
		return nil, errors.New("iplist: new watcher: no paths")
	}
	if o.OnChange == nil {
		return nil, errors.New("iplist: new watcher: OnChange is required")
	}
	if o.Interval == 0 {
		o.Interval = DefaultWatchInterval
	}
	if o.Interval < MinWatchInterval {
		return nil, fmt.Errorf("iplist: new watcher: interval %v below %v", o.Interval, MinWatchInterval)
	}
	if o.MaxBytes == 0 {
		o.MaxBytes = DefaultMaxListBytes
	}
	if o.MaxBytes < 0 {
		return nil, fmt.Errorf("iplist: new watcher: max bytes %d is negative", o.MaxBytes)
	}
	w := &Watcher{o: o}
	for _, p := range o.Paths {
		if p == "" {
			return nil, errors.New("iplist: new watcher: empty path")
		}
		w.files = append(w.files, watchedFile{path: p})
	}
	return w, nil
}

// Run polls at once and then every Interval until ctx is done; it returns
// ctx.Err().
func (w *Watcher) Run(ctx context.Context) error {
	t := time.NewTicker(w.o.Interval)
	defer t.Stop()
	for {
		w.Poll()
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}

// Poll checks every file once and calls the callbacks for those that
// changed. Use it for a reload on demand (SIGHUP) or in tests.
func (w *Watcher) Poll() {
	w.mu.Lock()
	defer w.mu.Unlock()
	for i := range w.files {
		w.poll(&w.files[i])
	}
}

func (w *Watcher) poll(f *watchedFile) {
	fi, err := os.Stat(f.path)
	if err != nil {
		f.known = false
		w.fail(f, fmt.Errorf("iplist: watch: %w", err))
		return
	}
	if f.known && fi.Size() == f.size && fi.ModTime().Equal(f.mtime) {
		return
	}
	data, err := w.read(f.path)
	if err != nil {
		f.known = false
		w.fail(f, err)
		return
	}
	if after, err := os.Stat(f.path); err != nil || after.Size() != fi.Size() || !after.ModTime().Equal(fi.ModTime()) {
		f.known = false // being written: read it again next poll
		return
	}
	f.known, f.size, f.mtime = true, fi.Size(), fi.ModTime()
	f.lastErr = "" // readable again: a later failure is news
	sum := sha256.Sum256(data)
	if f.hashed && sum == f.hash {
		return // touched, or rewritten with the same content
	}
	f.hash, f.hashed = sum, true
	prefixes, errs := ParseList(bytes.NewReader(data), f.path)
	if len(errs) > 0 {
		w.fail(f, errors.Join(errs...))
		return
	}
	w.o.OnChange(f.path, prefixes)
}

func (w *Watcher) read(path string) ([]byte, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("iplist: watch: %w", err)
	}
	defer fh.Close()
	data, err := io.ReadAll(io.LimitReader(fh, w.o.MaxBytes+1))
	if err != nil {
		return nil, fmt.Errorf("iplist: watch: read %s: %w", path, err)
	}
	if int64(len(data)) > w.o.MaxBytes {
		return nil, fmt.Errorf("iplist: watch: %s is larger than %d bytes", path, w.o.MaxBytes)
	}
	return data, nil
}

// fail reports err through OnError unless it is the error last reported.
// A different failure (or a success in between) reports again.
func (w *Watcher) fail(f *watchedFile, err error) {
	msg := err.Error()
	if msg == f.lastErr {
		return
	}
	f.lastErr = msg
	if w.o.OnError != nil {
		w.o.OnError(f.path, err)
	}
}
