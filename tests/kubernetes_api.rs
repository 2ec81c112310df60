//! End-to-end: the real `kubectl` (and the official Python client) against real `rkube server`
//! processes.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use chaos::{Cluster, ClusterOptions, KubeClient};
use serde_json::{Value, json};

const MANIFEST: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/manifests/all.yaml");

fn kubectl_in(kc: &Path, args: &[&str], stdin: Option<&str>) -> Result<String, String> {
    let mut cmd = Command::new("kubectl");
    cmd.arg("--kubeconfig").arg(kc).args(args).stdout(Stdio::piped()).stderr(Stdio::piped());
    if stdin.is_some() {
        cmd.stdin(Stdio::piped());
    }
    let mut child = cmd.spawn().expect("kubectl is installed");
    if let Some(input) = stdin {
        child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    }
    let out = child.wait_with_output().unwrap();
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!("{}{}", String::from_utf8_lossy(&out.stderr), String::from_utf8_lossy(&out.stdout)))
    }
}

fn k(kc: &Path, args: &[&str]) -> String {
    kubectl_in(kc, args, None).unwrap_or_else(|e| panic!("kubectl {} failed: {e}", args.join(" ")))
}

fn k_err(kc: &Path, args: &[&str]) -> String {
    match kubectl_in(kc, args, None) {
        Ok(out) => panic!("kubectl {} should have failed but printed: {out}", args.join(" ")),
        Err(e) => e,
    }
}

async fn one_master() -> (Cluster, PathBuf) {
    let c = Cluster::start(ClusterOptions { size: 1, ..Default::default() }).await.unwrap();
    let kc = c.wait_api(0, Duration::from_secs(30)).await.unwrap();
    (c, kc)
}

fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_manages_every_resource() {
    let (_c, kc) = one_master().await;
    every_resource_flow(&Kctl::new(vec![kc], 0), &mut |_| {});
}

/// kubectl against a cluster: runs every command on the current master's kubeconfig and, once a
/// master is marked dead, retries unavailability errors on the other survivors until a deadline.
struct Kctl {
    kcs: Vec<PathBuf>,
    cur: std::cell::Cell<usize>,
    dead: std::cell::RefCell<Vec<usize>>,
}

impl Kctl {
    fn new(kcs: Vec<PathBuf>, cur: usize) -> Kctl {
        Kctl { kcs, cur: std::cell::Cell::new(cur), dead: Default::default() }
    }

    fn mark_dead(&self, i: usize) {
        self.dead.borrow_mut().push(i);
        if self.cur.get() == i {
            self.rotate();
        }
    }

    fn live(&self) -> Vec<usize> {
        (0..self.kcs.len()).filter(|i| !self.dead.borrow().contains(i)).collect()
    }

    fn rotate(&self) {
        let live = self.live();
        let pos = live.iter().position(|i| *i == self.cur.get()).map_or(0, |p| p + 1);
        self.cur.set(live[pos % live.len()]);
    }

    fn run(&self, args: &[&str], stdin: Option<&str>) -> Result<String, String> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            match kubectl_in(&self.kcs[self.cur.get()], args, stdin) {
                Err(e) if !self.dead.borrow().is_empty() && Instant::now() < deadline && unavailable(&e) => {
                    eprintln!("kubectl {} on master {}: {e}; retrying", args.join(" "), self.cur.get());
                    self.rotate();
                    std::thread::sleep(Duration::from_millis(300));
                }
                r => return r,
            }
        }
    }

    fn k(&self, args: &[&str]) -> String {
        self.run(args, None).unwrap_or_else(|e| panic!("kubectl {} failed: {e}", args.join(" ")))
    }

    fn k_err(&self, args: &[&str]) -> String {
        match self.run(args, None) {
            Ok(out) => panic!("kubectl {} should have failed but printed: {out}", args.join(" ")),
            Err(e) => e,
        }
    }
}

/// Errors that mean "no master could serve this right now" rather than a refusal of the request.
fn unavailable(e: &str) -> bool {
    ["connection refused", "Unable to connect", "ServiceUnavailable", "503", "timeout", "Timeout", "EOF", "connection reset", "unavailable", "leader"]
        .iter()
        .any(|w| e.contains(w))
}

/// One row per kind in tests/manifests/all.yaml: a field (JSON pointer) that the second apply
/// changes (by replacing `from` with `to` in the manifest), that a strategic merge patch then
/// changes, and that a `kubectl replace` finally sets.
struct KindRow {
    kind: &'static str,
    name: &'static str,
    ns: Option<&'static str>,
    ptr: &'static str,
    from: &'static str,
    to: &'static str,
    applied: Value,
    strategic: &'static str,
    patched: Value,
    replaced: Value,
}

fn kind_rows() -> Vec<KindRow> {
    let e = Some("e2e");
    let row = |kind, name, ns, ptr, from, to, applied, strategic, patched, replaced| KindRow { kind, name, ns, ptr, from, to, applied, strategic, patched, replaced };
    let b64 = |s: &str| {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD.encode(s)
    };
    vec![
        row("configmap", "app-config", e, "/data/mode", "mode: \"one\"", "mode: \"two\"", json!("two"), r#"{"data":{"mode":"three"}}"#, json!("three"), json!("four")),
        row("secret", "app-secret", e, "/data/password", "stringData: {password: hunter2}", "stringData: {password: hunter3}", json!(b64("hunter3")), r#"{"stringData":{"password":"hunter4"}}"#, json!(b64("hunter4")), json!(b64("hunter5"))),
        row("serviceaccount", "builder", e, "/automountServiceAccountToken", "automountServiceAccountToken: true", "automountServiceAccountToken: false", json!(false), r#"{"automountServiceAccountToken":true}"#, json!(true), json!(false)),
        row("deployment", "web", e, "/spec/template/spec/containers/0/image", "image: busybox:1.36", "image: busybox:1.37", json!("busybox:1.37"), r#"{"spec":{"template":{"spec":{"containers":[{"name":"web","image":"busybox:1.38"}]}}}}"#, json!("busybox:1.38"), json!("busybox:1.39")),
        row("service", "web", e, "/spec/sessionAffinity", "  selector: {app: web}\n  ports: [{name: http, port: 80, targetPort: http}]", "  selector: {app: web}\n  sessionAffinity: ClientIP\n  ports: [{name: http, port: 80, targetPort: http}]", json!("ClientIP"), r#"{"spec":{"sessionAffinity":"None"}}"#, json!("None"), json!("ClientIP")),
        row("replicaset", "rs1", e, "/spec/template/spec/containers/0/image", "busybox:1.31", "busybox:1.41", json!("busybox:1.41"), r#"{"spec":{"template":{"spec":{"containers":[{"name":"c","image":"busybox:1.42"}]}}}}"#, json!("busybox:1.42"), json!("busybox:1.43")),
        row("daemonset", "ds1", e, "/spec/template/spec/containers/0/image", "busybox:1.32", "busybox:1.41", json!("busybox:1.41"), r#"{"spec":{"template":{"spec":{"containers":[{"name":"c","image":"busybox:1.42"}]}}}}"#, json!("busybox:1.42"), json!("busybox:1.43")),
        row("statefulset", "db", e, "/spec/template/spec/containers/0/image", "busybox:1.33", "busybox:1.41", json!("busybox:1.41"), r#"{"spec":{"template":{"spec":{"containers":[{"name":"c","image":"busybox:1.42"}]}}}}"#, json!("busybox:1.42"), json!("busybox:1.43")),
        row("job", "once", e, "/spec/parallelism", "parallelism: 1", "parallelism: 2", json!(2), r#"{"spec":{"parallelism":3}}"#, json!(3), json!(4)),
        row("cronjob", "nightly", e, "/spec/schedule", "schedule: \"0 3 * * *\"", "schedule: \"0 4 * * *\"", json!("0 4 * * *"), r#"{"spec":{"schedule":"0 5 * * *"}}"#, json!("0 5 * * *"), json!("0 6 * * *")),
        row("horizontalpodautoscaler", "web", e, "/spec/maxReplicas", "maxReplicas: 5", "maxReplicas: 6", json!(6), r#"{"spec":{"maxReplicas":7}}"#, json!(7), json!(8)),
        row("pod", "solo", e, "/spec/containers/0/image", "busybox:1.35", "busybox:1.41", json!("busybox:1.41"), r#"{"spec":{"containers":[{"name":"c","image":"busybox:1.42"}]}}"#, json!("busybox:1.42"), json!("busybox:1.43")),
        row("endpoints", "external", e, "/subsets/0/ports/0/port", "ports: [{port: 5432}]}]", "ports: [{port: 5433}]}]", json!(5433), r#"{"subsets":[{"addresses":[{"ip":"100.64.1.10"}],"ports":[{"port":5434}]}]}"#, json!(5434), json!(5435)),
        row("endpointslice", "external-1", e, "/ports/0/port", "\nports: [{port: 5432}]", "\nports: [{port: 5433}]", json!(5433), r#"{"ports":[{"port":5434}]}"#, json!(5434), json!(5435)),
        row("lease", "leader", e, "/spec/leaseDurationSeconds", "leaseDurationSeconds: 15", "leaseDurationSeconds: 16", json!(16), r#"{"spec":{"leaseDurationSeconds":17}}"#, json!(17), json!(18)),
        row("event", "solo.1", e, "/message", "message: an event for the test", "message: a changed event", json!("a changed event"), r#"{"message":"a patched event"}"#, json!("a patched event"), json!("a replaced event")),
        // A pending claim's spec is immutable, as in Kubernetes: its labels are the field.
        row("persistentvolumeclaim", "data", e, "/metadata/labels/size", "labels: {size: small}", "labels: {size: medium}", json!("medium"), r#"{"metadata":{"labels":{"size":"large"}}}"#, json!("large"), json!("huge")),
        row("role", "reader", e, "/rules/0/verbs", "resources: [pods], verbs: [get, list, watch]", "resources: [pods], verbs: [get, list]", json!(["get", "list"]), r#"{"rules":[{"apiGroups":[""],"resources":["pods"],"verbs":["get"]}]}"#, json!(["get"]), json!(["watch"])),
        row("rolebinding", "reader", e, "/subjects/0/name", "subjects: [{kind: ServiceAccount, name: builder, namespace: e2e}]\nroleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role,", "subjects: [{kind: ServiceAccount, name: b2, namespace: e2e}]\nroleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role,", json!("b2"), r#"{"subjects":[{"kind":"ServiceAccount","name":"b3","namespace":"e2e"}]}"#, json!("b3"), json!("b4")),
        row("clusterrole", "e2e-viewer", None, "/rules/0/verbs", "resources: [namespaces], verbs: [get, list]", "resources: [namespaces], verbs: [get, list, watch]", json!(["get", "list", "watch"]), r#"{"rules":[{"apiGroups":[""],"resources":["namespaces"],"verbs":["get"]}]}"#, json!(["get"]), json!(["list"])),
        row("clusterrolebinding", "e2e-viewer", None, "/subjects/0/name", "subjects: [{kind: ServiceAccount, name: builder, namespace: e2e}]\nroleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole,", "subjects: [{kind: ServiceAccount, name: b2, namespace: e2e}]\nroleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole,", json!("b2"), r#"{"subjects":[{"kind":"ServiceAccount","name":"b3","namespace":"e2e"}]}"#, json!("b3"), json!("b4")),
        row("node", "e2e-node-1", None, "/spec/unschedulable", "unschedulable: false", "unschedulable: true", json!(true), r#"{"spec":{"unschedulable":false}}"#, json!(false), json!(true)),
        row("namespace", "e2e", None, "/metadata/labels/purpose", "labels: {purpose: test}", "labels: {purpose: changed}", json!("changed"), r#"{"metadata":{"labels":{"purpose":"patched"}}}"#, json!("patched"), json!("replaced")),
    ]
}

impl KindRow {
    fn args<'a>(&'a self, extra: &[&'a str]) -> Vec<&'a str> {
        let mut v = extra.to_vec();
        if let Some(n) = self.ns {
            v.extend(["-n", n]);
        }
        v
    }

    fn field(&self, kc: &Kctl) -> Value {
        let obj: Value = serde_json::from_str(&kc.k(&self.args(&["get", self.kind, self.name, "-o", "json"]))).unwrap();
        obj.pointer(self.ptr).cloned().unwrap_or(Value::Null)
    }
}

/// The kubectl flow over one object of every kind; `midway` runs in the middle of it (the
/// three-master test kills the leader there).
fn every_resource_flow(kc: &Kctl, midway: &mut dyn FnMut(&Kctl)) {
    // Bootstrap state.
    let ns = kc.k(&["get", "namespaces", "-o", "name"]);
    for want in ["default", "kube-system", "kube-public", "kube-node-lease"] {
        assert!(ns.contains(&format!("namespace/{want}")), "{ns}");
    }
    assert!(kc.k(&["get", "svc", "kubernetes", "-o", "jsonpath={.spec.clusterIP}"]).starts_with("100.64.128."));
    let version = kc.k(&["version", "-o", "json"]);
    assert!(version.contains("\"minor\": \"33\""), "{version}");

    // A multi-document manifest with one object of every kind.
    let out = kc.k(&["apply", "-f", MANIFEST]);
    for want in [
        "namespace/e2e created", "configmap/app-config created", "secret/app-secret created", "deployment.apps/web created",
        "service/web created", "replicaset.apps/rs1 created", "daemonset.apps/ds1 created", "statefulset.apps/db created",
        "job.batch/once created", "cronjob.batch/nightly created", "horizontalpodautoscaler.autoscaling/web created",
        "pod/solo created", "endpoints/external created", "endpointslice.discovery.k8s.io/external-1 created",
        "lease.coordination.k8s.io/leader created", "event/solo.1 created", "persistentvolumeclaim/data created",
        "role.rbac.authorization.k8s.io/reader created", "rolebinding.rbac.authorization.k8s.io/reader created",
        "clusterrole.rbac.authorization.k8s.io/e2e-viewer created", "node/e2e-node-1 created",
    ] {
        assert!(out.contains(want), "missing {want:?} in:\n{out}");
    }
    // Applying the same manifest again changes nothing.
    let again = kc.k(&["apply", "-f", MANIFEST]);
    assert!(again.contains("deployment.apps/web unchanged"), "{again}");

    // Table output with the usual columns, short names, categories.
    let pods = kc.k(&["get", "po", "-n", "e2e"]);
    assert!(pods.starts_with("NAME") && pods.contains("READY") && pods.contains("STATUS") && pods.contains("RESTARTS") && pods.contains("AGE"), "{pods}");
    assert!(pods.contains("solo") && pods.contains("Pending"), "{pods}");
    let deploy = kc.k(&["get", "deploy", "-n", "e2e"]);
    assert!(deploy.contains("UP-TO-DATE") && deploy.contains("AVAILABLE") && deploy.contains("web"), "{deploy}");
    let svc = kc.k(&["get", "svc", "-n", "e2e", "-o", "wide"]);
    assert!(svc.contains("CLUSTER-IP") && svc.contains("SELECTOR") && svc.contains("80:3"), "NodePort allocated: {svc}");
    let all = kc.k(&["get", "all", "-n", "e2e", "-o", "name"]);
    for want in ["pod/solo", "service/web", "deployment.apps/web", "replicaset.apps/rs1", "statefulset.apps/db", "job.batch/once", "cronjob.batch/nightly"] {
        assert!(all.contains(want), "`get all` lacks {want}: {all}");
    }
    assert!(kc.k(&["get", "no"]).contains("e2e-node-1"));
    assert!(kc.k(&["get", "cm,secret,sa,ep,lease,ev,pvc,role,rolebinding,hpa,endpointslice", "-n", "e2e", "-o", "name"]).lines().count() >= 11);

    // describe
    let d = kc.k(&["describe", "deployment", "web", "-n", "e2e"]);
    assert!(d.contains("Replicas:") && d.contains("busybox:1.36") && d.contains("RollingUpdate"), "{d}");
    let d = kc.k(&["describe", "pod", "solo", "-n", "e2e"]);
    assert!(d.contains("Status:") && d.contains("Pending"), "{d}");

    // Server-set metadata and defaults.
    let uid = kc.k(&["get", "deploy", "web", "-n", "e2e", "-o", "jsonpath={.metadata.uid}"]);
    assert_eq!(uid.len(), 36);
    let gen1: u64 = kc.k(&["get", "deploy", "web", "-n", "e2e", "-o", "jsonpath={.metadata.generation}"]).parse().unwrap();

    // Second apply changing a field of every kind; strategic merge keeps what it must.
    let rows = kind_rows();
    let mut changed = std::fs::read_to_string(MANIFEST).unwrap();
    for r in &rows {
        assert_eq!(changed.matches(r.from).count(), 1, "{}: {:?} must occur once in the manifest", r.kind, r.from);
        changed = changed.replace(r.from, r.to);
    }
    let out = kc.run(&["apply", "-f", "-"], Some(&changed)).unwrap();
    for r in &rows {
        assert_eq!(r.field(kc), r.applied, "{} {} after the second apply:\n{out}", r.kind, r.name);
    }
    assert!(out.contains("deployment.apps/web configured") && out.contains("configmap/app-config configured"), "{out}");
    assert_eq!(kc.k(&["get", "deploy", "web", "-n", "e2e", "-o", "jsonpath={.spec.template.spec.containers[0].ports[0].containerPort}"]), "8080");
    let gen2: u64 = kc.k(&["get", "deploy", "web", "-n", "e2e", "-o", "jsonpath={.metadata.generation}"]).parse().unwrap();
    assert_eq!(gen2, gen1 + 1, "generation bumps on spec changes");
    assert_eq!(kc.k(&["get", "cm", "app-config", "-n", "e2e", "-o", "jsonpath={.data.settings\\.json}"]), r#"{"a": 1}"#);

    // Strategic merge patch (kubectl's default type) and replace, for every kind; the leader
    // may die halfway.
    for (i, r) in rows.iter().enumerate() {
        if i == rows.len() / 2 {
            midway(kc);
        }
        kc.k(&r.args(&["patch", r.kind, r.name, "-p", r.strategic]));
        assert_eq!(r.field(kc), r.patched, "{} {} after a strategic merge patch", r.kind, r.name);
        kc.k(&r.args(&["patch", r.kind, r.name, "--type=strategic", "-p", r#"{"metadata":{"annotations":{"strategic":"yes"}}}"#]));
        let mut obj: Value = serde_json::from_str(&kc.k(&r.args(&["get", r.kind, r.name, "-o", "json"]))).unwrap();
        assert_eq!(obj["metadata"]["annotations"]["strategic"], "yes", "{}", r.kind);
        *obj.pointer_mut(r.ptr).unwrap() = r.replaced.clone();
        let out = kc.run(&["replace", "-f", "-"], Some(&obj.to_string())).unwrap_or_else(|e| panic!("replace {}: {e}", r.kind));
        assert!(out.contains("replaced"), "{out}");
        assert_eq!(r.field(kc), r.replaced, "{} {} after replace", r.kind, r.name);
    }
    // Every master that is up serves the same values.
    let here = kc.cur.get();
    for m in kc.live() {
        kc.cur.set(m);
        for r in &rows {
            assert_eq!(r.field(kc), r.replaced, "{} {} on master {m}", r.kind, r.name);
        }
    }
    kc.cur.set(here);

    // The three patch types.
    kc.k(&["patch", "deploy", "web", "-n", "e2e", "--type=strategic", "-p", r#"{"spec":{"template":{"spec":{"containers":[{"name":"sidecar","image":"busybox"}]}}}}"#]);
    let names = kc.k(&["get", "deploy", "web", "-n", "e2e", "-o", "jsonpath={.spec.template.spec.containers[*].name}"]);
    assert!(names.contains("sidecar") && names.contains("web"), "strategic patch merges containers by name: {names}");
    kc.k(&["patch", "cm", "app-config", "-n", "e2e", "--type=merge", "-p", r#"{"data":{"extra":"x","mode":null}}"#]);
    assert_eq!(kc.k(&["get", "cm", "app-config", "-n", "e2e", "-o", "jsonpath={.data}"]), r#"{"extra":"x","settings.json":"{\"a\": 1}"}"#);
    kc.k(&["patch", "lease", "leader", "-n", "e2e", "--type=json", "-p", r#"[{"op":"replace","path":"/spec/holderIdentity","value":"you"}]"#]);
    assert_eq!(kc.k(&["get", "lease", "leader", "-n", "e2e", "-o", "jsonpath={.spec.holderIdentity}"]), "you");

    // label, annotate, scale.
    kc.k(&["label", "pod", "solo", "-n", "e2e", "tier=backend"]);
    assert_eq!(kc.k(&["get", "pods", "-n", "e2e", "-l", "tier=backend", "-o", "name"]).trim(), "pod/solo");
    assert!(kc.k(&["get", "pods", "-n", "e2e", "-l", "tier!=backend,app=solo", "-o", "name"]).trim().is_empty());
    kc.k(&["annotate", "svc", "web", "-n", "e2e", "owner=team-a"]);
    assert_eq!(kc.k(&["get", "svc", "web", "-n", "e2e", "-o", "jsonpath={.metadata.annotations.owner}"]), "team-a");
    kc.k(&["scale", "deploy", "web", "-n", "e2e", "--replicas=4"]);
    kc.k(&["scale", "rs", "rs1", "-n", "e2e", "--replicas=3"]);
    kc.k(&["scale", "sts", "db", "-n", "e2e", "--replicas=2"]);
    assert_eq!(kc.k(&["get", "deploy", "web", "-n", "e2e", "-o", "jsonpath={.spec.replicas}"]), "4");
    assert_eq!(kc.k(&["get", "rs", "rs1", "-n", "e2e", "-o", "jsonpath={.spec.replicas}"]), "3");
    assert_eq!(kc.k(&["get", "sts", "db", "-n", "e2e", "-o", "jsonpath={.spec.replicas}"]), "2");

    // Every kind: get -o yaml, describe, label, annotate, a merge patch, and a JSON patch.
    for (kind, name, ns) in [
        ("configmap", "app-config", Some("e2e")), ("secret", "app-secret", Some("e2e")), ("serviceaccount", "builder", Some("e2e")),
        ("deployment", "web", Some("e2e")), ("service", "web", Some("e2e")), ("replicaset", "rs1", Some("e2e")),
        ("daemonset", "ds1", Some("e2e")), ("statefulset", "db", Some("e2e")), ("job", "once", Some("e2e")),
        ("cronjob", "nightly", Some("e2e")), ("horizontalpodautoscaler", "web", Some("e2e")), ("pod", "solo", Some("e2e")),
        ("endpoints", "external", Some("e2e")), ("endpointslice", "external-1", Some("e2e")), ("lease", "leader", Some("e2e")),
        ("event", "solo.1", Some("e2e")), ("persistentvolumeclaim", "data", Some("e2e")), ("role", "reader", Some("e2e")),
        ("rolebinding", "reader", Some("e2e")), ("clusterrole", "e2e-viewer", None), ("clusterrolebinding", "e2e-viewer", None),
        ("node", "e2e-node-1", None), ("namespace", "e2e", None),
    ] {
        let mut base = vec![];
        if let Some(n) = ns {
            base.extend(["-n", n]);
        }
        let with = |extra: &[&str]| -> Vec<String> { extra.iter().chain(base.iter()).map(|s| s.to_string()).collect() };
        let run = |args: Vec<String>| kc.k(&args.iter().map(|s| s.as_str()).collect::<Vec<_>>());
        let yaml = run(with(&["get", kind, name, "-o", "yaml"]));
        assert!(yaml.contains(&format!("name: {name}")) && yaml.contains("resourceVersion:") && yaml.contains("uid:"), "{kind}: {yaml}");
        assert!(run(with(&["describe", kind, name])).contains(name), "describe {kind}");
        run(with(&["label", kind, name, "checked=yes", "--overwrite"]));
        run(with(&["annotate", kind, name, "checked=yes", "--overwrite"]));
        run(with(&["patch", kind, name, "--type=merge", "-p", r#"{"metadata":{"labels":{"merged":"1"}}}"#]));
        run(with(&["patch", kind, name, "--type=json", "-p", r#"[{"op":"add","path":"/metadata/annotations/jsonpatched","value":"1"}]"#]));
        let labels = run(with(&["get", kind, name, "-o", "jsonpath={.metadata.labels.checked}-{.metadata.labels.merged}-{.metadata.annotations.jsonpatched}"]));
        assert_eq!(labels, "yes-1-1", "{kind}");
        assert!(run(with(&["get", kind, "-l", "checked=yes", "-o", "name"])).contains(name), "{kind} by label");
    }

    // Field selectors, pagination.
    assert_eq!(kc.k(&["get", "pods", "-A", "--field-selector", "metadata.name=solo", "-o", "name"]).trim(), "pod/solo");
    for i in 0..25 {
        kc.run(&["apply", "-f", "-"], Some(&format!("apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: page-{i:02}, namespace: e2e}}\n"))).unwrap();
    }
    let paged = kc.k(&["get", "cm", "-n", "e2e", "--chunk-size=4", "-o", "name"]);
    assert_eq!(paged.lines().filter(|l| l.contains("page-")).count(), 25);

    // Optimistic concurrency: a stale resourceVersion is a conflict.
    let stale = kc.k(&["get", "cm", "app-config", "-n", "e2e", "-o", "json"]);
    kc.k(&["label", "cm", "app-config", "-n", "e2e", "bump=1"]);
    let err = kc.run(&["replace", "-f", "-"], Some(&stale)).unwrap_err();
    assert!(err.contains("Conflict") || err.contains("the object has been modified"), "{err}");
    // Create of an existing name.
    let err = kc.run(&["create", "-f", "-"], Some("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: app-config, namespace: e2e}\n")).unwrap_err();
    assert!(err.contains("AlreadyExists") || err.contains("already exists"), "{err}");
    // Validation errors come back as 422 with field causes.
    let err = kc.run(&["apply", "-f", "-"], Some("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: Bad_Name, namespace: e2e}\n")).unwrap_err();
    assert!(err.contains("Invalid") && err.contains("metadata.name"), "{err}");
    // Unknown fields are refused by kubectl's strict validation.
    let err = kc.run(&["apply", "-f", "-"], Some("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: strict, namespace: e2e}\nbogus: 1\n")).unwrap_err();
    assert!(err.contains("unknown field") && err.contains("bogus"), "{err}");
    // dry run writes nothing.
    kc.run(&["apply", "--dry-run=server", "-f", "-"], Some("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: dry, namespace: e2e}\n")).unwrap();
    assert!(kc.run(&["get", "cm", "dry", "-n", "e2e"], None).is_err());
    // explain reads the OpenAPI documents.
    let ex = kc.k(&["explain", "deployment.spec.strategy.rollingUpdate"]);
    assert!(ex.contains("maxSurge"), "{ex}");

    // Delete every kind by name (the namespace last), then check it is gone.
    let (page, name) = ("configmap", "page-00");
    kc.k(&["delete", page, name, "-n", "e2e"]);
    assert!(kc.k_err(&["get", page, name, "-n", "e2e"]).contains("NotFound"));
    for r in &rows {
        kc.k(&r.args(&["delete", r.kind, r.name]));
        wait_until(&format!("{} {} to go", r.kind, r.name), || {
            kc.run(&r.args(&["get", r.kind, r.name]), None).is_err_and(|e| e.contains("NotFound"))
        });
    }
    // The namespace took what was left in it.
    assert!(kc.k(&["get", "cm", "-n", "e2e", "-o", "name"]).trim().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_get_watch_streams_later_changes() {
    let (_c, kc) = one_master().await;
    let mut child = Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(&kc)
        .args(["get", "configmaps", "-w", "--output-watch-events"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(800));
    kubectl_in(&kc, &["apply", "-f", "-"], Some("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: watched, namespace: default}\ndata: {v: \"1\"}\n")).unwrap();
    kubectl_in(&kc, &["apply", "-f", "-"], Some("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: watched, namespace: default}\ndata: {v: \"2\", w: x}\n")).unwrap();
    k(&kc, &["delete", "cm", "watched"]);
    std::thread::sleep(Duration::from_millis(800));
    let _ = child.kill();
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<Vec<&str>> = text.lines().filter(|l| l.contains("watched")).map(|l| l.split_whitespace().collect()).collect();
    assert_eq!(lines.len(), 3, "ADDED, MODIFIED, DELETED expected:\n{text}\n{}", String::from_utf8_lossy(&out.stderr));
    // EVENT NAME DATA AGE
    assert_eq!(&lines[0][..3], &["ADDED", "watched", "1"], "{text}");
    assert_eq!(&lines[1][..3], &["MODIFIED", "watched", "2"], "{text}");
    assert_eq!(lines[2][0], "DELETED", "{text}");
}

/// Bad input gets the status code Kubernetes gives, with a Status body, and the server keeps
/// serving.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gets_kubernetes_status_codes() {
    let (c, kc) = one_master().await;
    let raw = |method: &str, path: &str, body: Option<&str>, ct: &str| -> (u16, String) {
        let token = std::fs::read_to_string(&kc).unwrap().lines().find_map(|l| l.trim().strip_prefix("token: ").map(String::from)).unwrap();
        let url = format!("https://{}{path}", c.masters[0].api_listen);
        let mut args = vec!["-sk".to_string(), "-o".into(), "-".into(), "-w".into(), "\n%{http_code}".into(), "-X".into(), method.into(), "-H".into(), format!("Authorization: Bearer {token}"), "-H".into(), format!("Content-Type: {ct}")];
        if let Some(b) = body {
            // Large bodies go through a file: one command-line argument is limited to 128 KiB.
            let file = std::env::temp_dir().join(format!("rkube-body-{}", std::process::id()));
            std::fs::write(&file, b).unwrap();
            args.push("--data-binary".into());
            args.push(format!("@{}", file.display()));
        }
        args.push(url);
        let out = Command::new("curl").args(&args).output().expect("curl is installed");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let (body, code) = text.rsplit_once('\n').unwrap();
        (code.parse().unwrap(), body.to_string())
    };
    let cm = r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"x"}}"#;
    let cases: Vec<(&str, &str, Option<String>, &str, u16, &str)> = vec![
        ("POST", "/api/v1/namespaces/default/configmaps", Some("{not json".into()), "application/json", 400, "BadRequest"),
        ("GET", "/api/v1/namespaces/default/configmaps/nope", None, "application/json", 404, "NotFound"),
        ("GET", "/api/v1/namespaces/default/widgets", None, "application/json", 404, "NotFound"),
        ("PUT", "/api/v1/namespaces/default/configmaps", Some(cm.into()), "application/json", 405, "MethodNotAllowed"),
        ("POST", "/api/v1/namespaces/default/configmaps", Some(cm.into()), "application/json", 201, ""),
        ("POST", "/api/v1/namespaces/default/configmaps", Some(cm.into()), "application/json", 409, "AlreadyExists"),
        ("GET", "/api/v1/namespaces/default/configmaps?resourceVersion=1&resourceVersionMatch=Exact", None, "application/json", 200, ""),
        ("POST", "/api/v1/namespaces/default/configmaps", Some(format!(r#"{{"apiVersion":"v1","kind":"ConfigMap","metadata":{{"name":"big"}},"data":{{"a":"{}"}}}}"#, "x".repeat(3 << 20))), "application/json", 413, "RequestEntityTooLarge"),
        ("POST", "/api/v1/namespaces/default/configmaps", Some("a: b".into()), "text/plain", 415, "UnsupportedMediaType"),
        ("POST", "/api/v1/namespaces/default/configmaps", Some(r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"UPPER"}}"#.into()), "application/json", 422, "Invalid"),
        ("POST", "/api/v1/namespaces/default/pods", Some(r#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p"},"spec":{"containers":[]}}"#.into()), "application/json", 422, "Invalid"),
        ("PATCH", "/api/v1/namespaces/default/configmaps/x", Some("{}".into()), "application/xml", 415, "UnsupportedMediaType"),
        ("PUT", "/api/v1/namespaces/default/configmaps/x", Some(r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"x","resourceVersion":"1"}}"#.into()), "application/json", 409, "Conflict"),
    ];
    for (method, path, body, ct, code, reason) in cases {
        let (got, text) = raw(method, path, body.as_deref(), ct);
        assert_eq!(got, code, "{method} {path}: {text}");
        if !reason.is_empty() {
            let v: serde_json::Value = serde_json::from_str(&text).unwrap_or_else(|_| panic!("not a Status: {text}"));
            assert_eq!(v["kind"], "Status", "{text}");
            assert_eq!(v["reason"], reason, "{text}");
            assert_eq!(v["code"], code, "{text}");
        }
    }
    // No token: 401.
    let out = Command::new("curl").args(["-sk", "-o", "/dev/null", "-w", "%{http_code}", &format!("https://{}/api/v1/namespaces", c.masters[0].api_listen)]).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "401");
    // The server is still fine.
    assert!(k(&kc, &["get", "cm", "x", "-o", "name"]).contains("configmap/x"));
}

/// A compacted resourceVersion gets 410 Gone for lists and an ERROR event for watches.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compacted_revisions_are_gone() {
    let (c, kc) = one_master().await;
    for i in 0..5 {
        kubectl_in(&kc, &["apply", "-f", "-"], Some(&format!("apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: g{i}, namespace: default}}\n"))).unwrap();
    }
    let rev = c.client(0).status().await.unwrap().revision;
    let client = reqwest::Client::new();
    let r = client.post(format!("{}/store/v1/compact", c.masters[0].url)).json(&serde_json::json!({"rev": rev})).send().await.unwrap();
    assert!(r.status().is_success());
    let err = k_err(&kc, &["get", "--raw", "/api/v1/namespaces/default/configmaps?resourceVersion=2&resourceVersionMatch=Exact"]);
    assert!(err.contains("410") || err.contains("Expired") || err.contains("too old"), "{err}");
    let watch = k(&kc, &["get", "--raw", "/api/v1/namespaces/default/configmaps?watch=1&resourceVersion=2"]);
    assert!(watch.contains("\"type\":\"ERROR\"") && watch.contains("410"), "{watch}");
}

/// The same kubectl flow against three masters, kubectl pointed at a follower and the leader
/// SIGKILLed in the middle of it; afterwards every survivor and the restarted master agree.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_across_three_masters_with_leader_killed() {
    let mut c = Cluster::start(ClusterOptions { size: 3, ..Default::default() }).await.unwrap();
    let kcs: Vec<PathBuf> = {
        let mut v = Vec::new();
        for i in 0..3 {
            v.push(c.wait_api(i, Duration::from_secs(30)).await.unwrap());
        }
        v
    };
    let first_leader = c.wait_leader(Duration::from_secs(5)).await.unwrap();
    let kctl = Kctl::new(kcs.clone(), (first_leader + 1) % 3);
    let mut killed = None;
    every_resource_flow(&kctl, &mut |kctl| {
        // Every master serves the same objects with the same resourceVersion before the kill.
        let rv = |m: usize| kubectl_in(&kcs[m], &["get", "deploy", "web", "-n", "e2e", "-o", "jsonpath={.metadata.resourceVersion}"], None).unwrap();
        wait_until("the masters to agree", || (0..3).all(|m| rv(m) == rv(0)));
        let leader = tokio::task::block_in_place(|| tokio::runtime::Handle::current().block_on(c.wait_leader(Duration::from_secs(5)))).unwrap();
        c.kill(leader);
        kctl.mark_dead(leader);
        killed = Some(leader);
    });
    let leader = killed.expect("the flow reached its middle");
    assert!(kctl.cur.get() != leader);
    c.restart(leader).unwrap();
    c.wait_api(leader, Duration::from_secs(30)).await.unwrap();
    for r in kind_rows() {
        wait_until(&format!("master {leader} to see {} {} gone", r.kind, r.name), || {
            kubectl_in(&kcs[leader], &r.args(&["get", r.kind, r.name]), None).is_err_and(|e| e.contains("NotFound"))
        });
    }
    for kc in &kcs {
        let ns = k(kc, &["get", "ns", "-o", "name"]);
        assert!(ns.contains("namespace/kube-system") && !ns.contains("namespace/e2e"), "{ns}");
    }
}

/// A watch opened on one master and resumed on another after the first is killed sees every
/// event exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_resumes_on_another_master_after_a_kill() {
    let mut c = Cluster::start(ClusterOptions { size: 3, ..Default::default() }).await.unwrap();
    let kcs: Vec<PathBuf> = {
        let mut v = Vec::new();
        for i in 0..3 {
            v.push(c.wait_api(i, Duration::from_secs(30)).await.unwrap());
        }
        v
    };
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python/watch_resume.py");
    let leader = c.wait_leader(Duration::from_secs(5)).await.unwrap();
    let first = (leader + 1) % 3;
    let second = (leader + 2) % 3;
    let child = Command::new("python3")
        .arg(script)
        .arg(&kcs[first])
        .arg(&kcs[second])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Let the script start watching and write through the leader's API.
    std::thread::sleep(Duration::from_secs(2));
    c.kill(first);
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "watch_resume.py failed:\n{text}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(text.contains("OK"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn official_python_client_works() {
    let (_c, kc) = one_master().await;
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python/client_crud.py");
    let out = Command::new("python3").arg(script).arg(&kc).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "client_crud.py failed:\n{text}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(text.contains("ALL OK"), "{text}");
}

/// kubectl's generator commands send Kubernetes protobuf bodies; they must work too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_create_commands_send_protobuf() {
    let (_c, kc) = one_master().await;
    let kc = kc.as_path();
    for args in [
        vec!["create", "namespace", "pb"],
        vec!["create", "configmap", "c1", "-n", "pb", "--from-literal=a=1", "--from-literal=b=2"],
        vec!["create", "secret", "generic", "s1", "-n", "pb", "--from-literal=password=hunter2"],
        vec!["create", "serviceaccount", "sa1", "-n", "pb"],
        vec!["create", "deployment", "d1", "-n", "pb", "--image=busybox:1.36", "--replicas=2", "--port=8080"],
        vec!["create", "service", "clusterip", "svc1", "-n", "pb", "--tcp=80:8080"],
        vec!["create", "service", "nodeport", "np1", "-n", "pb", "--tcp=80:8080"],
        vec!["create", "job", "j1", "-n", "pb", "--image=busybox", "--", "true"],
        vec!["create", "cronjob", "cj1", "-n", "pb", "--image=busybox", "--schedule=*/5 * * * *"],
        vec!["create", "role", "r1", "-n", "pb", "--verb=get", "--resource=pods"],
        vec!["create", "rolebinding", "rb1", "-n", "pb", "--role=r1", "--serviceaccount=pb:sa1"],
        vec!["create", "priorityclass", "high", "--value=1000"],
        vec!["create", "quota", "q1", "-n", "pb", "--hard=pods=10"],
        vec!["run", "p1", "-n", "pb", "--image=busybox:1.36", "--labels=app=p1", "--", "sleep", "3600"],
    ] {
        k(kc, &args);
    }
    assert_eq!(k(kc, &["get", "cm", "c1", "-n", "pb", "-o", "jsonpath={.data.b}"]), "2");
    assert_eq!(k(kc, &["get", "secret", "s1", "-n", "pb", "-o", "jsonpath={.data.password}"]), "aHVudGVyMg==");
    assert_eq!(k(kc, &["get", "deploy", "d1", "-n", "pb", "-o", "jsonpath={.spec.replicas} {.spec.template.spec.containers[0].ports[0].containerPort}"]), "2 8080");
    assert!(k(kc, &["get", "svc", "np1", "-n", "pb", "-o", "jsonpath={.spec.ports[0].nodePort}"]).parse::<u16>().unwrap() >= 30000);
    assert_eq!(k(kc, &["get", "cronjob", "cj1", "-n", "pb", "-o", "jsonpath={.spec.schedule}"]), "*/5 * * * *");
    assert_eq!(k(kc, &["get", "pod", "p1", "-n", "pb", "-o", "jsonpath={.spec.containers[0].args}"]), r#"["sleep","3600"]"#);
    // kubectl edit-style flows: set image and set env go through patches.
    k(kc, &["set", "image", "deployment/d1", "-n", "pb", "busybox=busybox:1.37"]);
    assert_eq!(k(kc, &["get", "deploy", "d1", "-n", "pb", "-o", "jsonpath={.spec.template.spec.containers[0].image}"]), "busybox:1.37");
    k(kc, &["set", "env", "deployment/d1", "-n", "pb", "MODE=fast"]);
    assert!(k(kc, &["get", "deploy", "d1", "-n", "pb", "-o", "jsonpath={.spec.template.spec.containers[0].env}"]).contains("fast"));
    k(kc, &["delete", "ns", "pb"]);
}

// ------------------------------------------------------------------------------------------
// Raw API requests: subresources, field validation, watch parameters, deletion.
// ------------------------------------------------------------------------------------------

fn kube(kc: &Path) -> KubeClient {
    KubeClient::from_kubeconfig(kc).unwrap()
}

/// Sends a request with the kubeconfig's token: HTTP status, `Warning` headers, JSON body
/// (`Null` when the body is not JSON).
async fn send(kube: &KubeClient, req: reqwest::RequestBuilder) -> (u16, Vec<String>, Value) {
    let r = req.bearer_auth(&kube.token).timeout(Duration::from_secs(20)).send().await.expect("the request reaches the server");
    let status = r.status().as_u16();
    let warnings = r.headers().get_all("warning").iter().map(|v| v.to_str().unwrap_or("").to_string()).collect();
    let bytes = r.bytes().await.expect("the body arrives");
    (status, warnings, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

/// A failure answered the Kubernetes way: a Status with the HTTP code and a message.
fn assert_failure_status(code: u16, body: &Value, what: &str) {
    assert!(code >= 400, "{what}: expected a failure, got {code} {body}");
    assert_eq!(body["kind"], "Status", "{what}: {body}");
    assert_eq!(body["status"], "Failure", "{what}: {body}");
    assert_eq!(body["code"], code, "{what}: {body}");
    assert!(body["message"].as_str().is_some_and(|m| m.len() > 10), "{what}: the Status says why: {body}");
}

async fn wait_for<F, Fut>(what: &str, secs: u64, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !f().await {
        assert!(Instant::now() < deadline, "timed out after {secs}s waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// kubectl's exit status, stdout and stderr (warnings go to stderr).
fn kubectl_full(kc: &Path, args: &[&str], stdin: &str) -> (bool, String, String) {
    let mut child = Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(kc)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("kubectl is installed");
    child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
}

/// A pod the scheduler leaves alone: its node selector matches no node.
fn unschedulable_pod(name: &str) -> String {
    format!("apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}, namespace: default}}\nspec:\n  nodeSelector: {{e2e.rkube.io/none: \"true\"}}\n  containers: [{{name: c, image: busybox}}]\n")
}

/// `pods/log`, `pods/exec` and `pods/attach` need a node agent to reach the container. For a pod
/// that no agent serves — not bound to any node, or bound to a Node object nothing runs behind —
/// each fails with a Status that says why (never hangs), kubectl reports it, and the server
/// keeps serving.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pod_log_exec_attach_without_an_agent_fail_with_a_status() {
    let (_c, kc) = one_master().await;
    let kube = kube(&kc);
    let manifest = format!(
        "apiVersion: v1\nkind: Node\nmetadata: {{name: no-agent}}\n---\napiVersion: v1\nkind: Pod\nmetadata: {{name: bound, namespace: default}}\nspec:\n  nodeName: no-agent\n  containers: [{{name: c, image: busybox}}]\n---\n{}",
        unschedulable_pod("unbound")
    );
    kubectl_in(&kc, &["apply", "-f", "-"], Some(&manifest)).unwrap();
    assert_eq!(k(&kc, &["get", "pod", "bound", "-o", "jsonpath={.spec.nodeName}"]), "no-agent");
    let base = format!("{}/api/v1/namespaces/default/pods", kube.base);
    for pod in ["bound", "unbound"] {
        for (method, sub) in [
            ("GET", "log"),
            ("GET", "log?container=c&follow=true&tailLines=10"),
            ("POST", "exec?command=true&container=c&stdout=true&stderr=true"),
            ("GET", "exec?command=true&container=c&stdout=true"),
            ("POST", "attach?container=c&stdout=true"),
            ("GET", "attach?container=c&stdout=true"),
        ] {
            let url = format!("{base}/{pod}/{sub}");
            let req = if method == "GET" { kube.http.get(&url) } else { kube.http.post(&url) };
            let started = Instant::now();
            let (code, _, body) = send(&kube, req).await;
            assert_failure_status(code, &body, &format!("{method} {pod}/{sub}"));
            assert!(started.elapsed() < Duration::from_secs(10), "{method} {pod}/{sub} answered at once");
            if pod == "unbound" {
                // Kubernetes' answer: there is no node to ask.
                assert_eq!(code, 400, "{method} {pod}/{sub}: {body}");
                assert!(body["message"].as_str().unwrap().contains("does not have a host assigned"), "{body}");
            }
        }
    }
    // The subresources of a pod that does not exist are 404.
    let (code, _, body) = send(&kube, kube.http.get(format!("{base}/nope/log"))).await;
    assert_eq!(code, 404, "{body}");
    assert_eq!(body["reason"], "NotFound", "{body}");
    // kubectl prints the server's reason and exits non-zero.
    for args in [&["logs", "bound", "--request-timeout=10s"][..], &["logs", "unbound", "--request-timeout=10s"], &["exec", "bound", "--request-timeout=10s", "--", "true"]] {
        let started = Instant::now();
        let err = k_err(&kc, args);
        assert!(err.contains("rror"), "kubectl {}: {err}", args.join(" "));
        assert!(started.elapsed() < Duration::from_secs(15), "kubectl {} did not hang", args.join(" "));
    }
    assert!(k(&kc, &["get", "pods", "-o", "name"]).contains("pod/unbound"), "the server still serves");
}

/// `pods/binding` (the scheduler's write) through HTTP: a Binding assigns the pod to the node
/// once; a second Binding is a 409 Conflict and changes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pods_binding_assigns_a_node_exactly_once() {
    let (_c, kc) = one_master().await;
    let kube = kube(&kc);
    kubectl_in(&kc, &["apply", "-f", "-"], Some(&unschedulable_pod("to-bind"))).unwrap();
    let binding = |pod: &str, node: &str| {
        json!({"apiVersion": "v1", "kind": "Binding", "metadata": {"name": pod}, "target": {"apiVersion": "v1", "kind": "Node", "name": node}})
    };
    let path = "/api/v1/namespaces/default/pods/to-bind/binding";
    let r = kube.post(path, &binding("to-bind", "node-a")).await.unwrap();
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.body["kind"], "Status", "{}", r.body);
    assert_eq!(r.body["status"], "Success", "{}", r.body);
    let pod = kube.get("/api/v1/namespaces/default/pods/to-bind").await.unwrap().body;
    assert_eq!(pod["spec"]["nodeName"], "node-a", "{pod}");
    let scheduled = pod["status"]["conditions"].as_array().and_then(|cs| cs.iter().find(|c| c["type"] == "PodScheduled").cloned());
    assert_eq!(scheduled.as_ref().map(|c| c["status"].clone()), Some(json!("True")), "{pod}");
    let rv = pod["metadata"]["resourceVersion"].clone();

    // A second binding is refused and leaves the pod where it is.
    let r = kube.post(path, &binding("to-bind", "node-b")).await.unwrap();
    assert_failure_status(r.status, &r.body, "second binding");
    assert_eq!(r.status, 409, "{}", r.body);
    assert_eq!(r.body["reason"], "Conflict", "{}", r.body);
    assert!(r.body["message"].as_str().unwrap().contains("already assigned"), "{}", r.body);
    let pod = kube.get("/api/v1/namespaces/default/pods/to-bind").await.unwrap().body;
    assert_eq!(pod["spec"]["nodeName"], "node-a");
    assert_eq!(pod["metadata"]["resourceVersion"], rv, "the refused binding wrote nothing");
    assert_eq!(k(&kc, &["get", "pod", "to-bind", "-o", "jsonpath={.spec.nodeName}"]), "node-a");

    // A binding without a target, and one for a pod that does not exist.
    let r = kube.post(path, &json!({"apiVersion": "v1", "kind": "Binding", "metadata": {"name": "to-bind"}, "target": {}})).await.unwrap();
    assert_failure_status(r.status, &r.body, "binding without a target");
    assert_eq!(r.status, 422, "{}", r.body);
    let r = kube.post("/api/v1/namespaces/default/pods/ghost/binding", &binding("ghost", "node-a")).await.unwrap();
    assert_eq!(r.status, 404, "{}", r.body);
    assert_eq!(r.body["reason"], "NotFound", "{}", r.body);
}

/// `fieldValidation`: Warn (also the default) stores the object without the unknown field and
/// says so in a `Warning` header; Ignore stores it silently; Strict refuses it with a 400 Status.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn field_validation_strict_warn_and_ignore() {
    let (_c, kc) = one_master().await;
    let kube = kube(&kc);
    let coll = format!("{}/api/v1/namespaces/default/configmaps", kube.base);
    let cm = |name: &str| json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": {"a": "1"}, "bogus": 1});
    let unknown_warning = |ws: &[String]| ws.iter().any(|w| w.starts_with("299 ") && w.contains("unknown field") && w.contains("bogus"));

    for (query, name) in [("?fieldValidation=Warn", "fv-warn"), ("", "fv-default")] {
        let (code, warnings, body) = send(&kube, kube.http.post(format!("{coll}{query}")).json(&cm(name))).await;
        assert_eq!(code, 201, "{name}: {body}");
        assert!(unknown_warning(&warnings), "{name}: a Warning header names the field: {warnings:?}");
        let stored = kube.get(&format!("/api/v1/namespaces/default/configmaps/{name}")).await.unwrap();
        assert_eq!(stored.status, 200, "{name} is stored");
        assert_eq!(stored.body["data"]["a"], "1");
        assert!(stored.body.get("bogus").is_none(), "the unknown field is dropped: {}", stored.body);
    }

    let (code, warnings, body) = send(&kube, kube.http.post(format!("{coll}?fieldValidation=Ignore")).json(&cm("fv-ignore"))).await;
    assert_eq!(code, 201, "{body}");
    assert!(warnings.is_empty(), "Ignore is silent: {warnings:?}");
    let stored = kube.get("/api/v1/namespaces/default/configmaps/fv-ignore").await.unwrap();
    assert_eq!(stored.status, 200);
    assert!(stored.body.get("bogus").is_none(), "{}", stored.body);

    let (code, _, body) = send(&kube, kube.http.post(format!("{coll}?fieldValidation=Strict")).json(&cm("fv-strict"))).await;
    assert_failure_status(code, &body, "strict create");
    assert_eq!(code, 400, "{body}");
    assert_eq!(body["reason"], "BadRequest", "{body}");
    assert!(body["message"].as_str().unwrap().contains(r#"unknown field "bogus""#), "{body}");
    assert_eq!(kube.get("/api/v1/namespaces/default/configmaps/fv-strict").await.unwrap().status, 404, "nothing stored");

    // Strict applies to updates and patches too, and the object stays as it was.
    let mut cur = kube.get("/api/v1/namespaces/default/configmaps/fv-ignore").await.unwrap().body;
    let rv = cur["metadata"]["resourceVersion"].clone();
    cur["data"]["a"] = json!("2");
    cur["bogus"] = json!(true);
    let (code, _, body) = send(&kube, kube.http.put(format!("{coll}/fv-ignore?fieldValidation=Strict")).json(&cur)).await;
    assert_failure_status(code, &body, "strict update");
    assert_eq!(code, 400, "{body}");
    let patch = kube
        .http
        .patch(format!("{coll}/fv-ignore?fieldValidation=Strict"))
        .header("content-type", "application/merge-patch+json")
        .body(r#"{"data":{"a":"3"},"metadata":{"bogusMeta":1}}"#);
    let (code, _, body) = send(&kube, patch).await;
    assert_failure_status(code, &body, "strict patch");
    assert_eq!(code, 400, "{body}");
    let now = kube.get("/api/v1/namespaces/default/configmaps/fv-ignore").await.unwrap().body;
    assert_eq!(now["metadata"]["resourceVersion"], rv, "refused writes change nothing");
    assert_eq!(now["data"]["a"], "1");
    // With Warn the same update goes through, with the warning.
    let (code, warnings, body) = send(&kube, kube.http.put(format!("{coll}/fv-ignore?fieldValidation=Warn")).json(&cur)).await;
    assert_eq!(code, 200, "{body}");
    assert!(unknown_warning(&warnings), "{warnings:?}");
    assert_eq!(body["data"]["a"], "2");
    // An unknown policy is a 400.
    let (code, _, body) = send(&kube, kube.http.post(format!("{coll}?fieldValidation=Loud")).json(&cm("fv-loud"))).await;
    assert_failure_status(code, &body, "unknown policy");
    assert_eq!(code, 400, "{body}");

    // kubectl's --validate=warn relays the server's warning and creates the object.
    let (ok, out, err) = kubectl_full(&kc, &["create", "--validate=warn", "-f", "-"], "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: fv-kubectl, namespace: default}\nbogus: 1\n");
    assert!(ok, "{out}{err}");
    assert!(err.contains("unknown field") && err.contains("bogus"), "kubectl prints the warning: {err}");
    assert!(k(&kc, &["get", "cm", "fv-kubectl", "-o", "name"]).contains("configmap/fv-kubectl"));
}

/// Reads a watch to its end (or 30 s): each event with the seconds since the request, and the
/// seconds until the server ended the stream.
async fn read_watch(kube: &KubeClient, path_and_query: &str) -> (Vec<(f64, Value)>, f64) {
    let started = Instant::now();
    let mut resp = kube.http.get(format!("{}{path_and_query}", kube.base)).bearer_auth(&kube.token).send().await.expect("watch request");
    assert_eq!(resp.status().as_u16(), 200, "watch {path_and_query}");
    let mut events = Vec::new();
    let mut buf = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let chunk = tokio::time::timeout_at(deadline, resp.chunk()).await.expect("the server ends the watch").expect("watch stream");
        let Some(chunk) = chunk else { break };
        buf.extend_from_slice(&chunk);
        while let Some(pos) = buf.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = buf.drain(..=pos).collect();
            let ev: Value = serde_json::from_slice(&line).unwrap_or_else(|e| panic!("not a watch event ({e}): {}", String::from_utf8_lossy(&line)));
            events.push((started.elapsed().as_secs_f64(), ev));
        }
    }
    (events, started.elapsed().as_secs_f64())
}

fn rv_of(v: &Value) -> u64 {
    v.pointer("/metadata/resourceVersion").and_then(|r| r.as_str()).and_then(|r| r.parse().ok()).unwrap_or_else(|| panic!("no resourceVersion in {v}"))
}

/// `timeoutSeconds` ends a watch when it says; `allowWatchBookmarks` brings BOOKMARK events
/// (periodically, and when the server ends the watch) carrying a resourceVersion to resume
/// from; without it there are none.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_bookmarks_and_timeout_seconds() {
    let (_c, kc) = one_master().await;
    let kube = kube(&kc);
    let list = kube.get("/api/v1/namespaces/default/configmaps").await.unwrap();
    let rv = list.body["metadata"]["resourceVersion"].as_str().unwrap().to_string();
    let path = format!("/api/v1/namespaces/default/configmaps?watch=1&resourceVersion={rv}");
    let (short_q, plain_q, long_q) = (
        format!("{path}&allowWatchBookmarks=true&timeoutSeconds=2"),
        format!("{path}&timeoutSeconds=2"),
        format!("{path}&allowWatchBookmarks=true&timeoutSeconds=8"),
    );
    let (short, plain, long, created) = tokio::join!(
        read_watch(&kube, &short_q),
        read_watch(&kube, &plain_q),
        read_watch(&kube, &long_q),
        async {
            tokio::time::sleep(Duration::from_millis(500)).await;
            let r = kube.post("/api/v1/namespaces/default/configmaps", &json!({"metadata": {"name": "during-watch"}, "data": {"v": "1"}})).await.unwrap();
            assert_eq!(r.status, 201, "{}", r.body);
            rv_of(&r.body)
        },
    );
    let added = |events: &[(f64, Value)]| events.iter().any(|(_, e)| e["type"] == "ADDED" && e["object"]["metadata"]["name"] == "during-watch");
    let bookmarks = |events: &[(f64, Value)]| -> Vec<(f64, Value)> { events.iter().filter(|(_, e)| e["type"] == "BOOKMARK").cloned().collect() };
    for (events, _) in [&short, &plain, &long] {
        assert!(added(events), "every watch sees the create: {events:?}");
    }
    // timeoutSeconds=2: the server ends both short watches after about 2 s.
    for (name, (events, secs)) in [("bookmarks", &short), ("plain", &plain)] {
        assert!((1.8..5.0).contains(secs), "{name}: the 2 s watch ended after {secs:.2}s: {events:?}");
    }
    assert!(bookmarks(&plain.0).is_empty(), "no BOOKMARK unless asked: {:?}", plain.0);
    let bm = bookmarks(&short.0);
    assert!(!bm.is_empty(), "a BOOKMARK before the server ends the watch: {:?}", short.0);
    let last = &short.0.last().unwrap().1;
    assert_eq!(last["type"], "BOOKMARK", "the last event tells where to resume: {last}");
    for (_, b) in &bm {
        assert_eq!(b["object"]["kind"], "ConfigMap", "{b}");
        assert_eq!(b["object"]["apiVersion"], "v1", "{b}");
        assert!(rv_of(&b["object"]) >= created, "a bookmark after the create is at or past its revision: {b}");
    }
    // The 8 s watch gets a periodic bookmark before its end, and ends after about 8 s.
    let (events, secs) = &long;
    assert!((7.8..11.0).contains(secs), "the 8 s watch ended after {secs:.2}s");
    let periodic: Vec<_> = bookmarks(events).into_iter().filter(|(t, _)| *t < 7.5).collect();
    assert!(!periodic.is_empty(), "a periodic BOOKMARK on an idle watch: {events:?}");
    assert!(rv_of(&periodic[0].1["object"]) >= created, "{:?}", periodic[0]);
    // A watch resumed from the last bookmark sees nothing it already saw.
    let resume = rv_of(&last["object"]);
    let (again, _) = read_watch(&kube, &format!("/api/v1/namespaces/default/configmaps?watch=1&resourceVersion={resume}&timeoutSeconds=1")).await;
    assert!(!added(&again), "resuming from the bookmark replays nothing: {again:?}");
}

/// Graceful deletion: an object with a finalizer stays, with a deletionTimestamp, until the
/// finalizer is removed; a bound pod deleted with a grace period stays until it is deleted with
/// grace 0 (what its node agent does); an unbound pod goes at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deletion_waits_for_finalizers_and_grace_periods() {
    let (_c, kc) = one_master().await;
    let kube = kube(&kc);
    let manifest = format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: held, namespace: default, finalizers: [e2e.rkube.io/hold]}}\ndata: {{a: \"1\"}}\n---\napiVersion: v1\nkind: Pod\nmetadata: {{name: graceful, namespace: default}}\nspec:\n  nodeName: far-away\n  containers: [{{name: c, image: busybox}}]\n---\n{}",
        unschedulable_pod("quick")
    );
    kubectl_in(&kc, &["apply", "-f", "-"], Some(&manifest)).unwrap();
    let cm = "/api/v1/namespaces/default/configmaps/held";

    // A dry run changes nothing.
    let (code, _, body) = send(&kube, kube.http.delete(format!("{}{cm}?dryRun=All", kube.base))).await;
    assert!(code == 200 || code == 202, "{body}");
    assert!(kube.get(cm).await.unwrap().body["metadata"].get("deletionTimestamp").is_none(), "dry run wrote nothing");

    let r = kube.delete(cm).await.unwrap();
    assert!(r.status == 200 || r.status == 202, "{} {}", r.status, r.body);
    assert!(r.body["metadata"]["deletionTimestamp"].is_string(), "{}", r.body);
    let held = kube.get(cm).await.unwrap();
    assert_eq!(held.status, 200, "the object stays while it has a finalizer");
    let ts = held.body["metadata"]["deletionTimestamp"].clone();
    assert!(ts.is_string(), "{}", held.body);
    assert_eq!(held.body["metadata"]["finalizers"], json!(["e2e.rkube.io/hold"]));
    // Deleting again changes nothing; other updates still work.
    let again = kube.delete(cm).await.unwrap();
    assert!(again.status == 200 || again.status == 202, "{}", again.body);
    assert_eq!(kube.get(cm).await.unwrap().body["metadata"]["deletionTimestamp"], ts);
    let r = kube.patch(cm, &json!({"metadata": {"labels": {"still": "editable"}}})).await.unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(k(&kc, &["get", "cm", "held", "-o", "jsonpath={.metadata.labels.still}"]), "editable");
    // Removing the finalizer completes the deletion.
    let r = kube.patch(cm, &json!({"metadata": {"finalizers": null}})).await.unwrap();
    assert!(r.ok(), "{}", r.body);
    assert_eq!(kube.get(cm).await.unwrap().status, 404, "gone once its finalizers are");

    // A bound pod: graceful.
    let pod = "/api/v1/namespaces/default/pods/graceful";
    let (code, _, body) = send(&kube, kube.http.delete(format!("{}{pod}?gracePeriodSeconds=30", kube.base))).await;
    assert!(code == 200 || code == 202, "{body}");
    let p = kube.get(pod).await.unwrap();
    assert_eq!(p.status, 200, "a bound pod waits for its node to stop it");
    assert_eq!(p.body["metadata"]["deletionGracePeriodSeconds"], 30, "{}", p.body);
    let deadline: jiff::Timestamp = p.body["metadata"]["deletionTimestamp"].as_str().unwrap().parse().unwrap();
    let in_secs = deadline.duration_since(jiff::Timestamp::now()).as_secs();
    assert!((20..=31).contains(&in_secs), "deletionTimestamp is the end of the grace period ({in_secs}s from now)");
    let (code, _, body) = send(&kube, kube.http.delete(format!("{}{pod}?gracePeriodSeconds=0", kube.base))).await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(kube.get(pod).await.unwrap().status, 404, "grace 0 deletes it");
    // An unbound pod has nothing to stop: it goes at once.
    let r = kube.delete("/api/v1/namespaces/default/pods/quick").await.unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(kube.get("/api/v1/namespaces/default/pods/quick").await.unwrap().status, 404);
}

async fn items(kube: &KubeClient, path: &str) -> Vec<Value> {
    kube.get(path).await.unwrap().body["items"].as_array().cloned().unwrap_or_default()
}

/// `propagationPolicy=Foreground`: the owner stays (deletionTimestamp + foregroundDeletion) until
/// its blocking dependents are gone, all the way down Deployment → ReplicaSet → Pods.
/// `propagationPolicy=Orphan`: the owner goes, its dependents stay without the reference.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_propagation_foreground_and_orphan() {
    let (_c, kc) = one_master().await;
    let kube = kube(&kc);
    let workload = |kind: &str, name: &str| {
        format!(
            "apiVersion: apps/v1\nkind: {kind}\nmetadata: {{name: {name}, namespace: default}}\nspec:\n  replicas: 2\n  selector: {{matchLabels: {{app: {name}}}}}\n  template:\n    metadata: {{labels: {{app: {name}}}}}\n    spec:\n      nodeSelector: {{e2e.rkube.io/none: \"true\"}}\n      containers: [{{name: c, image: busybox}}]\n"
        )
    };
    kubectl_in(&kc, &["apply", "-f", "-"], Some(&format!("{}---\n{}", workload("Deployment", "fg"), workload("ReplicaSet", "orph")))).unwrap();
    let pods_of = |app: &'static str| {
        let kube = kube.clone();
        async move { items(&kube, &format!("/api/v1/namespaces/default/pods?labelSelector=app%3D{app}")).await }
    };
    let rs_of_fg = || {
        let kube = kube.clone();
        async move { items(&kube, "/apis/apps/v1/namespaces/default/replicasets?labelSelector=app%3Dfg").await }
    };
    wait_for("the pods of both workloads", 20, || async move { pods_of("fg").await.len() == 2 && pods_of("orph").await.len() == 2 }).await;

    // Foreground: hold one pod with a finalizer, so the chain must wait for it.
    let fg_pods = pods_of("fg").await;
    let held = fg_pods[0]["metadata"]["name"].as_str().unwrap().to_string();
    let held_path = format!("/api/v1/namespaces/default/pods/{held}");
    let r = kube.patch(&held_path, &json!({"metadata": {"finalizers": ["e2e.rkube.io/hold"]}})).await.unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    let dep = "/apis/apps/v1/namespaces/default/deployments/fg";
    let (code, _, body) = send(&kube, kube.http.delete(format!("{}{dep}?propagationPolicy=Foreground", kube.base))).await;
    assert!(code == 200 || code == 202, "{body}");
    assert!(body["metadata"]["deletionTimestamp"].is_string(), "{body}");
    assert!(body["metadata"]["finalizers"].as_array().is_some_and(|f| f.iter().any(|x| x == "foregroundDeletion")), "{body}");
    let held_name = held.clone();
    wait_for("the dependents to be deleted, the held pod to wait", 20, || {
        let held = held_name.clone();
        async move {
        let pods = pods_of("fg").await;
        let rs = rs_of_fg().await;
        pods.len() == 1
            && pods[0]["metadata"]["name"] == held.as_str()
            && pods[0]["metadata"]["deletionTimestamp"].is_string()
            && rs.len() == 1
            && rs[0]["metadata"]["deletionTimestamp"].is_string()
        }
    })
    .await;
    // While the held pod exists, its owners stay, each waiting in the foreground.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let rs = rs_of_fg().await;
    assert_eq!(rs.len(), 1, "the ReplicaSet waits for its pod");
    assert!(rs[0]["metadata"]["finalizers"].as_array().is_some_and(|f| f.iter().any(|x| x == "foregroundDeletion")), "{}", rs[0]);
    let d = kube.get(dep).await.unwrap();
    assert_eq!(d.status, 200, "the Deployment waits for its ReplicaSet");
    assert!(d.body["metadata"]["finalizers"].as_array().is_some_and(|f| f.iter().any(|x| x == "foregroundDeletion")), "{}", d.body);
    assert_eq!(pods_of("fg").await.len(), 1, "no replacement pods for an owner being deleted");
    // Release the pod: the whole chain goes.
    let r = kube.patch(&held_path, &json!({"metadata": {"finalizers": null}})).await.unwrap();
    assert!(r.ok(), "{}", r.body);
    wait_for("the pod, the ReplicaSet and the Deployment to go", 20, || {
        let kube = kube.clone();
        async move { pods_of("fg").await.is_empty() && rs_of_fg().await.is_empty() && kube.get(dep).await.unwrap().status == 404 }
    })
    .await;

    // Orphan: the ReplicaSet goes, its pods stay without an owner reference.
    let rs = "/apis/apps/v1/namespaces/default/replicasets/orph";
    let before: Vec<String> = pods_of("orph").await.iter().map(|p| p["metadata"]["uid"].as_str().unwrap().to_string()).collect();
    let (code, _, body) = send(&kube, kube.http.delete(format!("{}{rs}?propagationPolicy=Orphan", kube.base))).await;
    assert!(code == 200 || code == 202, "{body}");
    wait_for("the orphaning ReplicaSet to go", 20, || {
        let kube = kube.clone();
        async move { kube.get(rs).await.unwrap().status == 404 }
    })
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let after = pods_of("orph").await;
    let mut uids: Vec<String> = after.iter().map(|p| p["metadata"]["uid"].as_str().unwrap().to_string()).collect();
    let mut want = before.clone();
    uids.sort();
    want.sort();
    assert_eq!(uids, want, "the same pods stay");
    for p in &after {
        assert!(p["metadata"]["deletionTimestamp"].is_null(), "{p}");
        assert!(p["metadata"]["ownerReferences"].as_array().is_none_or(|o| o.is_empty()), "the reference to the owner is removed: {p}");
    }
}

/// The `scale` subresource of deployments, replicasets and statefulsets: GET a Scale, PUT one
/// back (optimistic concurrency on its resourceVersion, field validation on its body), PATCH it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scale_subresource_get_put_and_patch() {
    let (_c, kc) = one_master().await;
    let kube = kube(&kc);
    let workload = |kind: &str, name: &str, extra: &str| {
        format!(
            "apiVersion: apps/v1\nkind: {kind}\nmetadata: {{name: {name}, namespace: default}}\nspec:\n  replicas: 1\n{extra}  selector: {{matchLabels: {{app: {name}}}}}\n  template:\n    metadata: {{labels: {{app: {name}}}}}\n    spec:\n      nodeSelector: {{e2e.rkube.io/none: \"true\"}}\n      containers: [{{name: c, image: busybox}}]\n"
        )
    };
    let manifest = [workload("Deployment", "sd", ""), workload("ReplicaSet", "srs", ""), workload("StatefulSet", "ssts", "  serviceName: ssts\n")].join("---\n");
    kubectl_in(&kc, &["apply", "-f", "-"], Some(&manifest)).unwrap();
    for (path, app) in [
        ("/apis/apps/v1/namespaces/default/deployments/sd", "sd"),
        ("/apis/apps/v1/namespaces/default/replicasets/srs", "srs"),
        ("/apis/apps/v1/namespaces/default/statefulsets/ssts", "ssts"),
    ] {
        let scale_path = format!("{path}/scale");
        let s = kube.get(&scale_path).await.unwrap();
        assert_eq!(s.status, 200, "{}", s.body);
        assert_eq!((s.body["kind"].as_str(), s.body["apiVersion"].as_str()), (Some("Scale"), Some("autoscaling/v1")), "{}", s.body);
        assert_eq!(s.body["spec"]["replicas"], 1, "{}", s.body);
        assert!(s.body["status"]["selector"].as_str().is_some_and(|sel| sel.contains(&format!("app={app}"))), "{}", s.body);
        // PUT a Scale: read, modify, write, again if a controller wrote the object in between
        // (a Scale carries the object's resourceVersion).
        let mut attempts = 0;
        let (body, r) = loop {
            let mut body = kube.get(&scale_path).await.unwrap().body;
            body["spec"]["replicas"] = json!(3);
            let r = kube.put(&scale_path, &body).await.unwrap();
            attempts += 1;
            if r.status != 409 || attempts == 10 {
                break (body, r);
            }
        };
        assert_eq!(r.status, 200, "PUT {scale_path}: {}", r.body);
        assert_eq!(r.body["kind"], "Scale", "{}", r.body);
        assert_eq!(r.body["spec"]["replicas"], 3, "{}", r.body);
        assert_eq!(kube.get(path).await.unwrap().body["spec"]["replicas"], 3);
        // The same body again carries a stale resourceVersion.
        let r = kube.put(&scale_path, &body).await.unwrap();
        assert_eq!(r.status, 409, "stale PUT {scale_path}: {}", r.body);
        assert_eq!(r.body["reason"], "Conflict", "{}", r.body);
        // Unknown fields in a Scale body are caught like any other's.
        let mut bogus = kube.get(&scale_path).await.unwrap().body;
        bogus["spec"]["bogus"] = json!(1);
        let (code, _, b) = send(&kube, kube.http.put(format!("{}{scale_path}?fieldValidation=Strict", kube.base)).json(&bogus)).await;
        assert_eq!(code, 400, "{b}");
        assert!(b["message"].as_str().unwrap_or("").contains("bogus"), "{b}");
        // A merge patch of the Scale.
        let r = kube.patch(&scale_path, &json!({"spec": {"replicas": 0}})).await.unwrap();
        assert_eq!(r.status, 200, "PATCH {scale_path}: {}", r.body);
        assert_eq!(kube.get(path).await.unwrap().body["spec"]["replicas"], 0);
    }
}
