package shield

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"

	"github.com/rampart-shield/rampart/internal/config"
	"github.com/rampart-shield/rampart/internal/iplist"
)

// listSet holds the allow and deny sets, each built from the configuration
// and its files, swapped whole when either changes. (Good bots live in the
// challenge's Bypass, which also reads the search engines' JSON range files
// and verifies crawlers by reverse DNS.)
type listSet struct {
	allow, deny atomic.Pointer[iplist.Set]

	mu    sync.Mutex
	cfg   *config.Config
	files map[string]fileState // path -> last good contents
}

type fileState struct {
	prefixes []netip.Prefix
	mtime    int64
	size     int64
}

func newListSet() *listSet {
	l := &listSet{files: map[string]fileState{}}
	empty := iplist.NewSet()
	l.allow.Store(empty)
	l.deny.Store(empty)
	return l
}

func (l *listSet) allowed(ip netip.Addr) bool { return l.allow.Load().Contains(ip) }
func (l *listSet) denied(ip netip.Addr) bool  { return l.deny.Load().Contains(ip) }

// loadListFiles reads every list file a configuration names. Any error
// fails the whole load, naming the file, line and column.
func loadListFiles(cfg *config.Config) (map[string]fileState, error) {
	out := map[string]fileState{}
	var errs []error
	for _, path := range listFiles(cfg) {
		if _, ok := out[path]; ok {
			continue
		}
		fs, err := readListFile(path)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		out[path] = fs
	}
	return out, errors.Join(errs...)
}

func listFiles(cfg *config.Config) []string {
	var all []string
	all = append(all, cfg.Lists.AllowFiles...)
	all = append(all, cfg.Lists.DenyFiles...)
	return all
}

func readListFile(path string) (fileState, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return fileState{}, fmt.Errorf("list file: %w", err)
	}
	ps, err := iplist.LoadFile(path)
	if err != nil {
		return fileState{}, err
	}
	return fileState{prefixes: ps, mtime: fi.ModTime().UnixNano(), size: fi.Size()}, nil
}

// install builds the sets from cfg and the loaded files.
func (l *listSet) install(cfg *config.Config, files map[string]fileState) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.cfg = cfg
	l.files = files
	l.rebuildLocked()
}

func (l *listSet) rebuildLocked() {
	cfg := l.cfg
	build := func(inline []config.CIDR, paths []string) *iplist.Set {
		lists := [][]netip.Prefix{cidrs(inline)}
		for _, p := range paths {
			lists = append(lists, l.files[p].prefixes)
		}
		return iplist.NewSet(lists...)
	}
	l.allow.Store(build(cfg.Lists.Allow, cfg.Lists.AllowFiles))
	l.deny.Store(build(cfg.Lists.Deny, cfg.Lists.DenyFiles))
}

// reloadListFiles rereads the list files that changed on disk; a file with
// errors keeps its previous contents and the errors are logged.
func (s *Shield) reloadListFiles() {
	l := s.lists
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.cfg == nil {
		return
	}
	changed := false
	for _, path := range listFiles(l.cfg) {
		fi, err := os.Stat(path)
		if err != nil {
			continue
		}
		old := l.files[path]
		if fi.ModTime().UnixNano() == old.mtime && fi.Size() == old.size {
			continue
		}
		fs, err := readListFile(path)
		if err != nil {
			s.log.Error("list file not reloaded; its previous contents stay", "file", path, "err", err.Error())
			s.listErrors.Add(1)
			// Remember the bad version so the error is logged once.
			old.mtime, old.size = fi.ModTime().UnixNano(), fi.Size()
			l.files[path] = old
			continue
		}
		l.files[path] = fs
		changed = true
		s.log.Info("list file reloaded", "file", path, "prefixes", len(fs.prefixes))
	}
	if changed {
		l.rebuildLocked()
	}
}

func cidrs(in []config.CIDR) []netip.Prefix {
	out := make([]netip.Prefix, len(in))
	for i, c := range in {
		out[i] = c.Prefix()
	}
	return out
}
