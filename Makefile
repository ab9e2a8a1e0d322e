# lambda-pipeline — the targets a newcomer looks for. `make help` lists them.
SHELL := /bin/bash
.DEFAULT_GOAL := help

GO        ?= go
FUNCTIONS := on-push on-pipeline-event deployer reconciler notifier
BIN       := bin
GOFLAGS_LAMBDA := -tags lambda.norpc -trimpath -ldflags "-s -w"
MAX_BINARY_BYTES := 8388608
# The notifier links seven AWS clients (DynamoDB, SNS, SSM, Secrets Manager, CodeBuild, Logs,
# CloudFormation, CodeCommit); it is kept off the hot path and has its own budget
# (docs/benchmarks.md, "Binary sizes").
MAX_NOTIFIER_BYTES := 10485760
# The deployer links the policy gate's YAML parser and the DynamoDB client (approvals); it runs
# once per deploy action, not per event, and has the same budget (docs/benchmarks.md).
MAX_DEPLOYER_BYTES := 10485760

.PHONY: help build build-local lp test contract lint bench bench-scale bench-baseline coldstart fuzz replay sim demo tools clean $(addprefix build-,OnPushFunction OnPipelineEventFunction DeployerFunction ReconcilerFunction NotifierFunction)

help: ## list the targets
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

build: ## build every function for Lambda (provided.al2023, arm64) into bin/<name>/bootstrap and print sizes
	@for f in $(FUNCTIONS); do \
	  GOOS=linux GOARCH=arm64 CGO_ENABLED=0 $(GO) build $(GOFLAGS_LAMBDA) -o $(BIN)/$$f/bootstrap ./functions/$$f || exit 1; \
	done
	@scripts/sizes $(MAX_BINARY_BYTES) $(addprefix $(BIN)/,$(addsuffix /bootstrap,$(filter-out notifier deployer,$(FUNCTIONS))))
	@scripts/sizes $(MAX_NOTIFIER_BYTES) $(BIN)/notifier/bootstrap
	@scripts/sizes $(MAX_DEPLOYER_BYTES) $(BIN)/deployer/bootstrap

build-local: ## build every function for this machine (for the runtime emulator) into bin/local/<name>/bootstrap
	@for f in $(FUNCTIONS); do \
	  CGO_ENABLED=0 $(GO) build $(GOFLAGS_LAMBDA) -o $(BIN)/local/$$f/bootstrap ./functions/$$f || exit 1; \
	done

# lp's version and commit, stamped into the binary (lp --version).
LP_VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo devel)
LP_COMMIT  ?= $(shell git rev-parse --short=12 HEAD 2>/dev/null)

lp: ## the lp CLI for this machine, version and commit stamped, into bin/lp (GOOS/GOARCH to cross-build)
	@echo "building $(BIN)/lp $(LP_VERSION) ($(LP_COMMIT))…"
	@CGO_ENABLED=0 $(GO) build -trimpath -ldflags "-s -w -X main.version=$(LP_VERSION) -X main.commit=$(LP_COMMIT)" -o $(BIN)/lp ./cmd/lp
	@$(BIN)/lp --version 2>/dev/null || true

# `sam build` with BuildMethod: makefile calls build-<LogicalId> with ARTIFACTS_DIR set.
define sam_target
build-$(1):
	GOOS=linux GOARCH=arm64 CGO_ENABLED=0 $(GO) build $(GOFLAGS_LAMBDA) -o "$$(ARTIFACTS_DIR)/bootstrap" ./functions/$(2)
endef
$(eval $(call sam_target,OnPushFunction,on-push))
$(eval $(call sam_target,OnPipelineEventFunction,on-pipeline-event))
$(eval $(call sam_target,DeployerFunction,deployer))
$(eval $(call sam_target,ReconcilerFunction,reconciler))
$(eval $(call sam_target,NotifierFunction,notifier))

tools: ## install what the tests need (npm packages: dynalite)
	@test -d node_modules/dynalite || npm ci --no-audit --no-fund

test: tools ## vet, then every test with the race detector (dynalite and emulator tests included)
	$(GO) vet ./...
	$(GO) test -race -count=1 ./...

contract: tools ## the store contract with the whole 10,000-event shuffled replay through DynamoDB (dynalite)
	LP_CONTRACT_EVENTS=10000 $(GO) test -count=1 -run 'Contract' -v ./shared/runstore/ | grep -E '^(---|ok|FAIL)|events,'

lint: ## gofmt, vet and staticcheck
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); exit 1; }
	$(GO) vet ./...
	$(GO) run honnef.co/go/tools/cmd/staticcheck@v0.8.2 ./...

# `make bench`: every benchmark BENCH_COUNT times, in the text format benchstat reads, into
# BENCH_OUT; compared with BENCH_BASELINE when there is one (`make bench-baseline` keeps a run as
# the baseline). BENCH selects benchmarks (a -bench regexp), BENCH_PACKAGES the packages (by
# default those with a Benchmark function). Figures depend on the machine and its load: each
# result file starts and ends with the load average (docs/benchmarks.md).
BENCH          ?= .
BENCH_COUNT    ?= 6
BENCH_DIR      ?= bench
BENCH_OUT      ?= $(BENCH_DIR)/latest.txt
BENCH_BASELINE ?= $(BENCH_DIR)/baseline.txt
BENCH_PACKAGES ?= $(sort $(dir $(shell grep -rl --include='*_test.go' --exclude-dir=node_modules --exclude-dir=.git '^func Benchmark' .)))
BENCHSTAT_VERSION := v0.0.0-20260908200009-22c9c6c9d4da
BENCHSTAT := $(GO) run golang.org/x/perf/cmd/benchstat@$(BENCHSTAT_VERSION)

bench: tools ## run every benchmark BENCH_COUNT (6) times into bench/latest.txt; benchstat against bench/baseline.txt if any
	@mkdir -p $(dir $(BENCH_OUT))
	@set -o pipefail; { \
	  echo "# make bench $$(date -u +%FT%TZ), commit $$(git describe --always --dirty 2>/dev/null), $$($(GO) env GOVERSION), $$(nproc) CPUs, $$(awk '/^MemTotal/ {printf "%.1f GiB", $$2/1048576}' /proc/meminfo 2>/dev/null)"; \
	  echo "# load average before: $$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null)"; \
	  $(GO) test -run '^$$' -bench '$(BENCH)' -benchmem -count $(BENCH_COUNT) -timeout 60m $(BENCH_PACKAGES); \
	  echo "# load average after: $$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null)"; \
	} | tee $(BENCH_OUT).tmp
	@mv $(BENCH_OUT).tmp $(BENCH_OUT)
	@echo "wrote $(BENCH_OUT)"
	@if [ -f $(BENCH_BASELINE) ]; then \
	  echo "== benchstat $(BENCH_BASELINE) $(BENCH_OUT)"; $(BENCHSTAT) $(BENCH_BASELINE) $(BENCH_OUT); \
	else \
	  echo "no $(BENCH_BASELINE) to compare with: \`make bench-baseline\` keeps this run as the baseline"; \
	fi

bench-baseline: ## keep bench/latest.txt as the baseline that later `make bench` runs are compared with
	@test -f $(BENCH_OUT) || { echo "no $(BENCH_OUT): run make bench first"; exit 1; }
	cp $(BENCH_OUT) $(BENCH_BASELINE)

coldstart: ## cold starts under the runtime emulator, less a Go hello-world's (N runs each, default 20; exits 1 over 20 ms)
	$(GO) run ./shared/lambdarie/internal/coldstart -n $(or $(N),20)

SCALE_PIPELINES ?= 1000
SCALE_RUNS ?= 50
bench-scale: ## replay SCALE_PIPELINES pipelines x SCALE_RUNS runs, interleaved, through on-pipeline-event's recorder (docs/benchmarks.md)
	LP_BENCH_SCALE=1 SCALE_PIPELINES=$(SCALE_PIPELINES) SCALE_RUNS=$(SCALE_RUNS) $(GO) test -run '^$$' -bench BenchmarkReplayAccountScale -benchtime 1x -timeout 60m ./functions/on-pipeline-event/

FUZZTIME ?= 60s
FUZZ_PACKAGES := ./shared/ebevent/ ./shared/pipeline/ ./shared/notify/ ./shared/deploy/ ./infrastructure/
fuzz: ## run every fuzz target for FUZZTIME each (default 60s)
	@for p in $(FUZZ_PACKAGES); do \
	  for t in $$($(GO) test -list 'Fuzz.*' $$p | grep ^Fuzz); do \
	    echo "== $$p $$t"; $(GO) test -run '^$$' -fuzz "^$$t$$" -fuzztime $(FUZZTIME) $$p || exit 1; \
	  done; \
	done

replay: ## replay recorded runs through the real handler code, with no AWS account
	$(GO) run ./cmd/lp replay events/replay/*.ndjson

SEEDS ?= 20000
sim: ## run the deterministic simulation over SEEDS seeds (default 20000) and report seeds/s, runs and faults
	$(GO) run ./shared/testing/simulation/cmd/sim --seeds $(SEEDS)

demo: tools ## the local end-to-end demo: dynalite, a week of runs replayed, lp runs / show, the messages
	scripts/demo

clean: ## remove build output
	rm -rf $(BIN) .aws-sam
