package httpapi

import (
	"coco/sql/store"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"time"
)

// responseRecorder remembers what a handler wrote, for the request log and
// for deciding whether a panic can still be answered with a 500.
type responseRecorder struct {
	http.ResponseWriter
	status int // 0 until the header is written
	bytes  int
}

func (rec *responseRecorder) WriteHeader(status int) {
	if rec.status == 0 && status >= 200 {
		rec.status = status
	}
	rec.ResponseWriter.WriteHeader(status)
}

func (rec *responseRecorder) Write(p []byte) (int, error) {
	if rec.status == 0 {
		rec.status = http.StatusOK
	}
	n, err := rec.ResponseWriter.Write(p)
	rec.bytes += n
	return n, err
}

// Unwrap lets http.ResponseController reach the real writer (flush, deadlines).
func (rec *responseRecorder) Unwrap() http.ResponseWriter { return rec.ResponseWriter }

// recoverPanics turns a panic in any later middleware or handler into an
// opaque 500 and logs the panic value with its stack.
func (s *Server) recoverPanics(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := &responseRecorder{ResponseWriter: w}
		defer func() {
			p := recover()
			if p == nil {
				return
			}
			// http.ErrAbortHandler is the documented way to abort a response
			// on purpose; net/http closes the connection and logs nothing.
			if p == http.ErrAbortHandler {
				panic(p)
			}
			s.logger.Error("panic",
				// requestID runs inside this middleware, so the id is only
				// on the response by now, not in r's context.
				"request_id", w.Header().Get("X-Request-ID"),
				"panic", fmt.Sprint(p),
				"stack", string(debug.Stack()))
			if rec.status != 0 {
				// Part of the response is already on the wire: abort the
				// connection so the client sees a broken response instead of
				// a short one that looks complete.
				panic(http.ErrAbortHandler)
			}
			// Drop what the handler meant for its own answer, not this one.
			w.Header().Del("ETag")
			w.Header().Set("Cache-Control", "no-store")
			writeJSON(rec, errInternal.status, detailBody{errInternal.detail})
		}()
		next.ServeHTTP(rec, r)
	})
}

// securityHeaders sets the headers every response carries. The defaults suit
// JSON: nothing may be framed, run or cached; handlers that need otherwise
// (the dashboard's revalidated cache, the docs page) override them.
func securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cache-Control", "no-store")
		next.ServeHTTP(w, r)
	})
}

type requestIDKey struct{}

// requestID keeps a sane incoming X-Request-ID, so a trace can span the
// device, a proxy and this service, and otherwise makes one up. A value that
// could forge log fields or bloat every line is replaced, not trusted.
func requestID(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get("X-Request-ID")
		if len(r.Header.Values("X-Request-ID")) != 1 || !saneRequestID(id) {
			id = newRequestID()
		}
		w.Header().Set("X-Request-ID", id)
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), requestIDKey{}, id)))
	})
}

func requestIDFrom(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey{}).(string)
	return id
}

// saneRequestID accepts 1..128 characters of [A-Za-z0-9._:-]: enough for
// UUIDs, ULIDs and the trace ids of common proxies.
func saneRequestID(id string) bool {
	if len(id) < 1 || len(id) > 128 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case c == '.', c == '_', c == ':', c == '-':
		default:
			return false
		}
	}
	return true
}

func newRequestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // never fails on supported platforms (Go 1.24+)
	return hex.EncodeToString(b[:])
}

// requestLog collects what handlers learn about a request for its log line.
type requestLog struct {
	route         string // the route's template, or routeUnmatched
	userID        string
	tokenID       string
	refusedOrigin string
	readFrom      string // the server that answered the dashboard read
}

type requestLogKey struct{}

// logOf returns the request's requestLog, or a throwaway one outside
// logRequests (as in handler tests).
func logOf(ctx context.Context) *requestLog {
	if l, ok := ctx.Value(requestLogKey{}).(*requestLog); ok {
		return l
	}
	return &requestLog{}
}

// setLogUser records the user a request is about. Only validated ids reach
// here, so the log never carries arbitrary client bytes in user_id.
func setLogUser(ctx context.Context, userID string) { logOf(ctx).userID = userID }

// setLogRoute records the template of the route that took the request.
func setLogRoute(ctx context.Context, route string) { logOf(ctx).route = route }

// setLogToken records which credential authenticated the request, as its
// fingerprint: the first 12 hex digits of the token's SHA-256. An operator
// can tell which credential read whose data; the token itself is never
// logged.
func setLogToken(ctx context.Context, token string) { logOf(ctx).tokenID = tokenFingerprint(token) }

// setLogRefusedOrigin records the Origin a browser sent that CORS refused,
// so a dashboard developer sees in coco's log which origin to configure.
func setLogRefusedOrigin(ctx context.Context, origin string) {
	logOf(ctx).refusedOrigin = truncateForLog(origin)
}

func tokenFingerprint(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:6])
}

// maxLogged keeps one absurd URL or header from bloating the logs.
const maxLogged = 256

func truncateForLog(s string) string {
	if len(s) > maxLogged {
		return s[:maxLogged] + "..."
	}
	return s
}

// logRequests writes one JSON line per request. It logs the path but not the
// query string, headers or body: those are where tokens and personal data
// travel.
func (s *Server) logRequests(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		info := &requestLog{route: routeUnmatched}
		rec := &responseRecorder{ResponseWriter: w}
		finished := false
		defer func() {
			status := rec.status
			if !finished {
				// A panic is on its way to recoverPanics, which answers 500.
				status = http.StatusInternalServerError
			}
			if status == 0 {
				status = http.StatusOK
			}
			level := slog.LevelInfo
			if status >= 500 {
				level = slog.LevelWarn
			}
			attrs := []slog.Attr{
				slog.String("request_id", requestIDFrom(r.Context())),
				slog.String("method", r.Method),
				slog.String("path", truncateForLog(r.URL.Path)),
				slog.Int("status", status),
				slog.Float64("duration_ms", float64(time.Since(start).Microseconds())/1000),
				slog.Int("bytes", rec.bytes),
			}
			if info.userID != "" {
				attrs = append(attrs, slog.String("user_id", info.userID))
			}
			if info.tokenID != "" {
				attrs = append(attrs, slog.String("token_id", info.tokenID))
			}
			if info.readFrom != "" {
				attrs = append(attrs, slog.String("read_from", info.readFrom))
			}
			if info.refusedOrigin != "" {
				attrs = append(attrs, slog.String("refused_origin", info.refusedOrigin))
			}
			s.logger.LogAttrs(r.Context(), level, "request", attrs...)
			s.metrics.observe(info.route, r.Method, status, time.Since(start))
		}()
		ctx := store.WithReadServer(context.WithValue(r.Context(), requestLogKey{}, info), &info.readFrom)
		next.ServeHTTP(rec, r.WithContext(ctx))
		finished = true
	})
}
