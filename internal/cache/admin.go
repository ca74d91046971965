package cache

import (
	"encoding/json"
	"net/http"
)

// AdminHandler serves the cache's own admin routes; the admin package mounts
// it at /api/v1/cache behind its authentication (it checks none itself):
//
//	GET    /api/v1/cache             the Stats as JSON
//	DELETE /api/v1/cache?prefix=P    purge keys starting with P (see Purge);
//	                                 answers {"prefix": P, "purged": N}.
//	                                 prefix is required; an empty value
//	                                 ("?prefix=") purges everything.
//
// Other methods get 405 with Allow. It is safe for concurrent use.
func (c *Cache) AdminHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		switch r.Method {
		case http.MethodGet, http.MethodHead:
			writeJSON(w, http.StatusOK, c.Stats())
		case http.MethodDelete:
			q := r.URL.Query()
			if !q.Has("prefix") {
				writeJSON(w, http.StatusBadRequest, map[string]string{
					"error": `prefix is required, such as ?prefix=www.example.org/news/ ("?prefix=" purges everything)`,
				})
				return
			}
			prefix := q.Get("prefix")
			n := c.Purge(prefix)
			c.o.Logger.Info("cache: purged", "prefix", prefix, "responses", n)
			writeJSON(w, http.StatusOK, struct {
				Prefix string `json:"prefix"`
				Purged int    `json:"purged"`
			}{prefix, n})
		default:
			w.Header().Set("Allow", "GET, HEAD, DELETE")
			writeJSON(w, http.StatusMethodNotAllowed, map[string]string{"error": "use GET or DELETE"})
		}
	})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
