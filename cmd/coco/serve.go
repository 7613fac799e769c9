package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"coco/httpapi"
	"coco/sql/migrations"
	"coco/sql/store"
)

var serveVarsHelp = fmt.Sprintf(`  INGEST_SERVICE_TOKEN  bearer token of the device's ingest calls (required)
  DASHBOARD_TOKEN_MAP   dashboard bearer tokens: tok:user,tok2:user2 or {"tok":"user"}; user * = every user (required)
  DASHBOARD_ORIGIN      the one browser origin CORS allows, e.g. https://dashboard.example.com (required)
  APP_ENV               development, test or production; production hides /docs (default development)
  ROLLUP_WINDOW_DAYS    must be %[1]d (default %[1]d)
  PORT                  TCP port to listen on (default 8000)
  SHUTDOWN_GRACE        how long in-flight requests may run after SIGTERM (default 10s)
  SHUTDOWN_DRAIN        how long, within the grace, to keep serving with /readyz at 503 (default 1s)
  LOG_LEVEL             debug, info, warn or error (default info)
  MAX_CONNECTIONS       open client connections at most; past it new ones wait (default 1024, about 20 KiB each)
  METRICS_ADDR          serve Prometheus metrics at /metrics on this host:port, such as 127.0.0.1:9090 (default: off)
  LOG_FORMAT            json (default), or text for people
  DATABASE_READ_URL     hot standbys for the dashboard's reads, URLs separated by commas (default: none, all on DATABASE_URL)
  READ_MAX_LAG          skip a standby whose replay lags more than this (default 5s)
`, httpapi.WindowDays)

func runServe(ctx context.Context, c cli, args []string) int {
	fs := c.flagSet("serve", "[-addr host:port] [-migrate]", dbVarsHelp+serveVarsHelp+`
Serves until SIGINT or SIGTERM, then stops accepting connections, lets the
in-flight requests finish within SHUTDOWN_GRACE and exits 0. The database may
be down at start: /livez answers 200 and /readyz 503 until it is reachable and
migrated.
`)
	addr := fs.String("addr", "", "listen on this `address` instead of :$PORT (\"127.0.0.1:0\" picks a free port; the log line \"listening\" names it)")
	migrate := fs.Bool("migrate", false, "apply the migrations before serving, and exit 1 if that fails (off by default: on Fly.io the release command migrates)")
	if code := c.parse(fs, args); code >= 0 {
		return code
	}
	cfg, err := LoadServeConfig(c.environ)
	if err != nil {
		return c.fail("serve", err)
	}
	if *addr == "" {
		*addr = ":" + strconv.Itoa(int(cfg.Port))
	}
	logger := newLogger(c.stdout, cfg.LogFormat, slog.Level(cfg.LogLevel))

	srv := &server{cfg: cfg, addr: *addr, migrate: *migrate, logger: logger}
	if err := srv.Run(ctx); err != nil {
		logger.Error("start failed", "error", err.Error())
		return exitFail
	}
	code := exitOK
	select {
	case <-ctx.Done():
		c.stopSignals()
		logger.Info("shutting down", "grace", time.Duration(cfg.ShutdownGrace).String())
	case err := <-srv.failed:
		logger.Error("serve failed", "error", err.Error())
		code = exitFail
	}
	if err := srv.Close(); err != nil {
		logger.Error("stopped uncleanly", "error", err.Error())
		return exitFail
	}
	logger.Info("stopped")
	return code
}

// server is `coco serve`: Run starts it and returns once it listens, Close
// stops it gracefully. Tests start the real binary with -addr 127.0.0.1:0.
type server struct {
	cfg     ServeConfig
	addr    string
	migrate bool
	logger  *slog.Logger

	pool       *pgxpool.Pool
	standbys   *store.Standbys // nil without DATABASE_READ_URL
	stopChecks func()          // stops the standbys' checks
	api        *httpapi.Server
	http       *http.Server
	metrics    *http.Server // nil unless METRICS_ADDR is set
	failed     chan error   // receives the error if serving stops on its own
}

func newLogger(w io.Writer, format logFormat, level slog.Level) *slog.Logger {
	opts := &slog.HandlerOptions{Level: level}
	if format == "text" {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}

// Run opens the pool (without connecting), migrates if asked, listens and
// serves in the background.
func (s *server) Run(ctx context.Context) error {
	pool, err := openPool(ctx, s.cfg.DatabaseURL, s.cfg.DBTimeout)
	if err != nil {
		return fmt.Errorf("DATABASE_URL: %w", err)
	}
	s.pool = pool
	if s.migrate {
		res, err := migrateSchema(ctx, pool, migrations.Options{})
		if err != nil {
			pool.Close()
			return fmt.Errorf("migrate: %w", err)
		}
		s.logger.Info("migrated", "from_version", res.From, "to_version", res.To)
	}

	dbTimeout := time.Duration(s.cfg.DBTimeout)
	st := store.NewStore(pool)
	build := readBuildInfo()
	reg := prometheus.NewRegistry()
	if len(s.cfg.ReadURLs) > 0 {
		var pools []*pgxpool.Pool
		for _, u := range s.cfg.ReadURLs {
			p, err := openPool(ctx, u, s.cfg.DBTimeout)
			if err != nil {
				pool.Close()
				return fmt.Errorf("DATABASE_READ_URL: %w", err)
			}
			pools = append(pools, p)
		}
		s.standbys = store.NewStandbys(pools, store.StandbyOptions{
			MaxLag: time.Duration(s.cfg.ReadMaxLag), Logger: s.logger})
		checkCtx, stop := context.WithCancel(context.Background())
		s.stopChecks = stop
		go s.standbys.Run(checkCtx)
		st = st.WithStandbys(s.standbys)
		reg.MustRegister(s.standbys.Collector())
	}
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		st.Collector(),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "coco_build_info",
			Help: "1, labelled with the version and the commit this binary was built from.",
			ConstLabels: prometheus.Labels{"version": build.Version, "revision": build.Revision,
				"vcs_time": build.Time, "go_version": runtime.Version()},
		}, func() float64 { return 1 }),
	)
	s.api = httpapi.New(st, s.logger, httpapi.Config{
		IngestToken:     string(s.cfg.IngestToken),
		DashboardTokens: s.cfg.DashboardTokens,
		DashboardOrigin: string(s.cfg.DashboardOrigin),
		Docs:            s.cfg.AppEnv != "production",
		DBTimeout:       dbTimeout,
		Metrics:         reg,
	})
	limiter := newConnLimiter(int(s.cfg.MaxConnections))
	s.http = &http.Server{
		Handler:   s.api.Handler(),
		ConnState: limiter.ConnState,
		// Slow or idle clients must not hold connections: bodies are at most
		// 64 KiB and each request's database work ends within DB_TIMEOUT.
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       15 * time.Second,
		WriteTimeout:      dbTimeout + 15*time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(s.logger.Handler(), slog.LevelWarn),
	}

	ln, err := net.Listen("tcp", s.addr)
	if err != nil {
		pool.Close()
		return err
	}
	ln = limiter.Listen(ln)
	s.failed = make(chan error, 2)
	go func() {
		if err := s.http.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			s.failed <- err
		}
	}()
	metricsAddr := ""
	if s.cfg.MetricsAddr != "" {
		// A listener of its own, so the API's port (public on Fly.io)
		// never serves the metrics.
		mln, err := net.Listen("tcp", string(s.cfg.MetricsAddr))
		if err != nil {
			s.http.Close()
			pool.Close()
			return fmt.Errorf("METRICS_ADDR: %w", err)
		}
		metricsAddr = mln.Addr().String()
		mux := http.NewServeMux()
		mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
		s.metrics = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
		go func() {
			if err := s.metrics.Serve(mln); !errors.Is(err, http.ErrServerClosed) {
				s.failed <- err
			}
		}()
	}
	s.logger.Info("listening",
		"addr", ln.Addr().String(),
		"pid", os.Getpid(),
		"app_env", string(s.cfg.AppEnv),
		"database", s.cfg.DatabaseURL.String(),
		"standbys", s.standbyNames(),
		"dashboard_tokens", len(s.cfg.DashboardTokens),
		"dashboard_origin", string(s.cfg.DashboardOrigin),
		"max_connections", int(s.cfg.MaxConnections),
		"metrics_addr", metricsAddr,
		"version", build.Version,
		"revision", build.Revision,
	)
	return nil
}

// Close turns /readyz to 503 and keeps serving for SHUTDOWN_DRAIN, so load
// balancers stop routing here before the listener closes; then it stops
// accepting connections, waits for in-flight requests for the rest of
// SHUTDOWN_GRACE, and closes the pool. It reports an error if requests had
// to be cut off.
func (s *server) Close() error {
	s.api.StartDraining()
	grace := time.Duration(s.cfg.ShutdownGrace)
	ctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	time.Sleep(time.Duration(s.cfg.ShutdownDrain))
	err := s.http.Shutdown(ctx)
	if err != nil {
		s.http.Close()
		err = fmt.Errorf("requests still running after %s were cut off: %w", grace, err)
	}
	if s.metrics != nil {
		s.metrics.Close()
	}
	if s.standbys != nil {
		s.stopChecks()
		s.standbys.Close()
	}
	s.pool.Close()
	return err
}

// standbyNames lists the standbys for the listening line; the URLs may hold
// passwords.
func (s *server) standbyNames() string {
	if s.standbys == nil {
		return ""
	}
	return strings.Join(s.standbys.Names(), ",")
}
