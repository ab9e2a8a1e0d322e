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

.PHONY: help build build-local test lint bench fuzz replay sim demo tools clean $(addprefix build-,OnPushFunction OnPipelineEventFunction DeployerFunction ReconcilerFunction NotifierFunction)

help: ## list the targets
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

build: ## build every function for Lambda (provided.al2023, arm64) into bin/<name>/bootstrap and print sizes
	@for f in $(FUNCTIONS); do \
	  GOOS=linux GOARCH=arm64 CGO_ENABLED=0 $(GO) build $(GOFLAGS_LAMBDA) -o $(BIN)/$$f/bootstrap ./functions/$$f || exit 1; \
	done
	@scripts/sizes $(MAX_BINARY_BYTES) $(addprefix $(BIN)/,$(addsuffix /bootstrap,$(filter-out notifier,$(FUNCTIONS))))
	@scripts/sizes $(MAX_NOTIFIER_BYTES) $(BIN)/notifier/bootstrap

build-local: ## build every function for this machine (for the runtime emulator) into bin/local/<name>/bootstrap
	@for f in $(FUNCTIONS); do \
	  CGO_ENABLED=0 $(GO) build $(GOFLAGS_LAMBDA) -o $(BIN)/local/$$f/bootstrap ./functions/$$f || exit 1; \
	done

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
	@# The scenario checker ships beside the project when it is there (cmd/lp's tests carry copies).
	@if [ -x ../shared/tools/check-scenarios ]; then ../shared/tools/check-scenarios; fi

lint: ## gofmt, vet and staticcheck
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); exit 1; }
	$(GO) vet ./...
	$(GO) run honnef.co/go/tools/cmd/staticcheck@v0.8.2 ./...

bench: tools ## run the benchmarks (numbers go to docs/benchmarks.md)
	$(GO) test -run '^$$' -bench . -benchmem ./...

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
	$(GO) run ./cmd/lp sim --seeds $(SEEDS)

demo: tools ## the local end-to-end demo: dynalite, a week of runs replayed, lp runs / show, the messages
	scripts/demo

clean: ## remove build output
	rm -rf $(BIN) .aws-sam
