package httpapi

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

// TestDocsPageInChromium loads /docs from the real handler in headless
// Chromium, under the page's CSP, and uses it as a person would: every
// operation of openapi.json is listed, "Try it out" on /livez answers 200,
// and a token pasted in "Authorize" is sent. Any CSP violation, uncaught
// exception or console error fails it.
//
// It needs Chromium (apt-get install chromium) and skips without it, unless
// COCO_REQUIRE_BROWSER=1 (make docs-check, .ci/run), when it fails instead.
func TestDocsPageInChromium(t *testing.T) {
	t.Parallel()
	chromium := findChromium(t)
	srv := setup(t).listen(t)

	// A fresh profile, and none of Chromium's own traffic: no GPU, no
	// background or component updates, no sync, no QUIC.
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.Headless,
		chromedp.NoSandbox, // root in CI containers
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.WindowSize(1280, 900),
	)
	// The context of the first action bounds the browser's whole life, its
	// start included, so a Chromium that hangs cannot hang the test.
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	ctx, cancel = chromedp.NewExecAllocator(ctx, opts...)
	defer cancel()
	var mu sync.Mutex
	var problems []string
	ctx, cancel = chromedp.NewContext(ctx, chromedp.WithListener(func(ev any) {
		if p := pageProblem(ev); p != "" {
			mu.Lock()
			problems = append(problems, p)
			mu.Unlock()
		}
	}))
	defer cancel()

	start := time.Now()
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start %s: %v", chromium, err)
	}
	t.Logf("Chromium started in %v", time.Since(start).Round(time.Millisecond))
	// Collect CSP violations; a script DevTools adds is not subject to the CSP.
	if _, err := chromedp.Call(ctx, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{
		Source: `window.cspViolations = [];
			document.addEventListener("securitypolicyviolation",
				e => window.cspViolations.push(e.effectiveDirective + " blocked " + (e.blockedURI || "inline")));`,
	}); err != nil {
		t.Fatal(err)
	}

	loaded := time.Now()
	browse(t, ctx, chromedp.Navigate(srv.URL+"/docs"), chromedp.WaitVisible(chromedp.CSS(".opblock")))
	t.Logf("/docs showed its operations in %v", time.Since(loaded).Round(time.Millisecond))

	shown := read(t, ctx, chromedp.Evaluate[[]string](`[...document.querySelectorAll(".opblock")].map(e =>
		e.querySelector(".opblock-summary-method").textContent + " " +
		e.querySelector(".opblock-summary-path").dataset.path + " " + e.id)`))
	slices.Sort(shown)
	if want := swaggerUIOperations(t); !slices.Equal(shown, want) {
		t.Errorf("operations on the page:\n  %s\nwant those of openapi.json:\n  %s",
			strings.Join(shown, "\n  "), strings.Join(want, "\n  "))
	}
	if n := len(read(t, ctx, chromedp.Evaluate[[]string](`[...document.querySelectorAll(".auth-wrapper .authorize")].map(e => e.textContent)`))); n != 1 {
		t.Errorf("the page has %d Authorize buttons, want 1", n)
	}

	livez := "#operations-default-livez"
	tryItOut(t, ctx, livez)
	if code, body := execute(t, ctx, livez); code != "200" || !strings.Contains(body, `"ok"`) {
		t.Errorf("Execute on GET /livez showed %s %s, want 200 with \"ok\"", code, body)
	}

	// The dashboard needs alice's token: 401 until it is pasted in Authorize.
	dashboard := "#operations-default-getDashboard"
	tryItOut(t, ctx, dashboard)
	browse(t, ctx, chromedp.SendKeys(chromedp.CSS(dashboard+` input[placeholder="user_id"]`), "alice"))
	if code, _ := execute(t, ctx, dashboard); code != "401" {
		t.Errorf("Execute on GET /api/dashboard/alice before Authorize showed %s, want 401", code)
	}
	browse(t, ctx,
		chromedp.Click(chromedp.CSS(".auth-wrapper .authorize")),
		chromedp.SendKeys(chromedp.JSPath(`[...document.querySelectorAll(".modal-ux .auth-container")]
			.find(c => c.querySelector("h4").textContent.includes("dashboardToken")).querySelector("input")`), aliceToken),
		chromedp.Click(chromedp.JSPath(`[...document.querySelectorAll(".modal-ux .auth-container")]
			.find(c => c.querySelector("h4").textContent.includes("dashboardToken")).querySelector("button.authorize")`)),
		chromedp.Click(chromedp.CSS(".modal-ux .btn-done")),
		chromedp.WaitNotPresent(chromedp.CSS(".modal-ux")))
	if code, body := execute(t, ctx, dashboard); code != "200" || !strings.Contains(body, `"streak"`) {
		t.Errorf("Execute on GET /api/dashboard/alice after Authorize showed %s %s, want 200 with a streak", code, body)
	}

	if v := read(t, ctx, chromedp.Evaluate[[]string](`window.cspViolations`)); len(v) > 0 {
		t.Errorf("CSP violations:\n  %s", strings.Join(v, "\n  "))
	}
	mu.Lock()
	defer mu.Unlock()
	if len(problems) > 0 {
		t.Errorf("errors in the page:\n  %s", strings.Join(problems, "\n  "))
	}
	t.Logf("browser check took %v", time.Since(start).Round(time.Millisecond))
}

// tryItOut opens an operation and presses "Try it out".
func tryItOut(t *testing.T, ctx context.Context, op string) {
	t.Helper()
	browse(t, ctx,
		chromedp.Click(chromedp.CSS(op+" .opblock-summary-control")),
		chromedp.Click(chromedp.CSS(op+" .try-out__btn")))
}

// execute presses "Execute" in a tried-out operation and returns the status
// and body that the page shows for the response.
func execute(t *testing.T, ctx context.Context, op string) (code, body string) {
	t.Helper()
	status := chromedp.CSS(op + " .live-responses-table tr.response .response-col_status")
	browse(t, ctx,
		// Clear the previous response, so the one read is this one.
		chromedp.Evaluate[chromedp.Void](fmt.Sprintf(`document.querySelector(%q)?.click()`, op+" .btn-clear")),
		chromedp.WaitNotPresent(status),
		chromedp.Click(chromedp.CSS(op+" .execute")))
	code = read(t, ctx, chromedp.Text(status))
	body = read(t, ctx, chromedp.Text(chromedp.CSS(op+" .live-responses-table tr.response .response-col_description pre")))
	return strings.TrimSpace(code), body
}

// swaggerUIOperations lists openapi.json's operations as the test reads
// them from the page: "METHOD path id", where Swagger UI's id is
// operations-<first tag, or default>-<operationId>.
func swaggerUIOperations(t *testing.T) []string {
	t.Helper()
	var doc struct {
		Paths map[string]map[string]struct {
			OperationID string   `json:"operationId"`
			Tags        []string `json:"tags"`
		} `json:"paths"`
	}
	if err := json.Unmarshal(openAPIDoc, &doc); err != nil {
		t.Fatalf("openapi.json: %v", err)
	}
	var ops []string
	for path, item := range doc.Paths {
		for method, op := range item {
			tag := "default"
			if len(op.Tags) > 0 {
				tag = op.Tags[0]
			}
			ops = append(ops, fmt.Sprintf("%s %s operations-%s-%s", strings.ToUpper(method), path, tag, op.OperationID))
		}
	}
	slices.Sort(ops)
	return ops
}

// pageProblem describes an uncaught exception, a console.error or an error
// in the browser's log (where CSP reports go), and is "" for any other
// event. Failed requests ("network" entries) are left out: the test asks for
// a 401 on purpose.
func pageProblem(ev any) string {
	switch ev := ev.(type) {
	case *runtime.EventExceptionThrown:
		d := ev.ExceptionDetails
		if d.Exception != nil {
			return "exception: " + d.Text + " " + d.Exception.Description
		}
		return "exception: " + d.Text
	case *runtime.EventConsoleAPICalled:
		if ev.Type == runtime.ConsoleAPICalledTypeError {
			var args []string
			for _, a := range ev.Args {
				args = append(args, string(a.Value)+a.Description)
			}
			return "console.error: " + strings.Join(args, " ")
		}
	case *log.EventEntryAdded:
		if ev.Entry.Level == log.EntryLevelError && ev.Entry.Source != log.EntrySourceNetwork {
			return fmt.Sprintf("log (%s): %s %s", ev.Entry.Source, ev.Entry.Text, ev.Entry.URL)
		}
	}
	return ""
}

// findChromium returns the browser's path, or skips the test when there is
// none and COCO_REQUIRE_BROWSER is not 1.
func findChromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if path, err := exec.LookPath(name); err == nil {
			return path
		}
	}
	if os.Getenv("COCO_REQUIRE_BROWSER") == "1" {
		t.Fatal("COCO_REQUIRE_BROWSER=1 and no Chromium on PATH (apt-get install chromium)")
	}
	t.Skip("no Chromium on PATH (apt-get install chromium); COCO_REQUIRE_BROWSER=1 makes this a failure")
	return ""
}

// browse runs steps in the page and stops the test at the first that fails.
func browse(t *testing.T, ctx context.Context, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	if err := chromedp.Do(ctx, steps...); err != nil {
		t.Fatal(err)
	}
}

// read returns what a reading action finds in the page.
func read[T any](t *testing.T, ctx context.Context, a chromedp.Action[T]) T {
	t.Helper()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		t.Fatal(err)
	}
	return v
}
