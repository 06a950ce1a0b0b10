#!/usr/bin/env python3
"""Two ways for a new process to take over a listening TCP port from an old one, under load (issue 12, section 4).

  reuseport: the new process binds its own socket with SO_REUSEPORT next to the old one; the old one closes its socket
             once the new one listens. The kernel splits new connections between the two sockets' accept queues, so
             whatever sits in the old queue when it closes is reset.
  handover:  the old process passes its listening socket to the new one over a unix socket (SCM_RIGHTS); both accept
             from the one queue, then the old one closes its descriptor. The socket itself never closes.

A client opens connections to 127.0.0.1 (loopback only) at --rate per second, each reading a one-line answer; every
--period seconds the port changes hands. Prints connections attempted / answered / refused / reset per mode.
Usage: perf/listener-handover.py [--rate 2000] [--handovers 20] [--period 0.25]
"""
import argparse, os, shutil, socket, tempfile, threading, time
from multiprocessing import Process, Pipe


def listener(port, reuseport):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuseport:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    s.bind(("127.0.0.1", port))
    s.listen(1024)
    return s


def generation(mode, port, path, first, ctrl, delay):
    """One server process. reuseport: binds its own socket; stops when the parent says so. handover: takes the socket
    from the previous generation over `path`, serves `path` for the next one, stops when the next one says READY."""
    stop = threading.Event()
    if mode == "reuseport" or first:
        sock = listener(port, mode == "reuseport")
    else:
        with socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET) as h:
            h.connect(path)
            _, fds, _, _ = socket.recv_fds(h, 16, 1)
            sock = socket.socket(fileno=fds[0])
            h.sendall(b"READY")  # as the agent does once it accepts: the old one may let go
            h.recv(16)
    if mode == "handover":
        hs = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        tmp = f"{path}.{os.getpid()}"
        hs.bind(tmp)
        hs.listen(1)
        os.rename(tmp, path)

        def hand_over():
            c, _ = hs.accept()
            socket.send_fds(c, [b"sock"], [sock.fileno()])
            c.recv(16)
            stop.set()
            c.sendall(b"RELEASED")
            c.close()
        threading.Thread(target=hand_over, daemon=True).start()
    else:
        threading.Thread(target=lambda: (ctrl.recv(), stop.set()), daemon=True).start()
    ctrl.send("listening")
    sock.settimeout(0.01)
    while not stop.is_set():
        try:
            c, _ = sock.accept()
        except (socket.timeout, BlockingIOError):
            continue
        with c:
            if delay:
                time.sleep(delay)  # a busy accept loop: connections queue up behind it
            c.sendall(b"ok\n")
    sock.close()


def client(port, rate, stop, counts, lock):
    def one():
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=5) as c:
                data = c.recv(16)
            kind = "answered" if data == b"ok\n" else "reset"
        except ConnectionRefusedError:
            kind = "refused"
        except (ConnectionResetError, BrokenPipeError):
            kind = "reset"
        except TimeoutError:
            kind = "timeout"  # the client's 5 s: an overloaded machine, not a hand-over
        except OSError:
            kind = "other"
        with lock:
            counts[kind] += 1
    start, i = time.monotonic(), 0
    while not stop.is_set():
        i += 1
        with lock:
            counts["attempted"] += 1
        threading.Thread(target=one, daemon=True).start()
        time.sleep(max(0, start + i / rate - time.monotonic()))


def run(mode, rate, handovers, period, delay, workdir):
    port = free_port()
    path = os.path.join(workdir, f"{mode}.sock")
    counts = dict(attempted=0, answered=0, refused=0, reset=0, timeout=0, other=0)
    lock, stop = threading.Lock(), threading.Event()

    def start(first):
        parent, child = Pipe()
        p = Process(target=generation, args=(mode, port, path, first, child, delay), daemon=True)
        p.start()
        parent.recv()  # listening
        return p, parent
    current = start(True)
    ct = threading.Thread(target=client, args=(port, rate, stop, counts, lock), daemon=True)
    ct.start()
    for _ in range(handovers):
        time.sleep(period)
        nxt = start(False)
        if mode == "reuseport":
            current[1].send("stop")  # the new socket listens: the old one closes
        current[0].join(10)
        current = nxt
    time.sleep(period)
    stop.set()
    ct.join()
    time.sleep(1)
    current[0].kill()
    return counts


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rate", type=float, default=2000)
    ap.add_argument("--handovers", type=int, default=20)
    ap.add_argument("--period", type=float, default=0.25)
    ap.add_argument("--delay", type=float, default=0.0005, help="seconds each accept takes to answer (queues build up)")
    args = ap.parse_args()
    workdir = tempfile.mkdtemp(prefix="listener-handover-")
    try:
        for mode in ("reuseport", "handover"):
            c = run(mode, args.rate, args.handovers, args.period, args.delay, workdir)
            print(f"{mode:10} {args.handovers} hand-overs at {args.rate:.0f} conn/s: attempted {c['attempted']}, answered {c['answered']}, "
                  f"refused {c['refused']}, reset {c['reset']}, timed out {c['timeout']}, other {c['other']}", flush=True)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
