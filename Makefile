# Run `make` or `make help` for the list of targets.
#
# Targets that need a database get its URL from the DB_URL shell snippet:
# $DATABASE_URL if set, else the local dev cluster (.localpg, see cmd/devdb),
# which it starts on demand. Use it in an assignment, so that a failure to
# start the cluster stops the recipe:
#
#	url="$(DB_URL)"; DATABASE_URL="$$url" $(GO) run ./cmd/coco

SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

GO ?= go
DEVDB_DIR ?= .localpg
DEVDB = $(GO) run ./cmd/devdb

DB_URL = $${DATABASE_URL:-$$($(DEVDB) start -dir $(DEVDB_DIR))}

.PHONY: help
help: ## list the targets
	@echo "usage: make <target>"
	@awk 'BEGIN { FS = ":.*## " } /^[a-zA-Z0-9_.-]+:.*## / { n++; name[n] = $$1; text[n] = $$2; if (length($$1) > w) w = length($$1) } \
		END { for (i = 1; i <= n; i++) printf "  %-" w "s  %s\n", name[i], text[i] }' $(MAKEFILE_LIST)

.PHONY: db-start
db-start: ## start the local dev PostgreSQL (or find it running); print its URL
	@$(DEVDB) start -dir $(DEVDB_DIR)

.PHONY: db-stop
db-stop: ## stop the local dev PostgreSQL, keeping its data (make db-clean deletes it)
	@$(DEVDB) stop -dir $(DEVDB_DIR)

.PHONY: db-clean
db-clean: ## stop the local dev PostgreSQL and delete its data (hundreds of MB after make bench)
	@$(DEVDB) clean -dir $(DEVDB_DIR)

.PHONY: db-reset
db-reset: ## delete the local dev PostgreSQL's data, start a fresh one and migrate it; print its URL
	@$(DEVDB) clean -dir $(DEVDB_DIR)
	@url="$$($(DEVDB) start -dir $(DEVDB_DIR))"; \
	DATABASE_URL="$$url" $(GO) run ./cmd/coco migrate >&2; \
	echo "$$url"

.PHONY: psql
psql: ## open psql on the database (DATABASE_URL, else the dev PostgreSQL)
	@if ! command -v psql >/dev/null; then \
		echo "make psql: psql not found; install the PostgreSQL client:" \
			"apt-get install postgresql-client (Debian/Ubuntu), brew install libpq && brew link --force libpq (macOS)" >&2; \
		exit 1; \
	fi; \
	url="$(DB_URL)"; exec psql "$$url"

.PHONY: test
test: ## run all tests (database: TEST_DATABASE_URL, else DATABASE_URL, else the dev PostgreSQL)
	@url="$${TEST_DATABASE_URL:-$(DB_URL)}"; \
	TEST_DATABASE_URL="$$url" $(GO) test -race -count=1 ./...

.PHONY: docs-check
docs-check: ## load /docs in headless Chromium and try it out; fails without Chromium (database as for test)
	@url="$${TEST_DATABASE_URL:-$(DB_URL)}"; \
	TEST_DATABASE_URL="$$url" COCO_REQUIRE_BROWSER=1 $(GO) test -count=1 -v -run '^TestDocsPageInChromium$$' ./httpapi

.PHONY: lint
lint: ## go vet, and check that gofmt leaves every file unchanged
	$(GO) vet ./...
	@files="$$(gofmt -l .)"; \
	if [ -n "$$files" ]; then echo "gofmt -l: these files need gofmt -w:"; echo "$$files"; exit 1; fi

# Development defaults for `make run`; each is overridden by the variable of
# the same name in the environment.
DEV_INGEST_TOKEN := dev-ingest-token
DEV_DASHBOARD_TOKEN := dev-dashboard-token

.PHONY: run
run: ## serve on :8000 with demo data (database: DATABASE_URL, else the dev PostgreSQL; READ_REPLICA=1 reads from a standby of it)
	@if [ -n "$(READ_REPLICA)" ] && [ -z "$${DATABASE_READ_URL:-}" ]; then \
		if [ -n "$${DATABASE_URL:-}" ]; then \
			echo "make run READ_REPLICA=1: set DATABASE_READ_URL to a standby of DATABASE_URL" >&2; exit 2; \
		fi; \
		read_url="$$($(DEVDB) start-standby -dir $(DEVDB_DIR))"; \
		export DATABASE_READ_URL="$$read_url"; \
	fi; \
	url="$(DB_URL)"; \
	ingest_tok='$(DEV_INGEST_TOKEN)'; dash_tok='$(DEV_DASHBOARD_TOKEN)'; \
	if [ -n "$${INGEST_SERVICE_TOKEN:-}" ]; then ingest_tok='<your INGEST_SERVICE_TOKEN>'; fi; \
	if [ -n "$${DASHBOARD_TOKEN_MAP:-}" ]; then dash_tok='<a token from DASHBOARD_TOKEN_MAP>'; fi; \
	export DATABASE_URL="$$url" \
		INGEST_SERVICE_TOKEN="$${INGEST_SERVICE_TOKEN:-$(DEV_INGEST_TOKEN)}" \
		DASHBOARD_TOKEN_MAP="$${DASHBOARD_TOKEN_MAP:-$(DEV_DASHBOARD_TOKEN):demo-user}" \
		DASHBOARD_ORIGIN="$${DASHBOARD_ORIGIN:-http://localhost:3000}" \
		PORT="$${PORT:-8000}" \
		LOG_FORMAT="$${LOG_FORMAT:-text}"; \
	$(GO) build -buildvcs=auto -o bin/coco ./cmd/coco; \
	bin/coco migrate; \
	bin/coco seed-demo -user demo-user; \
	echo; \
	echo "Dashboard:"; \
	echo "  curl -s http://localhost:$$PORT/api/dashboard/demo-user -H 'Authorization: Bearer $$dash_tok'"; \
	started="$$(date -u -d '-16 min' +%Y-%m-%dT%H:%M:%SZ 2>/dev/null || date -u -v-16M +%Y-%m-%dT%H:%M:%SZ)"; \
	echo "Ingest (a 15-minute session that ended a minute ago):"; \
	echo "  curl -s -X POST http://localhost:$$PORT/internal/ingest/session_summary -H 'Authorization: Bearer $$ingest_tok' -H 'Content-Type: application/json' -d '{\"session_id\":\"curl-$$(date +%s)\",\"user_external_id\":\"demo-user\",\"started_at\":\"$$started\",\"duration_seconds\":900,\"sentiment_score\":0.66}'"; \
	echo; \
	exec bin/coco serve

# The bench targets use BENCH_DATABASE_URL, else the dev PostgreSQL; never
# DATABASE_URL. On that server the benchmark drops and recreates the databases
# coco_bench and coco_bench_growth WITH (FORCE): give it only a server of your
# own.
.PHONY: bench
bench: ## benchmark coco against direct SQL (database: BENCH_DATABASE_URL, else the dev PostgreSQL; BENCH_FLAGS="-h" lists the flags)
	$(GO) run ./cmd/bench $(BENCH_FLAGS)

.PHONY: bench-quick
bench-quick: ## a shorter benchmark run (about three minutes)
	$(GO) run ./cmd/bench -duration 1s -warmup 300ms -big 200000 $(BENCH_FLAGS)

FUZZTIME ?= 30s

.PHONY: fuzz
fuzz: ## fuzz the ingest decoder for FUZZTIME (default 30s)
	$(GO) test ./httpapi -run '^$$' -fuzz FuzzDecodeSessionSummary -fuzztime $(FUZZTIME)

.PHONY: build
build: ## build the server into bin/coco
	$(GO) build -o bin/coco ./cmd/coco
