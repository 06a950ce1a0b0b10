#!/usr/bin/env bash
# Runs Ambient's BenchmarkDotNet micro-benchmarks and copies the markdown reports into perf/results/micro/.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"

usage() {
  cat <<'USAGE'
Usage: perf/run-micro.sh [--quick] [-- BENCHMARKDOTNET-ARGS...]

  (no flag)   the full suite with BenchmarkDotNet's default job (long: tens of minutes on 2 cores;
              add `-- --job short` for a ~10 minute run with wider error bars)
  --quick     validation only: every benchmark runs once (BenchmarkDotNet's Dry job), no timing is judged;
              in-process (--validate), what CI runs: about 70 s from a cold build on 2 cores
  -- ARGS     passed to BenchmarkDotNet, e.g. -- --filter '*Relay*' --job short

Reports (GitHub markdown) land in perf/results/micro/ (--quick: perf/results/micro/dry/).
Exits non-zero when a benchmark fails (setup threw, process crashed), never because of a timing.
USAGE
}

quick=0
extra=()
while [ $# -gt 0 ]; do
  case "$1" in
    -h|--help) usage; exit 0 ;;
    --quick) quick=1; shift ;;
    --) shift; extra=("$@"); break ;;
    *) echo "run-micro.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done

# Run from perf/ so BenchmarkDotNet's own artifacts stay there (git-ignored) unless --artifacts says otherwise.
artifacts="$here/BenchmarkDotNet.Artifacts"
dest="$here/results/micro"
args=(--artifacts "$artifacts")
if [ "$quick" = 1 ]; then
  args+=(--validate)
  dest="$dest/dry"
fi
has_filter=0
for a in "${extra[@]+"${extra[@]}"}"; do
  case "$a" in --filter|-f) has_filter=1 ;; esac
done
if [ "$has_filter" = 0 ]; then
  args+=(--filter '*')
fi

rm -rf "$artifacts/results"
cd "$here"
status=0
dotnet run -c Release --project Ambient.Benchmarks -- "${args[@]}" "${extra[@]+"${extra[@]}"}" || status=$?

mkdir -p "$dest"
shopt -s nullglob
reports=("$artifacts"/results/*-report-github.md)
for r in "${reports[@]}"; do
  # Ambient.Benchmarks.Policy.AuthorizerBenchmarks-report-github.md -> AuthorizerBenchmarks.md
  name="$(basename "$r" -report-github.md)"
  cp "$r" "$dest/${name##*.}.md"
done
echo "run-micro.sh: ${#reports[@]} report(s) copied to ${dest#"$here/"}/"
exit "$status"
