package httpapi

import (
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the service's Prometheus metrics. Their labels are route
// templates, methods, statuses and fixed outcome names: never a user id, a
// path as sent, or a token.
type metrics struct {
	requests  *prometheus.CounterVec
	latency   *prometheus.HistogramVec
	ingested  *prometheus.CounterVec
	batchSize prometheus.Histogram
	dbErrors  *prometheus.CounterVec
}

// routeUnmatched labels requests no route took (404, 405, preflights).
const routeUnmatched = "unmatched"

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "coco_http_requests_total",
			Help: "HTTP requests answered, by route template, method and status.",
		}, []string{"route", "method", "status"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "coco_http_request_duration_seconds",
			Help:    "Time to answer an HTTP request, by route template and method.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}, []string{"route", "method"}),
		ingested: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "coco_ingest_sessions_total",
			Help: "Session summaries received, single and in batches, by outcome: ok, duplicate, conflict, invalid or gone.",
		}, []string{"outcome"}),
		batchSize: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "coco_ingest_batch_sessions",
			Help:    "Items per batch ingest request.",
			Buckets: []float64{1, 10, 50, 100, 250, 500, 1000},
		}),
		dbErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "coco_db_errors_total",
			Help: "Requests the database could not serve as asked, by what coco made of it: unavailable (503), conflict (409), invalid (422), gone (410) or internal (500).",
		}, []string{"class"}),
	}
	reg.MustRegister(m.requests, m.latency, m.ingested, m.batchSize, m.dbErrors)
	// Every outcome and class from the start, so rates work from the first
	// scrape and dashboards need no "absent" special case.
	for _, o := range []string{"ok", "duplicate", "conflict", "invalid", "gone"} {
		m.ingested.WithLabelValues(o)
	}
	for _, c := range []string{"unavailable", "conflict", "invalid", "gone", "internal"} {
		m.dbErrors.WithLabelValues(c)
	}
	return m
}

func (m *metrics) observe(route, method string, status int, took time.Duration) {
	method = methodLabel(method)
	m.requests.WithLabelValues(route, method, strconv.Itoa(status)).Inc()
	m.latency.WithLabelValues(route, method).Observe(took.Seconds())
}

// methodLabel keeps the method label to the methods HTTP defines: a client
// may send any token there, and each new one would be a new series.
func methodLabel(method string) string {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions, http.MethodConnect, http.MethodTrace:
		return method
	}
	return "other"
}
