package store

import (
	"context"
	"errors"
	"io"
	"net"

	"github.com/jackc/pgx/v5/pgconn"
)

// ErrUnavailable means the database could not answer now: it is down,
// restarting, out of room or connections, or the request's deadline passed.
// Callers answer 503 and the client retries later.
var ErrUnavailable = errors.New("database unavailable")

// ErrGone means the user was erased after the session (or settings change)
// started: it is refused, and nothing is stored.
var ErrGone = errors.New("user erased")

// ConflictError means a session_id is already stored with other values.
type ConflictError struct {
	// Fields names what differs, e.g. "started_at, duration_seconds".
	Fields string
}

func (e *ConflictError) Error() string {
	return "session_id is already stored with different values: " + e.Fields
}

// InvalidError means the database refused a value that only it can judge:
// a time zone it does not know, or a retention cut-off too recent
// ("older_than").
type InvalidError struct {
	// Field names the request field, e.g. "time_zone".
	Field string
}

func (e *InvalidError) Error() string { return "invalid " + e.Field }

// unavailableClasses are the SQLSTATE classes that say "not now": connection
// exceptions (08), insufficient resources such as a full disk or too many
// connections (53), and operator intervention such as a shutdown, a
// cancelled statement or an idle-session timeout (57).
var unavailableClasses = map[string]bool{"08": true, "53": true, "57": true}

// unavailableCodes are the other SQLSTATEs that a later retry can cure.
var unavailableCodes = map[string]bool{
	"25006": true, // read_only_sql_transaction (a standby after a failover)
	"25P03": true, // idle_in_transaction_session_timeout
	"25P04": true, // transaction_timeout (PostgreSQL 17)
	"3F000": true, // invalid_schema_name: schema coco is missing, not migrated yet
	"40001": true, // serialization_failure, once the retry failed too
	"40P01": true, // deadlock_detected, once the retry failed too
	"55P03": true, // lock_not_available (lock_timeout), e.g. during a migration
	"58030": true, // io_error
}

// classify maps a driver error to ErrUnavailable, ErrGone, *ConflictError,
// *InvalidError or itself
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
		case pgErr.Code == "CC422":
			return &InvalidError{Field: pgErr.Detail}
		case pgErr.Code == "CC410":
			return ErrGone
		case unavailableCodes[pgErr.Code] || len(pgErr.Code) == 5 && unavailableClasses[pgErr.Code[:2]]:
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
// lost host, a proxy's idle cut), so pgx read EOF where a message was due.
// pgx returns the io error itself, which is no net.Error.
func isConnectionLost(err error) bool {
	return errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) || errors.Is(err, pgconn.ErrConnClosed)
}

func isConnectError(err error) bool {
	var connErr *pgconn.ConnectError
	return errors.As(err, &connErr)
}

// isRetryable reports whether running the same call again may succeed at
// once: the server aborted it for a serialization failure or a deadlock,
// or the connection it ran on had been closed by the server or a proxy
// while it sat idle in the pool (idle-session timeout, a restart, a cut),
// so the pool will hand out a fresh one. Every store call is idempotent,
// so running it twice is safe even if the first attempt took effect.
func isRetryable(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch pgErr.Code {
		case "40001", "40P01", // serialization_failure, deadlock_detected
			"57P01", "57P05", // admin_shutdown, idle_session_timeout: the FATAL that closed an idle connection
			"08006", "08003": // connection_failure, connection_does_not_exist
			return true
		}
		return false
	}
	return pgconn.SafeToRetry(err) || isConnectionLost(err)
}
