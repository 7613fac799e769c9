package localpg

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// binaries holds the absolute paths of the PostgreSQL server tools.
type binaries struct {
	initdb string
	pgCtl  string
}

// binGlobs are searched, newest major version first, when initdb and pg_ctl
// are not on PATH: Debian/Ubuntu install them outside PATH, and Homebrew's
// postgresql@N formulae are keg-only.
var binGlobs = []string{
	"/usr/lib/postgresql/*/bin",
	"/opt/homebrew/opt/postgresql@*/bin",
	"/usr/local/opt/postgresql@*/bin",
}

// errNoBinaries says what to install; it is wrapped by findBinaries.
var errNoBinaries = errors.New("PostgreSQL server binaries (initdb, pg_ctl) not found on PATH " +
	"or in /usr/lib/postgresql/*/bin; install them with `apt-get install postgresql` " +
	"on Debian/Ubuntu or `brew install postgresql@15` on macOS")

// findBinaries locates initdb and pg_ctl: on PATH if both are there,
// otherwise in the newest versioned install directory.
func findBinaries() (binaries, error) {
	initdb, err1 := exec.LookPath("initdb")
	pgCtl, err2 := exec.LookPath("pg_ctl")
	if err1 == nil && err2 == nil {
		return absBinaries(initdb, pgCtl)
	}
	var dirs []string
	for _, g := range binGlobs {
		m, _ := filepath.Glob(g)
		dirs = append(dirs, m...)
	}
	sort.SliceStable(dirs, func(i, j int) bool {
		return majorVersion(dirs[i]) > majorVersion(dirs[j])
	})
	for _, d := range dirs {
		initdb, pgCtl := filepath.Join(d, "initdb"), filepath.Join(d, "pg_ctl")
		if isExecutable(initdb) && isExecutable(pgCtl) {
			return absBinaries(initdb, pgCtl)
		}
	}
	return binaries{}, fmt.Errorf("localpg: %w", errNoBinaries)
}

// Tool returns the path of the PostgreSQL client or server program name
// (pg_dump, pg_basebackup, psql, ...) of the same installation as the
// server binaries, so that its version matches the clusters'.
func Tool(name string) (string, error) {
	b, err := findBinaries()
	if err != nil {
		return "", err
	}
	// initdb on PATH may be a link into the installation directory.
	real, err := filepath.EvalSymlinks(b.initdb)
	if err != nil {
		return "", fmt.Errorf("localpg: %w", err)
	}
	path := filepath.Join(filepath.Dir(real), name)
	if !isExecutable(path) {
		return "", fmt.Errorf("localpg: %s not found beside %s", name, real)
	}
	return path, nil
}

// absBinaries makes the paths absolute: the tools may run as another user in
// another working directory.
func absBinaries(initdb, pgCtl string) (binaries, error) {
	var err error
	var b binaries
	if b.initdb, err = filepath.Abs(initdb); err != nil {
		return b, fmt.Errorf("localpg: %w", err)
	}
	if b.pgCtl, err = filepath.Abs(pgCtl); err != nil {
		return b, fmt.Errorf("localpg: %w", err)
	}
	return b, nil
}

// majorVersion extracts N from .../postgresql/N/bin or .../postgresql@N/bin;
// it is 0 when there is none.
func majorVersion(binDir string) int {
	name := filepath.Base(filepath.Dir(binDir))
	name = name[strings.LastIndexAny(name, "@")+1:]
	if i := strings.IndexByte(name, '.'); i >= 0 {
		name = name[:i]
	}
	n, err := strconv.Atoi(name)
	if err != nil {
		return 0
	}
	return n
}

func isExecutable(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0
}
