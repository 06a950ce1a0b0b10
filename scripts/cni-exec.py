#!/usr/bin/env python3
"""A tiny container-runtime stand-in: runs a CNI conflist the way libcni does.

ADD runs the plugins in order, feeding each one's result to the next as prevResult; DEL runs them in
reverse; CHECK runs them in order with the cached ADD result. Plugins are found in CNI_PATH.
Usage: cni-exec.py ADD|DEL|CHECK CONFLIST NETNS CONTAINER_ID [CNI_ARGS]
Prints the final result (ADD) and exits non-zero with the plugin's error JSON on failure.
"""
import json
import os
import subprocess
import sys


def run(plugin_conf, command, netns, container_id, args, name, version, prev):
    conf = dict(plugin_conf)
    conf["name"] = name
    conf["cniVersion"] = version
    if prev is not None:
        conf["prevResult"] = prev
    env = dict(os.environ)
    env.update({
        "CNI_COMMAND": command,
        "CNI_CONTAINERID": container_id,
        "CNI_NETNS": netns,
        "CNI_IFNAME": "eth0",
        "CNI_ARGS": args,
        "CNI_PATH": os.environ.get("CNI_PATH", "/usr/lib/cni"),
    })
    exe = None
    for d in env["CNI_PATH"].split(":"):
        candidate = os.path.join(d, conf["type"])
        if os.access(candidate, os.X_OK):
            exe = candidate
            break
    if exe is None:
        sys.stderr.write(f"cni-exec: plugin {conf['type']} not found in {env['CNI_PATH']}\n")
        sys.exit(2)
    p = subprocess.run([exe], input=json.dumps(conf).encode(), env=env, capture_output=True, timeout=60)
    if p.stderr:
        sys.stderr.write(p.stderr.decode(errors="replace"))
    if p.returncode != 0:
        sys.stdout.write(p.stdout.decode(errors="replace") + "\n")
        sys.stderr.write(f"cni-exec: {conf['type']} {command} failed (exit {p.returncode})\n")
        sys.exit(1)
    out = p.stdout.decode().strip()
    return json.loads(out) if out else prev


def main():
    if len(sys.argv) < 5 or sys.argv[1] in ("-h", "--help"):
        print(__doc__)
        sys.exit(0 if len(sys.argv) > 1 and sys.argv[1] in ("-h", "--help") else 2)
    command, conflist_path, netns, container_id = sys.argv[1:5]
    args = sys.argv[5] if len(sys.argv) > 5 else ""
    with open(conflist_path) as f:
        conflist = json.load(f)
    name, version, plugins = conflist["name"], conflist["cniVersion"], conflist["plugins"]
    cache = f"{conflist_path}.{container_id}.result.json"
    if command == "ADD":
        prev = None
        for p in plugins:
            prev = run(p, "ADD", netns, container_id, args, name, version, prev)
        with open(cache, "w") as f:
            json.dump(prev, f)
        print(json.dumps(prev))
    elif command == "CHECK":
        with open(cache) as f:
            prev = json.load(f)
        for p in plugins:
            run(p, "CHECK", netns, container_id, args, name, version, prev)
    elif command == "DEL":
        prev = None
        if os.path.exists(cache):
            with open(cache) as f:
                prev = json.load(f)
        for p in reversed(plugins):
            run(p, "DEL", netns, container_id, args, name, version, prev)
        if os.path.exists(cache):
            os.remove(cache)
    else:
        sys.stderr.write(f"cni-exec: unknown command {command}\n")
        sys.exit(2)


if __name__ == "__main__":
    main()
