package httpapi

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/julienschmidt/httprouter"

	"coco/sql/store"
)

type statusBody struct {
	Status string `json:"status"`
}

type readyBody struct {
	Status     string `json:"status"`
	WindowDays int    `json:"windowDays"`
}

// handleLivez says the process serves HTTP. It never touches the database,
// so a database outage does not make the orchestrator restart every replica.
func (s *Server) handleLivez(w http.ResponseWriter, _ *http.Request, _ httprouter.Params) {
	writeJSON(w, http.StatusOK, statusBody{Status: "ok"})
}

// handleHealthz says the database answers SELECT 1. Any failure is a 503
// here: the probe asks "can you reach the database", and the answer is no.
func (s *Server) handleHealthz(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
	ctx, cancel := s.dbContext(r)
	defer cancel()
	if err := s.store.Ping(ctx); err != nil {
		if !errors.Is(err, store.ErrUnavailable) {
			err = errors.Join(store.ErrUnavailable, err)
		}
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, statusBody{Status: "ok"})
}

// handleReadyz says this replica should get traffic: it is not shutting
// down, the database answers, and its schema is at least the version this
// binary was built for. At least, not exactly: in a rolling deploy the
// release step migrates first, and the old replicas still serving must not
// all drop out of the load balancer at that moment.
func (s *Server) handleReadyz(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
	if s.draining.Load() {
		s.writeError(w, r, errDraining)
		return
	}
	ctx, cancel := s.dbContext(r)
	defer cancel()
	version, err := s.store.SchemaVersion(ctx)
	if err != nil {
		if !errors.Is(err, store.ErrUnavailable) {
			err = errors.Join(store.ErrUnavailable, err)
		}
		s.writeError(w, r, err)
		return
	}
	if version < s.expectedVersion {
		s.writeError(w, r, &httpError{http.StatusServiceUnavailable,
			fmt.Sprintf("database schema is at version %d, this build needs %d: run the migrations", version, s.expectedVersion)})
		return
	}
	writeJSON(w, http.StatusOK, readyBody{Status: "ready", WindowDays: WindowDays})
}
