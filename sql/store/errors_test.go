package store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// connectError is what pgx returns when nothing listens on the port.
func connectError(t *testing.T) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, err := pgconn.Connect(ctx, "postgres://coco@127.0.0.1:1/coco?sslmode=disable")
	if err == nil {
		conn.Close(ctx)
		t.Fatal("connected to port 1, want a refusal")
	}
	return err
}

// timeoutError is what pgx returns when a server accepts the connection
// but never answers (a frozen host): its own deadline, not the caller's.
func timeoutError(t *testing.T) error {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close() // held open, silent, until the listener closes
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	cfg, err := pgconn.ParseConfig(fmt.Sprintf("postgres://coco@%s/coco?sslmode=disable", ln.Addr()))
	if err != nil {
		t.Fatal(err)
	}
	cfg.ConnectTimeout = 100 * time.Millisecond
	conn, err := pgconn.ConnectConfig(ctx, cfg)
	if err == nil {
		conn.Close(ctx)
		t.Fatal("connected to a silent server, want a timeout")
	}
	return err
}

func pgErr(code string) error {
	return &pgconn.PgError{Severity: "ERROR", Code: code, Message: "message of " + code, Detail: "detail of " + code}
}

func TestClassify(t *testing.T) {
	t.Parallel()
	refused, timedOut := connectError(t), timeoutError(t)
	expired, cancel := context.WithCancel(context.Background())
	cancel()

	tests := []struct {
		name        string
		ctx         context.Context // context.Background() unless set
		err         error
		unavailable bool
	}{
		{"connection refused", nil, refused, true},
		{"connect timeout", nil, timedOut, true},
		{"dial error", nil, &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}, true},
		{"connection reset", nil, fmt.Errorf("receive message failed: %w", &net.OpError{Op: "read", Net: "tcp", Err: syscall.ECONNRESET}), true},
		{"server died mid-query", nil, io.ErrUnexpectedEOF, true},
		{"server died mid-query, wrapped", nil, fmt.Errorf("receive message failed: %w", io.ErrUnexpectedEOF), true},
		{"EOF", nil, io.EOF, true},
		{"conn closed", nil, fmt.Errorf("query: %w", pgconn.ErrConnClosed), true},
		{"deadline", nil, context.DeadlineExceeded, true},
		{"deadline, wrapped", nil, fmt.Errorf("acquire: %w", context.DeadlineExceeded), true},
		{"canceled", nil, context.Canceled, true},
		{"any error once the request's context is done", expired, errors.New("write failed"), true},
		{"connection exception 08006", nil, pgErr("08006"), true},
		{"connection exception 08001", nil, pgErr("08001"), true},
		{"too many connections 53300", nil, pgErr("53300"), true},
		{"lock timeout 55P03", nil, pgErr("55P03"), true},
		{"statement timeout 57014", nil, pgErr("57014"), true},
		{"admin shutdown 57P01", nil, pgErr("57P01"), true},
		{"crash shutdown 57P02", nil, pgErr("57P02"), true},
		{"cannot connect now 57P03", nil, pgErr("57P03"), true},
		{"57P03 while connecting", nil, fmt.Errorf("failed to connect: %w", pgErr("57P03")), true},
		{"idle-session timeout 57P05", nil, pgErr("57P05"), true},
		{"disk full 53100", nil, pgErr("53100"), true},
		{"out of memory 53200", nil, pgErr("53200"), true},
		{"insufficient resources 53000", nil, pgErr("53000"), true},
		{"I/O error 58030", nil, pgErr("58030"), true},
		{"idle in transaction timeout 25P03", nil, pgErr("25P03"), true},
		{"undefined file 58P01", nil, pgErr("58P01"), false},
		{"internal error XX000", nil, pgErr("XX000"), false},
		{"syntax error 42601", nil, pgErr("42601"), false},
		{"undefined function 42883", nil, pgErr("42883"), false},
		{"invalid schema name 3F000 (not migrated)", nil, pgErr("3F000"), true},
		{"check violation 23514", nil, pgErr("23514"), false},
		{"serialization failure 40001 (after its retry)", nil, pgErr("40001"), true},
		{"deadlock 40P01 (after its retry)", nil, pgErr("40P01"), true},
		{"read-only transaction 25006", nil, pgErr("25006"), true},
		{"no rows", nil, pgx.ErrNoRows, false},
		{"scan error", nil, errors.New("can't scan into dest[0]"), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx := tt.ctx
			if ctx == nil {
				ctx = context.Background()
			}
			got := classify(ctx, tt.err)
			if errors.Is(got, ErrUnavailable) != tt.unavailable {
				t.Errorf("classify(%v) = %v; want ErrUnavailable: %t", tt.err, got, tt.unavailable)
			}
			// The cause stays inspectable for the log line.
			if !errors.Is(got, tt.err) {
				t.Errorf("classify(%v) = %v, want it to wrap the driver error", tt.err, got)
			}
			var conflict *ConflictError
			if errors.As(got, &conflict) {
				t.Errorf("classify(%v) = a ConflictError, want none", tt.err)
			}
		})
	}

	if got := classify(context.Background(), nil); got != nil {
		t.Errorf("classify(nil) = %v, want nil", got)
	}
	var conflict *ConflictError
	got := classify(context.Background(), fmt.Errorf("ingest: %w", pgErr("CC409")))
	if !errors.As(got, &conflict) || conflict.Fields != "detail of CC409" || errors.Is(got, ErrUnavailable) {
		t.Errorf("classify(CC409) = %#v, want a ConflictError naming the fields of the detail", got)
	}
}

func TestRetry(t *testing.T) {
	t.Parallel()
	expired, cancel := context.WithCancel(context.Background())
	cancel()

	tests := []struct {
		name        string
		ctx         context.Context
		errs        []error // what each call returns; nil once they run out
		calls       int
		code        string // SQLSTATE of the returned error, "" for nil
		unavailable bool
	}{
		{"success", nil, nil, 1, "", false},
		{"serialization failure, then success", nil, []error{pgErr("40001")}, 2, "", false},
		{"deadlock, then success", nil, []error{pgErr("40P01")}, 2, "", false},
		{"serialization failure twice: retried once only", nil, []error{pgErr("40001"), pgErr("40001")}, 2, "40001", true},
		{"deadlock twice: retried once only", nil, []error{pgErr("40P01"), pgErr("40P01"), pgErr("40P01")}, 2, "40P01", true},
		{"deadlock, then connection lost", nil, []error{pgErr("40P01"), io.ErrUnexpectedEOF}, 2, "", true},
		{"no retry once the deadline passed", expired, []error{pgErr("40001")}, 1, "40001", true},
		{"syntax error is not retried", nil, []error{pgErr("42601")}, 1, "42601", false},
		{"a lost connection, then success on a fresh one", nil, []error{io.ErrUnexpectedEOF}, 2, "", false},
		{"idle-session timeout, then success", nil, []error{pgErr("57P05")}, 2, "", false},
		{"admin shutdown of an idle connection, then success", nil, []error{pgErr("57P01")}, 2, "", false},
		{"connection lost twice: retried once only", nil, []error{io.EOF, io.EOF}, 2, "", true},
		{"a full disk is not retried", nil, []error{pgErr("53100")}, 1, "53100", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx := tt.ctx
			if ctx == nil {
				ctx = context.Background()
			}
			calls := 0
			err := (&Store{}).retry(ctx, func() error {
				calls++
				if calls <= len(tt.errs) {
					return tt.errs[calls-1]
				}
				return nil
			})
			if calls != tt.calls {
				t.Errorf("fn ran %d times, want %d", calls, tt.calls)
			}
			var pe *pgconn.PgError
			switch {
			case tt.code == "" && !tt.unavailable && err != nil:
				t.Errorf("retry = %v, want nil", err)
			case tt.code != "" && (!errors.As(err, &pe) || pe.Code != tt.code):
				t.Errorf("retry = %v, want the %s error", err, tt.code)
			}
			if errors.Is(err, ErrUnavailable) != tt.unavailable {
				t.Errorf("retry = %v; want ErrUnavailable: %t", err, tt.unavailable)
			}
		})
	}
}
