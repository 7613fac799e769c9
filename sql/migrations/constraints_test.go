package migrations_test

import (
	"strings"
	"testing"

	"coco/sql/sqltest"
)

// Rows typed in psql meet the same checks as the API's input.
func TestConstraintsRejectBadRows(t *testing.T) {
	t.Parallel()
	pool := sqltest.Pool(t)
	addUser(t, pool, "owner")
	session := func(id, secs, score string) string {
		return `insert into sessions (session_id, user_id, started_at, duration_seconds, sentiment_score)
			values ('` + id + `', (select id from users where external_id = 'owner'), '2026-03-10T10:00:00Z', ` + secs + `, ` + score + `)`
	}

	cases := []struct {
		name           string
		sql            string
		wantConstraint string // "" = accepted
	}{
		{"external_id with a slash", `insert into users (external_id) values ('a/b')`, "users_external_id_format"},
		{"external_id with a space", `insert into users (external_id) values ('a b')`, "users_external_id_format"},
		{"external_id with a tab", `insert into users (external_id) values (E'a\tb')`, "users_external_id_format"},
		{"external_id with a control char", `insert into users (external_id) values (E'a\x01b')`, "users_external_id_format"},
		{"external_id with a newline at the end", `insert into users (external_id) values (E'ab\n')`, "users_external_id_format"},
		{"empty external_id", `insert into users (external_id) values ('')`, "users_external_id_format"},
		{"external_id of 129 chars", `insert into users (external_id) values (repeat('x', 129))`, "users_external_id_format"},
		{"external_id of 128 chars", `insert into users (external_id) values (repeat('y', 128))`, ""},
		{"external_id with dots, dashes and an e-mail sign", `insert into users (external_id) values ('kid-1.a_b@home')`, ""},
		{"ensure_user with a slash", `select coco.ensure_user('a/b')`, "users_external_id_format"},
		{"ingest for a user with a space", `select coco.ingest_session('bad-user', 'a b', now(), 60, 0.5)`, "users_external_id_format"},
		{"duration -1", session("d1", "-1", "0.5"), "sessions_duration_seconds_range"},
		{"duration 86401", session("d2", "86401", "0.5"), "sessions_duration_seconds_range"},
		{"duration 0", session("d3", "0", "0.5"), ""},
		{"duration 86400", session("d4", "86400", "0.5"), ""},
		{"sentiment 1.01", session("s1", "60", "1.01"), "sessions_sentiment_score_range"},
		{"sentiment -0.01", session("s2", "60", "-0.01"), "sessions_sentiment_score_range"},
		{"sentiment 0", session("s3", "60", "0"), ""},
		{"sentiment 1", session("s4", "60", "1"), ""},
		{"empty session_id", session("", "60", "0.5"), "sessions_session_id_length"},
		{"session_id of 129 chars", session(strings.Repeat("z", 129), "60", "0.5"), "sessions_session_id_length"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			_, err := pool.Exec(t.Context(), c.sql)
			if c.wantConstraint == "" {
				if err != nil {
					t.Errorf("%s: %v, want it accepted", c.sql, err)
				}
				return
			}
			if err == nil {
				t.Fatalf("%s was accepted, want a check violation of %s", c.sql, c.wantConstraint)
			}
			pgErr := pgError(t, err, c.sql)
			if pgErr.Code != "23514" || pgErr.ConstraintName != c.wantConstraint {
				t.Errorf("%s: error %s on constraint %q, want 23514 (check_violation) on %s",
					c.sql, pgErr.Code, pgErr.ConstraintName, c.wantConstraint)
			}
		})
	}
}
