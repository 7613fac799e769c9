package httpapi

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// After requests about many users, the metrics count them under route
// templates and outcomes, and no label anywhere holds a user id, a path as
// sent or a token.
func TestMetricsNameNoUserOrToken(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	cfg := testConfig()
	cfg.Metrics = reg
	ts := newTestServer(t, setup(t).pool, cfg)
	started := time.Now().Add(-time.Hour).Truncate(time.Second)
	var users []string
	for i := range 30 {
		user := fmt.Sprintf("family-member-%02d", i)
		users = append(users, user)
		expectStatus(t, ts.ingest(t, summaryJSON("m-"+user, user, started, 60, 0.5)), http.StatusOK)
		expectStatus(t, ts.dashboard(t, user, adminToken), http.StatusOK)
	}
	expectStatus(t, ts.ingest(t, summaryJSON("m-family-member-00", "family-member-00", started, 60, 0.5)), http.StatusOK) // duplicate
	expectStatus(t, ts.ingest(t, `{"session_id":"x"}`), http.StatusUnprocessableEntity)
	decodeBatchAnswer(t, ts.postBatch(t, batchJSON(summaryJSON("b-1", "family-member-99", started, 60, 0.5), `{}`)))
	expectStatus(t, ts.request(t, http.MethodGet, "/no/such/family-member-00", ""), http.StatusNotFound)
	expectStatus(t, ts.request(t, "BREW", "/api/dashboard/family-member-01", ""), http.StatusMethodNotAllowed)

	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	get := func(name string, labels map[string]string) float64 {
		for _, f := range families {
			if f.GetName() != name {
				continue
			}
			for _, m := range f.GetMetric() {
				if matches(m, labels) {
					switch {
					case m.GetCounter() != nil:
						return m.GetCounter().GetValue()
					case m.GetHistogram() != nil:
						return float64(m.GetHistogram().GetSampleCount())
					}
				}
			}
		}
		return -1
	}
	for _, c := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"coco_http_requests_total", map[string]string{"route": "/api/dashboard/:user_id", "method": "GET", "status": "200"}, 30},
		{"coco_http_requests_total", map[string]string{"route": "/internal/ingest/session_summary", "method": "POST", "status": "200"}, 31},
		{"coco_http_requests_total", map[string]string{"route": "/internal/ingest/session_summary", "method": "POST", "status": "422"}, 1},
		{"coco_http_requests_total", map[string]string{"route": routeUnmatched, "method": "GET", "status": "404"}, 1},
		{"coco_http_requests_total", map[string]string{"route": routeUnmatched, "method": "other", "status": "405"}, 1},
		{"coco_http_request_duration_seconds", map[string]string{"route": "/api/dashboard/:user_id", "method": "GET"}, 30},
		{"coco_ingest_sessions_total", map[string]string{"outcome": "ok"}, 31},
		{"coco_ingest_sessions_total", map[string]string{"outcome": "duplicate"}, 1},
		{"coco_ingest_sessions_total", map[string]string{"outcome": "invalid"}, 2},
		{"coco_ingest_batch_sessions", nil, 1},
	} {
		if got := get(c.name, c.labels); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
	for _, f := range families {
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				v := l.GetValue()
				if strings.Contains(v, "family-member") || strings.Contains(v, "tok") || strings.Contains(v, "/no/such") {
					t.Errorf("%s has the label %s=%q, which names a user, a token or a path as sent", f.GetName(), l.GetName(), v)
				}
			}
		}
	}
	_ = users
}

func matches(m *dto.Metric, labels map[string]string) bool {
	found := 0
	for _, l := range m.GetLabel() {
		if want, ok := labels[l.GetName()]; ok {
			if want != l.GetValue() {
				return false
			}
			found++
		}
	}
	return found == len(labels)
}

// HEAD on a GET route answers as GET does, without the body.
func TestHeadIsGetWithoutBody(t *testing.T) {
	t.Parallel()
	ts := setup(t)
	get := ts.dashboard(t, "alice", aliceToken)
	head := ts.request(t, http.MethodHead, "/api/dashboard/alice", "", "Authorization", "Bearer "+aliceToken)
	expectStatus(t, head, http.StatusOK)
	for _, h := range []string{"ETag", "Content-Type", "Content-Length", "Cache-Control", "Coco-Window-End", "Coco-Time-Zone"} {
		if head.Header().Get(h) != get.Header().Get(h) || head.Header().Get(h) == "" {
			t.Errorf("HEAD %s = %q, GET %q; want the same, set", h, head.Header().Get(h), get.Header().Get(h))
		}
	}
	live := ts.listen(t)
	resp, err := http.Head(live.URL + "/livez")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.ContentLength != int64(len(`{"status":"ok"}`)) {
		t.Errorf("HEAD /livez over the wire = %d, length %d; want 200 and the GET body's length, no body", resp.StatusCode, resp.ContentLength)
	}
}
