# repocache: the two commands a new machine needs are `make demo` and `make test`.

GO        ?= go
# -race needs cgo; a laptop without a C compiler still gets the tests.
RACE      := $(shell [ "$$($(GO) env CGO_ENABLED)" = 1 ] && echo -race)
FUZZTIME  ?= 20s
BENCHCOUNT ?= 10
STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2
BENCHSTAT   := golang.org/x/perf/cmd/benchstat@v0.0.0-20260908200009-22c9c6c9d4da
# The repository's modules: the runtime's (what a service imports: go-redis
# and msgpack only), the generator's, runtime/orm's (GORM and its drivers),
# the examples', and the metrics exporters' (Prometheus, OpenTelemetry).
# internal/benchcmp has its own too (make bench-compare).
MODULES     := . cachegen runtime/orm examples extra/cacheprometheus extra/cacheotel

.PHONY: demo test lint fuzz bench bench-compare generate check-generate faults-table staleness-idle chromium debug-page-screenshot

## demo: the main job: generate, then run the workspaces example on the
## embedded defaults (or REDIS_URL / DATABASE_URL) with a scripted workload;
## DEMOFLAGS=-serve keeps it serving (and prints the address of the
## cache's live page, /debug/cache), DEMOFLAGS=-dblatency=1ms adds a
## network round trip to each database statement. The first run downloads
## and compiles for a few minutes: each slow step says so before it starts,
## and the build lists the packages it compiles. The binary is bin/demo.
demo:
	@echo "demo: generating the decorators and mocks (go generate; the first run downloads and builds cachegen and mockgen: a minute or more)"
	cd examples && $(GO) generate ./workspaces
	@echo "demo: building bin/demo (the first build compiles SQLite, GORM and go-redis, listed below as they build: a few minutes on a small machine)"
	@mkdir -p bin
	cd examples && $(GO) build -v -o ../bin/demo ./workspaces/cmd/demo
	@echo "demo: running bin/demo $(DEMOFLAGS)"
	@bin/demo $(DEMOFLAGS)

## chromium: install Debian's chromium (as root, with apt) for the browser
## test of the live page; without it make test skips that test, except
## under CI=true, where the test runs this script itself
chromium:
	bash examples/scripts/chromium.sh

## debug-page-screenshot: rerun the browser test and write its screenshot
## of the live page to examples/workspaces/docs/debug-page.png
debug-page-screenshot: chromium
	cd examples && UPDATE_SCREENSHOT=1 $(GO) test -count=1 -run '^TestLivePageInBrowser$$' ./workspaces/cmd/demo

## bench-compare: repocache against go-redis/cache, gocache and rueidis on
## the same Redis (REDIS_URL or 127.0.0.1:6379); writes internal/benchcmp/RESULTS.md
bench-compare:
	bash internal/benchcmp/run.sh

## generate: rerun every go:generate line (cachegen, mockgen)
generate:
	@for m in $(MODULES); do echo "go generate in $$m"; (cd $$m && $(GO) generate ./...) || exit 1; done

## check-generate: fail if generated files differ from what is committed
check-generate: generate
	@git diff --exit-code --stat -- $$(git grep -l '^// Code generated' -- '*.go') || { echo "generated files are stale: run make generate and commit"; exit 1; }

## test: every test, against real Redis (REDIS_URL, else a throwaway
## redis-server, else embedded miniredis) and a local Redis Cluster
test:
	@if [ -z "$$REDIS_URL" ] && ! command -v redis-server >/dev/null 2>&1; then \
		echo "make test: no REDIS_URL and no redis-server on PATH: the tests use the embedded miniredis, not a real Redis, and skip the cluster"; fi
	@if [ -z "$$DATABASE_URL" ]; then echo "make test: no DATABASE_URL: the database tests run on SQLite only"; fi
	@for m in $(MODULES); do echo "go test in $$m"; (cd $$m && $(GO) test $(RACE) -count=1 -timeout 30m ./...) || exit 1; done

## lint: gofmt, go vet and staticcheck
lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	@for m in $(MODULES); do echo "vet and staticcheck in $$m"; (cd $$m && $(GO) vet ./... && $(GO) run $(STATICCHECK) ./...) || exit 1; done
	cd internal/benchcmp && $(GO) vet ./...

## faults-table: rerun the fault suite (its own servers: a cluster with
## replicas, Sentinel, a fault proxy) and write its figures to
## internal/faults/RESULTS.md; make test runs the same suite
faults-table:
	FAULTS_TABLE=$(CURDIR)/internal/faults/RESULTS.md $(GO) test -count=1 -run '^(TestEvictionLeavesStaleEntries|TestFaults)$$' -v ./internal/faults/

## staleness-idle: the near cache's window across OS processes on an idle
## machine, asserting issue 12's target (p99 ≤ 1 ms, max ≤ 10 ms): a tenth
## of the default's writes, WithClockSkew(0) on the local cluster; writes
## internal/l1check/RESULTS-idle.md. make test runs the default profile
## under -race, with the bounds of a loaded machine
staleness-idle:
	L1CHECK_IDLE=1 L1CHECK_STRICT=1 L1CHECK_TABLE=$(CURDIR)/internal/l1check/RESULTS-idle.md $(GO) test -count=1 -run '^TestStalenessWindow$$' -v ./internal/l1check/

## fuzz: each fuzz target for FUZZTIME
fuzz:
	$(GO) test -run='^$$' -fuzz='^FuzzUnmarshal$$' -fuzztime=$(FUZZTIME) ./codec/
	$(GO) test -run='^$$' -fuzz='^FuzzEscapeKeyPart$$' -fuzztime=$(FUZZTIME) ./runtime/
	cd cachegen && $(GO) test -run='^$$' -fuzz='^FuzzParse$$' -fuzztime=$(FUZZTIME) ./internal/directive/

## bench: the hit-path benchmark, BENCHCOUNT runs, summarised by benchstat
bench:
	@mkdir -p bench
	$(GO) test -run='^$$' -bench='^BenchmarkHit$$' -benchtime=20000x -count=$(BENCHCOUNT) ./runtime/ | tee bench/hit.txt
	$(GO) run $(BENCHSTAT) -col /impl bench/hit.txt
