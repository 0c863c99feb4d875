# dispatch-slurm: run `make help` for the targets.
GO      ?= go
BIN     ?= bin
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X main.version=$(VERSION)
# Fuzz budget per target in `make test`: a count of executions (a few seconds each here), not a
# duration: Go 1.26's fuzz coordinator can report "context deadline exceeded" as a failure when
# a duration-based -fuzztime ends while a worker is busy (golang/go#75804, fixed in Go 1.27).
# For a long session: `make fuzz FUZZTIME=5000000x`.
FUZZTIME ?= 50000x
FUZZ_TARGETS := $(shell grep -rl --include='*_test.go' '^func Fuzz' pkg test 2>/dev/null)

.DEFAULT_GOAL := help
.PHONY: help build fmt lint test test-go fuzz slurm-up slurm-down slurm-status clean demo bench soak install

help: ## list the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  %-14s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

build: ## build dispatch-slurm and the test tools into bin/
	@mkdir -p $(BIN)
	$(GO) build -ldflags '$(LDFLAGS)' -o $(BIN)/ ./cmd/... ./test/fakeslurm ./test/fakearvados/cmd/... ./test/crunchrun-standin ./test/demo/cmd/demo

fmt: ## format the Go code
	gofmt -s -w $$(git ls-files '*.go')

lint: ## go vet and staticcheck
	@unformatted=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$unformatted" ]; then echo "gofmt needed: $$unformatted"; exit 1; fi
	$(GO) vet ./...
	$(GO) tool staticcheck ./...

test: lint test-go fuzz ## all tiers: lint, unit + fake end-to-end + real Slurm (race), brief fuzzing

# As root, the real-Slurm tier is brought up first; with CI=true it must come up (never skipped).
test-go:
	@if [ "$$(id -u)" = 0 ]; then \
	  if ! scripts/local-slurm.sh up; then \
	    if [ "$$CI" = true ]; then echo "FATAL: real Slurm did not start (CI=true needs it)"; exit 1; fi; \
	    echo "warning: real Slurm did not start; the real-Slurm tier will skip"; \
	  fi; \
	elif [ "$$CI" = true ]; then echo "FATAL: CI=true needs root to start Slurm"; exit 1; fi
	$(GO) test -race -count=1 -timeout 12m ./...

fuzz: ## run each fuzz target for FUZZTIME executions
	@set -e; for f in $(FUZZ_TARGETS); do \
	  dir=$$(dirname $$f); \
	  for t in $$(grep -o '^func Fuzz[A-Za-z0-9_]*' $$f | sed 's/^func //'); do \
	    echo "fuzz $$dir $$t"; $(GO) test -run='^$$' -fuzz="^$$t$$" -fuzztime=$(FUZZTIME) ./$$dir; \
	  done; \
	done

slurm-up: ## install (Debian packages) and start a local single-node Slurm (root)
	scripts/local-slurm.sh up

slurm-down: ## stop the local Slurm daemons
	scripts/local-slurm.sh down

slurm-status: ## is the local Slurm up?
	scripts/local-slurm.sh status

# The soak's duration; SOAK_FLAGS passes more flags, e.g. SOAK_FLAGS=--seed=123 to replay a run.
SOAK_DURATION ?= 5m
SOAK_FLAGS ?=
soak: build ## fault-injection soak with invariant checks (SOAK_DURATION=5m)
	$(GO) run ./test/soak/cmd/soak --bin-dir=$(BIN) --duration=$(SOAK_DURATION) $(SOAK_FLAGS)

# The demo: Slurm is auto (the local Slurm if up, or started as root on Debian; else fakeslurm),
# real or fake.
DEMO_SLURM ?= auto
demo: build ## the whole pipeline on an embedded default (DEMO_SLURM=auto|real|fake)
	$(BIN)/demo --slurm=$(DEMO_SLURM) --bin=$(BIN)

# install: the binary into $(DESTDIR)$(PREFIX)/bin and the systemd unit (its ExecStart pointed
# at that binary) into $(DESTDIR)/etc/systemd/system. systemctl runs only when systemd is PID 1
# and DESTDIR is empty; otherwise the commands to run are printed.
PREFIX ?= /usr/local
UNITDIR ?= /etc/systemd/system

install: build ## install the binary and the systemd unit
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(UNITDIR)
	install -m 0755 $(BIN)/dispatch-slurm $(DESTDIR)$(PREFIX)/bin/dispatch-slurm
	sed 's|/usr/local/bin/dispatch-slurm|$(PREFIX)/bin/dispatch-slurm|' scripts/systemd/dispatch-slurm.service > $(DESTDIR)$(UNITDIR)/dispatch-slurm.service
	chmod 0644 $(DESTDIR)$(UNITDIR)/dispatch-slurm.service
	@if [ -z "$(DESTDIR)" ] && [ "$$(cat /proc/1/comm 2>/dev/null)" = systemd ]; then \
	  systemctl daemon-reload && echo "installed; start it with: systemctl enable --now dispatch-slurm"; \
	else \
	  echo "installed; systemd is not running here (or DESTDIR is set): on the target host run"; \
	  echo "  systemctl daemon-reload && systemctl enable --now dispatch-slurm"; \
	fi

# BENCH_QUICK=1 for the quick mode (about a minute); BENCH_FLAGS for more (`bin/bench -h`).
bench: build ## benchmark figures vs targets (table + JSON); real Slurm tier when it is up
	CGO_ENABLED=0 $(GO) build -o $(BIN)/ ./test/bench/cmd/bench ./test/bench/cmd/slurmwrap
	$(BIN)/bench --bin $(BIN) --json bench-results.json $(BENCH_FLAGS)

clean: ## remove build output
	rm -rf $(BIN)
