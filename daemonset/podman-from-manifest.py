#!/usr/bin/env python3
"""Turns one container of a DaemonSet in install.yaml into a `podman run` command line, the way a kubelet would run
it: image, command/args ($(VAR) expanded from the container's env), env (downward-API fields given on the command
line), volume mounts (hostPath under a test root, configMap and secret volumes as directories, emptyDir as tmpfs),
security context (user, read-only root, capabilities, no-new-privileges), hostNetwork. Used by node-test.sh so the
node test runs the images with exactly what install.yaml says.

Usage: podman-from-manifest.py INSTALL_YAML DAEMONSET CONTAINER --host-root DIR --volumes DIR
         [--real-host-path PATH]... [--field spec.nodeName=VALUE]... [--network NAME]
Prints one podman argument per line, then a line "--", the image, and the container's arguments (one per line).
hostPath volumes map to DIR/<path> unless given with --real-host-path (e.g. /var/run/netns, where the runtime makes
the pods' namespaces); env values that name a mapped hostPath (paths the CNI plugin uses on the host) are mapped too.
configMap volumes are written from the ConfigMap in the same file to DIR-of---volumes/<name>/; secret volumes are
expected in --volumes DIR/<secretName>/. Anything the script does not know how to run fails loudly.
"""
import argparse, os, re, sys
import yaml


def fail(msg):
    print(f"podman-from-manifest.py: {msg}", file=sys.stderr)
    sys.exit(2)


ap = argparse.ArgumentParser()
ap.add_argument("install")
ap.add_argument("daemonset")
ap.add_argument("container")
ap.add_argument("--host-root", required=True)
ap.add_argument("--volumes", required=True)
ap.add_argument("--real-host-path", action="append", default=[])
ap.add_argument("--field", action="append", default=[])
ap.add_argument("--network", default="none")
a = ap.parse_args()

docs = [d for d in yaml.safe_load_all(open(a.install)) if d]
ds = next((d for d in docs if d["kind"] == "DaemonSet" and d["metadata"]["name"] == a.daemonset), None) or fail(f"no DaemonSet {a.daemonset}")
namespace = ds["metadata"]["namespace"]
pod = ds["spec"]["template"]["spec"]
c = next((c for c in pod["containers"] if c["name"] == a.container), None) or fail(f"no container {a.container} in {a.daemonset}")
fields = dict(f.split("=", 1) for f in a.field)
fields.setdefault("metadata.namespace", namespace)
out = []
host_paths = {}  # host path -> where it is in the test

# Every DaemonSet's hostPath volumes: the installer's environment names the agent's host paths (the plugin runs on the host).
for v in [v for d in docs if d["kind"] == "DaemonSet" for v in d["spec"]["template"]["spec"].get("volumes", [])]:
    if "hostPath" in v:
        p = v["hostPath"]["path"]
        host_paths[p] = p if p in a.real_host_path else os.path.join(a.host_root, p.lstrip("/"))
        os.makedirs(host_paths[p], exist_ok=True)


def map_host(value):
    for p, mapped in host_paths.items():
        if mapped != p and (value == p or value.startswith(p + "/")):
            return mapped + value[len(p):]
    return value


env = {}
for e in c.get("env", []):
    if "value" in e:
        env[e["name"]] = map_host(str(e["value"]))
    elif "fieldRef" in e.get("valueFrom", {}):
        path = e["valueFrom"]["fieldRef"]["fieldPath"]
        if path not in fields:
            fail(f"env {e['name']} needs the downward-API field {path}: pass --field {path}=VALUE")
        env[e["name"]] = fields[path]
    else:
        fail(f"env {e['name']}: only value and fieldRef are supported")
for k, v in env.items():
    out += ["--env", f"{k}={v}"]


def expand(s):  # Kubernetes expands $(VAR) from the container's env; $$ escapes
    return re.sub(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_]*)\)", lambda m: "$" if m.group(0) == "$$" else env.get(m.group(1), m.group(0)), s)


volumes = {v["name"]: v for v in pod.get("volumes", [])}
for m in c.get("volumeMounts", []):
    v = volumes.get(m["name"]) or fail(f"volumeMount {m['name']} has no volume")
    target, ro = m["mountPath"], m.get("readOnly", False)
    if "hostPath" in v:
        opts = ["rslave"] if m.get("mountPropagation") == "HostToContainer" else []
        if m.get("mountPropagation") not in (None, "None", "HostToContainer"):
            fail(f"mountPropagation {m['mountPropagation']} is not supported")
        if ro:
            opts.append("ro")
        out += ["--volume", f"{host_paths[v['hostPath']['path']]}:{target}" + (":" + ",".join(opts) if opts else "")]
    elif "configMap" in v:
        name = v["configMap"]["name"]
        cm = next((d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"] == name), None) or fail(f"no ConfigMap {name}")
        d = os.path.join(a.volumes, "configmap-" + name)
        os.makedirs(d, exist_ok=True)
        for key, text in cm.get("data", {}).items():
            with open(os.path.join(d, key), "w") as f:
                f.write(text)
        out += ["--volume", f"{d}:{target}:ro"]
    elif "secret" in v:
        d = os.path.join(a.volumes, v["secret"]["secretName"])
        if not os.path.isdir(d):
            fail(f"secret {v['secret']['secretName']}: create {d} with its keys first")
        out += ["--volume", f"{d}:{target}:ro"]
    elif "emptyDir" in v:
        size = v["emptyDir"].get("sizeLimit")
        out += ["--tmpfs", target + (f":size={size.replace('Mi', 'm')}" if size else "")]
    else:
        fail(f"volume {m['name']}: kind not supported")

sc = c.get("securityContext", {})
if sc.get("privileged"):
    out.append("--privileged")
if "runAsUser" in sc:
    out += ["--user", f"{sc['runAsUser']}:{sc.get('runAsGroup', sc['runAsUser'])}"]
if sc.get("readOnlyRootFilesystem"):
    out.append("--read-only")
if sc.get("allowPrivilegeEscalation") is False:
    out += ["--security-opt", "no-new-privileges"]
caps = sc.get("capabilities", {})
for cap in caps.get("drop", []):
    out += ["--cap-drop", cap]
for cap in caps.get("add", []):
    out += ["--cap-add", cap]
if sc.get("seccompProfile", {}).get("type") not in (None, "RuntimeDefault"):
    fail("only the RuntimeDefault seccomp profile (podman's default) is supported")
out += ["--network", "host" if pod.get("hostNetwork") else a.network]
if c.get("imagePullPolicy") in ("IfNotPresent", "Never"):
    out += ["--pull", "never"]
if "command" in c:
    if len(c["command"]) != 1:
        fail("command with arguments: put them in args")
    out += ["--entrypoint", expand(c["command"][0])]
out.append("--")
out.append(c["image"])
out += [expand(x) for x in c.get("args", [])]
print("\n".join(out))
