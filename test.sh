#!/usr/bin/env bash
# Runs every test of Ambient: unit, functional (real listeners on loopback), network-namespace and interop tests.
# On a fresh Debian machine as root it first installs what the tests use (iproute2, iptables, nftables, tcpdump,
# Debian's reference CNI plugins, nghttp2 tools, tinyproxy, openssl, curl, Node.js and npm) and the npm packages of
# the gRPC interop test.
set -euo pipefail
cd "$(dirname "$0")"

usage() {
  cat <<'USAGE'
Usage: ./test.sh [--filter EXPR] [--no-install] [-h|--help]

  --filter EXPR   only tests matching a dotnet test filter, e.g. --filter FullyQualifiedName~Hbone
  --no-install    don't apt-get install the test tools (they must already be there)

Tests that need root (network namespaces, iptables, tcpdump) skip with a reason when not run as root.
Ends with one line: "N passed, N failed, N skipped".
USAGE
}

filter=()
install=1
while [ $# -gt 0 ]; do
  case "$1" in
    -h|--help) usage; exit 0 ;;
    --filter) filter=(--filter "$2"); shift 2 ;;
    --no-install) install=0; shift ;;
    *) echo "test.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done

packages=(iproute2 iptables nftables tcpdump containernetworking-plugins nghttp2-client nghttp2-proxy tinyproxy openssl curl nodejs npm python3 procps
  podman buildah runc busybox-static python3-yaml)  # the last line: daemonset/node-test.sh
if [ "$install" = 1 ] && [ "$(id -u)" = 0 ]; then
  missing=()
  for p in "${packages[@]}"; do
    # A Node.js build that bundles npm (NodeSource's nodejs "Provides: npm") conflicts with Debian's npm package.
    if [ "$p" = npm ] && command -v npm >/dev/null 2>&1; then continue; fi
    dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    echo "==> installing test tools: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
fi

# Node's gRPC stack (@grpc/grpc-js, @grpc/proto-loader) for the control-plane interop test, pinned by its package-lock.
interop=tests/Mesh.Tests/ControlPlane/interop
if [ "$install" = 1 ] && command -v npm >/dev/null 2>&1 && [ ! -d "$interop/node_modules/@grpc/grpc-js" ]; then
  echo "==> installing the control-plane interop test's npm packages"
  (cd "$interop" && npm ci --no-audit --no-fund --silent)
fi

echo "==> building"
dotnet build Ambient.sln -c Release -nologo -v quiet -warnaserror 2>&1 | grep -Ev '^\s*$' | tail -n 5

echo "==> testing"
log=$(mktemp)
trap 'rm -f "$log"' EXIT
set +e
# The agent runs with inline socket completions (ztunnel/Program.cs); in-process tests run the same way.
DOTNET_SYSTEM_NET_SOCKETS_INLINE_COMPLETIONS=1 dotnet test Ambient.sln -c Release --no-build -nologo "${filter[@]}" 2>&1 | tee "$log" | grep -Ev '^\s*$|^A total of|^Test run for|^VSTest version|^Starting test execution|matched the specified pattern' | head -n 400
status=${PIPESTATUS[0]}
set -e
passed=0; failed=0; skipped=0
while read -r f p s; do
  failed=$((failed + f)); passed=$((passed + p)); skipped=$((skipped + s))
done < <(grep -E '(Passed|Failed)! +- +Failed: +[0-9]+, Passed: +[0-9]+, Skipped: +[0-9]+' "$log" \
  | sed -E 's/.*Failed: +([0-9]+), Passed: +([0-9]+), Skipped: +([0-9]+).*/\1 \2 \3/')

# The micro-benchmarks once each (BenchmarkDotNet's dry job): proves they still run and their setups still
# check out; no timing is judged here (perf/README.md has the full run).
micro_status=0
if [ ${#filter[@]} -eq 0 ]; then
  echo "==> micro-benchmark validation (perf/run-micro.sh --quick)"
  perf/run-micro.sh --quick > "$log.micro" 2>&1 || micro_status=$?
  if [ "$micro_status" -ne 0 ]; then tail -n 40 "$log.micro"; echo "micro-benchmark validation failed"; else tail -n 1 "$log.micro"; fi
  rm -f "$log.micro"
fi

# The install on a node with a real container runtime (podman, CNI backend): images, installer, agent, two apps,
# an upgrade under load, uninstall (daemonset/README.md). Root only; it builds the NativeAOT images (minutes).
node_status=0
if [ ${#filter[@]} -eq 0 ] && [ "$(id -u)" = 0 ]; then
  echo "==> node test with podman (daemonset/node-test.sh)"
  daemonset/node-test.sh > "$log.node" 2>&1 || node_status=$?
  if [ "$node_status" -ne 0 ]; then tail -n 60 "$log.node"; echo "node test failed"; else grep -E 'upgrade under load|all checks passed' "$log.node"; fi
  rm -f "$log.node"
fi

echo "$passed passed, $failed failed, $skipped skipped"
# Tests skip themselves only for a missing prerequisite (root, network namespaces, node, nghttpx, the CNI plugins...).
# As root, this script has installed all of them, so a skip here means a test silently did not run: that fails.
skip_status=0
if [ "$(id -u)" = 0 ] && [ "$skipped" -ne 0 ]; then
  echo "test.sh: $skipped test(s) skipped although this run is root and installed their prerequisites; the reasons:"
  grep -E '^\s*Skipped ' "$log" | head -n 20 || true
  skip_status=1
fi
if [ "$status" -ne 0 ] || [ "$failed" -ne 0 ] || [ "$passed" -eq 0 ] || [ "$micro_status" -ne 0 ] || [ "$skip_status" -ne 0 ] || [ "$node_status" -ne 0 ]; then
  exit 1
fi
