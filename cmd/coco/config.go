package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/caarlos0/env/v11"
	"github.com/jackc/pgx/v5/pgxpool"

	"coco/httpapi"
)

// DBConfig is what every subcommand needs: where the database is and how
// long to wait for it.
type DBConfig struct {
	DatabaseURL databaseURL      `env:"DATABASE_URL,required,notEmpty"`
	DBTimeout   positiveDuration `env:"DB_TIMEOUT" envDefault:"2s"`
}

// ServeConfig is what `coco serve` needs on top of DBConfig. The other
// subcommands never read these, so a migration does not need the tokens.
type ServeConfig struct {
	DBConfig
	IngestToken     secret           `env:"INGEST_SERVICE_TOKEN,required,notEmpty"`
	DashboardTokens tokenMap         `env:"DASHBOARD_TOKEN_MAP,required,notEmpty"`
	DashboardOrigin origin           `env:"DASHBOARD_ORIGIN,required,notEmpty"`
	AppEnv          appEnv           `env:"APP_ENV" envDefault:"development"`
	Port            port             `env:"PORT" envDefault:"8000"`
	ShutdownGrace   positiveDuration `env:"SHUTDOWN_GRACE" envDefault:"10s"`
	ShutdownDrain   duration         `env:"SHUTDOWN_DRAIN" envDefault:"1s"`
	LogLevel        logLevel         `env:"LOG_LEVEL" envDefault:"info"`
	MaxConnections  connectionCap    `env:"MAX_CONNECTIONS" envDefault:"1024"`
	MetricsAddr     listenAddr       `env:"METRICS_ADDR"`
	LogFormat       logFormat        `env:"LOG_FORMAT" envDefault:"json"`
	ReadURLs        databaseURLs     `env:"DATABASE_READ_URL"`
	ReadMaxLag      positiveDuration `env:"READ_MAX_LAG" envDefault:"5s"`
}

// ConfigError lists every problem found in the environment, one per
// variable, in the order the variables are declared, then the checks that
// involve several. No problem quotes a secret's value.
type ConfigError struct {
	Problems []string
}

func (e *ConfigError) Error() string {
	return "invalid configuration:\n  - " + strings.Join(e.Problems, "\n  - ")
}

// LoadDBConfig reads DBConfig from environ (NAME -> value).
func LoadDBConfig(environ map[string]string) (DBConfig, error) {
	var c DBConfig
	return c, load(&c, environ)
}

// LoadServeConfig reads ServeConfig from environ (NAME -> value).
func LoadServeConfig(environ map[string]string) (ServeConfig, error) {
	var c ServeConfig
	err := load(&c, environ)
	var cfgErr *ConfigError
	if err != nil && !errors.As(err, &cfgErr) {
		return c, err
	}
	// The SQL computes windows of httpapi.WindowDays and the dashboard's
	// arrays have that length. The variable exists so that a deployment
	// expecting another window fails loudly instead of serving this one.
	if w := environ["ROLLUP_WINDOW_DAYS"]; w != "" && w != strconv.Itoa(httpapi.WindowDays) {
		if cfgErr == nil {
			cfgErr = &ConfigError{}
		}
		cfgErr.Problems = append(cfgErr.Problems, fmt.Sprintf(
			"ROLLUP_WINDOW_DAYS: must be %d, the only window this version computes, got %q", httpapi.WindowDays, w))
	}
	// A dashboard token equal to the ingest token would hand the device's
	// write secret to a browser.
	if c.IngestToken != "" {
		if _, ok := c.DashboardTokens[string(c.IngestToken)]; ok {
			if cfgErr == nil {
				cfgErr = &ConfigError{}
			}
			cfgErr.Problems = append(cfgErr.Problems,
				"DASHBOARD_TOKEN_MAP: a dashboard token equals INGEST_SERVICE_TOKEN; give the dashboard its own tokens")
		}
	}
	// The drain is part of the grace period, and requests need some of it.
	if c.ShutdownGrace > 0 && time.Duration(c.ShutdownDrain) >= time.Duration(c.ShutdownGrace) {
		if cfgErr == nil {
			cfgErr = &ConfigError{}
		}
		cfgErr.Problems = append(cfgErr.Problems, "SHUTDOWN_DRAIN: must be shorter than SHUTDOWN_GRACE")
	}
	if cfgErr != nil {
		return c, cfgErr
	}
	return c, nil
}

// load parses environ into cfg, turning every error env reports (it collects
// them all in one AggregateError) into one line naming the variable.
func load(cfg any, environ map[string]string) error {
	err := env.ParseWithOptions(cfg, env.Options{Environment: environ})
	if err == nil {
		return nil
	}
	var agg env.AggregateError
	if !errors.As(err, &agg) {
		return err
	}
	keys := envKeys(reflect.TypeOf(cfg).Elem())
	cfgErr := &ConfigError{}
	for _, e := range agg.Errors {
		var (
			notSet   env.VarIsNotSetError
			empty    env.EmptyVarError
			parseErr env.ParseError
		)
		switch {
		case errors.As(e, &notSet):
			cfgErr.Problems = append(cfgErr.Problems, notSet.Key+": required, not set")
		case errors.As(e, &empty):
			cfgErr.Problems = append(cfgErr.Problems, empty.Key+": required, set but empty")
		case errors.As(e, &parseErr):
			cfgErr.Problems = append(cfgErr.Problems, keys[parseErr.Name]+": "+parseErr.Err.Error())
		default:
			// A mistake in the struct tags above, not in the environment.
			return err
		}
	}
	return cfgErr
}

// envKeys maps each field name of t (and of the structs it embeds) to its
// variable, because env's ParseError names the Go field, not the variable.
func envKeys(t reflect.Type) map[string]string {
	keys := map[string]string{}
	var walk func(reflect.Type)
	walk = func(t reflect.Type) {
		for f := range t.Fields() {
			if f.Anonymous && f.Type.Kind() == reflect.Struct {
				walk(f.Type)
				continue
			}
			key, _, _ := strings.Cut(f.Tag.Get("env"), ",")
			keys[f.Name] = key
		}
	}
	walk(t)
	return keys
}

// databaseURL is a PostgreSQL URL in the form pgx reads. Its messages never
// quote it: it may hold a password.
type databaseURL string

var dbSchemes = []string{"postgres", "postgresql", "postgresql+psycopg"}

func (d *databaseURL) UnmarshalText(text []byte) error {
	s := string(text)
	scheme, rest, ok := strings.Cut(s, "://")
	if !ok || !slices.Contains(dbSchemes, strings.ToLower(scheme)) {
		return errors.New("must be a URL starting with postgres://, postgresql:// or postgresql+psycopg://")
	}
	// The original FastAPI service's SQLAlchemy form names a Python driver;
	// the address is the same.
	s = "postgres://" + rest
	if _, err := pgxpool.ParseConfig(s); err != nil {
		return errors.New("is not a valid PostgreSQL URL (check the host, port, database and query parameters)")
	}
	*d = databaseURL(s)
	return nil
}

// String is the URL without user, password or query (which may also hold
// a password), for logs.
func (d databaseURL) String() string {
	u, err := url.Parse(string(d))
	if err != nil {
		return "postgres://?"
	}
	return "postgres://" + u.Host + u.Path
}

// databaseURLs are PostgreSQL URLs separated by commas. A URL may itself
// hold commas (postgres://h1,h2/db names several hosts), so a new URL
// starts only where a piece has a scheme.
type databaseURLs []databaseURL

func (d *databaseURLs) UnmarshalText(text []byte) error {
	var urls []string
	for piece := range strings.SplitSeq(string(text), ",") {
		if len(urls) == 0 || strings.Contains(piece, "://") {
			urls = append(urls, strings.TrimSpace(piece))
		} else {
			urls[len(urls)-1] += "," + piece
		}
	}
	*d = nil
	for i, s := range urls {
		var u databaseURL
		if err := u.UnmarshalText([]byte(s)); err != nil {
			return fmt.Errorf("URL %d of %d %w", i+1, len(urls), err)
		}
		*d = append(*d, u)
	}
	return nil
}

// secret is a bearer token: it must be sendable in an Authorization header
// and is never printed.
type secret string

func (s *secret) UnmarshalText(text []byte) error {
	if err := checkToken(string(text)); err != nil {
		return err
	}
	*s = secret(text)
	return nil
}

func (secret) String() string { return "[redacted]" }

func checkToken(tok string) error {
	if tok == "" {
		return errors.New("is empty")
	}
	if strings.IndexFunc(tok, func(r rune) bool { return r > unicode.MaxASCII || !unicode.IsPrint(r) || r == ' ' }) >= 0 {
		return errors.New("must be printable ASCII without spaces, to fit an Authorization header")
	}
	return nil
}

// tokenMap maps a dashboard bearer token to the external user id it may
// read, or "*" for every user.
type tokenMap map[string]string

// UnmarshalText reads either `tok:user,tok2:user2` (split on the first ':')
// or a JSON object {"tok":"user"}. Entries are named by position, never by
// token.
func (m *tokenMap) UnmarshalText(text []byte) error {
	s := strings.TrimSpace(string(text))
	var pairs [][2]string
	if strings.HasPrefix(s, "{") {
		var err error
		if pairs, err = jsonPairs(s); err != nil {
			return err
		}
	} else {
		for i, item := range strings.Split(s, ",") {
			tok, user, ok := strings.Cut(item, ":")
			if !ok {
				return fmt.Errorf("entry %d is not token:user (or use a JSON object)", i+1)
			}
			pairs = append(pairs, [2]string{strings.TrimSpace(tok), strings.TrimSpace(user)})
		}
	}
	var problems []string
	out := tokenMap{}
	firstAt := map[string]int{}
	for i, p := range pairs {
		tok, user := p[0], p[1]
		if err := checkToken(tok); err != nil {
			problems = append(problems, fmt.Sprintf("entry %d: token %v", i+1, err))
		} else if j, dup := firstAt[tok]; dup {
			problems = append(problems, fmt.Sprintf("entry %d repeats the token of entry %d", i+1, j+1))
		} else {
			firstAt[tok] = i
		}
		// Not quoted: a map written user:token by mistake would print a token.
		if user != "*" {
			if err := httpapi.ValidExternalID(user); err != nil {
				problems = append(problems, fmt.Sprintf("entry %d: user: %v", i+1, err))
			}
		}
		out[tok] = user
	}
	if len(problems) > 0 {
		return errors.New(strings.Join(problems, "; "))
	}
	*m = out
	return nil
}

// jsonPairs reads a flat JSON object of strings in order, keeping repeated
// keys so they can be reported (encoding/json would keep the last silently).
// Syntax errors give only an offset: the text around it may be a token.
func jsonPairs(s string) ([][2]string, error) {
	bad := func(dec *json.Decoder) error {
		return fmt.Errorf("is not a JSON object of strings {\"token\":\"user\"} (problem near byte %d)", dec.InputOffset())
	}
	dec := json.NewDecoder(strings.NewReader(s))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return nil, bad(dec)
	}
	var pairs [][2]string
	for dec.More() {
		k, err := dec.Token()
		if err != nil {
			return nil, bad(dec)
		}
		v, err := dec.Token()
		vs, ok := v.(string)
		if err != nil || !ok {
			return nil, bad(dec)
		}
		pairs = append(pairs, [2]string{k.(string), vs})
	}
	if t, err := dec.Token(); err != nil || t != json.Delim('}') {
		return nil, bad(dec)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, bad(dec)
	}
	return pairs, nil
}

// origin is the one browser origin allowed by CORS, exactly as a browser
// sends it in the Origin header.
type origin string

func (o *origin) UnmarshalText(text []byte) error {
	s := string(text)
	bad := func(why string) error {
		return fmt.Errorf("must be a bare origin like https://dashboard.example.com (%s), got %q", why, s)
	}
	u, err := url.Parse(s)
	switch {
	case err != nil:
		return bad("not a URL")
	case u.Scheme != "http" && u.Scheme != "https":
		return bad("scheme http or https")
	case u.Opaque != "" || u.Host == "":
		return bad("no host")
	case u.User != nil:
		return bad("no user or password")
	case u.Path != "" || u.RawPath != "":
		return bad("no path, not even a trailing slash")
	case u.RawQuery != "" || u.ForceQuery || strings.Contains(s, "#"):
		return bad("no query or fragment")
	case !strings.HasPrefix(s, "http"):
		return bad("lowercase scheme")
	case u.Host != strings.ToLower(u.Host):
		return bad("lowercase host, as browsers send it")
	}
	if p := u.Port(); p != "" {
		n, err := strconv.Atoi(p)
		switch {
		case err != nil || n < 1 || n > 65535:
			return bad("port 1..65535")
		case (u.Scheme == "http" && n == 80) || (u.Scheme == "https" && n == 443):
			return bad("browsers omit the default port")
		}
	}
	*o = origin(s)
	return nil
}

type appEnv string

var appEnvs = []string{"development", "test", "production"}

func (a *appEnv) UnmarshalText(text []byte) error {
	if !slices.Contains(appEnvs, string(text)) {
		return fmt.Errorf("must be development, test or production, got %q", text)
	}
	*a = appEnv(text)
	return nil
}

type port int

func (p *port) UnmarshalText(text []byte) error {
	n, err := strconv.Atoi(string(text))
	if err != nil || n < 1 || n > 65535 {
		return fmt.Errorf("must be a port number from 1 to 65535, got %q", text)
	}
	*p = port(n)
	return nil
}

// listenAddr is a host:port to listen on, such as 127.0.0.1:9090 or :9090.
type listenAddr string

func (a *listenAddr) UnmarshalText(text []byte) error {
	host, p, err := net.SplitHostPort(string(text))
	n, perr := strconv.Atoi(p)
	if err != nil || perr != nil || n < 0 || n > 65535 || strings.ContainsAny(host, "/ ") {
		return fmt.Errorf("must be host:port or :port, such as 127.0.0.1:9090, got %q", text)
	}
	*a = listenAddr(text)
	return nil
}

// logFormat is how log lines are written: json for machines, text for people.
type logFormat string

func (f *logFormat) UnmarshalText(text []byte) error {
	if string(text) != "json" && string(text) != "text" {
		return fmt.Errorf("must be json or text, got %q", text)
	}
	*f = logFormat(text)
	return nil
}

// connectionCap bounds the open client connections (see connLimiter). Below
// 10 the margin that keeps the queue moving would be nothing.
type connectionCap int

func (m *connectionCap) UnmarshalText(text []byte) error {
	n, err := strconv.Atoi(string(text))
	if err != nil || n < 10 || n > 1_000_000 {
		return fmt.Errorf("must be a number of connections from 10 to 1000000, got %q", text)
	}
	*m = connectionCap(n)
	return nil
}

// positiveDuration is a time.Duration above zero, written like 2s or 500ms.
type positiveDuration time.Duration

func (d *positiveDuration) UnmarshalText(text []byte) error {
	v, err := time.ParseDuration(string(text))
	if err != nil || v <= 0 {
		return fmt.Errorf("must be a positive duration such as 2s or 500ms, got %q", text)
	}
	*d = positiveDuration(v)
	return nil
}

// duration is a time.Duration of zero or more, written like 1s or 0s.
type duration time.Duration

func (d *duration) UnmarshalText(text []byte) error {
	v, err := time.ParseDuration(string(text))
	if err != nil || v < 0 {
		return fmt.Errorf("must be a duration of 0s or more, such as 1s, got %q", text)
	}
	*d = duration(v)
	return nil
}

type logLevel slog.Level

func (l *logLevel) UnmarshalText(text []byte) error {
	var v slog.Level
	if err := v.UnmarshalText(text); err != nil {
		return fmt.Errorf("must be debug, info, warn or error, got %q", text)
	}
	*l = logLevel(v)
	return nil
}
