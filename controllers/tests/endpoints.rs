mod netgc_support;

use std::time::Duration;

use controllers::client::{DeleteOptions, res};
use controllers::endpoints::{self, CONTROLLER_NAME, MANAGED_BY_LABEL, SERVICE_NAME_LABEL};
use controllers::{Config, client::WatchEvent};
use netgc_support::{Harness, rv, wait_for};
use serde_json::{Value, json};

const T: Duration = Duration::from_secs(5);

fn pod(name: &str, app: &str, ip: &str, ready: bool, http_port: i64) -> Value {
    let mut p = json!({
        "metadata": {"name": name, "labels": {"app": app}},
        "spec": {"nodeName": "n1", "containers": [{"name": "c", "image": "x", "ports": [{"name": "http", "containerPort": http_port}]}]},
        "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": if ready { "True" } else { "False" }}]},
    });
    if !ip.is_empty() {
        p["status"]["podIP"] = json!(ip);
        p["status"]["podIPs"] = json!([{"ip": ip}]);
    }
    p
}

fn service(name: &str, extra: Value) -> Value {
    let mut s = json!({
        "metadata": {"name": name, "labels": {"tier": "front"}},
        "spec": {"selector": {"app": "web"}, "clusterIP": "10.96.0.10", "ipFamilies": ["IPv4"],
                 "ports": [{"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}]},
    });
    controllers::testing::merge(&mut s, &extra);
    s
}

fn addr_ips(ep: &Value, field: &str) -> Vec<String> {
    let mut ips: Vec<String> = ep["subsets"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|s| s[field].as_array().cloned().unwrap_or_default())
        .filter_map(|a| a["ip"].as_str().map(String::from))
        .collect();
    ips.sort();
    ips
}

fn slices_of(h: &Harness, svc: &str) -> Vec<Value> {
    h.fake
        .objects(res("discovery.k8s.io", "endpointslices"))
        .into_iter()
        .filter(|s| s["metadata"]["labels"][SERVICE_NAME_LABEL] == svc)
        .collect()
}

/// (ip, ready, serving, terminating) of every endpoint of the service's slices.
fn slice_endpoints(h: &Harness, svc: &str) -> Vec<(String, bool, bool, bool)> {
    let mut out: Vec<_> = slices_of(h, svc)
        .iter()
        .flat_map(|s| s["endpoints"].as_array().cloned().unwrap_or_default())
        .map(|e| {
            let c = &e["conditions"];
            (e["addresses"][0].as_str().unwrap_or("").to_string(), c["ready"] == true, c["serving"] == true, c["terminating"] == true)
        })
        .collect();
    out.sort();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endpoints_and_slices_follow_pods() {
    let mut h = Harness::new(Config::default());
    let (pods, eps, slices) = (res("", "pods"), res("", "endpoints"), res("discovery.k8s.io", "endpointslices"));
    h.create(res("", "nodes"), None, json!({"metadata": {"name": "n1", "labels": {"topology.kubernetes.io/zone": "zone-a"}}})).await;
    let svc = h.create(res("", "services"), Some("default"), service("web", json!({}))).await;
    h.create(pods, Some("default"), pod("a", "web", "10.0.0.1", true, 8080)).await;
    h.create(pods, Some("default"), pod("b", "web", "10.0.0.2", false, 8080)).await;
    h.create(pods, Some("default"), pod("no-ip", "web", "", true, 8080)).await;
    h.create(pods, Some("default"), pod("db", "db", "10.0.0.9", true, 8080)).await;
    h.start(endpoints::run);

    // Ready / not-ready split, the named target port resolved.
    let ep = wait_for("the Endpoints", T, || h.fake.get(eps, "default/web").filter(|e| addr_ips(e, "notReadyAddresses") == ["10.0.0.2"])).await;
    assert_eq!(addr_ips(&ep, "addresses"), ["10.0.0.1"]);
    assert_eq!(ep["subsets"][0]["ports"], json!([{"name": "http", "port": 8080, "protocol": "TCP"}]));
    assert_eq!(ep["metadata"]["labels"], json!({"tier": "front"}));
    let a = &ep["subsets"][0]["addresses"][0];
    assert_eq!(a["nodeName"], "n1");
    assert_eq!(a["targetRef"]["kind"], "Pod");
    assert_eq!(a["targetRef"]["name"], "a");
    assert_eq!(a["targetRef"]["namespace"], "default");
    assert!(a["targetRef"]["uid"].as_str().is_some_and(|u| !u.is_empty()));

    // The slice: labels, owner, address type, ports, conditions, topology.
    wait_for("the slice", T, || (slice_endpoints(&h, "web").len() == 2).then_some(())).await;
    let all = slices_of(&h, "web");
    assert_eq!(all.len(), 1);
    let slice = &all[0];
    let slice_name = slice["metadata"]["name"].as_str().unwrap_or("").to_string();
    assert!(slice_name.starts_with("web-"), "{slice_name}");
    assert_eq!(slice["metadata"]["labels"][MANAGED_BY_LABEL], CONTROLLER_NAME);
    assert_eq!(slice["metadata"]["labels"]["tier"], "front");
    assert_eq!(slice["metadata"]["ownerReferences"], json!([{"apiVersion": "v1", "kind": "Service", "name": "web", "uid": svc["metadata"]["uid"], "controller": true, "blockOwnerDeletion": true}]));
    assert_eq!(slice["addressType"], "IPv4");
    assert_eq!(slice["ports"], json!([{"name": "http", "port": 8080, "protocol": "TCP"}]));
    assert_eq!(slice_endpoints(&h, "web"), vec![("10.0.0.1".into(), true, true, false), ("10.0.0.2".into(), false, false, false)]);
    let e0 = slice["endpoints"].as_array().and_then(|e| e.iter().find(|e| e["addresses"][0] == "10.0.0.1")).cloned().unwrap_or_default();
    assert_eq!(e0["zone"], "zone-a");
    assert_eq!(e0["nodeName"], "n1");
    assert_eq!(e0["targetRef"]["name"], "a");

    // b becomes ready.
    let mut b = h.fake.get(pods, "default/b").expect("b");
    b["status"]["conditions"][0]["status"] = json!("True");
    h.fake.set(pods, b);
    wait_for("b ready", T, || h.fake.get(eps, "default/web").filter(|e| addr_ips(e, "addresses") == ["10.0.0.1", "10.0.0.2"])).await;
    wait_for("b ready in the slice", T, || slice_endpoints(&h, "web").iter().all(|e| e.1).then_some(())).await;

    // a is relabelled away, b deleted: nothing left, the slice kept (updated in place) as a
    // placeholder.
    let mut a = h.fake.get(pods, "default/a").expect("a");
    a["metadata"]["labels"]["app"] = json!("other");
    h.fake.set(pods, a);
    wait_for("a gone", T, || h.fake.get(eps, "default/web").filter(|e| addr_ips(e, "addresses") == ["10.0.0.2"])).await;
    wait_for("a gone from the slice", T, || (slice_endpoints(&h, "web").len() == 1).then_some(())).await;
    h.client.delete(pods, Some("default"), "b", DeleteOptions::default()).await.expect("delete");
    let ep = wait_for("b gone", T, || h.fake.get(eps, "default/web").filter(|e| addr_ips(e, "addresses").is_empty())).await;
    assert!(ep["subsets"].as_array().is_none_or(|s| s.is_empty()));
    wait_for("b gone from the slice", T, || slice_endpoints(&h, "web").is_empty().then_some(())).await;
    let all = slices_of(&h, "web");
    assert_eq!(all.len(), 1);
    assert_eq!(all[0]["metadata"]["name"], slice_name.as_str(), "updated in place, not recreated");

    // A terminating pod leaves the Endpoints but stays in the slice, not ready.
    h.create(pods, Some("default"), pod("c", "web", "10.0.0.3", true, 8080)).await;
    wait_for("c", T, || h.fake.get(eps, "default/web").filter(|e| addr_ips(e, "addresses") == ["10.0.0.3"])).await;
    let mut c = h.fake.get(pods, "default/c").expect("c");
    c["metadata"]["deletionTimestamp"] = json!("2030-01-01T00:00:00Z");
    h.fake.set(pods, c);
    wait_for("c terminating", T, || h.fake.get(eps, "default/web").filter(|e| addr_ips(e, "addresses").is_empty())).await;
    wait_for("c terminating in the slice", T, || (slice_endpoints(&h, "web") == vec![("10.0.0.3".to_string(), false, true, true)]).then_some(())).await;

    // The service goes: so do its Endpoints and slices.
    h.client.delete(res("", "services"), Some("default"), "web", DeleteOptions::default()).await.expect("delete");
    wait_for("Endpoints deleted", T, || h.fake.get(eps, "default/web").is_none().then_some(())).await;
    wait_for("slices deleted", T, || slices_of(&h, "web").is_empty().then_some(())).await;
    assert!(h.fake.objects(slices).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn named_ports_publish_not_ready_and_no_selector() {
    let mut h = Harness::new(Config::default());
    let (pods, eps) = (res("", "pods"), res("", "endpoints"));
    h.create(res("", "services"), Some("default"), service("web", json!({"spec": {"publishNotReadyAddresses": true}}))).await;
    // A service without a selector: its Endpoints belong to the user.
    h.create(res("", "services"), Some("default"), json!({"metadata": {"name": "manual"}, "spec": {"ports": [{"port": 5432}]}})).await;
    let manual = json!({"metadata": {"name": "manual"}, "subsets": [{"addresses": [{"ip": "192.168.1.1"}], "ports": [{"port": 5432}]}]});
    h.create(eps, Some("default"), manual).await;
    // Same port name, different numbers.
    h.create(pods, Some("default"), pod("a", "web", "10.0.0.1", true, 8080)).await;
    h.create(pods, Some("default"), pod("b", "web", "10.0.0.2", false, 9090)).await;
    h.start(endpoints::run);

    let ep = wait_for("two subsets", T, || h.fake.get(eps, "default/web").filter(|e| e["subsets"].as_array().is_some_and(|s| s.len() == 2))).await;
    let by_port: Vec<(i64, Vec<String>)> = ep["subsets"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|s| (s["ports"][0]["port"].as_i64().unwrap_or(0), s["addresses"].as_array().into_iter().flatten().filter_map(|a| a["ip"].as_str().map(String::from)).collect()))
        .collect();
    assert!(by_port.contains(&(8080, vec!["10.0.0.1".into()])), "{by_port:?}");
    assert!(by_port.contains(&(9090, vec!["10.0.0.2".into()])), "not-ready published as ready: {by_port:?}");
    assert!(addr_ips(&ep, "notReadyAddresses").is_empty());

    wait_for("two slices", T, || (slices_of(&h, "web").len() == 2).then_some(())).await;
    let mut ports: Vec<i64> = slices_of(&h, "web").iter().map(|s| s["ports"][0]["port"].as_i64().unwrap_or(0)).collect();
    ports.sort();
    assert_eq!(ports, vec![8080, 9090]);
    assert!(slice_endpoints(&h, "web").iter().all(|e| e.1), "publishNotReadyAddresses: all ready");

    tokio::time::sleep(Duration::from_millis(300)).await;
    let manual = h.fake.get(eps, "default/manual").expect("manual endpoints kept");
    assert_eq!(addr_ips(&manual, "addresses"), ["192.168.1.1"]);
    assert!(slices_of(&h, "manual").is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_writes_when_nothing_changes() {
    let mut h = Harness::new(Config::default());
    let (pods, eps, slices) = (res("", "pods"), res("", "endpoints"), res("discovery.k8s.io", "endpointslices"));
    h.create(res("", "services"), Some("default"), service("web", json!({}))).await;
    h.create(pods, Some("default"), pod("a", "web", "10.0.0.1", true, 8080)).await;
    h.start(endpoints::run);
    wait_for("Endpoints", T, || h.fake.get(eps, "default/web").filter(|e| addr_ips(e, "addresses") == ["10.0.0.1"])).await;
    wait_for("slice", T, || (slice_endpoints(&h, "web").len() == 1).then_some(())).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let ep_rev = h.rev(eps).await;

    // Changes that do not affect the endpoints: a pod annotation, the service's annotations, an
    // unselected pod.
    let mut a = h.fake.get(pods, "default/a").expect("a");
    a["metadata"]["annotations"] = json!({"note": "x"});
    h.fake.set(pods, a);
    let mut svc = h.fake.get(res("", "services"), "default/web").expect("svc");
    svc["metadata"]["annotations"] = json!({"note": "y"});
    h.fake.set(res("", "services"), svc);
    h.create(pods, Some("default"), pod("db", "db", "10.0.0.9", true, 8080)).await;
    // A barrier: a second service whose Endpoints appear after the changes above were seen.
    h.create(res("", "services"), Some("default"), service("web2", json!({}))).await;
    wait_for("web2 Endpoints", T, || h.fake.get(eps, "default/web2")).await;
    tokio::time::sleep(Duration::from_millis(300)).await;

    let writes: Vec<String> = h
        .events_since(eps, ep_rev)
        .await
        .into_iter()
        .chain(h.events_since(slices, ep_rev).await)
        .filter_map(|e| match e {
            WatchEvent::Added(o) | WatchEvent::Modified(o) | WatchEvent::Deleted(o) => Some(o["metadata"]["name"].as_str().unwrap_or("").to_string()),
        })
        .collect();
    assert!(writes.iter().any(|n| n == "web2"), "the watch sees the barrier's writes: {writes:?}");
    let ours: Vec<&String> = writes.iter().filter(|n| *n == "web" || (n.starts_with("web-") && !n.starts_with("web2-"))).collect();
    assert!(ours.is_empty(), "unexpected writes: {ours:?}");
    let ep = h.fake.get(eps, "default/web").expect("ep");
    assert!(rv(&ep) <= ep_rev);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_services_span_slices() {
    let mut h = Harness::new(Config::default());
    let (pods, eps) = (res("", "pods"), res("", "endpoints"));
    h.create(res("", "services"), Some("default"), service("web", json!({}))).await;
    for i in 0..230 {
        h.create(pods, Some("default"), pod(&format!("p{i:03}"), "web", &format!("10.0.{}.{}", i / 200, i % 200 + 1), true, 8080)).await;
    }
    h.start(endpoints::run);
    wait_for("Endpoints", T, || h.fake.get(eps, "default/web").filter(|e| addr_ips(e, "addresses").len() == 230)).await;
    wait_for("slices", T, || (slice_endpoints(&h, "web").len() == 230).then_some(())).await;
    let mut sizes: Vec<usize> = slices_of(&h, "web").iter().map(|s| s["endpoints"].as_array().map_or(0, |e| e.len())).collect();
    sizes.sort();
    assert_eq!(sizes, vec![30, 100, 100]);
    // Removing one pod rewrites one slice; no slice is created or deleted.
    let names = |h: &Harness| {
        let mut n: Vec<String> = slices_of(h, "web").iter().map(|s| s["metadata"]["name"].as_str().unwrap_or("").to_string()).collect();
        n.sort();
        n
    };
    let before = names(&h);
    h.client.delete(pods, Some("default"), "p005", DeleteOptions::default()).await.expect("delete");
    wait_for("229 endpoints", T, || (slice_endpoints(&h, "web").len() == 229).then_some(())).await;
    assert_eq!(names(&h), before);
}
