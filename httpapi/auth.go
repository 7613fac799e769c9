package httpapi

import (
	"crypto/sha256"
	"crypto/subtle"
	"net/http"
	"strings"

	"github.com/julienschmidt/httprouter"
)

// dashboardToken is one entry of DashboardTokens, kept only as a digest.
type dashboardToken struct {
	digest [sha256.Size]byte
	userID string // an external user id, or "*" for every user
}

const allUsers = "*"

// secretEqual reports whether token's SHA-256 digest is digest. Comparing
// digests, of equal length, with crypto/subtle takes the same time wherever
// two tokens differ and whatever their lengths, which a byte-wise compare
// of the raw tokens would leak. Every token check goes through here.
func secretEqual(token string, digest [sha256.Size]byte) bool {
	sum := sha256.Sum256([]byte(token))
	return subtle.ConstantTimeCompare(sum[:], digest[:]) == 1
}

func digestTokens(m map[string]string) []dashboardToken {
	tokens := make([]dashboardToken, 0, len(m))
	for token, user := range m {
		if token == "" {
			continue // an empty token would let "Bearer " in
		}
		tokens = append(tokens, dashboardToken{sha256.Sum256([]byte(token)), user})
	}
	return tokens
}

// bearerToken returns the credentials of the request's one Authorization
// header when its scheme is Bearer, in any letter case (RFC 7235 2.1).
// Several Authorization headers are refused: which one a proxy honoured
// would be anyone's guess.
func bearerToken(r *http.Request) (string, bool) {
	values := r.Header.Values("Authorization")
	if len(values) != 1 {
		return "", false
	}
	scheme, token, ok := strings.Cut(strings.TrimSpace(values[0]), " ")
	token = strings.TrimLeft(token, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || token == "" {
		return "", false
	}
	return token, true
}

// requireIngestToken lets a request through to next only with the ingest
// service token. It runs before the body is read, so an unauthenticated
// caller cannot make the service parse anything.
func (s *Server) requireIngestToken(next httprouter.Handle) httprouter.Handle {
	return func(w http.ResponseWriter, r *http.Request, ps httprouter.Params) {
		token, ok := bearerToken(r)
		if !ok {
			s.writeError(w, r, errNotAuthenticated)
			return
		}
		if s.cfg.IngestToken == "" || !secretEqual(token, s.ingestDigest) {
			s.writeError(w, r, errInvalidToken)
			return
		}
		setLogToken(r.Context(), token)
		next(w, r, ps)
	}
}

// requireDashboardToken lets a request through to next only with a dashboard
// token for the user in the path (or for every user). An unknown token is a
// 401 before any 403, so a 403 never confirms to a stranger which users exist
// or that a guessed token is real for someone else.
func (s *Server) requireDashboardToken(next httprouter.Handle) httprouter.Handle {
	return func(w http.ResponseWriter, r *http.Request, ps httprouter.Params) {
		userID := ps.ByName("user_id")
		if validExternalID(userID) == nil {
			setLogUser(r.Context(), userID)
		}
		token, ok := bearerToken(r)
		if !ok {
			s.writeError(w, r, errNotAuthenticated)
			return
		}
		granted, found := s.dashboardUser(token)
		if !found {
			s.writeError(w, r, errInvalidToken)
			return
		}
		setLogToken(r.Context(), token)
		if granted != allUsers && granted != userID {
			s.writeError(w, r, errForbiddenUser)
			return
		}
		next(w, r, ps)
	}
}

// dashboardUser looks token up by comparing its digest with every configured
// one, without stopping at a match, so the time taken says nothing about
// which entry (if any) matched.
func (s *Server) dashboardUser(token string) (userID string, found bool) {
	for _, t := range s.dashboardTokens {
		if secretEqual(token, t.digest) {
			userID, found = t.userID, true
		}
	}
	return userID, found
}
