package store

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
)

// Standbys sends the dashboard's reads to PostgreSQL hot standbys that keep
// up with the primary. A checker measures each standby's replay lag every
// CheckEvery, off the request path; a standby that lags more than MaxLag,
// does not answer the check, or fails a read is skipped until a check finds
// it well again. With none in use, reads go to the primary.
type Standbys struct {
	opts    StandbyOptions
	members []*standby
	next    atomic.Uint32
	primary atomic.Uint64 // routed reads the primary answered
}

// StandbyOptions tune Standbys; zero values take the defaults.
type StandbyOptions struct {
	MaxLag     time.Duration // default 5s
	CheckEvery time.Duration // default 1s
	Logger     *slog.Logger  // default slog.Default()
}

type standby struct {
	name  string // host:port, never the URL: it may hold a password
	pool  *pgxpool.Pool
	inUse atomic.Bool
	lag   atomic.Int64 // nanoseconds at the last check that answered
	reads atomic.Uint64

	mu     sync.Mutex
	reason string // why it is skipped; "" while in use

	pending []receipt // WAL received and not yet replayed, oldest first
}

// NewStandbys routes reads to the standbys behind pools, each named by its
// host and port. None is used before its first check: call Run.
func NewStandbys(pools []*pgxpool.Pool, opts StandbyOptions) *Standbys {
	if opts.MaxLag <= 0 {
		opts.MaxLag = 5 * time.Second
	}
	if opts.CheckEvery <= 0 {
		opts.CheckEvery = time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	s := &Standbys{opts: opts}
	for _, p := range pools {
		cc := p.Config().ConnConfig
		s.members = append(s.members, &standby{
			name: net.JoinHostPort(cc.Host, strconv.Itoa(int(cc.Port))), pool: p, reason: "not checked yet"})
	}
	return s
}

// Names lists the standbys as host:port.
func (s *Standbys) Names() []string {
	var names []string
	for _, sb := range s.members {
		names = append(names, sb.name)
	}
	return names
}

// Run checks every standby at once and then every CheckEvery until ctx ends.
func (s *Standbys) Run(ctx context.Context) {
	var wg sync.WaitGroup
	for _, sb := range s.members {
		wg.Go(func() {
			for {
				s.check(ctx, sb)
				select {
				case <-ctx.Done():
					return
				case <-time.After(s.opts.CheckEvery):
				}
			}
		})
	}
	wg.Wait()
}

// Close closes the standbys' pools.
func (s *Standbys) Close() {
	for _, sb := range s.members {
		sb.pool.Close()
	}
}

// positionQuery reads where a standby stands: whether it is in recovery (a
// server that is not is no standby of this primary: maybe one promoted
// away from it), whether its WAL receiver runs, and the WAL it has received
// and replayed, in bytes. Any role may run it: without pg_read_all_stats,
// pg_stat_wal_receiver still shows that a receiver runs.
const positionQuery = `
select pg_is_in_recovery(),
       exists (select from pg_stat_wal_receiver),
       (pg_last_wal_receive_lsn() - '0/0')::bigint,
       (pg_last_wal_replay_lsn() - '0/0')::bigint`

// checkTimeout is how long a check waits for the standby's answer.
const checkTimeout = time.Second

// maxPending bounds a standby's pending receipts while its replay is stuck.
const maxPending = 1000

// receipt is a check's reading of how much WAL the standby had received.
type receipt struct {
	at       time.Time
	received int64
}

func (s *Standbys) check(ctx context.Context, sb *standby) {
	ctx, cancel := context.WithTimeout(ctx, checkTimeout)
	defer cancel()
	var recovering, receiving bool
	var received, replayed *int64
	err := sb.pool.QueryRow(ctx, positionQuery).Scan(&recovering, &receiving, &received, &replayed)
	if errors.Is(ctx.Err(), context.Canceled) {
		return // shutting down
	}
	switch {
	case err != nil:
		s.skip(sb, "does not answer")
	case !recovering:
		s.skip(sb, "is not in recovery (promoted?)")
	case !receiving || received == nil || replayed == nil:
		s.skip(sb, "is not streaming from a primary")
	default:
		lag := sb.lagBehind(time.Now(), *received, *replayed)
		sb.lag.Store(int64(lag))
		if lag > s.opts.MaxLag {
			s.skip(sb, "replay lags more than READ_MAX_LAG")
			return
		}
		s.use(sb)
	}
}

// lagBehind is how long the standby has held WAL it received and has not
// replayed: the time since the first check that saw WAL beyond what it has
// replayed now, so within a check of the truth. Unlike the age of the last
// replayed transaction, it stays 0 on an idle primary and does not jump
// when a write arrives after a quiet hour. Only the checker calls it.
func (sb *standby) lagBehind(now time.Time, received, replayed int64) time.Duration {
	if len(sb.pending) > 0 && received < sb.pending[len(sb.pending)-1].received {
		sb.pending = nil // a standby rebuilt from another primary: positions start over
	}
	if received > replayed && (len(sb.pending) == 0 || received > sb.pending[len(sb.pending)-1].received) &&
		len(sb.pending) < maxPending {
		sb.pending = append(sb.pending, receipt{at: now, received: received})
	}
	for len(sb.pending) > 0 && sb.pending[0].received <= replayed {
		sb.pending = sb.pending[1:]
	}
	if len(sb.pending) == 0 {
		return 0
	}
	return now.Sub(sb.pending[0].at)
}

func (s *Standbys) use(sb *standby) {
	sb.mu.Lock()
	defer sb.mu.Unlock()
	if sb.inUse.Load() {
		return
	}
	sb.reason = ""
	sb.inUse.Store(true)
	s.opts.Logger.Info("standby in use", "standby", sb.name, "lag_ms", time.Duration(sb.lag.Load()).Milliseconds())
}

func (s *Standbys) skip(sb *standby, reason string) {
	sb.mu.Lock()
	defer sb.mu.Unlock()
	wasInUse := sb.inUse.Swap(false)
	if wasInUse || sb.reason != reason {
		s.opts.Logger.Warn("standby skipped", "standby", sb.name, "reason", reason,
			"lag_ms", time.Duration(sb.lag.Load()).Milliseconds())
	}
	sb.reason = reason
}

// pick returns the next standby in use, round robin, or nil for none.
func (s *Standbys) pick() *standby {
	if s == nil {
		return nil
	}
	n := uint32(len(s.members))
	start := s.next.Add(1)
	for i := range n {
		if sb := s.members[(start+i)%n]; sb.inUse.Load() {
			return sb
		}
	}
	return nil
}

// readServerKey carries where a request's reads went, for its log line.
type readServerKey struct{}

// WithReadServer returns a context in which the reads that Standbys may
// route record the server that answered them ("primary", or a standby's
// host:port) in *server.
func WithReadServer(ctx context.Context, server *string) context.Context {
	return context.WithValue(ctx, readServerKey{}, server)
}

func noteServer(ctx context.Context, name string) {
	if p, ok := ctx.Value(readServerKey{}).(*string); ok {
		*p = name
	}
}

// read runs fn on a standby in use, else on the primary. A standby gets a
// third of the time left, so a frozen one leaves the primary enough; on any
// error from it, the standby is skipped and the primary answers.
func (st *Store) read(ctx context.Context, fn func(ctx context.Context, q querier) error) error {
	if sb := st.standbys.pick(); sb != nil {
		sctx, cancel := context.WithTimeout(ctx, remaining(ctx)/3)
		err := fn(sctx, sb.pool)
		cancel()
		if err == nil {
			sb.reads.Add(1)
			noteServer(ctx, sb.name)
			return nil
		}
		if ctx.Err() != nil {
			return classify(ctx, err)
		}
		st.standbys.skip(sb, "failed a read")
	}
	err := st.retry(ctx, func() error { return fn(ctx, st.pool) })
	if err == nil && st.standbys != nil {
		st.standbys.primary.Add(1)
		noteServer(ctx, "primary")
	}
	return err
}

// querier is what a read needs of a pool.
type querier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// remaining is the time left before ctx's deadline, or DB_TIMEOUT's
// default when it has none.
func remaining(ctx context.Context) time.Duration {
	if d, ok := ctx.Deadline(); ok {
		return time.Until(d)
	}
	return 2 * time.Second
}

// Collector reports, per standby, whether it is in use and its last
// measured lag, and how many routed reads each server answered.
func (s *Standbys) Collector() prometheus.Collector { return standbysCollector{s} }

type standbysCollector struct{ s *Standbys }

var (
	standbyInUseDesc = prometheus.NewDesc("coco_db_standby_in_use",
		"1 while the standby answers dashboard reads, 0 while it is skipped (lagging, down, or failing).", []string{"standby"}, nil)
	standbyLagDesc = prometheus.NewDesc("coco_db_standby_replay_lag_seconds",
		"The standby's replay lag at its last check that answered.", []string{"standby"}, nil)
	readsDesc = prometheus.NewDesc("coco_db_reads_total",
		"Dashboard reads (and If-None-Match checks) answered, by server: primary, or a standby's host:port.", []string{"server"}, nil)
)

func (c standbysCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- standbyInUseDesc
	ch <- standbyLagDesc
	ch <- readsDesc
}

func (c standbysCollector) Collect(ch chan<- prometheus.Metric) {
	for _, sb := range c.s.members {
		inUse := 0.0
		if sb.inUse.Load() {
			inUse = 1
		}
		ch <- prometheus.MustNewConstMetric(standbyInUseDesc, prometheus.GaugeValue, inUse, sb.name)
		ch <- prometheus.MustNewConstMetric(standbyLagDesc, prometheus.GaugeValue, time.Duration(sb.lag.Load()).Seconds(), sb.name)
		ch <- prometheus.MustNewConstMetric(readsDesc, prometheus.CounterValue, float64(sb.reads.Load()), sb.name)
	}
	ch <- prometheus.MustNewConstMetric(readsDesc, prometheus.CounterValue, float64(c.s.primary.Load()), "primary")
}
