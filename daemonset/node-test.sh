#!/usr/bin/env bash
# The install on a node with a real container runtime (issue 12, section 5): podman, with its CNI network backend,
# runs the node's CNI config for every container it starts, as a kubelet's runtime does. No API server can run here.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD

usage() {
  cat <<'USAGE'
Usage: sudo daemonset/node-test.sh [--no-build | --tag TAG] [--keep-images] [-h|--help]

A node in a test directory: a CNI config dir holding a bridge + host-local conflist, a CNI bin dir, the agent's
host directories. podman uses them through its CNI backend (a containers.conf of the test's own). Then:
  1. builds the images (daemonset/build-images.sh --no-check) and an app image FROM scratch (busybox-static);
  2. runs the installer and the agent from their images with the command, arguments, environment, mounts and
     capabilities read from install.yaml (daemonset/podman-from-manifest.py), except that the agent reads the mesh
     from --manifests (two Pods in an ambient namespace) instead of --kubernetes: no API server runs here;
  3. checks the installer chained ambient-cni as the last plugin of the conflist;
  4. starts two app containers on the network: both are captured (the agent listens in their namespaces), a
     request between them crosses the bridge as HBONE only (tcpdump: every packet between them is on port 15008),
     and the agent's access log names both SPIFFE identities;
  5. upgrades the agent (a second agent container while the first runs, as maxSurge: 1 does) under 200 new
     connections per second from one app to the other: none may be refused, reset or lost;
  6. uninstalls (apps removed, agent stopped, installer stopped, `install-cni uninstall`): the conflist is back byte
     for byte and ambient-cni is gone from the bin dir.
Every container, image (unless --keep-images), network interface and file it made is removed, also on failure.

  --no-build      use the images already built (localhost/ambient/*:<VERSION>, install.yaml's references)
  --tag TAG       use the images already built as localhost/ambient/*:TAG (e.g. a --keep-images run's)
  --keep-images   leave the images this run built (localhost/ambient/*:<VERSION>-nodetest.<id>) in podman's store

The images are built under a tag of their own (<VERSION>-nodetest.<id>; the containers run install.yaml's image
references with that tag), so images others built under <VERSION> are neither replaced nor removed.
  -h, --help      this help

Exit 0 when every check passed. Podman facts for these machines (runc, cgroupfs, ulimits): shared/REFERENCE.md.
USAGE
}

build=1
keep_images=0
tag=""
while [ $# -gt 0 ]; do
  case "$1" in
    -h|--help) usage; exit 0 ;;
    --no-build) build=0; shift ;;
    --tag) tag=${2:?--tag needs a value}; build=0; shift 2 ;;
    --keep-images) keep_images=1; shift ;;
    *) echo "node-test.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done
if [ "$(id -u)" != 0 ]; then
  echo "node-test.sh: run as root (podman rootful with the CNI backend; sudo daemonset/node-test.sh)" >&2; exit 1
fi

failures=0
step() { printf '==> %s\n' "$*"; }
ok() { printf '    \xe2\x9c\x93 %s\n' "$*"; }
fail() { printf '    \xe2\x9c\x97 %s\n' "$*"; failures=$((failures + 1)); }
die() { fail "$*"; exit 1; }

step "installing what the node test needs (Debian packages)"
pkgs=(podman buildah runc containernetworking-plugins busybox-static python3 python3-yaml tcpdump curl openssl iproute2 util-linux)
scripts/ensure-packages.sh "${pkgs[@]}"

id=nt$$
work=$(mktemp -d /tmp/ambient-node-test.XXXXXX)
host=$work/host              # the node's root for every hostPath of install.yaml but /var/run/netns
prefix=ambient-$id           # every container name starts with it
app_image=localhost/ambient-node-test/app:$id
version=$(cat daemonset/VERSION)
image_tag=${tag:-$version}   # the tag the containers run; a build of this run gets one of its own
images_built=()
bg_pids=()
cleanup() {
  local code=$?
  set +e
  for pid in "${bg_pids[@]}"; do kill "$pid" 2>/dev/null; done
  local c try
  for c in $(podman ps -a --format '{{.Names}}' 2>/dev/null | grep "^$prefix-"); do
    for try in 1 2 3; do podman rm -f -t 2 "$c" >/dev/null 2>&1 && break; sleep 1; done
  done
  if podman ps -a --format '{{.Names}}' 2>/dev/null | grep -q "^$prefix-"; then
    echo "node-test.sh: could not remove $(podman ps -a --format '{{.Names}}' | grep "^$prefix-" | tr '\n' ' ')" >&2
  fi
  podman rmi -f "$app_image" >/dev/null 2>&1
  if [ "$keep_images" = 0 ]; then
    for image in "${images_built[@]}"; do podman rmi -f "$image" >/dev/null 2>&1; done
  fi
  ip link del "$bridge" >/dev/null 2>&1
  rm -rf "$work"
  if [ "$code" != 0 ] || [ "$failures" != 0 ]; then echo "node-test.sh: FAILED ($failures check(s))"; fi
  exit "$code"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# A subnet of the bridge no route on this machine uses; addresses stay on this bridge (no masquerade, no route out).
bridge=ambnt${id#nt}; bridge=${bridge:0:15}
for third in $(seq $((20 + $$ % 200)) 254) $(seq 20 254); do
  subnet=10.213.$third
  ip -4 route | grep -q " $subnet\.\|^$subnet\." || break
done
network=$prefix
client_ip=$subnet.10
server_ip=$subnet.11
ns=shop                      # the pods' namespace (enrolled: istio.io/dataplane-mode=ambient)
client=$prefix-client        # podman passes the container name as K8S_POD_NAME: the pods' names
server=$prefix-server

step "a node in $work (bridge $bridge, $subnet.0/24)"
mkdir -p "$host/etc/cni/net.d" "$host/opt/cni/bin" "$work/shim" "$work/volumes" "$work/manifests"
for plugin in bridge host-local loopback; do cp /usr/lib/cni/$plugin "$host/opt/cni/bin/"; done
conflist=$host/etc/cni/net.d/10-$network.conflist
cat > "$conflist" <<JSON
{
  "cniVersion": "1.0.0",
  "name": "$network",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "$bridge",
      "isGateway": true,
      "ipMasq": false,
      "capabilities": { "ips": true },
      "ipam": {
        "type": "host-local",
        "dataDir": "$work/ipam",
        "ranges": [[{ "subnet": "$subnet.0/24", "gateway": "$subnet.1" }]]
      }
    }
  ]
}
JSON
cp "$conflist" "$work/conflist.original"
# podman passes K8S_POD_NAME=<container name> but no K8S_POD_NAMESPACE (a kubelet passes both); without a namespace
# ambient-cni rightly passes a container through. This shim, found first on the plugin path, plays that part of the
# kubelet: it adds the namespace and runs the ambient-cni the installer put in the node's bin dir.
cat > "$work/shim/ambient-cni" <<SHIM
#!/bin/sh
CNI_ARGS="\${CNI_ARGS:+\$CNI_ARGS;}K8S_POD_NAMESPACE=$ns" exec "$host/opt/cni/bin/ambient-cni" "\$@"
SHIM
chmod 0755 "$work/shim/ambient-cni"
cat > "$work/containers.conf" <<CONF
[containers]
default_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
[network]
network_backend = "cni"
network_config_dir = "$host/etc/cni/net.d"
cni_plugin_dirs = ["$work/shim", "$host/opt/cni/bin"]
CONF
export CONTAINERS_CONF=$work/containers.conf
ok "conflist $(basename "$conflist"): bridge + host-local; podman: runc, cgroupfs, CNI backend on the node's dirs"

if [ "$build" = 1 ]; then
  image_tag=$version-nodetest.$id
  step "building the images (daemonset/build-images.sh --no-check --version $image_tag)"
  for name in ztunnel install-cni waypoint; do images_built+=("localhost/ambient/$name:$image_tag"); done
  if ! daemonset/build-images.sh --no-check --version "$image_tag" > "$work/build.log" 2>&1; then
    tail -n 30 "$work/build.log" | sed 's/^/      /'; die "build-images.sh failed"
  fi
  grep -E 'localhost/ambient/.*MB' "$work/build.log" | sed 's/^ *//; s/^/    /' || true
  ok "images built"
fi
busybox=$(command -v busybox)
mkdir -p "$work/app/bin" "$work/app/www"
cp "$busybox" "$work/app/bin/busybox"
echo "hello from the ambient node test" > "$work/app/www/index.html"
printf 'FROM scratch\nCOPY bin /bin\nCOPY www /www\nENTRYPOINT ["/bin/busybox"]\n' > "$work/app/Containerfile"
buildah bud -q --layers=false -t "$app_image" -f "$work/app/Containerfile" "$work/app" >/dev/null
ok "app image $app_image: busybox (static) FROM scratch"

# podman run arguments for a container of install.yaml; extra podman options, then the container's arguments.
manifest_run() {  # NAME DAEMONSET CONTAINER POD_NAME [ARG REPLACEMENT]... -- [podman options...]
  local name=$1 ds=$2 container=$3 pod=$4; shift 4
  local -a replace=() opts=()
  while [ $# -gt 0 ] && [ "$1" != -- ]; do replace+=("$1" "$2"); shift 2; done
  [ $# -gt 0 ] && shift
  opts=("$@")
  local -a spec=() run=() args=()
  mapfile -t spec < <(python3 daemonset/podman-from-manifest.py daemonset/install.yaml "$ds" "$container" \
    --host-root "$host" --volumes "$work/volumes" --real-host-path /var/run/netns \
    --field spec.nodeName=node-test --field metadata.name="$pod" --field status.podIP=127.0.0.1)
  [ ${#spec[@]} -gt 2 ] || die "podman-from-manifest.py gave nothing for $ds/$container"
  local i seen=0
  for i in "${spec[@]}"; do
    if [ "$seen" = 0 ] && [ "$i" = -- ]; then seen=1; continue; fi
    if [ "$seen" = 0 ]; then run+=("$i"); else args+=("$i"); fi
  done
  local image=${args[0]%:*}:$image_tag; args=("${args[@]:1}")
  local j
  for ((j = 0; j < ${#replace[@]}; j += 2)); do
    local -a next=(); for i in "${args[@]}"; do if [ "$i" = "${replace[j]}" ]; then read -r -a more <<< "${replace[j+1]}"; next+=("${more[@]}"); else next+=("$i"); fi; done
    args=("${next[@]}")
  done
  echo "    podman run --name $name ${run[*]} ${opts[*]} $image ${args[*]}" >> "$work/commands.log"
  podman run -d --name "$name" "${run[@]}" "${opts[@]}" "$image" "${args[@]}" >/dev/null
}
pid_of() { podman inspect -f '{{.State.Pid}}' "$1"; }
# A container's log so far, in a file: `podman logs | grep -q` would fail under pipefail when grep stops reading early.
log_of() { podman logs "$1" > "$work/$1.log" 2>&1 || true; echo "$work/$1.log"; }
wait_for() {  # SECONDS DESCRIPTION COMMAND...: polls until the command succeeds
  local deadline=$((SECONDS + $1)) what=$2; shift 2
  until "$@" >/dev/null 2>&1; do
    if [ $SECONDS -ge $deadline ]; then return 1; fi
    sleep 0.2
  done
}

step "the CNI installer, run as install.yaml's ambient-cni DaemonSet runs it"
# What a kubelet adds to every container: the API server's address and the service account's token. No API server
# runs here: the address is a closed loopback port, so the installer's on-exit auto finds it unreachable (and keeps).
api_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
mkdir -p "$work/volumes/serviceaccount"
echo "node-test-token" > "$work/volumes/serviceaccount/token"
kubelet_env=(--env KUBERNETES_SERVICE_HOST=127.0.0.1 --env KUBERNETES_SERVICE_PORT="$api_port"
  --volume "$work/volumes/serviceaccount:/var/run/secrets/kubernetes.io/serviceaccount:ro")
manifest_run "$prefix-install-cni" ambient-cni install-cni "ambient-cni-$id" -- "${kubelet_env[@]}"
sed -n '$p' "$work/commands.log"
chained() { python3 -c 'import json,sys; p=json.load(open(sys.argv[1]))["plugins"]; sys.exit(0 if p[-1]["type"]=="ambient-cni" and [x["type"] for x in p].count("ambient-cni")==1 else 1)' "$conflist"; }
if wait_for 60 "ambient-cni chained" chained && [ -x "$host/opt/cni/bin/ambient-cni" ]; then
  ok "installer chained ambient-cni: plugins $(python3 -c 'import json,sys; print(" -> ".join(p["type"] for p in json.load(open(sys.argv[1]))["plugins"]))' "$conflist"); binary in the bin dir"
  python3 -c 'import json,sys; e=json.load(open(sys.argv[1]))["plugins"][-1]; print("      entry: " + json.dumps({k: e[k] for k in e if k != "type"}))' "$conflist"
else
  podman logs "$prefix-install-cni" 2>&1 | tail -n 20 | sed 's/^/      /'; die "the installer did not chain ambient-cni within 60 s"
fi
if podman exec "$prefix-install-cni" install-cni check >/dev/null 2>&1; then ok "readiness probe (install-cni check) passes"; else fail "install-cni check fails"; fi

step "the agent, run as install.yaml's ztunnel DaemonSet runs it (with --manifests for --kubernetes)"
mkdir -p "$work/volumes/ambient-ca"
openssl ecparam -name prime256v1 -genkey -noout -out "$work/volumes/ambient-ca/tls.key" 2>/dev/null
openssl req -x509 -new -key "$work/volumes/ambient-ca/tls.key" -days 2 -subj "/O=cluster.local/CN=Ambient node test CA" \
  -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" -out "$work/volumes/ambient-ca/tls.crt" 2>/dev/null
pod_yaml() {  # NAME IP
  printf -- '---\napiVersion: v1\nkind: Pod\nmetadata:\n  name: %s\n  namespace: %s\n  labels: {app: %s}\nspec:\n  nodeName: node-test\n  serviceAccountName: %s\n  containers: [{name: app, image: %s}]\nstatus:\n  podIP: %s\n  podIPs: [{ip: %s}]\n' \
    "$1" "$ns" "$1" "$1" "$app_image" "$2" "$2"
}
{
  printf 'apiVersion: v1\nkind: Namespace\nmetadata:\n  name: %s\n  labels:\n    istio.io/dataplane-mode: ambient\n' "$ns"
  pod_yaml "$client" "$client_ip"
  pod_yaml "$server" "$server_ip"
} > "$work/manifests/mesh.yaml"
agent_ready() { nsenter -t "$(pid_of "$1")" -n curl -sf --max-time 2 -o /dev/null http://127.0.0.1:15021/healthz/ready; }
start_agent() {  # NAME
  manifest_run "$1" ztunnel ztunnel "$1" --kubernetes "--manifests /etc/ambient-test/mesh.yaml" -- \
    --volume "$work/manifests:/etc/ambient-test:ro" "${kubelet_env[@]}"
  if ! wait_for 60 "agent ready" agent_ready "$1"; then
    podman logs "$1" 2>&1 | tail -n 30 | sed 's/^/      /'; die "agent $1 not ready (GET /healthz/ready on 15021) within 60 s"
  fi
}
start_agent "$prefix-ztunnel-1"
sed -n '$p' "$work/commands.log"
ok "agent ready: readiness probe GET :15021/healthz/ready answers 200"

step "two app containers on the network"
podman run -d --name "$server" --network "$network" --ip "$server_ip" "$app_image" httpd -f -p 8080 -h /www >/dev/null \
  || die "podman could not start $server (its CNI ADD failed?)"
podman run -d --name "$client" --network "$network" --ip "$client_ip" "$app_image" sleep 100000 >/dev/null \
  || die "podman could not start $client"
for c in "$client" "$server"; do
  if grep -q "captured pod $ns/$c" "$(log_of "$prefix-ztunnel-1")"; then ok "agent captured $ns/$c"; else fail "agent did not capture $ns/$c"; fi
  listening=$(nsenter -t "$(pid_of "$c")" -n ss -Htln | awk '{print $4}' | sed 's/.*://' | sort -un | tr '\n' ' ')
  if [[ " $listening" == *" 15001 15006 15008 "* ]]; then ok "$c: the agent listens in its namespace (ports $listening)"; else fail "$c listens on: $listening"; fi
done

step "traffic between the apps: captured, HBONE on the bridge, identities in the access log"
# On the client's veth (its port of the bridge): every packet it sends or receives, whatever the bridge does.
veth_index=$(nsenter -t "$(pid_of "$client")" -n ip -o link show eth0 | sed -nE 's/^[0-9]+: eth0@if([0-9]+):.*/\1/p')
veth=$(ip -o link | awk -F': ' -v i="$veth_index" '$1 == i { sub(/@.*/, "", $2); print $2 }')
[ -n "$veth" ] || die "cannot find the client's veth on the bridge (ifindex $veth_index)"
tcpdump -i "$veth" -nn -U -w "$work/bridge.pcap" "tcp and host $client_ip and host $server_ip" >/dev/null 2>&1 &
bg_pids+=($!)
sleep 1
answers=0
for i in 1 2 3 4 5; do
  if podman exec "$client" /bin/busybox wget -q -O - "http://$server_ip:8080/" 2>/dev/null | grep -q "hello from the ambient node test"; then answers=$((answers + 1)); fi
done
sleep 1
kill "${bg_pids[-1]}" 2>/dev/null; wait "${bg_pids[-1]}" 2>/dev/null || true
[ "$answers" = 5 ] && ok "5 of 5 requests $client -> $server:8080 answered" || fail "$answers of 5 requests answered"
packets=$(tcpdump -nn -r "$work/bridge.pcap" 2>/dev/null | grep -c ' IP ' || true)
others=$(tcpdump -nn -r "$work/bridge.pcap" 2>/dev/null | grep ' IP ' | grep -vE "\.15008[ :>]" || true)
if [ "$packets" -gt 0 ] && [ -z "$others" ]; then
  ok "tcpdump on $veth (the client's port of $bridge): $packets packets between the apps, every one on port 15008 (HBONE)"
else
  fail "tcpdump on $veth: $packets packets; not on 15008:"; echo "$others" | head -n 5 | sed 's/^/      /'
fi
for who in "$client" "$server"; do
  id_uri="spiffe://cluster.local/ns/$ns/sa/$who"
  if grep -q "$id_uri" "$(log_of "$prefix-ztunnel-1")"; then ok "access log names $id_uri"; else fail "no access log line names $id_uri"; fi
done

step "upgrade: a second agent container while the first runs, under $((200)) connections/s"
touch_stop=$work/load.stop
nsenter -t "$(pid_of "$client")" -n python3 -u scripts/conn-load.py "$server_ip" 8080 200 "$touch_stop" 120 "hello from the ambient node test" > "$work/load.out" 2>&1 &
load_pid=$!
bg_pids+=("$load_pid")
wait_for 30 "load running" grep -q PROGRESS "$work/load.out" || die "the load generator did not start: $(cat "$work/load.out")"
sleep 2
start_agent "$prefix-ztunnel-2"
ok "second agent ready"
if timeout 60 podman wait "$prefix-ztunnel-1" > "$work/old.exit" 2>&1; then
  ok "first agent exited $(cat "$work/old.exit") after handing over: $(grep -oE 'handed [0-9]+ pods over[^:]*' "$(log_of "$prefix-ztunnel-1")" | head -n 1)"
else
  fail "the first agent did not exit within 60 s of its successor being ready"
fi
grep -q "previous agent (pid [0-9]*) released 2 pods" "$(log_of "$prefix-ztunnel-2")" && ok "second agent took both pods over with their listening sockets" \
  || fail "second agent does not report taking both pods over"
sleep 2
touch "$touch_stop"
wait "$load_pid" || true
result=$(grep '^RESULT ' "$work/load.out" | sed 's/^RESULT //')
if [ -n "$result" ] && python3 - "$result" <<'PY'
import json, sys
r = json.loads(sys.argv[1])
print(f"      {r['attempted']} connections in {r['seconds']:.1f} s: {r['ok']} answered, {r['refused']} refused, {r['reset']} reset, "
      f"{r['closed']} closed without an answer, {r['timeout']} timed out, {r['other']} other; {r['samples'][:3]}")
sys.exit(0 if r['attempted'] > 0 and r['ok'] == r['attempted'] else 1)
PY
then ok "upgrade under load: no connection refused, reset or lost"; else fail "connections failed during the upgrade: ${result:-$(tail -n 5 "$work/load.out")}"; fi

step "uninstall"
podman rm -f -t 0 "$client" "$server" >/dev/null  # busybox as PID 1 ignores SIGTERM
[ "$(grep -c "released pod $ns/" "$(log_of "$prefix-ztunnel-2")")" = 2 ] && ok "CNI DEL: the agent released both pods" || fail "the agent did not release both pods on DEL"
podman stop -t 30 "$prefix-ztunnel-2" >/dev/null
podman stop -t 30 "$prefix-install-cni" >/dev/null
if chained; then ok "installer stopped with no API server to say its DaemonSet is gone (on-exit auto): the entry stays, pods fail closed"; else fail "the installer removed its entry although it could not know it was uninstalled"; fi
manifest_run "$prefix-uninstall" ambient-cni install-cni "ambient-cni-$id" run uninstall -- "${kubelet_env[@]}"
podman wait "$prefix-uninstall" >/dev/null
if cmp -s "$conflist" "$work/conflist.original"; then ok "install-cni uninstall: the conflist is back byte for byte"; else fail "the conflist differs from the original:"; diff "$work/conflist.original" "$conflist" | head | sed 's/^/      /'; fi
[ ! -e "$host/opt/cni/bin/ambient-cni" ] && ok "ambient-cni removed from the bin dir" || fail "ambient-cni still in the bin dir"

echo
if [ "$failures" = 0 ]; then echo "node-test.sh: all checks passed"; else exit 1; fi
