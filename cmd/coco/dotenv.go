package main

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"regexp"
	"strings"
)

// envFileFlag names the file of variables coco reads before the
// environment: `coco -env-file path <command>`; .env by default.
const envFileFlag = "-env-file"

var envName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// withEnvFile returns environ with the variables of the .env file added
// under it: a variable set in the environment wins over the file. An
// explicit -env-file must exist; the default .env is read only when present.
// A malformed line is an error naming it.
func withEnvFile(path string, explicit bool, environ map[string]string) (map[string]string, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) && !explicit {
		return environ, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	merged := map[string]string{}
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		name, value, ok := strings.Cut(strings.TrimPrefix(line, "export "), "=")
		name = strings.TrimSpace(name)
		if !ok || !envName.MatchString(name) {
			return nil, fmt.Errorf("%s, line %d: want NAME=value", path, n)
		}
		value = strings.TrimSpace(value)
		if len(value) >= 2 && (value[0] == '"' || value[0] == '\'') && value[len(value)-1] == value[0] {
			value = value[1 : len(value)-1]
		}
		merged[name] = value
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	for k, v := range environ {
		merged[k] = v
	}
	return merged, nil
}
