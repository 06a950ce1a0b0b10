#!/usr/bin/env bash
# The main job: a local Ambient mesh on this machine. Two "nodes" and five pods as network namespaces, wired by
# Debian's reference CNI plugins (bridge + host-local) with ambient-cni chained after them; one ztunnel per node in
# in-pod mode; unmodified applications (Python, Node.js, curl) talking across nodes over HBONE with mTLS.
set -euo pipefail
invoked_from=$(pwd)
cd "$(dirname "$0")"
repo=$(pwd)

usage() {
  cat <<'USAGE'
Usage: ./local-node.sh [--keep] [--down] [--quiet] [--config FILE] [-h|--help]     (as root)

Builds ztunnel and ambient-cni, creates two nodes and five pods in network namespaces, starts one agent per
node in in-pod mode, and shows: transparent capture, cross-node HBONE with the SPIFFE identities of both
ends, a policy denial, a pod outside the mesh, a packet capture with no plaintext, and the metrics.
Removes everything it created when done, also on Ctrl-C.

  --keep         leave the nodes, pods and agents running to explore (prints the commands; clean up with
                 ./local-node.sh --down)
  --down         remove a node left by --keep
  --quiet        only the step lines and the verdict (for CI)
  --config FILE  use FILE instead of the embedded mesh config (same format; see mesh/Config/example-config.yaml)
USAGE
}

keep=0 quiet=0 config_file="" down=0
while [ $# -gt 0 ]; do
  case "$1" in
    -h|--help) usage; exit 0 ;;
    --keep) keep=1; shift ;;
    --quiet) quiet=1; shift ;;
    --down) down=1; shift ;;
    --config)
      if [ $# -lt 2 ] || [ -z "$2" ] || [ "${2#--}" != "$2" ]; then
        echo "local-node.sh: --config needs a file: --config FILE (see --help)" >&2; exit 2
      fi
      case "$2" in /*) config_file=$2 ;; *) config_file=$invoked_from/$2 ;; esac
      [ -f "$config_file" ] || { echo "local-node.sh: --config $2: no such file" >&2; exit 2; }
      shift 2 ;;
    *) echo "local-node.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done

if [ "$(id -u)" != 0 ]; then
  echo "local-node.sh: needs root (it creates network namespaces and iptables rules); run it as root" >&2
  exit 1
fi

prefix=amb
root=/tmp/ambient-local-node
topo="$repo/scripts/topology.sh"

if [ "$down" = 1 ]; then
  if ! ip netns list | grep -q "^$prefix-" && [ ! -e "$root" ]; then
    echo "no local node is running: nothing to remove"
    exit 0
  fi
  [ -f "$root/agents.pids" ] && xargs -r kill < "$root/agents.pids" 2>/dev/null || true
  "$topo" down "$root" "$prefix"
  echo "removed the local node"
  exit 0
fi

bold=$'\e[1m' green=$'\e[32m' red=$'\e[31m' dim=$'\e[2m' reset=$'\e[0m'
[ -t 1 ] || { bold=""; green=""; red=""; dim=""; reset=""; }
step() { printf '%s==> %s%s\n' "$bold" "$*" "$reset"; }
ok() { printf '    %s✓%s %s\n' "$green" "$reset" "$*"; }
fail() { printf '    %s✗ %s%s\n' "$red" "$*" "$reset"; failures=$((failures + 1)); }
show() { if [ "$quiet" = 1 ]; then cat > /dev/null; else sed "s/^/      /"; fi; }
failures=0

cleanup() {
  local code=$?
  trap - EXIT INT TERM
  if [ "$keep" = 1 ] && [ "$code" = 0 ]; then
    return
  fi
  step "cleaning up"
  [ -f "$root/agents.pids" ] && xargs -r kill < "$root/agents.pids" 2>/dev/null || true
  sleep 0.3
  "$topo" down "$root" "$prefix" || true
  left=$(ip netns list | grep -c "^$prefix-" || true)
  if [ "$left" = 0 ]; then ok "removed every namespace, veth, bridge, rule and process"; else fail "$left namespaces left behind"; fi
  exit "$code"
}

if ip netns list | grep "^$prefix-" > /dev/null; then
  echo "local-node.sh: a local node is already running (from --keep?). Remove it with ./local-node.sh --down" >&2
  exit 1
fi

step "installing what the node needs (Debian packages)"
pkgs=(iproute2 iptables nftables containernetworking-plugins curl nodejs python3 tcpdump openssl util-linux)
missing=(); for p in "${pkgs[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null && apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  ok "installed ${missing[*]}"
else
  ok "all present"
fi

trap cleanup EXIT
trap 'exit 130' INT TERM
mkdir -p "$root/bin"

step "building ztunnel (JIT: quick to build; README shows the NativeAOT publish for a real node) and ambient-cni (NativeAOT)"
dotnet build ztunnel -c Release -nologo -v quiet -o "$root/ztunnel" 2>&1 | grep -E 'error|Warn' || true
[ -x "$root/ztunnel/ztunnel" ] || { echo "build of ztunnel failed" >&2; exit 1; }
dotnet publish cni-plugin -c Release -r linux-x64 -nologo -v quiet -o "$root/cni-publish" 2>&1 | grep -E 'error' || true
cp "$root/cni-publish/ambient-cni" "$root/bin/ambient-cni"
ok "ztunnel and ambient-cni built"

step "creating a mesh CA (ECDSA P-256, openssl)"
openssl ecparam -name prime256v1 -genkey -noout -out "$root/ca-key.pem" 2>/dev/null
openssl req -x509 -new -key "$root/ca-key.pem" -days 2 -subj "/O=cluster.local/CN=Ambient local-node CA" \
  -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" -out "$root/ca-cert.pem" 2>/dev/null
ok "$root/ca-cert.pem"

mesh_config() {
cat <<'YAML'
# The embedded mesh of ./local-node.sh, in Istio ztunnel's local config format plus Ambient's keys.
trustDomain: cluster.local
workloads:
- uid: local//v1/Pod/shop/frontend
  name: frontend
  namespace: shop
  serviceAccount: frontend
  workloadIps: [10.10.1.10]
  protocol: HBONE
  node: node-a
- uid: local//v1/Pod/shop/batch
  name: batch
  namespace: shop
  serviceAccount: batch
  workloadIps: [10.10.1.11]
  protocol: HBONE
  node: node-a
- uid: local//v1/Pod/shop/web
  name: web
  namespace: shop
  serviceAccount: web
  workloadIps: [10.10.2.10]
  protocol: HBONE
  node: node-b
  services:
    shop/web.shop.svc.cluster.local:
      80: 8080
- uid: local//v1/Pod/shop/payments
  name: payments
  namespace: shop
  serviceAccount: payments
  workloadIps: [10.10.2.11]
  protocol: HBONE
  node: node-b
  authorizationPolicies: [shop/payments-allow-frontend]
  services:
    shop/payments.shop.svc.cluster.local:
      80: 9090
services:
- name: web
  namespace: shop
  hostname: web.shop.svc.cluster.local
  vips: [/10.96.0.10]
  ports:
    80: 8080
- name: payments
  namespace: shop
  hostname: payments.shop.svc.cluster.local
  vips: [/10.96.0.11]
  ports:
    80: 9090
policies:
- name: payments-allow-frontend
  namespace: shop
  scope: WorkloadSelector
  action: Allow
  rules:
  - - - principals: [{Exact: cluster.local/ns/shop/sa/frontend}]
YAML
}

step "creating nodes node-a and node-b (network namespaces on a shared fabric)"
"$topo" up "$root" "$prefix" node-a node-b
for node in node-a node-b; do
  { if [ -n "$config_file" ]; then cat "$config_file"; else mesh_config; fi
    cat <<YAML
mode: inpod
ca:
  certFile: $root/ca-cert.pem
  keyFile: $root/ca-key.pem
inpod:
  cniSocket: $root/$node/cni.sock
  enrollmentFile: $root/$node/enrollment.json
YAML
  } > "$root/$node/ztunnel.yaml.tmp"
  # Atomically (write, then rename), as README asks of every edit of a watched config: the agent never reads a
  # half-written file.
  mv -f "$root/$node/ztunnel.yaml.tmp" "$root/$node/ztunnel.yaml"
done
"$root/ztunnel/ztunnel" --config "$root/node-a/ztunnel.yaml" --validate | show
ok "node-a: pods 10.10.1.0/24, node-b: pods 10.10.2.0/24; CNI chain bridge -> host-local -> ambient-cni"

step "starting one ztunnel per node (in-pod mode)"
: > "$root/agents.pids"
for node in node-a node-b; do
  nsenter --net="/var/run/netns/$prefix-$node" "$root/ztunnel/ztunnel" --config "$root/$node/ztunnel.yaml" --node "$node" \
    --state-dir "$root/$node/state" > "$root/$node/access.log" 2> "$root/$node/ztunnel.log" &
  echo $! >> "$root/agents.pids"
done
for node in node-a node-b; do
  for _ in $(seq 1 100); do
    nsenter --net="/var/run/netns/$prefix-$node" curl -sf -o /dev/null http://127.0.0.1:15021/healthz/ready && break
    sleep 0.1
  done
  nsenter --net="/var/run/netns/$prefix-$node" curl -sf -o /dev/null http://127.0.0.1:15021/healthz/ready \
    && ok "$node: ztunnel ready (readiness 15021, metrics 15020, admin 15000 in the node's namespace)" \
    || { fail "$node: ztunnel did not become ready"; cat "$root/$node/ztunnel.log" >&2; exit 1; }
done

step "starting pods through the CNI chain (the agent captures each before ADD returns)"
add_pod() { # node pod namespace ip
  if "$topo" add-pod "$root" "$prefix" "$1" "$2" "$3" "$4"; then ok "$3/$2 on $1 at $4"; else fail "$3/$2 could not start"; exit 1; fi
}
add_pod node-b web shop 10.10.2.10
add_pod node-b payments shop 10.10.2.11
add_pod node-a frontend shop 10.10.1.10
add_pod node-a batch shop 10.10.1.11
add_pod node-a legacy legacy 10.10.1.12
in_pod() { local pod=$1; shift; nsenter --net="/var/run/netns/$prefix-pod-$pod" "$@"; }
grep -h "captured pod\|not enrolled" "$root"/node-*/ztunnel.log | sed -E 's/^[^ ]+ //' | show

step "starting unmodified applications"
mkdir -p "$root/www"; echo "hello from web (Python http.server)" > "$root/www/index.html"
in_pod web python3 -m http.server 8080 --bind 0.0.0.0 --directory "$root/www" > "$root/web.log" 2>&1 &
cat > "$root/payments.js" <<'JS'
require('http').createServer((req, res) => {
  res.end(`payments (Node.js) saw ${req.method} ${req.url} from ${req.socket.remoteAddress}\n`);
}).listen(9090, '0.0.0.0');
JS
in_pod payments node "$root/payments.js" > "$root/payments.log" 2>&1 &
for _ in $(seq 1 50); do in_pod web bash -c 'exec 3<>/dev/tcp/127.0.0.1/8080' 2>/dev/null && break; sleep 0.1; done
for _ in $(seq 1 50); do in_pod payments bash -c 'exec 3<>/dev/tcp/127.0.0.1/9090' 2>/dev/null && break; sleep 0.1; done
ok "web: python3 -m http.server :8080; payments: node :9090"

step "capture is transparent: the apps know nothing of the mesh"
in_pod frontend iptables-save -t nat | grep -E 'AMBIENT_OUTPUT .*REDIRECT' | show
if out=$(in_pod frontend curl -sS --max-time 10 http://10.96.0.10/); then
  ok "frontend (curl) -> web.shop service VIP 10.96.0.10:80: \"$out\""
else fail "frontend -> web failed"; fi
if out=$(in_pod frontend node -e "require('http').get('http://10.96.0.11/pay',r=>{let b='';r.on('data',d=>b+=d);r.on('end',()=>{process.stdout.write(b)})}).on('error',e=>{console.error(e.message);process.exit(1)})"); then
  ok "frontend (Node.js) -> payments.shop VIP 10.96.0.11:80: \"${out%$'\n'}\""
else fail "frontend -> payments failed"; fi

step "cross-node HBONE with both SPIFFE identities (access logs of the two agents)"
sleep 0.3
echo "node-a (outbound):" | show
grep -h 'direction="outbound"' "$root/node-a/access.log" | grep web | tail -n 1 | grep -oE '(src.identity|dst.service|dst.hbone_addr|dst.identity)=("[^"]*"|[^ ]*)' | sed 's/^/  /' | show
echo "node-b (inbound):" | show
grep -h 'direction="inbound"' "$root/node-b/access.log" | grep web | tail -n 1 | grep -oE '(src.identity|dst.addr|dst.identity)=("[^"]*"|[^ ]*)' | sed 's/^/  /' | show
if grep -q 'src.identity="spiffe://cluster.local/ns/shop/sa/frontend"' "$root/node-b/access.log" \
   && grep -q 'dst.identity="spiffe://cluster.local/ns/shop/sa/web"' "$root/node-a/access.log"; then
  ok "node-b saw frontend's identity; node-a verified web's identity"
else fail "identities missing from the access logs"; fi

step "policy: payments allows only frontend (shop/payments-allow-frontend)"
if in_pod batch curl -sS --max-time 10 http://10.96.0.11/ >/dev/null 2>"$root/batch.err"; then
  fail "batch reached payments despite the policy"
else
  ok "batch -> payments refused: $(tr -d '\n' < "$root/batch.err")"
fi
sleep 0.3
grep -h 'DENY' "$root/node-b/access.log" | tail -n 1 | grep -oE '(src.identity|dst.workload|response_flags|error)="[^"]*"' | show
grep -q 'response_flags="DENY"' "$root/node-b/access.log" && ok "node-b answered the CONNECT with 401 and logged DENY" || fail "no DENY in node-b's log"

step "a pod outside the mesh (namespace legacy, not enrolled)"
in_pod legacy iptables-save -t nat | grep AMBIENT > /dev/null && fail "legacy pod has capture rules" || ok "legacy pod has no capture rules"
if out=$(in_pod legacy curl -sS --max-time 10 http://10.10.2.10:8080/); then
  ok "legacy -> web pod directly (plaintext; web's agent captured it inbound on 15006): \"$out\""
else fail "legacy -> web failed"; fi

step "on the wire between the nodes: only HBONE (port 15008), no plaintext"
marker="PLAINTEXT-CANARY-$RANDOM$RANDOM"
nsenter --net="/var/run/netns/$prefix-fabric" tcpdump -i fabric0 -nn -U -w "$root/fabric.pcap" tcp > /dev/null 2>&1 &
tcpdump_pid=$!
sleep 1
in_pod frontend curl -sS --max-time 10 -H "x-canary: $marker" "http://10.96.0.11/$marker" > /dev/null || true
sleep 1; kill "$tcpdump_pid" 2>/dev/null; wait "$tcpdump_pid" 2>/dev/null || true
packets=$(tcpdump -nn -r "$root/fabric.pcap" 2>/dev/null | wc -l)
other=$(tcpdump -nn -r "$root/fabric.pcap" 2>/dev/null | grep -vc '\.15008[: ]' || true)
leaks=$(tcpdump -nn -A -r "$root/fabric.pcap" 2>/dev/null | grep -c "$marker" || true)
tcpdump -nn -r "$root/fabric.pcap" 2>/dev/null | head -n 4 | cut -c1-110 | show
if [ "$packets" -gt 0 ] && [ "$other" = 0 ] && [ "$leaks" = 0 ]; then
  ok "$packets packets crossed the fabric, every one to or from port 15008; the canary \"$marker\" appeared 0 times"
else fail "capture: $packets packets, $other not HBONE, canary seen $leaks times"; fi

step "metrics (node-b, Prometheus on 15020)"
metrics=$(nsenter --net="/var/run/netns/$prefix-node-b" curl -s http://127.0.0.1:15020/metrics || true)
grep -E '^istio_tcp_connections_opened_total' <<< "$metrics" | sed -E 's/\{.*source_workload="([^"]*)".*destination_workload="([^"]*)".*response_flags="([^"]*)".*\} /{source=\1 destination=\2 flags=\3} /' | show
if grep -q 'istio_tcp_connections_opened_total{reporter="destination"' <<< "$metrics"; then
  ok "istio_tcp_* metrics with reporter, workloads and principals"
else fail "metrics missing"; fi

if [ "$failures" -gt 0 ]; then
  printf '%s%d check(s) failed%s; agent logs: %s/node-*/ztunnel.log\n' "$red" "$failures" "$reset" "$root"
  exit 1
fi
printf '%sall checks passed%s\n' "$green" "$reset"

if [ "$keep" = 1 ]; then
  cat <<KEEP

The node keeps running. Try:
  nsenter --net=/var/run/netns/$prefix-pod-frontend curl http://10.96.0.10/        # a mesh call
  nsenter --net=/var/run/netns/$prefix-pod-batch curl http://10.96.0.11/           # denied by policy
  nsenter --net=/var/run/netns/$prefix-node-a curl -s localhost:15000/config_dump  # node-a's live state
  nsenter --net=/var/run/netns/$prefix-node-b curl -s localhost:15020/metrics      # node-b's metrics
  tail -f $root/node-*/access.log                                                   # access logs
  ip netns list | grep $prefix-                                                     # the namespaces
Remove it all with: ./local-node.sh --down
KEEP
fi
