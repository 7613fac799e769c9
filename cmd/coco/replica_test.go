package main

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"
)

// With DATABASE_READ_URL, coco checks the standby, says so in its log, and
// reads the dashboard there; writes stay on the primary. (httpapi's
// replica tests cover the routing itself: lag, faults, bytes.)
func TestServeReadsFromTheStandby(t *testing.T) {
	t.Parallel()
	primary := faultCluster(t, true)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	standby, err := primary.StartStandby(ctx)
	if err != nil {
		t.Fatalf("start a standby: %v", err)
	}
	t.Cleanup(func() { standby.Remove() })
	standbyName := fmt.Sprintf("127.0.0.1:%d", standby.Port())

	env := serveEnv(primary.URL())
	env["DATABASE_READ_URL"] = standby.URL()
	env["METRICS_ADDR"] = "127.0.0.1:0"
	p := startServe(t, env)
	if got := p.listening["standbys"]; got != standbyName {
		t.Errorf("the listening line's standbys = %v, want %s", got, standbyName)
	}
	p.waitLog(t, "standby in use", 10*time.Second)

	session := `{"session_id":"s-1","user_external_id":"kid-1","started_at":"` +
		time.Now().Add(-time.Hour).UTC().Format(time.RFC3339) + `","duration_seconds":600,"sentiment_score":0.7}`
	if status, body := call(t, http.MethodPost, p.base+"/internal/ingest/session_summary", ingestToken, session); status != http.StatusOK {
		t.Fatalf("ingest = %d %s, want 200 (on the primary)", status, body)
	}
	// The standby replays the session within moments.
	deadline := time.Now().Add(10 * time.Second)
	for {
		status, body := call(t, http.MethodGet, p.base+"/api/dashboard/kid-1", dashboardToken, "")
		if status != http.StatusOK {
			t.Fatalf("dashboard = %d %s", status, body)
		}
		if strings.Contains(body, `"days":1`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the dashboard never showed the session: %s", body)
		}
		time.Sleep(100 * time.Millisecond)
	}
	line := p.waitLog(t, "request", 5*time.Second)
	for line["path"] != "/api/dashboard/kid-1" {
		line = p.waitLog(t, "request", 5*time.Second)
	}
	if line["read_from"] != standbyName {
		t.Errorf("the dashboard read's read_from = %v, want %s", line["read_from"], standbyName)
	}
	_, metrics := call(t, http.MethodGet, "http://"+p.metricsAddr+"/metrics", "", "")
	for _, want := range []string{
		`coco_db_standby_in_use{standby="` + standbyName + `"} 1`,
		`coco_db_reads_total{server="` + standbyName + `"}`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}
