# hero — run `make help` for the targets.
SHELL := /bin/bash
GO    ?= go
PKGS  ?= ./...
BIN   := bin/hero
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X main.version=$(VERSION)
# What the embedded default (`hero serve` with a local sandbox) needs on the host.
RUN_DEPS := git bwrap

.PHONY: help run build test test-quick bench lint deps clean image-check

help: ## show this help
	@grep -hE '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  \033[36m%-12s\033[0m %s\n", $$1, $$2}'

build: ## build bin/hero
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/hero

run: build ## install the local sandbox's packages when missing, then start `hero serve` on the embedded defaults (SQLite + local sandbox in ./data)
	@# Without them hero still serves (settings page, chat) and /readyz says what is missing.
	scripts/install-deps.sh $(RUN_DEPS) || echo "make run: could not install $(RUN_DEPS); starting without a working sandbox" >&2
	./$(BIN) serve

deps: ## install the system packages the tests need (bubblewrap with slirp4netns and e2fsprogs, MariaDB, git, Chromium) when missing
	scripts/install-deps.sh git bwrap mariadb chromium

test: deps ## the whole suite with the race detector, against SQLite and a throwaway MariaDB
	$(GO) vet $(PKGS)
	scripts/with-mariadb.sh $(GO) test -race -count=1 -timeout 15m $(PKGS)
	@# The Helm chart, with Helm's engine: a module of its own (deploy/helmcheck).
	cd deploy/helmcheck && $(GO) vet ./... && $(GO) test -count=1 ./...

test-quick: ## unit tests without MariaDB (its store tests are skipped)
	$(GO) test -count=1 $(PKGS)

bench: deps ## benchmarks (with a throwaway MariaDB); numbers go into the closing note
	@# Through with-mariadb.sh: the replicas' GitHub intake and the scheduler's
	@# tick also run on MariaDB (BenchmarkGitHubIntakeReplicas, BenchmarkTick/mysql).
	scripts/with-mariadb.sh $(GO) test -p 1 -run '^$$' -bench . -benchmem -benchtime 2s $$($(GO) list ./... | grep -v /sandbox)
	@# Sandbox benchmarks stop the timer while sandboxes are torn down, so
	@# bound them by count, not time.
	$(GO) test -p 1 -run '^$$' -bench . -benchmem -benchtime 300x ./sandbox/...

image-check: ## build deploy/docker/Dockerfile without Docker (buildah) and check `hero serve` in it with podman; root, Debian
	scripts/image-check.sh

lint: ## gofmt and go vet
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)

clean: ## remove build output (keeps ./data)
	rm -rf bin
