package store

import (
	"github.com/prometheus/client_golang/prometheus"
)

// poolCollector reports the connection pool's statistics to Prometheus, read
// at each scrape.
type poolCollector struct {
	st                                        *Store
	acquired, idle, total, max                *prometheus.Desc
	acquires, waits, waitSeconds, acquireSecs *prometheus.Desc
}

// Collector returns a Prometheus collector of the store's connection pool:
// connections acquired, idle, open and allowed, and how often and how long
// requests waited for one (a growing wait says the pool, or the database
// behind it, is the bottleneck).
func (st *Store) Collector() prometheus.Collector {
	d := func(name, help string) *prometheus.Desc { return prometheus.NewDesc(name, help, nil, nil) }
	return &poolCollector{
		st:          st,
		acquired:    d("coco_db_pool_acquired_connections", "Connections in use by requests."),
		idle:        d("coco_db_pool_idle_connections", "Open connections not in use."),
		total:       d("coco_db_pool_total_connections", "Open connections, acquired, idle or being opened."),
		max:         d("coco_db_pool_max_connections", "The most connections the pool opens (pool_max_conns)."),
		acquires:    d("coco_db_pool_acquires_total", "Connections handed to requests."),
		waits:       d("coco_db_pool_acquire_waits_total", "Acquires that found no idle connection and waited."),
		waitSeconds: d("coco_db_pool_acquire_wait_seconds_total", "Time acquires spent waiting for a connection."),
		acquireSecs: d("coco_db_pool_acquire_seconds_total", "Time spent acquiring connections, waits included."),
	}
}

func (c *poolCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.acquired, c.idle, c.total, c.max, c.acquires, c.waits, c.waitSeconds, c.acquireSecs} {
		ch <- d
	}
}

func (c *poolCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.st.pool.Stat()
	gauge := func(d *prometheus.Desc, v float64) { ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v) }
	counter := func(d *prometheus.Desc, v float64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v)
	}
	gauge(c.acquired, float64(s.AcquiredConns()))
	gauge(c.idle, float64(s.IdleConns()))
	gauge(c.total, float64(s.TotalConns()))
	gauge(c.max, float64(s.MaxConns()))
	counter(c.acquires, float64(s.AcquireCount()))
	counter(c.waits, float64(s.EmptyAcquireCount()))
	counter(c.waitSeconds, s.EmptyAcquireWaitTime().Seconds())
	counter(c.acquireSecs, s.AcquireDuration().Seconds())
}
