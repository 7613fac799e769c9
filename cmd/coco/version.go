package main

import (
	"context"
	"fmt"
	"net/http"
	"runtime"
	"runtime/debug"
	"time"
)

// buildInfo is what the Go toolchain stamped into the binary: the module
// version, and, when built from a git checkout (the Dockerfile builds from
// one), the commit, its time and whether the tree had uncommitted changes.
type buildInfo struct {
	Version, Revision, Time string
	Modified                bool
}

func readBuildInfo() buildInfo {
	b := buildInfo{Version: "(devel)", Revision: "unknown", Time: "unknown"}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return b
	}
	if bi.Main.Version != "" {
		b.Version = bi.Main.Version
	}
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			b.Revision = s.Value
		case "vcs.time":
			b.Time = s.Value
		case "vcs.modified":
			b.Modified = s.Value == "true"
		}
	}
	return b
}

func (b buildInfo) String() string {
	modified := ""
	if b.Modified {
		modified = " (modified)"
	}
	return fmt.Sprintf("coco %s, revision %s%s, built from a commit of %s, %s", b.Version, b.Revision, modified, b.Time, runtime.Version())
}

func runVersion(_ context.Context, c cli, args []string) int {
	fs := c.flagSet("version", "", "")
	if code := c.parse(fs, args); code >= 0 {
		return code
	}
	fmt.Fprintln(c.stdout, readBuildInfo())
	return exitOK
}

func runHealthcheck(ctx context.Context, c cli, args []string) int {
	fs := c.flagSet("healthcheck", "[-url URL]", `
Asks the local coco serve whether it is ready: exits 0 when GET /readyz
answers 200 within a second, 1 otherwise. For a container HEALTHCHECK in an
image that has no shell or curl (the Dockerfile uses it).

Environment:
  PORT                  the port coco serves on (default 8000)
`)
	target := fs.String("url", "", "the readiness `URL` (default http://127.0.0.1:$PORT/readyz)")
	if code := c.parse(fs, args); code >= 0 {
		return code
	}
	if *target == "" {
		port := c.environ["PORT"]
		if port == "" {
			port = "8000"
		}
		*target = "http://127.0.0.1:" + port + "/readyz"
	}
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, *target, nil)
	if err != nil {
		return c.fail("healthcheck", err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return c.fail("healthcheck", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return c.fail("healthcheck", fmt.Errorf("%s answered %s", *target, resp.Status))
	}
	return exitOK
}
