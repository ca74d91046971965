package demo

import (
	"fmt"
	"html"
	"strings"
)

// article is one pre-rendered news article.
type article struct {
	id    int
	title string
	page  []byte
}

var (
	titleSubjects = []string{
		"The council", "The ministry", "The water board", "The city library", "The health office",
		"The transport authority", "The archive", "The election office", "The school board", "The ombudsman",
		"The fire service", "The statistics office", "The parks department",
	}
	titleVerbs = []string{
		"publishes", "revises", "opens consultation on", "announces", "reports on", "extends", "postpones", "simplifies",
	}
	titleObjects = []string{
		"the annual budget", "winter opening hours", "the new tram line", "flood protection plans", "digital services",
		"the housing register", "public records requests", "polling station locations", "school enrolment", "air quality figures",
		"road works on the ring", "the recycling schedule",
	}
	paragraph = "Residents can read the full text of the decision in the documents section and send their comments " +
		"through the form below until the end of the month. The office answers every question in writing and " +
		"publishes a summary of the answers once the consultation closes. Printed copies are available at the front " +
		"desk of every district office during opening hours, and staff can help visitors who prefer not to use the " +
		"website. Accessibility: this page works with screen readers and without images, and every document is also " +
		"offered in plain text. "
)

// renderSite pre-renders the articles and the anonymous front page, so that
// serving them costs only the configured PageCost.
func renderSite(n int) (home []byte, articles []article) {
	articles = make([]article, n)
	for i := range articles {
		id := i + 1
		title := fmt.Sprintf("%s %s %s", titleSubjects[i%len(titleSubjects)], titleVerbs[(i/3)%len(titleVerbs)], titleObjects[(i*7)%len(titleObjects)])
		var b strings.Builder
		writeHead(&b, title)
		fmt.Fprintf(&b, "<article>\n<h1>%s</h1>\n<p class=\"meta\">News item %d</p>\n", html.EscapeString(title), id)
		for p := range 6 {
			fmt.Fprintf(&b, "<p>%s</p>\n", html.EscapeString(paragraph+strings.Repeat("Further details follow in the annex. ", p%3)))
		}
		b.WriteString("<form method=\"post\" action=\"/api/comments\"><label>Comment <textarea name=\"c\"></textarea></label><button>Send</button></form>\n")
		b.WriteString("</article>\n")
		if id > 1 {
			fmt.Fprintf(&b, "<a href=\"/news/%d\">Previous</a>\n", id-1)
		}
		if id < n {
			fmt.Fprintf(&b, "<a href=\"/news/%d\">Next</a>\n", id+1)
		}
		writeFoot(&b)
		articles[i] = article{id: id, title: title, page: []byte(b.String())}
	}
	return renderHome(articles, ""), articles
}

// renderHome renders the front page; user, when not empty, is the signed-in
// visitor's session name.
func renderHome(articles []article, user string) []byte {
	var b strings.Builder
	writeHead(&b, "News")
	if user != "" {
		fmt.Fprintf(&b, "<p class=\"user\">Signed in as %s</p>\n", html.EscapeString(user))
	}
	b.WriteString("<h1>News</h1>\n<ul class=\"news\">\n")
	for _, a := range articles {
		fmt.Fprintf(&b, "<li><a href=\"/news/%d\">%s</a></li>\n", a.id, html.EscapeString(a.title))
	}
	b.WriteString("</ul>\n")
	writeFoot(&b)
	return []byte(b.String())
}

func renderSearch(articles []article, q string) []byte {
	var b strings.Builder
	writeHead(&b, "Search")
	fmt.Fprintf(&b, "<h1>Results for \u201c%s\u201d</h1>\n<ul>\n", html.EscapeString(q))
	lq := strings.ToLower(q)
	found := 0
	for _, a := range articles {
		if lq != "" && strings.Contains(strings.ToLower(a.title), lq) {
			fmt.Fprintf(&b, "<li><a href=\"/news/%d\">%s</a></li>\n", a.id, html.EscapeString(a.title))
			found++
		}
	}
	b.WriteString("</ul>\n")
	fmt.Fprintf(&b, "<p>%d results</p>\n", found)
	writeFoot(&b)
	return []byte(b.String())
}

func writeHead(b *strings.Builder, title string) {
	fmt.Fprintf(b, "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>%s - City of Example</title>\n", html.EscapeString(title))
	b.WriteString("<link rel=\"stylesheet\" href=\"/static/style.css\">\n<script src=\"/static/app.js\" defer></script>\n</head>\n<body>\n")
	b.WriteString("<header><img src=\"/static/logo.svg\" alt=\"City of Example\" width=\"48\" height=\"48\"> <a href=\"/\">City of Example</a>\n")
	b.WriteString("<form action=\"/search\"><label>Search <input name=\"q\"></label></form></header>\n<main>\n")
}

func writeFoot(b *strings.Builder) {
	b.WriteString("</main>\n<footer><a href=\"/login\">Sign in</a></footer>\n</body>\n</html>\n")
}

// The static assets.
var (
	styleCSS = []byte(`body{font:16px/1.5 system-ui,sans-serif;margin:0 auto;max-width:46rem;padding:0 1rem;color:#1b1b1b}
header{display:flex;gap:1rem;align-items:center;border-bottom:2px solid #0b4f8a;padding:.5rem 0}
header a{font-weight:700;color:#0b4f8a;text-decoration:none}
.news li{margin:.25rem 0}.meta{color:#555}footer{border-top:1px solid #ccc;margin-top:2rem;padding:.5rem 0}
`)
	appJS = []byte(`// Marks the current page in the navigation; the site works without it.
document.addEventListener("DOMContentLoaded", function () {
  document.documentElement.classList.add("js");
});
`)
	logoSVG = []byte(`<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 48 48" role="img" aria-label="City of Example"><rect width="48" height="48" rx="8" fill="#0b4f8a"/><path d="M10 38V18l14-8 14 8v20z" fill="#fff"/></svg>
`)
)

type asset struct {
	body  []byte
	ctype string
}

var assets = map[string]asset{
	"/static/style.css": {styleCSS, "text/css; charset=utf-8"},
	"/static/app.js":    {appJS, "text/javascript; charset=utf-8"},
	"/static/logo.svg":  {logoSVG, "image/svg+xml"},
}
