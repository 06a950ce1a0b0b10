#!/usr/bin/env bash
# Builds "nodes" and "pods" out of network namespaces, wired by Debian's reference CNI plugins
# (bridge + host-local) with ambient-cni chained after them, as a container runtime would.
#
#   topology.sh up      ROOT PREFIX NODE...             nodes on a shared fabric, one pod subnet each
#   topology.sh add-pod ROOT PREFIX NODE POD NS IP      a pod netns, attached by the node's CNI chain
#   topology.sh del-pod ROOT PREFIX NODE POD NS         CNI DEL and the netns removed
#   topology.sh down    ROOT PREFIX                     everything with PREFIX: processes, netns, files
#
# Node i (1-based, in the order given to `up`) owns pod subnet 10.10.i.0/24 and fabric address 10.250.0.i.
# Everything lives in namespaces named PREFIX-*: the host's own network is never touched.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cmd=${1:-}; shift || true

ns_exec() { local ns=$1; shift; nsenter --net="/var/run/netns/$ns" "$@"; }

node_index() { # ROOT NODE -> index
  local i=1
  for n in $(cat "$1/nodes"); do [ "$n" = "$2" ] && { echo "$i"; return; }; i=$((i + 1)); done
  echo "topology: unknown node $2" >&2; exit 2
}

case "$cmd" in
up)
  root=$1 prefix=$2; shift 2
  mkdir -p "$root"
  echo "$*" > "$root/nodes"
  echo "$prefix" > "$root/prefix"
  fabric="$prefix-fabric"
  ip netns add "$fabric"
  ns_exec "$fabric" ip link set lo up
  ns_exec "$fabric" ip link add fabric0 type bridge
  ns_exec "$fabric" ip link set fabric0 up
  i=1
  for node in "$@"; do
    ns="$prefix-$node"
    ip netns add "$ns"
    ns_exec "$ns" ip link set lo up
    ns_exec "$ns" sysctl -qw net.ipv4.ip_forward=1
    ip link add "${prefix:0:6}f$i" netns "$fabric" type veth peer name fab0 netns "$ns"
    ns_exec "$fabric" ip link set "${prefix:0:6}f$i" master fabric0 up
    ns_exec "$ns" ip addr add "10.250.0.$i/24" dev fab0
    ns_exec "$ns" ip link set fab0 up
    mkdir -p "$root/$node"
    cat > "$root/$node/cni.conflist" <<CONF
{
  "cniVersion": "1.0.0",
  "name": "ambient-local",
  "plugins": [
    { "type": "bridge", "bridge": "ambbr0", "isGateway": true, "ipMasq": false,
      "ipam": { "type": "host-local", "ranges": [[{ "subnet": "10.10.$i.0/24" }]],
                "routes": [{ "dst": "0.0.0.0/0" }], "dataDir": "$root/$node/ipam" } },
    { "type": "ambient-cni", "agentSocket": "$root/$node/cni.sock",
      "enrollmentFile": "$root/$node/enrollment.json", "logFile": "$root/$node/cni.log", "agentTimeoutSeconds": 20 }
  ]
}
CONF
    i=$((i + 1))
  done
  # Every node routes each other node's pod subnet to that node's fabric address.
  i=1
  for node in "$@"; do
    j=1
    for other in "$@"; do
      [ "$i" != "$j" ] && ns_exec "$prefix-$node" ip route add "10.10.$j.0/24" via "10.250.0.$j"
      j=$((j + 1))
    done
    i=$((i + 1))
  done
  ;;
add-pod)
  root=$1 prefix=$2 node=$3 pod=$4 podns=$5 ip=$6
  ns="$prefix-pod-$pod"
  ip netns add "$ns"
  ns_exec "$ns" ip link set lo up
  args="IgnoreUnknown=1;K8S_POD_NAME=$pod;K8S_POD_NAMESPACE=$podns;K8S_POD_UID=uid-$pod;IP=$ip"
  if ! ns_exec "$prefix-$node" env CNI_PATH="$root/bin:/usr/lib/cni" python3 "$here/cni-exec.py" ADD \
      "$root/$node/cni.conflist" "/var/run/netns/$ns" "cid-$pod" "$args" > "$root/$node/$pod.result.json" 2> "$root/$node/$pod.cni.log"; then
    cat "$root/$node/$pod.result.json" "$root/$node/$pod.cni.log" >&2
    ip netns del "$ns"
    exit 1
  fi
  ;;
del-pod)
  root=$1 prefix=$2 node=$3 pod=$4 podns=$5
  ns="$prefix-pod-$pod"
  args="IgnoreUnknown=1;K8S_POD_NAME=$pod;K8S_POD_NAMESPACE=$podns;K8S_POD_UID=uid-$pod"
  ns_exec "$prefix-$node" env CNI_PATH="$root/bin:/usr/lib/cni" python3 "$here/cni-exec.py" DEL \
    "$root/$node/cni.conflist" "/var/run/netns/$ns" "cid-$pod" "$args" 2>> "$root/$node/$pod.cni.log" || true
  ip netns pids "$ns" 2>/dev/null | xargs -r kill -9 2>/dev/null || true
  ip netns del "$ns" 2>/dev/null || true
  ;;
down)
  root=$1 prefix=$2
  for ns in $(ip netns list | awk '{print $1}' | grep -E "^$prefix-" || true); do
    ip netns pids "$ns" 2>/dev/null | xargs -r kill -9 2>/dev/null || true
  done
  sleep 0.2
  for ns in $(ip netns list | awk '{print $1}' | grep -E "^$prefix-pod-" || true); do ip netns del "$ns" 2>/dev/null || true; done
  for ns in $(ip netns list | awk '{print $1}' | grep -E "^$prefix-" || true); do ip netns del "$ns" 2>/dev/null || true; done
  if [ -n "$root" ] && [ -d "$root" ]; then rm -rf "$root"; fi
  ;;
*)
  sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'
  [ "$cmd" = "-h" ] || [ "$cmd" = "--help" ] || [ -z "$cmd" ] && exit 0
  exit 2
  ;;
esac
