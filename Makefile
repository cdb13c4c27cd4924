# IoT-Guard. The two commands a newcomer needs: `make run` and `make test`.
SHELL     := /bin/bash
GO        ?= go
BIN       := bin/iotguard
DATA      ?= iotguard-data
FUZZTIME  ?= 10s
GOBIN     ?= $(shell $(GO) env GOPATH)/bin
STATICCHECK_VERSION := v0.8.2
APT_PACKAGES := libcoap3-bin prometheus

.PHONY: all build run demo test deps check unit fuzz bench clean

all: build

build:
	$(GO) build -o $(BIN) ./cmd/iotguard

# Starts a cluster head on coap://127.0.0.1:5683 with its data in ./$(DATA).
run: build
	$(BIN) serve --data $(DATA) --metrics 127.0.0.1:9464

demo: build
	$(BIN) demo

# deps installs what the tests need on a fresh Debian machine (as root).
deps:
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		echo "installing$$missing"; \
		apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $$missing; \
	fi
	@test -x $(GOBIN)/staticcheck || $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)

check:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GOBIN)/staticcheck ./...

unit:
	$(GO) test -race -count=1 ./...

# Everything CI runs.
test: deps check build unit
	@if [ -f firmware/Makefile ]; then $(MAKE) -C firmware test; fi

# Runs every fuzz target for FUZZTIME each.
fuzz:
	@set -e; for pkg in $$($(GO) list ./...); do \
		for t in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz' || true); do \
			echo "fuzz $$pkg $$t ($(FUZZTIME))"; \
			$(GO) test -run=NONE -fuzz="^$$t$$" -fuzztime=$(FUZZTIME) $$pkg; \
		done; \
	done

bench:
	$(GO) test -run=NONE -bench=. -benchmem -benchtime=200x ./...

# Soak: SOAKTIME (default 10m) of mixed load on loopback against a separate
# 'iotguard serve', sampling its goroutines, open FDs and memory; fails if
# they grow. Not part of 'make test'.
SOAKTIME ?= 10m
.PHONY: soak
soak:
	SOAK_DURATION=$(SOAKTIME) $(GO) test -tags soak -run '^TestSoak$$' -count=1 -timeout 0 -v ./cmd/iotguard

clean:
	rm -rf bin
