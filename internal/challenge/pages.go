package challenge

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
)

//go:embed assets/*.html assets/*.js
var assets embed.FS

// DefaultLanguage is the language of the pages when Accept-Language names
// none that has a template.
const DefaultLanguage = "en"

// MaxPageSize bounds a rendered challenge page (templates that exceed it
// are refused): the interstitial is what an attack makes us serve most.
const MaxPageSize = 20 << 10

// Sentinels stand in for the per-request values when a challenge template
// is compiled; the output is split on them. They are plain letters so that
// html/template leaves them unchanged in every context.
const (
	sentinelData      = "rampartSentinelDataQx7"
	sentinelChallenge = "rampartSentinelChallengeQx7"
	sentinelReturn    = "rampartSentinelReturnQx7"
)

// pageField says what goes between two static parts of a compiled page.
type pageField uint8

const (
	fieldData      pageField = iota // the challenge JSON object, JSON-escaped
	fieldChallenge                  // the signed challenge, base64url
	fieldReturn                     // the return URL, HTML-escaped
)

// compiledPage is a challenge template executed once with sentinels and
// split into static parts, so serving a page is a few copies.
type compiledPage struct {
	lang   string
	parts  [][]byte    // len(fields)+1 static parts
	fields []pageField // what follows parts[i]
	csp    []string    // Content-Security-Policy header value
	lang1  []string    // Content-Language header value
	size   int         // bytes of static text
}

// challengeData is what a challenge template sees.
type challengeData struct {
	Lang       string
	Data       template.JS
	Script     template.JS
	NoJSPass   bool
	NoJSAction string
	Challenge  string
	Return     string
}

// noticeData is what a notice template sees.
type noticeData struct {
	// Kind is one of the LoopCause labels, or resend, nojs-limited,
	// nojs-disabled, invalid.
	Kind string
	// Return is the page to go back to.
	Return string
	// Host is the site's host name.
	Host string
}

// noticeKinds are every Kind a notice template must render.
var noticeKinds = []string{"no-cookie", "address", "browser", "rechallenged", "other", "resend", "nojs-limited", "nojs-disabled", "invalid"}

// notice is a parsed notice template with its CSP.
type notice struct {
	t   *template.Template
	csp []string
}

// pageSet holds every language's pages and the worker script.
type pageSet struct {
	challenge   map[string]*compiledPage
	notice      map[string]*notice
	langs       []string // languages with a challenge page, sorted
	noticeLangs []string // languages with a notice page, sorted
	worker      []byte
	workerName  string // e.g. "worker.0123abcd.js"
	workerCSP   []string
}

var langRE = regexp.MustCompile(`^(challenge|notice)\.([a-z]{2,3}(?:-[a-z0-9]{2,8})*)\.html$`)

// errTemplate marks an unusable template.
var errTemplate = errors.New("challenge: bad template")

// loadPages reads the embedded templates, then those of dir (which replace
// embedded ones of the same name), and compiles them all.
func loadPages(dir string, nojsPass bool, log *slog.Logger) (*pageSet, error) {
	script, err := assets.ReadFile("assets/challenge.js")
	if err != nil {
		return nil, fmt.Errorf("challenge: embedded script: %w", err)
	}
	worker, err := assets.ReadFile("assets/worker.js")
	if err != nil {
		return nil, fmt.Errorf("challenge: embedded worker: %w", err)
	}
	wsum := sha256.Sum256(worker)
	ps := &pageSet{
		challenge:  map[string]*compiledPage{},
		notice:     map[string]*notice{},
		worker:     worker,
		workerName: "worker." + hex.EncodeToString(wsum[:4]) + ".js",
		workerCSP:  []string{"default-src 'none'"},
	}
	sources := map[string]string{} // file name -> template text
	embedded, _ := fs.Glob(assets, "assets/*.html")
	for _, p := range embedded {
		b, err := assets.ReadFile(p)
		if err != nil {
			return nil, fmt.Errorf("challenge: embedded template: %w", err)
		}
		sources[filepath.Base(p)] = string(b)
	}
	if dir != "" {
		entries, err := os.ReadDir(dir)
		if err != nil {
			return nil, fmt.Errorf("challenge: reading TemplateDir: %w", err)
		}
		for _, e := range entries {
			if e.IsDir() || !langRE.MatchString(e.Name()) {
				continue
			}
			b, err := os.ReadFile(filepath.Join(dir, e.Name()))
			if err != nil {
				return nil, fmt.Errorf("challenge: reading template: %w", err)
			}
			sources[e.Name()] = string(b)
			log.Info("challenge: loaded operator template", "file", e.Name())
		}
	}
	for name, src := range sources {
		m := langRE.FindStringSubmatch(name)
		if m == nil {
			continue
		}
		lang := m[2]
		switch m[1] {
		case "challenge":
			p, err := compileChallenge(name, src, lang, string(script), ps.workerName, nojsPass)
			if err != nil {
				return nil, err
			}
			ps.challenge[lang] = p
		case "notice":
			n, err := compileNotice(name, src)
			if err != nil {
				return nil, err
			}
			ps.notice[lang] = n
		}
	}
	if ps.challenge[DefaultLanguage] == nil || ps.notice[DefaultLanguage] == nil {
		return nil, fmt.Errorf("%w: no %s templates", errTemplate, DefaultLanguage)
	}
	for l := range ps.challenge {
		ps.langs = append(ps.langs, l)
	}
	slices.Sort(ps.langs)
	for l := range ps.notice {
		ps.noticeLangs = append(ps.noticeLangs, l)
	}
	slices.Sort(ps.noticeLangs)
	return ps, nil
}

// compileChallenge parses a challenge template, runs it with sentinels,
// splits the output and derives its CSP from the inline scripts and styles.
func compileChallenge(name, src, lang, script, workerName string, nojsPass bool) (*compiledPage, error) {
	t, err := template.New(name).Parse(src)
	if err != nil {
		return nil, fmt.Errorf("%w %s: %w", errTemplate, name, err)
	}
	var buf bytes.Buffer
	err = t.Execute(&buf, challengeData{
		Lang:       lang,
		Data:       template.JS(sentinelData),
		Script:     template.JS(script),
		NoJSPass:   nojsPass,
		NoJSAction: PathPrefix + "nojs",
		Challenge:  sentinelChallenge,
		Return:     sentinelReturn,
	})
	if err != nil {
		return nil, fmt.Errorf("%w %s: %w", errTemplate, name, err)
	}
	out := buf.Bytes()
	p := &compiledPage{lang: lang, lang1: []string{lang}}
	for {
		i, f := nextSentinel(out)
		if i < 0 {
			p.parts = append(p.parts, out)
			break
		}
		p.parts = append(p.parts, out[:i])
		p.fields = append(p.fields, f)
		out = out[i+len(sentinelOf(f)):]
	}
	if c := countField(p.fields, fieldData); c != 1 {
		return nil, fmt.Errorf("%w %s: {{.Data}} appears %d times, want once (inside <script type=\"application/json\" id=\"rampart-challenge\">)", errTemplate, name, c)
	}
	for _, part := range p.parts {
		p.size += len(part)
	}
	// A page carries at most ~600 bytes of per-request data.
	if p.size+600 > MaxPageSize {
		return nil, fmt.Errorf("%w %s: page is %d bytes, limit %d", errTemplate, name, p.size+600, MaxPageSize)
	}
	scripts, styles, err := inlineHashes(bytes.Join(p.parts, nil))
	if err != nil {
		return nil, fmt.Errorf("%w %s: %w", errTemplate, name, err)
	}
	p.csp = []string{"default-src 'none'; script-src " + scripts + "; style-src " + styles +
		"; worker-src 'self'; connect-src 'self'; img-src 'self' data:; form-action 'self'; base-uri 'none'; frame-ancestors 'self'"}
	return p, nil
}

func sentinelOf(f pageField) string {
	switch f {
	case fieldData:
		return sentinelData
	case fieldChallenge:
		return sentinelChallenge
	}
	return sentinelReturn
}

// nextSentinel finds the first sentinel in b.
func nextSentinel(b []byte) (int, pageField) {
	best, bf := -1, pageField(0)
	for _, f := range []pageField{fieldData, fieldChallenge, fieldReturn} {
		if i := bytes.Index(b, []byte(sentinelOf(f))); i >= 0 && (best < 0 || i < best) {
			best, bf = i, f
		}
	}
	return best, bf
}

func countField(fs []pageField, f pageField) (n int) {
	for _, x := range fs {
		if x == f {
			n++
		}
	}
	return n
}

// compileNotice parses a notice template, renders every kind to check it
// and collects the hashes of its inline styles (scripts are not allowed:
// the notice pages work without JavaScript).
func compileNotice(name, src string) (*notice, error) {
	t, err := template.New(name).Parse(src)
	if err != nil {
		return nil, fmt.Errorf("%w %s: %w", errTemplate, name, err)
	}
	styleSet := map[string]bool{}
	for _, k := range noticeKinds {
		var buf bytes.Buffer
		if err := t.Execute(&buf, noticeData{Kind: k, Return: "/", Host: "example.org"}); err != nil {
			return nil, fmt.Errorf("%w %s: %w", errTemplate, name, err)
		}
		scripts, styles, err := inlineHashes(buf.Bytes())
		if err != nil {
			return nil, fmt.Errorf("%w %s: %w", errTemplate, name, err)
		}
		if scripts != "'none'" {
			return nil, fmt.Errorf("%w %s: notice pages may not contain scripts", errTemplate, name)
		}
		for _, h := range strings.Fields(styles) {
			styleSet[h] = true
		}
	}
	styles := "'none'"
	if len(styleSet) > 0 {
		hs := make([]string, 0, len(styleSet))
		for h := range styleSet {
			hs = append(hs, h)
		}
		slices.Sort(hs)
		styles = strings.Join(hs, " ")
	}
	return &notice{t: t, csp: []string{"default-src 'none'; style-src " + styles +
		"; img-src 'self' data:; form-action 'self'; base-uri 'none'; frame-ancestors 'self'"}}, nil
}

// inlineHashes returns CSP source lists for the executable inline scripts
// and the inline styles of page. Data blocks (<script type="application/json">)
// are not executed and need no hash. External scripts and inline event
// handlers are refused: the CSP would block them.
func inlineHashes(page []byte) (scripts, styles string, err error) {
	lower := bytes.ToLower(page)
	var sh, st []string
	for _, tag := range []string{"script", "style"} {
		rest, off := lower, 0
		for {
			i := bytes.Index(rest, []byte("<"+tag))
			if i < 0 {
				break
			}
			j := bytes.IndexByte(rest[i:], '>')
			if j < 0 {
				return "", "", fmt.Errorf("unterminated <%s> tag", tag)
			}
			attrs := string(rest[i+1+len(tag) : i+j])
			k := bytes.Index(rest[i+j:], []byte("</"+tag))
			if k < 0 {
				return "", "", fmt.Errorf("unterminated <%s> element", tag)
			}
			body := page[off+i+j+1 : off+i+j+k]
			if tag == "script" && strings.Contains(attrs, "src=") {
				return "", "", errors.New("external scripts are not allowed (strict CSP, no external resources)")
			}
			if tag == "style" || isJSScript(attrs) {
				sum := sha256.Sum256(body)
				h := "'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'"
				if tag == "script" {
					sh = append(sh, h)
				} else {
					st = append(st, h)
				}
			}
			adv := i + j + k
			rest, off = rest[adv:], off+adv
		}
	}
	if m := regexp.MustCompile(`\son[a-z]+\s*=`).Find(lower); m != nil {
		return "", "", fmt.Errorf("inline event handler %q is not allowed (strict CSP)", m)
	}
	join := func(hs []string) string {
		if len(hs) == 0 {
			return "'none'"
		}
		return strings.Join(slices.Compact(hs), " ")
	}
	return join(sh), join(st), nil
}

// isJSScript reports whether a <script> with these (lower-case) attributes
// is executed: no type, or a JavaScript type.
func isJSScript(attrs string) bool {
	i := strings.Index(attrs, "type=")
	if i < 0 {
		return true
	}
	v := strings.Trim(attrs[i+5:], " \"'/")
	if j := strings.IndexAny(v, " \"'"); j >= 0 {
		v = v[:j]
	}
	switch v {
	case "", "text/javascript", "application/javascript", "module":
		return true
	}
	return false
}

// pick returns the page language for an Accept-Language header.
func (ps *pageSet) pick(acceptLanguage string) string {
	return pickLanguage(acceptLanguage, ps.langs)
}

// pickLanguage chooses among available (lower-case) languages the one the
// Accept-Language header value prefers: highest q first, header order for
// ties; a tag matches a language exactly or by its primary subtag
// ("fr-CH" picks "fr"), and "*" picks the default. It does not allocate.
func pickLanguage(header string, available []string) string {
	best, bestQ := DefaultLanguage, -1
	for len(header) > 0 {
		var item string
		if i := strings.IndexByte(header, ','); i >= 0 {
			item, header = header[:i], header[i+1:]
		} else {
			item, header = header, ""
		}
		tag, params, _ := strings.Cut(item, ";")
		tag = strings.TrimSpace(tag)
		q := parseQ(params)
		if q <= bestQ || q == 0 || tag == "" {
			continue
		}
		if tag == "*" {
			best, bestQ = DefaultLanguage, q
			continue
		}
		if l, ok := matchLanguage(tag, available); ok {
			best, bestQ = l, q
		}
	}
	return best
}

// parseQ parses the q parameter of an Accept-Language item in thousandths;
// absent is 1000, malformed is 0.
func parseQ(params string) int {
	for len(params) > 0 {
		var p string
		if i := strings.IndexByte(params, ';'); i >= 0 {
			p, params = params[:i], params[i+1:]
		} else {
			p, params = params, ""
		}
		p = strings.TrimSpace(p)
		if len(p) < 2 || (p[0] != 'q' && p[0] != 'Q') || p[1] != '=' {
			continue
		}
		v := p[2:]
		if len(v) == 0 || len(v) > 5 {
			return 0
		}
		q, scale := 0, 1000
		if v[0] == '1' {
			q = 1000
		} else if v[0] != '0' {
			return 0
		}
		if len(v) > 1 {
			if v[1] != '.' {
				return 0
			}
			for i := 2; i < len(v); i++ {
				if v[i] < '0' || v[i] > '9' {
					return 0
				}
				scale /= 10
				q += int(v[i]-'0') * scale
			}
		}
		return min(q, 1000)
	}
	return 1000
}

// matchLanguage finds tag, or its primary subtag, among available.
func matchLanguage(tag string, available []string) (string, bool) {
	for _, l := range available {
		if strings.EqualFold(l, tag) {
			return l, true
		}
	}
	primary, _, _ := strings.Cut(tag, "-")
	for _, l := range available {
		if strings.EqualFold(l, primary) {
			return l, true
		}
	}
	return "", false
}
