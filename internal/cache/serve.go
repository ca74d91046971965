package cache

import (
	"bytes"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Rampart-Cache values. Shared slices: handlers downstream replace header
// slices or append to them (which copies, as len == cap), never write into
// them.
var (
	hdrHit    = []string{"HIT"}
	hdrMiss   = []string{"MISS"}
	hdrStale  = []string{"STALE"}
	hdrBypass = []string{"BYPASS"}
)

// ageValues holds the Age header values of the first ten minutes, so that a
// hit does not format a number.
var ageValues = func() [600][]string {
	var a [600][]string
	for i := range a {
		a[i] = []string{strconv.Itoa(i)}
	}
	return a
}()

func ageValue(d int64) []string {
	s := d / int64(time.Second)
	if s < 0 {
		s = 0
	}
	if s < int64(len(ageValues)) {
		return ageValues[s]
	}
	return []string{strconv.FormatInt(s, 10)}
}

// serve writes e as the response to r: its headers, Age, Rampart-Cache and
// its body (none for HEAD). It answers 304 to a conditional request that
// matches e's validators and serves ranges of a 200 with http.ServeContent.
func (c *Cache) serve(w http.ResponseWriter, r *http.Request, e *entry, label []string, now int64) {
	h := w.Header()
	for _, f := range e.hdr {
		h[f.name] = f.values
	}
	h["Age"] = ageValue(now - e.born)
	h["Rampart-Cache"] = label
	if e.status == http.StatusOK {
		if notModified(r, e) {
			delete(h, "Content-Length")
			delete(h, "Content-Type")
			delete(h, "Content-Encoding")
			w.WriteHeader(http.StatusNotModified)
			return
		}
		if len(r.Header["Range"]) > 0 {
			delete(h, "Content-Length")
			http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(e.body))
			return
		}
	}
	w.WriteHeader(e.status)
	if r.Method != http.MethodHead && len(e.body) > 0 {
		_, _ = w.Write(e.body)
	}
}

// notModified evaluates If-None-Match (weak comparison), or failing that
// If-Modified-Since, against e (RFC 9110 §13.2.2).
func notModified(r *http.Request, e *entry) bool {
	if inm := r.Header["If-None-Match"]; len(inm) > 0 {
		return e.etag != "" && etagMatches(inm, e.etag)
	}
	ims := r.Header["If-Modified-Since"]
	if len(ims) == 0 || e.lastMod == "" {
		return false
	}
	since, err := http.ParseTime(ims[0])
	if err != nil {
		return false
	}
	mod, err := http.ParseTime(e.lastMod)
	return err == nil && !mod.After(since)
}

func etagMatches(values []string, etag string) bool {
	etag = strings.TrimPrefix(etag, "W/")
	for _, v := range values {
		for v != "" {
			var t string
			t, v, _ = strings.Cut(v, ",")
			t = strings.TrimSpace(t)
			if t == "*" || strings.TrimPrefix(t, "W/") == etag {
				return true
			}
		}
	}
	return false
}

// discardWriter is the client of a background refresh.
type discardWriter struct{ h http.Header }

func (d *discardWriter) Header() http.Header         { return d.h }
func (d *discardWriter) Write(p []byte) (int, error) { return len(p), nil }
func (d *discardWriter) WriteHeader(int)             {}
