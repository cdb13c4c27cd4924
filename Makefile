# IoT-Guard. The two commands a newcomer needs: `make run` and `make test`.
SHELL     := /bin/bash
GO        ?= go
BIN       := bin/iotguard
DATA      ?= iotguard-data
FUZZTIME  ?= 10s
GOBIN     ?= $(shell $(GO) env GOPATH)/bin
STATICCHECK_VERSION := v0.8.2
APT_PACKAGES := libcoap3-bin prometheus systemd
# The main module and bftledger's are built apart: a go.work would let
# CometBFT's requirements raise the versions the main module builds with.
export GOWORK := off

.PHONY: all build run demo test deps check unit fuzz flood bench bench-decay bench-decay-upstream bench-ratios bench-scale bench-join-flood clean

all: build

build:
	$(GO) build -o $(BIN) ./cmd/iotguard

# Starts a cluster head on coap://127.0.0.1:5683 with its data in ./$(DATA).
run: build
	$(BIN) serve --data $(DATA) --metrics 127.0.0.1:9464 --admission enrolled

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

# gofmt, vet, staticcheck and a tidy go.mod, for both modules (the main one
# and bftledger's, see below).
check:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GOBIN)/staticcheck ./...
	$(GO) mod tidy -diff
	$(GO) -C bftledger vet ./...
	cd bftledger && $(GOBIN)/staticcheck ./...
	$(GO) -C bftledger mod tidy -diff

unit:
	$(GO) test -race -count=1 ./...

# Everything CI runs.
test: deps check build unit
	@if [ -f firmware/Makefile ]; then $(MAKE) -C firmware test; fi

# Runs every fuzz target of both modules for FUZZTIME each.
fuzz:
	@set -e; for mod in . bftledger; do for pkg in $$($(GO) -C $$mod list ./...); do \
		for t in $$($(GO) -C $$mod test -list '^Fuzz' $$pkg | grep '^Fuzz' || true); do \
			echo "fuzz $$pkg $$t ($(FUZZTIME))"; \
			$(GO) -C $$mod test -run=NONE -fuzz="^$$t$$" -fuzztime=$(FUZZTIME) $$pkg; \
		done; \
	done; done

# A flood of 100,000 one-datagram source endpoints (loopback addresses and
# ports) against a CH with the defaults of iotguard serve: associations held,
# datagrams dropped, goroutines, heap and RSS (docs/SECURITY.md). make test
# runs the same test with 12,000.
flood:
	$(GO) test -run '^TestSourcePortFlood$$' -count=1 -v ./clusterhead -flood-ports 100000

# Short versions of every go test benchmark (crypto ops, CBOR, ledger,
# CoAP round trips). For benchstat, repeat: make bench BENCHCOUNT=10 > new.txt
BENCHCOUNT ?= 1
bench:
	$(GO) test -run=NONE -bench=. -benchmem -benchtime=200x -count=$(BENCHCOUNT) ./...

# The go-coap per-datagram cache scan (third_party/README.md): one source's
# request cost after 0 and after 20,000 earlier requests, patched ...
bench-decay:
	$(GO) test -run=NONE -bench=BusySource -benchtime=2000x -count=$(BENCHCOUNT) ./internal/bench

# ... and with upstream go-coap v3.8.0 (a go.mod copy without the replace).
bench-decay-upstream:
	@tmp=$$(mktemp -d) && cp go.mod go.sum $$tmp/ && \
	$(GO) mod edit -modfile=$$tmp/go.mod -dropreplace=github.com/plgd-dev/go-coap/v3 && \
	$(GO) test -mod=mod -modfile=$$tmp/go.mod -run=NONE -bench=BusySource -benchtime=2000x -count=$(BENCHCOUNT) ./internal/bench; \
	rc=$$?; rm -rf $$tmp; exit $$rc

# The load generator's ratios against their same-run baselines
# (docs/PERFORMANCE.md). BENCHTIME per scenario.
BENCHTIME ?= 60s
BENCHOUT  ?= bench-out
bench-ratios: build
	@mkdir -p $(BENCHOUT)
	@for s in verify session m2m mixed join; do \
		$(BIN) bench --scenario $$s --duration $(BENCHTIME) --baseline --half-load --concurrency 64 \
			--plot $(BENCHOUT)/$$s.svg --json > $(BENCHOUT)/$$s.json || exit 1; \
		echo "$$s: $$(cat $(BENCHOUT)/$$s.json | head -c 400)"; \
	done
	@# join against a cluster head in its own process, whose CPU per join is measured apart
	@# (--admission open, as in bench-summary: a server that admits enrolled devices only needs the bench given --fleet)
	@d=$$(mktemp -d); port=$$(python3 -c 'import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'); \
	$(BIN) serve --data $$d --listen 127.0.0.1:$$port --admission open --rate-limit 0 --join-rate 0 >$$d/serve.log 2>&1 & pid=$$!; sleep 1; \
	$(BIN) bench --scenario join --duration $(BENCHTIME) --concurrency 64 --baseline \
		--server coap://127.0.0.1:$$port --server-pid $$pid --json > $(BENCHOUT)/join-ch-process.json; rc=$$?; \
	kill $$pid; wait $$pid; rm -rf $$d; echo "join-ch-process: $$(head -c 400 $(BENCHOUT)/join-ch-process.json)"; exit $$rc

# The tables of docs/PERFORMANCE.md: /verify and /session against the echo
# and join against its crypto bound, in one run with the CH in this process
# (the ratios), then in one run against a CH and an echo each in a process of
# its own (their CPU per op, server against server, and the join's server CPU
# ratio; both started with --pprof, so they can be profiled meanwhile on
# 127.0.0.1:9465 and 127.0.0.1:9466).
.PHONY: bench-summary
bench-summary: build
	$(BIN) bench --scenario ratios --duration $(BENCHTIME) --concurrency 64
	@d=$$(mktemp -d); free='import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; \
	port=$$(python3 -c "$$free"); eport=$$(python3 -c "$$free"); \
	$(BIN) serve --data $$d --listen 127.0.0.1:$$port --admission open --rate-limit 0 --join-rate 0 --association-rate 0 --max-associations 0 --metrics 127.0.0.1:9465 --pprof >$$d/serve.log 2>&1 & pid=$$!; \
	$(BIN) bench --serve-echo 127.0.0.1:$$eport --metrics 127.0.0.1:9466 --pprof >$$d/echo.log 2>&1 & epid=$$!; sleep 1; \
	$(BIN) bench --scenario ratios --duration $(BENCHTIME) --concurrency 64 \
		--server coap://127.0.0.1:$$port --server-pid $$pid --echo-server coap://127.0.0.1:$$eport --echo-server-pid $$epid; rc=$$?; \
	kill $$pid $$epid; wait $$pid $$epid; rm -rf $$d; exit $$rc

# The tail against the rate: /verify and the go-coap echo, each in this
# process, at fixed rates up to about half of this machine's maximum
# (docs/PERFORMANCE.md, "The tail against the rate"). TAILRATES per second.
TAILRATES ?= 1000 4000 8000 16000
.PHONY: bench-tail
bench-tail: build
	@for r in $(TAILRATES); do for s in verify echo; do \
		printf '%-6s at %6s/s: ' $$s $$r; \
		$(BIN) bench --scenario $$s --rate $$r --duration $(BENCHTIME) --concurrency 64 | grep '^latency' || exit 1; \
	done; done

# Members under a flood of joins (docs/PERFORMANCE.md, "Round two, sixteenth
# part"): a CH in its own process that admits enrolled devices and trusts
# fleet A, with --join-rate JOINRATE (empty: the flag left out, for an older
# build given with FLOODBIN=); 8 members of fleet A send /verify at 400/s
# while 256 devices send joins for 14 s without waiting for Max-Age
# (--timeout 900ms), with credentials of FLOODFLEET: untrusted (refused) or
# trusted (admitted, a block each). Prints /verify's latency, the flood's
# answers and the CH's CPU time (ticks of 10 ms) over /verify's run.
FLOODBIN   ?= $(BIN)
JOINRATE   ?= 1000
FLOODFLEET ?= untrusted
bench-join-flood: build
	@d=$$(mktemp -d); port=$$(python3 -c 'import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'); \
	$(FLOODBIN) fleet keygen --out $$d/trusted.pem > $$d/trusted.pub 2>/dev/null && $(FLOODBIN) fleet keygen --out $$d/untrusted.pem >/dev/null 2>&1 || exit 1; \
	$(FLOODBIN) serve --data $$d/ch --listen 127.0.0.1:$$port --rate-limit 0 --fleet-key $$d/trusted.pub \
		$(if $(JOINRATE),--join-rate $(JOINRATE)) >$$d/serve.log 2>&1 & pid=$$!; sleep 1; \
	$(FLOODBIN) bench --scenario verify --duration 12s --concurrency 8 --rate 400 --server coap://127.0.0.1:$$port \
		--fleet $$d/trusted.pem > $$d/verify.txt 2>&1 & vp=$$!; sleep 1.5; \
	$(FLOODBIN) bench --scenario join --duration 14s --timeout 900ms --concurrency 256 --server coap://127.0.0.1:$$port \
		--fleet $$d/$(FLOODFLEET).pem > $$d/flood.txt 2>&1 & fp=$$!; \
	t0=$$(awk '{print $$14+$$15}' /proc/$$pid/stat); wait $$vp; rc=$$?; t1=$$(awk '{print $$14+$$15}' /proc/$$pid/stat); wait $$fp; \
	echo "join-rate '$(JOINRATE)', flood with $(FLOODFLEET) credentials"; \
	grep -E '^(ops|latency|errors)' $$d/verify.txt | sed 's/^/verify: /'; grep -E '^(ops|errors)' $$d/flood.txt | sed 's/^/flood:  /'; \
	echo "CH CPU over /verify's run: $$((t1 - t0)) ticks"; [ $$rc = 0 ] || cat $$d/verify.txt; \
	kill $$pid; wait $$pid; rm -rf $$d; exit $$rc

# 1k, 100k and 1M members: lookup, join and verify latency, memory.
bench-scale: build
	@mkdir -p $(BENCHOUT)
	$(BIN) bench --scenario scale --members 1000,100000,1000000 --duration 10s --concurrency 32 \
		--plot $(BENCHOUT)/scale.svg

# Soak: SOAKTIME (default 10m) of mixed load on loopback against a separate
# 'iotguard serve', sampling its goroutines, open FDs and memory; fails if
# they grow. Not part of 'make test'.
SOAKTIME ?= 10m
.PHONY: soak
soak:
	SOAK_DURATION=$(SOAKTIME) $(GO) test -tags soak -run '^TestSoak$$' -count=1 -timeout 0 -v ./cmd/iotguard

clean:
	rm -rf bin

# The CometBFT backend (bftledger, issue 7) is a Go module of its own,
# bftledger/go.mod (its replace directives point at this checkout): the main
# module's graph, `make test` and bin/iotguard have no CometBFT code.
# bin/iotguard-cometbft is the same command tree with the CometBFT ledger.
# There is no go.work (see GOWORK at the top).
BIN_COMETBFT := bin/iotguard-cometbft
.PHONY: build-cometbft localnet test-cometbft bench-cometbft

build-cometbft:
	$(GO) -C bftledger build -o $(CURDIR)/$(BIN_COMETBFT) ./cmd/iotguard-cometbft

# Four validators and two cluster heads (CoAP on 127.0.0.1:5683 and :5684).
localnet: build-cometbft
	$(BIN_COMETBFT) localnet

# Called by .ci/run after `make test`: vet and staticcheck of the bftledger
# module, then its tests (the state machine, four-validator networks).
test-cometbft: build-cometbft
	$(GO) -C bftledger vet ./...
	cd bftledger && $(GOBIN)/staticcheck ./...
	$(GO) -C bftledger test -race -count=1 ./...

# Join commit latency and throughput: bbolt, 1 and 4 validators (docs/PERFORMANCE.md).
bench-cometbft:
	$(GO) -C bftledger test -run NONE -bench 'JoinCommit/.*/seq' -benchtime 200x .
	$(GO) -C bftledger test -run NONE -bench 'JoinCommit/.*/c64' -benchtime 3000x .
