package main

import (
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"coco/sql/sqltest"
)

func TestVersion(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{{"version"}, {"-version"}} {
		r := runCoco(t, nil, args...)
		// Built from this git checkout, so the toolchain stamped the commit.
		if r.code != 0 || !regexp.MustCompile(`^coco \S+, revision [0-9a-f]{40}`).MatchString(r.stdout) {
			t.Errorf("coco %v = %d %q, want 0 and a line naming the commit", args, r.code, r.stdout)
		}
	}
}

// With METRICS_ADDR, a second listener serves /metrics; the API's port does
// not. The listening line and the build_info metric name the commit.
func TestMetricsListenerAndHealthcheck(t *testing.T) {
	t.Parallel()
	env := serveEnv(sqltest.URL(t, sqltest.ServerURL(t)))
	env["METRICS_ADDR"] = "127.0.0.1:0"
	p := startServe(t, env)
	waitStatus(t, p.base+"/readyz", http.StatusOK, 10*time.Second)
	if status, _ := call(t, http.MethodGet, p.base+"/api/dashboard/kid-1", dashboardToken, ""); status != http.StatusOK {
		t.Fatalf("dashboard = %d", status)
	}
	status, body := call(t, http.MethodGet, "http://"+p.metricsAddr+"/metrics", "", "")
	for _, want := range []string{
		`coco_http_requests_total{method="GET",route="/api/dashboard/:user_id",status="200"} 1`,
		`coco_build_info{go_version="go`,
		`coco_db_pool_max_connections`,
		`go_goroutines`,
		`process_resident_memory_bytes`,
	} {
		if status != http.StatusOK || !strings.Contains(body, want) {
			t.Errorf("GET /metrics = %d, lacks %q", status, want)
		}
	}
	if !regexp.MustCompile(`coco_build_info\{[^}]*revision="[0-9a-f]{40}"`).MatchString(body) {
		t.Errorf("coco_build_info does not name the commit")
	}
	if status, _ := call(t, http.MethodGet, p.base+"/metrics", "", ""); status != http.StatusNotFound {
		t.Errorf("GET /metrics on the API's port = %d, want 404", status)
	}
	if !regexp.MustCompile(`[0-9a-f]{40}`).MatchString(p.listening["revision"].(string)) {
		t.Errorf("the listening line's revision is %v, want the commit", p.listening["revision"])
	}

	port := p.addr[strings.LastIndexByte(p.addr, ':')+1:]
	if r := runCoco(t, map[string]string{"PORT": port}, "healthcheck"); r.code != 0 {
		t.Errorf("healthcheck against a ready server = %d %s, want 0", r.code, r.stderr)
	}
	p.cmd.Process.Kill()
	p.waitExit(t, 10*time.Second)
	if r := runCoco(t, map[string]string{"PORT": port}, "healthcheck"); r.code != 1 {
		t.Errorf("healthcheck against a stopped server = %d, want 1", r.code)
	}
}

func TestTextLogs(t *testing.T) {
	t.Parallel()
	env := serveEnv(sqltest.URL(t, sqltest.ServerURL(t)))
	env["LOG_FORMAT"] = "text"
	cmd := cocoCmd(t, t.Context(), env, "serve", "-addr", "127.0.0.1:0")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	buf := make([]byte, 4096)
	n, _ := out.Read(buf)
	if line := string(buf[:n]); !strings.Contains(line, "level=INFO msg=listening addr=127.0.0.1:") {
		t.Errorf("first text log line %q, want key=value pairs of the listening line", line)
	}
}
