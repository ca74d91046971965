package cache

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestAdminHandler(t *testing.T) {
	c := mustNew(t, Options{})
	h := c.Middleware(&origin{handler: func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=60")
		io.WriteString(w, "x")
	}})
	for _, u := range []string{"http://www.e.org/news/1", "http://www.e.org/news/2", "http://www.e.org/about"} {
		do(h, "GET", u)
	}
	admin := httptest.NewServer(c.AdminHandler())
	defer admin.Close()
	tests := []struct {
		method, query string
		status        int
		body          string
	}{
		{"DELETE", "", 400, `"error"`},
		{"POST", "", 405, `"error"`},
		{"DELETE", "?prefix=www.e.org/news/", 200, `{"prefix":"www.e.org/news/","purged":2}`},
		{"GET", "", 200, `"entries":1`},
		{"DELETE", "?prefix=", 200, `"purged":1`},
	}
	for _, tt := range tests {
		req, _ := http.NewRequest(tt.method, admin.URL+"/api/v1/cache"+tt.query, nil)
		resp, err := admin.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tt.status || !strings.Contains(string(b), tt.body) {
			t.Errorf("%s %s: %d %s, want %d containing %s", tt.method, tt.query, resp.StatusCode, b, tt.status, tt.body)
		}
		if !json.Valid(b) {
			t.Errorf("%s %s: not JSON: %s", tt.method, tt.query, b)
		}
	}
}
