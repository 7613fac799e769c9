package main

import (
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// validEnv is a complete, valid serve environment; cases change one thing.
func validEnv() map[string]string {
	return map[string]string{
		"DATABASE_URL":         "postgres://coco:pw@db.internal:5432/coco?sslmode=disable",
		"INGEST_SERVICE_TOKEN": "ingest-SEKRIT-1",
		"DASHBOARD_TOKEN_MAP":  "dash-SEKRIT-2:user-1",
		"DASHBOARD_ORIGIN":     "https://dashboard.example.com",
	}
}

func with(changes map[string]string, unset ...string) map[string]string {
	env := validEnv()
	maps.Copy(env, changes)
	for _, k := range unset {
		delete(env, k)
	}
	return env
}

func TestLoadServeConfigDefaults(t *testing.T) {
	t.Parallel()
	cfg, err := LoadServeConfig(validEnv())
	if err != nil {
		t.Fatalf("LoadServeConfig(valid env) = %v, want no error", err)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"DatabaseURL", string(cfg.DatabaseURL), "postgres://coco:pw@db.internal:5432/coco?sslmode=disable"},
		{"IngestToken", string(cfg.IngestToken), "ingest-SEKRIT-1"},
		{"DashboardTokens", map[string]string(cfg.DashboardTokens), map[string]string{"dash-SEKRIT-2": "user-1"}},
		{"DashboardOrigin", string(cfg.DashboardOrigin), "https://dashboard.example.com"},
		{"AppEnv", string(cfg.AppEnv), "development"},
		{"Port", int(cfg.Port), 8000},
		{"DBTimeout", time.Duration(cfg.DBTimeout), 2 * time.Second},
		{"ShutdownGrace", time.Duration(cfg.ShutdownGrace), 10 * time.Second},
		{"LogLevel", int(cfg.LogLevel), 0},
		{"ReadURLs", len(cfg.ReadURLs), 0},
		{"ReadMaxLag", time.Duration(cfg.ReadMaxLag), 5 * time.Second},
	}
	for _, c := range checks {
		if !reflect.DeepEqual(c.got, c.want) {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
}

func TestLoadServeConfigAcceptedValues(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		env   map[string]string
		check func(ServeConfig) (got, want any)
	}{
		{"postgresql scheme", with(map[string]string{"DATABASE_URL": "postgresql://u@h/db"}),
			func(c ServeConfig) (any, any) { return string(c.DatabaseURL), "postgres://u@h/db" }},
		{"psycopg scheme of the original FastAPI service", with(map[string]string{"DATABASE_URL": "postgresql+psycopg://u:p@h:6543/db"}),
			func(c ServeConfig) (any, any) { return string(c.DatabaseURL), "postgres://u:p@h:6543/db" }},
		{"pairs split on the first colon, spaces trimmed", with(map[string]string{"DASHBOARD_TOKEN_MAP": " t1:user:a , t2 : * "}),
			func(c ServeConfig) (any, any) {
				return map[string]string(c.DashboardTokens), map[string]string{"t1": "user:a", "t2": "*"}
			}},
		{"JSON object", with(map[string]string{"DASHBOARD_TOKEN_MAP": ` {"t1": "user-1", "t2": "*"} `}),
			func(c ServeConfig) (any, any) {
				return map[string]string(c.DashboardTokens), map[string]string{"t1": "user-1", "t2": "*"}
			}},
		{"origin with port", with(map[string]string{"DASHBOARD_ORIGIN": "http://localhost:3000"}),
			func(c ServeConfig) (any, any) { return string(c.DashboardOrigin), "http://localhost:3000" }},
		{"production", with(map[string]string{"APP_ENV": "production"}),
			func(c ServeConfig) (any, any) { return string(c.AppEnv), "production" }},
		{"empty APP_ENV means the default", with(map[string]string{"APP_ENV": ""}),
			func(c ServeConfig) (any, any) { return string(c.AppEnv), "development" }},
		{"port", with(map[string]string{"PORT": "65535"}),
			func(c ServeConfig) (any, any) { return int(c.Port), 65535 }},
		{"timeouts", with(map[string]string{"DB_TIMEOUT": "750ms", "SHUTDOWN_GRACE": "1m", "SHUTDOWN_DRAIN": "0s"}),
			func(c ServeConfig) (any, any) {
				return []time.Duration{time.Duration(c.DBTimeout), time.Duration(c.ShutdownGrace), time.Duration(c.ShutdownDrain)},
					[]time.Duration{750 * time.Millisecond, time.Minute, 0}
			}},
		{"standbys, one URL naming two hosts", with(map[string]string{
			"DATABASE_READ_URL": "postgres://r1.internal:5433/coco, postgresql+psycopg://u:p@r2,r3:5434/coco?target_session_attrs=standby",
			"READ_MAX_LAG":      "250ms"}),
			func(c ServeConfig) (any, any) {
				return fmt.Sprint(c.ReadURLs, time.Duration(c.ReadMaxLag)),
					"[postgres://r1.internal:5433/coco postgres://r2,r3:5434/coco] 250ms" // printed without password or query
			}},
		{"log level", with(map[string]string{"LOG_LEVEL": "debug"}),
			func(c ServeConfig) (any, any) { return int(c.LogLevel), -4 }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg, err := LoadServeConfig(tt.env)
			if err != nil {
				t.Fatalf("LoadServeConfig = %v, want no error", err)
			}
			if got, want := tt.check(cfg); !reflect.DeepEqual(got, want) {
				t.Errorf("got %v, want %v", got, want)
			}
		})
	}
}

func TestLoadServeConfigProblems(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		env   map[string]string
		want  string // the one problem line, or a prefix of it
		unset []string
	}{
		{"missing database URL", nil, "DATABASE_URL: required, not set", []string{"DATABASE_URL"}},
		{"empty database URL", map[string]string{"DATABASE_URL": ""}, "DATABASE_URL: required, set but empty", nil},
		{"other database scheme", map[string]string{"DATABASE_URL": "mysql://u:pw@h/db"}, "DATABASE_URL: must be a URL starting with postgres://", nil},
		{"keyword/value DSN", map[string]string{"DATABASE_URL": "host=h dbname=db"}, "DATABASE_URL: must be a URL starting with postgres://", nil},
		{"unparsable database URL", map[string]string{"DATABASE_URL": "postgres://h:notaport/db"}, "DATABASE_URL: is not a valid PostgreSQL URL", nil},
		{"bad standby URL", map[string]string{"DATABASE_READ_URL": "postgres://r1/coco,mysql://r2/coco"}, "DATABASE_READ_URL: URL 2 of 2 must be a URL starting with postgres://", nil},
		{"unparsable standby URL", map[string]string{"DATABASE_READ_URL": "postgres://r2:notaport/coco"}, "DATABASE_READ_URL: URL 1 of 1 is not a valid PostgreSQL URL", nil},
		{"zero read lag", map[string]string{"READ_MAX_LAG": "0s"}, "READ_MAX_LAG: must be a positive duration", nil},
		{"missing ingest token", nil, "INGEST_SERVICE_TOKEN: required, not set", []string{"INGEST_SERVICE_TOKEN"}},
		{"ingest token with a space", map[string]string{"INGEST_SERVICE_TOKEN": "ingest SEKRIT"}, "INGEST_SERVICE_TOKEN: must be printable ASCII without spaces", nil},
		{"missing token map", nil, "DASHBOARD_TOKEN_MAP: required, not set", []string{"DASHBOARD_TOKEN_MAP"}},
		{"pair without colon", map[string]string{"DASHBOARD_TOKEN_MAP": "a:u1,SEKRIT-3"}, "DASHBOARD_TOKEN_MAP: entry 2 is not token:user", nil},
		{"empty token", map[string]string{"DASHBOARD_TOKEN_MAP": ":user-1"}, "DASHBOARD_TOKEN_MAP: entry 1: token is empty", nil},
		{"empty user", map[string]string{"DASHBOARD_TOKEN_MAP": "SEKRIT-4:"}, "DASHBOARD_TOKEN_MAP: entry 1: user: String should have at least 1 character", nil},
		{"trailing comma", map[string]string{"DASHBOARD_TOKEN_MAP": "SEKRIT-5:u1,"}, "DASHBOARD_TOKEN_MAP: entry 2 is not token:user", nil},
		{"duplicate token", map[string]string{"DASHBOARD_TOKEN_MAP": "SEKRIT-6:u1,b:u2,SEKRIT-6:u3"}, "DASHBOARD_TOKEN_MAP: entry 3 repeats the token of entry 1", nil},
		{"user with a slash", map[string]string{"DASHBOARD_TOKEN_MAP": "a:u/1"}, "DASHBOARD_TOKEN_MAP: entry 1: user: String should hold only visible characters: no '/'", nil},
		{"user with a zero-width space", map[string]string{"DASHBOARD_TOKEN_MAP": "a:u\u200b1"}, "DASHBOARD_TOKEN_MAP: entry 1: user: String should hold only visible characters", nil},
		{"user too long", map[string]string{"DASHBOARD_TOKEN_MAP": "a:" + strings.Repeat("u", 129)}, "DASHBOARD_TOKEN_MAP: entry 1: user: String should have at most 128 characters", nil},
		{"map written user:token", map[string]string{"DASHBOARD_TOKEN_MAP": "user-1:SEKRIT 7"}, "DASHBOARD_TOKEN_MAP: entry 1: user: String should hold only visible characters", nil},
		{"JSON duplicate token", map[string]string{"DASHBOARD_TOKEN_MAP": `{"SEKRIT-8":"u1","SEKRIT-8":"u2"}`}, "DASHBOARD_TOKEN_MAP: entry 2 repeats the token of entry 1", nil},
		{"JSON empty user", map[string]string{"DASHBOARD_TOKEN_MAP": `{"SEKRIT-9":""}`}, "DASHBOARD_TOKEN_MAP: entry 1: user: String should have at least 1 character", nil},
		{"JSON number", map[string]string{"DASHBOARD_TOKEN_MAP": `{"SEKRIT-10":1}`}, "DASHBOARD_TOKEN_MAP: is not a JSON object of strings", nil},
		{"JSON broken", map[string]string{"DASHBOARD_TOKEN_MAP": `{"SEKRIT-11":"u1"`}, "DASHBOARD_TOKEN_MAP: is not a JSON object of strings", nil},
		{"dashboard token is the ingest token", map[string]string{"DASHBOARD_TOKEN_MAP": "ingest-SEKRIT-1:*"}, "DASHBOARD_TOKEN_MAP: a dashboard token equals INGEST_SERVICE_TOKEN", nil},
		{"missing origin", nil, "DASHBOARD_ORIGIN: required, not set", []string{"DASHBOARD_ORIGIN"}},
		{"origin with trailing slash", map[string]string{"DASHBOARD_ORIGIN": "https://d.example.com/"}, "DASHBOARD_ORIGIN: must be a bare origin like https://dashboard.example.com (no path, not even a trailing slash)", nil},
		{"origin with path", map[string]string{"DASHBOARD_ORIGIN": "https://d.example.com/app"}, "DASHBOARD_ORIGIN: must be a bare origin like https://dashboard.example.com (no path", nil},
		{"origin with query", map[string]string{"DASHBOARD_ORIGIN": "https://d.example.com?x=1"}, "DASHBOARD_ORIGIN: must be a bare origin like https://dashboard.example.com (no query or fragment)", nil},
		{"origin with fragment", map[string]string{"DASHBOARD_ORIGIN": "https://d.example.com#top"}, "DASHBOARD_ORIGIN: must be a bare origin like https://dashboard.example.com (no query or fragment)", nil},
		{"origin with userinfo", map[string]string{"DASHBOARD_ORIGIN": "https://me@d.example.com"}, "DASHBOARD_ORIGIN: must be a bare origin like https://dashboard.example.com (no user or password)", nil},
		{"origin scheme", map[string]string{"DASHBOARD_ORIGIN": "ftp://d.example.com"}, "DASHBOARD_ORIGIN: must be a bare origin like https://dashboard.example.com (scheme http or https)", nil},
		{"origin without scheme", map[string]string{"DASHBOARD_ORIGIN": "d.example.com"}, "DASHBOARD_ORIGIN: must be a bare origin like https://dashboard.example.com (scheme http or https)", nil},
		{"origin wildcard", map[string]string{"DASHBOARD_ORIGIN": "*"}, "DASHBOARD_ORIGIN: must be a bare origin", nil},
		{"origin upper case", map[string]string{"DASHBOARD_ORIGIN": "https://Dashboard.example.com"}, "DASHBOARD_ORIGIN: must be a bare origin like https://dashboard.example.com (lowercase host", nil},
		{"origin default port", map[string]string{"DASHBOARD_ORIGIN": "https://d.example.com:443"}, "DASHBOARD_ORIGIN: must be a bare origin like https://dashboard.example.com (browsers omit the default port)", nil},
		{"app env", map[string]string{"APP_ENV": "staging"}, `APP_ENV: must be development, test or production, got "staging"`, nil},
		{"connection cap too small", map[string]string{"MAX_CONNECTIONS": "5"}, `MAX_CONNECTIONS: must be a number of connections from 10 to 1000000, got "5"`, nil},
		{"window", map[string]string{"ROLLUP_WINDOW_DAYS": "14"}, `ROLLUP_WINDOW_DAYS: must be 7, the only window this version computes, got "14"`, nil},
		{"window not a number", map[string]string{"ROLLUP_WINDOW_DAYS": "seven"}, `ROLLUP_WINDOW_DAYS: must be 7`, nil},
		{"port zero", map[string]string{"PORT": "0"}, `PORT: must be a port number from 1 to 65535, got "0"`, nil},
		{"port too big", map[string]string{"PORT": "65536"}, `PORT: must be a port number from 1 to 65535, got "65536"`, nil},
		{"port not a number", map[string]string{"PORT": "http"}, `PORT: must be a port number from 1 to 65535, got "http"`, nil},
		{"db timeout", map[string]string{"DB_TIMEOUT": "2"}, `DB_TIMEOUT: must be a positive duration such as 2s or 500ms, got "2"`, nil},
		{"negative grace", map[string]string{"SHUTDOWN_GRACE": "-1s"}, `SHUTDOWN_GRACE: must be a positive duration such as 2s or 500ms, got "-1s"`, nil},
		{"negative drain", map[string]string{"SHUTDOWN_DRAIN": "-1s"}, `SHUTDOWN_DRAIN: must be a duration of 0s or more, such as 1s, got "-1s"`, nil},
		{"drain as long as the grace", map[string]string{"SHUTDOWN_DRAIN": "10s", "SHUTDOWN_GRACE": "10s"}, `SHUTDOWN_DRAIN: must be shorter than SHUTDOWN_GRACE`, nil},
		{"log level", map[string]string{"LOG_LEVEL": "verbose"}, `LOG_LEVEL: must be debug, info, warn or error, got "verbose"`, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := LoadServeConfig(with(tt.env, tt.unset...))
			var cfgErr *ConfigError
			if !errors.As(err, &cfgErr) {
				t.Fatalf("LoadServeConfig = %v, want a *ConfigError", err)
			}
			if len(cfgErr.Problems) != 1 || !strings.HasPrefix(cfgErr.Problems[0], tt.want) {
				t.Errorf("problems = %q, want exactly one starting with %q", cfgErr.Problems, tt.want)
			}
			if strings.Contains(err.Error(), "SEKRIT") || strings.Contains(err.Error(), "pw@") {
				t.Errorf("error %q quotes a secret, want none", err)
			}
		})
	}
}

func TestLoadServeConfigNamesEveryProblemInOrder(t *testing.T) {
	t.Parallel()
	_, err := LoadServeConfig(map[string]string{
		"DASHBOARD_TOKEN_MAP": "SEKRIT-a:u1,SEKRIT-a:u2",
		"DASHBOARD_ORIGIN":    "https://d.example.com/",
		"APP_ENV":             "prod",
		"ROLLUP_WINDOW_DAYS":  "30",
		"PORT":                "99999",
		"DB_TIMEOUT":          "soon",
		"LOG_LEVEL":           "loud",
	})
	var cfgErr *ConfigError
	if !errors.As(err, &cfgErr) {
		t.Fatalf("LoadServeConfig = %v, want a *ConfigError", err)
	}
	want := []string{"DATABASE_URL:", "DB_TIMEOUT:", "INGEST_SERVICE_TOKEN:", "DASHBOARD_TOKEN_MAP:",
		"DASHBOARD_ORIGIN:", "APP_ENV:", "PORT:", "LOG_LEVEL:", "ROLLUP_WINDOW_DAYS:"}
	if len(cfgErr.Problems) != len(want) {
		t.Fatalf("problems = %q, want %d, one for each of %q", cfgErr.Problems, len(want), want)
	}
	for i, prefix := range want {
		if !strings.HasPrefix(cfgErr.Problems[i], prefix) {
			t.Errorf("problem %d = %q, want it to start with %q", i, cfgErr.Problems[i], prefix)
		}
	}
	msg := err.Error()
	if !strings.HasPrefix(msg, "invalid configuration:\n  - DATABASE_URL: required, not set\n") {
		t.Errorf("message = %q, want a heading line and one \"  - \" line per problem", msg)
	}
	if strings.Contains(msg, "SEKRIT") {
		t.Errorf("message %q quotes a token, want none", msg)
	}
}

func TestLoadDBConfigNeedsOnlyTheDatabase(t *testing.T) {
	t.Parallel()
	cfg, err := LoadDBConfig(map[string]string{"DATABASE_URL": "postgresql+psycopg://u@h/db", "PORT": "not checked here"})
	if err != nil {
		t.Fatalf("LoadDBConfig = %v, want no error without the HTTP variables", err)
	}
	if got, want := string(cfg.DatabaseURL), "postgres://u@h/db"; got != want {
		t.Errorf("DatabaseURL = %q, want %q", got, want)
	}
	_, err = LoadDBConfig(map[string]string{})
	if err == nil || err.Error() != "invalid configuration:\n  - DATABASE_URL: required, not set" {
		t.Errorf("LoadDBConfig(empty) = %v, want only DATABASE_URL named", err)
	}
}

func TestSecretsNeverPrint(t *testing.T) {
	t.Parallel()
	cfg, err := LoadServeConfig(validEnv())
	if err != nil {
		t.Fatalf("LoadServeConfig(valid env) = %v, want no error", err)
	}
	if got := cfg.IngestToken.String(); got != "[redacted]" {
		t.Errorf("IngestToken.String() = %q, want [redacted]", got)
	}
	if got, want := cfg.DatabaseURL.String(), "postgres://db.internal:5432/coco"; got != want {
		t.Errorf("DatabaseURL.String() = %q, want %q (no user, password or query)", got, want)
	}
}

func TestEnvFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	write := func(name, body string) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	good := write("good.env", "# comment\n\nexport PORT=9000\nLOG_LEVEL = \"debug\"\nAPP_ENV='test'\n")
	got, err := withEnvFile(good, true, map[string]string{"PORT": "7000"})
	if err != nil {
		t.Fatal(err)
	}
	if got["PORT"] != "7000" || got["LOG_LEVEL"] != "debug" || got["APP_ENV"] != "test" {
		t.Errorf("variables %v, want PORT from the environment (7000), LOG_LEVEL and APP_ENV from the file, unquoted", got)
	}
	bad := write("bad.env", "PORT=9000\nthis is not a variable\n")
	if _, err := withEnvFile(bad, true, nil); err == nil || !strings.Contains(err.Error(), "line 2") {
		t.Errorf("a malformed line: %v, want an error naming line 2", err)
	}
	if _, err := withEnvFile(filepath.Join(dir, "missing.env"), true, nil); err == nil {
		t.Errorf("an explicit -env-file that does not exist: no error, want one")
	}
	if env, err := withEnvFile(filepath.Join(dir, "missing.env"), false, map[string]string{"A": "1"}); err != nil || env["A"] != "1" {
		t.Errorf("no .env: %v, %v; want the environment as it is", env, err)
	}
	var stderr strings.Builder
	if code := run(t.Context(), func() {}, []string{"-env-file", bad, "migrate"}, nil, io.Discard, &stderr); code != exitUsage ||
		!strings.Contains(stderr.String(), "line 2") {
		t.Errorf("coco -env-file bad.env migrate = %d %q, want 2 and the line named", code, stderr.String())
	}
}
