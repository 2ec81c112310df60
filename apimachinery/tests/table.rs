//! Table output checked against what kube-apiserver 1.33 prints for the same objects.

use std::time::Duration;

use apimachinery::registry::{self, ResourceInfo};
use apimachinery::table::{column_definitions, human_duration, row_cells, to_table};
use jiff::{SignedDuration, Timestamp};
use serde_json::{Value, json};

fn now() -> Timestamp {
    "2025-06-01T12:00:00Z".parse().unwrap()
}

/// `now` minus `secs`, as an RFC3339 string.
fn ago(secs: i64) -> String {
    (now() - SignedDuration::from_secs(secs)).strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

fn res(group: &str, plural: &str) -> &'static ResourceInfo {
    registry::resources().iter().find(|r| r.group == group && r.plural == plural).unwrap_or_else(|| panic!("{group}/{plural} not served"))
}

fn cells(group: &str, plural: &str, obj: &Value) -> Vec<Value> {
    row_cells(res(group, plural), obj, now())
}

/// Column name → cell, for readable assertions.
fn cell<'a>(info: &ResourceInfo, cells: &'a [Value], column: &str) -> &'a Value {
    let i = column_definitions(info).iter().position(|c| c["name"] == column).unwrap_or_else(|| panic!("no column {column}"));
    &cells[i]
}

fn col_summary(info: &ResourceInfo) -> Vec<(String, String, String, i64)> {
    column_definitions(info)
        .iter()
        .map(|c| (c["name"].as_str().unwrap().to_string(), c["type"].as_str().unwrap().to_string(), c["format"].as_str().unwrap().to_string(), c["priority"].as_i64().unwrap()))
        .collect()
}

#[test]
fn human_duration_follows_kubernetes_rules() {
    let cases: &[(u64, &str)] = &[
        (0, "0s"),
        (5, "5s"),
        (119, "119s"),
        (120, "2m"),
        (200, "3m20s"),
        (599, "9m59s"),
        (600, "10m"),
        (179 * 60 + 59, "179m"),
        (3 * 3600, "3h"),
        (5 * 3600 + 3 * 60, "5h3m"),
        (8 * 3600 + 59 * 60, "8h"),
        (47 * 3600, "47h"),
        (48 * 3600, "2d"),
        (2 * 86400 + 5 * 3600, "2d5h"),
        (8 * 86400, "8d"),
        (20 * 86400, "20d"),
        (729 * 86400, "729d"),
        (730 * 86400, "2y"),
        ((2 * 365 + 150) * 86400, "2y150d"),
        (8 * 365 * 86400, "8y"),
    ];
    for (secs, want) in cases {
        assert_eq!(human_duration(Duration::from_secs(*secs)), *want, "{secs}s");
    }
    assert_eq!(human_duration(Duration::from_millis(1999)), "1s");
}

#[test]
fn age_tolerates_small_clock_skew_and_unknown_timestamps() {
    let cm = res("", "configmaps");
    let at = |ts: Value| row_cells(cm, &json!({"metadata": {"name": "a", "creationTimestamp": ts}}), now())[2].clone();
    assert_eq!(at(json!(ago(-1))), "0s");
    assert_eq!(at(json!(ago(-10))), "<invalid>");
    assert_eq!(at(json!(ago(90))), "90s");
    assert_eq!(at(Value::Null), "<unknown>");
    assert_eq!(row_cells(cm, &json!({}), now())[2], "<unknown>");
}

fn container(name: &str, state: Value, ready: bool, restarts: i64) -> Value {
    json!({"name": name, "state": state, "ready": ready, "restartCount": restarts})
}

fn pod(containers: &[&str], init: &[&str], status: Value) -> Value {
    let spec_containers: Vec<Value> = containers.iter().map(|n| json!({"name": n, "image": "busybox"})).collect();
    let spec_init: Vec<Value> = init.iter().map(|n| json!({"name": n, "image": "busybox"})).collect();
    json!({
        "metadata": {"name": "p", "namespace": "default", "creationTimestamp": ago(300)},
        "spec": {"containers": spec_containers, "initContainers": spec_init},
        "status": status,
    })
}

#[test]
fn pod_ready_status_and_restarts() {
    let running = json!({"running": {"startedAt": ago(100)}});
    let cases: Vec<(&str, Value, &str, &str, &str)> = vec![
        (
            "running",
            pod(&["a", "b"], &[], json!({"phase": "Running", "containerStatuses": [container("a", running.clone(), true, 0), container("b", running.clone(), true, 0)]})),
            "2/2",
            "Running",
            "0",
        ),
        (
            "partially ready",
            pod(&["a", "b"], &[], json!({"phase": "Running", "containerStatuses": [container("a", running.clone(), true, 0), container("b", running.clone(), false, 0)]})),
            "1/2",
            "Running",
            "0",
        ),
        ("pending without statuses", pod(&["a"], &[], json!({"phase": "Pending"})), "0/1", "Pending", "0"),
        ("no status at all", pod(&["a"], &[], json!({})), "0/1", "Pending", "0"),
        (
            "container creating",
            pod(&["a"], &[], json!({"phase": "Pending", "containerStatuses": [container("a", json!({"waiting": {"reason": "ContainerCreating"}}), false, 0)]})),
            "0/1",
            "ContainerCreating",
            "0",
        ),
        (
            "crash loop",
            pod(
                &["a"],
                &[],
                json!({"phase": "Running", "containerStatuses": [{
                    "name": "a", "ready": false, "restartCount": 4,
                    "state": {"waiting": {"reason": "CrashLoopBackOff"}},
                    "lastState": {"terminated": {"exitCode": 1, "reason": "Error", "finishedAt": ago(5)}},
                }]}),
            ),
            "0/1",
            "CrashLoopBackOff",
            "4 (5s ago)",
        ),
        (
            "completed",
            pod(&["a"], &[], json!({"phase": "Succeeded", "containerStatuses": [container("a", json!({"terminated": {"exitCode": 0, "reason": "Completed"}}), false, 0)]})),
            "0/1",
            "Completed",
            "0",
        ),
        (
            "error",
            pod(&["a"], &[], json!({"phase": "Failed", "containerStatuses": [container("a", json!({"terminated": {"exitCode": 1, "reason": "Error"}}), false, 0)]})),
            "0/1",
            "Error",
            "0",
        ),
        (
            "exit code without reason",
            pod(&["a"], &[], json!({"phase": "Failed", "containerStatuses": [container("a", json!({"terminated": {"exitCode": 2}}), false, 0)]})),
            "0/1",
            "ExitCode:2",
            "0",
        ),
        (
            "signal without reason",
            pod(&["a"], &[], json!({"phase": "Failed", "containerStatuses": [container("a", json!({"terminated": {"exitCode": 137, "signal": 9}}), false, 0)]})),
            "0/1",
            "Signal:9",
            "0",
        ),
        (
            "first init container running",
            pod(
                &["a"],
                &["i1", "i2"],
                json!({"phase": "Pending",
                    "initContainerStatuses": [container("i1", running.clone(), false, 0), container("i2", json!({"waiting": {"reason": "PodInitializing"}}), false, 0)],
                    "containerStatuses": [container("a", json!({"waiting": {"reason": "PodInitializing"}}), false, 0)]}),
            ),
            "0/1",
            "Init:0/2",
            "0",
        ),
        (
            "second init container running",
            pod(
                &["a"],
                &["i1", "i2"],
                json!({"phase": "Pending",
                    "initContainerStatuses": [container("i1", json!({"terminated": {"exitCode": 0, "reason": "Completed"}}), false, 0), container("i2", running.clone(), false, 0)]}),
            ),
            "0/1",
            "Init:1/2",
            "0",
        ),
        (
            "init container crash looping",
            pod(
                &["a"],
                &["i1"],
                json!({"phase": "Pending",
                    "initContainerStatuses": [{"name": "i1", "ready": false, "restartCount": 3, "state": {"waiting": {"reason": "CrashLoopBackOff"}},
                        "lastState": {"terminated": {"exitCode": 1, "finishedAt": ago(130)}}}],
                    "containerStatuses": [container("a", json!({"waiting": {"reason": "PodInitializing"}}), false, 0)]}),
            ),
            "0/1",
            "Init:CrashLoopBackOff",
            "3 (2m10s ago)",
        ),
        (
            "init container failed",
            pod(&["a"], &["i1"], json!({"phase": "Pending", "initContainerStatuses": [container("i1", json!({"terminated": {"exitCode": 1, "reason": "Error"}}), false, 0)]})),
            "0/1",
            "Init:Error",
            "0",
        ),
        (
            "terminating",
            {
                let mut p = pod(&["a"], &[], json!({"phase": "Running", "containerStatuses": [container("a", running.clone(), true, 0)]}));
                p["metadata"]["deletionTimestamp"] = json!(ago(3));
                p
            },
            "1/1",
            "Terminating",
            "0",
        ),
        (
            "deleted after success stays completed",
            {
                let mut p = pod(&["a"], &[], json!({"phase": "Succeeded", "containerStatuses": [container("a", json!({"terminated": {"exitCode": 0, "reason": "Completed"}}), false, 0)]}));
                p["metadata"]["deletionTimestamp"] = json!(ago(3));
                p
            },
            "0/1",
            "Completed",
            "0",
        ),
        (
            "node lost",
            {
                let mut p = pod(&["a"], &[], json!({"phase": "Running", "reason": "NodeLost"}));
                p["metadata"]["deletionTimestamp"] = json!(ago(3));
                p
            },
            "0/1",
            "Unknown",
            "0",
        ),
        (
            "evicted",
            pod(&["a"], &[], json!({"phase": "Failed", "reason": "Evicted"})),
            "0/1",
            "Evicted",
            "0",
        ),
        (
            "scheduling gated",
            pod(&["a"], &[], json!({"phase": "Pending", "conditions": [{"type": "PodScheduled", "status": "False", "reason": "SchedulingGated"}]})),
            "0/1",
            "SchedulingGated",
            "0",
        ),
        (
            "one container completed, one running and ready",
            pod(
                &["a", "b"],
                &[],
                json!({"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}],
                    "containerStatuses": [container("a", running.clone(), true, 0), container("b", json!({"terminated": {"exitCode": 0, "reason": "Completed"}}), false, 0)]}),
            ),
            "1/2",
            "Running",
            "0",
        ),
        (
            "one container completed, one running, pod not ready",
            pod(
                &["a", "b"],
                &[],
                json!({"phase": "Running",
                    "containerStatuses": [container("a", running.clone(), true, 0), container("b", json!({"terminated": {"exitCode": 0, "reason": "Completed"}}), false, 0)]}),
            ),
            "1/2",
            "NotReady",
            "0",
        ),
        (
            "restarts summed, latest termination wins",
            pod(
                &["a", "b"],
                &[],
                json!({"phase": "Running", "containerStatuses": [
                    {"name": "a", "ready": true, "restartCount": 1, "state": {"running": {}}, "lastState": {"terminated": {"exitCode": 1, "finishedAt": ago(3600)}}},
                    {"name": "b", "ready": true, "restartCount": 2, "state": {"running": {}}, "lastState": {"terminated": {"exitCode": 1, "finishedAt": ago(200)}}},
                ]}),
            ),
            "2/2",
            "Running",
            "3 (3m20s ago)",
        ),
        (
            "restarts without a termination time",
            pod(&["a"], &[], json!({"phase": "Running", "containerStatuses": [container("a", running.clone(), true, 2)]})),
            "1/1",
            "Running",
            "2",
        ),
    ];
    let pods = res("", "pods");
    for (what, obj, ready, status, restarts) in cases {
        let c = row_cells(pods, &obj, now());
        assert_eq!(cell(pods, &c, "Name"), "p", "{what}");
        assert_eq!(cell(pods, &c, "Ready"), ready, "{what}: ready");
        assert_eq!(cell(pods, &c, "Status"), status, "{what}: status");
        assert_eq!(cell(pods, &c, "Restarts"), restarts, "{what}: restarts");
        assert_eq!(cell(pods, &c, "Age"), "5m", "{what}: age");
    }
}

#[test]
fn pod_sidecar_init_containers_count_towards_ready() {
    let obj = json!({
        "metadata": {"name": "p"},
        "spec": {"initContainers": [{"name": "proxy", "restartPolicy": "Always"}], "containers": [{"name": "app"}]},
        "status": {"phase": "Running", "conditions": [{"type": "Initialized", "status": "True"}],
            "initContainerStatuses": [{"name": "proxy", "started": true, "ready": true, "restartCount": 1, "state": {"running": {}}}],
            "containerStatuses": [{"name": "app", "ready": true, "restartCount": 0, "state": {"running": {}}}]},
    });
    let c = cells("", "pods", &obj);
    assert_eq!(c[1], "2/2");
    assert_eq!(c[2], "Running");
    assert_eq!(c[3], "1");
}

#[test]
fn pod_wide_cells() {
    let obj = json!({
        "metadata": {"name": "p"},
        "spec": {"containers": [{"name": "a"}], "nodeName": "n1", "readinessGates": [{"conditionType": "x/one"}, {"conditionType": "x/two"}]},
        "status": {"phase": "Running", "podIPs": [{"ip": "10.0.0.5"}, {"ip": "fd00::5"}],
            "conditions": [{"type": "x/one", "status": "True"}, {"type": "x/two", "status": "False"}]},
    });
    let c = cells("", "pods", &obj);
    assert_eq!(&c[5..], &[json!("10.0.0.5"), json!("n1"), json!("<none>"), json!("1/2")]);
    let bare = cells("", "pods", &json!({"metadata": {"name": "p"}, "status": {"podIP": "10.0.0.9"}}));
    assert_eq!(&bare[5..], &[json!("10.0.0.9"), json!("<none>"), json!("<none>"), json!("<none>")]);
}

#[test]
fn pod_columns_match_kube_apiserver() {
    let s = |n: &str, t: &str, f: &str, p: i64| (n.to_string(), t.to_string(), f.to_string(), p);
    assert_eq!(
        col_summary(res("", "pods")),
        vec![
            s("Name", "string", "name", 0),
            s("Ready", "string", "", 0),
            s("Status", "string", "", 0),
            s("Restarts", "string", "", 0),
            s("Age", "string", "", 0),
            s("IP", "string", "", 1),
            s("Node", "string", "", 1),
            s("Nominated Node", "string", "", 1),
            s("Readiness Gates", "string", "", 1),
        ]
    );
    let defs = column_definitions(res("", "pods"));
    assert!(defs[0]["description"].as_str().unwrap().starts_with("Name must be unique within a namespace."));
    assert!(defs[4]["description"].as_str().unwrap().starts_with("CreationTimestamp is a timestamp"));
    assert!(defs[5]["description"].as_str().unwrap().contains("IP address allocated to the pod"));
    assert_eq!(defs[1]["description"], "The aggregate readiness state of this pod for accepting traffic.");
}

#[test]
fn service_cells() {
    let svc = |spec: Value, status: Value| json!({"metadata": {"name": "s", "creationTimestamp": ago(30)}, "spec": spec, "status": status});
    let cases: Vec<(&str, Value, [&str; 5], &str)> = vec![
        (
            "cluster ip",
            svc(json!({"type": "ClusterIP", "clusterIP": "10.96.0.10", "clusterIPs": ["10.96.0.10"], "ports": [{"port": 80, "protocol": "TCP"}, {"port": 53, "protocol": "UDP"}], "selector": {"tier": "fe", "app": "web"}}), json!({})),
            ["ClusterIP", "10.96.0.10", "<none>", "80/TCP,53/UDP", "30s"],
            "app=web,tier=fe",
        ),
        (
            "node port",
            svc(json!({"type": "NodePort", "clusterIPs": ["10.96.0.11"], "ports": [{"port": 80, "nodePort": 30080, "protocol": "TCP"}]}), json!({})),
            ["NodePort", "10.96.0.11", "<none>", "80:30080/TCP", "30s"],
            "<none>",
        ),
        (
            "external name",
            svc(json!({"type": "ExternalName", "externalName": "db.example.com"}), json!({})),
            ["ExternalName", "<none>", "db.example.com", "<none>", "30s"],
            "<none>",
        ),
        (
            "load balancer pending",
            svc(json!({"type": "LoadBalancer", "clusterIPs": ["10.96.0.12"], "ports": [{"port": 443, "nodePort": 31443}]}), json!({"loadBalancer": {}})),
            ["LoadBalancer", "10.96.0.12", "<pending>", "443:31443/TCP", "30s"],
            "<none>",
        ),
        (
            "load balancer with ingress and external ips",
            svc(json!({"type": "LoadBalancer", "clusterIPs": ["10.96.0.12"], "externalIPs": ["1.2.3.4"], "ports": [{"port": 80, "nodePort": 30001, "protocol": "TCP"}]}),
                json!({"loadBalancer": {"ingress": [{"ip": "203.0.113.9"}, {"hostname": "lb.example.com"}]}})),
            ["LoadBalancer", "10.96.0.12", "203.0.113.9,lb.example.com,1.2.3.4", "80:30001/TCP", "30s"],
            "<none>",
        ),
        (
            "headless with external ips",
            svc(json!({"clusterIP": "None", "clusterIPs": ["None"], "externalIPs": ["1.2.3.4", "5.6.7.8"], "ports": [{"port": 5432, "protocol": "TCP"}]}), json!({})),
            ["ClusterIP", "None", "1.2.3.4,5.6.7.8", "5432/TCP", "30s"],
            "<none>",
        ),
    ];
    for (what, obj, want, selector) in cases {
        let c = cells("", "services", &obj);
        assert_eq!(c[0], "s", "{what}");
        let got: Vec<&str> = c[1..6].iter().map(|v| v.as_str().unwrap()).collect();
        assert_eq!(got, want, "{what}");
        assert_eq!(c[6], selector, "{what}");
    }
}

#[test]
fn deployment_replicaset_statefulset_daemonset_cells() {
    let template = json!({"spec": {"containers": [{"name": "web", "image": "nginx:1.27"}, {"name": "log", "image": "fluentbit"}]}});
    let deploy = json!({
        "metadata": {"name": "web", "creationTimestamp": ago(7200)},
        "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}, "matchExpressions": [{"key": "env", "operator": "In", "values": ["prod", "dev"]}]}, "template": template},
        "status": {"replicas": 3, "readyReplicas": 2, "updatedReplicas": 3, "availableReplicas": 2},
    });
    let d = res("apps", "deployments");
    let c = row_cells(d, &deploy, now());
    assert_eq!(c, vec![json!("web"), json!("2/3"), json!(3), json!(2), json!("120m"), json!("web,log"), json!("nginx:1.27,fluentbit"), json!("app=web,env in (dev,prod)")]);
    assert_eq!(
        col_summary(d).iter().map(|(n, _, _, p)| (n.as_str(), *p)).collect::<Vec<_>>(),
        vec![("Name", 0), ("Ready", 0), ("Up-to-date", 0), ("Available", 0), ("Age", 0), ("Containers", 1), ("Images", 1), ("Selector", 1)]
    );
    // A fresh deployment without status.
    let fresh = row_cells(d, &json!({"metadata": {"name": "new"}, "spec": {"replicas": 2}}), now());
    assert_eq!(&fresh[1..4], &[json!("0/2"), json!(0), json!(0)]);

    let rs = row_cells(res("apps", "replicasets"), &json!({"metadata": {"name": "web-abc"}, "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}}, "template": template}, "status": {"replicas": 3, "readyReplicas": 1}}), now());
    assert_eq!(&rs[1..4], &[json!(3), json!(3), json!(1)]);
    assert_eq!(rs[7], "app=web");

    let sts = row_cells(res("apps", "statefulsets"), &json!({"metadata": {"name": "db"}, "spec": {"replicas": 3, "template": template}, "status": {"readyReplicas": 3}}), now());
    assert_eq!(sts[1], "3/3");
    assert_eq!(sts.len(), 5);

    let ds = row_cells(
        res("apps", "daemonsets"),
        &json!({"metadata": {"name": "agent"}, "spec": {"selector": {"matchLabels": {"app": "agent"}}, "template": {"spec": {"nodeSelector": {"kubernetes.io/os": "linux"}, "containers": [{"name": "a", "image": "agent:1"}]}}},
            "status": {"desiredNumberScheduled": 3, "currentNumberScheduled": 3, "numberReady": 2, "updatedNumberScheduled": 3, "numberAvailable": 2}}),
        now(),
    );
    assert_eq!(&ds[1..7], &[json!(3), json!(3), json!(2), json!(3), json!(2), json!("kubernetes.io/os=linux")]);
    assert_eq!(&ds[8..], &[json!("a"), json!("agent:1"), json!("app=agent")]);
}

#[test]
fn node_status_roles_and_wide_cells() {
    let node = |labels: Value, unschedulable: Value, conditions: Value| {
        json!({
            "metadata": {"name": "n1", "labels": labels, "creationTimestamp": ago(3 * 86400)},
            "spec": {"unschedulable": unschedulable},
            "status": {"conditions": conditions, "nodeInfo": {"kubeletVersion": "v1.33.0", "osImage": "Debian GNU/Linux 12", "kernelVersion": "6.1.0", "containerRuntimeVersion": "containerd://2.0.0"},
                "addresses": [{"type": "InternalIP", "address": "192.168.1.10"}, {"type": "Hostname", "address": "n1"}]},
        })
    };
    let ready = json!([{"type": "MemoryPressure", "status": "False"}, {"type": "Ready", "status": "True"}]);
    let cases: Vec<(&str, Value, &str, &str)> = vec![
        ("ready, no roles", node(json!({"kubernetes.io/hostname": "n1"}), json!(false), ready.clone()), "Ready", "<none>"),
        (
            "cordoned control plane",
            node(json!({"node-role.kubernetes.io/control-plane": "", "node-role.kubernetes.io/etcd": "true"}), json!(true), ready.clone()),
            "Ready,SchedulingDisabled",
            "control-plane,etcd",
        ),
        ("not ready worker", node(json!({"kubernetes.io/role": "worker", "node-role.kubernetes.io/": ""}), Value::Null, json!([{"type": "Ready", "status": "False"}])), "NotReady", "worker"),
        ("no ready condition", node(json!({}), json!(true), json!([])), "Unknown,SchedulingDisabled", "<none>"),
    ];
    let nodes = res("", "nodes");
    for (what, obj, status, roles) in cases {
        let c = row_cells(nodes, &obj, now());
        assert_eq!(cell(nodes, &c, "Status"), status, "{what}");
        assert_eq!(cell(nodes, &c, "Roles"), roles, "{what}");
        assert_eq!(cell(nodes, &c, "Age"), "3d", "{what}");
        assert_eq!(cell(nodes, &c, "Version"), "v1.33.0", "{what}");
        assert_eq!(&c[5..], &[json!("192.168.1.10"), json!("<none>"), json!("Debian GNU/Linux 12"), json!("6.1.0"), json!("containerd://2.0.0")], "{what}");
    }
    let bare = row_cells(nodes, &json!({"metadata": {"name": "n2"}}), now());
    assert_eq!(&bare[1..], &[json!("Unknown"), json!("<none>"), json!("<unknown>"), json!(""), json!("<none>"), json!("<none>"), json!("<unknown>"), json!("<unknown>"), json!("<unknown>")]);
}

#[test]
fn job_and_cronjob_cells() {
    let jobs = res("batch", "jobs");
    let job = |spec: Value, status: Value| json!({"metadata": {"name": "j", "creationTimestamp": ago(600)}, "spec": spec, "status": status});
    let cases: Vec<(&str, Value, [&str; 3])> = vec![
        (
            "complete",
            job(json!({"completions": 1}), json!({"succeeded": 1, "startTime": ago(600), "completionTime": ago(590), "conditions": [{"type": "Complete", "status": "True"}]})),
            ["Complete", "1/1", "10s"],
        ),
        ("running", job(json!({"completions": 3, "parallelism": 3}), json!({"succeeded": 1, "startTime": ago(65)})), ["Running", "1/3", "65s"]),
        ("work queue", job(json!({"parallelism": 4}), json!({})), ["Running", "0/1 of 4", ""]),
        ("failed", job(json!({}), json!({"startTime": ago(30), "conditions": [{"type": "FailureTarget", "status": "True"}, {"type": "Failed", "status": "True"}]})), ["Failed", "0/1", "30s"]),
        ("suspended", job(json!({"completions": 2}), json!({"conditions": [{"type": "Suspended", "status": "True"}]})), ["Suspended", "0/2", ""]),
    ];
    for (what, obj, want) in cases {
        let c = row_cells(jobs, &obj, now());
        let got: Vec<&str> = c[1..4].iter().map(|v| v.as_str().unwrap()).collect();
        assert_eq!(got, want, "{what}");
        assert_eq!(c[4], "10m", "{what}");
        assert_eq!(c[7], "<none>", "{what}");
    }
    let cj = row_cells(
        res("batch", "cronjobs"),
        &json!({"metadata": {"name": "c", "creationTimestamp": ago(86400)}, "spec": {"schedule": "*/5 * * * *", "jobTemplate": {"spec": {"template": {"spec": {"containers": [{"name": "t", "image": "busybox"}]}}}}},
            "status": {"active": [{"name": "c-1"}], "lastScheduleTime": ago(120)}}),
        now(),
    );
    assert_eq!(cj, vec![json!("c"), json!("*/5 * * * *"), json!("<none>"), json!("False"), json!(1), json!("2m"), json!("24h"), json!("t"), json!("busybox"), json!("<none>")]);
}

#[test]
fn endpoints_and_endpointslices() {
    let eps = json!({"metadata": {"name": "web"}, "subsets": [
        {"addresses": [{"ip": "10.0.0.1"}, {"ip": "10.0.0.2"}], "ports": [{"port": 80}, {"port": 443}]},
        {"addresses": [{"ip": "fd00::1"}], "ports": [{"port": 8080}]},
    ]});
    assert_eq!(cells("", "endpoints", &eps)[1], "10.0.0.1:80,10.0.0.2:80,10.0.0.1:443 + 2 more...");
    let few = json!({"metadata": {"name": "db"}, "subsets": [{"addresses": [{"ip": "fd00::1"}], "ports": [{"port": 5432}]}]});
    assert_eq!(cells("", "endpoints", &few)[1], "[fd00::1]:5432");
    assert_eq!(cells("", "endpoints", &json!({"metadata": {"name": "none"}}))[1], "<none>");

    let slice = json!({"metadata": {"name": "web-x"}, "addressType": "IPv4", "ports": [{"port": 80}, {"name": "http"}, {}, {"port": 9}],
        "endpoints": [{"addresses": ["10.0.0.1"]}, {"addresses": ["10.0.0.2"]}]});
    assert_eq!(&cells("discovery.k8s.io", "endpointslices", &slice)[1..4], &[json!("IPv4"), json!("80,http,* + 1 more..."), json!("10.0.0.1,10.0.0.2")]);
    let empty = json!({"metadata": {"name": "e"}, "addressType": "IPv4"});
    assert_eq!(&cells("discovery.k8s.io", "endpointslices", &empty)[2..4], &[json!("<unset>"), json!("<unset>")]);
}

#[test]
fn core_and_new_events_print_alike() {
    let core_event = json!({
        "metadata": {"name": "web.1"}, "type": "Warning", "reason": "BackOff", "message": " Back-off restarting failed container \n",
        "involvedObject": {"kind": "Pod", "name": "web", "fieldPath": "spec.containers{app}"},
        "source": {"component": "kubelet", "host": "n1"}, "firstTimestamp": ago(600), "lastTimestamp": ago(30), "count": 7,
    });
    let want = vec![json!("30s"), json!("Warning"), json!("BackOff"), json!("pod/web"), json!("spec.containers{app}"), json!("kubelet, n1"), json!("Back-off restarting failed container"), json!("10m"), json!(7), json!("web.1")];
    assert_eq!(cells("", "events", &core_event), want);
    let new_event = json!({
        "metadata": {"name": "web.1"}, "type": "Warning", "reason": "BackOff", "note": " Back-off restarting failed container \n",
        "regarding": {"kind": "Pod", "name": "web", "fieldPath": "spec.containers{app}"},
        "deprecatedSource": {"component": "kubelet", "host": "n1"}, "deprecatedFirstTimestamp": ago(600), "deprecatedLastTimestamp": ago(30), "deprecatedCount": 7,
    });
    assert_eq!(cells("events.k8s.io", "events", &new_event), want);
    let series = json!({
        "metadata": {"name": "e2"}, "type": "Normal", "reason": "Scheduled", "note": "ok", "regarding": {"kind": "Node"},
        "eventTime": ago(100), "series": {"count": 3, "lastObservedTime": ago(10)}, "reportingController": "default-scheduler",
    });
    assert_eq!(cells("events.k8s.io", "events", &series), vec![json!("10s"), json!("Normal"), json!("Scheduled"), json!("node"), json!(""), json!("default-scheduler"), json!("ok"), json!("100s"), json!(3), json!("e2")]);
    let names: Vec<String> = col_summary(res("", "events")).into_iter().filter(|c| c.3 == 0).map(|c| c.0).collect();
    assert_eq!(names, ["Last Seen", "Type", "Reason", "Object", "Message"]);
}

#[test]
fn storage_config_and_policy_cells() {
    let pvc = json!({"metadata": {"name": "data", "creationTimestamp": ago(60)}, "spec": {"volumeName": "pv-1", "storageClassName": "standard"},
        "status": {"phase": "Bound", "capacity": {"storage": "10Gi"}, "accessModes": ["ReadWriteOnce", "ReadWriteOncePod"]}});
    assert_eq!(cells("", "persistentvolumeclaims", &pvc), vec![json!("data"), json!("Bound"), json!("pv-1"), json!("10Gi"), json!("RWO,RWOP"), json!("standard"), json!("<unset>"), json!("60s"), json!("Filesystem")]);
    let pending = json!({"metadata": {"name": "p"}, "spec": {}, "status": {"phase": "Pending"}});
    assert_eq!(&cells("", "persistentvolumeclaims", &pending)[1..5], &[json!("Pending"), json!(""), json!(""), json!("")]);

    let pv = json!({"metadata": {"name": "pv-1", "annotations": {"volume.beta.kubernetes.io/storage-class": "legacy"}},
        "spec": {"capacity": {"storage": "10Gi"}, "accessModes": ["ReadWriteMany", "ReadOnlyMany"], "persistentVolumeReclaimPolicy": "Delete", "claimRef": {"namespace": "default", "name": "data"}, "storageClassName": "standard"},
        "status": {"phase": "Bound"}});
    assert_eq!(&cells("", "persistentvolumes", &pv)[1..9], &[json!("10Gi"), json!("ROX,RWX"), json!("Delete"), json!("Bound"), json!("default/data"), json!("legacy"), json!("<unset>"), json!("")]);

    assert_eq!(cells("", "configmaps", &json!({"metadata": {"name": "c"}, "data": {"a": "1", "b": "2"}, "binaryData": {"c": "AA=="}}))[1], 3);
    assert_eq!(&cells("", "secrets", &json!({"metadata": {"name": "s"}, "type": "kubernetes.io/tls", "data": {"tls.crt": "", "tls.key": ""}}))[1..3], &[json!("kubernetes.io/tls"), json!(2)]);
    assert_eq!(cells("", "serviceaccounts", &json!({"metadata": {"name": "default"}}))[1], 0);
    assert_eq!(cells("", "namespaces", &json!({"metadata": {"name": "kube-system"}, "status": {"phase": "Terminating"}}))[1], "Terminating");

    let quota = json!({"metadata": {"name": "q"}, "status": {"hard": {"pods": "10", "requests.cpu": "4", "limits.memory": "8Gi", "limits.cpu": "8"}, "used": {"pods": "3", "requests.cpu": "500m", "limits.cpu": "1"}}});
    assert_eq!(&cells("", "resourcequotas", &quota)[1..3], &[json!("pods: 3/10, requests.cpu: 500m/4"), json!("limits.cpu: 1/8, limits.memory: 0/8Gi")]);

    let pdb = json!({"metadata": {"name": "pdb"}, "spec": {"minAvailable": "50%"}, "status": {"disruptionsAllowed": 1}});
    assert_eq!(&cells("policy", "poddisruptionbudgets", &pdb)[1..4], &[json!("50%"), json!("N/A"), json!(1)]);

    let pc = json!({"metadata": {"name": "high"}, "value": 1000000, "globalDefault": true});
    assert_eq!(&cells("scheduling.k8s.io", "priorityclasses", &pc)[1..3], &[json!(1000000), json!(true)]);
    assert_eq!(cells("scheduling.k8s.io", "priorityclasses", &pc)[4], "PreemptLowerPriority");

    let lease = json!({"metadata": {"name": "kube-scheduler"}, "spec": {"holderIdentity": "n1_abc"}});
    assert_eq!(cells("coordination.k8s.io", "leases", &lease)[1], "n1_abc");

    let rev = json!({"metadata": {"name": "web-5d4f", "ownerReferences": [{"apiVersion": "apps/v1", "kind": "StatefulSet", "name": "web", "controller": true}]}, "revision": 2});
    assert_eq!(&cells("apps", "controllerrevisions", &rev)[1..3], &[json!("statefulset.apps/web"), json!(2)]);

    let hpa = json!({"metadata": {"name": "web"}, "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "web"}, "maxReplicas": 10,
            "metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 80}}},
                        {"type": "Resource", "resource": {"name": "memory", "target": {"type": "AverageValue", "averageValue": "500Mi"}}},
                        {"type": "Pods", "pods": {"metric": {"name": "qps"}, "target": {"type": "AverageValue", "averageValue": "10"}}}]},
        "status": {"currentReplicas": 2, "currentMetrics": [{"type": "Resource", "resource": {"name": "cpu", "current": {"averageUtilization": 35}}}]}});
    assert_eq!(
        &cells("autoscaling", "horizontalpodautoscalers", &hpa)[1..6],
        &[json!("Deployment/web"), json!("cpu: 35%/80%, memory: <unknown>/500Mi + 1 more..."), json!("1"), json!(10), json!(2)]
    );

    let rb = json!({"metadata": {"name": "rb"}, "roleRef": {"kind": "ClusterRole", "name": "view"},
        "subjects": [{"kind": "User", "name": "alice"}, {"kind": "Group", "name": "devs"}, {"kind": "ServiceAccount", "namespace": "ci", "name": "bot"}, {"kind": "User", "name": "bob"}]});
    let c = cells("rbac.authorization.k8s.io", "rolebindings", &rb);
    assert_eq!(c[1], "ClusterRole/view");
    assert_eq!(&c[3..], &[json!("alice, bob"), json!("devs"), json!("ci/bot")]);
}

#[test]
fn resources_without_a_printer_get_the_default_columns() {
    for (group, plural) in [("rbac.authorization.k8s.io", "roles"), ("rbac.authorization.k8s.io", "clusterroles"), ("", "limitranges")] {
        let info = res(group, plural);
        let s = |n: &str, t: &str, f: &str| (n.to_string(), t.to_string(), f.to_string(), 0);
        assert_eq!(col_summary(info), vec![s("Name", "string", "name"), s("Created At", "date", "")], "{plural}");
        let obj = json!({"metadata": {"name": "r", "creationTimestamp": "2024-03-04T05:06:07Z"}});
        assert_eq!(row_cells(info, &obj, now()), vec![json!("r"), json!("2024-03-04T05:06:07Z")], "{plural}");
        assert_eq!(row_cells(info, &json!({"metadata": {"name": "r"}}), now())[1], "0001-01-01T00:00:00Z", "{plural}");
    }
}

#[test]
fn every_served_resource_has_one_cell_per_column_even_for_partial_objects() {
    let partials = [json!({}), json!({"metadata": {"name": "x"}}), json!({"metadata": {"name": "x"}, "spec": {}, "status": {}}), json!({"metadata": null, "spec": null, "status": null}), json!(null)];
    for info in registry::resources() {
        let defs = column_definitions(info);
        assert!(!defs.is_empty(), "{info:?}");
        for d in &defs {
            for key in ["name", "type", "format", "description", "priority"] {
                assert!(d.get(key).is_some(), "{info:?}: column without {key}");
            }
            // Every description resolves, so no schema field name is misspelt.
            assert!(!d["description"].as_str().unwrap().is_empty(), "{info:?}: {} has no description", d["name"]);
        }
        assert_eq!(defs.iter().filter(|d| d["format"] == "name").count(), 1, "{info:?}: one name column");
        for obj in &partials {
            assert_eq!(row_cells(info, obj, now()).len(), defs.len(), "{info:?} {obj}");
        }
    }
}

#[test]
fn to_table_include_object_variants_and_list_metadata() {
    let pods = res("", "pods");
    let objects = vec![
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "a", "namespace": "default", "resourceVersion": "5", "labels": {"app": "x"}}, "spec": {"containers": [{"name": "c"}]}, "status": {"phase": "Succeeded"}}),
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "b", "namespace": "default"}, "spec": {"containers": [{"name": "c"}]}, "status": {"phase": "Running"}}),
    ];
    let list_meta = json!({"resourceVersion": "42", "continue": "token", "remainingItemCount": 3, "selfLink": "/ignored"});

    let table = to_table(pods, &objects, list_meta.clone(), "Metadata", now());
    assert_eq!(table["kind"], "Table");
    assert_eq!(table["apiVersion"], "meta.k8s.io/v1");
    assert_eq!(table["metadata"], json!({"resourceVersion": "42", "continue": "token", "remainingItemCount": 3}));
    let keys: Vec<&String> = table.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["kind", "apiVersion", "metadata", "columnDefinitions", "rows"]);
    assert_eq!(table["columnDefinitions"].as_array().unwrap().len(), 9);
    let rows = table["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0]["cells"][0], "a");
    assert_eq!(rows[0]["object"], json!({"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": objects[0]["metadata"]}));
    // Finished pods carry the Completed row condition, running ones none.
    assert_eq!(rows[0]["conditions"], json!([{"type": "Completed", "status": "True", "reason": "Succeeded", "message": "The pod has completed successfully."}]));
    assert!(rows[1].get("conditions").is_none());

    let default = to_table(pods, &objects, list_meta.clone(), "", now());
    assert_eq!(default["rows"][1]["object"]["kind"], "PartialObjectMetadata");

    let none = to_table(pods, &objects, list_meta.clone(), "None", now());
    assert!(none["rows"].as_array().unwrap().iter().all(|r| r.get("object").is_none()));
    assert_eq!(none["rows"][1]["cells"][2], "Running");

    let full = to_table(pods, &objects, list_meta, "Object", now());
    assert_eq!(full["rows"][0]["object"], objects[0]);
    assert_eq!(full["rows"][1]["object"], objects[1]);

    let empty = to_table(res("", "configmaps"), &[], json!({"resourceVersion": "7", "continue": ""}), "Metadata", now());
    assert_eq!(empty["metadata"], json!({"resourceVersion": "7"}));
    assert_eq!(empty["rows"], json!([]));
    assert_eq!(empty["columnDefinitions"][1]["name"], "Data");
}
