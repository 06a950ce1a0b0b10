#!/usr/bin/env python3
"""Opens RATE connections per second to HOST:PORT (each: an HTTP/1.1 GET, the whole answer, close) until the file STOP
appears or LIMIT seconds pass, and counts every outcome: answered (the body holds EXPECT), refused, reset, closed
without an answer, timed out, other. Prints PROGRESS lines every second and one RESULT line of JSON at the end.
Used by tests/Ztunnel.Tests/InPod/UpgradeHandoverTests.cs and daemonset/node-test.sh (upgrades under load).
Usage: conn-load.py HOST PORT RATE STOP LIMIT [EXPECT]
"""
import asyncio, json, os, sys, time
host, port, rate, stop, limit = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), sys.argv[4], float(sys.argv[5])
expect = (sys.argv[6] if len(sys.argv) > 6 else "hello from server").encode()
counts = dict(attempted=0, ok=0, refused=0, reset=0, closed=0, timeout=0, other=0)
samples = []
def fail(kind, i, what):
    counts[kind] += 1
    if len(samples) < 10:
        samples.append(f"{i}: {kind}: {what}")
async def one(i):
    try:
        r, w = await asyncio.wait_for(asyncio.open_connection(host, port), 10)
        try:
            w.write(f"GET /?load={i} HTTP/1.1\r\nHost: server\r\nConnection: close\r\n\r\n".encode())
            await w.drain()
            data = await asyncio.wait_for(r.read(), 10)
        finally:
            w.close()
        if expect in data:
            counts["ok"] += 1
        elif not data:
            fail("closed", i, "connection closed without an answer")
        else:
            fail("other", i, repr(data[:80]))
    except ConnectionRefusedError as e:
        fail("refused", i, e)
    except (ConnectionResetError, BrokenPipeError) as e:
        fail("reset", i, e)
    except asyncio.TimeoutError:
        fail("timeout", i, "no answer within 10 s")
    except OSError as e:
        fail("other", i, e)
async def main():
    start = time.monotonic()
    tasks, i, last = [], 0, start
    while not os.path.exists(stop) and time.monotonic() - start < limit:
        i += 1
        counts["attempted"] += 1
        tasks.append(asyncio.create_task(one(i)))
        now = time.monotonic()
        if now - last >= 1:
            last = now
            print(f"PROGRESS {json.dumps(counts)}", flush=True)
        await asyncio.sleep(max(0, start + i / rate - time.monotonic()))
    seconds = time.monotonic() - start
    await asyncio.gather(*tasks)
    print("RESULT " + json.dumps(dict(counts, seconds=seconds, samples=samples)), flush=True)
asyncio.run(main())
