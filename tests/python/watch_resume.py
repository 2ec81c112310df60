"""Watch ConfigMaps on one master, keep writing through another, lose the first master, resume
the watch on the second with the last resourceVersion seen: every event must arrive exactly once,
in order (compared with a replay of the same history from the second master).

usage: watch_resume.py <kubeconfig of the first master> <kubeconfig of the second master>
"""
import sys
import threading
import time

from kubernetes import client, config

first = client.CoreV1Api(config.new_client_from_config(sys.argv[1]))
second = client.CoreV1Api(config.new_client_from_config(sys.argv[2]))
NS = "default"
SEL = "watchtest=1"

start_rv = second.list_namespaced_config_map(NS, label_selector=SEL).metadata.resource_version
seen = []
done = threading.Event()


def writer():
    # About 8 seconds of changes: creates, updates and deletes, through the second master.
    for i in range(80):
        name = "wr-%03d" % i
        body = client.V1ConfigMap(metadata=client.V1ObjectMeta(name=name, labels={"watchtest": "1"}), data={"n": str(i)})
        for attempt in range(50):
            try:
                second.create_namespaced_config_map(NS, body)
                if i % 3 == 0:
                    second.patch_namespaced_config_map(name, NS, {"data": {"n": "patched"}})
                if i % 5 == 0:
                    second.delete_namespaced_config_map(name, NS)
                break
            except client.ApiException as e:
                if e.status in (409,):
                    break
                time.sleep(0.1)
        time.sleep(0.1)
    done.set()


def watch_from(api, rv, until_done):
    """Streams events from rv; returns (last rv, finished normally)."""
    last = rv
    try:
        resp = api.list_namespaced_config_map(NS, label_selector=SEL, watch=True, resource_version=rv,
                                              timeout_seconds=30, _preload_content=False)
        import json
        buf = b""
        for chunk in resp.stream(1024):
            buf += chunk
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                if not line.strip():
                    continue
                ev = json.loads(line)
                if ev["type"] == "ERROR":
                    raise RuntimeError("watch error: %s" % ev["object"])
                if ev["type"] == "BOOKMARK":
                    continue
                md = ev["object"]["metadata"]
                seen.append((ev["type"], md["name"], md["resourceVersion"]))
                last = md["resourceVersion"]
            if until_done and done.is_set():
                time.sleep(1.0)
                return last, True
    except Exception as e:  # the master went away mid-stream
        print("first watch ended:", type(e).__name__, file=sys.stderr)
        return last, False
    return last, True


t = threading.Thread(target=writer)
t.start()
last, ok = watch_from(first, start_rv, until_done=False)
print("resuming on the second master from", last, file=sys.stderr)
# Resume on the second master; stop once the writer is finished and the stream is drained.
resumed_from = last
watch_thread_result = {}


def resume():
    watch_thread_result["r"] = watch_from(second, resumed_from, until_done=True)


r = threading.Thread(target=resume)
r.start()
t.join()
r.join(timeout=40)

# Reference: replay the whole history from the second master.
reference = []
import json
resp = second.list_namespaced_config_map(NS, label_selector=SEL, watch=True, resource_version=start_rv,
                                        timeout_seconds=3, _preload_content=False)
for line in resp.read().split(b"\n"):
    if line.strip():
        ev = json.loads(line)
        if ev["type"] in ("ADDED", "MODIFIED", "DELETED"):
            md = ev["object"]["metadata"]
            reference.append((ev["type"], md["name"], md["resourceVersion"]))

if seen != reference:
    print("MISMATCH: %d seen, %d in reference" % (len(seen), len(reference)))
    dup = len(seen) - len(set(seen))
    print("duplicates:", dup)
    missing = [e for e in reference if e not in seen]
    print("missing:", missing[:10])
    sys.exit(1)
if len(reference) < 100:
    print("too few events:", len(reference))
    sys.exit(1)
revs = [int(e[2]) for e in seen]
if revs != sorted(revs):
    print("events out of order")
    sys.exit(1)
print("OK: %d events, each exactly once, in order, across the failover (resumed at %s)" % (len(seen), resumed_from))
