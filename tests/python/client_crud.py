"""CRUD, list, watch, patch and errors through the official Kubernetes Python client.

usage: client_crud.py <kubeconfig>
"""
import sys
import threading
import time

from kubernetes import client, config, watch

api = config.new_client_from_config(sys.argv[1])
core = client.CoreV1Api(api)
apps = client.AppsV1Api(api)
batch = client.BatchV1Api(api)


def check(cond, msg):
    if not cond:
        print("FAILED:", msg)
        sys.exit(1)


# Namespaces and version.
names = [n.metadata.name for n in core.list_namespace().items]
check({"default", "kube-system", "kube-public", "kube-node-lease"} <= set(names), names)
ver = client.VersionApi(api).get_code()
check(ver.minor == "33", ver)
core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name="py")))

# ConfigMap: create, read, replace, stale replace, patch, list with selector, delete.
cm = core.create_namespaced_config_map("py", client.V1ConfigMap(
    metadata=client.V1ObjectMeta(name="c1", labels={"app": "py"}), data={"k": "v"}))
check(cm.metadata.uid and cm.metadata.resource_version and cm.metadata.creation_timestamp, cm.metadata)
got = core.read_namespaced_config_map("c1", "py")
check(got.data == {"k": "v"}, got.data)
got.data["k"] = "v2"
rep = core.replace_namespaced_config_map("c1", "py", got)
check(int(rep.metadata.resource_version) > int(got.metadata.resource_version), "resourceVersion moves")
try:
    core.replace_namespaced_config_map("c1", "py", got)
    check(False, "stale replace must conflict")
except client.ApiException as e:
    check(e.status == 409, e.status)
p = core.patch_namespaced_config_map("c1", "py", {"data": {"k2": "x"}})
check(p.data == {"k": "v2", "k2": "x"}, p.data)
try:
    core.create_namespaced_config_map("py", client.V1ConfigMap(metadata=client.V1ObjectMeta(name="c1")))
    check(False, "duplicate create must fail")
except client.ApiException as e:
    check(e.status == 409, e.status)
sel = core.list_namespaced_config_map("py", label_selector="app=py")
check([i.metadata.name for i in sel.items] == ["c1"], sel.items)
gen = core.create_namespaced_config_map("py", client.V1ConfigMap(metadata=client.V1ObjectMeta(generate_name="gen-")))
check(gen.metadata.name.startswith("gen-") and len(gen.metadata.name) == 9, gen.metadata.name)

# Deployment with the scale subresource.
dep = client.V1Deployment(
    metadata=client.V1ObjectMeta(name="d1"),
    spec=client.V1DeploymentSpec(
        replicas=1,
        selector=client.V1LabelSelector(match_labels={"app": "d1"}),
        template=client.V1PodTemplateSpec(
            metadata=client.V1ObjectMeta(labels={"app": "d1"}),
            spec=client.V1PodSpec(containers=[client.V1Container(name="c", image="busybox")]))))
d = apps.create_namespaced_deployment("py", dep)
check(d.spec.strategy.type == "RollingUpdate", d.spec.strategy)
check(d.spec.template.spec.containers[0].image_pull_policy == "Always", d.spec.template.spec.containers[0])
scale = apps.read_namespaced_deployment_scale("d1", "py")
check(scale.spec.replicas == 1, scale)
apps.patch_namespaced_deployment_scale("d1", "py", {"spec": {"replicas": 4}})
check(apps.read_namespaced_deployment("d1", "py").spec.replicas == 4, "scaled")

# A Job and a Pod with defaults.
job = batch.create_namespaced_job("py", client.V1Job(
    metadata=client.V1ObjectMeta(name="j1"),
    spec=client.V1JobSpec(template=client.V1PodTemplateSpec(spec=client.V1PodSpec(
        restart_policy="Never", containers=[client.V1Container(name="c", image="busybox:1.36")])))))
check(job.spec.backoff_limit == 6, job.spec.backoff_limit)
pod = core.create_namespaced_pod("py", client.V1Pod(
    metadata=client.V1ObjectMeta(name="p1"),
    spec=client.V1PodSpec(containers=[client.V1Container(name="c", image="busybox:1.36")])))
check(pod.status.phase == "Pending" and pod.spec.restart_policy == "Always", pod.status)
check(pod.spec.containers[0].image_pull_policy == "IfNotPresent", pod.spec.containers[0])

# Invalid objects: 422 with causes.
try:
    core.create_namespaced_pod("py", client.V1Pod(metadata=client.V1ObjectMeta(name="bad"),
                                                  spec=client.V1PodSpec(containers=[client.V1Container(name="c", image="")])))
    check(False, "invalid pod must be refused")
except client.ApiException as e:
    check(e.status == 422, e.status)

# Watch: events of later changes.
rv = core.list_namespaced_config_map("py").metadata.resource_version
events = []


def later():
    time.sleep(0.5)
    core.create_namespaced_config_map("py", client.V1ConfigMap(metadata=client.V1ObjectMeta(name="w1")))
    core.patch_namespaced_config_map("w1", "py", {"data": {"a": "b"}})
    core.delete_namespaced_config_map("w1", "py")


threading.Thread(target=later).start()
w = watch.Watch()
for ev in w.stream(core.list_namespaced_config_map, "py", resource_version=rv, timeout_seconds=10):
    if ev["object"].metadata.name == "w1":
        events.append(ev["type"])
    if ev["type"] == "DELETED":
        w.stop()
check(events == ["ADDED", "MODIFIED", "DELETED"], events)

# Delete the namespace: it terminates and takes its contents.
core.delete_namespace("py")
deadline = time.time() + 20
while time.time() < deadline:
    try:
        core.read_namespace("py")
        time.sleep(0.2)
    except client.ApiException as e:
        check(e.status == 404, e.status)
        break
else:
    check(False, "namespace py still exists")
check(core.list_namespaced_config_map("py").items == [], "contents deleted")
print("ALL OK")
