//! End-to-end: the real `kubectl` (and the official Python client) against real `rkube server`
//! processes.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use chaos::{Cluster, ClusterOptions};

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
    let kc = kc.as_path();
    // Bootstrap state.
    let ns = k(kc, &["get", "namespaces", "-o", "name"]);
    for want in ["default", "kube-system", "kube-public", "kube-node-lease"] {
        assert!(ns.contains(&format!("namespace/{want}")), "{ns}");
    }
    assert!(k(kc, &["get", "svc", "kubernetes", "-o", "jsonpath={.spec.clusterIP}"]).starts_with("100.64.128."));
    let version = k(kc, &["version", "-o", "json"]);
    assert!(version.contains("\"minor\": \"33\""), "{version}");

    // A multi-document manifest with one object of every kind.
    let out = k(kc, &["apply", "-f", MANIFEST]);
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
    let again = k(kc, &["apply", "-f", MANIFEST]);
    assert!(again.contains("deployment.apps/web unchanged"), "{again}");

    // Table output with the usual columns, short names, categories.
    let pods = k(kc, &["get", "po", "-n", "e2e"]);
    assert!(pods.starts_with("NAME") && pods.contains("READY") && pods.contains("STATUS") && pods.contains("RESTARTS") && pods.contains("AGE"), "{pods}");
    assert!(pods.contains("solo") && pods.contains("Pending"), "{pods}");
    let deploy = k(kc, &["get", "deploy", "-n", "e2e"]);
    assert!(deploy.contains("UP-TO-DATE") && deploy.contains("AVAILABLE") && deploy.contains("web"), "{deploy}");
    let svc = k(kc, &["get", "svc", "-n", "e2e", "-o", "wide"]);
    assert!(svc.contains("CLUSTER-IP") && svc.contains("SELECTOR") && svc.contains("80:3"), "NodePort allocated: {svc}");
    let all = k(kc, &["get", "all", "-n", "e2e", "-o", "name"]);
    for want in ["pod/solo", "service/web", "deployment.apps/web", "replicaset.apps/rs1", "statefulset.apps/db", "job.batch/once", "cronjob.batch/nightly"] {
        assert!(all.contains(want), "`get all` lacks {want}: {all}");
    }
    assert!(k(kc, &["get", "no"]).contains("e2e-node-1"));
    assert!(k(kc, &["get", "cm,secret,sa,ep,lease,ev,pvc,role,rolebinding,hpa,endpointslice", "-n", "e2e", "-o", "name"]).lines().count() >= 11);

    // describe
    let d = k(kc, &["describe", "deployment", "web", "-n", "e2e"]);
    assert!(d.contains("Replicas:") && d.contains("busybox:1.36") && d.contains("RollingUpdate"), "{d}");
    let d = k(kc, &["describe", "pod", "solo", "-n", "e2e"]);
    assert!(d.contains("Status:") && d.contains("Pending"), "{d}");

    // Server-set metadata and defaults.
    let uid = k(kc, &["get", "deploy", "web", "-n", "e2e", "-o", "jsonpath={.metadata.uid}"]);
    assert_eq!(uid.len(), 36);
    let gen1: u64 = k(kc, &["get", "deploy", "web", "-n", "e2e", "-o", "jsonpath={.metadata.generation}"]).parse().unwrap();

    // Second apply changing fields: strategic merge keeps what it must.
    let changed = std::fs::read_to_string(MANIFEST).unwrap().replace("busybox:1.36", "busybox:1.37").replace("mode: \"one\"", "mode: \"two\"");
    let out = kubectl_in(kc, &["apply", "-f", "-"], Some(&changed)).unwrap();
    assert!(out.contains("deployment.apps/web configured") && out.contains("configmap/app-config configured"), "{out}");
    assert_eq!(k(kc, &["get", "deploy", "web", "-n", "e2e", "-o", "jsonpath={.spec.template.spec.containers[0].image}"]), "busybox:1.37");
    assert_eq!(k(kc, &["get", "deploy", "web", "-n", "e2e", "-o", "jsonpath={.spec.template.spec.containers[0].ports[0].containerPort}"]), "8080");
    let gen2: u64 = k(kc, &["get", "deploy", "web", "-n", "e2e", "-o", "jsonpath={.metadata.generation}"]).parse().unwrap();
    assert_eq!(gen2, gen1 + 1, "generation bumps on spec changes");
    assert_eq!(k(kc, &["get", "cm", "app-config", "-n", "e2e", "-o", "jsonpath={.data.mode}"]), "two");

    // The three patch types.
    k(kc, &["patch", "deploy", "web", "-n", "e2e", "--type=strategic", "-p", r#"{"spec":{"template":{"spec":{"containers":[{"name":"sidecar","image":"busybox"}]}}}}"#]);
    let names = k(kc, &["get", "deploy", "web", "-n", "e2e", "-o", "jsonpath={.spec.template.spec.containers[*].name}"]);
    assert!(names.contains("sidecar") && names.contains("web"), "strategic patch merges containers by name: {names}");
    k(kc, &["patch", "cm", "app-config", "-n", "e2e", "--type=merge", "-p", r#"{"data":{"extra":"x","mode":null}}"#]);
    assert_eq!(k(kc, &["get", "cm", "app-config", "-n", "e2e", "-o", "jsonpath={.data}"]), r#"{"extra":"x","settings.json":"{\"a\": 1}"}"#);
    k(kc, &["patch", "lease", "leader", "-n", "e2e", "--type=json", "-p", r#"[{"op":"replace","path":"/spec/holderIdentity","value":"you"}]"#]);
    assert_eq!(k(kc, &["get", "lease", "leader", "-n", "e2e", "-o", "jsonpath={.spec.holderIdentity}"]), "you");

    // replace, label, annotate, scale.
    let cm = k(kc, &["get", "cm", "app-config", "-n", "e2e", "-o", "json"]).replace("\"extra\": \"x\"", "\"extra\": \"y\"");
    kubectl_in(kc, &["replace", "-f", "-"], Some(&cm)).unwrap();
    assert_eq!(k(kc, &["get", "cm", "app-config", "-n", "e2e", "-o", "jsonpath={.data.extra}"]), "y");
    k(kc, &["label", "pod", "solo", "-n", "e2e", "tier=backend"]);
    assert_eq!(k(kc, &["get", "pods", "-n", "e2e", "-l", "tier=backend", "-o", "name"]).trim(), "pod/solo");
    assert!(k(kc, &["get", "pods", "-n", "e2e", "-l", "tier!=backend,app=solo", "-o", "name"]).trim().is_empty());
    k(kc, &["annotate", "svc", "web", "-n", "e2e", "owner=team-a"]);
    assert_eq!(k(kc, &["get", "svc", "web", "-n", "e2e", "-o", "jsonpath={.metadata.annotations.owner}"]), "team-a");
    k(kc, &["scale", "deploy", "web", "-n", "e2e", "--replicas=4"]);
    k(kc, &["scale", "rs", "rs1", "-n", "e2e", "--replicas=3"]);
    k(kc, &["scale", "sts", "db", "-n", "e2e", "--replicas=2"]);
    assert_eq!(k(kc, &["get", "deploy", "web", "-n", "e2e", "-o", "jsonpath={.spec.replicas}"]), "4");
    assert_eq!(k(kc, &["get", "rs", "rs1", "-n", "e2e", "-o", "jsonpath={.spec.replicas}"]), "3");
    assert_eq!(k(kc, &["get", "sts", "db", "-n", "e2e", "-o", "jsonpath={.spec.replicas}"]), "2");

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
        let run = |args: Vec<String>| k(kc, &args.iter().map(|s| s.as_str()).collect::<Vec<_>>());
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
    assert_eq!(k(kc, &["get", "pods", "-A", "--field-selector", "metadata.name=solo", "-o", "name"]).trim(), "pod/solo");
    for i in 0..25 {
        kubectl_in(kc, &["apply", "-f", "-"], Some(&format!("apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: page-{i:02}, namespace: e2e}}\n"))).unwrap();
    }
    let paged = k(kc, &["get", "cm", "-n", "e2e", "--chunk-size=4", "-o", "name"]);
    assert_eq!(paged.lines().filter(|l| l.contains("page-")).count(), 25);

    // Optimistic concurrency: a stale resourceVersion is a conflict.
    let stale = k(kc, &["get", "cm", "app-config", "-n", "e2e", "-o", "json"]);
    k(kc, &["label", "cm", "app-config", "-n", "e2e", "bump=1"]);
    let err = kubectl_in(kc, &["replace", "-f", "-"], Some(&stale)).unwrap_err();
    assert!(err.contains("Conflict") || err.contains("the object has been modified"), "{err}");
    // Create of an existing name.
    let err = kubectl_in(kc, &["create", "-f", "-"], Some("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: app-config, namespace: e2e}\n")).unwrap_err();
    assert!(err.contains("AlreadyExists") || err.contains("already exists"), "{err}");
    // Validation errors come back as 422 with field causes.
    let err = kubectl_in(kc, &["apply", "-f", "-"], Some("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: Bad_Name, namespace: e2e}\n")).unwrap_err();
    assert!(err.contains("Invalid") && err.contains("metadata.name"), "{err}");
    // Unknown fields are refused by kubectl's strict validation.
    let err = kubectl_in(kc, &["apply", "-f", "-"], Some("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: strict, namespace: e2e}\nbogus: 1\n")).unwrap_err();
    assert!(err.contains("unknown field") && err.contains("bogus"), "{err}");
    // dry run writes nothing.
    kubectl_in(kc, &["apply", "--dry-run=server", "-f", "-"], Some("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: dry, namespace: e2e}\n")).unwrap();
    assert!(kubectl_in(kc, &["get", "cm", "dry", "-n", "e2e"], None).is_err());
    // explain reads the OpenAPI documents.
    let ex = k(kc, &["explain", "deployment.spec.strategy.rollingUpdate"]);
    assert!(ex.contains("maxSurge"), "{ex}");

    // Delete: by name, by file, and the namespace with everything in it.
    k(kc, &["delete", "hpa", "web", "-n", "e2e"]);
    assert!(k_err(kc, &["get", "hpa", "web", "-n", "e2e"]).contains("NotFound"));
    k(kc, &["delete", "clusterrolebinding", "e2e-viewer"]);
    k(kc, &["delete", "clusterrole", "e2e-viewer"]);
    k(kc, &["delete", "node", "e2e-node-1"]);
    k(kc, &["delete", "namespace", "e2e", "--wait=false"]);
    let phase = k(kc, &["get", "ns", "e2e", "-o", "jsonpath={.status.phase}"]);
    assert!(phase == "Terminating" || phase.is_empty(), "{phase}");
    wait_until("the namespace and its contents to go", || kubectl_in(kc, &["get", "ns", "e2e"], None).is_err());
    assert!(k(kc, &["get", "cm", "-n", "e2e", "-o", "name"]).trim().is_empty());
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

/// The same kubectl flow against three masters, the leader killed in the middle; each
/// master's kubeconfig works.
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
    k(&kcs[0], &["apply", "-f", MANIFEST]);
    // Every master serves the same objects with the same resourceVersion.
    let rv0 = k(&kcs[0], &["get", "deploy", "web", "-n", "e2e", "-o", "jsonpath={.metadata.resourceVersion}"]);
    for kc in &kcs {
        assert_eq!(k(kc, &["get", "deploy", "web", "-n", "e2e", "-o", "jsonpath={.metadata.resourceVersion}"]), rv0);
    }
    let leader = c.wait_leader(Duration::from_secs(5)).await.unwrap();
    c.kill(leader);
    let other = (leader + 1) % 3;
    // The survivors keep serving reads and writes through kubectl.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match kubectl_in(&kcs[other], &["scale", "deploy", "web", "-n", "e2e", "--replicas=7"], None) {
            Ok(_) => break,
            Err(e) => {
                assert!(Instant::now() < deadline, "scale after leader kill: {e}");
                std::thread::sleep(Duration::from_millis(200));
            }
        }
    }
    for i in (0..3).filter(|i| *i != leader) {
        assert_eq!(k(&kcs[i], &["get", "deploy", "web", "-n", "e2e", "-o", "jsonpath={.spec.replicas}"]), "7");
    }
    let changed = std::fs::read_to_string(MANIFEST).unwrap().replace("busybox:1.36", "busybox:1.38");
    kubectl_in(&kcs[other], &["apply", "-f", "-"], Some(&changed)).unwrap();
    k(&kcs[other], &["delete", "ns", "e2e", "--wait=false"]);
    c.restart(leader).unwrap();
    c.wait_api(leader, Duration::from_secs(30)).await.unwrap();
    wait_until("the restarted master to see the namespace gone", || kubectl_in(&kcs[leader], &["get", "ns", "e2e"], None).is_err());
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
