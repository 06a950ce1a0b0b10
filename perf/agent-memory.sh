#!/usr/bin/env bash
# Memory of the node agent before, during and after load (issue 13, finding 5): RSS at start, with 10,000 idle
# tunnels, and after they are released, for the JIT build README tells users to make and for the NativeAOT build,
# each under one or more GC settings. Same topology as perf/node-bench (two nodes, one enrolled client and server
# pod, agents in in-pod mode). Needs root. Removes everything it created, also on Ctrl-C or failure.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)

usage() {
  cat <<'USAGE'
Usage: perf/agent-memory.sh [--builds jit,aot] [--count N] [--release-wait S] [-h|--help]     (as root)

For each build and each GC variant: fresh agents, one request, RSS of both agents ("start"); N idle tunnels
through the mesh (nodebench idle: one request each, then held), RSS ("load"); the client closes them all,
RSS after 10 s, 60 s and S seconds ("released"). Prints a Markdown table and writes perf/results/agent-memory.md.

  --builds LIST       jit (dotnet build ztunnel -c Release, what README tells users to run) and/or aot
                      (dotnet publish -p:PublishAot=true); default jit,aot
  --count N           idle tunnels (default 10000)
  --release-wait S    seconds after the release for the last reading (default 420: past the 5 minutes the
                      HBONE pool keeps idle connections; at least 60)
Environment: MEM_VARIANTS="name=K=V,K=V;name2=" GC variants as agent environment (default: "as-built=", the
             settings built into ztunnel's runtimeconfig); e.g. "baseline=;conserve=DOTNET_GCConserveMemory=5".
USAGE
}

builds="jit,aot" count=10000 release_wait=420
while [ $# -gt 0 ]; do
  case "$1" in
    -h|--help) usage; exit 0 ;;
    --builds) builds=${2:?--builds needs a list}; shift 2 ;;
    --count) count=${2:?--count needs a number}; shift 2 ;;
    --release-wait) release_wait=${2:?--release-wait needs seconds}; shift 2 ;;
    *) echo "agent-memory.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done
[ "$release_wait" -ge 60 ] || { echo "agent-memory.sh: --release-wait must be at least 60" >&2; exit 2; }
[ "$(id -u)" = 0 ] || { echo "agent-memory.sh: needs root (network namespaces, iptables); run it as root" >&2; exit 1; }
variants=${MEM_VARIANTS:-as-built=}

prefix=mem
root=/tmp/ambient-agent-memory
topo="$repo/scripts/topology.sh"
results="$repo/perf/results"
say() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
pod() { local p=$1; shift; nsenter --net="/var/run/netns/$prefix-pod-$p" "$@"; }
rss_mb() { awk '$1 == "VmRSS:" {printf "%.1f", $2 / 1024}' "/proc/$1/status"; }
threads() { awk '$1 == "Threads:" {print $2}' "/proc/$1/status"; }
agent_a="" agent_b="" bg=()

cleanup() {
  local code=${1:-$?}
  trap - EXIT INT TERM
  for p in "${bg[@]}" $agent_a $agent_b; do kill "$p" 2>/dev/null || true; done
  sleep 0.3
  "$topo" down "$root" "$prefix" >/dev/null 2>&1 || true
  exit "$code"
}
if ip netns list | grep -q "^$prefix-"; then "$topo" down "$root" "$prefix" >/dev/null 2>&1 || true; fi
trap cleanup EXIT
trap 'exit 130' INT TERM
rm -rf "$root"; mkdir -p "$root/bin" "$results"
ulimit -n "$(ulimit -Hn)"

say "building the load tool, ambient-cni and the agent ($builds)"
dotnet build "$repo/perf/node-bench/NodeBench.csproj" -c Release -nologo -v quiet -o "$root/nodebench" > "$root/build.log" 2>&1 || { cat "$root/build.log" >&2; exit 1; }
nb="$root/nodebench/nodebench"
dotnet publish "$repo/cni-plugin" -c Release -r linux-x64 -nologo -v quiet -o "$root/cni" >> "$root/build.log" 2>&1 || { cat "$root/build.log" >&2; exit 1; }
cp "$root/cni/ambient-cni" "$root/bin/ambient-cni"
# Builds are cached by a hash of the agent's sources (committed and not), so a second run skips minutes of AOT.
cache=/var/tmp/ambient-agent-memory-cache
source_hash=$( { git -C "$repo" ls-files -s ztunnel mesh Directory.Build.props Directory.Packages.props; git -C "$repo" diff HEAD -- ztunnel mesh; } | sha1sum | cut -c1-16)
declare -A binary
for build in jit aot; do
  [[ ",$builds," == *",$build,"* ]] || continue
  out="$cache/$build-$source_hash"
  if [ ! -x "$out/ztunnel" ]; then
    rm -rf "$cache/$build"-*; mkdir -p "$cache"
    if [ "$build" = jit ]; then
      dotnet build "$repo/ztunnel" -c Release -nologo -v quiet -o "$out" >> "$root/build.log" 2>&1 || { cat "$root/build.log" >&2; exit 1; }
    else
      dotnet publish "$repo/ztunnel" -c Release -r linux-x64 -p:PublishAot=true -nologo -v quiet -o "$out" >> "$root/build.log" 2>&1 || { cat "$root/build.log" >&2; exit 1; }
    fi
  fi
  binary[$build]="$out/ztunnel"
done

openssl ecparam -name prime256v1 -genkey -noout -out "$root/ca-key.pem" 2>/dev/null
openssl req -x509 -new -key "$root/ca-key.pem" -days 2 -subj "/O=cluster.local/CN=agent-memory CA" \
  -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" -out "$root/ca-cert.pem" 2>/dev/null
"$topo" up "$root" "$prefix" node-a node-b
for n in node-a node-b; do
  cat > "$root/$n/ztunnel.yaml.tmp" <<YAML
trustDomain: cluster.local
mode: inpod
accessLog: off
ca:
  certFile: $root/ca-cert.pem
  keyFile: $root/ca-key.pem
inpod:
  cniSocket: $root/$n/cni.sock
  enrollmentFile: $root/$n/enrollment.json
workloads:
- {uid: mem//v1/Pod/bench/client, name: client, namespace: bench, serviceAccount: client, workloadIps: [10.10.1.10], protocol: HBONE, node: node-a}
- {uid: mem//v1/Pod/bench/server, name: server, namespace: bench, serviceAccount: server, workloadIps: [10.10.2.10], protocol: HBONE, node: node-b}
YAML
  mv "$root/$n/ztunnel.yaml.tmp" "$root/$n/ztunnel.yaml"
done

start_agent() { # binary node env... -> pid
  local bin=$1 n=$2; shift 2
  nsenter --net="/var/run/netns/$prefix-$n" env "$@" "$bin" --config "$root/$n/ztunnel.yaml" --node "$n" --state-dir "$root/$n/state" \
    >> "$root/ztunnel-$n.log" 2>&1 &
  echo $!
}
wait_ready() {
  for _ in $(seq 1 150); do
    nsenter --net="/var/run/netns/$prefix-$1" curl -sf -o /dev/null http://127.0.0.1:15021/healthz/ready && return 0
    sleep 0.1
  done
  say "$1: agent not ready"; tail -20 "$root/ztunnel-$1.log" >&2; return 1
}
stop_agents() {
  kill $agent_a $agent_b 2>/dev/null || true
  for p in $agent_a $agent_b; do
    for _ in $(seq 1 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$p" 2>/dev/null || true
  done
  agent_a="" agent_b=""
}

first=1
table="| build | GC settings | start A / B (MB) | ${count} idle tunnels A / B (MB) | released +10 s A / B (MB) | +60 s A / B (MB) | +${release_wait} s A / B (MB) |
|---|---|---|---|---|---|---|"
IFS=';' read -r -a variant_list <<< "$variants"
for build in jit aot; do
  [ -n "${binary[$build]:-}" ] || continue
  for v in "${variant_list[@]}"; do
    name=${v%%=*} envs=${v#*=}
    env_args=(DOTNET_NOLOGO=1)
    [ -n "$envs" ] && IFS=',' read -r -a extra <<< "$envs" && env_args+=("${extra[@]}")
    say "$build / $name (${envs:-no extra environment})"
    stop_agents
    agent_a=$(start_agent "${binary[$build]}" node-a "${env_args[@]}"); agent_b=$(start_agent "${binary[$build]}" node-b "${env_args[@]}")
    wait_ready node-a; wait_ready node-b
    if [ "$first" = 1 ]; then
      "$topo" add-pod "$root" "$prefix" node-a client bench 10.10.1.10
      "$topo" add-pod "$root" "$prefix" node-b server bench 10.10.2.10
      for p in client server; do pod "$p" sysctl -qw net.ipv4.ip_local_port_range="1024 65000" net.core.somaxconn=65535; done
      pod server "$nb" server --port 8080 > "$root/http.log" 2>&1 & bg+=($!)
      sleep 1; first=0
    fi
    pod client curl -sf --max-time 10 -o /dev/null http://10.10.2.10:8080/ || { say "no answer through the mesh"; exit 1; }
    sleep 3
    s_a=$(rss_mb "$agent_a") s_b=$(rss_mb "$agent_b")
    ready="$root/idle-$build-$name.json"; rm -f "$ready"
    nsenter --net="/var/run/netns/$prefix-pod-client" "$nb" idle --target 10.10.2.10:8080 --count "$count" --ready "$ready" > "$root/idle.log" 2>&1 &
    holder=$!
    for _ in $(seq 1 1800); do [ -f "$ready" ] && break; kill -0 "$holder" 2>/dev/null || break; sleep 0.1; done
    [ -f "$ready" ] || { say "idle connections not established"; cat "$root/idle.log" >&2; exit 1; }
    sleep 3
    l_a=$(rss_mb "$agent_a") l_b=$(rss_mb "$agent_b") open=$(jq .open "$ready") t_a=$(threads "$agent_a") t_b=$(threads "$agent_b")
    kill "$holder"; wait "$holder" 2>/dev/null || true
    sleep 10
    r1_a=$(rss_mb "$agent_a") r1_b=$(rss_mb "$agent_b")
    sleep 50
    r2_a=$(rss_mb "$agent_a") r2_b=$(rss_mb "$agent_b")
    sleep $((release_wait - 60))
    r3_a=$(rss_mb "$agent_a") r3_b=$(rss_mb "$agent_b")
    line="| $build | $name${envs:+ (\`${envs//,/ }\`)} | $s_a / $s_b | $l_a / $l_b ($open open; $t_a / $t_b threads) | $r1_a / $r1_b | $r2_a / $r2_b | $r3_a / $r3_b |"
    # What the agents said when they gave memory back (ztunnel/Memory/MemoryTrimmer.cs).
    for n in node-a node-b; do
      grep -h "memory trimmed" "$root/ztunnel-$n.log" 2>/dev/null | sed -E "s/^[^ ]+ [^ ]+ [^ ]+ /    $build $name $n: /" >> "$root/trims.txt" || true
      : > "$root/ztunnel-$n.log"
    done
    say "$line"
    table+=$'\n'"$line"
  done
done
stop_agents
{
  echo "# Agent memory (perf/agent-memory.sh)"
  echo
  echo "$(date -u +%Y-%m-%dT%H:%M:%SZ), commit $(git -C "$repo" rev-parse --short HEAD), $(nproc) vCPUs, kernel $(uname -r)."
  echo "VmRSS of agent A (node-a: client side, captured sockets and the HBONE pool) and agent B (node-b: HBONE"
  echo "server, upstream sockets). start: after one request; load: $count idle tunnels held; released: after the"
  echo "client closed them all."
  echo
  echo "$table"
  if [ -s "$root/trims.txt" ]; then
    echo
    echo "The agents' own account of each trim (ztunnel/Memory/MemoryTrimmer.cs):"
    echo
    cat "$root/trims.txt"
  fi
} > "$results/agent-memory.md"
cat "$results/agent-memory.md"
