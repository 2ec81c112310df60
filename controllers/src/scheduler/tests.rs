//! Table tests of every filter and score, against a cache built from Node and Pod JSON.

use std::sync::Arc;

use serde_json::{Value, json};

use super::algorithm::*;
use super::cache::Cache;
use super::types::*;
use super::unschedulable_patch;

// ------------------------------------------------------------------------------------------------
// Builders

fn set(v: &mut Value, path: &[&str], x: Value) {
    let mut cur = v;
    for (i, p) in path.iter().enumerate() {
        if i + 1 == path.len() {
            cur[*p] = x;
            return;
        }
        if cur.get(*p).is_none_or(|c| !c.is_object()) {
            cur[*p] = json!({});
        }
        cur = &mut cur[*p];
    }
}

#[derive(Clone)]
struct N(Value);

impl N {
    fn new(name: &str) -> N {
        N(json!({
            "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name}},
            "spec": {},
            "status": {
                "allocatable": {"cpu": "4", "memory": "8Gi", "pods": "110", "ephemeral-storage": "100Gi"},
                "conditions": [{"type": "Ready", "status": "True"}],
            },
        }))
    }
    fn label(mut self, k: &str, v: &str) -> N {
        self.0["metadata"]["labels"][k] = json!(v);
        self
    }
    fn zone(self, z: &str) -> N {
        self.label(LABEL_ZONE, z)
    }
    fn taint(mut self, k: &str, v: &str, effect: &str) -> N {
        let mut t = self.0["spec"]["taints"].as_array().cloned().unwrap_or_default();
        t.push(json!({"key": k, "value": v, "effect": effect}));
        self.0["spec"]["taints"] = json!(t);
        self
    }
    fn alloc(mut self, r: Value) -> N {
        self.0["status"]["allocatable"] = r;
        self
    }
    fn unschedulable(mut self) -> N {
        self.0["spec"]["unschedulable"] = json!(true);
        self
    }
    fn not_ready(mut self) -> N {
        self.0["status"]["conditions"] = json!([{"type": "Ready", "status": "False"}]);
        self
    }
}

#[derive(Clone)]
struct P(Value);

impl P {
    fn new(name: &str) -> P {
        P(json!({
            "metadata": {"name": name, "namespace": "default", "uid": format!("uid-{name}"), "labels": {}},
            "spec": {"containers": [{"name": "c"}]},
        }))
    }
    fn ns(mut self, ns: &str) -> P {
        self.0["metadata"]["namespace"] = json!(ns);
        self
    }
    fn label(mut self, k: &str, v: &str) -> P {
        self.0["metadata"]["labels"][k] = json!(v);
        self
    }
    fn req(mut self, cpu: &str, mem: &str) -> P {
        self.0["spec"]["containers"][0]["resources"] = json!({"requests": {"cpu": cpu, "memory": mem}});
        self
    }
    fn requests(mut self, r: Value) -> P {
        self.0["spec"]["containers"][0]["resources"] = json!({"requests": r});
        self
    }
    fn spec(mut self, path: &[&str], x: Value) -> P {
        let mut full = vec!["spec"];
        full.extend_from_slice(path);
        set(&mut self.0, &full, x);
        self
    }
    fn on(self, node: &str) -> P {
        self.spec(&["nodeName"], json!(node))
    }
    fn owned_by(mut self, kind: &str, uid: &str) -> P {
        self.0["metadata"]["ownerReferences"] = json!([{"kind": kind, "name": "o", "uid": uid, "controller": true, "apiVersion": "apps/v1"}]);
        self
    }
    fn deleting(mut self) -> P {
        self.0["metadata"]["deletionTimestamp"] = json!("2024-01-01T00:00:00Z");
        self
    }
}

fn cluster(nodes: &[N], pods: &[P]) -> Cache {
    let mut c = Cache::new();
    for n in nodes {
        c.upsert_node(NodeSpec::parse(&n.0));
    }
    for p in pods {
        let info = PodInfo::parse(&p.0);
        let node = info.node_name.clone();
        c.add_pod(Arc::new(info), &node, false);
    }
    c
}

/// Feasible node names (sorted) and, when none, the FitError message.
fn filter(c: &mut Cache, pod: &P) -> (Vec<String>, String) {
    let info = PodInfo::parse(&pod.0);
    let pre = pre_filter(c, &info);
    let mut start = 0;
    let (feasible, diag) = find_feasible(c, &info, &pre, &mut start);
    let mut names: Vec<String> = feasible.iter().map(|s| c.node_name(*s).to_string()).collect();
    names.sort();
    let msg = if names.is_empty() { diag.message() } else { String::new() };
    (names, msg)
}

fn names(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

/// Normalized scores of every feasible node, by name.
fn scores(c: &mut Cache, pod: &P) -> Vec<(String, Scores)> {
    let info = PodInfo::parse(&pod.0);
    let pre = pre_filter(c, &info);
    let mut start = 0;
    let (feasible, _) = find_feasible(c, &info, &pre, &mut start);
    let plan = pre_score(c, &info);
    let s = score_nodes(c, &info, &plan, &feasible);
    let mut out: Vec<(String, Scores)> = feasible.iter().map(|x| c.node_name(*x).to_string()).zip(s).collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

fn field(s: &[(String, Scores)], f: fn(&Scores) -> i64) -> Vec<(String, i64)> {
    s.iter().map(|(n, sc)| (n.clone(), f(sc))).collect()
}

fn pairs(v: &[(&str, i64)]) -> Vec<(String, i64)> {
    v.iter().map(|(n, s)| (n.to_string(), *s)).collect()
}

// ------------------------------------------------------------------------------------------------
// Filters

#[test]
fn node_unschedulable_and_readiness() {
    let unsched_tol = json!([{"key": TAINT_UNSCHEDULABLE, "operator": "Exists", "effect": "NoSchedule"}]);
    let not_ready_tol = json!([{"key": TAINT_NOT_READY, "operator": "Exists"}]);
    let cases: Vec<(&str, N, P, bool, &str)> = vec![
        ("ready node", N::new("n"), P::new("p"), true, ""),
        (
            "cordoned",
            N::new("n").unschedulable(),
            P::new("p"),
            false,
            "0/1 nodes are available: 1 node(s) were unschedulable.",
        ),
        (
            "cordoned, tolerated",
            N::new("n").unschedulable(),
            P::new("p").spec(&["tolerations"], unsched_tol.clone()),
            true,
            "",
        ),
        (
            "not ready",
            N::new("n").not_ready(),
            P::new("p"),
            false,
            "0/1 nodes are available: 1 node(s) had untolerated taint {node.kubernetes.io/not-ready: }.",
        ),
        (
            "not ready, tolerated",
            N::new("n").not_ready(),
            P::new("p").spec(&["tolerations"], not_ready_tol),
            true,
            "",
        ),
        (
            "not ready, only unschedulable tolerated",
            N::new("n").not_ready(),
            P::new("p").spec(&["tolerations"], unsched_tol),
            false,
            "0/1 nodes are available: 1 node(s) had untolerated taint {node.kubernetes.io/not-ready: }.",
        ),
    ];
    for (name, n, p, ok, msg) in cases {
        let mut c = cluster(&[n], &[]);
        let (feasible, m) = filter(&mut c, &p);
        assert_eq!(!feasible.is_empty(), ok, "{name}");
        assert_eq!(m, msg, "{name}");
    }
}

fn fit_reasons(node: N, existing: &[P], pod: P) -> Vec<String> {
    let c = cluster(std::slice::from_ref(&node), existing);
    let slot = c.slot(node.0["metadata"]["name"].as_str().unwrap()).unwrap();
    let n = &c.nodes[slot as usize];
    insufficient_resources(n, n.spec.as_deref().unwrap(), &PodInfo::parse(&pod.0))
        .into_iter()
        .map(|r| r.into_owned())
        .collect()
}

#[test]
fn resource_fit_table() {
    let node = || N::new("n").alloc(json!({"cpu": "2", "memory": "4Gi", "pods": "3", "ephemeral-storage": "100Gi"}));
    let existing = || vec![P::new("e").req("1", "1Gi").on("n")];
    let c = |cpu: &str| json!({"name": "c", "resources": {"requests": {"cpu": cpu}}});
    let cases: Vec<(&str, P, Vec<&str>)> = vec![
        ("fits", P::new("p").req("500m", "1Gi"), vec![]),
        ("exactly fits cpu", P::new("p").req("1", "1Gi"), vec![]),
        ("exactly fits memory", P::new("p").req("100m", "3Gi"), vec![]),
        ("too much cpu", P::new("p").req("1500m", "1Gi"), vec!["Insufficient cpu"]),
        ("too much memory", P::new("p").req("100m", "3073Mi"), vec!["Insufficient memory"]),
        ("both", P::new("p").req("2", "4Gi"), vec!["Insufficient cpu", "Insufficient memory"]),
        (
            "big init container",
            P::new("p").req("100m", "1Mi").spec(&["initContainers"], json!([c("1500m")])),
            vec!["Insufficient cpu"],
        ),
        (
            "small init containers",
            P::new("p").req("900m", "1Mi").spec(&["initContainers"], json!([c("500m"), c("1")])),
            vec![],
        ),
        (
            "sidecar adds to app",
            P::new("p").req("500m", "1Mi").spec(
                &["initContainers"],
                json!([{"name": "s", "restartPolicy": "Always", "resources": {"requests": {"cpu": "600m"}}}]),
            ),
            vec!["Insufficient cpu"],
        ),
        (
            "overhead counts",
            P::new("p").req("900m", "1Mi").spec(&["overhead"], json!({"cpu": "200m"})),
            vec!["Insufficient cpu"],
        ),
        (
            "ephemeral storage",
            P::new("p").requests(json!({"ephemeral-storage": "200Gi"})),
            vec!["Insufficient ephemeral-storage"],
        ),
        (
            "extended resource",
            P::new("p").requests(json!({"example.com/gpu": "1"})),
            vec!["Insufficient example.com/gpu"],
        ),
        ("no requests fits anything", P::new("p"), vec![]),
    ];
    for (name, pod, want) in cases {
        assert_eq!(fit_reasons(node(), &existing(), pod), names(&want), "{name}");
    }
    // Pod count against allocatable pods, even for a pod requesting nothing.
    let full = vec![P::new("a").on("n"), P::new("b").on("n"), P::new("e").on("n")];
    assert_eq!(fit_reasons(node(), &full, P::new("p")), names(&["Too many pods"]));
    // Extended resources the node has.
    let gpu_node = N::new("n").alloc(json!({"cpu": "2", "memory": "4Gi", "pods": "10", "example.com/gpu": "2"}));
    let gpu = |n: &str| P::new(n).requests(json!({"example.com/gpu": "1"}));
    assert_eq!(fit_reasons(gpu_node.clone(), &[gpu("a").on("n")], gpu("p")), Vec::<String>::new());
    assert_eq!(
        fit_reasons(gpu_node, &[gpu("a").on("n"), gpu("b").on("n")], gpu("p")),
        names(&["Insufficient example.com/gpu"])
    );
    // Terminal pods are not counted by the scheduler loop (they are removed from the cache);
    // pods bound but not yet running are.
    let pending_on_node = vec![P::new("e").req("2", "1Gi").on("n")];
    assert_eq!(
        fit_reasons(node(), &pending_on_node, P::new("p").req("100m", "1Mi")),
        names(&["Insufficient cpu"])
    );
}

#[test]
fn taints_and_tolerations_table() {
    let tol = |k: &str, op: &str, v: &str, e: &str| json!({"key": k, "operator": op, "value": v, "effect": e});
    let cases: Vec<(&str, N, Value, Option<&str>)> = vec![
        (
            "NoSchedule untolerated",
            N::new("n").taint("dedicated", "gpu", "NoSchedule"),
            json!([]),
            Some("node(s) had untolerated taint {dedicated: gpu}"),
        ),
        (
            "NoExecute untolerated",
            N::new("n").taint("dedicated", "gpu", "NoExecute"),
            json!([]),
            Some("node(s) had untolerated taint {dedicated: gpu}"),
        ),
        (
            "PreferNoSchedule is only a score",
            N::new("n").taint("dedicated", "gpu", "PreferNoSchedule"),
            json!([]),
            None,
        ),
        (
            "Equal",
            N::new("n").taint("dedicated", "gpu", "NoSchedule"),
            json!([tol("dedicated", "Equal", "gpu", "NoSchedule")]),
            None,
        ),
        (
            "Equal wrong value",
            N::new("n").taint("dedicated", "gpu", "NoSchedule"),
            json!([tol("dedicated", "Equal", "cpu", "NoSchedule")]),
            Some("node(s) had untolerated taint {dedicated: gpu}"),
        ),
        (
            "Exists",
            N::new("n").taint("dedicated", "gpu", "NoSchedule"),
            json!([tol("dedicated", "Exists", "", "")]),
            None,
        ),
        (
            "Exists everything",
            N::new("n").taint("a", "b", "NoExecute").taint("c", "d", "NoSchedule"),
            json!([{"operator": "Exists"}]),
            None,
        ),
        (
            "wrong effect",
            N::new("n").taint("dedicated", "gpu", "NoSchedule"),
            json!([tol("dedicated", "Exists", "", "NoExecute")]),
            Some("node(s) had untolerated taint {dedicated: gpu}"),
        ),
        (
            "tolerationSeconds does not matter for scheduling",
            N::new("n").taint("dedicated", "gpu", "NoExecute"),
            json!([{"key": "dedicated", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 30}]),
            None,
        ),
        (
            "first untolerated taint is reported",
            N::new("n").taint("a", "1", "NoSchedule").taint("b", "2", "NoSchedule"),
            json!([tol("a", "Exists", "", "")]),
            Some("node(s) had untolerated taint {b: 2}"),
        ),
        (
            "control plane",
            N::new("n").taint("node-role.kubernetes.io/control-plane", "", "NoSchedule"),
            json!([]),
            Some("node(s) had untolerated taint {node-role.kubernetes.io/control-plane: }"),
        ),
    ];
    for (name, n, tols, want) in cases {
        let mut c = cluster(&[n], &[]);
        let (feasible, msg) = filter(&mut c, &P::new("p").spec(&["tolerations"], tols));
        match want {
            None => assert_eq!(feasible, names(&["n"]), "{name}"),
            Some(r) => assert_eq!(msg, format!("0/1 nodes are available: 1 {r}."), "{name}"),
        }
    }
}

#[test]
fn node_selector_and_affinity_table() {
    let nodes = [
        N::new("n1").zone("a").label("gen", "3"),
        N::new("n2").zone("b").label("gen", "5"),
        N::new("n3").zone("c"),
    ];
    let expr = |k: &str, op: &str, vals: &[&str]| json!({"key": k, "operator": op, "values": vals});
    let req = |terms: Value| json!({"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": terms}}});
    let z = LABEL_ZONE;
    let cases: Vec<(&str, P, Vec<&str>)> = vec![
        ("nodeSelector", P::new("p").spec(&["nodeSelector"], json!({z: "a"})), vec!["n1"]),
        ("nodeSelector missing label", P::new("p").spec(&["nodeSelector"], json!({"disk": "ssd"})), vec![]),
        ("In", P::new("p").spec(&["affinity"], req(json!([{"matchExpressions": [expr(z, "In", &["a", "b"])]}]))), vec!["n1", "n2"]),
        ("NotIn", P::new("p").spec(&["affinity"], req(json!([{"matchExpressions": [expr(z, "NotIn", &["a"])]}]))), vec!["n2", "n3"]),
        ("Exists", P::new("p").spec(&["affinity"], req(json!([{"matchExpressions": [expr("gen", "Exists", &[])]}]))), vec!["n1", "n2"]),
        ("DoesNotExist", P::new("p").spec(&["affinity"], req(json!([{"matchExpressions": [expr("gen", "DoesNotExist", &[])]}]))), vec!["n3"]),
        ("Gt", P::new("p").spec(&["affinity"], req(json!([{"matchExpressions": [expr("gen", "Gt", &["4"])]}]))), vec!["n2"]),
        ("Lt", P::new("p").spec(&["affinity"], req(json!([{"matchExpressions": [expr("gen", "Lt", &["4"])]}]))), vec!["n1"]),
        ("Gt not a number", P::new("p").spec(&["affinity"], req(json!([{"matchExpressions": [expr("gen", "Gt", &["x"])]}]))), vec![]),
        (
            "terms are ORed",
            P::new("p").spec(&["affinity"], req(json!([{"matchExpressions": [expr(z, "In", &["a"])]}, {"matchExpressions": [expr(z, "In", &["c"])]}]))),
            vec!["n1", "n3"],
        ),
        (
            "expressions are ANDed",
            P::new("p").spec(&["affinity"], req(json!([{"matchExpressions": [expr(z, "In", &["a", "b"]), expr("gen", "Gt", &["4"])]}]))),
            vec!["n2"],
        ),
        ("matchFields metadata.name", P::new("p").spec(&["affinity"], req(json!([{"matchFields": [expr("metadata.name", "In", &["n3"])]}]))), vec!["n3"]),
        ("matchFields NotIn", P::new("p").spec(&["affinity"], req(json!([{"matchFields": [expr("metadata.name", "NotIn", &["n3"])]}]))), vec!["n1", "n2"]),
        ("matchFields other field", P::new("p").spec(&["affinity"], req(json!([{"matchFields": [expr("metadata.uid", "In", &["n3"])]}]))), vec![]),
        ("empty term matches nothing", P::new("p").spec(&["affinity"], req(json!([{}]))), vec![]),
        ("no terms matches nothing", P::new("p").spec(&["affinity"], req(json!([]))), vec![]),
        (
            "nodeSelector and affinity both apply",
            P::new("p").spec(&["nodeSelector"], json!({z: "a"})).spec(&["affinity"], req(json!([{"matchExpressions": [expr(z, "In", &["b"])]}]))),
            vec![],
        ),
        ("preferred only does not filter", P::new("p").spec(&["affinity"], json!({"nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [{"weight": 5, "preference": {"matchExpressions": [expr(z, "In", &["a"])]}}]}})), vec!["n1", "n2", "n3"]),
    ];
    for (name, pod, want) in cases {
        let mut c = cluster(&nodes, &[]);
        let (feasible, msg) = filter(&mut c, &pod);
        assert_eq!(feasible, names(&want), "{name}");
        if want.is_empty() && name != "matchFields other field" {
            assert_eq!(msg, "0/3 nodes are available: 3 node(s) didn't match Pod's node affinity/selector.", "{name}");
        }
    }
    // A pod pinned to one node by name (DaemonSet) is only tried there; the rest are counted
    // as not matching.
    let mut c = cluster(&[N::new("n1"), N::new("n2").taint("k", "v", "NoSchedule"), N::new("n3")], &[]);
    let pinned = P::new("p").spec(&["affinity"], req(json!([{"matchFields": [expr("metadata.name", "In", &["n2"])]}])));
    let (feasible, msg) = filter(&mut c, &pinned);
    assert!(feasible.is_empty());
    assert_eq!(
        msg,
        "0/3 nodes are available: 1 node(s) had untolerated taint {k: v}, 2 node(s) didn't satisfy plugin(s) [NodeAffinity]."
    );
}

#[test]
fn host_ports_table() {
    let port = |p: i64, proto: &str, ip: &str| json!({"containerPort": p, "hostPort": p, "protocol": proto, "hostIP": ip});
    let with_ports = |name: &str, ports: Value| P::new(name).spec(&["containers"], json!([{"name": "c", "ports": ports}]));
    let existing = [
        with_ports("e1", json!([{"containerPort": 80, "hostPort": 8080}])).on("n1"),
        with_ports("e2", json!([port(9090, "TCP", "10.0.0.1")])).on("n2"),
    ];
    let nodes = [N::new("n1"), N::new("n2")];
    let cases: Vec<(&str, P, Vec<&str>)> = vec![
        ("same port and protocol", with_ports("p", json!([port(8080, "TCP", "")])), vec!["n2"]),
        ("other protocol", with_ports("p", json!([port(8080, "UDP", "")])), vec!["n1", "n2"]),
        ("other port", with_ports("p", json!([port(8081, "TCP", "")])), vec!["n1", "n2"]),
        (
            "specific address vs all addresses",
            with_ports("p", json!([port(8080, "TCP", "10.0.0.9")])),
            vec!["n2"],
        ),
        (
            "different specific addresses",
            with_ports("p", json!([port(9090, "TCP", "10.0.0.2")])),
            vec!["n1", "n2"],
        ),
        ("same specific address", with_ports("p", json!([port(9090, "TCP", "10.0.0.1")])), vec!["n1"]),
        ("all addresses vs specific", with_ports("p", json!([port(9090, "TCP", "")])), vec!["n1"]),
        (
            "containerPort alone is no host port",
            with_ports("p", json!([{"containerPort": 8080}])),
            vec!["n1", "n2"],
        ),
        (
            "hostNetwork uses the container port",
            with_ports("p", json!([{"containerPort": 8080}])).spec(&["hostNetwork"], json!(true)),
            vec!["n2"],
        ),
    ];
    for (name, pod, want) in cases {
        let mut c = cluster(&nodes, &existing);
        assert_eq!(filter(&mut c, &pod).0, names(&want), "{name}");
    }
    let mut c = cluster(
        &nodes,
        &[
            with_ports("e1", json!([port(8080, "TCP", "")])).on("n1"),
            with_ports("e2", json!([port(8080, "TCP", "")])).on("n2"),
        ],
    );
    assert_eq!(
        filter(&mut c, &with_ports("p", json!([port(8080, "TCP", "")]))).1,
        "0/2 nodes are available: 2 node(s) didn't have free ports for the requested pod ports."
    );
}

fn pod_term(selector: Value, key: &str) -> Value {
    json!({"labelSelector": selector, "topologyKey": key})
}

fn affinity(kind: &str, terms: Value) -> Value {
    json!({kind: {"requiredDuringSchedulingIgnoredDuringExecution": terms}})
}

#[test]
fn pod_affinity_table() {
    let nodes = [N::new("a1").zone("a"), N::new("a2").zone("a"), N::new("b1").zone("b"), N::new("x1")];
    let db = |sel: &str| json!({"matchLabels": {"app": sel}});
    let existing = vec![P::new("db").label("app", "db").on("a2"), P::new("db2").ns("other").label("app", "db2").on("b1")];
    let cases: Vec<(&str, P, Vec<&str>, &str)> = vec![
        (
            "zone with a matching pod",
            P::new("p").spec(&["affinity"], affinity("podAffinity", json!([pod_term(db("db"), LABEL_ZONE)]))),
            vec!["a1", "a2"],
            "",
        ),
        (
            "same node",
            P::new("p").spec(&["affinity"], affinity("podAffinity", json!([pod_term(db("db"), LABEL_HOSTNAME)]))),
            vec!["a2"],
            "",
        ),
        (
            "no matching pod anywhere",
            P::new("p")
                .label("app", "web")
                .spec(&["affinity"], affinity("podAffinity", json!([pod_term(db("cache"), LABEL_ZONE)]))),
            vec![],
            "0/4 nodes are available: 4 node(s) didn't match pod affinity rules.",
        ),
        (
            "first pod of a self-affine group goes where the key exists",
            P::new("p")
                .label("app", "web")
                .spec(&["affinity"], affinity("podAffinity", json!([pod_term(db("web"), LABEL_ZONE)]))),
            vec!["a1", "a2", "b1"],
            "",
        ),
        (
            "other namespace by name",
            P::new("p").spec(
                &["affinity"],
                affinity(
                    "podAffinity",
                    json!([{"labelSelector": db("db2"), "topologyKey": LABEL_ZONE, "namespaces": ["other"]}]),
                ),
            ),
            vec!["b1"],
            "",
        ),
        (
            "the pod's own namespace by default",
            P::new("p").spec(&["affinity"], affinity("podAffinity", json!([pod_term(db("db2"), LABEL_ZONE)]))),
            vec![],
            "0/4 nodes are available: 4 node(s) didn't match pod affinity rules.",
        ),
        (
            "namespaceSelector",
            P::new("p").spec(
                &["affinity"],
                affinity(
                    "podAffinity",
                    json!([{"labelSelector": db("db2"), "topologyKey": LABEL_ZONE, "namespaceSelector": {"matchLabels": {"team": "x"}}}]),
                ),
            ),
            vec!["b1"],
            "",
        ),
        (
            "empty namespaceSelector is every namespace",
            P::new("p").spec(
                &["affinity"],
                affinity(
                    "podAffinity",
                    json!([{"labelSelector": db("db2"), "topologyKey": LABEL_ZONE, "namespaceSelector": {}}]),
                ),
            ),
            vec!["b1"],
            "",
        ),
        (
            "all terms must hold",
            P::new("p").spec(
                &["affinity"],
                affinity("podAffinity", json!([pod_term(db("db"), LABEL_ZONE), pod_term(db("db"), LABEL_HOSTNAME)])),
            ),
            vec!["a2"],
            "",
        ),
    ];
    for (name, pod, want, msg) in cases {
        let mut c = cluster(&nodes, &existing);
        c.set_namespace("other", Some([("team".to_string(), "x".to_string())].into()));
        let (feasible, m) = filter(&mut c, &pod);
        assert_eq!(feasible, names(&want), "{name}");
        assert_eq!(m, msg, "{name}");
    }
}

#[test]
fn pod_anti_affinity_table() {
    let nodes = [N::new("a1").zone("a"), N::new("a2").zone("a"), N::new("b1").zone("b"), N::new("x1")];
    let sel = |app: &str| json!({"matchLabels": {"app": app}});
    let guard = P::new("guard")
        .label("app", "guard")
        .on("b1")
        .spec(&["affinity"], affinity("podAntiAffinity", json!([pod_term(sel("web"), LABEL_ZONE)])));
    let existing = vec![
        P::new("db").label("app", "db").on("a2"),
        guard,
        P::new("filler").label("app", "filler").on("x1"),
    ];
    let cases: Vec<(&str, P, Vec<&str>, &str)> = vec![
        (
            "not on the node",
            P::new("p").spec(&["affinity"], affinity("podAntiAffinity", json!([pod_term(sel("db"), LABEL_HOSTNAME)]))),
            vec!["a1", "b1", "x1"],
            "",
        ),
        (
            "not in the zone; nodes without the key pass",
            P::new("p").spec(&["affinity"], affinity("podAntiAffinity", json!([pod_term(sel("db"), LABEL_ZONE)]))),
            vec!["b1", "x1"],
            "",
        ),
        (
            "other namespace is not affected",
            P::new("p")
                .ns("other")
                .spec(&["affinity"], affinity("podAntiAffinity", json!([pod_term(sel("db"), LABEL_ZONE)]))),
            vec!["a1", "a2", "b1", "x1"],
            "",
        ),
        (
            "existing pods' anti-affinity (symmetry)",
            P::new("web").label("app", "web"),
            vec!["a1", "a2", "x1"],
            "",
        ),
        (
            "symmetry is namespaced by the existing pod",
            P::new("web").ns("other").label("app", "web"),
            vec!["a1", "a2", "b1", "x1"],
            "",
        ),
        (
            "both",
            P::new("web")
                .label("app", "web")
                .spec(&["affinity"], affinity("podAntiAffinity", json!([pod_term(sel("db"), LABEL_ZONE)]))),
            vec!["x1"],
            "",
        ),
        (
            "everything excluded",
            P::new("web").label("app", "web").spec(
                &["affinity"],
                affinity(
                    "podAntiAffinity",
                    json!([
                        pod_term(sel("db"), LABEL_ZONE),
                        pod_term(
                            json!({"matchExpressions": [{"key": "app", "operator": "In", "values": ["db", "filler"]}]}),
                            LABEL_HOSTNAME
                        )
                    ]),
                ),
            ),
            vec![],
            "0/4 nodes are available: 1 node(s) didn't satisfy existing pods anti-affinity rules, 3 node(s) didn't match pod anti-affinity rules.",
        ),
    ];
    for (name, pod, want, msg) in cases {
        let mut c = cluster(&nodes, &existing);
        let (feasible, m) = filter(&mut c, &pod);
        assert_eq!(feasible, names(&want), "{name}");
        assert_eq!(m, msg, "{name}");
    }
}

#[test]
fn anti_affinity_replicas_see_assumed_pods() {
    let mut c = cluster(&[N::new("a1").zone("a"), N::new("b1").zone("b"), N::new("c1").zone("c")], &[]);
    let mut start = 0;
    let mut zones = Vec::new();
    for i in 0..4 {
        let p = P::new(&format!("r{i}")).label("app", "r").spec(
            &["affinity"],
            affinity("podAntiAffinity", json!([pod_term(json!({"matchLabels": {"app": "r"}}), LABEL_ZONE)])),
        );
        let info = Arc::new(PodInfo::parse(&p.0));
        match schedule(&mut c, &info, &mut start) {
            Ok(slot) => {
                let n = c.node_name(slot).to_string();
                zones.push(n.clone());
                c.add_pod(info, &n, true);
            }
            Err(e) => assert_eq!(e.message(), "0/3 nodes are available: 3 node(s) didn't match pod anti-affinity rules."),
        }
    }
    zones.sort();
    assert_eq!(zones, names(&["a1", "b1", "c1"]));
}

#[test]
fn topology_spread_filter_table() {
    let nodes = || vec![N::new("a1").zone("a"), N::new("a2").zone("a"), N::new("b1").zone("b"), N::new("c1").zone("c")];
    let web = |n: &str, node: &str| P::new(n).label("app", "web").on(node);
    let existing = || vec![web("w1", "a1"), web("w2", "a2"), web("w3", "b1")];
    let spread = |skew: i64, extra: Value| {
        let mut c = json!({"maxSkew": skew, "topologyKey": LABEL_ZONE, "whenUnsatisfiable": "DoNotSchedule", "labelSelector": {"matchLabels": {"app": "web"}}});
        if let Some(m) = extra.as_object() {
            for (k, v) in m {
                c[k] = v.clone();
            }
        }
        json!([c])
    };
    let zone_in = |zs: &[&str]| json!({"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [{"matchExpressions": [{"key": LABEL_ZONE, "operator": "In", "values": zs}]}]}}});
    // (name, nodes, existing pods, pod, feasible nodes, message when none)
    type Case<'a> = (&'a str, Vec<N>, Vec<P>, P, Vec<&'a str>, &'a str);
    let cases: Vec<Case> = vec![
        (
            "only the empty zone keeps skew 1",
            nodes(),
            existing(),
            P::new("p").label("app", "web").spec(&["topologySpreadConstraints"], spread(1, json!({}))),
            vec!["c1"],
            "",
        ),
        (
            "skew 2 allows the zone with one",
            nodes(),
            existing(),
            P::new("p").label("app", "web").spec(&["topologySpreadConstraints"], spread(2, json!({}))),
            vec!["b1", "c1"],
            "",
        ),
        (
            "a pod not matching its own selector does not add itself",
            nodes(),
            existing(),
            P::new("p").label("app", "other").spec(&["topologySpreadConstraints"], spread(1, json!({}))),
            vec!["b1", "c1"],
            "",
        ),
        (
            "nodes without the key fail",
            vec![N::new("a1").zone("a"), N::new("x1")],
            vec![],
            P::new("p").label("app", "web").spec(&["topologySpreadConstraints"], spread(1, json!({}))),
            vec!["a1"],
            "",
        ),
        (
            "nodeAffinityPolicy Honor: only the pod's zones are domains",
            nodes(),
            existing(),
            P::new("p")
                .label("app", "web")
                .spec(&["topologySpreadConstraints"], spread(1, json!({})))
                .spec(&["affinity"], zone_in(&["a", "b"])),
            vec!["b1"],
            "",
        ),
        (
            "nodeAffinityPolicy Ignore: every zone is a domain",
            nodes(),
            existing(),
            P::new("p")
                .label("app", "web")
                .spec(&["topologySpreadConstraints"], spread(1, json!({"nodeAffinityPolicy": "Ignore"})))
                .spec(&["affinity"], zone_in(&["a", "b"])),
            vec![],
            "0/4 nodes are available: 1 node(s) didn't match Pod's node affinity/selector, 3 node(s) didn't match pod topology spread constraints.",
        ),
        (
            "minDomains above the domain count makes the minimum 0",
            nodes(),
            vec![web("w1", "a1"), web("w3", "b1"), web("w4", "c1")],
            P::new("p")
                .label("app", "web")
                .spec(&["topologySpreadConstraints"], spread(1, json!({"minDomains": 4}))),
            vec![],
            "0/4 nodes are available: 4 node(s) didn't match pod topology spread constraints.",
        ),
        (
            "without minDomains the same cluster is balanced",
            nodes(),
            vec![web("w1", "a1"), web("w3", "b1"), web("w4", "c1")],
            P::new("p").label("app", "web").spec(&["topologySpreadConstraints"], spread(1, json!({}))),
            vec!["a1", "a2", "b1", "c1"],
            "",
        ),
        (
            "terminating pods are not counted",
            nodes(),
            vec![web("w1", "a1"), web("w2", "a2").deleting(), web("w3", "b1"), web("w4", "c1")],
            P::new("p").label("app", "web").spec(&["topologySpreadConstraints"], spread(1, json!({}))),
            vec!["a1", "a2", "b1", "c1"],
            "",
        ),
        (
            "ScheduleAnyway does not filter",
            nodes(),
            existing(),
            P::new("p").label("app", "web").spec(
                &["topologySpreadConstraints"],
                json!([{"maxSkew": 1, "topologyKey": LABEL_ZONE, "whenUnsatisfiable": "ScheduleAnyway", "labelSelector": {"matchLabels": {"app": "web"}}}]),
            ),
            vec!["a1", "a2", "b1", "c1"],
            "",
        ),
        (
            "hostname spreading",
            nodes(),
            existing(),
            P::new("p").label("app", "web").spec(
                &["topologySpreadConstraints"],
                json!([{"maxSkew": 1, "topologyKey": LABEL_HOSTNAME, "whenUnsatisfiable": "DoNotSchedule", "labelSelector": {"matchLabels": {"app": "web"}}}]),
            ),
            vec!["c1"],
            "",
        ),
        (
            "matchLabelKeys narrows the selector to the pod's value",
            nodes(),
            vec![
                web("w1", "a1").label("rev", "1"),
                web("w2", "a2").label("rev", "1"),
                web("w3", "b1").label("rev", "2"),
            ],
            P::new("p")
                .label("app", "web")
                .label("rev", "2")
                .spec(&["topologySpreadConstraints"], spread(1, json!({"matchLabelKeys": ["rev"]}))),
            vec!["a1", "a2", "c1"],
            "",
        ),
    ];
    for (name, nodes, pods, pod, want, msg) in cases {
        let mut c = cluster(&nodes, &pods);
        let (feasible, m) = filter(&mut c, &pod);
        assert_eq!(feasible, names(&want), "{name}");
        assert_eq!(m, msg, "{name}");
    }
    let mut c = cluster(&[N::new("x1")], &[]);
    let (_, m) = filter(
        &mut c,
        &P::new("p").label("app", "web").spec(&["topologySpreadConstraints"], spread(1, json!({}))),
    );
    assert_eq!(
        m,
        "0/1 nodes are available: 1 node(s) didn't match pod topology spread constraints (missing required label)."
    );
}

#[test]
fn fit_error_message_counts_and_sorts_reasons() {
    let cp = |n: &str| N::new(n).taint("node-role.kubernetes.io/control-plane", "", "NoSchedule");
    let small = |n: &str| N::new(n).alloc(json!({"cpu": "1", "memory": "8Gi", "pods": "110"}));
    let mut c = cluster(&[cp("cp1"), cp("cp2"), small("w1"), small("w2"), small("w3")], &[]);
    let (_, m) = filter(&mut c, &P::new("p").req("2", "1Gi"));
    assert_eq!(
        m,
        "0/5 nodes are available: 2 node(s) had untolerated taint {node-role.kubernetes.io/control-plane: }, 3 Insufficient cpu."
    );
    // A node failing several resources counts for each; counts sort as strings, like Kubernetes.
    let many: Vec<N> = (0..10).map(|i| small(&format!("w{i}"))).chain([cp("cp")]).collect();
    let mut c = cluster(&many, &[]);
    let (_, m) = filter(&mut c, &P::new("p").req("2", "9Gi"));
    assert_eq!(
        m,
        "0/11 nodes are available: 1 node(s) had untolerated taint {node-role.kubernetes.io/control-plane: }, 10 Insufficient cpu, 10 Insufficient memory."
    );
    let mut empty = Cache::new();
    let err = schedule(&mut empty, &PodInfo::parse(&P::new("p").0), &mut 0).unwrap_err();
    assert_eq!(err.message(), "no nodes available to schedule pods");
}

// ------------------------------------------------------------------------------------------------
// Scores

#[test]
fn resource_scores_table() {
    // (node allocatable cpu/mem, already requested cpu/mem, pod cpu/mem, least allocated, balanced)
    type Case<'a> = (&'a str, &'a str, &'a str, &'a str, &'a str, &'a str, i64, i64);
    let cases: Vec<Case> = vec![
        ("4", "8Gi", "1", "4Gi", "1", "2Gi", 37, 87),
        ("4", "8Gi", "0", "0", "1", "1Gi", 81, 93),
        ("4", "8Gi", "1", "2Gi", "1", "2Gi", 50, 100),
        ("4", "8Gi", "2", "2Gi", "1", "1Gi", 43, 81),
        ("4", "8Gi", "4", "8Gi", "1", "1Gi", 0, 100),
        ("4", "4Gi", "1", "1Gi", "1", "1Gi", 50, 100),
    ];
    for (i, (cpu, mem, ucpu, umem, pcpu, pmem, least, balanced)) in cases.into_iter().enumerate() {
        let existing = if ucpu == "0" { vec![] } else { vec![P::new("e").req(ucpu, umem).on("n")] };
        let c = cluster(&[N::new("n").alloc(json!({"cpu": cpu, "memory": mem, "pods": "110"}))], &existing);
        let n = &c.nodes[0];
        let pod = PodInfo::parse(&P::new("p").req(pcpu, pmem).0);
        let spec = n.spec.as_deref().unwrap();
        assert_eq!(least_allocated(n, spec, &pod), least, "case {i} least allocated");
        assert_eq!(balanced_allocation(n, spec, &pod), balanced, "case {i} balanced");
    }
    // Pods requesting nothing count 100m / 200Mi for spreading, and skip balancing.
    let c = cluster(&[N::new("n").alloc(json!({"cpu": "1", "memory": "2000Mi", "pods": "110"}))], &[]);
    let n = &c.nodes[0];
    let empty = PodInfo::parse(&P::new("p").0);
    assert_eq!(least_allocated(n, n.spec.as_deref().unwrap(), &empty), 90);
    assert_eq!(balanced_allocation(n, n.spec.as_deref().unwrap(), &empty), 0);
}

#[test]
fn taint_toleration_score() {
    let nodes = [
        N::new("n0"),
        N::new("n1").taint("a", "1", "PreferNoSchedule"),
        N::new("n2").taint("a", "1", "PreferNoSchedule").taint("b", "2", "PreferNoSchedule"),
    ];
    let mut c = cluster(&nodes, &[]);
    assert_eq!(field(&scores(&mut c, &P::new("p")), |s| s.taint), pairs(&[("n0", 100), ("n1", 50), ("n2", 0)]));
    let tolerant = P::new("p").spec(&["tolerations"], json!([{"key": "a", "operator": "Exists", "effect": "PreferNoSchedule"}]));
    assert_eq!(field(&scores(&mut c, &tolerant), |s| s.taint), pairs(&[("n0", 100), ("n1", 100), ("n2", 0)]));
    // A NoSchedule-only toleration does not count for PreferNoSchedule taints.
    let wrong = P::new("p").spec(&["tolerations"], json!([{"key": "a", "operator": "Exists", "effect": "NoSchedule"}]));
    assert_eq!(field(&scores(&mut c, &wrong), |s| s.taint), pairs(&[("n0", 100), ("n1", 50), ("n2", 0)]));
}

#[test]
fn preferred_node_affinity_score() {
    let nodes = [
        N::new("n1").zone("a").label("gen", "3"),
        N::new("n2").zone("b").label("gen", "5"),
        N::new("n3").zone("c"),
    ];
    let pref = json!({"nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
        {"weight": 10, "preference": {"matchExpressions": [{"key": LABEL_ZONE, "operator": "In", "values": ["a"]}]}},
        {"weight": 5, "preference": {"matchExpressions": [{"key": "gen", "operator": "Exists"}]}},
    ]}});
    let mut c = cluster(&nodes, &[]);
    assert_eq!(
        field(&scores(&mut c, &P::new("p").spec(&["affinity"], pref)), |s| s.node_affinity),
        pairs(&[("n1", 100), ("n2", 33), ("n3", 0)])
    );
}

#[test]
fn inter_pod_affinity_score() {
    let nodes = [N::new("a1").zone("a"), N::new("a2").zone("a"), N::new("b1").zone("b")];
    let db = P::new("db").label("app", "db").on("a2");
    let term = |w: i64, app: &str| json!([{"weight": w, "podAffinityTerm": pod_term(json!({"matchLabels": {"app": app}}), LABEL_ZONE)}]);
    let prefer = |kind: &str, w: i64| json!({kind: {"preferredDuringSchedulingIgnoredDuringExecution": term(w, "db")}});
    let mut c = cluster(&nodes, std::slice::from_ref(&db));
    let s = scores(&mut c, &P::new("p").spec(&["affinity"], prefer("podAffinity", 10)));
    assert_eq!(field(&s, |s| s.inter_pod), pairs(&[("a1", 100), ("a2", 100), ("b1", 0)]));
    let s = scores(&mut c, &P::new("p").spec(&["affinity"], prefer("podAntiAffinity", 10)));
    assert_eq!(field(&s, |s| s.inter_pod), pairs(&[("a1", 0), ("a2", 0), ("b1", 100)]));
    // Existing pods' preferences and required affinity count for an incoming pod they match.
    let fan = P::new("fan").label("app", "fan").on("b1").spec(
        &["affinity"],
        json!({"podAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": term(20, "web")}}),
    );
    let mut c = cluster(&nodes, &[db.clone(), fan]);
    assert_eq!(
        field(&scores(&mut c, &P::new("web").label("app", "web")), |s| s.inter_pod),
        pairs(&[("a1", 0), ("a2", 0), ("b1", 100)])
    );
    let hard = P::new("hard").label("app", "hard").on("a1").spec(
        &["affinity"],
        affinity("podAffinity", json!([pod_term(json!({"matchLabels": {"app": "web"}}), LABEL_HOSTNAME)])),
    );
    let mut c = cluster(&nodes, &[db, hard]);
    assert_eq!(
        field(&scores(&mut c, &P::new("web").label("app", "web")), |s| s.inter_pod),
        pairs(&[("a1", 100), ("a2", 0), ("b1", 0)])
    );
    // No terms anywhere: no score.
    let mut c = cluster(&nodes, &[]);
    assert_eq!(field(&scores(&mut c, &P::new("p")), |s| s.inter_pod), pairs(&[("a1", 0), ("a2", 0), ("b1", 0)]));
}

#[test]
fn topology_spread_scores() {
    let nodes = [N::new("a1").zone("a"), N::new("a2").zone("a"), N::new("b1").zone("b"), N::new("c1").zone("c")];
    let web = |n: &str, node: &str| P::new(n).label("app", "web").on(node);
    let existing = [web("w1", "a1"), web("w2", "a2"), web("w3", "b1")];
    let soft = json!([{"maxSkew": 1, "topologyKey": LABEL_ZONE, "whenUnsatisfiable": "ScheduleAnyway", "labelSelector": {"matchLabels": {"app": "web"}}}]);
    let mut c = cluster(&nodes, &existing);
    let s = scores(&mut c, &P::new("p").label("app", "web").spec(&["topologySpreadConstraints"], soft));
    // Raw: zone a 2·ln(5)=3.2→3, b 1.6→2, c 0; normalized 100·(3+0−s)/3.
    assert_eq!(field(&s, |s| s.spread), pairs(&[("a1", 0), ("a2", 0), ("b1", 33), ("c1", 100)]));

    // No constraints: pods of the same ReplicaSet are spread by node and zone.
    let rs = |n: &str, node: &str| P::new(n).owned_by("ReplicaSet", "rs-1").on(node);
    let mut c = cluster(
        &nodes,
        &[
            rs("r1", "a1"),
            rs("r2", "a1"),
            rs("r3", "b1"),
            P::new("other").owned_by("ReplicaSet", "rs-2").on("c1"),
        ],
    );
    let s = scores(&mut c, &P::new("p").owned_by("ReplicaSet", "rs-1"));
    let by: Vec<(String, i64)> = field(&s, |s| s.spread);
    let get = |n: &str| by.iter().find(|(x, _)| x == n).unwrap().1;
    assert_eq!(get("c1"), 100);
    assert!(
        get("a1") < get("a2") && get("a1") < get("b1") && get("a2") < get("c1") && get("b1") < get("c1"),
        "{by:?}"
    );
    // A pod without an owner gets no default spreading.
    assert!(field(&scores(&mut c, &P::new("p")), |s| s.spread).iter().all(|(_, v)| *v == 0));
}

#[test]
fn ties_spread_over_nodes() {
    let nodes: Vec<N> = (0..10).map(|i| N::new(&format!("n{i}"))).collect();
    let mut c = cluster(&nodes, &[]);
    let mut chosen = std::collections::HashSet::new();
    let mut start = 0;
    for i in 0..50 {
        let p = PodInfo::parse(&P::new(&format!("p{i}")).0);
        chosen.insert(schedule(&mut c, &p, &mut start).unwrap());
    }
    assert!(chosen.len() >= 8, "ties should go to many nodes, got {}", chosen.len());
    // Deterministic for a given pod.
    let p = PodInfo::parse(&P::new("same").0);
    let first = schedule(&mut c, &p, &mut 0).unwrap();
    assert_eq!(schedule(&mut c, &p, &mut 3).unwrap(), first);
}

#[test]
fn best_total_wins() {
    // One node has room, the other is nearly full: the emptier one wins on resources; a
    // preferred taint on it turns the decision (taint weight 3 beats resources).
    let mut c = cluster(&[N::new("empty"), N::new("busy")], &[P::new("e").req("3", "6Gi").on("busy")]);
    let p = PodInfo::parse(&P::new("p").req("500m", "1Gi").0);
    let slot = schedule(&mut c, &p, &mut 0).unwrap();
    assert_eq!(c.node_name(slot), "empty");
    let mut c = cluster(
        &[N::new("empty").taint("x", "y", "PreferNoSchedule"), N::new("busy")],
        &[P::new("e").req("1", "2Gi").on("busy")],
    );
    let slot = schedule(&mut c, &p, &mut 0).unwrap();
    assert_eq!(c.node_name(slot), "busy");
}

// ------------------------------------------------------------------------------------------------
// Search, assumptions, bookkeeping

#[test]
fn feasible_node_count_table() {
    for (all, want) in [
        (0, 0),
        (50, 50),
        (99, 99),
        (100, 100),
        (200, 100),
        (1000, 420),
        (5000, 500),
        (6000, 300),
        (20000, 1000),
    ] {
        assert_eq!(num_feasible_nodes_to_find(all), want, "{all} nodes");
    }
}

#[test]
fn search_stops_early_rotates_and_never_misses_scarce_nodes() {
    let nodes: Vec<N> = (0..1000).map(|i| N::new(&format!("n{i:04}"))).collect();
    let mut c = cluster(&nodes, &[]);
    let p = PodInfo::parse(&P::new("p").0);
    let pre = pre_filter(&mut c, &p);
    let mut start = 0;
    let (f1, _) = find_feasible(&mut c, &p, &pre, &mut start);
    assert_eq!(f1.len(), 420);
    assert_eq!(start, 420);
    let (f2, _) = find_feasible(&mut c, &p, &pre, &mut start);
    assert_eq!(f2.len(), 420);
    assert!(f1.iter().all(|s| !f2.contains(s)), "the next search starts where the last stopped");

    // Only three nodes fit, scattered: all are found whatever the start.
    let nodes: Vec<N> = (0..1000)
        .map(|i| {
            if i % 333 == 7 {
                N::new(&format!("n{i:04}")).label("ok", "1")
            } else {
                N::new(&format!("n{i:04}"))
            }
        })
        .collect();
    let mut c = cluster(&nodes, &[]);
    let p = PodInfo::parse(&P::new("p").spec(&["nodeSelector"], json!({"ok": "1"})).0);
    let pre = pre_filter(&mut c, &p);
    for s in [0, 500, 999] {
        let mut start = s;
        assert_eq!(find_feasible(&mut c, &p, &pre, &mut start).0.len(), 3);
    }
}

#[test]
fn zones_are_interleaved_in_search_order() {
    let nodes: Vec<N> = (0..6).map(|i| N::new(&format!("n{i}")).zone(if i < 3 { "a" } else { "b" })).collect();
    let mut c = cluster(&nodes, &[]);
    let order: Vec<String> = c.live_nodes().to_vec().into_iter().map(|s| c.node_name(s).to_string()).collect();
    assert_eq!(order, names(&["n0", "n3", "n1", "n4", "n2", "n5"]));
}

#[test]
fn assume_and_forget_restore_aggregates_and_indexes() {
    let mut c = cluster(
        &[N::new("n1").zone("a"), N::new("n2").zone("b")],
        &[P::new("e").label("app", "web").req("1", "1Gi").on("n1")],
    );
    let spread = json!([{"maxSkew": 1, "topologyKey": LABEL_ZONE, "whenUnsatisfiable": "DoNotSchedule", "labelSelector": {"matchLabels": {"app": "web"}}}]);
    let web = P::new("w")
        .label("app", "web")
        .req("1", "1Gi")
        .spec(&["topologySpreadConstraints"], spread.clone());
    assert_eq!(filter(&mut c, &web).0, names(&["n2"]));
    let before = (c.nodes[1].requested.clone(), c.nodes[1].pod_count);
    let info = Arc::new(PodInfo::parse(
        &P::new("x").label("app", "web").req("2", "2Gi").spec(&["hostNetwork"], json!(true)).0,
    ));
    c.add_pod(info, "n2", true);
    assert!(c.acct("default/x").unwrap().assumed);
    assert_eq!(c.nodes[1].pod_count, 1);
    // The registered spread query saw the assumed pod: both zones now have one.
    assert_eq!(filter(&mut c, &web).0, names(&["n1", "n2"]));
    c.remove_pod("default/x");
    assert_eq!((c.nodes[1].requested.clone(), c.nodes[1].pod_count), before);
    assert_eq!(filter(&mut c, &web).0, names(&["n2"]));
    // A query registered later counts what is there.
    c.gc();
    c.gc();
    assert_eq!(c.num_queries(), 0);
    assert_eq!(filter(&mut c, &web).0, names(&["n2"]));
}

#[test]
fn node_changes_are_seen_by_cached_spread_domains() {
    let spread = json!([{"maxSkew": 1, "topologyKey": LABEL_ZONE, "whenUnsatisfiable": "DoNotSchedule", "labelSelector": {"matchLabels": {"app": "web"}}}]);
    let web = P::new("w").label("app", "web").spec(&["topologySpreadConstraints"], spread);
    let mut c = cluster(&[N::new("a1").zone("a")], &[P::new("e").label("app", "web").on("a1")]);
    assert_eq!(filter(&mut c, &web).0, names(&["a1"]));
    // A new empty zone lowers the minimum to 0: zone a (1 pod) is now too crowded.
    c.upsert_node(NodeSpec::parse(&N::new("b1").zone("b").0));
    assert_eq!(filter(&mut c, &web).0, names(&["b1"]));
    c.remove_node("b1");
    assert_eq!(filter(&mut c, &web).0, names(&["a1"]));
}

#[test]
fn unschedulable_status_patch() {
    let pod = json!({"metadata": {"resourceVersion": "7"}, "status": {"conditions": [{"type": "Initialized", "status": "True"}]}});
    let patch = unschedulable_patch(&pod, "0/1 nodes are available: 1 Insufficient cpu.", "2024-01-01T00:00:00Z").unwrap();
    assert_eq!(patch["metadata"]["resourceVersion"], "7");
    let conds = patch["status"]["conditions"].as_array().unwrap();
    assert_eq!(conds.len(), 2);
    assert_eq!(conds[0]["type"], "Initialized");
    assert_eq!(conds[1]["type"], "PodScheduled");
    assert_eq!(conds[1]["status"], "False");
    assert_eq!(conds[1]["reason"], "Unschedulable");
    // Already saying so: nothing to write; a new message keeps the transition time.
    let mut pod2 = pod.clone();
    pod2["status"]["conditions"] = patch["status"]["conditions"].clone();
    assert!(unschedulable_patch(&pod2, "0/1 nodes are available: 1 Insufficient cpu.", "later").is_none());
    let p3 = unschedulable_patch(&pod2, "0/2 nodes are available: 2 Insufficient cpu.", "later").unwrap();
    assert_eq!(p3["status"]["conditions"][1]["lastTransitionTime"], "2024-01-01T00:00:00Z");
}

/// Decisions per second of the algorithm alone (parse, filter, score, assume), on the scale
/// test's cluster shape; `shape` adds constraints to pod `i`.
fn algorithm_rate(nodes: usize, pods: usize, what: &str, shape: impl Fn(usize, P) -> P) -> f64 {
    let ns: Vec<N> = (0..nodes)
        .map(|i| {
            N::new(&format!("node-{i:05}"))
                .alloc(json!({"cpu": "4", "memory": "16Gi", "pods": "110"}))
                .zone(&format!("zone-{}", i % 10))
        })
        .collect();
    let mut c = cluster(&ns, &[]);
    let cpus = ["100m", "200m", "250m", "300m", "500m"];
    let mems = ["128Mi", "256Mi", "512Mi", "1Gi"];
    let objs: Vec<Value> = (0..pods)
        .map(|i| {
            let p = P::new(&format!("p{i:06}"))
                .req(cpus[i % 5], mems[(i / 5) % 4])
                .label("app", &format!("app-{}", i % 20))
                .owned_by("ReplicaSet", &format!("rs-{}", i % 20));
            shape(i, p).0
        })
        .collect();
    let mut start = 0;
    let t0 = std::time::Instant::now();
    for o in &objs {
        let info = Arc::new(PodInfo::parse(o));
        let slot = schedule(&mut c, &info, &mut start).expect("fits");
        let name = c.node_name(slot).to_string();
        c.add_pod(info, &name, true);
    }
    let rate = pods as f64 / t0.elapsed().as_secs_f64();
    println!("algorithm, {what}: {pods} pods on {nodes} nodes: {rate:.0} pods/s");
    for n in &c.nodes {
        let s = n.spec.as_deref().unwrap();
        assert!(n.requested.milli_cpu <= s.allocatable.milli_cpu && n.requested.memory <= s.allocatable.memory && n.pod_count <= s.allowed_pods);
    }
    rate
}

fn spread_constraints(i: usize, p: P) -> P {
    p.spec(
        &["topologySpreadConstraints"],
        json!([
            {"maxSkew": 1, "topologyKey": LABEL_ZONE, "whenUnsatisfiable": "DoNotSchedule", "labelSelector": {"matchLabels": {"app": format!("app-{}", i % 20)}}},
            {"maxSkew": 1, "topologyKey": LABEL_HOSTNAME, "whenUnsatisfiable": "ScheduleAnyway", "labelSelector": {"matchLabels": {"app": format!("app-{}", i % 20)}}},
        ]),
    )
}

fn hostname_anti_affinity(i: usize, p: P) -> P {
    p.spec(
        &["affinity"],
        affinity(
            "podAntiAffinity",
            json!([pod_term(json!({"matchLabels": {"app": format!("app-{}", i % 20)}}), LABEL_HOSTNAME)]),
        ),
    )
}

#[test]
fn algorithm_throughput_1000_nodes() {
    assert!(algorithm_rate(1000, 10_000, "plain", |_, p| p) > 1000.0);
    assert!(algorithm_rate(1000, 5_000, "zone spread + hostname spread", spread_constraints) > 200.0);
    assert!(algorithm_rate(1000, 5_000, "hostname anti-affinity", hostname_anti_affinity) > 200.0);
}

#[test]
#[ignore]
fn algorithm_throughput_5000_nodes() {
    algorithm_rate(5000, 50_000, "plain", |_, p| p);
    algorithm_rate(5000, 50_000, "zone spread + hostname spread", spread_constraints);
    algorithm_rate(5000, 50_000, "hostname anti-affinity", hostname_anti_affinity);
    // A pod no node fits is checked against every node, with its reasons counted.
    let ns: Vec<N> = (0..5000).map(|i| N::new(&format!("node-{i:05}")).zone(&format!("zone-{}", i % 10))).collect();
    let mut c = cluster(&ns, &[]);
    let huge = PodInfo::parse(&P::new("huge").req("64", "1Gi").0);
    let t0 = std::time::Instant::now();
    for _ in 0..100 {
        assert!(schedule(&mut c, &huge, &mut 0).is_err());
    }
    println!("unschedulable pod on 5000 nodes: {:?} per attempt", t0.elapsed() / 100);
}
