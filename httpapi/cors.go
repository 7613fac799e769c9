package httpapi

import (
	"net/http"
	"strings"
)

// CORS lets exactly one browser origin, the dashboard's, read the public
// routes. It is written out here rather than taken from a library because the
// policy is small and every line of it is a security decision.
const (
	corsAllowMethods  = "GET"
	corsAllowHeaders  = "Authorization, Content-Type, If-None-Match, X-Request-ID"
	corsExposeHeaders = "X-Request-ID, ETag, Coco-Window-End, Coco-Time-Zone"
	// Ten minutes saves a preflight on most dashboard polls without pinning
	// a changed policy in browsers for long (Chromium caps it at two hours).
	corsMaxAge = "600"
)

var errOriginNotAllowed = &httpError{http.StatusForbidden, "CORS origin not allowed"}

// cors applies the policy to every route except /internal/*, which only the
// device calls, server to server: a browser has no business there, so those
// responses carry no CORS header at all and their preflights fail.
func (s *Server) cors(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/internal/") {
			next.ServeHTTP(w, r)
			return
		}
		h := w.Header()
		// Responses differ by Origin, so caches must key on it even when the
		// request had none.
		h.Add("Vary", "Origin")
		allowed := s.allowedOrigin(r)
		if origins := r.Header.Values("Origin"); !allowed && len(origins) > 0 {
			setLogRefusedOrigin(r.Context(), strings.Join(origins, ", "))
		}
		preflight := r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != ""
		switch {
		case preflight && allowed:
			h.Set("Access-Control-Allow-Origin", s.cfg.DashboardOrigin)
			h.Set("Access-Control-Allow-Methods", corsAllowMethods)
			h.Set("Access-Control-Allow-Headers", corsAllowHeaders)
			h.Set("Access-Control-Max-Age", corsMaxAge)
			w.WriteHeader(http.StatusNoContent)
		case preflight:
			// A preflight from any other origin is refused outright, with no
			// CORS header, so the browser blocks the request and whoever
			// reads the network log sees why.
			s.writeError(w, r, errOriginNotAllowed)
		default:
			if allowed {
				h.Set("Access-Control-Allow-Origin", s.cfg.DashboardOrigin)
				h.Set("Access-Control-Expose-Headers", corsExposeHeaders)
			}
			next.ServeHTTP(w, r)
		}
	})
}

// allowedOrigin is an exact, case-sensitive match of the request's one Origin
// header against DashboardOrigin: no prefixes, suffixes, wildcards or
// "null" (which sandboxed frames and file:// pages send).
func (s *Server) allowedOrigin(r *http.Request) bool {
	origins := r.Header.Values("Origin")
	configured := s.cfg.DashboardOrigin != "" && s.cfg.DashboardOrigin != "null"
	return configured && len(origins) == 1 && origins[0] == s.cfg.DashboardOrigin
}
