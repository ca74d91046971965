package challenge

import (
	"encoding/binary"
	"io"
	"net/http"
	"net/netip"
	"strconv"

	"github.com/rampart-shield/rampart/internal/verdict"
)

var (
	hdrMitigatedCheck = []string{"cookie-check"}
	checkBody         = []byte("Checking that your browser keeps cookies: you are being sent back to the page.\n")
	checkRefusedBody  = []byte("403 Forbidden: this site asks visitors to accept cookies while it is under attack.\n" +
		"Turn cookies on for this site and load the page again.\n")
)

// CookieCheck answers a request that must show its client keeps cookies:
// 307 Temporary Redirect back to the same URL (so a browser repeats it,
// method and body included) with a cookie-check token in the clearance
// cookie. A browser, with JavaScript or without, comes straight back with
// the token and passes; a flood tool that keeps no cookies does not. The
// token is bound like a clearance (network, User-Agent, lifetime of the
// mode) but satisfies only check rules, never a challenge. When AllowCheck
// says the client has had its share of checks (it does not keep cookies,
// or loops), the answer is a short 403 that says cookies are needed. Both
// answers carry Rampart-Mitigated: cookie-check and are never stored.
func (s *Service) CookieCheck(w http.ResponseWriter, r *http.Request, ip netip.Addr, mode verdict.Mode) {
	h := w.Header()
	h["Cache-Control"] = hdrNoStore
	h["X-Content-Type-Options"] = hdrNoSniff
	h["Rampart-Mitigated"] = hdrMitigatedCheck
	h["Content-Type"] = hdrText
	if s.o.AllowCheck != nil && !s.o.AllowCheck(ip) {
		s.checksRefused.Add(1)
		h["Content-Length"] = []string{strconv.Itoa(len(checkRefusedBody))}
		w.WriteHeader(http.StatusForbidden)
		if r.Method != http.MethodHead {
			w.Write(checkRefusedBody)
		}
		return
	}
	now := s.o.Now()
	var t token
	var id [8]byte
	if _, err := io.ReadFull(s.o.Rand, id[:]); err != nil {
		s.o.Logger.Error("challenge: reading token id", "err", err)
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	}
	t.id = binary.BigEndian.Uint64(id[:])
	t.setSlot(ip, s.o.PrefixV4Bits, s.o.PrefixV6Bits)
	t.flags |= flagCheck
	t.issued = now.UnixNano()
	t.expires = now.Add(s.o.ClearanceTTL[clampMode(mode)]).Unix()
	var ua string
	if v := r.Header["User-Agent"]; len(v) > 0 {
		ua = v[0]
	}
	t.ua = s.uaHash(ua)
	s.setCookie(w, r, redeemed{cookie: s.signToken(&t, now), token: t})
	s.checksIssued.Add(1)
	h["Location"] = []string{returnURL(r)}
	h["Content-Length"] = []string{strconv.Itoa(len(checkBody))}
	w.WriteHeader(http.StatusTemporaryRedirect)
	if r.Method != http.MethodHead {
		w.Write(checkBody)
	}
}
