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
Usage: ./local-node.sh [--keep] [--down] [--quiet] [--config FILE] [--manifests PATH] [-h|--help]     (as root)

Builds ztunnel, waypoint and ambient-cni, creates two nodes and eight pods in network namespaces, starts one
agent per node in in-pod mode and the namespace's waypoint in its own pod, and shows: transparent capture,
cross-node HBONE with the SPIFFE identities of both ends, a policy denial, a pod outside the mesh, a packet
capture with no plaintext, the metrics; then, through the waypoint: a header route to v2, a weighted split, a
path denied by an L7 policy, istio_requests_total, a rate limit (429), retries hiding a flaky backend, outlier
ejection, an injected delay and a trace (its span tree as an OTLP receiver got it) (the waypoint scenes need
the embedded mesh: not with --config/--manifests).
The mesh (namespaces, pods, services, an AuthorizationPolicy) is ordinary Kubernetes manifests, written to
/tmp/ambient-local-node/manifests and read by both agents. Removes everything it created when done, also on Ctrl-C.

  --keep         leave the nodes, pods and agents running to explore (prints the commands; clean up with
                 ./local-node.sh --down)
  --down         remove a node left by --keep
  --quiet        only the step lines and the verdict (for CI)
  --config FILE  use FILE instead of the embedded manifests: an agent config (ztunnel's local format with
                 workloads/services/policies, and/or 'manifests: [PATH...]'; see mesh/Config/example-config.yaml).
                 The script adds the per-node settings (mode, CA, CNI socket); relative paths in FILE's
                 'manifests:' are read from FILE's folder
  --manifests PATH  use these Kubernetes/Istio manifests (a file or a folder of .yaml/.yml/.json) instead of the
                 embedded ones; repeatable; with --config, added to FILE's mesh
USAGE
}

keep=0 quiet=0 config_file="" down=0 user_manifests=()
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
    --manifests)
      if [ $# -lt 2 ] || [ -z "$2" ] || [ "${2#--}" != "$2" ]; then
        echo "local-node.sh: --manifests needs a file or folder: --manifests PATH (see --help)" >&2; exit 2
      fi
      case "$2" in /*) m=$2 ;; *) m=$invoked_from/$2 ;; esac
      [ -e "$m" ] || { echo "local-node.sh: --manifests $2: no such file or folder" >&2; exit 2; }
      user_manifests+=("$m")
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
  # The agents and the waypoint drain on SIGTERM (drainTimeout, 5 s by default): wait that long before whatever
  # is left is killed.
  for _ in $(seq 1 60); do
    alive=0
    if [ -f "$root/agents.pids" ]; then while read -r p; do kill -0 "$p" 2>/dev/null && alive=1; done < "$root/agents.pids"; fi
    [ "$alive" = 1 ] || break
    sleep 0.1
  done
  "$topo" down "$root" "$prefix" || true
  left=$(ip netns list | grep -c "^$prefix-" || true)
  if [ "$left" = 0 ]; then ok "removed every namespace, veth, bridge, rule and process"; else fail "$left namespaces left behind"; fi
  exit "$code"
}

if ip netns list | grep "^$prefix-" > /dev/null; then
  echo "local-node.sh: a local node is already running (from --keep?). Remove it with ./local-node.sh --down" >&2
  exit 1
fi
# Two runs at once (two checkouts, a test beside a user) would share the fixed names and build into the same folder:
# one run's agents would load the other's libraries. The lock is held on fd 9 by this script and the agents it starts
# (so a node kept with --keep holds it too); the builds get the fd closed, since the build servers they leave behind
# outlive the script. The file stays in /run (a tmpfs): removing it could let a second run lock a new file.
lock=/run/ambient-local-node.lock
exec 9> "$lock"
if ! flock -n 9; then
  echo "local-node.sh: another local-node.sh is running on this machine (the same amb-* namespaces and $root); wait for it to finish" >&2
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

# The waypoint scenes need the embedded mesh (its reviews service, routes and policies); a mesh of your own
# (--config/--manifests) runs without them.
l7=0
[ -z "$config_file" ] && [ ${#user_manifests[@]} = 0 ] && l7=1

trap cleanup EXIT
trap 'exit 130' INT TERM
mkdir -p "$root/bin"

step "building ztunnel and waypoint (JIT: quick to build; README shows the NativeAOT publish for a real node) and ambient-cni (NativeAOT)"
dotnet build ztunnel -c Release -nologo -v quiet -o "$root/ztunnel" 9>&- 2>&1 | grep -E '(error|warning) [A-Z]+[0-9]+' || true
[ -x "$root/ztunnel/ztunnel" ] || { echo "build of ztunnel failed" >&2; exit 1; }
if [ "$l7" = 1 ]; then
  dotnet build waypoint -c Release -nologo -v quiet -o "$root/waypoint-bin" 9>&- 2>&1 | grep -E '(error|warning) [A-Z]+[0-9]+' || true
  [ -x "$root/waypoint-bin/waypoint" ] || { echo "build of waypoint failed" >&2; exit 1; }
  # An OTLP receiver for the trace scene (decodes with code generated from the OTLP protos, prints span trees).
  dotnet build perf/otlp-receiver -c Release -nologo -v quiet -o "$root/otlp-bin" 9>&- 2>&1 | grep -E '(error|warning) [A-Z]+[0-9]+' || true
  [ -x "$root/otlp-bin/otlp-receiver" ] || { echo "build of perf/otlp-receiver failed" >&2; exit 1; }
fi
dotnet publish cni-plugin -c Release -r linux-x64 -nologo -v quiet -o "$root/cni-publish" 9>&- 2>&1 | grep -E 'error' || true
cp "$root/cni-publish/ambient-cni" "$root/bin/ambient-cni"
ok "ztunnel$([ "$l7" = 1 ] && echo ", waypoint") and ambient-cni built"

step "creating a mesh CA (ECDSA P-256, openssl)"
openssl ecparam -name prime256v1 -genkey -noout -out "$root/ca-key.pem" 2>/dev/null
openssl req -x509 -new -key "$root/ca-key.pem" -days 2 -subj "/O=cluster.local/CN=Ambient local-node CA" \
  -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" -out "$root/ca-cert.pem" 2>/dev/null
ok "$root/ca-cert.pem"

# The embedded mesh, as the Kubernetes objects a user would `kubectl apply` (mesh/Kubernetes/examples/ is the same
# shop, with Deployment-made pods and a waypoint). One file per kind, like a kustomize base.
write_manifests() { # DIR
  cat > "$1/00-namespaces.yaml" <<'YAML'
# Every pod of "shop" is in the ambient mesh. "legacy" is not enrolled: its pod talks plaintext and is
# captured only where it is received.
apiVersion: v1
kind: Namespace
metadata:
  name: shop
  labels:
    istio.io/dataplane-mode: ambient
---
apiVersion: v1
kind: Namespace
metadata:
  name: legacy
YAML
  cat > "$1/10-pods.yaml" <<'YAML'
# The five pods, bare (as `kubectl run` makes them): spec.nodeName says which node runs each. A manifest set has
# no API server, so each pod carries the status Kubernetes would report once the CNI gave it an address (the
# demo asks host-local for these addresses): that is how the *other* node learns where a pod lives. A pod
# written without a status still gets its addresses from the CNI of its own node, but only that node knows them.
apiVersion: v1
kind: Pod
metadata:
  name: web
  namespace: shop
  labels:
    app: web
    version: v1
spec:
  serviceAccountName: web
  nodeName: node-b
  containers:
  - name: web
    image: python:3.12-slim
    command: [python3, -m, http.server, "8080"]
    ports:
    - name: http
      containerPort: 8080
status:
  podIPs:
  - ip: 10.10.2.10
---
apiVersion: v1
kind: Pod
metadata:
  name: payments
  namespace: shop
  labels:
    app: payments
    version: v1
spec:
  serviceAccountName: payments
  nodeName: node-b
  containers:
  - name: payments
    image: node:22-slim
    command: [node, /srv/payments.js]
    ports:
    - name: http-api
      containerPort: 9090
status:
  podIPs:
  - ip: 10.10.2.11
---
apiVersion: v1
kind: Pod
metadata:
  name: frontend
  namespace: shop
  labels:
    app: frontend
spec:
  serviceAccountName: frontend
  nodeName: node-a
  containers:
  - name: frontend
    image: curlimages/curl:8.11.0
    command: [sleep, infinity]
status:
  podIPs:
  - ip: 10.10.1.10
---
apiVersion: v1
kind: Pod
metadata:
  name: batch
  namespace: shop
  labels:
    app: batch
spec:
  serviceAccountName: batch
  nodeName: node-a
  containers:
  - name: batch
    image: curlimages/curl:8.11.0
    command: [sleep, infinity]
status:
  podIPs:
  - ip: 10.10.1.11
---
apiVersion: v1
kind: Pod
metadata:
  name: legacy
  namespace: legacy
  labels:
    app: legacy
spec:
  nodeName: node-a
  containers:
  - name: legacy
    image: curlimages/curl:8.11.0
    command: [sleep, infinity]
status:
  podIPs:
  - ip: 10.10.1.12
---
# Two versions of reviews (a small Python app answering with its version), one per node.
apiVersion: v1
kind: Pod
metadata:
  name: reviews-v1
  namespace: shop
  labels:
    app: reviews
    version: v1
spec:
  serviceAccountName: reviews
  nodeName: node-b
  containers:
  - name: reviews
    image: python:3.12-slim
    command: [python3, /srv/reviews.py, v1]
    ports:
    - name: http
      containerPort: 9080
status:
  podIPs:
  - ip: 10.10.2.12
---
apiVersion: v1
kind: Pod
metadata:
  name: reviews-v2
  namespace: shop
  labels:
    app: reviews
    version: v2
spec:
  serviceAccountName: reviews
  nodeName: node-a
  containers:
  - name: reviews
    image: python:3.12-slim
    command: [python3, /srv/reviews.py, v2]
    ports:
    - name: http
      containerPort: 9080
status:
  podIPs:
  - ip: 10.10.1.13
---
# The waypoint pod of Gateway shop/waypoint (what Istio's controller deploys): its service account is the
# Gateway's name (its identity is spiffe://cluster.local/ns/shop/sa/waypoint) and, like Istio's, it is not
# captured itself (dataplane-mode none): it terminates HBONE on its own port 15008.
apiVersion: v1
kind: Pod
metadata:
  name: waypoint
  namespace: shop
  labels:
    gateway.networking.k8s.io/gateway-name: waypoint
    istio.io/dataplane-mode: none
spec:
  serviceAccountName: waypoint
  nodeName: node-a
  containers:
  - name: waypoint
    image: ambient/waypoint
    args: [--gateway, shop/waypoint]
    ports:
    - name: mesh
      containerPort: 15008
status:
  podIPs:
  - ip: 10.10.1.20
YAML
  cat > "$1/20-services.yaml" <<'YAML'
# Two ClusterIP services. targetPort names the container port, so each pod's own number is used.
apiVersion: v1
kind: Service
metadata:
  name: web
  namespace: shop
spec:
  clusterIP: 10.96.0.10
  selector:
    app: web
  ports:
  - name: http
    port: 80
    targetPort: http
---
apiVersion: v1
kind: Service
metadata:
  name: payments
  namespace: shop
spec:
  clusterIP: 10.96.0.11
  selector:
    app: payments
  ports:
  - name: http
    port: 80
    targetPort: http-api
---
# reviews goes through the namespace's waypoint (istio.io/use-waypoint on the Service): HTTP routing, L7 policy,
# rate limits, retries and outlier detection per request. reviews-v1 and reviews-v2 are its versions, the
# backends its HTTPRoute picks; reviews-v2 also uses the waypoint, for its fault-injecting VirtualService.
apiVersion: v1
kind: Service
metadata:
  name: reviews
  namespace: shop
  labels:
    istio.io/use-waypoint: waypoint
spec:
  clusterIP: 10.96.0.12
  selector:
    app: reviews
  ports:
  - name: http
    port: 80
    targetPort: http
---
apiVersion: v1
kind: Service
metadata:
  name: reviews-v1
  namespace: shop
spec:
  clusterIP: 10.96.0.13
  selector:
    app: reviews
    version: v1
  ports:
  - name: http
    port: 80
    targetPort: http
---
apiVersion: v1
kind: Service
metadata:
  name: reviews-v2
  namespace: shop
  labels:
    istio.io/use-waypoint: waypoint
spec:
  clusterIP: 10.96.0.14
  selector:
    app: reviews
    version: v2
  ports:
  - name: http
    port: 80
    targetPort: http
YAML
  cat > "$1/30-policies.yaml" <<'YAML'
# Only frontend may call payments: ztunnel enforces it at L4 on payments' node, from the caller's mTLS identity.
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata:
  name: payments-allow-frontend
  namespace: shop
spec:
  selector:
    matchLabels:
      app: payments
  action: ALLOW
  rules:
  - from:
    - source:
        principals:
        - cluster.local/ns/shop/sa/frontend
YAML
  cat > "$1/40-waypoint.yaml" <<'YAML'
# The waypoint of shop (what `istioctl waypoint generate -n shop` writes); its pod is in 10-pods.yaml. Services
# labelled istio.io/use-waypoint: waypoint send their traffic through it.
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata:
  name: waypoint
  namespace: shop
  labels:
    istio.io/waypoint-for: service
spec:
  gatewayClassName: istio-waypoint
  listeners:
  - name: mesh
    port: 15008
    protocol: HBONE
YAML
  cat > "$1/50-l7.yaml" <<'YAML'
# What the waypoint enforces on reviews, per request. Routes: the header x-version: v2 goes to v2; /flaky to v1,
# retried on 503; /broken to both versions (for outlier detection); everything else is split 75/25 v1/v2.
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata:
  name: reviews
  namespace: shop
spec:
  parentRefs:
  - {group: "", kind: Service, name: reviews, port: 80}
  rules:
  - matches:
    - headers: [{name: x-version, value: v2}]
    backendRefs: [{name: reviews-v2, port: 80}]
  - matches:
    - path: {type: PathPrefix, value: /flaky}
    backendRefs: [{name: reviews-v1, port: 80}]
    retry: {attempts: 2, codes: [503], backoff: 10ms}
  - matches:
    - path: {type: PathPrefix, value: /broken}
    backendRefs: [{name: reviews, port: 80}]
  - backendRefs:
    - {name: reviews-v1, port: 80, weight: 75}
    - {name: reviews-v2, port: 80, weight: 25}
---
# L7 authorization at the waypoint: nobody reaches reviews' /admin pages.
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata:
  name: reviews-deny-admin
  namespace: shop
spec:
  targetRefs:
  - {group: "", kind: Service, name: reviews}
  action: DENY
  rules:
  - to:
    - operation:
        paths: ["/admin*"]
---
# A rate limit that knows the caller: the batch job may send 5 requests a second to reviews (its burst is one
# second's worth); every other client shares the total of 1000.
apiVersion: policy.linkerd.io/v1alpha1
kind: HTTPLocalRateLimitPolicy
metadata:
  name: reviews-limits
  namespace: shop
spec:
  targetRef: {group: "", kind: Service, name: reviews}
  total: {requestsPerSecond: 1000}
  overrides:
  - requestsPerSecond: 5
    clientRefs: [{kind: ServiceAccount, name: batch}]
---
# Outlier detection: an endpoint of reviews that answers 5xx twice in a row is ejected for a while.
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata:
  name: reviews
  namespace: shop
spec:
  host: reviews.shop.svc.cluster.local
  trafficPolicy:
    outlierDetection: {consecutive5xxErrors: 2, interval: 1s, baseEjectionTime: 5m, maxEjectionPercent: 50}
---
# Fault injection: requests to reviews-v2 with the header x-delay: "1" wait 200 ms at the waypoint first.
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: reviews-v2
  namespace: shop
spec:
  hosts: [reviews-v2.shop.svc.cluster.local]
  http:
  - match:
    - headers: {x-delay: {exact: "1"}}
    fault: {delay: {fixedDelay: 200ms, percentage: {value: 100}}}
    route: [{destination: {host: reviews-v2.shop.svc.cluster.local}}]
  - route: [{destination: {host: reviews-v2.shop.svc.cluster.local}}]
YAML
}

# A --config FILE is combined with the per-node settings in another folder: its relative 'manifests:' entries
# (read from FILE's folder) are made absolute. Handles the two usual spellings, a flow list and a block list.
user_config() { # FILE
  python3 - "$1" <<'PY'
import json, os, re, sys
path = sys.argv[1]
base = os.path.dirname(os.path.abspath(path))
def fix(item):
    item = item.strip()
    if len(item) >= 2 and item[0] == item[-1] and item[0] in "'\"":
        item = item[1:-1]
    return json.dumps(item if os.path.isabs(item) else os.path.normpath(os.path.join(base, item)))
out, in_list = [], False
for line in open(path, encoding="utf-8").read().splitlines():
    flow = re.match(r"^manifests:\s*\[(.*)\]\s*(#.*)?$", line)
    if flow:
        out.append("manifests: [" + ", ".join(fix(i) for i in flow.group(1).split(",") if i.strip()) + "]")
        continue
    if re.match(r"^manifests:\s*(#.*)?$", line):
        in_list = True
    elif in_list:
        item = re.match(r"^(\s*-\s+)([^#]*?)\s*(#.*)?$", line)
        if item:
            line = item.group(1) + fix(item.group(2))
        elif line.strip() and not line.lstrip().startswith("#"):
            in_list = False
    out.append(line)
print("\n".join(out))
PY
}

step "creating nodes node-a and node-b (network namespaces on a shared fabric)"
"$topo" up "$root" "$prefix" node-a node-b
ok "node-a: pods 10.10.1.0/24, node-b: pods 10.10.2.0/24; CNI chain bridge -> host-local -> ambient-cni"

step "the mesh: $([ -n "$config_file" ] && echo "your config" || echo "Kubernetes manifests"), read by both agents"
manifests=("${user_manifests[@]}")
if [ -z "$config_file" ] && [ ${#manifests[@]} = 0 ]; then
  # Atomically (write a folder, then rename it): an agent never reads a half-written set.
  rm -rf "$root/manifests.tmp" "$root/manifests"; mkdir -p "$root/manifests.tmp"
  write_manifests "$root/manifests.tmp"
  mv -T "$root/manifests.tmp" "$root/manifests"
  manifests=("$root/manifests")
fi
for m in "${manifests[@]}"; do
  ok "the mesh comes from Kubernetes manifests in $m (kubectl-style YAML)"
  if [ -d "$m" ]; then (cd "$m" && for f in *.yaml *.yml *.json; do [ -f "$f" ] || continue; printf '%-20s %s\n' "$f" "$(grep -hE '^kind:' "$f" | sort | uniq -c | awk '{printf "%s%d %s", sep, $1, $3; sep=", "}')"; done) | show; fi
done
agent_args=()
if [ -n "$config_file" ]; then
  ok "the mesh comes from your config $config_file$([ ${#manifests[@]} = 0 ] || echo " and the manifests above")"
  # A config that lists manifests itself keeps its list; --manifests paths are added on the agent's command line.
  if grep -qE '^manifests:' "$config_file"; then for m in "${manifests[@]}"; do agent_args+=(--manifests "$m"); done; fi
fi
for node in node-a node-b; do
  { if [ -n "$config_file" ]; then
      user_config "$config_file"
    else
      cat <<YAML
# ztunnel on $node: agent settings only; the mesh is in the manifests.
trustDomain: cluster.local
admin: 127.0.0.1:15000
metrics: 0.0.0.0:15020
readiness: 0.0.0.0:15021
YAML
    fi
    cat <<YAML
mode: inpod
ca:
  certFile: $root/ca-cert.pem
  keyFile: $root/ca-key.pem
inpod:
  cniSocket: $root/$node/cni.sock
  enrollmentFile: $root/$node/enrollment.json
YAML
    if [ ${#manifests[@]} -gt 0 ] && [ ${#agent_args[@]} = 0 ]; then
      echo "manifests:"; for m in "${manifests[@]}"; do printf '  - %s\n' "$m"; done
    fi
  } > "$root/$node/ztunnel.yaml.tmp"
  # Atomically (write, then rename), as README asks of every edit of a watched config.
  mv -f "$root/$node/ztunnel.yaml.tmp" "$root/$node/ztunnel.yaml"
done
if [ -z "$config_file" ]; then
  ok "agent config (settings only; node-b's differs in its paths): $root/node-a/ztunnel.yaml"
  show < "$root/node-a/ztunnel.yaml"
else
  ok "agent config (your config plus the node's settings): $root/node-a/ztunnel.yaml"
fi
"$root/ztunnel/ztunnel" --config "$root/node-a/ztunnel.yaml" "${agent_args[@]}" --validate | show
ok "ztunnel --config $root/node-a/ztunnel.yaml${agent_args[*]:+ ${agent_args[*]}} --validate: valid"

step "starting one ztunnel per node (in-pod mode)"
: > "$root/agents.pids"
for node in node-a node-b; do
  nsenter --net="/var/run/netns/$prefix-$node" "$root/ztunnel/ztunnel" --config "$root/$node/ztunnel.yaml" "${agent_args[@]}" --node "$node" \
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
if [ "$l7" = 1 ]; then
  add_pod node-b reviews-v1 shop 10.10.2.12
  add_pod node-a reviews-v2 shop 10.10.1.13
  add_pod node-a waypoint shop 10.10.1.20
fi
in_pod() { local pod=$1; shift; nsenter --net="/var/run/netns/$prefix-pod-$pod" "$@"; }
grep -h "captured pod\|not enrolled" "$root"/node-*/ztunnel.log | sed -E 's/^[^ ]+ //' | show

step "where each thing came from (node-b's /config_dump)"
nsenter --net="/var/run/netns/$prefix-node-b" curl -s http://127.0.0.1:15000/config_dump > "$root/config_dump.json" || true
# The sources on one line, then what each source supplied (the CNI source is the manifests' pods on this node,
# with the addresses this node's CNI gave them).
expect_manifests=0
{ [ ${#manifests[@]} -gt 0 ] || grep -qsE '^manifests:' "$config_file"; } && expect_manifests=1
if summary=$(python3 - "$root/config_dump.json" "$expect_manifests" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
def counts(s):
    c = s["counts"]
    return ", ".join(f"{c[k]} {k}" for k in ("workloads", "services", "policies", "objects") if c[k])
print("sources: " + "; ".join(f"{s['name']} ({'synced' if s['synced'] else 'NOT synced'}{': ' + counts(s) if counts(s) else ''})" for s in d["sources"]))
by_source = {}
for kind in ("workloads", "services", "policies"):
    for o in d[kind]:
        by_source.setdefault(o["source"], {}).setdefault(kind, []).append(f"{o['namespace']}/{o['name']}")
for source, kinds in by_source.items():
    print(f"from {source}: " + "; ".join(f"{kind} {', '.join(names)}" for kind, names in kinds.items()))
bad = [s["name"] for s in d["sources"] if not s["synced"] or s.get("lastError")]
sys.exit(1 if bad or (sys.argv[2] == "1" and not any(s["name"].startswith("manifests:") for s in d["sources"])) else 0)
PY
); then
  show <<< "$summary"
  ok "every source synced, none in error"
else
  show <<< "${summary:-}"; fail "a mesh source is missing, not synced or in error (see $root/config_dump.json)"
fi

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
if [ "$l7" = 1 ]; then
  # reviews answers with its version. /flaky fails every other request with 503 (one counter per pod);
  # /broken fails always on v2 (500) and never on v1.
  cat > "$root/reviews.py" <<'PY'
import http.server, sys, threading
version, count, lock = sys.argv[1], [0], threading.Lock()
class Reviews(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_GET(self):
        status, body = 200, f"reviews {version}"
        if self.path.startswith("/flaky"):
            with lock:
                count[0] += 1
                n = count[0]
            if n % 2 == 1:
                status, body = 503, f"reviews {version}: flaky, request {n} fails"
        elif self.path.startswith("/traced"):
            body = f"reviews {version}: traceparent {self.headers.get('traceparent')}"
        elif self.path.startswith("/broken") and version == "v2":
            status, body = 500, f"reviews {version}: broken"
        data = (body + "\n").encode()
        self.send_response(status)
        self.send_header("content-type", "text/plain")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
    def log_message(self, *args):
        pass
http.server.ThreadingHTTPServer(("0.0.0.0", 9080), Reviews).serve_forever()
PY
  in_pod reviews-v1 python3 "$root/reviews.py" v1 > "$root/reviews-v1.log" 2>&1 &
  in_pod reviews-v2 python3 "$root/reviews.py" v2 > "$root/reviews-v2.log" 2>&1 &
  for pod in reviews-v1 reviews-v2; do
    for _ in $(seq 1 50); do in_pod "$pod" bash -c 'exec 3<>/dev/tcp/127.0.0.1/9080' 2>/dev/null && break; sleep 0.1; done
  done
  ok "reviews v1 and v2: python3 reviews.py :9080 (answers with its version)"

  # The waypoint pod: the same binary as in a cluster, in its own network namespace that the node's CNI chain
  # made (not enrolled, so ztunnel leaves it alone), its certificate signed by the agents' CA.
  mkdir -p "$root/waypoint"
  cat > "$root/waypoint/waypoint.yaml.tmp" <<YAML
# waypoint shop/waypoint: listeners in its own pod, certificate from the mesh CA; the mesh is in the manifests.
trustDomain: cluster.local
listeners:
  hbone: 0.0.0.0:15008
admin: 127.0.0.1:15000
metrics: 0.0.0.0:15020
readiness: 0.0.0.0:15021
ca:
  certFile: $root/ca-cert.pem
  keyFile: $root/ca-key.pem
manifests:
  - $root/manifests
YAML
  mv -f "$root/waypoint/waypoint.yaml.tmp" "$root/waypoint/waypoint.yaml"
  # Its traces go to an OTLP receiver in the same pod (loopback only), as a collector sidecar would take them;
  # with no Telemetry resource the waypoint samples 1% of new traces and follows a caller's sampled traceparent.
  # nsenter itself, not the in_pod function: a backgrounded function is a subshell, and its $! is not the receiver.
  nsenter --net="/var/run/netns/$prefix-pod-waypoint" "$root/otlp-bin/otlp-receiver" --address 127.0.0.1 --http 4318 --grpc 4317 \
    > "$root/waypoint/traces.txt" 2> "$root/waypoint/otlp-receiver.log" &
  echo $! > "$root/waypoint/otlp-receiver.pid"
  echo $! >> "$root/agents.pids"
  for _ in $(seq 1 100); do
    in_pod waypoint bash -c 'exec 3<>/dev/tcp/127.0.0.1/4318' 2>/dev/null && break
    sleep 0.1
  done
  in_pod waypoint env OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4318 OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf \
    OTEL_SERVICE_NAME=waypoint.shop OTEL_BSP_SCHEDULE_DELAY=200 \
    "$root/waypoint-bin/waypoint" --gateway shop/waypoint --config "$root/waypoint/waypoint.yaml" \
    --state-dir "$root/waypoint/state" > "$root/waypoint/access.log" 2> "$root/waypoint/waypoint.log" &
  echo $! >> "$root/agents.pids"
  for _ in $(seq 1 150); do
    in_pod waypoint curl -sf -o /dev/null http://127.0.0.1:15021/healthz/ready && break
    sleep 0.1
  done
  if in_pod waypoint curl -sf -o /dev/null http://127.0.0.1:15021/healthz/ready; then
    ok "waypoint shop/waypoint ready in pod 10.10.1.20 on node-a (HBONE 15008, metrics 15020)"
  else
    fail "the waypoint did not become ready"; cat "$root/waypoint/waypoint.log" >&2; exit 1
  fi
fi

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

if [ "$l7" = 1 ]; then
  # The waypoint's scenes (issues 10 and 11), in their own file to keep this one readable.
  . "$repo/scripts/waypoint-scenes.sh"
fi

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
  nsenter --net=/var/run/netns/$prefix-pod-frontend curl -H 'x-version: v2' http://10.96.0.12/  # via the waypoint
  nsenter --net=/var/run/netns/$prefix-pod-waypoint curl -s localhost:15000/config_dump  # the waypoint's routes
  tail -f $root/waypoint/access.log                                                 # one line per request
  tail -f $root/node-*/access.log                                                   # access logs
  ip netns list | grep $prefix-                                                     # the namespaces
KEEP
  for m in "${manifests[@]}"; do
    printf '  %-80s  # the mesh: edit a copy, mv it over the file; both agents reload it\n' "ls $m"
  done
  echo "Remove it all with: ./local-node.sh --down"
fi
