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
	@awk 'BEGIN { FS = ":.*## " } /^[a-zA-Z0-9_.-]+:.*## / { printf "  %-10s %s\n", $$1, $$2 }' $(MAKEFILE_LIST)

.PHONY: db-start
db-start: ## start the local dev PostgreSQL (or find it running); print its URL
	@$(DEVDB) start -dir $(DEVDB_DIR)

.PHONY: db-stop
db-stop: ## stop the local dev PostgreSQL
	@$(DEVDB) stop -dir $(DEVDB_DIR)

.PHONY: test
test: ## run all tests (database: TEST_DATABASE_URL, else DATABASE_URL, else the dev PostgreSQL)
	@url="$${TEST_DATABASE_URL:-$(DB_URL)}"; \
	TEST_DATABASE_URL="$$url" $(GO) test -race -count=1 ./...

.PHONY: lint
lint: ## go vet, and check that gofmt leaves every file unchanged
	$(GO) vet ./...
	@files="$$(gofmt -l .)"; \
	if [ -n "$$files" ]; then echo "gofmt -l: these files need gofmt -w:"; echo "$$files"; exit 1; fi

.PHONY: build
build: ## build the server into bin/coco
	$(GO) build -o bin/coco ./cmd/coco
