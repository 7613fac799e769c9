// Package gitbuild builds coco as it was at a git revision, for the tests
// and benchmarks that run a previous release beside this one.
package gitbuild

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// Coco extracts revision rev of the repository that holds the working
// directory into dir and builds its cmd/coco there; it returns the binary's
// path. A shallow clone may lack rev: the error says so.
func Coco(ctx context.Context, rev, dir string) (string, error) {
	top, err := exec.CommandContext(ctx, "git", "rev-parse", "--show-toplevel").Output()
	if err != nil {
		return "", fmt.Errorf("find the repository: %w", err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	// git archive of the root: run in a subfolder, it archives only that.
	archive := exec.CommandContext(ctx, "git", "archive", rev)
	archive.Dir = strings.TrimSpace(string(top))
	extract := exec.CommandContext(ctx, "tar", "-x", "-C", dir)
	var stderr bytes.Buffer
	archive.Stderr = &stderr
	if extract.Stdin, err = archive.StdoutPipe(); err != nil {
		return "", err
	}
	if err := extract.Start(); err != nil {
		return "", err
	}
	if err := archive.Run(); err != nil {
		_ = extract.Wait()
		return "", fmt.Errorf("git archive %s (a shallow clone lacks it): %v\n%s", rev, err, stderr.String())
	}
	if err := extract.Wait(); err != nil {
		return "", fmt.Errorf("extract %s: %w", rev, err)
	}
	bin := filepath.Join(dir, "coco")
	build := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/coco")
	build.Dir = dir
	if out, err := build.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build coco at %s: %v\n%s", rev, err, out)
	}
	return bin, nil
}
