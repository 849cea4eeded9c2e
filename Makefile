# The two commands of the quick start: `make demo` and `make test`. Both bootstrap what is missing
# (Node 24 and pnpm into ~/.cache/kubevirt-ts/tools, never globally) and reuse it on the next run.
SHELL := /bin/bash
# When make started (ms), before the bootstrap below: `make demo` counts a cold run's toolchain and build from here.
MAKE_STARTED_MS := $(shell date +%s%3N)
.ONESHELL:
.SHELLFLAGS := -eu -o pipefail -c
TOOLS_BIN := $(shell scripts/bootstrap.sh --bin-dir)
# The control-plane binaries, helm and kubectl devcluster builds (versioned by the pin in its go.mod).
K8S_VERSION := $(shell awk '$$1 == "require" && $$2 == "k8s.io/kubernetes" {print $$3}' packages/devcluster/go/k8s/go.mod)
K8S_BIN := $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/kubevirt-ts/k8s/$(K8S_VERSION)/bin
export PATH := $(CURDIR)/node_modules/.bin:$(TOOLS_BIN):$(K8S_BIN):$(PATH)
export HELM := $(K8S_BIN)/helm
DEVCLUSTER := node --conditions=@kubevirt-ts/source packages/devcluster/src/cli.ts
RESULTS := .test-results

.PHONY: setup build lint typecheck unit integration test demo demo-down bench clean

# The test guest is built here, on the host: the suites and the demo's stack run inside devcluster's network
# namespace, which reaches no package archive (a warm build only reads the cache's manifest).
setup:
	@if [ ! -d node_modules ] || [ pnpm-lock.yaml -nt node_modules/.modules.yaml ]; then pnpm install --frozen-lockfile; fi
	pnpm turbo run generate --output-logs=errors-only
	scripts/install-hypervisor.sh
	node --conditions=@kubevirt-ts/source packages/devcluster/src/guest/build.ts >/dev/null
	$(DEVCLUSTER) build

build: setup
	pnpm turbo run build

lint: setup
	pnpm turbo run lint typecheck
	tsc -p tsconfig.json
	eslint scripts test
	pnpm prettier --check . --log-level warn
	node scripts/chart-versions.ts --check
	pnpm --filter @kubevirt-ts/schema crds:check
	pnpm --filter @kubevirt-ts/schema coverage:check

unit: setup
	mkdir -p $(RESULTS)
	vitest run --reporter=default --reporter=json --outputFile.json=$(RESULTS)/unit.json

# Integration and e2e suites run inside one devcluster (started here, torn down at the end). To use a cluster
# that is already up instead: KUBEVIRT_TS_DEVCLUSTER=keep make integration.
integration: setup
	mkdir -p $(RESULTS)
	$(DEVCLUSTER) test -- vitest run --config vitest.integration.config.ts --reporter=default --reporter=json --outputFile.json=$(RESULTS)/integration.json

test: setup
	rm -rf $(RESULTS)
	status=0
	$(MAKE) --no-print-directory lint || status=1
	$(MAKE) --no-print-directory unit || status=1
	$(MAKE) --no-print-directory integration || status=1
	node scripts/test-summary.ts $(RESULTS) || status=1
	exit $$status

demo: setup
	KUBEVIRT_TS_DEMO_STARTED=$(MAKE_STARTED_MS) $(DEVCLUSTER) demo

demo-down: setup
	$(DEVCLUSTER) down

bench: setup
	pnpm turbo run bench --concurrency=1

clean:
	rm -rf node_modules packages/*/node_modules packages/*/dist .turbo $(RESULTS)
