#!/usr/bin/env bash
# Builds Ambient's OCI images FROM scratch with buildah (nothing is pulled: the images hold NativeAOT binaries and
# the exact host files they need), checks each one with podman, prints its size and optionally saves OCI archives.
# Run as root on Debian/Ubuntu; it apt-get installs what it lacks. daemonset/README.md explains the images.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD

usage() {
  cat <<'USAGE'
Usage: sudo daemonset/build-images.sh [--version V] [--save DIR] [--no-check] [-h|--help]

Builds, FROM scratch with buildah:
  localhost/ambient/ztunnel:<version>      the node agent (NativeAOT) and what it runs inside pod network
                                           namespaces: nsenter, sh, iptables/iptables-restore (nftables backend),
                                           nft, ip, grep, with their libraries; libssl/libcrypto for TLS
  localhost/ambient/install-cni:<version>  the CNI installer and ambient-cni (both NativeAOT)
  localhost/ambient/waypoint:<version>     the waypoint (L7 proxy; NativeAOT), not root

then checks them with podman (read-only root filesystem, capabilities dropped as install.yaml drops them):
  - ztunnel --version / --help, install-cni --help, ambient-cni VERSION;
  - install-cni install / check / uninstall on a scratch CNI config dir (the dir is given back byte for byte),
    and install-cni run --on-exit auto against a TLS stand-in for the API server (keep, then uninstall);
  - the agent captures a pod: the ztunnel container, given an ADD by the ambient-cni of the install-cni image,
    installs its iptables rules and listeners in a scratch network namespace, and removes them on DEL;
  - waypoint --version / --help / generate, and the waypoint becoming ready in its own network namespace as uid
    1337 with a read-only root filesystem.
Prints each image's size (target for ztunnel: <= 40 MB).

  --version V   image tag and version label (default: daemonset/VERSION)
  --save DIR    also write DIR/<image>-<version>.oci.tar (podman save --format oci-archive)
  --no-check    build only
  -h, --help    this help

Podman runs with runc, the cgroupfs cgroup manager and lowered default ulimits, set in a containers.conf this
script writes (CONTAINERS_CONF from the environment is used instead when set).
To add an image: write daemonset/images/<name>.Containerfile and a stage_<name> function, add <name> to images.
USAGE
}

version=$(cat daemonset/VERSION)
save_dir=""
check=1
while [ $# -gt 0 ]; do
  case "$1" in
    -h|--help) usage; exit 0 ;;
    --version) version=${2:?--version needs a value}; shift 2 ;;
    --save) save_dir=${2:?--save needs a directory}; shift 2 ;;
    --no-check) check=0; shift ;;
    *) echo "build-images.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done
if ! [[ "$version" =~ ^[0-9]+\.[0-9]+\.[0-9]+([-+][0-9A-Za-z.-]+)?$ ]]; then
  echo "build-images.sh: --version '$version' is not a semantic version (1.2.3 or 1.2.3-rc.1)" >&2; exit 2
fi
if [ "$(id -u)" != 0 ]; then
  echo "build-images.sh: run as root (buildah and podman are used rootful; sudo daemonset/build-images.sh)" >&2; exit 1
fi

images=(ztunnel install-cni waypoint)
failures=0
step() { printf '==> %s\n' "$*"; }
ok() { printf '    \xe2\x9c\x93 %s\n' "$*"; }
fail() { printf '    \xe2\x9c\x97 %s\n' "$*"; failures=$((failures + 1)); }

step "installing what the build needs (Debian packages)"
pkgs=(podman buildah runc iptables nftables iproute2 util-linux grep dash openssl libssl3 zlib1g-dev)
command -v clang >/dev/null || command -v gcc >/dev/null || pkgs+=(clang)
scripts/ensure-packages.sh "${pkgs[@]}"

work=$(mktemp -d /tmp/ambient-images.XXXXXX)
cleanup_cmds=()
cleanup() {
  local code=$?
  for ((i = ${#cleanup_cmds[@]} - 1; i >= 0; i--)); do eval "${cleanup_cmds[$i]}" >/dev/null 2>&1 || true; done
  rm -rf "$work"
  exit "$code"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if [ -z "${CONTAINERS_CONF:-}" ]; then
  # crun refuses this kind of host's hybrid cgroups, systemd is not the cgroup manager here, and raising the
  # default ulimits needs CAP_SYS_RESOURCE, which the host may lack.
  cat > "$work/containers.conf" <<'CONF'
[containers]
default_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
CONF
  export CONTAINERS_CONF=$work/containers.conf
fi

revision=$(git rev-parse HEAD 2>/dev/null || echo unknown)
if [ "$revision" != unknown ] && [ -n "$(git status --porcelain 2>/dev/null)" ]; then revision+="-dirty"; fi

step "publishing the NativeAOT binaries (version $version)"
publish() {  # project output [msbuild properties...]
  local project=$1 out=$2; shift 2
  if ! dotnet publish "$project" -c Release -r linux-x64 -nologo -v quiet -p:Version="$version" "$@" -o "$out" > "$out.log" 2>&1; then
    grep -E 'error' "$out.log" | sort -u | head -n 20 >&2 || tail -n 20 "$out.log" >&2
    echo "build-images.sh: dotnet publish $project failed (log above)" >&2; exit 1
  fi
  ok "$project -> $(find "$out" -maxdepth 1 -type f -perm -u+x ! -name '*.dbg' -printf '%f (%s bytes) ')"
  # Trim and AOT analysis warnings (IL2xxx/IL3xxx) name code that may break once compiled: shown, not hidden in the log.
  if grep -qE 'warning IL[23][0-9]{3}' "$out.log"; then
    echo "    trim/AOT warnings for $project:"; grep -oE 'warning IL[23][0-9]{3}:.*' "$out.log" | sort -u | head -n 20 | sed 's/^/      /'
  fi
}
publish ztunnel "$work/publish-ztunnel" -p:PublishAot=true
publish daemonset/install-cni "$work/publish-install-cni"
publish cni-plugin "$work/publish-ambient-cni"
publish waypoint "$work/publish-waypoint" -p:PublishAot=true

# --- staging: a root filesystem per image, holding exactly the files the binaries need ---------------------

declare -A staged=()
# add_file ROOT PATH: copies PATH into ROOT at the same place, recreating every symlink on the way.
add_file() {
  local root=$1 p=$2 target
  [ -n "${staged[$root$p]:-}" ] && return 0
  staged[$root$p]=1
  while [ -L "$p" ]; do
    target=$(readlink "$p")
    mkdir -p "$root$(dirname "$p")"
    ln -sfn "$target" "$root$p"
    case "$target" in /*) p=$target ;; *) p=$(dirname "$p")/$target ;; esac
  done
  mkdir -p "$root$(dirname "$p")"
  cp -a "$p" "$root$p"
}
# add_libs ROOT FILE...: every shared library the dynamic loader maps for the files (and the loader itself).
add_libs() {
  local root=$1 lib; shift
  while read -r lib; do
    [ -n "$lib" ] && add_file "$root" "$lib"
  done < <(ldd "$@" 2>/dev/null | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// && $1 !~ /:$/ { print $1 }' | sort -u)
}
# add_binary ROOT PATH: the file at its host path, and its libraries.
add_binary() {
  add_file "$1" "$2"
  add_libs "$1" "$2"
}
# new_root NAME: an empty root with the host's merged-/usr links (bin -> usr/bin ...), /tmp and /etc/passwd.
new_root() {
  local root=$work/rootfs-$1 d
  mkdir -p "$root/usr/local/bin" "$root/etc" "$root/tmp" "$root/run"
  chmod 1777 "$root/tmp"
  for d in bin sbin lib lib64; do
    if [ -L "/$d" ]; then mkdir -p "$root/$(readlink "/$d")"; ln -s "$(readlink "/$d")" "$root/$d"; fi
  done
  printf 'root:x:0:0:root:/root:/sbin/nologin\n' > "$root/etc/passwd"
  printf 'root:x:0:\n' > "$root/etc/group"
  echo "$root"
}
# .NET loads OpenSSL with dlopen (ldd does not show it): TLS for the agent's HBONE and the installer's API calls.
add_openssl() {
  local root=$1 lib
  for lib in libssl.so.3 libcrypto.so.3; do
    add_binary "$root" "$(ldconfig -p | awk -v l="$lib" '$1 == l && /x86-64/ { print $NF; exit }')"
  done
}

stage_ztunnel() {
  local root; root=$(new_root ztunnel)
  install -m 0755 "$work/publish-ztunnel/ztunnel" "$root/usr/local/bin/ztunnel"
  add_libs "$root" "$work/publish-ztunnel/ztunnel"
  add_openssl "$root"
  # What ztunnel/InPod/CaptureRules.cs runs: nsenter --net=<pod netns> sh -e, and in the script iptables-restore,
  # iptables, nft, ip (rule/route), grep.
  local tool
  for tool in nsenter sh grep ip nft; do add_binary "$root" "$(command -v "$tool")"; done
  # iptables on the nftables backend, named directly (not through the host's /etc/alternatives choice).
  add_binary "$root" /usr/sbin/xtables-nft-multi
  for tool in iptables iptables-restore iptables-save ip6tables ip6tables-restore ip6tables-save; do
    ln -sfn xtables-nft-multi "$root/usr/sbin/$tool"
  done
  # The iptables extensions the capture rules use (-p tcp, -m mark/connmark/conntrack, -j CONNMARK/TPROXY/
  # REDIRECT), and udp, MARK, state, comment, multiport for small rule changes; not the other 110 (2 MB). The
  # self-check below runs the agent's real rules, so a rule that needs another extension fails it.
  local ext
  for ext in standard tcp udp mark MARK connmark CONNMARK conntrack state TPROXY REDIRECT comment multiport; do
    add_binary "$root" "/usr/lib/x86_64-linux-gnu/xtables/libxt_$ext.so"
  done
  mkdir -p "$root/var/run/netns" "$root/var/run/ambient" "$root/var/lib/ambient" "$root/etc/ambient"
}

stage_install-cni() {
  local root; root=$(new_root install-cni)
  install -m 0755 "$work/publish-install-cni/install-cni" "$root/usr/local/bin/install-cni"
  install -m 0755 "$work/publish-ambient-cni/ambient-cni" "$root/usr/local/bin/ambient-cni"
  add_libs "$root" "$work/publish-install-cni/install-cni" "$work/publish-ambient-cni/ambient-cni"
  add_openssl "$root"
  mkdir -p "$root/host/opt/cni/bin" "$root/host/etc/cni/net.d"
}

stage_waypoint() {
  local root; root=$(new_root waypoint)
  install -m 0755 "$work/publish-waypoint/waypoint" "$root/usr/local/bin/waypoint"
  add_libs "$root" "$work/publish-waypoint/waypoint"
  add_openssl "$root"
  printf 'waypoint:x:1337:1337:waypoint:/tmp:/sbin/nologin\n' >> "$root/etc/passwd"
  printf 'waypoint:x:1337:\n' >> "$root/etc/group"
}

step "building the images FROM scratch (buildah)"
declare -A image_ref=()
for name in "${images[@]}"; do
  "stage_$name"
  ref=localhost/ambient/$name:$version
  previous=$(podman image inspect --format '{{.Id}}' "$ref" 2>/dev/null || true)
  if ! buildah bud --quiet --format oci --layers=false \
      -f "$repo/daemonset/images/$name.Containerfile" -t "$ref" \
      --label "org.opencontainers.image.title=$name" \
      --label "org.opencontainers.image.version=$version" \
      --label "org.opencontainers.image.revision=$revision" \
      --label "org.opencontainers.image.source=ambient" \
      --label "org.opencontainers.image.description=Ambient mesh $name (daemonset/images/$name.Containerfile)" \
      "$work/rootfs-$name" > "$work/buildah-$name.log" 2>&1; then
    cat "$work/buildah-$name.log" >&2
    echo "build-images.sh: buildah bud for $name failed" >&2; exit 1
  fi
  image_ref[$name]=$ref
  id=$(podman image inspect --format '{{.Id}}' "$ref")
  # The image this tag named before is now untagged; drop it unless a container still uses it.
  if [ -n "$previous" ] && [ "$previous" != "$id" ]; then podman rmi "$previous" >/dev/null 2>&1 || true; fi
  ok "$ref (image id ${id:0:12}, revision $revision)"
done

# --- checks ----------------------------------------------------------------------------------------------------

zt=${image_ref[ztunnel]}
ic=${image_ref[install-cni]}
# As install.yaml runs them: read-only root, every capability dropped (the agent gets its three back).
run_locked() { podman run --rm --read-only --cap-drop ALL --network none "$@"; }

if [ "$check" = 1 ]; then
  step "checking the images run (read-only root filesystem, capabilities dropped)"
  out=$(run_locked "$zt" --version 2>&1) || true
  if [ "$out" = "ztunnel (Ambient) ${version%%[-+]*}" ]; then ok "ztunnel --version: $out"; else fail "ztunnel --version printed: $out"; fi
  out=$(run_locked "$zt" --help 2>&1 | head -n 1) || true
  if [[ "$out" == "ztunnel: the Ambient node agent"* ]]; then ok "ztunnel --help"; else fail "ztunnel --help printed: $out"; fi
  out=$(run_locked "$ic" --help 2>&1 | head -n 1) || true
  if [[ "$out" == "install-cni: keeps ambient-cni"* ]]; then ok "install-cni --help"; else fail "install-cni --help printed: $out"; fi
  out=$(run_locked -e CNI_COMMAND=VERSION --entrypoint /usr/local/bin/ambient-cni "$ic" 2>&1) || true
  if [[ "$out" == *'"supportedVersions"'* ]]; then ok "ambient-cni VERSION: $out"; else fail "ambient-cni VERSION printed: $out"; fi
  missing_tools=$(podman run --rm --read-only --cap-drop ALL --network none --entrypoint /usr/bin/sh "$zt" -c \
    'for t in nsenter sh grep ip iptables iptables-restore nft; do command -v "$t" >/dev/null || printf "%s " "$t"; done')
  if [ -z "$missing_tools" ]; then ok "ztunnel image carries nsenter sh grep ip iptables iptables-restore nft"; else fail "ztunnel image lacks: $missing_tools"; fi

  step "checking install-cni on a scratch CNI config dir (as the DaemonSet runs it)"
  node=$work/node; mkdir -p "$node/net.d" "$node/bin"
  cat > "$node/net.d/10-bridge.conflist" <<'JSON'
{
  "cniVersion": "1.0.0",
  "name": "selfcheck",
  "plugins": [
    { "type": "bridge", "bridge": "cni-selfcheck0", "ipam": { "type": "host-local", "subnet": "10.99.0.0/24" } },
    { "type": "portmap", "capabilities": { "portMappings": true } }
  ]
}
JSON
  cp "$node/net.d/10-bridge.conflist" "$node/original.conflist"
  run_ic() { run_locked -v "$node/net.d:/host/etc/cni/net.d" -v "$node/bin:/host/opt/cni/bin" -e POD_NAMESPACE=ambient-system "$ic" "$@" 2>&1; }
  if out=$(run_ic install) && grep -q '"type": "ambient-cni"' "$node/net.d/10-bridge.conflist" && [ -x "$node/bin/ambient-cni" ]; then
    ok "install: ${out//$'\n'/; }"
  else
    fail "install: $out"
  fi
  if out=$(run_ic check); then ok "check: $out"; else fail "check: $out"; fi
  if out=$(run_ic uninstall) && cmp -s "$node/original.conflist" "$node/net.d/10-bridge.conflist" && [ ! -e "$node/bin/ambient-cni" ]; then
    ok "uninstall gave the conflist back byte for byte and removed the binary"
  else
    fail "uninstall: $out"
  fi

  # --on-exit auto as install.yaml sets it: the installer asks the API server (here openssl s_server on loopback,
  # serving the DaemonSet as a file) over TLS with the service account's token and CA, at start-up and at SIGTERM.
  api=$work/api; ds_path=apis/apps/v1/namespaces/ambient-system/daemonsets
  mkdir -p "$api/www/$ds_path" "$api/sa"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout "$api/key.pem" -out "$api/sa/ca.crt" \
    -days 1 -subj "/CN=kube-apiserver stand-in" -addext "subjectAltName=IP:127.0.0.1" -addext "basicConstraints=critical,CA:TRUE" 2>/dev/null
  echo "self-check-token" > "$api/sa/token"
  api_port=$(( 20000 + RANDOM % 20000 ))
  (cd "$api/www" && exec openssl s_server -quiet -WWW -accept "127.0.0.1:$api_port" -cert "$api/sa/ca.crt" -key "$api/key.pem" >/dev/null 2>&1) &
  cleanup_cmds+=("kill $!")
  # check_auto DELETING WANT: runs the installer until SIGTERM with the DaemonSet present or being deleted.
  check_auto() {
    local deleting=$1 want=$2 container=ambient-img-installer-$$ logs
    if [ "$deleting" = 1 ]; then
      echo '{"kind":"DaemonSet","metadata":{"name":"ambient-cni","deletionTimestamp":"2026-01-01T00:00:00Z"}}' > "$api/www/$ds_path/ambient-cni"
    else
      echo '{"kind":"DaemonSet","metadata":{"name":"ambient-cni"}}' > "$api/www/$ds_path/ambient-cni"
    fi
    cleanup_cmds+=("podman rm -f $container")
    podman run -d --name "$container" --read-only --cap-drop ALL --network host \
      -v "$node/net.d:/host/etc/cni/net.d" -v "$node/bin:/host/opt/cni/bin" -v "$api/sa:/var/run/secrets/kubernetes.io/serviceaccount:ro" \
      -e POD_NAMESPACE=ambient-system -e AMBIENT_CNI_ON_EXIT=auto -e AMBIENT_CNI_DAEMONSET=ambient-cni \
      -e KUBERNETES_SERVICE_HOST=127.0.0.1 -e KUBERNETES_SERVICE_PORT="$api_port" "$ic" run > /dev/null
    for _ in $(seq 1 200); do podman logs "$container" 2>&1 | grep -q 'on-exit auto: at start-up' && break; sleep 0.1; done
    podman stop -t 25 "$container" > /dev/null
    logs=$(podman logs "$container" 2>&1)
    podman rm -f "$container" > /dev/null
    if [[ "$logs" == *"$want"* ]]; then
      ok "--on-exit auto, DaemonSet ${3}: ${want}"
    else
      fail "--on-exit auto, DaemonSet ${3}: expected '$want'; the installer's log:"; echo "$logs" | tail -n 8 | sed 's/^/      /'
    fi
  }
  check_auto 0 "DaemonSet ambient-system/ambient-cni exists and is not being deleted: a restart or upgrade" "present (a restart)"
  if grep -q '"type": "ambient-cni"' "$node/net.d/10-bridge.conflist"; then ok "the entry stayed"; else fail "the entry is gone after a restart"; fi
  check_auto 1 "stopping: uninstall (DaemonSet ambient-system/ambient-cni is being deleted" "being deleted"
  if cmp -s "$node/original.conflist" "$node/net.d/10-bridge.conflist" && [ ! -e "$node/bin/ambient-cni" ]; then
    ok "the conflist is back byte for byte, the binary gone"
  else
    fail "an uninstall left the node changed"
  fi

  netns=ambient-img-$$
  ip netns add "$netns"
  cleanup_cmds+=("ip netns del $netns")
  ip -n "$netns" link set lo up
  # The pod's interface: one end of a veth pair kept inside the namespace (no traffic leaves it).
  ip -n "$netns" link add eth0 type veth peer name eth0-peer
  ip -n "$netns" link set eth0-peer up
  ip -n "$netns" addr add 10.99.0.2/24 dev eth0
  ip -n "$netns" link set eth0 up
  ca=$work/ca; mkdir -p "$ca"
  openssl ecparam -name prime256v1 -genkey -noout -out "$ca/tls.key" 2>/dev/null
  openssl req -x509 -new -key "$ca/tls.key" -days 1 -subj "/O=cluster.local/CN=Ambient image self-check CA" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" -out "$ca/tls.crt" 2>/dev/null

  # check_capture FIREWALL: the agent, in its image with install.yaml's capabilities, captures a pod of an enrolled
  # namespace when ambient-cni (from the install-cni image) sends ADD, and releases it on DEL.
  check_capture() {
    local firewall=$1 agent=$work/agent-$1 container=ambient-img-agent-$1-$$ out rules listening
    mkdir -p "$agent/run" "$agent/state"
    cat > "$agent/config.yaml" <<YAML
trustDomain: cluster.local
mode: inpod
ca:
  certFile: /var/run/secrets/ambient-ca/tls.crt
  keyFile: /var/run/secrets/ambient-ca/tls.key
inpod:
  cniSocket: /var/run/ambient/cni.sock
  enrollmentFile: /var/run/ambient/enrollment.json
  firewall: $firewall
  namespaces: [selfcheck]
stateDir: /var/lib/ambient
YAML
    cleanup_cmds+=("podman rm -f $container")
    podman run -d --name "$container" --read-only --cap-drop ALL --cap-add NET_ADMIN,SYS_ADMIN,NET_RAW --network none \
      --tmpfs /tmp -v "$agent/run:/var/run/ambient" -v "$agent/state:/var/lib/ambient" \
      -v "$agent/config.yaml:/etc/ambient/config.yaml:ro" -v "$ca:/var/run/secrets/ambient-ca:ro" \
      -v /var/run/netns:/var/run/netns:rslave \
      "$zt" --config /etc/ambient/config.yaml --node selfcheck-node > /dev/null
    for _ in $(seq 1 300); do [ -S "$agent/run/cni.sock" ] && break; sleep 0.1; done
    cni() {  # cni COMMAND: ambient-cni from the install-cni image, against the agent's socket
      run_locked -i -v "$agent/run:/var/run/ambient" -e CNI_COMMAND="$1" -e CNI_CONTAINERID="selfcheck-$$" \
        -e CNI_NETNS="/var/run/netns/$netns" -e CNI_IFNAME=eth0 -e CNI_PATH=/opt/cni/bin \
        -e "CNI_ARGS=IgnoreUnknown=1;K8S_POD_NAMESPACE=selfcheck;K8S_POD_NAME=app" \
        --entrypoint /usr/local/bin/ambient-cni "$ic" 2>&1 <<JSON
{"cniVersion":"1.0.0","name":"selfcheck","type":"ambient-cni","prevResult":{"cniVersion":"1.0.0","interfaces":[{"name":"eth0","sandbox":"/var/run/netns/$netns"}],"ips":[{"address":"10.99.0.2/24","interface":0}]}}
JSON
    }
    rules() {
      if [ "$firewall" = iptables ]; then ip netns exec "$netns" iptables-nft-save 2>/dev/null; else ip netns exec "$netns" nft list ruleset 2>/dev/null; fi
    }
    if [ ! -S "$agent/run/cni.sock" ]; then
      fail "$firewall: the agent did not open its CNI socket within 30 s; its log:"; podman logs "$container" 2>&1 | tail -n 20 | sed 's/^/      /'
      return
    fi
    if ! out=$(cni ADD) || [[ "$out" != *10.99.0.2* ]]; then
      fail "$firewall: ADD failed: $out"; podman logs "$container" 2>&1 | tail -n 20 | sed 's/^/      /'
      return
    fi
    rules=$(rules || true)
    if [[ "$firewall" = iptables && "$rules" == *"-A OUTPUT -j AMBIENT_OUTPUT"* && "$rules" == *"--to-ports 15001"* && "$rules" == *"TPROXY --on-port 15006"* ]] \
      || [[ "$firewall" = nftables && "$rules" == *"table ip ambient"* && "$rules" == *"redirect to :15001"* && "$rules" == *"tproxy to :15006"* ]]; then
      ok "$firewall: ADD installed the capture rules in the pod's netns (redirect to 15001, tproxy to 15006)"
    else
      fail "$firewall: ADD answered but the pod's netns has no capture rules:"; echo "$rules" | sed 's/^/      /'
    fi
    listening=$(ip netns exec "$netns" ss -Htln | awk '{print $4}' | sort | tr '\n' ' ')
    if [[ "$listening" == *":15001 "* && "$listening" == *":15006 "* && "$listening" == *":15008 "* ]]; then
      ok "$firewall: the agent listens inside the pod's netns: $listening"
    else
      fail "$firewall: listeners in the pod's netns: $listening"
    fi
    if [ "$(ip netns exec "$netns" ip rule show | grep -c 'fwmark 0x111/0xfff lookup 100')" = 1 ]; then
      ok "$firewall: policy routing for TPROXY (ip rule fwmark 0x111/0xfff lookup 100)"
    else
      fail "$firewall: no TPROXY policy route in the pod's netns"
    fi
    out=$(cni DEL) || true
    rules=$(rules || true)
    if [[ "$rules" != *AMBIENT* && "$rules" != *"table ip ambient"* ]] && ! ip netns exec "$netns" ip rule show | grep -q 'lookup 100'; then
      ok "$firewall: DEL removed the rules and the policy route"
    else
      fail "$firewall: DEL left rules behind: $out"
    fi
    podman rm -f "$container" > /dev/null
  }

  step "checking the agent captures a pod from inside its image (iptables, then nftables)"
  check_capture iptables
  check_capture nftables

  step "checking the waypoint image (uid 1337, read-only root filesystem, no capability)"
  wp=${image_ref[waypoint]}
  out=$(podman image inspect --format '{{.Config.User}}' "$wp")
  if [ "$out" = 1337:1337 ]; then ok "runs as $out"; else fail "the waypoint image's user is '$out', not 1337:1337"; fi
  out=$(run_locked "$wp" --version 2>&1) || true
  if [ "$out" = "waypoint (Ambient) ${version%%[-+]*}" ]; then ok "waypoint --version: $out"; else fail "waypoint --version printed: $out"; fi
  out=$(run_locked "$wp" --help 2>&1 | head -n 1) || true
  if [[ "$out" == "waypoint: the Ambient L7 proxy"* ]]; then ok "waypoint --help"; else fail "waypoint --help printed: $out"; fi
  out=$(run_locked "$wp" generate --namespace selfcheck 2>&1) || true
  if [[ "$out" == *"gatewayClassName: istio-waypoint"* && "$out" == *"image: localhost/ambient/waypoint:${version%%[-+]*}"* ]]; then
    ok "waypoint generate --namespace selfcheck prints the Gateway and the Deployment of this image"
  else
    fail "waypoint generate printed: $(echo "$out" | head -n 5)"
  fi
  # The waypoint serving a Gateway from a manifest file, in a network namespace of its own (only lo): ready on
  # 15021 once its mesh source synced and its certificate (built-in CA, kept in the /tmp emptyDir) is made.
  wpdir=$work/waypoint; mkdir -p "$wpdir"
  cat > "$wpdir/mesh.yaml" <<'YAML'
apiVersion: v1
kind: Namespace
metadata: {name: selfcheck}
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: waypoint, namespace: selfcheck}
spec:
  gatewayClassName: istio-waypoint
  listeners: [{name: mesh, port: 15008, protocol: HBONE}]
YAML
  chmod 0755 "$wpdir"; chmod 0644 "$wpdir/mesh.yaml"
  container=ambient-img-waypoint-$$
  cleanup_cmds+=("podman rm -f $container")
  podman run -d --name "$container" --read-only --cap-drop ALL --network none --tmpfs /tmp -v "$wpdir:/etc/waypoint:ro" \
    "$wp" --gateway selfcheck/waypoint --manifests /etc/waypoint/mesh.yaml --state-dir /tmp > /dev/null
  pid=$(podman inspect --format '{{.State.Pid}}' "$container")
  ready=""
  for _ in $(seq 1 300); do
    ready=$(nsenter -t "$pid" -n curl -s --max-time 2 http://127.0.0.1:15021/healthz/ready 2>/dev/null || true)
    [ "$ready" = ready ] && break; sleep 0.1
  done
  if [ "$ready" = ready ]; then
    ok "the waypoint is ready in its own network namespace (uid $(ps -o uid= -p "$pid" | tr -d ' '))"
  else
    fail "the waypoint did not become ready within 30 s; its log:"; podman logs "$container" 2>&1 | tail -n 20 | sed 's/^/      /'
  fi
  listening=$(nsenter -t "$pid" -n ss -Htln | awk '{print $4}' | sort | tr '\n' ' ')
  if [[ "$listening" == *":15008 "* && "$listening" == *":15020 "* && "$listening" == *":15021 "* ]]; then
    ok "it listens on $listening"
  else
    fail "the waypoint's listeners: $listening"
  fi
  podman rm -f "$container" > /dev/null
fi

step "image sizes"
for name in "${images[@]}"; do
  bytes=$(podman image inspect --format '{{.Size}}' "${image_ref[$name]}")
  mb=$(awk -v b="$bytes" 'BEGIN { printf "%.1f", b / 1000000 }')
  if [ "$name" = ztunnel ] && [ "$bytes" -gt 40000000 ]; then
    fail "${image_ref[$name]}: $mb MB, over the 40 MB target"
  else
    ok "${image_ref[$name]}: $mb MB"
  fi
done

if [ -n "$save_dir" ]; then
  step "saving OCI archives to $save_dir"
  mkdir -p "$save_dir"
  for name in "${images[@]}"; do
    file=$save_dir/$name-$version.oci.tar
    podman save --quiet --format oci-archive -o "$file" "${image_ref[$name]}"
    ok "$file ($(du -h "$file" | cut -f1)); load elsewhere with: podman load -i $file"
  done
fi

if [ "$failures" -gt 0 ]; then
  echo "build-images.sh: $failures check(s) failed" >&2
  exit 1
fi
echo "images built${save_dir:+ and saved}; all checks passed"
