package sim

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/rampart-shield/rampart/internal/demo"
)

// The request shapes of the techniques seen in real campaigns against
// government and news sites (see the Kind constants). Each builder draws
// every random part from the source's rng and sets the role header, so
// that the demo origin counts what reaches it.

// floodIdentity is what stays the same across one flood address's requests:
// its client, and for the carpet, where its visit stands. It is used by the
// source's pacing goroutine only.
type floodIdentity struct {
	idx  int
	prof profile
	// rate is the source's own rate (carpet), 0 for the attack's.
	rate float64
	// ua is the source's fixed User-Agent for the kinds that have one;
	// noUA (ddosia) means none is sent at all.
	ua   string
	noUA bool
	lang string
	// wave and prev are the carpet's visit: the wave its browser belongs
	// to and the last page it asked for in that wave.
	wave int
	prev string
}

// newFloodIdentity draws the fixed traits of source idx of a. The kinds
// that predate the campaign techniques draw nothing from rng, so that
// their random streams stay as they were.
func newFloodIdentity(a Attack, idx int, rng *rand.Rand) *floodIdentity {
	id := &floodIdentity{idx: idx, prof: profiles[idx%len(profiles)]}
	switch a.Kind {
	case KindDDoSia:
		id.noUA = rng.IntN(10) == 0
	case KindRandom404:
		id.ua = desktopUAs[rng.IntN(len(desktopUAs))]
		id.lang = languages[rng.IntN(len(languages))]
	case KindLoginFlood:
		id.ua = browserUAs[rng.IntN(len(browserUAs))]
		if rng.IntN(20) == 0 {
			id.ua = malformUA(id.ua, rng)
		}
		id.lang = languages[rng.IntN(len(languages))]
	case KindPingback:
		id.ua = fmt.Sprintf("WordPress/6.5; https://%s.example; verifying pingback from %s", randLower(rng, 5+rng.IntN(8)), pingbackFrom)
	case KindCarpet:
		id.rate = a.Rate * (0.5 + rng.Float64())
		id.lang = languages[rng.IntN(len(languages))]
		id.wave = -1
	}
	return id
}

// pingbackFrom is the address the reflecting blogs say asked them to
// verify a pingback: the attacker's, a loopback address that is never
// dialled.
const pingbackFrom = "127.9.9.9"

// ddosiaToken is the one anti-forgery token DDoSia's form templates replay
// with every request, copied once from a real session.
const ddosiaToken = "CfDJ8Kx2vQe7LrM0nZ3hWq9sYb4TgUa1pN6cJd5oRf8kVi2HmXl0wEs7yBt3zGu9"

// campaignRequest builds one request of the campaign techniques (the kinds
// from KindDDoSia on).
func (r *runner) campaignRequest(ctx context.Context, a Attack, rng *rand.Rand, id *floodIdentity, wave int) (*http.Request, error) {
	base := r.target.Base()
	switch a.Kind {
	case KindDDoSia:
		return r.ddosiaRequest(ctx, rng, id)
	case KindRandom404:
		var path string
		switch n := rng.IntN(100); {
		case n < 10:
			path = "/" + notFoundWords[rng.IntN(len(notFoundWords))] + "/" + randHex(rng, 32+rng.IntN(97))
		case n < 55:
			path = "/" + notFoundWords[rng.IntN(len(notFoundWords))]
		default:
			path = "/" + notFoundWords[rng.IntN(len(notFoundWords))] + "/" + notFoundWords[rng.IntN(len(notFoundWords))]
		}
		req, err := newAttackRequest(ctx, http.MethodGet, base+path, nil)
		if err != nil {
			return nil, err
		}
		h := req.Header
		h.Set("User-Agent", id.ua)
		h.Set("Accept", "*/*")
		h.Set("Accept-Language", id.lang)
		h.Set("Accept-Encoding", "gzip, deflate")
		return req, nil
	case KindHeaderRandom:
		return r.headerRandomRequest(ctx, rng)
	case KindLoginFlood:
		body := fmt.Sprintf(`{"email":"%s@%s","password":"%s"}`,
			randAlnum(rng, 6+rng.IntN(7)), mailDomains[rng.IntN(len(mailDomains))], randAlnum(rng, 8+rng.IntN(9)))
		req, err := newAttackRequest(ctx, http.MethodPost, base+"/login", []byte(body))
		if err != nil {
			return nil, err
		}
		h := req.Header
		h.Set("User-Agent", id.ua)
		h.Set("Accept", "application/json, text/plain, */*")
		h.Set("Accept-Language", id.lang)
		h.Set("Accept-Encoding", "gzip, deflate, br")
		h.Set("Content-Type", "application/json")
		h.Set("Origin", base)
		h.Set("Referer", base+"/login")
		return req, nil
	case KindPingback:
		path := "/?" + randDigits(rng, 7) + "=" + randDigits(rng, 6)
		if rng.IntN(2) == 0 {
			path = fmt.Sprintf("/news/%d?%s=%s", 1+rng.IntN(demo.DefaultArticles), randAlnum(rng, 4+rng.IntN(5)), randAlnum(rng, 4+rng.IntN(5)))
		}
		req, err := newAttackRequest(ctx, http.MethodGet, base+path, nil)
		if err != nil {
			return nil, err
		}
		// As WordPress's HTTP API sends it: the URL as its own Referer,
		// the requester in X-Pingback-Forwarded-For, no keep-alive.
		req.Close = true
		h := req.Header
		h.Set("User-Agent", id.ua)
		h.Set("Accept", "*/*")
		h.Set("Accept-Encoding", "deflate, gzip")
		h.Set("Referer", base+path)
		h.Set("X-Pingback-Forwarded-For", pingbackFrom)
		return req, nil
	case KindHeadFlood:
		path := "/"
		if n := rng.IntN(demo.DefaultArticles + 1); n > 0 {
			path = fmt.Sprintf("/news/%d", n)
		}
		path += fmt.Sprintf("?%s=%x", randomKey(rng), rng.Uint64())
		req, err := newAttackRequest(ctx, http.MethodHead, base+path, nil)
		if err != nil {
			return nil, err
		}
		h := req.Header
		h.Set("User-Agent", id.prof.ua)
		h.Set("Accept", id.prof.acceptNav)
		h.Set("Accept-Language", id.prof.lang)
		h.Set("Accept-Encoding", "gzip, deflate, br")
		return req, nil
	case KindCarpet:
		return r.carpetRequest(ctx, rng, id, wave)
	}
	return nil, fmt.Errorf("no request shape for attack kind %q", a.Kind)
}

// newAttackRequest is a request to the target carrying the attack role
// header and body, if any.
func newAttackRequest(ctx context.Context, method, u string, body []byte) (*http.Request, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return nil, err
	}
	req.Header.Set(demo.RoleHeader, roleNames[roleAttack])
	return req, nil
}

// ddosiaRequest fills one of DDoSia's templates: $_1 is 6-12 characters
// [A-Za-z0-9], $_2 1-2 digits, $_0 11 digits ("phone"), as in the
// collected target files. Headers are Go's defaults: the transport adds
// its User-Agent when none is set (an empty one suppresses it), and no
// Accept.
func (r *runner) ddosiaRequest(ctx context.Context, rng *rand.Rand, id *floodIdentity) (*http.Request, error) {
	base := r.target.Base()
	method, path, ctype := http.MethodGet, "", ""
	var body []byte
	switch n := rng.IntN(100); {
	case n < 40:
		path = "/search?q=" + randAlnum(rng, 6+rng.IntN(7))
	case n < 65:
		path = "/?page=" + randDigits(rng, 1+rng.IntN(2))
	case n < 85:
		method, path, ctype = http.MethodPost, "/api/comments", "application/x-www-form-urlencoded"
		body = fmt.Appendf(nil, "name=%s&email=%s%%40gmail.com&phone=%s&message=%s&__RequestVerificationToken=%s",
			randAlnum(rng, 6+rng.IntN(7)), randAlnum(rng, 6+rng.IntN(7)), randDigits(rng, 11), randAlnum(rng, 6+rng.IntN(7)), ddosiaToken)
	default:
		method, path, ctype = http.MethodPost, "/login", "application/json"
		body = fmt.Appendf(nil, `{"login":"%s@gmail.com","password":"%s"}`, randAlnum(rng, 6+rng.IntN(7)), randAlnum(rng, 6+rng.IntN(7)))
	}
	req, err := newAttackRequest(ctx, method, base+path, body)
	if err != nil {
		return nil, err
	}
	h := req.Header
	if id.noUA {
		h["User-Agent"] = []string{""} // net/http then sends no User-Agent
	}
	h.Set("Accept-Encoding", "gzip")
	if ctype != "" {
		h.Set("Content-Type", ctype)
	}
	return req, nil
}

// headerRandomRequest draws every header anew, as flood tools with header
// lists do (MHDDoS and kin): nothing ties two requests of one source.
func (r *runner) headerRandomRequest(ctx context.Context, rng *rand.Rand) (*http.Request, error) {
	path := "/"
	if rng.IntN(10) >= 3 {
		path = fmt.Sprintf("/news/%d", 1+rng.IntN(demo.DefaultArticles))
	}
	req, err := newAttackRequest(ctx, http.MethodGet, r.target.Base()+path, nil)
	if err != nil {
		return nil, err
	}
	h := req.Header
	if rng.IntN(100) < 15 {
		h.Set("User-Agent", crawlerUAs[rng.IntN(len(crawlerUAs))])
	} else {
		h.Set("User-Agent", browserUAs[rng.IntN(len(browserUAs))])
	}
	h.Set("Accept", acceptHeaders[rng.IntN(len(acceptHeaders))])
	h.Set("Accept-Language", languages[rng.IntN(len(languages))])
	h.Set("Accept-Encoding", encodings[rng.IntN(len(encodings))])
	h.Set("Referer", randomReferer(rng))
	ip := randIPv4(rng)
	xff := ip
	if rng.IntN(2) == 0 {
		xff = randIPv4(rng) + ", " + ip
	}
	h.Set("X-Forwarded-For", xff)
	h.Set("X-Real-IP", ip)
	h.Set("Client-IP", ip)
	if rng.IntN(100) < 20 {
		// A header only: the connection still goes to the target.
		req.Host = randAlnumLower(rng, 6) + "." + r.target.HostHeader
	}
	if rng.IntN(100) < 10 {
		h.Set("Cookie", "PHPSESSID="+randAlnumLower(rng, 26))
	}
	if rng.IntN(100) < 20 {
		h.Set("Cache-Control", "no-cache")
		h.Set("Pragma", "no-cache")
	}
	return req, nil
}

// carpetPages is how many articles the carpet asks for: the top ones.
const carpetPages = 20

// carpetRequest is a page or a search with a whole browser's navigation
// headers, the browser of the source in this wave: a new wave, a new
// browser, whose first page comes from nowhere (Sec-Fetch-Site: none) and
// the next ones from the previous page.
func (r *runner) carpetRequest(ctx context.Context, rng *rand.Rand, id *floodIdentity, wave int) (*http.Request, error) {
	if wave != id.wave {
		id.wave, id.prev = wave, ""
	}
	var path string
	if rng.IntN(100) < 70 {
		path = "/"
		if n := rng.IntN(carpetPages + 1); n > 0 {
			path = fmt.Sprintf("/news/%d", n)
		}
	} else {
		q := searchWords[rng.IntN(len(searchWords))] + " " + searchWords[rng.IntN(len(searchWords))]
		path = "/search?q=" + url.QueryEscape(q)
	}
	req, err := newAttackRequest(ctx, http.MethodGet, r.target.Base()+path, nil)
	if err != nil {
		return nil, err
	}
	p := carpetProfile(wave, id.idx)
	p.lang = id.lang
	site, ref := "none", ""
	if id.prev != "" {
		site, ref = "same-origin", r.target.Base()+id.prev
	}
	setNavigationHeaders(req.Header, p, site, ref)
	id.prev = path
	return req, nil
}

// carpetProfile is the browser of source idx in wave: each wave takes the
// next pool.
func carpetProfile(wave, idx int) profile {
	pool := carpetPools[wave%len(carpetPools)]
	return pool[idx%len(pool)]
}

// setNavigationHeaders sets what a browser sends with a top-level
// navigation.
func setNavigationHeaders(h http.Header, p profile, site, referer string) {
	p.setCommon(h)
	h.Set("Accept", p.acceptNav)
	h.Set("Upgrade-Insecure-Requests", "1")
	h.Set("Sec-Fetch-Mode", "navigate")
	h.Set("Sec-Fetch-Dest", "document")
	h.Set("Sec-Fetch-User", "?1")
	h.Set("Sec-Fetch-Site", site)
	if referer != "" {
		h.Set("Referer", referer)
	}
}

// malformUA puts a stray quote into ua, as some flooding bots' user agents
// carry (DataDome's news-site login flood).
func malformUA(ua string, rng *rand.Rand) string {
	i := 1 + rng.IntN(len(ua)-1)
	return ua[:i] + `"` + ua[i:]
}

const (
	alnum      = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
	alnumLower = "abcdefghijklmnopqrstuvwxyz0123456789"
	lower      = "abcdefghijklmnopqrstuvwxyz"
	digits     = "0123456789"
	hexDigits  = "0123456789abcdef"
)

func randFrom(rng *rand.Rand, set string, n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = set[rng.IntN(len(set))]
	}
	return string(b)
}

func randAlnum(rng *rand.Rand, n int) string      { return randFrom(rng, alnum, n) }
func randAlnumLower(rng *rand.Rand, n int) string { return randFrom(rng, alnumLower, n) }
func randLower(rng *rand.Rand, n int) string      { return randFrom(rng, lower, n) }
func randDigits(rng *rand.Rand, n int) string     { return randFrom(rng, digits, n) }
func randHex(rng *rand.Rand, n int) string        { return randFrom(rng, hexDigits, n) }

// randIPv4 is a random unicast address outside 0/8, 10/8, 127/8 and the
// multicast and reserved ranges: what forged forwarding headers carry. It
// is only ever written into a header.
func randIPv4(rng *rand.Rand) string {
	for {
		a := 1 + rng.IntN(223)
		if a == 10 || a == 127 {
			continue
		}
		return strconv.Itoa(a) + "." + strconv.Itoa(rng.IntN(256)) + "." + strconv.Itoa(rng.IntN(256)) + "." + strconv.Itoa(1+rng.IntN(254))
	}
}

// randomReferer is a page on one of many sites.
func randomReferer(rng *rand.Rand) string {
	site := refererSites[rng.IntN(len(refererSites))]
	switch rng.IntN(3) {
	case 0:
		return "https://" + site + "/"
	case 1:
		return "https://" + site + "/" + notFoundWords[rng.IntN(len(notFoundWords))]
	}
	return "https://" + site + "/search?q=" + notFoundWords[rng.IntN(len(notFoundWords))]
}

// Pools of header values.
var (
	// desktopUAs are the desktop browsers of infected PCs (random-404):
	// mostly Windows.
	desktopUAs = []string{
		"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/138.0.0.0 Safari/537.36",
		"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/137.0.0.0 Safari/537.36",
		"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/138.0.0.0 Safari/537.36 Edg/138.0.0.0",
		"Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:140.0) Gecko/20100101 Firefox/140.0",
		"Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:128.0) Gecko/20100101 Firefox/128.0",
		"Mozilla/5.0 (Windows NT 6.1; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/109.0.0.0 Safari/537.36",
		"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/138.0.0.0 Safari/537.36",
		"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/138.0.0.0 Safari/537.36",
	}
	// browserUAs are current and older browsers, desktop and mobile, with a
	// few exotic ones.
	browserUAs = append(append([]string(nil), desktopUAs...),
		"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.5 Safari/605.1.15",
		"Mozilla/5.0 (iPhone; CPU iPhone OS 18_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.5 Mobile/15E148 Safari/604.1",
		"Mozilla/5.0 (iPad; CPU OS 17_7 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.7 Mobile/15E148 Safari/604.1",
		"Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/138.0.0.0 Mobile Safari/537.36",
		"Mozilla/5.0 (Linux; Android 14; SM-S921B) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/28.0 Chrome/130.0.0.0 Mobile Safari/537.36",
		"Mozilla/5.0 (Android 14; Mobile; rv:140.0) Gecko/140.0 Firefox/140.0",
		"Mozilla/5.0 (X11; Linux x86_64; rv:140.0) Gecko/20100101 Firefox/140.0",
		"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 OPR/116.0.0.0",
		"Mozilla/5.0 (X11; CrOS x86_64 14541.0.0) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/138.0.0.0 Safari/537.36",
		"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/132.0.0.0 YaBrowser/25.2.0.0 Safari/537.36",
		"Mozilla/4.0 (compatible; MSIE 8.0; Windows NT 6.1; Trident/4.0)",
		"Mozilla/4.0 (compatible; MSIE 4.01; Windows 95)",
		"Opera/9.80 (Nintendo Wii; U; ; 1038-58; Wii Shop Channel/1.0; en) Presto/2.2.0 Version/10.00",
		"Mozilla/5.0 (SymbianOS/9.4; Series60/5.0 NokiaN97-1/12.0.024) AppleWebKit/525 (KHTML, like Gecko) BrowserNG/7.1.18124",
	)
	// crawlerUAs are search engines' crawlers, forged by the flood.
	crawlerUAs = []string{
		"Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
		"Mozilla/5.0 (Linux; Android 6.0.1; Nexus 5X Build/MMB29P) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/138.0.0.0 Mobile Safari/537.36 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
		"Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
		"Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm) Chrome/138.0.0.0 Safari/537.36",
	}
	acceptHeaders = []string{
		"text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,image/apng,*/*;q=0.8,application/signed-exchange;v=b3;q=0.7",
		"text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
		"text/html,application/xhtml+xml,application/xml;q=0.9,image/webp,*/*;q=0.8",
		"*/*",
	}
	languages = []string{
		"en-US,en;q=0.9", "en-GB,en;q=0.9", "de-DE,de;q=0.9,en;q=0.8", "fr-FR,fr;q=0.9,en;q=0.8", "it-IT,it;q=0.9",
		"es-ES,es;q=0.9", "pl-PL,pl;q=0.9,en;q=0.8", "cs-CZ,cs;q=0.9", "nl-NL,nl;q=0.9,en;q=0.8", "fi-FI,fi;q=0.9,en;q=0.8",
		"ru-RU,ru;q=0.9,en;q=0.8", "uk-UA,uk;q=0.9", "sv-SE,sv;q=0.9", "da-DK,da;q=0.9", "lt-LT,lt;q=0.9",
	}
	encodings    = []string{"gzip, deflate, br, zstd", "gzip, deflate, br", "gzip, deflate", "gzip", "identity"}
	mailDomains  = []string{"gmail.com", "yahoo.com", "outlook.com", "hotmail.com", "icloud.com", "gmx.de", "mail.ru"}
	refererSites = []string{
		"www.google.com", "www.bing.com", "duckduckgo.com", "yandex.ru", "www.facebook.com", "t.co", "www.reddit.com",
		"news.ycombinator.com", "www.youtube.com", "vk.com", "www.linkedin.com", "www.instagram.com", "web.telegram.org",
		"www.wikipedia.org", "www.bbc.co.uk", "www.spiegel.de", "www.lemonde.fr", "www.corriere.it", "www.idnes.cz",
		"www.onet.pl", "yle.fi", "www.nu.nl", "www.delfi.lt", "search.yahoo.com", "www.baidu.com",
	}
	// notFoundWords make the random-404 flood's paths (none is a route of
	// the demo site).
	notFoundWords = strings.Fields(`music italian-wedding love you bluechevy garden holiday recipes football travel
		weather photos gallery video movies games casino poker dating shop cart checkout blog forum wiki
		about contact careers jobs press media downloads files uploads images assets css js fonts
		wp-admin wp-content wp-includes admin administrator phpmyadmin backup old new test dev staging
		archive archives tag tags category categories author authors page pages feed rss atom sitemap
		user users account profile settings register signup signin logout password reset help faq
		support docs documentation manual guide tutorial download install update upgrade plugins themes
		cgi-bin scripts include includes lib vendor node_modules private public tmp temp cache logs
		summer winter spring autumn monday friday weekend party wedding birthday christmas easter
		bluesky sunrise sunset ocean mountain river forest city village country kitchen bedroom
		car truck bike train plane boat horse dog cat bird fish apple banana orange coffee tea`)
)

// The browsers the carpet's sources use, one pool per wave in turn: current
// desktop browsers, then phones, then older versions.
var carpetPools = [][]profile{
	{
		profiles[0], profiles[1], profiles[2],
		{name: "edge", chromium: true,
			ua:        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/138.0.0.0 Safari/537.36 Edg/138.0.0.0",
			acceptNav: profiles[0].acceptNav, lang: "en-US,en;q=0.9", encoding: "gzip, deflate, br, zstd",
			secChUa: `"Not)A;Brand";v="8", "Chromium";v="138", "Microsoft Edge";v="138"`, chPlatform: `"Windows"`},
		{name: "chrome-mac", chromium: true,
			ua:        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/138.0.0.0 Safari/537.36",
			acceptNav: profiles[0].acceptNav, lang: "en-US,en;q=0.9", encoding: "gzip, deflate, br, zstd",
			secChUa: `"Not)A;Brand";v="8", "Chromium";v="138", "Google Chrome";v="138"`, chPlatform: `"macOS"`},
		{name: "firefox-win",
			ua:        "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:140.0) Gecko/20100101 Firefox/140.0",
			acceptNav: profiles[1].acceptNav, lang: "en-US,en;q=0.5", encoding: "gzip, deflate, br, zstd"},
	},
	{
		{name: "chrome-android", chromium: true, mobile: true,
			ua:        "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/138.0.0.0 Mobile Safari/537.36",
			acceptNav: profiles[0].acceptNav, lang: "en-US,en;q=0.9", encoding: "gzip, deflate, br, zstd",
			secChUa: `"Not)A;Brand";v="8", "Chromium";v="138", "Google Chrome";v="138"`, chPlatform: `"Android"`},
		{name: "safari-iphone",
			ua:        "Mozilla/5.0 (iPhone; CPU iPhone OS 18_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.5 Mobile/15E148 Safari/604.1",
			acceptNav: profiles[2].acceptNav, lang: "en-GB,en;q=0.9", encoding: "gzip, deflate, br"},
		{name: "samsung", chromium: true, mobile: true,
			ua:        "Mozilla/5.0 (Linux; Android 14; SM-S921B) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/28.0 Chrome/130.0.0.0 Mobile Safari/537.36",
			acceptNav: profiles[0].acceptNav, lang: "en-US,en;q=0.9", encoding: "gzip, deflate, br, zstd",
			secChUa: `"Chromium";v="130", "Samsung Internet";v="28.0", "Not?A_Brand";v="99"`, chPlatform: `"Android"`},
		{name: "firefox-android",
			ua:        "Mozilla/5.0 (Android 14; Mobile; rv:140.0) Gecko/140.0 Firefox/140.0",
			acceptNav: profiles[1].acceptNav, lang: "en-US,en;q=0.5", encoding: "gzip, deflate, br, zstd"},
		{name: "safari-ipad",
			ua:        "Mozilla/5.0 (iPad; CPU OS 17_7 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.7 Mobile/15E148 Safari/604.1",
			acceptNav: profiles[2].acceptNav, lang: "en-US,en;q=0.9", encoding: "gzip, deflate, br"},
	},
	{
		{name: "chrome-131", chromium: true,
			ua:        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
			acceptNav: profiles[0].acceptNav, lang: "en-US,en;q=0.9", encoding: "gzip, deflate, br, zstd",
			secChUa: `"Google Chrome";v="131", "Chromium";v="131", "Not_A Brand";v="24"`, chPlatform: `"Windows"`},
		{name: "firefox-esr",
			ua:        "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
			acceptNav: profiles[1].acceptNav, lang: "en-US,en;q=0.5", encoding: "gzip, deflate, br, zstd"},
		{name: "safari-17",
			ua:        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.6 Safari/605.1.15",
			acceptNav: profiles[2].acceptNav, lang: "en-US,en;q=0.9", encoding: "gzip, deflate, br"},
		{name: "opera", chromium: true,
			ua:        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 OPR/116.0.0.0",
			acceptNav: profiles[0].acceptNav, lang: "en-US,en;q=0.9", encoding: "gzip, deflate, br, zstd",
			secChUa: `"Chromium";v="131", "Opera";v="116", "Not?A_Brand";v="99"`, chPlatform: `"Windows"`},
		{name: "chrome-os", chromium: true,
			ua:        "Mozilla/5.0 (X11; CrOS x86_64 14541.0.0) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36",
			acceptNav: profiles[0].acceptNav, lang: "en-US,en;q=0.9", encoding: "gzip, deflate, br, zstd",
			secChUa: `"Not/A)Brand";v="8", "Chromium";v="126", "Google Chrome";v="126"`, chPlatform: `"Chrome OS"`},
	},
}
