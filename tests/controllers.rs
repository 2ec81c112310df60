//! End-to-end: the scheduler and controllers on real masters, with simulated nodes (Node
//! objects with capacity, Leases renewed by the test, a stand-in kubelet marking pods Running and
//! Ready; no containers).

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use chaos::{Cluster, ClusterOptions, KubeClient, SimNode, SimNodes};
use serde_json::{Value, json};

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

fn apply(kc: &Path, yaml: &str) {
    kubectl_in(kc, &["apply", "-f", "-"], Some(yaml)).unwrap_or_else(|e| panic!("apply failed: {e}\n{yaml}"));
}

async fn wait_until<F, Fut>(what: &str, secs: u64, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !f().await {
        assert!(Instant::now() < deadline, "timed out after {secs}s waiting for {what}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

struct Env {
    cluster: Cluster,
    kc: PathBuf,
    kube: KubeClient,
}

async fn env(size: usize, extra: &[&str]) -> Env {
    let cluster = Cluster::start(ClusterOptions { size, server_args: extra.iter().map(|s| s.to_string()).collect(), ..Default::default() }).await.unwrap();
    let kc = cluster.wait_api(0, Duration::from_secs(30)).await.unwrap();
    let kube = KubeClient::from_kubeconfig(&kc).unwrap();
    Env { cluster, kc, kube }
}

async fn pods(kube: &KubeClient, ns: &str, selector: &str) -> Vec<Value> {
    let r = kube.get(&format!("/api/v1/namespaces/{ns}/pods?labelSelector={selector}")).await.unwrap();
    r.body["items"].as_array().cloned().unwrap_or_default()
}

fn node_of(p: &Value) -> String {
    p.pointer("/spec/nodeName").and_then(|n| n.as_str()).unwrap_or("").to_string()
}

fn phase(p: &Value) -> &str {
    p.pointer("/status/phase").and_then(|s| s.as_str()).unwrap_or("")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn placement_honours_the_rules() {
    let e = env(1, &[]).await;
    let nodes = vec![
        SimNode::new("small").capacity("1", "1Gi", 110).label("topology.kubernetes.io/zone", "a").label("disk", "hdd"),
        SimNode::new("big").capacity("8", "16Gi", 110).label("topology.kubernetes.io/zone", "b").label("disk", "ssd"),
        SimNode::new("tainted").capacity("8", "16Gi", 110).label("topology.kubernetes.io/zone", "c").taint("dedicated", "gpu", "NoSchedule"),
    ];
    let _sim = SimNodes::start(e.kube.clone(), nodes, Duration::from_secs(5), true).await.unwrap();
    let docs = r#"
apiVersion: v1
kind: Pod
metadata: {name: needs-ssd}
spec:
  nodeSelector: {disk: ssd}
  containers: [{name: c, image: busybox}]
---
apiVersion: v1
kind: Pod
metadata: {name: needs-cpu}
spec:
  containers: [{name: c, image: busybox, resources: {requests: {cpu: "2"}}}]
---
apiVersion: v1
kind: Pod
metadata: {name: tolerates-gpu}
spec:
  tolerations: [{key: dedicated, operator: Equal, value: gpu, effect: NoSchedule}]
  affinity:
    nodeAffinity:
      requiredDuringSchedulingIgnoredDuringExecution:
        nodeSelectorTerms: [{matchExpressions: [{key: topology.kubernetes.io/zone, operator: In, values: [c]}]}]
  containers: [{name: c, image: busybox}]
---
apiVersion: v1
kind: Pod
metadata: {name: impossible}
spec:
  containers: [{name: c, image: busybox, resources: {requests: {cpu: "64"}}}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: spread}
spec:
  replicas: 3
  selector: {matchLabels: {app: spread}}
  template:
    metadata: {labels: {app: spread}}
    spec:
      tolerations: [{key: dedicated, operator: Exists}]
      affinity:
        podAntiAffinity:
          requiredDuringSchedulingIgnoredDuringExecution: [{labelSelector: {matchLabels: {app: spread}}, topologyKey: topology.kubernetes.io/zone}]
      containers: [{name: c, image: busybox}]
"#;
    apply(&e.kc, docs);
    let kube = e.kube.clone();
    wait_until("pods to be placed", 30, || {
        let kube = kube.clone();
        async move {
            let all = pods(&kube, "default", "").await;
            all.iter().filter(|p| !node_of(p).is_empty()).count() >= 6
        }
    })
    .await;
    let all = pods(&e.kube, "default", "").await;
    let by: BTreeMap<String, String> = all.iter().map(|p| (p["metadata"]["name"].as_str().unwrap().to_string(), node_of(p))).collect();
    assert_eq!(by["needs-ssd"], "big", "nodeSelector");
    assert_eq!(by["needs-cpu"], "big", "resource fit (and the tainted node is not tolerated)");
    assert_eq!(by["tolerates-gpu"], "tainted", "toleration + required node affinity");
    assert_eq!(by["impossible"], "", "no node fits 64 cpus");
    let spread: Vec<String> = all.iter().filter(|p| p["metadata"]["labels"]["app"] == "spread").map(node_of).collect();
    let mut zones = spread.clone();
    zones.sort();
    zones.dedup();
    assert_eq!(zones.len(), 3, "anti-affinity by zone puts the 3 replicas on 3 nodes: {spread:?}");
    // The unschedulable pod says why, and an Event tells the same.
    let imp = e.kube.get("/api/v1/namespaces/default/pods/impossible").await.unwrap().body;
    let cond = imp["status"]["conditions"].as_array().unwrap().iter().find(|c| c["type"] == "PodScheduled").unwrap().clone();
    assert_eq!(cond["status"], "False");
    assert_eq!(cond["reason"], "Unschedulable");
    assert!(cond["message"].as_str().unwrap().contains("Insufficient cpu"), "{cond}");
    let events = k(&e.kc, &["get", "events", "--field-selector", "involvedObject.name=impossible"]);
    assert!(events.contains("FailedScheduling"), "{events}");
    // Pods started by the simulated kubelet show Running.
    assert_eq!(phase(all.iter().find(|p| p["metadata"]["name"] == "needs-ssd").unwrap()), "Running");
}

/// A ReplicaSet heals deleted pods; a Deployment rolls a new image through with
/// maxUnavailable respected at every step, `kubectl rollout` commands work, and undo returns to
/// the previous template.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicasets_heal_and_deployments_roll() {
    let e = env(1, &[]).await;
    let nodes: Vec<SimNode> = (0..4).map(|i| SimNode::new(format!("n{i}"))).collect();
    let _sim = SimNodes::start(e.kube.clone(), nodes, Duration::from_secs(5), true).await.unwrap();
    apply(
        &e.kc,
        "apiVersion: apps/v1\nkind: ReplicaSet\nmetadata: {name: heal}\nspec:\n  replicas: 3\n  selector: {matchLabels: {app: heal}}\n  template:\n    metadata: {labels: {app: heal}}\n    spec: {containers: [{name: c, image: busybox}]}\n",
    );
    let kube = e.kube.clone();
    let running = |sel: &'static str, n: usize| {
        let kube = kube.clone();
        move || {
            let kube = kube.clone();
            async move { pods(&kube, "default", sel).await.iter().filter(|p| phase(p) == "Running" && p.pointer("/metadata/deletionTimestamp").is_none()).count() == n }
        }
    };
    wait_until("3 running heal pods", 30, running("app=heal", 3)).await;
    let victim = pods(&e.kube, "default", "app=heal").await[0]["metadata"]["name"].as_str().unwrap().to_string();
    k(&e.kc, &["delete", "pod", &victim, "--wait=false"]);
    wait_until("the ReplicaSet to replace the deleted pod", 30, running("app=heal", 3)).await;
    assert!(!pods(&e.kube, "default", "app=heal").await.iter().any(|p| p["metadata"]["name"] == victim.as_str()));
    let rs = k(&e.kc, &["get", "rs", "heal", "-o", "jsonpath={.status.replicas}/{.status.readyReplicas}/{.status.availableReplicas}"]);
    assert_eq!(rs, "3/3/3");

    // Deployment rollout with maxUnavailable 1, maxSurge 1, recorded from a watch.
    let dep = |image: &str| {
        format!(
            "apiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: web}}\nspec:\n  replicas: 4\n  strategy: {{type: RollingUpdate, rollingUpdate: {{maxUnavailable: 1, maxSurge: 1}}}}\n  selector: {{matchLabels: {{app: web}}}}\n  template:\n    metadata: {{labels: {{app: web}}}}\n    spec: {{containers: [{{name: c, image: \"{image}\"}}]}}\n"
        )
    };
    apply(&e.kc, &dep("busybox:1.36"));
    k(&e.kc, &["rollout", "status", "deployment/web", "--timeout=60s"]);
    let list = e.kube.get("/api/v1/namespaces/default/pods?labelSelector=app%3Dweb").await.unwrap();
    let rv = list.body["metadata"]["resourceVersion"].as_str().unwrap().to_string();
    let mut rx = e.kube.watch("/api/v1/namespaces/default/pods?labelSelector=app%3Dweb", &rv).await.unwrap();
    let mut state: BTreeMap<String, Value> = list.body["items"].as_array().unwrap().iter().map(|p| (p["metadata"]["name"].as_str().unwrap().to_string(), p.clone())).collect();
    apply(&e.kc, &dep("busybox:1.37"));
    let rollout = {
        let kc = e.kc.clone();
        std::thread::spawn(move || kubectl_in(&kc, &["rollout", "status", "deployment/web", "--timeout=90s"], None))
    };
    let ready = |p: &Value| {
        p.pointer("/metadata/deletionTimestamp").is_none()
            && p["status"]["conditions"].as_array().is_some_and(|cs| cs.iter().any(|c| c["type"] == "Ready" && c["status"] == "True"))
    };
    let mut min_ready = usize::MAX;
    let mut max_total = 0;
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let done = state.values().filter(|p| ready(p) && p.pointer("/spec/containers/0/image").and_then(|i| i.as_str()) == Some("busybox:1.37")).count() == 4
            && state.values().filter(|p| p.pointer("/metadata/deletionTimestamp").is_none()).count() == 4;
        if done || Instant::now() > deadline {
            break;
        }
        let Ok(Some(ev)) = tokio::time::timeout(Duration::from_secs(5), rx.recv()).await else { continue };
        let obj = ev["object"].clone();
        let name = obj["metadata"]["name"].as_str().unwrap_or("").to_string();
        match ev["type"].as_str() {
            Some("DELETED") => {
                state.remove(&name);
            }
            Some("ADDED") | Some("MODIFIED") => {
                state.insert(name, obj);
            }
            _ => continue,
        }
        min_ready = min_ready.min(state.values().filter(|p| ready(p)).count());
        max_total = max_total.max(state.values().filter(|p| p.pointer("/metadata/deletionTimestamp").is_none()).count());
    }
    let out = rollout.join().unwrap().expect("rollout status succeeds");
    assert!(out.contains("successfully rolled out"), "{out}");
    assert!(min_ready >= 3, "maxUnavailable=1 of 4: at least 3 ready at every step, saw {min_ready}");
    assert!(max_total <= 5, "maxSurge=1 of 4: at most 5 pods at every step, saw {max_total}");
    let hist = k(&e.kc, &["rollout", "history", "deployment/web"]);
    assert!(hist.contains('1') && hist.contains('2'), "{hist}");
    k(&e.kc, &["rollout", "undo", "deployment/web"]);
    k(&e.kc, &["rollout", "status", "deployment/web", "--timeout=90s"]);
    assert_eq!(k(&e.kc, &["get", "deploy", "web", "-o", "jsonpath={.spec.template.spec.containers[0].image}"]), "busybox:1.36");
    // pause / set image / resume / scale
    k(&e.kc, &["rollout", "pause", "deployment/web"]);
    k(&e.kc, &["set", "image", "deployment/web", "c=busybox:1.38"]);
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(pods(&e.kube, "default", "app=web").await.iter().all(|p| p.pointer("/spec/containers/0/image").and_then(|i| i.as_str()) != Some("busybox:1.38")), "paused: no rollout");
    k(&e.kc, &["rollout", "resume", "deployment/web"]);
    k(&e.kc, &["rollout", "status", "deployment/web", "--timeout=90s"]);
    k(&e.kc, &["scale", "deployment/web", "--replicas=2"]);
    wait_until("scale down to 2", 30, running("app=web", 2)).await;
    let desc = k(&e.kc, &["describe", "deployment", "web"]);
    assert!(desc.contains("ScalingReplicaSet"), "events in describe: {desc}");
}

/// A node whose lease stops is marked unknown and tainted; its pods are evicted after their
/// toleration seconds and replaced on other nodes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_nodes_are_tainted_and_their_pods_replaced() {
    let e = env(1, &["--node-monitor-grace-period=3s", "--node-monitor-period=1s", "--default-toleration-seconds=2"]).await;
    let nodes: Vec<SimNode> = (0..3).map(|i| SimNode::new(format!("n{i}"))).collect();
    let sim = SimNodes::start(e.kube.clone(), nodes, Duration::from_secs(1), true).await.unwrap();
    apply(
        &e.kc,
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: app}\nspec:\n  replicas: 6\n  selector: {matchLabels: {app: app}}\n  template:\n    metadata: {labels: {app: app}}\n    spec: {containers: [{name: c, image: busybox}]}\n",
    );
    k(&e.kc, &["rollout", "status", "deployment/app", "--timeout=60s"]);
    let before = pods(&e.kube, "default", "app=app").await;
    let on_n0: Vec<String> = before.iter().filter(|p| node_of(p) == "n0").map(|p| p["metadata"]["name"].as_str().unwrap().to_string()).collect();
    assert!(!on_n0.is_empty(), "some pods landed on n0");
    sim.stop_node("n0");
    let kube = e.kube.clone();
    wait_until("n0 to be tainted unreachable", 30, || {
        let kube = kube.clone();
        async move {
            let n = kube.get("/api/v1/nodes/n0").await.unwrap().body;
            let tainted = n["spec"]["taints"].as_array().is_some_and(|ts| ts.iter().any(|t| t["key"] == "node.kubernetes.io/unreachable" && t["effect"] == "NoExecute"));
            let unknown = n["status"]["conditions"].as_array().is_some_and(|cs| cs.iter().any(|c| c["type"] == "Ready" && c["status"] == "Unknown"));
            tainted && unknown
        }
    })
    .await;
    let kube = e.kube.clone();
    wait_until("the pods of n0 to be replaced elsewhere", 60, || {
        let kube = kube.clone();
        async move {
            let now = pods(&kube, "default", "app=app").await;
            let live: Vec<&Value> = now.iter().filter(|p| p.pointer("/metadata/deletionTimestamp").is_none()).collect();
            live.len() == 6 && live.iter().all(|p| node_of(p) != "n0" && phase(p) == "Running")
        }
    })
    .await;
    assert!(k(&e.kc, &["get", "node", "n0"]).contains("NotReady"));
}

/// The leader master is killed in the middle of a rollout; the new leader's controllers finish
/// it with no duplicate or lost replicas.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rollout_survives_a_leader_kill() {
    let mut e = env(3, &[]).await;
    let nodes: Vec<SimNode> = (0..4).map(|i| SimNode::new(format!("n{i}"))).collect();
    // The simulated nodes talk to a master that stays up.
    let leader = e.cluster.wait_leader(Duration::from_secs(5)).await.unwrap();
    let survivor = (leader + 1) % 3;
    let kc = e.cluster.wait_api(survivor, Duration::from_secs(30)).await.unwrap();
    let kube = KubeClient::from_kubeconfig(&kc).unwrap();
    e.kube = kube.clone();
    let _sim = SimNodes::start(kube.clone(), nodes, Duration::from_secs(2), true).await.unwrap();
    let dep = |image: &str| {
        format!(
            "apiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: web}}\nspec:\n  replicas: 8\n  strategy: {{type: RollingUpdate, rollingUpdate: {{maxUnavailable: 1, maxSurge: 1}}}}\n  selector: {{matchLabels: {{app: web}}}}\n  template:\n    metadata: {{labels: {{app: web}}}}\n    spec: {{containers: [{{name: c, image: \"{image}\"}}]}}\n"
        )
    };
    apply(&kc, &dep("busybox:1.36"));
    k(&kc, &["rollout", "status", "deployment/web", "--timeout=60s"]);
    apply(&kc, &dep("busybox:1.37"));
    tokio::time::sleep(Duration::from_millis(700)).await;
    e.cluster.kill(leader);
    let out = kubectl_in(&kc, &["rollout", "status", "deployment/web", "--timeout=120s"], None).expect("the rollout completes under the new leader");
    assert!(out.contains("successfully rolled out"), "{out}");
    let live: Vec<Value> = pods(&kube, "default", "app=web").await.into_iter().filter(|p| p.pointer("/metadata/deletionTimestamp").is_none()).collect();
    assert_eq!(live.len(), 8, "no duplicate or lost replicas");
    assert!(live.iter().all(|p| p.pointer("/spec/containers/0/image").and_then(|i| i.as_str()) == Some("busybox:1.37")));
    let rs = k(&kc, &["get", "rs", "-l", "app=web", "-o", "jsonpath={range .items[*]}{.spec.replicas} {end}"]);
    let mut counts: Vec<u32> = rs.split_whitespace().map(|s| s.parse().unwrap()).collect();
    counts.sort();
    assert_eq!(counts, vec![0, 8], "old ReplicaSet at 0, new at 8: {rs}");
}

/// Services get Endpoints and EndpointSlices; owners take their dependents with them; every
/// namespace gets a default ServiceAccount; the other workload controllers do their job.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endpoints_gc_and_workload_controllers() {
    let e = env(1, &[]).await;
    let nodes: Vec<SimNode> = (0..3).map(|i| SimNode::new(format!("n{i}")).label("topology.kubernetes.io/zone", &format!("z{i}"))).collect();
    let _sim = SimNodes::start(e.kube.clone(), nodes, Duration::from_secs(5), true).await.unwrap();
    k(&e.kc, &["create", "namespace", "w"]);
    let kube = e.kube.clone();
    wait_until("the default ServiceAccount", 20, || {
        let kube = kube.clone();
        async move { kube.get("/api/v1/namespaces/w/serviceaccounts/default").await.map(|r| r.ok()).unwrap_or(false) }
    })
    .await;
    apply(
        &e.kc,
        r#"apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: w}
spec:
  replicas: 3
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec: {containers: [{name: c, image: busybox, ports: [{name: http, containerPort: 8080}]}]}
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: w}
spec:
  selector: {app: web}
  ports: [{port: 80, targetPort: http}]
---
apiVersion: apps/v1
kind: DaemonSet
metadata: {name: agent, namespace: w}
spec:
  selector: {matchLabels: {app: agent}}
  template:
    metadata: {labels: {app: agent}}
    spec: {containers: [{name: c, image: busybox}]}
---
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: db, namespace: w}
spec:
  serviceName: db
  replicas: 2
  selector: {matchLabels: {app: db}}
  template:
    metadata: {labels: {app: db}}
    spec: {containers: [{name: c, image: busybox}]}
---
apiVersion: batch/v1
kind: Job
metadata: {name: once, namespace: w}
spec:
  completions: 2
  parallelism: 1
  template:
    spec:
      restartPolicy: Never
      containers: [{name: c, image: busybox}]
"#,
    );
    // Endpoints: three ready addresses on port 8080.
    let kube = e.kube.clone();
    wait_until("endpoints with 3 addresses", 30, || {
        let kube = kube.clone();
        async move {
            let ep = kube.get("/api/v1/namespaces/w/endpoints/web").await.unwrap().body;
            ep["subsets"][0]["addresses"].as_array().map(|a| a.len()) == Some(3) && ep["subsets"][0]["ports"][0]["port"] == 8080
        }
    })
    .await;
    wait_until("an EndpointSlice with 3 ready endpoints", 30, || {
        let kube = kube.clone();
        async move {
            let slices = kube.get("/apis/discovery.k8s.io/v1/namespaces/w/endpointslices?labelSelector=kubernetes.io%2Fservice-name%3Dweb").await.unwrap().body;
            let eps = slices["items"][0]["endpoints"].as_array().cloned().unwrap_or_default();
            eps.len() == 3 && eps.iter().all(|e| e["conditions"]["ready"] == true) && slices["items"][0]["ports"][0]["port"] == 8080
        }
    })
    .await;
    // DaemonSet: one pod per node; StatefulSet: stable names.
    wait_until("daemon pods on every node", 30, || {
        let kube = kube.clone();
        async move {
            let ps = pods(&kube, "w", "app=agent").await;
            let mut nodes: Vec<String> = ps.iter().map(node_of).collect();
            nodes.sort();
            nodes == vec!["n0", "n1", "n2"]
        }
    })
    .await;
    wait_until("statefulset pods db-0 and db-1", 30, || {
        let kube = kube.clone();
        async move {
            let mut names: Vec<String> = pods(&kube, "w", "app=db").await.iter().filter(|p| phase(p) == "Running").map(|p| p["metadata"]["name"].as_str().unwrap().to_string()).collect();
            names.sort();
            names == vec!["db-0", "db-1"]
        }
    })
    .await;
    // Job: the simulated kubelet leaves pods Running; finish them as a kubelet would.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let job = e.kube.get("/apis/batch/v1/namespaces/w/jobs/once").await.unwrap().body;
        if job["status"]["succeeded"] == 2 {
            assert!(job["status"]["conditions"].as_array().unwrap().iter().any(|c| c["type"] == "Complete" && c["status"] == "True"), "{job}");
            break;
        }
        assert!(Instant::now() < deadline, "job did not complete: {job}");
        for p in pods(&e.kube, "w", "job-name=once").await {
            if phase(&p) == "Running" {
                let path = format!("/api/v1/namespaces/w/pods/{}/status", p["metadata"]["name"].as_str().unwrap());
                let _ = e.kube.patch(&path, &json!({"status": {"phase": "Succeeded", "conditions": [{"type": "Ready", "status": "False"}]}})).await;
            }
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    // Garbage collection: deleting the deployment takes its ReplicaSet and pods.
    k(&e.kc, &["delete", "deployment", "web", "-n", "w"]);
    wait_until("the deployment's pods to be collected", 30, || {
        let kube = kube.clone();
        async move {
            let rs = kube.get("/apis/apps/v1/namespaces/w/replicasets").await.unwrap().body;
            rs["items"].as_array().is_some_and(|a| a.is_empty()) && pods(&kube, "w", "app=web").await.iter().all(|p| p.pointer("/metadata/deletionTimestamp").is_some())
        }
    })
    .await;
    // Orphan: the statefulset goes, its pods stay without an owner.
    k(&e.kc, &["delete", "statefulset", "db", "-n", "w", "--cascade=orphan"]);
    wait_until("orphaned pods without owner", 30, || {
        let kube = kube.clone();
        async move {
            let ps = pods(&kube, "w", "app=db").await;
            ps.len() == 2 && ps.iter().all(|p| p.pointer("/metadata/ownerReferences").and_then(|o| o.as_array()).is_none_or(|a| a.is_empty()))
        }
    })
    .await;
}

fn name_of(p: &Value) -> String {
    p["metadata"]["name"].as_str().unwrap_or("").to_string()
}

fn scheduled_condition(p: &Value) -> Option<Value> {
    p["status"]["conditions"].as_array().and_then(|cs| cs.iter().find(|c| c["type"] == "PodScheduled").cloned())
}

/// Waits until the pod is reported Unschedulable and returns the scheduler's message.
async fn unschedulable_message(kube: &KubeClient, name: &str) -> String {
    let path = format!("/api/v1/namespaces/default/pods/{name}");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let p = kube.get(&path).await.unwrap().body;
        if let Some(c) = scheduled_condition(&p)
            && c["status"] == "False"
            && c["reason"] == "Unschedulable"
        {
            assert_eq!(node_of(&p), "", "{p}");
            return c["message"].as_str().unwrap_or("").to_string();
        }
        assert!(Instant::now() < deadline, "{name} was not reported unschedulable: {p}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Cordon (`kubectl cordon`): no new pods land on the node, until `kubectl uncordon`; a pod that
/// names its node (`spec.nodeName`) goes there without the scheduler, cordoned or not; pods
/// asking for the same hostPort never share a node, and the one left over waits, then lands on
/// the node uncordoned.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn placement_honours_cordon_node_name_and_host_ports() {
    let e = env(1, &[]).await;
    let nodes: Vec<SimNode> = ["n-a", "n-b", "n-c"].iter().map(|n| SimNode::new(*n)).collect();
    let _sim = SimNodes::start(e.kube.clone(), nodes, Duration::from_secs(5), true).await.unwrap();
    let out = k(&e.kc, &["cordon", "n-a"]);
    assert!(out.contains("cordoned"), "{out}");
    assert_eq!(k(&e.kc, &["get", "node", "n-a", "-o", "jsonpath={.spec.unschedulable}"]), "true");
    assert!(k(&e.kc, &["get", "node", "n-a"]).contains("SchedulingDisabled"));
    apply(
        &e.kc,
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: many}\nspec:\n  replicas: 6\n  selector: {matchLabels: {app: many}}\n  template:\n    metadata: {labels: {app: many}}\n    spec: {containers: [{name: c, image: busybox}]}\n---\napiVersion: v1\nkind: Pod\nmetadata: {name: pinned-a}\nspec:\n  nodeName: n-a\n  containers: [{name: c, image: busybox}]\n---\napiVersion: v1\nkind: Pod\nmetadata: {name: pinned-c}\nspec:\n  nodeName: n-c\n  containers: [{name: c, image: busybox}]\n",
    );
    let kube = e.kube.clone();
    wait_until("the deployment's pods and the pinned pods to run", 30, || {
        let kube = kube.clone();
        async move {
            let all = pods(&kube, "default", "").await;
            all.len() == 8 && all.iter().all(|p| phase(p) == "Running")
        }
    })
    .await;
    let all = pods(&e.kube, "default", "").await;
    let by: BTreeMap<String, String> = all.iter().map(|p| (name_of(p), node_of(p))).collect();
    assert_eq!(by["pinned-a"], "n-a", "spec.nodeName puts the pod on a cordoned node too, as in Kubernetes");
    assert_eq!(by["pinned-c"], "n-c");
    let many: Vec<&Value> = all.iter().filter(|p| p["metadata"]["labels"]["app"] == "many").collect();
    assert_eq!(many.len(), 6);
    assert!(many.iter().all(|p| node_of(p) != "n-a"), "no scheduled pod on the cordoned node: {by:?}");
    assert!(many.iter().any(|p| node_of(p) == "n-b") && many.iter().any(|p| node_of(p) == "n-c"), "{by:?}");

    // hostPort 8080: one pod per schedulable node; the third has nowhere to go.
    let hp = |name: &str| {
        format!("apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}, labels: {{app: hp}}}}\nspec:\n  containers: [{{name: c, image: busybox, ports: [{{containerPort: 80, hostPort: 8080}}]}}]\n")
    };
    apply(&e.kc, &format!("{}---\n{}---\n{}", hp("hp-1"), hp("hp-2"), hp("hp-3")));
    let kube = e.kube.clone();
    wait_until("two hostPort pods placed", 30, || {
        let kube = kube.clone();
        async move { pods(&kube, "default", "app=hp").await.iter().filter(|p| !node_of(p).is_empty()).count() == 2 }
    })
    .await;
    let hps = pods(&e.kube, "default", "app=hp").await;
    let mut placed: Vec<String> = hps.iter().map(node_of).filter(|n| !n.is_empty()).collect();
    placed.sort();
    assert_eq!(placed, vec!["n-b", "n-c"], "hostPort pods never share a node, and avoid the cordoned one");
    let waiting = name_of(hps.iter().find(|p| node_of(p).is_empty()).unwrap());
    let msg = unschedulable_message(&e.kube, &waiting).await;
    assert!(msg.contains("0/3 nodes are available"), "{msg}");
    assert!(msg.contains("2 node(s) didn't have free ports for the requested pod ports"), "{msg}");
    assert!(msg.contains("1 node(s) were unschedulable"), "{msg}");
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(node_of(&e.kube.get(&format!("/api/v1/namespaces/default/pods/{waiting}")).await.unwrap().body), "", "it keeps waiting");

    // Uncordon: the waiting pod is retried and lands on the node that opened up.
    k(&e.kc, &["uncordon", "n-a"]);
    let kube = e.kube.clone();
    let path = format!("/api/v1/namespaces/default/pods/{waiting}");
    wait_until("the waiting hostPort pod to land on n-a", 30, || {
        let (kube, path) = (kube.clone(), path.clone());
        async move { node_of(&kube.get(&path).await.unwrap().body) == "n-a" }
    })
    .await;
}

/// Required pod affinity puts pods in the topology domain of the pods they follow (and a pod
/// following nobody waits, saying why); a DoNotSchedule topology spread keeps the skew within
/// maxSkew even where plain scoring would not, and never uses a node without the key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn placement_honours_pod_affinity_and_topology_spread() {
    let e = env(1, &[]).await;
    let nodes = vec![
        SimNode::new("r1").label("topology.kubernetes.io/zone", "a").label("rack", "x"),
        SimNode::new("r2").label("topology.kubernetes.io/zone", "b").label("rack", "y"),
        SimNode::new("r3").label("topology.kubernetes.io/zone", "b").label("rack", "y"),
        SimNode::new("norack").label("topology.kubernetes.io/zone", "c"),
    ];
    let _sim = SimNodes::start(e.kube.clone(), nodes, Duration::from_secs(5), true).await.unwrap();
    let docs = r#"
apiVersion: v1
kind: Pod
metadata: {name: anchor, labels: {app: anchor}}
spec:
  nodeSelector: {kubernetes.io/hostname: r1}
  containers: [{name: c, image: busybox}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: follow}
spec:
  replicas: 3
  selector: {matchLabels: {app: follow}}
  template:
    metadata: {labels: {app: follow}}
    spec:
      affinity:
        podAffinity:
          requiredDuringSchedulingIgnoredDuringExecution: [{labelSelector: {matchLabels: {app: anchor}}, topologyKey: topology.kubernetes.io/zone}]
      containers: [{name: c, image: busybox}]
---
apiVersion: v1
kind: Pod
metadata: {name: lonely}
spec:
  affinity:
    podAffinity:
      requiredDuringSchedulingIgnoredDuringExecution: [{labelSelector: {matchLabels: {app: nobody}}, topologyKey: topology.kubernetes.io/zone}]
  containers: [{name: c, image: busybox}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: spread}
spec:
  replicas: 6
  selector: {matchLabels: {app: spread}}
  template:
    metadata: {labels: {app: spread}}
    spec:
      topologySpreadConstraints: [{maxSkew: 1, topologyKey: rack, whenUnsatisfiable: DoNotSchedule, labelSelector: {matchLabels: {app: spread}}}]
      containers: [{name: c, image: busybox}]
"#;
    apply(&e.kc, docs);
    let kube = e.kube.clone();
    wait_until("the anchor, its followers and the spread pods to run", 30, || {
        let kube = kube.clone();
        async move {
            let all = pods(&kube, "default", "").await;
            all.iter().filter(|p| phase(p) == "Running").count() == 10
        }
    })
    .await;
    let all = pods(&e.kube, "default", "").await;
    assert_eq!(node_of(all.iter().find(|p| name_of(p) == "anchor").unwrap()), "r1");
    let followers: Vec<String> = all.iter().filter(|p| p["metadata"]["labels"]["app"] == "follow").map(node_of).collect();
    assert_eq!(followers, vec!["r1"; 3], "zone a has one node, the anchor's: every follower goes there");
    let spread: Vec<String> = all.iter().filter(|p| p["metadata"]["labels"]["app"] == "spread").map(node_of).collect();
    assert_eq!(spread.len(), 6);
    let in_x = spread.iter().filter(|n| *n == "r1").count();
    let in_y = spread.iter().filter(|n| *n == "r2" || *n == "r3").count();
    assert!(!spread.iter().any(|n| n == "norack"), "a node without the topology key is never used: {spread:?}");
    assert_eq!((in_x, in_y), (3, 3), "maxSkew 1 over racks x (1 node) and y (2 nodes): {spread:?}");
    // The pod whose affinity matches no pod waits and says why.
    let msg = unschedulable_message(&e.kube, "lonely").await;
    assert!(msg.contains("0/4 nodes are available") && msg.contains("didn't match pod affinity rules"), "{msg}");

    // Once the anchor is gone a new follower has nothing to follow, though its siblings still run
    // in zone a: the affinity is to the anchor's pods, evaluated against the pods there now.
    k(&e.kc, &["delete", "pod", "anchor", "--grace-period=0", "--force"]);
    let kube = e.kube.clone();
    wait_until("the anchor to go", 20, || {
        let kube = kube.clone();
        async move { kube.get("/api/v1/namespaces/default/pods/anchor").await.unwrap().status == 404 }
    })
    .await;
    apply(
        &e.kc,
        "apiVersion: v1\nkind: Pod\nmetadata: {name: late-follower}\nspec:\n  affinity:\n    podAffinity:\n      requiredDuringSchedulingIgnoredDuringExecution: [{labelSelector: {matchLabels: {app: anchor}}, topologyKey: topology.kubernetes.io/zone}]\n  containers: [{name: c, image: busybox}]\n",
    );
    let msg = unschedulable_message(&e.kube, "late-follower").await;
    assert!(msg.contains("didn't match pod affinity rules"), "{msg}");
}

/// `rkube cluster transfer-leader`: the controllers stop on the old leader and start on the new
/// one, which then does the work (a ReplicaSet created after the transfer gets its pods).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn controllers_follow_a_leadership_transfer() {
    let e = env(3, &[]).await;
    let log = |i: usize| std::fs::read_to_string(&e.cluster.masters[i].log).unwrap_or_default();
    // Whether a master's log says its controllers run now: started, and not stopped since.
    let running = |text: &str| {
        let started = text.rfind("became leader: starting the scheduler and controllers");
        started.is_some() && started > text.rfind("lost leadership: stopping the scheduler and controllers")
    };
    let old = e.cluster.wait_leader(Duration::from_secs(5)).await.unwrap();
    wait_until("the leader to start its controllers", 20, || {
        let on = running(&log(old));
        async move { on }
    })
    .await;
    for i in (0..3).filter(|i| *i != old) {
        assert!(!running(&log(i)), "only the leader runs controllers (master {i})");
    }
    let new = (old + 1) % 3;
    // The simulated nodes talk to the third master, which never leads here.
    let third = (old + 2) % 3;
    let kc = e.cluster.wait_api(third, Duration::from_secs(30)).await.unwrap();
    let kube = KubeClient::from_kubeconfig(&kc).unwrap();
    let nodes: Vec<SimNode> = (0..3).map(|i| SimNode::new(format!("n{i}"))).collect();
    let _sim = SimNodes::start(kube.clone(), nodes, Duration::from_secs(2), true).await.unwrap();

    let out = e
        .cluster
        .cli(&["cluster", "transfer-leader", "--to", &e.cluster.masters[new].node_id.to_string(), "--server", &e.cluster.masters[old].url])
        .unwrap();
    assert!(out.contains("leader is now"), "{out}");
    assert_eq!(e.cluster.wait_leader(Duration::from_secs(5)).await.unwrap(), new);
    wait_until("the old leader to stop its controllers and the new one to start them", 20, || {
        let moved = !running(&log(old)) && running(&log(new));
        async move { moved }
    })
    .await;
    assert!(!running(&log(third)), "the third master runs no controllers");

    apply(
        &kc,
        "apiVersion: apps/v1\nkind: ReplicaSet\nmetadata: {name: after-transfer}\nspec:\n  replicas: 3\n  selector: {matchLabels: {app: after}}\n  template:\n    metadata: {labels: {app: after}}\n    spec: {containers: [{name: c, image: busybox}]}\n",
    );
    wait_until("the new leader's controllers and scheduler to run the ReplicaSet's pods", 30, || {
        let kube = kube.clone();
        async move {
            let ps = pods(&kube, "default", "app=after").await;
            ps.len() == 3 && ps.iter().all(|p| phase(p) == "Running" && !node_of(p).is_empty())
        }
    })
    .await;
    assert_eq!(k(&kc, &["get", "rs", "after-transfer", "-o", "jsonpath={.status.readyReplicas}"]), "3");
    // Only the new leader ran them: the old one stayed stopped, the third never started.
    assert!(!running(&log(old)), "the old leader did not restart its controllers");
    assert!(running(&log(new)) && !running(&log(third)));
}
