package httpapi

import (
	"encoding/base64"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"
)

// Odd paths and Authorization headers on the dashboard, sent over a real
// connection so the request line is parsed and percent-decoded as in
// production. Each request either reads exactly the user it names, with a
// token allowed to, or is refused before any user is read or created.
func TestDashboardPathAndHeaderAbuse(t *testing.T) {
	t.Parallel()
	ts := setup(t)
	live := ts.listen(t)
	// alice has 10 minutes; a read of anyone else shows 0.
	expectStatus(t, ts.ingest(t, summaryJSON("abuse-1", "alice", time.Now().Add(-time.Hour), 600, 0.5)), http.StatusOK)

	bearer := func(token string) []string { return []string{"Authorization", "Bearer " + token} }
	const (
		notAuthenticated = `{"detail":"Not authenticated"}`
		invalidToken     = `{"detail":"Invalid bearer token"}`
		forbidden        = `{"detail":"This token may not read this user's dashboard"}`
		notFound         = `{"detail":"Not Found"}`
	)
	for _, tc := range []struct {
		name    string
		path    string // after /api/dashboard
		headers []string
		status  int
		body    string // for refusals
		reads   string // the user a 200 is about
	}{
		// Paths.
		{"percent-encoded letters are the same user", "/%61lic%65", bearer(aliceToken), 200, "", "alice"},
		{"percent-encoded letters, another user's token", "/%61lic%65", bearer(bobToken), 403, forbidden, ""},
		{"encoded slashes climbing to another user", "/alice%2F..%2Fbob", bearer(aliceToken), 404, notFound, ""},
		{"dot segments are not resolved", "/bob/../alice", bearer(aliceToken), 404, notFound, ""},
		{"query string naming another user", "/alice?user_id=bob", bearer(aliceToken), 200, "", "alice"},
		{"query string does not grant another user", "/alice?user_id=bob", bearer(bobToken), 403, forbidden, ""},
		{"128 characters", "/" + strings.Repeat("u", 128), bearer(adminToken), 200, "", strings.Repeat("u", 128)},
		{"128 two-byte characters", "/" + strings.Repeat("%C3%A9", 128), bearer(adminToken), 200, "", strings.Repeat("é", 128)},
		{"129 two-byte characters", "/" + strings.Repeat("%C3%A9", 129), bearer(adminToken), 422, "", ""},
		{"CJK characters", "/%E6%97%A5%E6%9C%AC", bearer(adminToken), 200, "", "日本"},
		{"NUL alone", "/%00", bearer(adminToken), 422, "", ""},
		{"double slash before the id", "//alice", bearer(aliceToken), 404, notFound, ""},
		{"double slash after the id", "/alice//", bearer(aliceToken), 404, notFound, ""},
		// "*" in the token map means every user; "*" in the path is only a
		// user of that name, which a token for one user may not read.
		{"star, user token", "/*", bearer(aliceToken), 403, forbidden, ""},
		{"encoded star, user token", "/%2A", bearer(aliceToken), 403, forbidden, ""},
		{"star, no token", "/*", nil, 401, notAuthenticated, ""},
		{"star, wildcard token reads the user named star", "/*", bearer(adminToken), 200, "", "*"},

		// Authorization headers.
		{"two headers, both right", "/alice", append(bearer(aliceToken), bearer(aliceToken)...), 401, notAuthenticated, ""},
		{"two headers, one wrong", "/alice", append(bearer(aliceToken), bearer("nope")...), 401, notAuthenticated, ""},
		{"two tokens in one header", "/alice", bearer(aliceToken + "," + adminToken), 401, invalidToken, ""},
		{"scheme without token", "/alice", []string{"Authorization", "Bearer"}, 401, notAuthenticated, ""},
		{"two spaces after the scheme", "/alice", []string{"Authorization", "Bearer  " + aliceToken}, 200, "", "alice"},
		{"lowercase scheme", "/alice", []string{"Authorization", "bearer " + aliceToken}, 200, "", "alice"},
		{"tab after the scheme", "/alice", []string{"Authorization", "Bearer\t" + aliceToken}, 401, notAuthenticated, ""},
		{"basic credentials", "/alice", []string{"Authorization", "Basic " + base64.StdEncoding.EncodeToString([]byte("alice:"+aliceToken))}, 401, notAuthenticated, ""},
		{"prefix of the token", "/alice", bearer(aliceToken[:len(aliceToken)-1]), 401, invalidToken, ""},
		{"token with a suffix", "/alice", bearer(aliceToken + "0"), 401, invalidToken, ""},
		{"token and another word", "/alice", bearer(aliceToken + " x"), 401, invalidToken, ""},
		{"token in upper case", "/alice", bearer(strings.ToUpper(aliceToken)), 401, invalidToken, ""},
		{"prefix of the wildcard token", "/alice", bearer(adminToken[:len(adminToken)-1]), 401, invalidToken, ""},
	} {
		resp, err := live.do(http.MethodGet, "/api/dashboard"+tc.path, "", tc.headers...)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if resp.status != tc.status {
			t.Errorf("%s: GET %s got %s, want %d", tc.name, tc.path, resp, tc.status)
			continue
		}
		switch {
		case tc.status == http.StatusOK:
			snapshot := decodeDashboard(t, resp)
			want := 0
			if tc.reads == "alice" {
				want = 10
			}
			var minutes int
			for _, m := range snapshot.AvgDuration.DailyDurations {
				minutes += m
			}
			if minutes != want {
				t.Errorf("%s: snapshot with %d minutes, want %s's %d", tc.name, minutes, tc.reads, want)
			}
		case tc.status == http.StatusUnprocessableEntity:
			if !strings.HasPrefix(resp.body, `{"detail":[{"loc":["path","user_id"],`) {
				t.Errorf("%s: body %s, want a path user_id error", tc.name, resp.body)
			}
		case resp.body != tc.body:
			t.Errorf("%s: body %s, want %s", tc.name, resp.body, tc.body)
		}
		if tc.status == http.StatusUnauthorized && resp.header.Get("WWW-Authenticate") != "Bearer" {
			t.Errorf("%s: WWW-Authenticate = %q, want Bearer", tc.name, resp.header.Get("WWW-Authenticate"))
		}
	}

	// Only the ingested user exists: no read, served or refused, created one.
	rows, err := ts.pool.Query(t.Context(), `select external_id from users order by external_id`)
	if err != nil {
		t.Fatal(err)
	}
	var users []string
	for rows.Next() {
		var u string
		if err := rows.Scan(&u); err != nil {
			t.Fatal(err)
		}
		users = append(users, u)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	// Reads never create users: only alice, whose session was ingested.
	want := []string{"alice"}
	slices.Sort(want)
	slices.Sort(users) // in Go's byte order, whatever the database's collation
	if !slices.Equal(users, want) {
		t.Fatalf("users %q, want exactly %q", users, want)
	}
}
