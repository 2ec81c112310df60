//! Kubernetes defaulting (the `SetDefaults_*` functions of kube-apiserver v1.33) on JSON
//! objects, plus the few create-time mutations that every real cluster applies and that clients
//! rely on seeing: the ServiceAccount, Priority and DefaultTolerationSeconds admission plugins
//! for Pods, a Namespace's `kubernetes` finalizer, a Service's `clusterIPs` and IP families, a
//! Secret's `stringData` folded into `data`, and a Job's generated selector.
//!
//! Defaults only fill fields that are absent (or hold Go's zero value where Kubernetes tests for
//! it), so [`apply_defaults`] is idempotent and safe to run on updates as well as creates.
//! Unexpected shapes are left alone rather than "fixed".

use serde_json::{Map, Value, json};

use crate::registry::ResourceInfo;

type Obj = Map<String, Value>;

/// Applies Kubernetes defaults in place (idempotent).
pub fn apply_defaults(info: &ResourceInfo, obj: &mut Value) {
    let Some(root) = obj.as_object_mut() else { return };
    match (info.group, info.kind) {
        ("", "Pod") => pod(root),
        ("", "ReplicationController") => replication_controller(root),
        ("", "Service") => service(root),
        ("", "Namespace") => namespace(root),
        ("", "Secret") => secret(root),
        ("", "PersistentVolumeClaim") => pvc(root),
        ("", "PersistentVolume") => pv(root),
        ("", "Endpoints") => endpoints(root),
        ("", "Node") => node(root),
        ("", "LimitRange") => limit_range(root),
        ("apps", "Deployment") => deployment(root),
        ("apps", "ReplicaSet") => replica_set(root),
        ("apps", "DaemonSet") => daemon_set(root),
        ("apps", "StatefulSet") => stateful_set(root),
        ("batch", "Job") => job(root),
        ("batch", "CronJob") => cron_job(root),
        ("autoscaling", "HorizontalPodAutoscaler") => hpa(root),
        ("discovery.k8s.io", "EndpointSlice") => endpoint_slice(root),
        ("rbac.authorization.k8s.io", "RoleBinding" | "ClusterRoleBinding") => role_binding(root),
        ("scheduling.k8s.io", "PriorityClass") => set_if_absent(root, "preemptionPolicy", json!("PreemptLowerPriority")),
        _ => {}
    }
}

// ---------------------------------------------------------------------------------------------
// Helpers

fn absent(m: &Obj, k: &str) -> bool {
    m.get(k).is_none_or(Value::is_null)
}

/// Go's zero value for scalars: absent, null, "", 0 or false.
fn zero(m: &Obj, k: &str) -> bool {
    match m.get(k) {
        None | Some(Value::Null) => true,
        Some(Value::String(s)) => s.is_empty(),
        Some(Value::Number(n)) => n.as_f64() == Some(0.0),
        Some(Value::Bool(b)) => !b,
        _ => false,
    }
}

fn set_if_absent(m: &mut Obj, k: &str, v: Value) {
    if absent(m, k) {
        m.insert(k.to_string(), v);
    }
}

fn set_if_zero(m: &mut Obj, k: &str, v: Value) {
    if zero(m, k) {
        m.insert(k.to_string(), v);
    }
}

/// The object member `k`, created when absent; `None` when it holds something else.
fn ensure_obj<'a>(m: &'a mut Obj, k: &str) -> Option<&'a mut Obj> {
    let v = m.entry(k.to_string()).or_insert_with(|| Value::Object(Map::new()));
    if v.is_null() {
        *v = Value::Object(Map::new());
    }
    v.as_object_mut()
}

/// The object member `k` when it exists.
fn child<'a>(m: &'a mut Obj, k: &str) -> Option<&'a mut Obj> {
    m.get_mut(k).and_then(Value::as_object_mut)
}

/// The objects in the array member `k`.
fn items<'a>(m: &'a mut Obj, k: &str) -> impl Iterator<Item = &'a mut Obj> {
    m.get_mut(k).and_then(Value::as_array_mut).into_iter().flatten().filter_map(Value::as_object_mut)
}

fn str_of<'a>(m: &'a Obj, k: &str) -> &'a str {
    m.get(k).and_then(Value::as_str).unwrap_or("")
}

fn meta_str<'a>(root: &'a Obj, k: &str) -> &'a str {
    root.get("metadata").and_then(|m| m.get(k)).and_then(Value::as_str).unwrap_or("")
}

// ---------------------------------------------------------------------------------------------
// Pods and pod templates

/// The pull policy Kubernetes picks for an image: `Always` for `:latest` or an untagged,
/// undigested reference, `IfNotPresent` otherwise (including unparseable references).
pub fn default_pull_policy(image: &str) -> &'static str {
    match image_tag(image) {
        Some(tag) if tag == "latest" => "Always",
        _ => "IfNotPresent",
    }
}

/// The tag `parsers.ParseImageName` reports: the explicit tag, `latest` when there is neither
/// tag nor digest, `""` for digest-only references; `None` for invalid references.
fn image_tag(image: &str) -> Option<String> {
    if image.is_empty() || image.chars().any(char::is_whitespace) {
        return None;
    }
    let (name, digest) = match image.split_once('@') {
        Some((n, d)) => {
            let (algo, hex) = d.split_once(':')?;
            if algo.is_empty() || hex.len() < 32 || !hex.bytes().all(|c| c.is_ascii_hexdigit()) {
                return None;
            }
            (n, true)
        }
        None => (image, false),
    };
    let last_slash = name.rfind('/').map(|i| i + 1).unwrap_or(0);
    let (repo, tag) = match name[last_slash..].rfind(':') {
        Some(i) => (&name[..last_slash + i], Some(&name[last_slash + i + 1..])),
        None => (name, None),
    };
    if let Some(t) = tag {
        let b = t.as_bytes();
        let ok = !b.is_empty()
            && b.len() <= 128
            && (b[0].is_ascii_alphanumeric() || b[0] == b'_')
            && b.iter().all(|c| c.is_ascii_alphanumeric() || b"_.-".contains(c));
        if !ok {
            return None;
        }
    }
    // A first component with '.', ':' or "localhost" (or upper case) is a registry host; the
    // rest of the path must be lower case.
    let mut parts: Vec<&str> = repo.split('/').collect();
    if parts.len() > 1 {
        let first = parts[0];
        if first.contains(['.', ':']) || first == "localhost" || first.chars().any(|c| c.is_ascii_uppercase()) {
            parts.remove(0);
        }
    }
    let component_ok = |c: &str| {
        !c.is_empty()
            && c.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
            && c.as_bytes()[0].is_ascii_alphanumeric()
            && c.as_bytes()[c.len() - 1].is_ascii_alphanumeric()
    };
    if parts.is_empty() || !parts.iter().all(|p| component_ok(p)) {
        return None;
    }
    match (tag, digest) {
        (Some(t), _) => Some(t.to_string()),
        (None, true) => Some(String::new()),
        (None, false) => Some("latest".to_string()),
    }
}

fn pod(root: &mut Obj) {
    let mirror = root
        .get("metadata")
        .and_then(|m| m.get("annotations"))
        .and_then(|a| a.get("kubernetes.io/config.mirror"))
        .is_some();
    let Some(spec) = ensure_obj(root, "spec") else { return };
    pod_spec(spec);
    // SetDefaults_Pod: requests default to limits (pods only, not templates).
    for list in ["containers", "initContainers"] {
        for c in items(spec, list) {
            let limits = c.get("resources").and_then(|r| r.get("limits")).and_then(Value::as_object).cloned();
            if let Some(limits) = limits.filter(|l| !l.is_empty())
                && let Some(res) = ensure_obj(c, "resources")
                && let Some(req) = ensure_obj(res, "requests")
            {
                for (k, v) in limits {
                    req.entry(k).or_insert(v);
                }
            }
        }
    }
    set_if_absent(spec, "enableServiceLinks", json!(true));
    if spec.get("hostNetwork").and_then(Value::as_bool) == Some(true) {
        for list in ["containers", "initContainers"] {
            for c in items(spec, list) {
                for port in items(c, "ports") {
                    if zero(port, "hostPort") {
                        let cp = port.get("containerPort").cloned().unwrap_or(json!(0));
                        port.insert("hostPort".into(), cp);
                    }
                }
            }
        }
    }
    // ServiceAccount admission (mirror pods are exempt). The deprecated `serviceAccount` field
    // is the v1 alias of `serviceAccountName`.
    if !mirror {
        let name = match (str_of(spec, "serviceAccountName"), str_of(spec, "serviceAccount")) {
            ("", "") => "default".to_string(),
            ("", alias) => alias.to_string(),
            (name, _) => name.to_string(),
        };
        spec.insert("serviceAccountName".into(), json!(name));
        spec.insert("serviceAccount".into(), json!(name));
    }
    // Priority admission: without a PriorityClass lookup only the built-in classes resolve.
    let class_priority = match str_of(spec, "priorityClassName") {
        "" => Some(0),
        "system-node-critical" => Some(2_000_001_000),
        "system-cluster-critical" => Some(2_000_000_000),
        _ => None,
    };
    if let Some(p) = class_priority {
        set_if_absent(spec, "priority", json!(p));
        set_if_absent(spec, "preemptionPolicy", json!("PreemptLowerPriority"));
    }
    default_tolerations(spec);
}

/// DefaultTolerationSeconds admission: tolerate not-ready and unreachable nodes for 300s
/// unless a toleration already covers them.
fn default_tolerations(spec: &mut Obj) {
    let covers = |t: &Value, key: &str| {
        let k = t.get("key").and_then(Value::as_str).unwrap_or("");
        let e = t.get("effect").and_then(Value::as_str).unwrap_or("");
        (k == key || k.is_empty()) && (e == "NoExecute" || e.is_empty())
    };
    let existing: Vec<Value> = spec.get("tolerations").and_then(Value::as_array).cloned().unwrap_or_default();
    let mut added = Vec::new();
    for key in ["node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable"] {
        if !existing.iter().any(|t| covers(t, key)) {
            added.push(json!({"key": key, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300}));
        }
    }
    if added.is_empty() {
        return;
    }
    if !spec.get("tolerations").is_some_and(Value::is_array) {
        spec.insert("tolerations".into(), json!([]));
    }
    if let Some(list) = spec.get_mut("tolerations").and_then(Value::as_array_mut) {
        list.extend(added);
    }
}

/// `SetDefaults_PodSpec` and the defaults of everything inside a PodSpec.
fn pod_spec(spec: &mut Obj) {
    set_if_zero(spec, "dnsPolicy", json!("ClusterFirst"));
    set_if_zero(spec, "restartPolicy", json!("Always"));
    set_if_absent(spec, "securityContext", json!({}));
    set_if_absent(spec, "terminationGracePeriodSeconds", json!(30));
    set_if_zero(spec, "schedulerName", json!("default-scheduler"));
    for v in items(spec, "volumes") {
        volume(v);
    }
    for list in ["containers", "initContainers", "ephemeralContainers"] {
        for c in items(spec, list) {
            container(c);
        }
    }
}

/// A PodTemplateSpec inside a workload.
fn template(parent: &mut Obj) {
    if let Some(tpl) = child(parent, "template")
        && let Some(spec) = ensure_obj(tpl, "spec")
    {
        pod_spec(spec);
    }
}

fn container(c: &mut Obj) {
    if zero(c, "imagePullPolicy") {
        let policy = default_pull_policy(str_of(c, "image"));
        c.insert("imagePullPolicy".into(), json!(policy));
    }
    set_if_zero(c, "terminationMessagePath", json!("/dev/termination-log"));
    set_if_zero(c, "terminationMessagePolicy", json!("File"));
    for port in items(c, "ports") {
        set_if_zero(port, "protocol", json!("TCP"));
    }
    for env in items(c, "env") {
        if let Some(field_ref) = child(env, "valueFrom").and_then(|vf| child(vf, "fieldRef")) {
            set_if_zero(field_ref, "apiVersion", json!("v1"));
        }
    }
    for probe in ["livenessProbe", "readinessProbe", "startupProbe"] {
        if let Some(p) = child(c, probe) {
            set_if_zero(p, "timeoutSeconds", json!(1));
            set_if_zero(p, "periodSeconds", json!(10));
            set_if_zero(p, "successThreshold", json!(1));
            set_if_zero(p, "failureThreshold", json!(3));
            handler(p);
        }
    }
    if let Some(lc) = child(c, "lifecycle") {
        for hook in ["postStart", "preStop"] {
            if let Some(h) = child(lc, hook) {
                handler(h);
            }
        }
    }
}

fn handler(h: &mut Obj) {
    if let Some(get) = child(h, "httpGet") {
        set_if_zero(get, "path", json!("/"));
        set_if_zero(get, "scheme", json!("HTTP"));
    }
    if let Some(grpc) = child(h, "grpc") {
        set_if_absent(grpc, "service", json!(""));
    }
}

const VOLUME_SOURCE_KEYS: [&str; 30] = [
    "emptyDir",
    "hostPath",
    "gitRepo",
    "gcePersistentDisk",
    "awsElasticBlockStore",
    "secret",
    "nfs",
    "iscsi",
    "glusterfs",
    "flocker",
    "persistentVolumeClaim",
    "rbd",
    "cinder",
    "cephfs",
    "quobyte",
    "downwardAPI",
    "fc",
    "flexVolume",
    "configMap",
    "azureFile",
    "vsphereVolume",
    "photonPersistentDisk",
    "portworxVolume",
    "azureDisk",
    "storageos",
    "projected",
    "scaleIO",
    "csi",
    "ephemeral",
    "image",
];

fn volume(v: &mut Obj) {
    if VOLUME_SOURCE_KEYS.iter().all(|k| absent(v, k)) {
        v.insert("emptyDir".into(), json!({}));
    }
    for kind in ["secret", "configMap", "downwardAPI", "projected"] {
        if let Some(src) = child(v, kind) {
            set_if_absent(src, "defaultMode", json!(420));
        }
    }
    if let Some(d) = child(v, "downwardAPI") {
        downward_api_items(d);
    }
    if let Some(p) = child(v, "projected") {
        for s in items(p, "sources") {
            if let Some(d) = child(s, "downwardAPI") {
                downward_api_items(d);
            }
            if let Some(t) = child(s, "serviceAccountToken") {
                set_if_absent(t, "expirationSeconds", json!(3600));
            }
        }
    }
    if let Some(hp) = child(v, "hostPath") {
        set_if_absent(hp, "type", json!(""));
    }
    if let Some(iscsi) = child(v, "iscsi") {
        set_if_zero(iscsi, "iscsiInterface", json!("default"));
    }
    if let Some(rbd) = child(v, "rbd") {
        set_if_zero(rbd, "pool", json!("rbd"));
        set_if_zero(rbd, "user", json!("admin"));
        set_if_zero(rbd, "keyring", json!("/etc/ceph/keyring"));
    }
    if let Some(ad) = child(v, "azureDisk") {
        set_if_absent(ad, "cachingMode", json!("ReadWrite"));
        set_if_absent(ad, "fsType", json!("ext4"));
        set_if_absent(ad, "readOnly", json!(false));
        set_if_absent(ad, "kind", json!("Shared"));
    }
    if let Some(sio) = child(v, "scaleIO") {
        set_if_zero(sio, "storageMode", json!("ThinProvisioned"));
        set_if_zero(sio, "fsType", json!("xfs"));
    }
    if let Some(img) = child(v, "image")
        && zero(img, "pullPolicy")
    {
        let policy = default_pull_policy(str_of(img, "reference"));
        img.insert("pullPolicy".into(), json!(policy));
    }
    if let Some(spec) = child(v, "ephemeral").and_then(|e| child(e, "volumeClaimTemplate")).and_then(|t| child(t, "spec")) {
        set_if_absent(spec, "volumeMode", json!("Filesystem"));
    }
}

fn downward_api_items(d: &mut Obj) {
    for item in items(d, "items") {
        if let Some(fr) = child(item, "fieldRef") {
            set_if_zero(fr, "apiVersion", json!("v1"));
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Workloads

fn replication_controller(root: &mut Obj) {
    let labels = root.get("spec").and_then(|s| s.get("template")).and_then(|t| t.get("metadata")).and_then(|m| m.get("labels")).cloned();
    if let Some(labels) = labels.filter(Value::is_object) {
        if let Some(spec) = ensure_obj(root, "spec")
            && spec.get("selector").and_then(Value::as_object).is_none_or(Map::is_empty)
        {
            spec.insert("selector".into(), labels.clone());
        }
        if let Some(meta) = ensure_obj(root, "metadata")
            && meta.get("labels").and_then(Value::as_object).is_none_or(Map::is_empty)
        {
            meta.insert("labels".into(), labels);
        }
    }
    let Some(spec) = ensure_obj(root, "spec") else { return };
    set_if_absent(spec, "replicas", json!(1));
    template(spec);
}

fn deployment(root: &mut Obj) {
    let Some(spec) = ensure_obj(root, "spec") else { return };
    set_if_absent(spec, "replicas", json!(1));
    if let Some(strategy) = ensure_obj(spec, "strategy") {
        set_if_zero(strategy, "type", json!("RollingUpdate"));
        if str_of(strategy, "type") == "RollingUpdate"
            && let Some(ru) = ensure_obj(strategy, "rollingUpdate")
        {
            set_if_absent(ru, "maxUnavailable", json!("25%"));
            set_if_absent(ru, "maxSurge", json!("25%"));
        }
    }
    set_if_absent(spec, "revisionHistoryLimit", json!(10));
    set_if_absent(spec, "progressDeadlineSeconds", json!(600));
    template(spec);
}

fn replica_set(root: &mut Obj) {
    let Some(spec) = ensure_obj(root, "spec") else { return };
    set_if_absent(spec, "replicas", json!(1));
    template(spec);
}

fn daemon_set(root: &mut Obj) {
    let Some(spec) = ensure_obj(root, "spec") else { return };
    if let Some(us) = ensure_obj(spec, "updateStrategy") {
        set_if_zero(us, "type", json!("RollingUpdate"));
        if str_of(us, "type") == "RollingUpdate"
            && let Some(ru) = ensure_obj(us, "rollingUpdate")
        {
            set_if_absent(ru, "maxUnavailable", json!(1));
            set_if_absent(ru, "maxSurge", json!(0));
        }
    }
    set_if_absent(spec, "revisionHistoryLimit", json!(10));
    template(spec);
}

fn stateful_set(root: &mut Obj) {
    let Some(spec) = ensure_obj(root, "spec") else { return };
    set_if_zero(spec, "podManagementPolicy", json!("OrderedReady"));
    if let Some(us) = ensure_obj(spec, "updateStrategy") {
        if zero(us, "type") {
            us.insert("type".into(), json!("RollingUpdate"));
            set_if_absent(us, "rollingUpdate", json!({}));
        }
        if str_of(us, "type") == "RollingUpdate"
            && let Some(ru) = child(us, "rollingUpdate")
        {
            set_if_absent(ru, "partition", json!(0));
        }
    }
    if let Some(policy) = ensure_obj(spec, "persistentVolumeClaimRetentionPolicy") {
        set_if_zero(policy, "whenDeleted", json!("Retain"));
        set_if_zero(policy, "whenScaled", json!("Retain"));
    }
    set_if_absent(spec, "replicas", json!(1));
    set_if_absent(spec, "revisionHistoryLimit", json!(10));
    for claim in items(spec, "volumeClaimTemplates") {
        if let Some(cs) = ensure_obj(claim, "spec") {
            set_if_absent(cs, "volumeMode", json!("Filesystem"));
        }
        if let Some(st) = ensure_obj(claim, "status") {
            set_if_zero(st, "phase", json!("Pending"));
        }
    }
    template(spec);
}

/// A Job without labels takes its pod template's labels.
fn job_labels_from_template(root: &mut Obj) {
    let template_labels = root.get("spec").and_then(|s| s.get("template")).and_then(|t| t.get("metadata")).and_then(|m| m.get("labels")).cloned();
    if let Some(labels) = template_labels.filter(|l| l.as_object().is_some_and(|m| !m.is_empty()))
        && let Some(meta) = ensure_obj(root, "metadata")
        && meta.get("labels").and_then(Value::as_object).is_none_or(Map::is_empty)
    {
        meta.insert("labels".into(), labels);
    }
}

fn job(root: &mut Obj) {
    job_labels_from_template(root);
    let name = meta_str(root, "name").to_string();
    let uid = meta_str(root, "uid").to_string();
    let Some(spec) = ensure_obj(root, "spec") else { return };
    if absent(spec, "completions") && absent(spec, "parallelism") {
        spec.insert("completions".into(), json!(1));
        spec.insert("parallelism".into(), json!(1));
    }
    set_if_absent(spec, "parallelism", json!(1));
    let backoff = if absent(spec, "backoffLimitPerIndex") { 6 } else { i32::MAX as i64 };
    set_if_absent(spec, "backoffLimit", json!(backoff));
    set_if_absent(spec, "completionMode", json!("NonIndexed"));
    set_if_absent(spec, "suspend", json!(false));
    let has_failure_policy = !absent(spec, "podFailurePolicy");
    if let Some(pfp) = child(spec, "podFailurePolicy") {
        for rule in items(pfp, "rules") {
            for pattern in items(rule, "onPodConditions") {
                set_if_zero(pattern, "status", json!("True"));
            }
        }
    }
    set_if_absent(spec, "podReplacementPolicy", json!(if has_failure_policy { "Failed" } else { "TerminatingOrFailed" }));
    template(spec);
    // The Job registry generates the selector from the uid, unless the user selects manually.
    let manual = spec.get("manualSelector").and_then(Value::as_bool) == Some(true);
    if !manual && !uid.is_empty() {
        generate_job_selector(spec, &name, &uid);
    }
    // Kubernetes defaults again when it reads the stored Job back, so a Job created without
    // labels ends up with the generated ones; doing it now keeps this function idempotent.
    job_labels_from_template(root);
}

fn generate_job_selector(spec: &mut Obj, name: &str, uid: &str) {
    if let Some(tpl) = ensure_obj(spec, "template")
        && let Some(meta) = ensure_obj(tpl, "metadata")
        && let Some(labels) = ensure_obj(meta, "labels")
    {
        for (key, value) in
            [("job-name", name), ("batch.kubernetes.io/job-name", name), ("controller-uid", uid), ("batch.kubernetes.io/controller-uid", uid)]
        {
            labels.entry(key).or_insert_with(|| json!(value));
        }
    }
    if let Some(sel) = ensure_obj(spec, "selector")
        && let Some(ml) = ensure_obj(sel, "matchLabels")
    {
        ml.entry("batch.kubernetes.io/controller-uid").or_insert_with(|| json!(uid));
    }
}

fn cron_job(root: &mut Obj) {
    let Some(spec) = ensure_obj(root, "spec") else { return };
    set_if_zero(spec, "concurrencyPolicy", json!("Allow"));
    set_if_absent(spec, "suspend", json!(false));
    set_if_absent(spec, "successfulJobsHistoryLimit", json!(3));
    set_if_absent(spec, "failedJobsHistoryLimit", json!(1));
    // Only the pod template is defaulted; Job spec defaults apply when the Job is created.
    if let Some(js) = child(spec, "jobTemplate").and_then(|jt| child(jt, "spec")) {
        template(js);
    }
}

fn hpa(root: &mut Obj) {
    let Some(spec) = ensure_obj(root, "spec") else { return };
    set_if_absent(spec, "minReplicas", json!(1));
    if spec.get("metrics").and_then(Value::as_array).is_none_or(Vec::is_empty) {
        spec.insert(
            "metrics".into(),
            json!([{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 80}}}]),
        );
    }
    if let Some(b) = child(spec, "behavior") {
        scaling_rules(b, "scaleUp", 0, json!([{"type": "Pods", "value": 4, "periodSeconds": 15}, {"type": "Percent", "value": 100, "periodSeconds": 15}]));
        scaling_rules(b, "scaleDown", 300, json!([{"type": "Percent", "value": 100, "periodSeconds": 15}]));
    }
}

fn scaling_rules(b: &mut Obj, dir: &str, window: i64, policies: Value) {
    if let Some(r) = ensure_obj(b, dir) {
        set_if_absent(r, "stabilizationWindowSeconds", json!(window));
        set_if_absent(r, "selectPolicy", json!("Max"));
        set_if_absent(r, "policies", policies);
    }
}

// ---------------------------------------------------------------------------------------------
// Other core kinds

fn service(root: &mut Obj) {
    let Some(spec) = ensure_obj(root, "spec") else { return };
    set_if_zero(spec, "sessionAffinity", json!("None"));
    match str_of(spec, "sessionAffinity") {
        "None" => {
            spec.remove("sessionAffinityConfig");
        }
        "ClientIP" => {
            let has_timeout = spec
                .get("sessionAffinityConfig")
                .and_then(|c| c.get("clientIP"))
                .and_then(|c| c.get("timeoutSeconds"))
                .is_some_and(|t| !t.is_null());
            if !has_timeout {
                spec.insert("sessionAffinityConfig".into(), json!({"clientIP": {"timeoutSeconds": 10800}}));
            }
        }
        _ => {}
    }
    set_if_zero(spec, "type", json!("ClusterIP"));
    for port in items(spec, "ports") {
        set_if_zero(port, "protocol", json!("TCP"));
        let target_unset = match port.get("targetPort") {
            None | Some(Value::Null) => true,
            Some(Value::String(s)) => s.is_empty(),
            Some(Value::Number(n)) => n.as_i64() == Some(0),
            _ => false,
        };
        if target_unset {
            let p = port.get("port").cloned().unwrap_or(json!(0));
            port.insert("targetPort".into(), p);
        }
    }
    let t = str_of(spec, "type").to_string();
    let has_external_ips = spec.get("externalIPs").and_then(Value::as_array).is_some_and(|a| !a.is_empty());
    if (t == "LoadBalancer" || t == "NodePort" || (t == "ClusterIP" && has_external_ips)) && zero(spec, "externalTrafficPolicy") {
        spec.insert("externalTrafficPolicy".into(), json!("Cluster"));
    }
    if matches!(t.as_str(), "NodePort" | "LoadBalancer" | "ClusterIP") {
        set_if_absent(spec, "internalTrafficPolicy", json!("Cluster"));
    }
    if t == "LoadBalancer" {
        set_if_absent(spec, "allocateLoadBalancerNodePorts", json!(true));
    }
    if t == "ExternalName" {
        return;
    }
    // The service registry normalises clusterIPs from clusterIP (and back), then picks the IP
    // families; this cluster is single-stack IPv4 unless an IPv6 address was requested.
    let cip = str_of(spec, "clusterIP").to_string();
    let ips: Vec<String> = spec
        .get("clusterIPs")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(|v| v.as_str().map(str::to_string)).collect())
        .unwrap_or_default();
    if !cip.is_empty() && ips.is_empty() {
        spec.insert("clusterIPs".into(), json!([cip]));
    } else if cip.is_empty() && !ips.is_empty() {
        spec.insert("clusterIP".into(), json!(ips[0]));
    }
    let headless = str_of(spec, "clusterIP") == "None";
    let no_selector = spec.get("selector").and_then(Value::as_object).is_none_or(Map::is_empty);
    if headless && no_selector {
        set_if_absent(spec, "ipFamilyPolicy", json!("RequireDualStack"));
        if spec.get("ipFamilies").and_then(Value::as_array).is_none_or(Vec::is_empty) {
            let fams = if str_of(spec, "ipFamilyPolicy") == "SingleStack" { json!(["IPv4"]) } else { json!(["IPv4", "IPv6"]) };
            spec.insert("ipFamilies".into(), fams);
        }
        return;
    }
    set_if_absent(spec, "ipFamilyPolicy", json!("SingleStack"));
    if spec.get("ipFamilies").and_then(Value::as_array).is_none_or(Vec::is_empty) {
        let families: Vec<&str> = spec
            .get("clusterIPs")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_str).filter(|ip| *ip != "None").map(|ip| if ip.contains(':') { "IPv6" } else { "IPv4" }).collect())
            .unwrap_or_default();
        let families = if families.is_empty() { vec!["IPv4"] } else { families };
        spec.insert("ipFamilies".into(), json!(families));
    }
}

fn namespace(root: &mut Obj) {
    let name = meta_str(root, "name").to_string();
    let deleting = root.get("metadata").and_then(|m| m.get("deletionTimestamp")).is_some_and(|v| !v.is_null());
    if !name.is_empty()
        && let Some(meta) = ensure_obj(root, "metadata")
        && let Some(labels) = ensure_obj(meta, "labels")
    {
        labels.insert("kubernetes.io/metadata.name".into(), json!(name));
    }
    // The `kubernetes` finalizer is added at creation and removed by the namespace controller
    // through /finalize once deletion started, so it is never re-added to a namespace being
    // deleted.
    if !deleting && let Some(spec) = ensure_obj(root, "spec") {
        let has = spec.get("finalizers").and_then(Value::as_array).is_some_and(|f| f.iter().any(|x| x == "kubernetes"));
        if !has {
            if !spec.get("finalizers").is_some_and(Value::is_array) {
                spec.insert("finalizers".into(), json!([]));
            }
            if let Some(f) = spec.get_mut("finalizers").and_then(Value::as_array_mut) {
                f.push(json!("kubernetes"));
            }
        }
    }
    if let Some(status) = ensure_obj(root, "status") {
        set_if_zero(status, "phase", json!("Active"));
    }
}

fn base64_encode(data: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (b[0] as u32) << 16 | (b[1] as u32) << 8 | b[2] as u32;
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(T[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn secret(root: &mut Obj) {
    set_if_zero(root, "type", json!("Opaque"));
    // v1 → internal conversion folds write-only stringData into data (stringData wins).
    if let Some(Value::Object(string_data)) = root.remove("stringData")
        && let Some(data) = ensure_obj(root, "data")
    {
        for (k, v) in string_data {
            data.insert(k, json!(base64_encode(v.as_str().unwrap_or("").as_bytes())));
        }
    }
}

fn pvc(root: &mut Obj) {
    if let Some(spec) = ensure_obj(root, "spec") {
        set_if_absent(spec, "volumeMode", json!("Filesystem"));
    }
    if let Some(status) = ensure_obj(root, "status") {
        set_if_zero(status, "phase", json!("Pending"));
    }
}

fn pv(root: &mut Obj) {
    if let Some(spec) = ensure_obj(root, "spec") {
        set_if_zero(spec, "persistentVolumeReclaimPolicy", json!("Retain"));
        set_if_absent(spec, "volumeMode", json!("Filesystem"));
    }
    if let Some(status) = ensure_obj(root, "status") {
        set_if_zero(status, "phase", json!("Pending"));
    }
}

fn endpoints(root: &mut Obj) {
    for subset in items(root, "subsets") {
        for port in items(subset, "ports") {
            set_if_zero(port, "protocol", json!("TCP"));
        }
    }
}

fn endpoint_slice(root: &mut Obj) {
    for port in items(root, "ports") {
        set_if_absent(port, "name", json!(""));
        set_if_absent(port, "protocol", json!("TCP"));
    }
}

fn node(root: &mut Obj) {
    if let Some(status) = child(root, "status")
        && absent(status, "allocatable")
        && let Some(cap) = status.get("capacity").cloned()
    {
        status.insert("allocatable".into(), cap);
    }
}

fn limit_range(root: &mut Obj) {
    let Some(spec) = child(root, "spec") else { return };
    for limit in items(spec, "limits") {
        if str_of(limit, "type") != "Container" {
            continue;
        }
        let get = |l: &Obj, k: &str| l.get(k).and_then(Value::as_object).cloned().unwrap_or_default();
        let (max, min) = (get(limit, "max"), get(limit, "min"));
        let mut default = get(limit, "default");
        for (k, v) in max {
            default.entry(k).or_insert(v);
        }
        let mut default_request = get(limit, "defaultRequest");
        for (k, v) in default.iter().chain(min.iter()) {
            default_request.entry(k.clone()).or_insert(v.clone());
        }
        // Empty maps are omitted on the wire.
        if !default.is_empty() {
            limit.insert("default".into(), Value::Object(default));
        }
        if !default_request.is_empty() {
            limit.insert("defaultRequest".into(), Value::Object(default_request));
        }
    }
}

fn role_binding(root: &mut Obj) {
    if let Some(rr) = child(root, "roleRef") {
        set_if_zero(rr, "apiGroup", json!("rbac.authorization.k8s.io"));
    }
    for s in items(root, "subjects") {
        if zero(s, "apiGroup") {
            match str_of(s, "kind") {
                "User" | "Group" => {
                    s.insert("apiGroup".into(), json!("rbac.authorization.k8s.io"));
                }
                "ServiceAccount" => {
                    s.insert("apiGroup".into(), json!(""));
                }
                _ => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pull_policy_follows_the_tag() {
        for (image, policy) in [
            ("nginx", "Always"),
            ("nginx:latest", "Always"),
            ("nginx:1.25", "IfNotPresent"),
            ("registry.k8s.io/pause:3.9", "IfNotPresent"),
            ("localhost:5000/app", "Always"),
            ("localhost:5000/app:v1", "IfNotPresent"),
            ("nginx@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", "IfNotPresent"),
            ("nginx:latest@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", "Always"),
            ("Nginx", "IfNotPresent"),
            ("", "IfNotPresent"),
        ] {
            assert_eq!(default_pull_policy(image), policy, "{image}");
        }
    }

    #[test]
    fn base64() {
        assert_eq!(base64_encode(b""), "");
        assert_eq!(base64_encode(b"f"), "Zg==");
        assert_eq!(base64_encode(b"fo"), "Zm8=");
        assert_eq!(base64_encode(b"foo"), "Zm9v");
        assert_eq!(base64_encode(b"hello world"), "aGVsbG8gd29ybGQ=");
    }
}
