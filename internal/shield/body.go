package shield

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"sync"
	"sync/atomic"

	"github.com/rampart-shield/rampart/internal/netx"
)

// bodyBuffer reads request bodies completely before the request goes on to
// the origin (up to a per-request size and a global budget), so a slow
// client never holds an origin worker: the origin only ever sees whole
// bodies, the way nginx's proxy_request_buffering works. Larger bodies, and
// bodies arriving while the budget is spent, stream.
type bodyBuffer struct {
	reserved atomic.Int64
	streamed atomic.Uint64
	pool     sync.Pool
}

// buffer replaces r.Body with an in-memory copy when it fits. It returns a
// release func (never nil) and false when it has already answered the
// request (the body was too slow, too large or broken).
func (b *bodyBuffer) buffer(w http.ResponseWriter, r *http.Request, limit, total int64) (release func(), ok bool) {
	nothing := func() {}
	if r.Body == nil || r.Body == http.NoBody || limit <= 0 || r.ContentLength == 0 {
		return nothing, true
	}
	want := r.ContentLength
	if want < 0 || want > limit {
		if want > limit {
			b.streamed.Add(1)
			return nothing, true
		}
		want = limit // chunked: reserve the most it may take
	}
	if b.reserved.Add(want) > total {
		b.reserved.Add(-want)
		b.streamed.Add(1)
		return nothing, true
	}
	buf, _ := b.pool.Get().(*bytes.Buffer)
	if buf == nil {
		buf = new(bytes.Buffer)
	}
	buf.Reset()
	release = func() {
		b.reserved.Add(-want)
		if buf.Cap() <= 64<<10 {
			b.pool.Put(buf)
		}
	}
	_, err := buf.ReadFrom(io.LimitReader(r.Body, limit+1))
	switch {
	case netx.IsBodyTooSlow(err):
		netx.WriteMitigated(w, r, http.StatusRequestTimeout, netx.ReasonBodyTooSlow, true)
		return release, false
	case netx.IsBodyTooLarge(err):
		netx.WriteMitigated(w, r, http.StatusRequestEntityTooLarge, netx.ReasonBodyTooLarge, true)
		return release, false
	case err != nil && !errors.Is(err, io.EOF):
		netx.WriteMitigated(w, r, http.StatusBadRequest, "bad-body", true)
		return release, false
	}
	if int64(buf.Len()) > limit {
		// A chunked body longer than the buffer: send what was read, then
		// stream the rest.
		r.Body = struct {
			io.Reader
			io.Closer
		}{io.MultiReader(bytes.NewReader(buf.Bytes()), r.Body), r.Body}
		return release, true
	}
	r.Body.Close()
	data := buf.Bytes()
	r.ContentLength = int64(len(data))
	r.TransferEncoding = nil
	r.Body = io.NopCloser(bytes.NewReader(data))
	r.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil }
	return release, true
}
