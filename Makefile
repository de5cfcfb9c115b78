# prwmetric build and test entry points.
#
#   make test      go vet, the unused-code check and unit tests (-race), a
#                  short run of every fuzz target, in the root module and in
#                  every nested library module (prwautoexport/, sigv4/,
#                  azuread/), then the end-to-end tests in e2e/ and the
#                  tests in benchmarks/.
#   make e2e-deps  installs what the end-to-end tests run against: the Debian
#                  packages prometheus (2.42) and victoria-metrics (1.79), and
#                  Prometheus 3 and VictoriaMetrics 1.151 built from the Go
#                  module proxy.
#
# The e2e tests skip a missing backend locally and fail on it when CI=true.

SHELL := /usr/bin/env bash
.SHELLFLAGS := -euo pipefail -c

GO ?= go

# Prometheus 3 (module github.com/prometheus/prometheus, whose tag v0.3XX.Y is
# Prometheus release 3.XX.Y) is built once into a cache directory named after the
# version, so a version bump builds anew and CI can cache the directory.
PROMETHEUS3_VERSION := v0.316.0
PROMETHEUS3_RELEASE := 3.16.0
PROMETHEUS3_DIR := $(HOME)/.cache/prwmetric/prometheus-$(PROMETHEUS3_VERSION)
PROMETHEUS3 := $(PROMETHEUS3_DIR)/prometheus
# The e2e harness looks for the binary here (same default path as this file).
export PRWMETRIC_PROMETHEUS3 ?= $(PROMETHEUS3)

# A current VictoriaMetrics (the Debian package is 1.79, older than its zstd
# remote write protocol), built and cached the same way.
VICTORIAMETRICS_NEW_VERSION := v1.151.0
VICTORIAMETRICS_NEW_DIR := $(HOME)/.cache/prwmetric/victoria-metrics-$(VICTORIAMETRICS_NEW_VERSION)
VICTORIAMETRICS_NEW := $(VICTORIAMETRICS_NEW_DIR)/victoria-metrics
export PRWMETRIC_VICTORIAMETRICS_NEW ?= $(VICTORIAMETRICS_NEW)

# Debian package → the binary the e2e harness runs.
DEBIAN_BINARIES := prometheus:/usr/bin/prometheus victoria-metrics:/usr/bin/victoria-metrics

# Nested library modules: each has its own go.mod so that the core module
# never pulls their dependencies (contrib autoexport, the AWS and Azure SDKs).
MODULES := $(wildcard prwautoexport sigv4 azuread examples/clientgolang internal/pdataconv)

.PHONY: test test-unit test-fuzz test-modules test-e2e test-benchmarks e2e-deps debian-deps prometheus3 victoriametrics-new

test: test-unit test-fuzz test-modules test-e2e test-benchmarks

# A short run of every fuzz target; long runs are done by hand before a
# release: make test-fuzz FUZZTIME=10m
FUZZTIME ?= 10s
test-fuzz:
	for target in FuzzConvert FuzzResponseHandling FuzzParseRetryAfter; do \
		$(GO) test -run '^$$' -fuzz "^$$target$$" -fuzztime $(FUZZTIME) . ; \
	done
	$(GO) test -run '^$$' -fuzz '^FuzzHandle$$' -fuzztime $(FUZZTIME) ./prwmetrictest

# Unused code (production code reachable only from tests counts as unused).
STATICCHECK_VERSION := v0.6.1

test-unit:
	$(GO) vet ./...
	GOFLAGS= $(GO) run honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION) -tests=false -checks U1000 . ./prwmetrictest
	$(GO) test -race ./...
	# The full 10 000-export soak; -race makes it too slow, so it runs a
	# shortened soak above.
	$(GO) test -run '^TestSoak$$' -count=1 . -soak

test-modules:
	for m in $(MODULES); do \
		(cd $$m && $(GO) vet ./... && $(GO) test -race ./...) || exit 1; \
	done

test-e2e:
	cd e2e && $(GO) vet ./... && $(GO) test -race -timeout 20m ./...

test-benchmarks:
	if [ -d benchmarks ]; then cd benchmarks && $(GO) vet ./... && $(GO) test ./...; fi

e2e-deps: debian-deps prometheus3 victoriametrics-new

debian-deps:
	@missing=""; \
	for pair in $(DEBIAN_BINARIES); do \
		[ -x "$${pair#*:}" ] || missing="$$missing $${pair%%:*}"; \
	done; \
	if [ -z "$$missing" ]; then \
		echo "e2e-deps: Debian packages prometheus and victoria-metrics are installed"; \
	elif [ "$$(id -u)" = 0 ]; then \
		echo "e2e-deps: installing$$missing"; \
		apt-get update; \
		DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $$missing; \
	else \
		echo "e2e-deps: missing Debian packages:$$missing" >&2; \
		echo "e2e-deps: install them as root:  sudo apt-get install$$missing" >&2; \
		echo "e2e-deps: or point the tests at your own binaries with PRWMETRIC_PROMETHEUS2 / PRWMETRIC_VICTORIAMETRICS" >&2; \
		exit 1; \
	fi

prometheus3: $(PROMETHEUS3)

# go install pkg@version builds with Prometheus' own go.mod and go.sum,
# independent of this repository's modules. GOFLAGS is cleared so that a
# caller's -mod=... cannot break it; without cgo the binary is static.
$(PROMETHEUS3):
	@echo "e2e-deps: building Prometheus 3 ($(PROMETHEUS3_VERSION)) into $(PROMETHEUS3_DIR); this takes several minutes once"
	mkdir -p $(PROMETHEUS3_DIR)
	GOBIN=$(PROMETHEUS3_DIR) GOFLAGS= CGO_ENABLED=0 $(GO) install \
		-ldflags "-X github.com/prometheus/common/version.Version=$(PROMETHEUS3_RELEASE)" \
		github.com/prometheus/prometheus/cmd/prometheus@$(PROMETHEUS3_VERSION)
	$(PROMETHEUS3) --version

victoriametrics-new: $(VICTORIAMETRICS_NEW)

# As for Prometheus 3: VictoriaMetrics' own go.mod, no caller GOFLAGS, static.
# The version stamp makes -version and vm_app_version say what was built.
$(VICTORIAMETRICS_NEW):
	@echo "e2e-deps: building VictoriaMetrics $(VICTORIAMETRICS_NEW_VERSION) into $(VICTORIAMETRICS_NEW_DIR); this takes about a minute once"
	mkdir -p $(VICTORIAMETRICS_NEW_DIR)
	GOBIN=$(VICTORIAMETRICS_NEW_DIR) GOFLAGS= CGO_ENABLED=0 $(GO) install \
		-ldflags "-X github.com/VictoriaMetrics/VictoriaMetrics/lib/buildinfo.Version=victoria-metrics-$(VICTORIAMETRICS_NEW_VERSION)" \
		github.com/VictoriaMetrics/VictoriaMetrics/app/victoria-metrics@$(VICTORIAMETRICS_NEW_VERSION)
	$(VICTORIAMETRICS_NEW) -version
