package httpapi

import (
	"crypto/sha256"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestIngestNeedsTheIngestToken(t *testing.T) {
	t.Parallel()
	ts := setupDeadDB(t) // a 401 must not need the database
	for _, tc := range []struct {
		name    string
		headers []string
		detail  string
	}{
		{"no header", nil, "Not authenticated"},
		{"empty header", []string{"Authorization", ""}, "Not authenticated"},
		{"scheme only", []string{"Authorization", "Bearer"}, "Not authenticated"},
		{"scheme and space", []string{"Authorization", "Bearer "}, "Not authenticated"},
		{"basic scheme", []string{"Authorization", "Basic " + ingestToken}, "Not authenticated"},
		{"token without scheme", []string{"Authorization", ingestToken}, "Not authenticated"},
		{"two headers", []string{"Authorization", "Bearer " + ingestToken, "Authorization", "Bearer " + ingestToken}, "Not authenticated"},
		{"wrong token", []string{"Authorization", "Bearer nope"}, "Invalid bearer token"},
		{"token prefix", []string{"Authorization", "Bearer " + ingestToken[:len(ingestToken)-1]}, "Invalid bearer token"},
		{"token with suffix", []string{"Authorization", "Bearer " + ingestToken + "x"}, "Invalid bearer token"},
		{"dashboard token", []string{"Authorization", "Bearer " + adminToken}, "Invalid bearer token"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// The body is too large and of the wrong type: auth must answer
			// first, without reading it.
			headers := append([]string{"Content-Type", "text/plain"}, tc.headers...)
			rec := ts.request(t, http.MethodPost, "/internal/ingest/session_summary", strings.Repeat("x", maxBodyBytes+10), headers...)
			expectStatus(t, rec, http.StatusUnauthorized)
			expectHeader(t, rec, "WWW-Authenticate", "Bearer")
			expectBody(t, rec, `{"detail":"`+tc.detail+`"}`)
		})
	}
}

func TestBearerSchemeIsCaseInsensitive(t *testing.T) {
	t.Parallel()
	ts := setupDeadDB(t)
	for _, header := range []string{"Bearer " + ingestToken, "bearer " + ingestToken, "BEARER " + ingestToken, "Bearer   " + ingestToken, " Bearer " + ingestToken + " "} {
		// Past auth, an empty body is a 422: proof the token was accepted.
		rec := ts.request(t, http.MethodPost, "/internal/ingest/session_summary", "", "Authorization", header)
		if rec.Code != http.StatusUnprocessableEntity {
			t.Errorf("Authorization %q: status %d, want 422 (authenticated, empty body)", header, rec.Code)
		}
	}
}

func TestEmptyIngestTokenLetsNobodyIn(t *testing.T) {
	t.Parallel()
	ts := setupDeadDB(t)
	ts.cfg.IngestToken = ""
	ts.Server = New(ts.store, ts.logger, ts.cfg)
	for _, header := range []string{"Bearer ", "Bearer x"} {
		rec := ts.request(t, http.MethodPost, "/internal/ingest/session_summary", "{}", "Authorization", header)
		expectStatus(t, rec, http.StatusUnauthorized)
	}
}

func TestDashboardTokens(t *testing.T) {
	t.Parallel()
	ts := setup(t)
	ts.pinClock(time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC))
	for _, tc := range []struct {
		name, user, token string
		status            int
	}{
		{"own user", "alice", aliceToken, http.StatusOK},
		{"wildcard reads alice", "alice", adminToken, http.StatusOK},
		{"wildcard reads anyone", "someone-else", adminToken, http.StatusOK},
		{"another user's token", "alice", bobToken, http.StatusForbidden},
		{"user id differs by case", "Alice", aliceToken, http.StatusForbidden},
		// 401 before 403: an unknown token learns nothing about users.
		{"unknown token", "alice", "nope", http.StatusUnauthorized},
		{"unknown token, other user", "bob", "nope", http.StatusUnauthorized},
		{"ingest token", "alice", ingestToken, http.StatusUnauthorized},
		{"literal star as token", "alice", "*", http.StatusUnauthorized},
		{"user id as token", "alice", "alice", http.StatusUnauthorized},
		// A malformed id is only reached with a token that may read it.
		{"malformed id, user token", "a%20b", aliceToken, http.StatusForbidden},
		{"malformed id, wildcard", "a%20b", adminToken, http.StatusUnprocessableEntity},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := ts.dashboard(t, tc.user, tc.token)
			expectStatus(t, rec, tc.status)
			switch tc.status {
			case http.StatusUnauthorized:
				expectHeader(t, rec, "WWW-Authenticate", "Bearer")
				expectBody(t, rec, `{"detail":"Invalid bearer token"}`)
			case http.StatusForbidden:
				if rec.Header().Get("WWW-Authenticate") != "" {
					t.Errorf("403 carries WWW-Authenticate")
				}
				expectBody(t, rec, `{"detail":"This token may not read this user's dashboard"}`)
			}
		})
	}

	rec := ts.request(t, http.MethodGet, "/api/dashboard/alice", "")
	expectStatus(t, rec, http.StatusUnauthorized)
	expectBody(t, rec, `{"detail":"Not authenticated"}`)
}

func TestDashboardUserCompareIsWholeToken(t *testing.T) {
	t.Parallel()
	s := New(nil, slog.New(slog.DiscardHandler), Config{DashboardTokens: map[string]string{"abc": "alice", "": "*"}})
	for token, want := range map[string]string{"abc": "alice", "ab": "", "abcd": "", "": "", "ABC": ""} {
		got, found := s.dashboardUser(token)
		if got != want || found != (want != "") {
			t.Errorf("dashboardUser(%q) = %q, %v; want %q", token, got, found, want)
		}
	}
}

func TestSecretEqual(t *testing.T) {
	t.Parallel()
	digest := sha256.Sum256([]byte("s3cret-token"))
	for _, tc := range []struct {
		token string
		want  bool
	}{
		{"s3cret-token", true},
		{"s3cret-toke", false},           // shorter
		{"s3cret-token-and-more", false}, // longer
		{"S3cret-token", false},          // same length, first byte differs
		{"s3cret-tokeN", false},          // same length, last byte differs
		{"", false},
		{strings.Repeat("x", 10000), false}, // far longer than a digest
	} {
		if got := secretEqual(tc.token, digest); got != tc.want {
			t.Errorf("secretEqual(%.20q, digest of s3cret-token) = %t, want %t", tc.token, got, tc.want)
		}
	}
}
