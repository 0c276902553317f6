#!/usr/bin/env bash
# Runs the peer comparison (bench_test.go) against REDIS_URL (default
# redis://127.0.0.1:6379) and writes RESULTS.md beside this script: medians,
# ratios to the raw floor, machine, Go and Redis versions, the peers'
# configuration and benchstat's summary. The root Makefile's bench-compare
# target calls it: bash internal/benchcmp/run.sh
#
# COUNT (default 6) is the number of runs of each benchmark, enough for
# benchstat. The raw outputs stay in $OUT (default: a temporary directory).
set -euo pipefail
cd "$(dirname "$0")"

COUNT=${COUNT:-6}
OUT=${OUT:-$(mktemp -d)}
BENCHSTAT=golang.org/x/perf/cmd/benchstat@v0.0.0-20260908200009-22c9c6c9d4da
mkdir -p "$OUT"

# One test binary, several benchtimes: a hit takes ~50 µs, a looped batch of
# 100 ~5 ms, a stampede ~100 ms, an invalidation of 100 000 members seconds.
go test -c -o "$OUT/benchcmp.test" .
run() { # run REGEXP BENCHTIME
	echo "== $1 -benchtime=$2 -count=$COUNT" >&2
	"$OUT/benchcmp.test" -test.run='^$' -test.bench="$1" -test.benchtime="$2" -test.count="$COUNT" | tee -a "$OUT/bench.txt"
}
: >"$OUT/bench.txt"
run '^(BenchmarkHit|BenchmarkParallelHit|BenchmarkEntryBytes)$' 10000x
run '^(BenchmarkMiss|BenchmarkMissTagged)$' 3000x
run '^(BenchmarkBatch100Hits|BenchmarkBatch100Miss10)$' 300x
run '^BenchmarkStampede$' 10x
run '^BenchmarkInvalidateTag$' 1x

go run "$BENCHSTAT" -col /lib "$OUT/bench.txt" >"$OUT/benchstat.txt"
go run ./report -in "$OUT/bench.txt" -benchstat "$OUT/benchstat.txt" \
	-cmd "bash internal/benchcmp/run.sh (COUNT=$COUNT)" >RESULTS.md
echo "wrote $(pwd)/RESULTS.md (raw outputs in $OUT)" >&2
