//! From a PodSpec container to the runtime's `ContainerSpec` parts: argv (image entrypoint/cmd
//! with the container's command/args and `$(VAR)` expansion), the environment (image env,
//! envFrom, env with configMapKeyRef / secretKeyRef / fieldRef / resourceFieldRef), the user
//! (securityContext or the image's USER resolved against the rootfs), capabilities and
//! resources. Pure functions: the worker fetches the ConfigMaps and Secrets first.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use apimachinery::validation::Quantity;
use runtime::image::ImageConfig;
use runtime::spec::{DEFAULT_CAPABILITIES, DEFAULT_PATH, Resources};
use serde_json::Value;

use super::expand::expand;

/// The ConfigMaps and Secrets of the pod's namespace that its spec refers to, by name (absent
/// = does not exist). Secret values are decoded bytes.
#[derive(Clone, Debug, Default)]
pub struct Sources {
    pub config_maps: BTreeMap<String, BTreeMap<String, Vec<u8>>>,
    pub secrets: BTreeMap<String, BTreeMap<String, Vec<u8>>>,
}

impl Sources {
    /// A ConfigMap's `data` and `binaryData` (base64) as bytes.
    pub fn config_map_data(cm: &Value) -> BTreeMap<String, Vec<u8>> {
        let mut out = BTreeMap::new();
        if let Some(d) = cm["data"].as_object() {
            for (k, v) in d {
                out.insert(k.clone(), v.as_str().unwrap_or("").as_bytes().to_vec());
            }
        }
        if let Some(d) = cm["binaryData"].as_object() {
            for (k, v) in d {
                if let Some(b) = v.as_str().and_then(b64) {
                    out.insert(k.clone(), b);
                }
            }
        }
        out
    }

    /// A Secret's `data` (base64) and `stringData` as bytes.
    pub fn secret_data(s: &Value) -> BTreeMap<String, Vec<u8>> {
        let mut out = BTreeMap::new();
        if let Some(d) = s["data"].as_object() {
            for (k, v) in d {
                if let Some(b) = v.as_str().and_then(b64) {
                    out.insert(k.clone(), b);
                }
            }
        }
        if let Some(d) = s["stringData"].as_object() {
            for (k, v) in d {
                out.insert(k.clone(), v.as_str().unwrap_or("").as_bytes().to_vec());
            }
        }
        out
    }
}

fn b64(s: &str) -> Option<Vec<u8>> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.decode(s).ok()
}

/// Names of the ConfigMaps and Secrets the pod refers to (env, envFrom, volumes, projected
/// volumes, imagePullSecrets).
pub fn referenced(pod: &Value) -> (BTreeSet<String>, BTreeSet<String>) {
    let (mut cms, mut secrets) = (BTreeSet::new(), BTreeSet::new());
    let spec = &pod["spec"];
    for list in ["initContainers", "containers"] {
        for c in spec[list].as_array().into_iter().flatten() {
            for e in c["env"].as_array().into_iter().flatten() {
                if let Some(n) = e.pointer("/valueFrom/configMapKeyRef/name").and_then(Value::as_str) {
                    cms.insert(n.to_string());
                }
                if let Some(n) = e.pointer("/valueFrom/secretKeyRef/name").and_then(Value::as_str) {
                    secrets.insert(n.to_string());
                }
            }
            for e in c["envFrom"].as_array().into_iter().flatten() {
                if let Some(n) = e.pointer("/configMapRef/name").and_then(Value::as_str) {
                    cms.insert(n.to_string());
                }
                if let Some(n) = e.pointer("/secretRef/name").and_then(Value::as_str) {
                    secrets.insert(n.to_string());
                }
            }
        }
    }
    for v in spec["volumes"].as_array().into_iter().flatten() {
        if let Some(n) = v.pointer("/configMap/name").and_then(Value::as_str) {
            cms.insert(n.to_string());
        }
        if let Some(n) = v.pointer("/secret/secretName").and_then(Value::as_str) {
            secrets.insert(n.to_string());
        }
        for s in v.pointer("/projected/sources").and_then(Value::as_array).into_iter().flatten() {
            if let Some(n) = s.pointer("/configMap/name").and_then(Value::as_str) {
                cms.insert(n.to_string());
            }
            if let Some(n) = s.pointer("/secret/name").and_then(Value::as_str) {
                secrets.insert(n.to_string());
            }
        }
    }
    for s in spec["imagePullSecrets"].as_array().into_iter().flatten() {
        if let Some(n) = s["name"].as_str() {
            secrets.insert(n.to_string());
        }
    }
    (cms, secrets)
}

/// What the downward API can refer to besides the pod object itself.
#[derive(Clone, Debug, Default)]
pub struct PodContext {
    pub pod_ip: String,
    pub pod_ips: Vec<String>,
    pub host_ip: String,
    /// Node allocatable, for resourceFieldRef of unset limits: cpu millicores, memory bytes,
    /// ephemeral-storage bytes.
    pub node_cpu_millis: i64,
    pub node_memory: i64,
    pub node_ephemeral: i64,
}

/// The value of a downward-API `fieldRef.fieldPath` for this pod.
pub fn field_value(pod: &Value, path: &str, ctx: &PodContext) -> Result<String, String> {
    let meta = &pod["metadata"];
    let s = |v: &Value| v.as_str().unwrap_or("").to_string();
    let indexed = |prefix: &str| -> Option<String> {
        let rest = path.strip_prefix(prefix)?.strip_prefix('[')?.strip_suffix(']')?;
        Some(rest.trim_matches(|c| c == '\'' || c == '"').to_string())
    };
    if let Some(k) = indexed("metadata.labels") {
        return Ok(s(&meta["labels"][k.as_str()]));
    }
    if let Some(k) = indexed("metadata.annotations") {
        return Ok(s(&meta["annotations"][k.as_str()]));
    }
    Ok(match path {
        "metadata.name" => s(&meta["name"]),
        "metadata.namespace" => s(&meta["namespace"]),
        "metadata.uid" => s(&meta["uid"]),
        "metadata.labels" => kv_lines(&meta["labels"]),
        "metadata.annotations" => kv_lines(&meta["annotations"]),
        "spec.nodeName" => s(&pod["spec"]["nodeName"]),
        "spec.serviceAccountName" => s(&pod["spec"]["serviceAccountName"]),
        "status.hostIP" => ctx.host_ip.clone(),
        "status.hostIPs" => ctx.host_ip.clone(),
        "status.podIP" => ctx.pod_ip.clone(),
        "status.podIPs" => ctx.pod_ips.join(","),
        other => return Err(format!("unsupported fieldRef fieldPath {other:?}")),
    })
}

/// `key="value"` lines, sorted by key: the downward API's format for labels and annotations.
pub fn kv_lines(map: &Value) -> String {
    let mut lines: Vec<String> = map
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, v)| format!("{k}={}", serde_json::to_string(v.as_str().unwrap_or("")).expect("string")))
        .collect();
    lines.sort();
    lines.join("\n")
}

fn quantity(v: &Value) -> Option<Quantity> {
    match v {
        Value::String(s) => Quantity::parse(s).ok(),
        Value::Number(n) => Quantity::parse(&n.to_string()).ok(),
        _ => None,
    }
}

/// Millicores of a cpu quantity (rounded up).
pub fn cpu_millis(v: &Value) -> Option<i64> {
    quantity(v).map(|q| (q.as_f64() * 1000.0).ceil() as i64)
}

/// Whole units of a quantity (bytes, counts; rounded up).
pub fn units(v: &Value) -> Option<i64> {
    quantity(v).map(|q| q.as_f64().ceil() as i64)
}

/// The value of a `resourceFieldRef` for the container named `container`.
pub fn resource_field_value(pod: &Value, default_container: &str, r: &Value, ctx: &PodContext) -> Result<String, String> {
    let cname = r["containerName"].as_str().filter(|s| !s.is_empty()).unwrap_or(default_container);
    let c = all_containers(pod)
        .find(|c| c["name"].as_str() == Some(cname))
        .ok_or_else(|| format!("resourceFieldRef: no container named {cname:?}"))?;
    let resource = r["resource"].as_str().unwrap_or("");
    let (section, name) = resource.split_once('.').ok_or_else(|| format!("unsupported resourceFieldRef resource {resource:?}"))?;
    let divisor = r.get("divisor").and_then(quantity).map(|q| q.as_f64()).filter(|d| *d > 0.0).unwrap_or(1.0);
    let set = &c["resources"][section][name];
    let amount = if set.is_null() {
        // Unset limits (and requests) report the node's allocatable, like kubelet.
        match name {
            "cpu" => ctx.node_cpu_millis as f64 / 1000.0,
            "memory" => ctx.node_memory as f64,
            "ephemeral-storage" => ctx.node_ephemeral as f64,
            _ => return Err(format!("unsupported resourceFieldRef resource {resource:?}")),
        }
    } else {
        quantity(set).map(|q| q.as_f64()).ok_or_else(|| format!("resourceFieldRef {resource}: not a quantity"))?
    };
    Ok(format!("{}", (amount / divisor).ceil().max(if name == "cpu" { 1.0 } else { 0.0 }) as i64))
}

fn all_containers(pod: &Value) -> impl Iterator<Item = &Value> {
    let spec = &pod["spec"];
    spec["initContainers"].as_array().into_iter().flatten().chain(spec["containers"].as_array().into_iter().flatten())
}

/// Why a container cannot be created yet (kubelet's CreateContainerConfigError).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError(pub String);

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The container's environment, in order: the image's env, then envFrom, then env (later
/// entries win; `$(VAR)` in env values refers to the variables defined before it).
pub fn environment(pod: &Value, container: &Value, image: &ImageConfig, sources: &Sources, ctx: &PodContext) -> Result<Vec<String>, ConfigError> {
    let ns = pod["metadata"]["namespace"].as_str().unwrap_or("default");
    let cname = container["name"].as_str().unwrap_or("");
    let mut vars: Vec<(String, String)> = Vec::new();
    fn set(vars: &mut Vec<(String, String)>, k: String, v: String) {
        if let Some(e) = vars.iter_mut().find(|(n, _)| *n == k) {
            e.1 = v;
        } else {
            vars.push((k, v));
        }
    }
    for e in &image.env {
        let (k, v) = e.split_once('=').unwrap_or((e.as_str(), ""));
        set(&mut vars, k.to_string(), v.to_string());
    }
    if !vars.iter().any(|(k, _)| k == "PATH") {
        let (k, v) = DEFAULT_PATH.split_once('=').expect("PATH=");
        set(&mut vars, k.to_string(), v.to_string());
    }
    for from in container["envFrom"].as_array().into_iter().flatten() {
        let prefix = from["prefix"].as_str().unwrap_or("");
        let (kind, name, optional, data) = if let Some(r) = from.get("configMapRef") {
            let n = r["name"].as_str().unwrap_or("");
            ("ConfigMap", n, r["optional"].as_bool().unwrap_or(false), sources.config_maps.get(n))
        } else if let Some(r) = from.get("secretRef") {
            let n = r["name"].as_str().unwrap_or("");
            ("Secret", n, r["optional"].as_bool().unwrap_or(false), sources.secrets.get(n))
        } else {
            continue;
        };
        let Some(data) = data else {
            if optional {
                continue;
            }
            return Err(ConfigError(format!("{kind} {ns:?}/{name:?} not found")));
        };
        for (k, v) in data {
            set(&mut vars, format!("{prefix}{k}"), String::from_utf8_lossy(v).into_owned());
        }
    }
    for e in container["env"].as_array().into_iter().flatten() {
        let Some(name) = e["name"].as_str() else { continue };
        let value = if let Some(vf) = e.get("valueFrom") {
            if let Some(r) = vf.get("configMapKeyRef").or_else(|| vf.get("secretKeyRef")) {
                let secret = vf.get("secretKeyRef").is_some();
                let (kind, map) = if secret { ("Secret", &sources.secrets) } else { ("ConfigMap", &sources.config_maps) };
                let obj = r["name"].as_str().unwrap_or("");
                let key = r["key"].as_str().unwrap_or("");
                let optional = r["optional"].as_bool().unwrap_or(false);
                match map.get(obj) {
                    None if optional => continue,
                    None => return Err(ConfigError(format!("{kind} {ns:?}/{obj:?} not found"))),
                    Some(data) => match data.get(key) {
                        Some(v) => String::from_utf8_lossy(v).into_owned(),
                        None if optional => continue,
                        None => return Err(ConfigError(format!("couldn't find key {key} in {kind} {ns}/{obj}"))),
                    },
                }
            } else if let Some(f) = vf.get("fieldRef") {
                field_value(pod, f["fieldPath"].as_str().unwrap_or(""), ctx).map_err(ConfigError)?
            } else if let Some(r) = vf.get("resourceFieldRef") {
                resource_field_value(pod, cname, r, ctx).map_err(ConfigError)?
            } else {
                return Err(ConfigError(format!("env {name}: unsupported valueFrom")));
            }
        } else {
            let raw = e["value"].as_str().unwrap_or("");
            let lookup = |n: &str| vars.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone());
            expand(raw, &lookup)
        };
        set(&mut vars, name.to_string(), value);
    }
    Ok(vars.into_iter().map(|(k, v)| format!("{k}={v}")).collect())
}

/// argv: `command` replaces the image's entrypoint (and drops its cmd), `args` replaces the
/// cmd; `$(VAR)` expands against the container's environment.
pub fn argv(container: &Value, image: &ImageConfig, env: &[String]) -> Result<Vec<String>, ConfigError> {
    let strings = |v: &Value| -> Option<Vec<String>> { v.as_array().map(|a| a.iter().map(|s| s.as_str().unwrap_or("").to_string()).collect()) };
    let command = strings(&container["command"]).filter(|c| !c.is_empty());
    let args = strings(&container["args"]).filter(|a| !a.is_empty());
    let lookup = |n: &str| env.iter().find_map(|e| e.split_once('=').filter(|(k, _)| *k == n).map(|(_, v)| v.to_string()));
    let out: Vec<String> = match (command, args) {
        (Some(c), Some(a)) => c.into_iter().chain(a.iter().cloned()).map(|s| expand(&s, &lookup)).collect(),
        (Some(c), None) => c.into_iter().map(|s| expand(&s, &lookup)).collect(),
        (None, Some(a)) => image.entrypoint.iter().cloned().chain(a.into_iter().map(|s| expand(&s, &lookup))).collect(),
        (None, None) => image.entrypoint.iter().chain(image.cmd.iter()).cloned().collect(),
    };
    if out.is_empty() || out[0].is_empty() {
        return Err(ConfigError("no command specified: the image has no entrypoint or cmd and the container sets no command".into()));
    }
    Ok(out)
}

/// cgroup settings from the container's resources (requests default to limits when only
/// limits are set, as the API server does).
pub fn resources(container: &Value) -> Resources {
    let r = &container["resources"];
    let limit_cpu = cpu_millis(&r["limits"]["cpu"]);
    let request_cpu = cpu_millis(&r["requests"]["cpu"]).or(limit_cpu);
    Resources {
        // kubelet: shares = millis * 1024 / 1000, at least 2 (BestEffort gets 2).
        cpu_shares: Some(request_cpu.map(|m| (m * 1024 / 1000).max(2) as u64).unwrap_or(2)),
        cpu_quota: limit_cpu.map(|m| (m * 100_000 / 1000).max(1000)),
        cpu_period: limit_cpu.map(|_| 100_000),
        memory_limit: units(&r["limits"]["memory"]).filter(|m| *m > 0),
        pids_limit: None,
    }
}

/// A capability name as the runtime spells it (`NET_ADMIN` → `CAP_NET_ADMIN`).
fn cap_name(c: &str) -> String {
    let c = c.to_ascii_uppercase();
    if c.starts_with("CAP_") { c } else { format!("CAP_{c}") }
}

/// The effective securityContext field: the container's, else the pod's.
pub fn security<'a>(pod: &'a Value, container: &'a Value, field: &str) -> &'a Value {
    let c = &container["securityContext"][field];
    if !c.is_null() { c } else { &pod["spec"]["securityContext"][field] }
}

/// Capabilities from `securityContext.capabilities` (None = the runtime default set).
pub fn capabilities(container: &Value) -> Option<Vec<String>> {
    let caps = &container["securityContext"]["capabilities"];
    let add: Vec<String> = caps["add"].as_array().into_iter().flatten().filter_map(Value::as_str).map(cap_name).collect();
    let drop: Vec<String> = caps["drop"].as_array().into_iter().flatten().filter_map(Value::as_str).map(cap_name).collect();
    if add.is_empty() && drop.is_empty() {
        return None;
    }
    let mut set: Vec<String> = if drop.iter().any(|d| d == "CAP_ALL") {
        Vec::new()
    } else {
        DEFAULT_CAPABILITIES.iter().map(|s| s.to_string()).filter(|c| !drop.contains(c)).collect()
    };
    if add.iter().any(|a| a == "CAP_ALL") {
        set = runtime::spec::ALL_CAPABILITIES.iter().map(|s| s.to_string()).collect();
    }
    for a in add {
        if a != "CAP_ALL" && !set.contains(&a) {
            set.push(a);
        }
    }
    Some(set)
}

/// uid, gid and supplementary groups: runAsUser / runAsGroup (container over pod), else the
/// image's USER (numeric, or a name looked up in the rootfs's /etc/passwd and /etc/group);
/// supplementalGroups and fsGroup are added.
pub fn user(pod: &Value, container: &Value, image_user: &str, rootfs: &Path) -> Result<(u32, u32, Vec<u32>), ConfigError> {
    let (img_u, img_g) = match image_user.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (image_user, None),
    };
    let passwd = std::fs::read_to_string(rootfs.join("etc/passwd")).unwrap_or_default();
    let groups = std::fs::read_to_string(rootfs.join("etc/group")).unwrap_or_default();
    let lookup_user = |name: &str| -> Option<(u32, u32)> {
        passwd.lines().find_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            (f.len() >= 4 && f[0] == name).then(|| Some((f[2].parse().ok()?, f[3].parse().ok()?))).flatten()
        })
    };
    let lookup_group = |name: &str| -> Option<u32> {
        groups.lines().find_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            (f.len() >= 3 && f[0] == name).then(|| f[2].parse().ok()).flatten()
        })
    };
    let (mut uid, mut gid) = (0u32, 0u32);
    if !img_u.is_empty() {
        if let Ok(n) = img_u.parse::<u32>() {
            uid = n;
            gid = passwd
                .lines()
                .find_map(|l| {
                    let f: Vec<&str> = l.split(':').collect();
                    (f.len() >= 4 && f[2] == img_u).then(|| f[3].parse().ok()).flatten()
                })
                .unwrap_or(0);
        } else {
            let (u, g) = lookup_user(img_u).ok_or_else(|| ConfigError(format!("unable to find user {img_u}: no matching entries in passwd file")))?;
            uid = u;
            gid = g;
        }
    }
    if let Some(g) = img_g.filter(|g| !g.is_empty()) {
        gid = match g.parse::<u32>() {
            Ok(n) => n,
            Err(_) => lookup_group(g).ok_or_else(|| ConfigError(format!("unable to find group {g}: no matching entries in group file")))?,
        };
    }
    if let Some(u) = security(pod, container, "runAsUser").as_u64() {
        uid = u as u32;
        if img_g.is_none() {
            gid = 0;
        }
    }
    if let Some(g) = security(pod, container, "runAsGroup").as_u64() {
        gid = g as u32;
    }
    if security(pod, container, "runAsNonRoot").as_bool() == Some(true) && uid == 0 {
        return Err(ConfigError("container has runAsNonRoot and image will run as root".into()));
    }
    let psc = &pod["spec"]["securityContext"];
    let mut extra: Vec<u32> = psc["supplementalGroups"].as_array().into_iter().flatten().filter_map(Value::as_u64).map(|g| g as u32).collect();
    if let Some(fs) = psc["fsGroup"].as_u64() {
        extra.push(fs as u32);
    }
    extra.sort();
    extra.dedup();
    Ok((uid, gid, extra))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod() -> Value {
        json!({
            "metadata": {"name": "web", "namespace": "prod", "uid": "u-1", "labels": {"app": "web", "tier": "fe"}, "annotations": {"a": "1"}},
            "spec": {
                "nodeName": "n1", "serviceAccountName": "default",
                "containers": [{
                    "name": "c",
                    "resources": {"limits": {"cpu": "500m", "memory": "64Mi"}, "requests": {"cpu": "250m"}},
                }],
            },
        })
    }

    fn ctx() -> PodContext {
        PodContext { pod_ip: "10.42.0.5".into(), pod_ips: vec!["10.42.0.5".into()], host_ip: "192.0.2.1".into(), node_cpu_millis: 2000, node_memory: 1 << 30, node_ephemeral: 1 << 34 }
    }

    #[test]
    fn env_order_sources_and_expansion() {
        let mut s = Sources::default();
        s.config_maps.insert("cfg".into(), BTreeMap::from([("MODE".into(), b"fast".to_vec()), ("LEVEL".into(), b"3".to_vec())]));
        s.secrets.insert("sec".into(), BTreeMap::from([("password".into(), b"hunter2".to_vec())]));
        let c = json!({
            "name": "c",
            "envFrom": [{"configMapRef": {"name": "cfg"}, "prefix": "CFG_"}],
            "env": [
                {"name": "GREETING", "value": "hello"},
                {"name": "MSG", "value": "$(GREETING) $(POD) $(NOPE) $$(GREETING)"},
                {"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                {"name": "APP", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['app']"}}},
                {"name": "IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
                {"name": "PASS", "valueFrom": {"secretKeyRef": {"name": "sec", "key": "password"}}},
                {"name": "MODE", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "MODE"}}},
                {"name": "OPT", "valueFrom": {"configMapKeyRef": {"name": "absent", "key": "x", "optional": true}}},
                {"name": "MEM", "valueFrom": {"resourceFieldRef": {"resource": "limits.memory", "divisor": "1Mi"}}},
                {"name": "CPU", "valueFrom": {"resourceFieldRef": {"resource": "limits.cpu"}}},
                {"name": "HOME", "value": "/override"},
            ],
        });
        let mut p = pod();
        p["spec"]["containers"][0]["env"] = c["env"].clone();
        let image = ImageConfig { env: vec!["PATH=/bin".into(), "HOME=/root".into()], ..Default::default() };
        let env = environment(&p, &c, &image, &s, &ctx()).unwrap();
        let get = |k: &str| env.iter().find_map(|e| e.strip_prefix(&format!("{k}="))).map(str::to_string);
        assert_eq!(env[0], "PATH=/bin");
        assert_eq!(get("HOME").as_deref(), Some("/override"));
        assert_eq!(get("CFG_MODE").as_deref(), Some("fast"));
        assert_eq!(get("CFG_LEVEL").as_deref(), Some("3"));
        // POD is defined after MSG, so $(POD) stays as written; $$ escapes.
        assert_eq!(get("MSG").as_deref(), Some("hello $(POD) $(NOPE) $(GREETING)"));
        assert_eq!(get("POD").as_deref(), Some("web"));
        assert_eq!(get("APP").as_deref(), Some("web"));
        assert_eq!(get("IP").as_deref(), Some("10.42.0.5"));
        assert_eq!(get("PASS").as_deref(), Some("hunter2"));
        assert_eq!(get("MODE").as_deref(), Some("fast"));
        assert_eq!(get("OPT"), None);
        assert_eq!(get("MEM").as_deref(), Some("64"));
        assert_eq!(get("CPU").as_deref(), Some("1"));
        assert_eq!(env.iter().filter(|e| e.starts_with("HOME=")).count(), 1);
    }

    #[test]
    fn env_missing_sources_are_config_errors() {
        let p = pod();
        let c = json!({"name": "c", "env": [{"name": "X", "valueFrom": {"secretKeyRef": {"name": "gone", "key": "k"}}}]});
        let err = environment(&p, &c, &ImageConfig::default(), &Sources::default(), &ctx()).unwrap_err();
        assert!(err.0.contains("Secret \"prod\"/\"gone\" not found"), "{err}");
        let mut s = Sources::default();
        s.config_maps.insert("cfg".into(), BTreeMap::new());
        let c = json!({"name": "c", "env": [{"name": "X", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "k"}}}]});
        let err = environment(&p, &c, &ImageConfig::default(), &s, &ctx()).unwrap_err();
        assert_eq!(err.0, "couldn't find key k in ConfigMap prod/cfg");
        let c = json!({"name": "c", "envFrom": [{"secretRef": {"name": "nope"}}]});
        assert!(environment(&p, &c, &ImageConfig::default(), &s, &ctx()).is_err());
        let c = json!({"name": "c", "envFrom": [{"secretRef": {"name": "nope", "optional": true}}]});
        let env = environment(&p, &c, &ImageConfig::default(), &s, &ctx()).unwrap();
        assert_eq!(env, vec![DEFAULT_PATH.to_string()]);
    }

    #[test]
    fn argv_combines_image_and_container() {
        let image = ImageConfig { entrypoint: vec!["/entry".into()], cmd: vec!["serve".into()], ..Default::default() };
        let env = vec!["NAME=world".to_string()];
        assert_eq!(argv(&json!({}), &image, &env).unwrap(), vec!["/entry", "serve"]);
        assert_eq!(argv(&json!({"args": ["hi $(NAME)"]}), &image, &env).unwrap(), vec!["/entry", "hi world"]);
        assert_eq!(argv(&json!({"command": ["sh", "-c"]}), &image, &env).unwrap(), vec!["sh", "-c"]);
        assert_eq!(argv(&json!({"command": ["echo"], "args": ["$(NAME)", "$(X)"]}), &image, &env).unwrap(), vec!["echo", "world", "$(X)"]);
        assert!(argv(&json!({}), &ImageConfig::default(), &env).is_err());
    }

    #[test]
    fn resources_map_to_cgroups() {
        let r = resources(&pod()["spec"]["containers"][0]);
        assert_eq!(r.cpu_shares, Some(256));
        assert_eq!(r.cpu_quota, Some(50_000));
        assert_eq!(r.cpu_period, Some(100_000));
        assert_eq!(r.memory_limit, Some(64 << 20));
        let best_effort = resources(&json!({}));
        assert_eq!(best_effort, Resources { cpu_shares: Some(2), ..Default::default() });
        let limits_only = resources(&json!({"resources": {"limits": {"cpu": "2"}}}));
        assert_eq!(limits_only.cpu_shares, Some(2048));
        assert_eq!(limits_only.cpu_quota, Some(200_000));
        let tiny = resources(&json!({"resources": {"limits": {"cpu": "1m"}}}));
        assert_eq!(tiny.cpu_quota, Some(1000));
        assert_eq!(tiny.cpu_shares, Some(2));
    }

    #[test]
    fn capabilities_add_and_drop() {
        assert_eq!(capabilities(&json!({})), None);
        let caps = capabilities(&json!({"securityContext": {"capabilities": {"add": ["NET_ADMIN"], "drop": ["KILL"]}}})).unwrap();
        assert!(caps.contains(&"CAP_NET_ADMIN".to_string()));
        assert!(!caps.contains(&"CAP_KILL".to_string()));
        assert!(caps.contains(&"CAP_CHOWN".to_string()));
        let caps = capabilities(&json!({"securityContext": {"capabilities": {"drop": ["ALL"], "add": ["cap_net_bind_service"]}}})).unwrap();
        assert_eq!(caps, vec!["CAP_NET_BIND_SERVICE".to_string()]);
    }

    #[test]
    fn users_from_security_context_and_image() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("etc")).unwrap();
        std::fs::write(dir.path().join("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\nwww:x:33:34::/var/www:/bin/sh\n").unwrap();
        std::fs::write(dir.path().join("etc/group"), "root:x:0:\nstaff:x:50:\n").unwrap();
        let p = pod();
        let c = json!({"name": "c"});
        assert_eq!(user(&p, &c, "", dir.path()).unwrap(), (0, 0, vec![]));
        assert_eq!(user(&p, &c, "www", dir.path()).unwrap(), (33, 34, vec![]));
        assert_eq!(user(&p, &c, "33", dir.path()).unwrap(), (33, 34, vec![]));
        assert_eq!(user(&p, &c, "www:staff", dir.path()).unwrap(), (33, 50, vec![]));
        assert!(user(&p, &c, "nobody", dir.path()).unwrap_err().0.contains("unable to find user nobody"));
        let mut p2 = p.clone();
        p2["spec"]["securityContext"] = json!({"runAsUser": 1000, "runAsGroup": 3000, "supplementalGroups": [4000], "fsGroup": 2000});
        assert_eq!(user(&p2, &c, "www", dir.path()).unwrap(), (1000, 3000, vec![2000, 4000]));
        let c2 = json!({"name": "c", "securityContext": {"runAsUser": 7}});
        assert_eq!(user(&p2, &c2, "", dir.path()).unwrap().0, 7);
        let nonroot = json!({"name": "c", "securityContext": {"runAsNonRoot": true}});
        assert!(user(&p, &nonroot, "", dir.path()).is_err());
    }

    #[test]
    fn referenced_objects() {
        let p = json!({"spec": {
            "containers": [{"name": "c", "env": [{"name": "A", "valueFrom": {"configMapKeyRef": {"name": "cm1", "key": "k"}}}], "envFrom": [{"secretRef": {"name": "s1"}}]}],
            "volumes": [{"name": "v", "configMap": {"name": "cm2"}}, {"name": "w", "secret": {"secretName": "s2"}},
                        {"name": "p", "projected": {"sources": [{"configMap": {"name": "cm3"}}, {"secret": {"name": "s3"}}]}}],
            "imagePullSecrets": [{"name": "pull"}],
        }});
        let (cms, secrets) = referenced(&p);
        assert_eq!(cms.into_iter().collect::<Vec<_>>(), vec!["cm1", "cm2", "cm3"]);
        assert_eq!(secrets.into_iter().collect::<Vec<_>>(), vec!["pull", "s1", "s2", "s3"]);
    }

    #[test]
    fn downward_api_lines() {
        assert_eq!(field_value(&pod(), "metadata.labels", &ctx()).unwrap(), "app=\"web\"\ntier=\"fe\"");
        assert_eq!(field_value(&pod(), "spec.nodeName", &ctx()).unwrap(), "n1");
        assert!(field_value(&pod(), "spec.bogus", &ctx()).is_err());
    }
}
