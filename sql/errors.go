package sql

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"
)

// ErrUnavailable means the database could not answer in time: it is down,
// restarting, overloaded, or the request's deadline passed. Callers answer
// 503 and the client retries later.
var ErrUnavailable = errors.New("database unavailable")

// ConflictError means a session_id is already stored with other values.
type ConflictError struct {
	// Fields names what differs, e.g. "started_at, duration_seconds".
	Fields string
}

func (e *ConflictError) Error() string {
	return "session_id is already stored with different values: " + e.Fields
}

// SQLSTATEs besides class 08 (connection exceptions) that mean "try again
// later" rather than "this request is wrong".
var unavailableCodes = map[string]bool{
	"25006": true, // read_only_sql_transaction (a standby after a failover)
	"3F000": true, // invalid_schema_name: schema coco is missing, not migrated yet
	"40001": true, // serialization_failure, once the retry failed too
	"40P01": true, // deadlock_detected, once the retry failed too
	"53300": true, // too_many_connections
	"55P03": true, // lock_not_available (lock_timeout)
	"57014": true, // query_canceled (statement_timeout)
	"57P01": true, // admin_shutdown
	"57P02": true, // crash_shutdown
	"57P03": true, // cannot_connect_now (starting up, shutting down)
}

// classify maps a driver error to ErrUnavailable, *ConflictError or itself
// (an internal error whose text must never reach a client).
func classify(ctx context.Context, err error) error {
	if err == nil {
		return nil
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch {
		case pgErr.Code == "CC409":
			return &ConflictError{Fields: pgErr.Detail}
		case unavailableCodes[pgErr.Code] || strings.HasPrefix(pgErr.Code, "08"):
			return errors.Join(ErrUnavailable, err)
		}
		return err
	}
	var netErr net.Error
	if ctx.Err() != nil || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) ||
		pgconn.SafeToRetry(err) || pgconn.Timeout(err) || errors.As(err, &netErr) || isConnectError(err) ||
		isConnectionLost(err) {
		return errors.Join(ErrUnavailable, err)
	}
	return err
}

// isConnectionLost reports whether the connection ended under a query: the
// backend or the whole server died without a word (SIGKILL, OOM killer, a
// lost host), so pgx read EOF where a message was due. pgx returns the
// io error itself, which is no net.Error.
func isConnectionLost(err error) bool {
	return errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) || errors.Is(err, pgconn.ErrConnClosed)
}

func isConnectError(err error) bool {
	var connErr *pgconn.ConnectError
	return errors.As(err, &connErr)
}

func isRetryable(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && (pgErr.Code == "40001" || pgErr.Code == "40P01")
}
