package cache

import (
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
	"unsafe"
)

// Kinds of stored values.
const (
	// kindResponse is a stored response.
	kindResponse uint8 = iota
	// kindVary marks a URL whose responses vary: the response itself is
	// stored under the variant key built from varyNames.
	kindVary
	// kindPass marks a key whose response could not be stored: requests go
	// to the origin without coalescing until passUntil.
	kindPass
)

// entryOverhead is what an entry costs beyond its key, headers and body
// (which are weighed at their allocated sizes): the entry struct, otter's
// node, hash-table slot and eviction bookkeeping. Measured by
// TestMemoryBoundedByMaxBytes and BenchmarkMemoryPerEntry, rounded up.
const entryOverhead = 320

// headerFieldSize is the size of a headerField.
const headerFieldSize = int(unsafe.Sizeof(headerField{}))

// sizeClasses are the Go allocator's sizes for small pointer-free objects,
// learned once from append (which rounds a new slice's capacity up to its
// size class), so that weights count what an allocation really takes.
var sizeClasses = func() []int {
	var cs []int
	for n := 1; n <= 32<<10; {
		c := cap(append([]byte(nil), make([]byte, n)...))
		cs = append(cs, c)
		n = c + 1
	}
	return cs
}()

// allocSize is the heap an allocation of n bytes takes: its size class, or
// whole 8 KiB pages for large objects.
func allocSize(n int) int {
	if n <= 0 {
		return 0
	}
	if n > sizeClasses[len(sizeClasses)-1] {
		return (n + 8191) &^ 8191
	}
	i, _ := slices.BinarySearch(sizeClasses, n)
	return sizeClasses[i]
}

// headerField is one stored header; values has len == cap so that a handler
// appending to it copies instead of writing into the shared array.
type headerField struct {
	name   string
	values []string
}

// entry is an immutable stored value (only refreshing and variants change).
type entry struct {
	key     string
	kind    uint8
	status  int
	hdr     []headerField
	body    []byte
	etag    string
	lastMod string
	// varyNames are the canonical names of the Vary'd headers, for a
	// response that varies and for a kindVary marker.
	varyNames []string
	freshness
	passUntil int64
	weight    uint32
	// digest is a hash of the body, for learning which parameters change
	// a page (0: not computed).
	digest uint64

	refreshing atomic.Bool  // a background refresh runs for this copy
	variants   atomic.Int32 // kindVary: variants stored
}

func (e *entry) fresh(now int64) bool { return now < e.freshUntil }

// staleServable reports whether a stale copy may be served at once (with a
// background refresh): within stale-while-revalidate, or in under_attack
// mode within stale-if-error.
func (e *entry) staleServable(now int64, underAttack bool) bool {
	return now < e.swrUntil || (underAttack && now < e.sieUntil)
}

// usableOnError reports whether the copy may replace an origin failure.
func (e *entry) usableOnError(now int64) bool { return e.kind == kindResponse && now < e.sieUntil }

// hop-by-hop and rampart's own headers, never stored.
var unstoredHeaders = map[string]bool{
	"Connection": true, "Keep-Alive": true, "Proxy-Connection": true, "Proxy-Authenticate": true,
	"Proxy-Authorization": true, "Te": true, "Trailer": true, "Transfer-Encoding": true, "Upgrade": true,
	"Age": true, "Set-Cookie": true, "Rampart-Cache": true, "Rampart-Mitigated": true, "Content-Length": true,
}

// newResponseEntry builds the entry of a response; the body is kept, not
// copied.
func newResponseEntry(key string, status int, h http.Header, body []byte, f freshness, varyNames []string) *entry {
	return buildEntry(key, status, h, body, f, varyNames, false)
}

// newSharedEntry builds the entry of a 5xx handed to the followers of a
// flight and not stored: it keeps rampart's own Rampart-Mitigated.
func newSharedEntry(key string, status int, h http.Header, body []byte, born int64) *entry {
	return buildEntry(key, status, h, body, freshness{born: born}, nil, true)
}

func buildEntry(key string, status int, h http.Header, body []byte, f freshness, varyNames []string, shared bool) *entry {
	e := &entry{key: key, kind: kindResponse, status: status, body: body, freshness: f, varyNames: varyNames}
	skip := func(k string) bool {
		if shared && k == "Rampart-Mitigated" {
			return false
		}
		return unstoredHeaders[k] || strings.HasPrefix(k, http.TrailerPrefix)
	}
	n := 0
	for k := range h {
		if !skip(k) {
			n++
		}
	}
	e.hdr = make([]headerField, 0, n+1)
	// Everything the entry holds, at its allocated size: the key, the body,
	// the header slice, and per field its name, its value slice and the
	// values (shared strings are counted too: they live as long as the
	// entry).
	size := entryOverhead + allocSize(len(key)) + allocSize(cap(body)) + allocSize((n+1)*headerFieldSize)
	for k, vv := range h {
		if skip(k) || len(vv) == 0 {
			continue
		}
		vals := make([]string, len(vv))
		copy(vals, vv)
		e.hdr = append(e.hdr, headerField{name: k, values: vals})
		size += allocSize(len(k)) + allocSize(16*len(vv))
		for _, v := range vv {
			size += allocSize(len(v))
		}
	}
	if status != http.StatusNoContent && status != http.StatusNotModified {
		cl := strconv.Itoa(len(body))
		e.hdr = append(e.hdr, headerField{name: "Content-Length", values: []string{cl}})
		size += 16 + allocSize(len(cl))
	}
	e.etag = h.Get("Etag")
	e.lastMod = h.Get("Last-Modified")
	size += allocSize(16 * len(varyNames))
	for _, n := range varyNames {
		size += allocSize(len(n))
	}
	e.weight = uint32(min(size, 1<<31))
	return e
}

// mergedHeader returns the headers of e with those of a 304 answer to its
// validators merged over them (RFC 9111 §4.3.4).
func (e *entry) mergedHeader(h304 http.Header) http.Header {
	h := make(http.Header, len(e.hdr)+len(h304))
	for _, fld := range e.hdr {
		h[fld.name] = fld.values
	}
	for k, vv := range h304 {
		if k != "Content-Length" {
			h[k] = vv
		}
	}
	return h
}

// header rebuilds the stored headers as an http.Header (for freshness).
func (e *entry) header() http.Header {
	h := make(http.Header, len(e.hdr))
	for _, f := range e.hdr {
		h[f.name] = f.values
	}
	return h
}

func newVaryEntry(key string, names []string, f freshness, variants int32) *entry {
	e := &entry{key: key, kind: kindVary, varyNames: names, freshness: f}
	e.variants.Store(variants)
	size := entryOverhead + allocSize(len(key)) + allocSize(16*len(names))
	for _, n := range names {
		size += allocSize(len(n))
	}
	e.weight = uint32(size)
	return e
}

func newPassEntry(key string, now int64, d time.Duration) *entry {
	until := now + int64(d)
	return &entry{
		key: key, kind: kindPass, passUntil: until,
		freshness: freshness{born: now, freshUntil: until},
		weight:    uint32(entryOverhead + allocSize(len(key))),
	}
}
