// Package httpapi is coco's HTTP layer: it authenticates, validates and logs
// requests, applies CORS, and shapes what the SQL functions (through
// coco/sql/store) return into the JSON the device and the dashboard expect.
// It computes no dashboard number itself.
package httpapi

import (
	"context"
	"crypto/sha256"
	"log/slog"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/julienschmidt/httprouter"
	"github.com/prometheus/client_golang/prometheus"

	"coco/sql/migrations"
	"coco/sql/store"
)

// Config is what the HTTP layer needs from the environment.
type Config struct {
	IngestToken     string
	DashboardTokens map[string]string // bearer token -> external user id, or "*" for every user
	DashboardOrigin string            // the one origin allowed by CORS, e.g. "https://dashboard.example.com"
	Docs            bool              // serve /docs and /openapi.json (false when APP_ENV=production)
	DBTimeout       time.Duration     // deadline for each request's database work (default 2s if zero)
	// Metrics is where the service's metrics are registered; nil keeps
	// them in a registry of the Server's own.
	Metrics prometheus.Registerer
}

// defaultDBTimeout keeps a request from waiting on a sick database for longer
// than a load balancer or a polling dashboard would wait for the answer.
const defaultDBTimeout = 2 * time.Second

// Server serves coco's HTTP API. Build it with New; it is safe for
// concurrent use.
type Server struct {
	store  *store.Store
	logger *slog.Logger
	cfg    Config
	// now is the clock every handler reads, so tests can pin the day.
	now func() time.Time

	ingestDigest    [sha256.Size]byte
	dashboardTokens []dashboardToken

	expectedVersion int32
	draining        atomic.Bool
	metrics         *metrics

	router *httprouter.Router
}

// New returns a Server that reads and writes through st and logs to logger.
func New(st *store.Store, logger *slog.Logger, cfg Config) *Server {
	if cfg.DBTimeout <= 0 {
		cfg.DBTimeout = defaultDBTimeout
	}
	s := &Server{
		store:           st,
		logger:          logger,
		cfg:             cfg,
		now:             time.Now,
		ingestDigest:    sha256.Sum256([]byte(cfg.IngestToken)),
		dashboardTokens: digestTokens(cfg.DashboardTokens),
	}
	if cfg.Metrics == nil {
		cfg.Metrics = prometheus.NewRegistry()
	}
	s.metrics = newMetrics(cfg.Metrics)
	s.expectedVersion = migrations.ExpectedVersion()
	s.router = s.routes()
	return s
}

// routes lists every route the service answers.
func (s *Server) routes() *httprouter.Router {
	r := httprouter.New()
	// A path that differs from a route, by a trailing slash or by letter
	// case, is a 404 rather than a redirect: clients are programs, and a
	// redirect would drop a POST body or hide a wrong URL in a config.
	r.RedirectTrailingSlash = false
	r.RedirectFixedPath = false
	r.HandleMethodNotAllowed = true
	r.HandleOPTIONS = true
	r.GlobalOPTIONS = http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusNoContent)
	})
	r.NotFound = http.HandlerFunc(s.notFound)
	r.MethodNotAllowed = http.HandlerFunc(s.methodNotAllowed)
	// r.PanicHandler stays nil: recoverPanics (middleware.go) handles panics
	// for every route and middleware alike.

	// Every route, under its template (a metrics label, never the path as
	// sent); a GET route answers HEAD too, with the same headers.
	route := func(method, path string, h httprouter.Handle) {
		labelled := func(w http.ResponseWriter, r *http.Request, ps httprouter.Params) {
			setLogRoute(r.Context(), path)
			h(w, r, ps)
		}
		r.Handle(method, path, labelled)
		if method == http.MethodGet {
			r.Handle(http.MethodHead, path, labelled)
		}
	}
	route(http.MethodPost, "/internal/ingest/session_summary", s.requireIngestToken(s.handleIngest))
	route(http.MethodPost, "/internal/ingest/session_summaries", s.requireIngestToken(s.handleIngestBatch))
	route(http.MethodGet, "/api/dashboard/:user_id", s.requireDashboardToken(s.handleDashboard))
	route(http.MethodGet, "/internal/users/:user_id/settings", s.requireIngestToken(s.handleGetSettings))
	route(http.MethodPut, "/internal/users/:user_id/settings", s.requireIngestToken(s.handlePutSettings))
	route(http.MethodDelete, "/internal/users/:user_id", s.requireIngestToken(s.handleEraseUser))
	route(http.MethodGet, "/internal/users/:user_id/export", s.requireIngestToken(s.handleExportUser))

	route(http.MethodGet, "/healthz", s.handleHealthz)
	route(http.MethodGet, "/readyz", s.handleReadyz)
	route(http.MethodGet, "/livez", s.handleLivez)

	// Not registered at all in production, so they are 404 for every method.
	if s.cfg.Docs {
		route(http.MethodGet, "/openapi.json", s.handleOpenAPI)
		route(http.MethodGet, "/docs", s.handleDocs)
		route(http.MethodGet, "/docs/docs.js", s.handleDocs)
		route(http.MethodGet, "/docs/swaggerui/:file", s.handleDocs)
	}
	return r
}

// Handler returns the service with its middleware, outermost first: panic
// recovery, security headers, request id, request log, CORS. Bearer auth is
// per route, in routes().
func (s *Server) Handler() http.Handler {
	return s.recoverPanics(securityHeaders(requestID(s.logRequests(s.cors(s.router)))))
}

// StartDraining makes /readyz answer 503 from now on, so the load balancer
// stops sending new requests while the in-flight ones finish.
func (s *Server) StartDraining() { s.draining.Store(true) }

// dbContext bounds the database work of one request, so an unreachable or
// overloaded database turns into a prompt 503 instead of a hung request.
func (s *Server) dbContext(r *http.Request) (context.Context, context.CancelFunc) {
	return context.WithTimeout(r.Context(), s.cfg.DBTimeout)
}
