# Visage: `make run` serves the IdP, `make test` runs every test. Both install what is missing first.
SHELL := /bin/bash
GO ?= go
WEIGHTS ?= $(CURDIR)/models/weights
# A local mirror of the model files, tried before the upstream sources (checksums are verified
# whatever the source); ../shared/models is used when it exists.
MODELS_MIRROR ?= $(wildcard $(abspath $(CURDIR)/../shared/models))
# The public test data: ../shared/testdata beside the checkout when it exists, else the folder that
# `make testdata` fills. TESTDATA_MIRROR is the copy `make testdata` tries before the public sources.
TESTDATA_MIRROR ?= $(wildcard $(abspath $(CURDIR)/../shared/testdata))
VISAGE_TESTDATA ?= $(or $(TESTDATA_MIRROR),$(CURDIR)/testdata/data)
# Debian packages the build and the tests need, checked with dpkg; tools are checked by command
# (node and npm may come from elsewhere than Debian).
DEB_PACKAGES := libdlib-dev libblas-dev libatlas-base-dev liblapack-dev libjpeg62-turbo-dev chromium ffmpeg
DEB_COMMANDS := node:nodejs npm:npm gcc:gcc g++:g++
# oauth2-proxy, a real relying party of the end-to-end tests, built once into bin/.
OAUTH2_PROXY_VERSION ?= v7.15.6
export VISAGE_MODELS_DIR ?= $(WEIGHTS)
export VISAGE_TESTDATA
export CGO_ENABLED := 1

.PHONY: all deps models testdata testdata-check generate build run test e2e-deps vet fmt bench clean

all: build

## deps: install the Debian packages that are missing (only those), as root.
deps:
	@missing=""; for p in $(DEB_PACKAGES); do dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; done; \
	for cp in $(DEB_COMMANDS); do command -v $${cp%%:*} >/dev/null 2>&1 || missing="$$missing $${cp#*:}"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  if [ "$$(id -u)" != 0 ]; then echo "run as root, or install:$$missing" >&2; exit 1; fi; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	fi

## models: fetch and verify the model weights (MODELS_MIRROR=DIR is tried first).
models:
	MODELS_MIRROR="$(MODELS_MIRROR)" models/fetch.sh "$(WEIGHTS)"

## testdata: fetch the public test data sets into testdata/data (TESTDATA_MIRROR=DIR first) and
## verify every file against testdata/manifest.sha256.
testdata:
	TESTDATA_MIRROR="$(TESTDATA_MIRROR)" testdata/fetch.sh "$(CURDIR)/testdata/data"

# testdata-check: name the missing sets (their tests skip); an error only with VISAGE_REQUIRE_TESTDATA=1.
testdata-check:
	@testdata/fetch.sh --check "$(VISAGE_TESTDATA)"

generate:
	$(GO) tool templ generate -path templates >/dev/null

build: deps generate
	$(GO) build -o bin/idp ./cmd/idp

run: build models
	./bin/idp serve

## e2e-deps: the npm packages of the browser tests (playwright-core drives Debian's chromium).
e2e-deps:
	cd e2e && npm ci --no-audit --no-fund --silent

## bin/oauth2-proxy: built from the Go module proxy the first time (a few minutes), then kept.
bin/oauth2-proxy:
	GOBIN=$(CURDIR)/bin $(GO) install github.com/oauth2-proxy/oauth2-proxy/v7@$(OAUTH2_PROXY_VERSION)

# Packages whose tests need no model: run again with the race detector (-short: no soak).
MODEL_FREE := ./authn/ratelimit/... ./authn/risk/... ./authn/sessions/webhook/... ./oidc/... ./store/... ./internal/...

test: deps models testdata-check generate e2e-deps bin/oauth2-proxy
	@# The generated templ code in git must be what the .templ files give.
	@if [ -d .git ] && ! git diff --quiet -- '*_templ.go'; then \
	  echo "generated templ code is out of date: run 'make generate' and commit the *_templ.go files" >&2; git diff --stat -- '*_templ.go' >&2; exit 1; fi
	$(GO) vet ./...
	$(GO) test -race -short -count=1 $(MODEL_FREE)
	$(GO) build -o bin/idp ./cmd/idp
	$(GO) test -count=1 -timeout 30m ./...

bench: deps models
	$(GO) test -run '^$$' -bench . -benchmem ./authn/... ./oidc/...

fmt:
	gofmt -l -w $$(git ls-files '*.go' | grep -v '_templ.go$$')

clean:
	rm -rf bin
