# Visage: `make run` serves the IdP, `make test` runs every test. Both install what is missing first.
SHELL := /bin/bash
GO ?= go
WEIGHTS ?= $(CURDIR)/models/weights
# A local mirror of the model files, tried before the upstream sources (checksums are verified
# whatever the source); ../shared/models is used when it exists.
MODELS_MIRROR ?= $(wildcard $(abspath $(CURDIR)/../shared/models))
VISAGE_TESTDATA ?= $(abspath $(CURDIR)/../shared/testdata)
# Debian packages the build and the tests need, checked with dpkg; tools are checked by command
# (node and npm may come from elsewhere than Debian).
DEB_PACKAGES := libdlib-dev libblas-dev libatlas-base-dev liblapack-dev libjpeg62-turbo-dev chromium ffmpeg
DEB_COMMANDS := node:nodejs npm:npm gcc:gcc g++:g++
export VISAGE_MODELS_DIR ?= $(WEIGHTS)
export VISAGE_TESTDATA
export CGO_ENABLED := 1

.PHONY: all deps models generate build run test e2e-deps vet fmt bench clean

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

generate:
	$(GO) tool templ generate -path templates >/dev/null

build: deps generate
	$(GO) build -o bin/idp ./cmd/idp

run: build models
	./bin/idp serve

## e2e-deps: the npm packages of the browser tests (playwright-core drives Debian's chromium).
e2e-deps:
	cd e2e && npm ci --no-audit --no-fund --silent

test: deps models generate e2e-deps
	$(GO) vet ./...
	$(GO) build -o bin/idp ./cmd/idp
	$(GO) test -count=1 -timeout 30m ./...

bench: deps models
	$(GO) test -run '^$$' -bench . -benchmem ./authn/... ./oidc/...

fmt:
	gofmt -l -w $$(git ls-files '*.go' | grep -v '_templ.go$$')

clean:
	rm -rf bin
