package sim

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"sync"

	"github.com/rampart-shield/rampart/internal/demo"
)

// floodInflight bounds the requests one flood source has outstanding; a
// pacing slot that finds them all busy is skipped, so a drowning target
// slows the attack down rather than piling up goroutines.
const floodInflight = 4

// launch assigns addresses and starts the legitimate crowd and every attack
// component of the preset.
func (r *runner) launch(avoid netip.Addr) error {
	legitAddrs, attackAddrs, err := AssignAddrs(r.cfg.Layout, r.cfg.Legit, r.preset.Sources(), r.cfg.Seed, avoid)
	if err != nil {
		return err
	}
	ctx := r.loadCtx
	for i, src := range legitAddrs {
		js := !r.isNoJS(i)
		lat := r.legitJS
		if !js {
			lat = r.legitNoJS
		}
		b := r.newBrowser(roleLegit, i, src, js, lat)
		r.wg.Go(func() { b.visit(ctx) })
	}
	off := 0
	for k, a := range r.preset.Attacks {
		srcs := attackAddrs[off : off+a.Sources]
		for i, src := range srcs {
			idx := off + i
			switch a.Kind {
			case KindGetFlood, KindCacheBust, KindSearchFlood, KindPostFlood,
				KindDDoSia, KindRandom404, KindHeaderRandom, KindLoginFlood, KindPingback, KindHeadFlood, KindCarpet:
				r.wg.Go(func() { r.floodSource(ctx, a, idx, src) })
			case KindSlowloris, KindSlowPost, KindSlowRead:
				for c := range a.Conns {
					r.wg.Go(func() { r.slowSource(ctx, a, idx*64+c, src) })
				}
			case KindH2RapidReset:
				for c := range a.Conns {
					r.wg.Go(func() { r.rapidResetSource(ctx, a, idx*64+c, src) })
				}
			case KindBrowserBotnet:
				b := r.newBrowser(roleAttack, idx, src, true, nil)
				r.wg.Go(func() { b.botnet(ctx, a) })
			default:
				return fmt.Errorf("preset %s component %d: unknown attack kind %q", r.preset.Name, k, a.Kind)
			}
		}
		off += a.Sources
	}
	return nil
}

// noJSCount is how many legitimate visitors do not run JavaScript.
func (r *runner) noJSCount() int {
	return int(float64(r.cfg.Legit)*r.cfg.NoJSShare + 0.5)
}

// isNoJS spreads the no-JS visitors evenly over the visitor indexes.
func (r *runner) isNoJS(i int) bool {
	n, l := r.noJSCount(), r.cfg.Legit
	return l > 0 && (i*n)/l != ((i+1)*n)/l
}

// floodSource sends the requests of one flood address at a.Rate per second
// (on a's schedule) until ctx ends. Answers are read; redirects are not
// followed.
func (r *runner) floodSource(ctx context.Context, a Attack, idx int, src netip.Addr) {
	tr := r.transport(src, floodInflight)
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: r.cfg.AttackTimeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	rng := rand.New(rand.NewPCG(r.cfg.Seed, uint64(roleAttack)<<32|uint64(idx)))
	id := newFloodIdentity(a, idx, rng)
	sem := make(chan struct{}, floodInflight)
	var wg sync.WaitGroup
	defer wg.Wait()
	r.paceAttack(ctx, a, id.rate, rng, func(wave int) bool {
		select {
		case sem <- struct{}{}:
		default:
			return true
		}
		if !r.take() {
			<-sem
			return false
		}
		r.attackSent.Add(1)
		req, err := r.floodRequest(ctx, a, rng, id, wave)
		if err != nil {
			<-sem
			r.log.Error("building a flood request", "kind", a.Kind, "err", err)
			return false
		}
		wg.Go(func() {
			defer func() { <-sem }()
			resp, err := client.Do(req)
			if err != nil {
				if ctx.Err() == nil {
					r.record(roleAttack, nil, err)
				}
				return
			}
			_, err = io.Copy(io.Discard, io.LimitReader(resp.Body, maxBody))
			resp.Body.Close()
			if err != nil && ctx.Err() != nil {
				return
			}
			r.record(roleAttack, resp, err)
		})
		return true
	})
}

// commentBody is the post-flood's 1 KiB form body.
var commentBody = []byte("c=" + strings.Repeat("spam", 255) + "xx")

// floodRequest builds one request of a flood. The first floods send a
// browser's User-Agent and Accept headers but none of the Sec-Fetch
// headers, as common flood tools do; the campaign techniques have shapes of
// their own (campaignRequest).
func (r *runner) floodRequest(ctx context.Context, a Attack, rng *rand.Rand, id *floodIdentity, wave int) (*http.Request, error) {
	method, path := http.MethodGet, a.Path
	prof := id.prof
	var body io.Reader
	switch a.Kind {
	case KindGetFlood, KindCacheBust, KindSearchFlood, KindPostFlood:
	default:
		return r.campaignRequest(ctx, a, rng, id, wave)
	}
	switch a.Kind {
	case KindCacheBust:
		path = "/"
		if n := rng.IntN(demo.DefaultArticles + 1); n > 0 {
			path = fmt.Sprintf("/news/%d", n)
		}
		path += fmt.Sprintf("?%s=%x", randomKey(rng), rng.Uint64())
	case KindSearchFlood:
		path = fmt.Sprintf("%s?q=%s+%x", a.Path, url.QueryEscape(searchWords[rng.IntN(len(searchWords))]), rng.Uint32())
	case KindPostFlood:
		method = http.MethodPost
		body = bytes.NewReader(commentBody)
	}
	req, err := http.NewRequestWithContext(ctx, method, r.target.Base()+path, body)
	if err != nil {
		return nil, err
	}
	req.Header.Set("User-Agent", prof.ua)
	req.Header.Set("Accept", prof.acceptNav)
	req.Header.Set("Accept-Language", prof.lang)
	req.Header.Set("Accept-Encoding", "gzip, deflate, br")
	if body != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	req.Header.Set(demo.RoleHeader, roleNames[roleAttack])
	return req, nil
}

var bustKeys = []string{"v", "_", "cb", "t", "nocache", "rnd", "ts", "id"}

// randomKey is a query parameter name: a common cache-buster half of the
// time, random letters otherwise.
func randomKey(rng *rand.Rand) string {
	if rng.IntN(2) == 0 {
		return bustKeys[rng.IntN(len(bustKeys))]
	}
	var b [6]byte
	for i := range b {
		b[i] = byte('a' + rng.IntN(26))
	}
	return string(b[:])
}
