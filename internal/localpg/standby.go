// Hot standbys of a cluster, streaming from it, for tests and development
// of read replicas.

package localpg

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
)

// StandbyDir returns the directory in which StartStandby keeps the standby
// of the cluster that Start keeps in dir.
func StandbyDir(dir string) string { return filepath.Join(dir, "standby") }

// StartStandby starts a hot standby of c, made with pg_basebackup -R and
// listening on a port of its own, and returns it once it accepts connections
// and streams WAL from c.
//
// The standby of a StartTemp cluster is a temporary cluster of its own. The
// standby of a Start cluster is kept in StandbyDir of its directory: if it
// runs and streams from c, StartStandby returns it as it is (Reused);
// otherwise it is made anew from a fresh base backup, since a stopped
// standby may need WAL that c has recycled, or follow a cluster since
// removed.
//
// A standby is a Cluster of its own: Stop, Freeze, Kill, Restart and Remove
// act on it alone, and Remove of c leaves it running, its WAL receiver
// retrying, until it is removed in turn.
func (c *Cluster) StartStandby(ctx context.Context) (*Cluster, error) {
	basebackup, err := Tool("pg_basebackup")
	if err != nil {
		return nil, err
	}
	if c.temp {
		s, err := newTemp("coco-localpg-standby-")
		if err != nil {
			return nil, err
		}
		if err := s.createStandby(ctx, c, basebackup, 0); err != nil {
			s.Remove()
			return nil, err
		}
		return s, nil
	}

	s, unlock, err := openDir(ctx, StandbyDir(c.dir))
	if err != nil {
		return nil, err
	}
	defer unlock()
	if pf, err := readPIDFile(s.dataDir); err == nil && alive(pf.pid) {
		// Its WAL receiver retries a lost primary every 5 s
		// (wal_retrieve_retry_interval).
		err := s.waitReady(ctx)
		if err == nil {
			err = s.waitStreaming(ctx, c, 10*time.Second)
		}
		if err == nil {
			s.reused = true
			return s, nil
		}
		if err := s.stop("immediate"); err != nil {
			return nil, err
		}
	}
	port := s.previousPort()
	if port != 0 && !portFree(port) {
		port = 0
	}
	if err := os.RemoveAll(s.dataDir); err != nil {
		return nil, fmt.Errorf("localpg: %w", err)
	}
	if err := s.createStandby(ctx, c, basebackup, port); err != nil {
		s.Remove()
		return nil, err
	}
	return s, nil
}

// createStandby makes s a base backup of primary p, starts it on port (a free
// one if 0), and waits for it to stream from p.
func (s *Cluster) createStandby(ctx context.Context, p *Cluster, basebackup string, port int) error {
	// -c fast: the default checkpoint spreads its writes over minutes.
	if err := s.run(ctx, basebackup, "-D", s.dataDir, "-R", "-X", "stream",
		"-c", "fast", "--no-sync", "--no-manifest",
		"-d", fmt.Sprintf("host=127.0.0.1 port=%d user=postgres", p.port)); err != nil {
		return err
	}
	if port == 0 {
		var err error
		if port, err = freePort(); err != nil {
			return err
		}
	}
	if err := s.startOn(ctx, port); err != nil {
		return err
	}
	return s.waitStreaming(ctx, p, 60*time.Second)
}

// waitStreaming waits up to timeout for the standby s to stream WAL from p.
func (s *Cluster) waitStreaming(ctx context.Context, p *Cluster, timeout time.Duration) error {
	var want int64
	if err := p.queryRow(ctx, "select system_identifier from pg_control_system()", nil, &want); err != nil {
		return err
	}
	what := fmt.Sprintf("the standby in %s to stream from port %d (see %s)", s.dataDir, p.port, s.logFile)
	return poll(ctx, timeout, what, func(ctx context.Context) (bool, error) {
		var sysID int64
		var streaming bool
		err := s.queryRow(ctx, `select (select system_identifier from pg_control_system()),
			coalesce((select status = 'streaming' and sender_port = $1 from pg_stat_wal_receiver), false)`,
			[]any{p.port}, &sysID, &streaming)
		if err == nil && sysID != want {
			return true, fmt.Errorf("localpg: %s is a copy of another cluster than the one on port %d", s.dataDir, p.port)
		}
		return streaming, err
	})
}

// PauseReplay pauses the replay of WAL on the standby c: it goes on
// receiving WAL from its primary, but once PauseReplay returns it shows none
// of it until ResumeReplay, and its replay lag grows as the primary writes.
func (c *Cluster) PauseReplay(ctx context.Context) error {
	if err := c.queryRow(ctx, "select pg_wal_replay_pause()", nil, nil); err != nil {
		return err
	}
	// Replay may apply a record more before it sees the request.
	return poll(ctx, 10*time.Second, "replay to pause on port "+strconv.Itoa(c.port), func(ctx context.Context) (bool, error) {
		var paused bool
		err := c.queryRow(ctx, "select pg_get_wal_replay_pause_state() = 'paused'", nil, &paused)
		return paused, err
	})
}

// ResumeReplay resumes the replay of WAL on the standby c after PauseReplay.
func (c *Cluster) ResumeReplay(ctx context.Context) error {
	return c.queryRow(ctx, "select pg_wal_replay_resume()", nil, nil)
}

// Lag is how far a standby's replay trails the WAL it has received.
type Lag struct {
	Bytes int64 // received, not yet replayed
	// Time since the last replayed transaction committed on the primary,
	// while some received WAL is not replayed; else 0.
	Time time.Duration
}

// ReplayLag returns the replay lag of the standby c. A standby that cannot
// reach its primary receives nothing, so its lag stays 0.
func (c *Cluster) ReplayLag(ctx context.Context) (Lag, error) {
	var standby bool
	var lag Lag
	var seconds float64
	err := c.queryRow(ctx, `select pg_is_in_recovery(),
		coalesce(pg_wal_lsn_diff(pg_last_wal_receive_lsn(), pg_last_wal_replay_lsn()), 0)::int8,
		case when pg_last_wal_receive_lsn() > pg_last_wal_replay_lsn()
			then coalesce(extract(epoch from now() - pg_last_xact_replay_timestamp()), 0)::float8
			else 0 end`, nil, &standby, &lag.Bytes, &seconds)
	if err != nil {
		return Lag{}, err
	}
	if !standby {
		return Lag{}, fmt.Errorf("localpg: server on port %d is not a standby", c.port)
	}
	lag.Time = time.Duration(seconds * float64(time.Second))
	return lag, nil
}

// queryRow runs query with args on c's "postgres" database and scans its
// one row into dest (nil to skip a column).
func (c *Cluster) queryRow(ctx context.Context, query string, args []any, dest ...any) error {
	conn, err := pgx.Connect(ctx, c.URL())
	if err != nil {
		return fmt.Errorf("localpg: %w", err)
	}
	defer conn.Close(context.Background())
	if err := conn.QueryRow(ctx, query, args...).Scan(dest...); err != nil {
		return fmt.Errorf("localpg: %w", err)
	}
	return nil
}

// poll calls cond every 100 ms until it reports done, for up to timeout. It
// returns cond's error once done, else one saying what it waited for, with
// cond's last error.
func poll(ctx context.Context, timeout time.Duration, what string, cond func(context.Context) (done bool, err error)) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		done, err := cond(ctx)
		if done {
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("localpg: waited %v for %s (last error: %v)", timeout, what, err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}
