# secretbot build, test and lint entry points. .ci/run and the Dockerfile call
# these targets, so a local run and CI build the same thing the same way.

# The version stamped into the binary; `make build VERSION=1.2.3` overrides it.
# Without git (or outside a checkout, e.g. in a docker build) it is "dev".
ifeq ($(origin VERSION),undefined)
VERSION := $(shell git describe --always --dirty 2>/dev/null || echo dev)
endif
ifeq ($(strip $(VERSION)),)
override VERSION := dev
endif

GO          ?= go
BIN         := bin/secretbot
VERSION_PKG := github.com/secretbot/secretbot/internal/app
# Pinned so every machine lints with the same checks.
STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2

.PHONY: all build test lint fuzz run clean image bench bench-smoke

all: lint test build

# Static binary (CGO off: the SQLite driver is pure Go), with paths stripped
# so builds are reproducible. The Dockerfile runs exactly this target.
build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "-s -w -X $(VERSION_PKG).version=$(VERSION)" -o $(BIN) ./bot

# Unit tests with the race detector (needs cgo and a C compiler), then the e2e
# module without -race: with it the in-process Vault would be compiled twice.
# The e2e run is verbose into bin/e2e-test.log; what is shown is each
# package's result and the scenarios' figures (C04's crash points, C10's
# load), or the whole log when something failed.
E2E_LOG := $(CURDIR)/bin/e2e-test.log
test:
	$(GO) vet ./...
	CGO_ENABLED=1 $(GO) test -race ./...
	cd e2e && $(GO) vet ./...
	@mkdir -p $(dir $(E2E_LOG))
	@echo "cd e2e && $(GO) test -count=1 -timeout 30m -v ./...  (log: $(E2E_LOG))"
	@cd e2e && { $(GO) test -count=1 -timeout 30m -v ./... > $(E2E_LOG) 2>&1; rc=$$?; \
		grep -E '^(ok|FAIL|--- FAIL|C[0-9]+: )' $(E2E_LOG); \
		if [ $$rc -ne 0 ]; then echo "e2e failed; the whole log follows"; cat $(E2E_LOG); fi; exit $$rc; }

# gofmt over the whole tree covers both modules (e2e/ is a subdirectory).
lint:
	@unformatted="$$(gofmt -l .)"; \
	if [ -n "$$unformatted" ]; then \
		echo "gofmt: these files need formatting (run gofmt -w):"; \
		echo "$$unformatted"; \
		exit 1; \
	fi
	$(GO) vet ./...
	cd e2e && $(GO) vet ./...
	$(GO) run $(STATICCHECK) ./...
	cd e2e && $(GO) run $(STATICCHECK) ./...

# Every native fuzz target (func FuzzXxx in a _test.go file of this module,
# found by grep so a new one is never forgotten), each fuzzed for its share
# of FUZZ_SECONDS (160: with the builds, about 3 minutes in all), one target
# per go test run (-fuzz takes one per package). A run that ends only with
# "context deadline exceeded" and no failing input is Go's own race at the
# -fuzztime deadline (loaded machines), not a finding: it is run once more.
# Their seeds and testdata/fuzz corpora already run in `make test`.
FUZZ_SECONDS ?= 160
fuzz:
	@targets="$$(grep -rl --include='*_test.go' --exclude-dir=e2e --exclude-dir=testdata '^func Fuzz[A-Za-z0-9_]*([A-Za-z_][A-Za-z0-9_]* \*testing\.F)' . | \
		xargs grep -o '^func Fuzz[A-Za-z0-9_]*' /dev/null | sed 's|^\./||; s|/[^/]*_test\.go:func | |' | sort -u)"; \
	n=$$(printf '%s\n' "$$targets" | grep -c . || true); \
	if [ "$$n" -eq 0 ]; then echo "fuzz: no fuzz targets found"; exit 1; fi; \
	each=$$(( $(FUZZ_SECONDS) / n )); [ "$$each" -ge 3 ] || each=3; \
	echo "fuzz: $$n targets, $${each}s each"; \
	printf '%s\n' "$$targets" | while read -r dir name; do \
		echo "--- $$name (./$$dir)"; \
		out=$$($(GO) test -run '^$$' -fuzz "^$$name\$$" -fuzztime "$${each}s" "./$$dir" 2>&1); rc=$$?; \
		printf '%s\n' "$$out"; \
		if [ $$rc -ne 0 ]; then \
			if printf '%s\n' "$$out" | grep -q 'context deadline exceeded' && \
				! printf '%s\n' "$$out" | grep -qE 'Failing input written|panic:|_test\.go:[0-9]+:'; then \
				echo "fuzz: $$name hit Go's -fuzztime deadline race (golang/go#51484) with no failing input; once more"; \
				$(GO) test -run '^$$' -fuzz "^$$name\$$" -fuzztime "$${each}s" "./$$dir" || exit 1; \
			else exit 1; fi; \
		fi; \
	done

run:
	$(GO) run ./bot run --config secretbot.yaml

# The benchmark (BENCHMARKS.md): the binary `make build` makes, against the
# fakes and an in-process Vault. BENCH_OUT=file also writes the `name value`
# lines there. bench-smoke is one short round of each part (CI runs it).
bench: build
	cd e2e && $(GO) run ./cmd/bench -bin ../$(BIN) $(if $(BENCH_OUT),-out $(abspath $(BENCH_OUT)))

bench-smoke: build
	cd e2e && $(GO) run ./cmd/bench -smoke -bin ../$(BIN)

# Needs a Docker engine; the image build itself runs `make build`.
image:
	docker build --build-arg VERSION=$(VERSION) -t secretbot:$(VERSION) .

clean:
	rm -rf bin
