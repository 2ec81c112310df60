//! `/version`, `/api`, `/apis` and the per-group discovery documents kubectl reads to learn which
//! resources exist, their short names, verbs and scope.

use apimachinery::registry::{self, KUBERNETES_VERSION, ResourceInfo};
use serde_json::{Value, json};

pub fn version() -> Value {
    let (major, minor) = {
        let v = KUBERNETES_VERSION.trim_start_matches('v');
        let mut it = v.split('.');
        (it.next().unwrap_or("1").to_string(), it.next().unwrap_or("33").to_string())
    };
    json!({
        "major": major,
        "minor": minor,
        "gitVersion": format!("{KUBERNETES_VERSION}+rkube.{}", env!("CARGO_PKG_VERSION")),
        "gitCommit": "rkube",
        "gitTreeState": "clean",
        "buildDate": "2026-01-01T00:00:00Z",
        "goVersion": "rust",
        "compiler": "rustc",
        "platform": "linux/amd64",
    })
}

pub fn core_versions(server_address: &str) -> Value {
    json!({
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}],
    })
}

fn group_json(group: &str, versions: &[&str]) -> Value {
    let vs: Vec<Value> = versions.iter().map(|v| json!({"groupVersion": format!("{group}/{v}"), "version": v})).collect();
    json!({
        "name": group,
        "versions": vs,
        "preferredVersion": vs.first().cloned().unwrap_or(Value::Null),
    })
}

pub fn group_list() -> Value {
    let mut groups: Vec<Value> = registry::groups().into_iter().filter(|(g, _)| !g.is_empty()).map(|(g, vs)| group_json(g, &vs)).collect();
    groups.push(super::metrics::group());
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
}

pub fn group(name: &str) -> Option<Value> {
    registry::groups().into_iter().find(|(g, _)| *g == name && !g.is_empty()).map(|(g, vs)| {
        let mut v = group_json(g, &vs);
        v["kind"] = json!("APIGroup");
        v["apiVersion"] = json!("v1");
        v
    })
}

fn resource_entries(r: &ResourceInfo) -> Vec<Value> {
    let mut out = vec![json!({
        "name": r.plural,
        "singularName": r.singular,
        "namespaced": r.namespaced,
        "kind": r.kind,
        "verbs": r.verbs,
        "shortNames": r.short_names,
        "categories": r.categories,
        "storageVersionHash": "",
    })];
    if out[0]["shortNames"].as_array().is_some_and(|a| a.is_empty()) {
        out[0].as_object_mut().expect("object").remove("shortNames");
    }
    if out[0]["categories"].as_array().is_some_and(|a| a.is_empty()) {
        out[0].as_object_mut().expect("object").remove("categories");
    }
    if r.has_status {
        out.push(json!({"name": format!("{}/status", r.plural), "singularName": "", "namespaced": r.namespaced, "kind": r.kind, "verbs": ["get", "patch", "update"]}));
    }
    if r.has_scale {
        out.push(json!({"name": format!("{}/scale", r.plural), "singularName": "", "namespaced": r.namespaced, "group": "autoscaling", "version": "v1", "kind": "Scale", "verbs": ["get", "patch", "update"]}));
    }
    match (r.group, r.plural) {
        ("", "pods") => {
            for (sub, kind, verbs) in [
                ("binding", "Binding", &["create"][..]),
                ("eviction", "Eviction", &["create"][..]),
                ("log", "Pod", &["get"][..]),
                ("exec", "PodExecOptions", &["create", "get"][..]),
                ("attach", "PodAttachOptions", &["create", "get"][..]),
                ("portforward", "PodPortForwardOptions", &["create", "get"][..]),
            ] {
                let mut e = json!({"name": format!("pods/{sub}"), "singularName": "", "namespaced": true, "kind": kind, "verbs": verbs});
                if sub == "eviction" {
                    e["group"] = json!("policy");
                    e["version"] = json!("v1");
                }
                out.push(e);
            }
        }
        ("", "namespaces") => {
            out.push(json!({"name": "namespaces/finalize", "singularName": "", "namespaced": false, "kind": "Namespace", "verbs": ["update"]}));
        }
        _ => {}
    }
    out
}

/// The APIResourceList of one group-version (`None` when it does not exist).
pub fn resource_list(group: &str, version: &str) -> Option<Value> {
    let rs: Vec<&ResourceInfo> = registry::resources().iter().filter(|r| r.group == group && r.version == version).collect();
    if rs.is_empty() {
        return None;
    }
    let mut resources: Vec<Value> = rs.iter().flat_map(|r| resource_entries(r)).collect();
    if group.is_empty() {
        resources.push(json!({"name": "bindings", "singularName": "binding", "namespaced": true, "kind": "Binding", "verbs": ["create"]}));
    }
    let gv = if group.is_empty() { version.to_string() } else { format!("{group}/{version}") };
    Some(json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": resources}))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn discovery_documents() {
        let core = resource_list("", "v1").unwrap();
        let pods = core["resources"].as_array().unwrap().iter().find(|r| r["name"] == "pods").unwrap();
        assert_eq!(pods["shortNames"], json!(["po"]));
        assert_eq!(pods["categories"], json!(["all"]));
        assert!(core["resources"].as_array().unwrap().iter().any(|r| r["name"] == "pods/status"));
        let apps = resource_list("apps", "v1").unwrap();
        assert!(apps["resources"].as_array().unwrap().iter().any(|r| r["name"] == "deployments/scale" && r["kind"] == "Scale"));
        assert!(resource_list("nope", "v1").is_none());
        let groups = group_list();
        assert!(groups["groups"].as_array().unwrap().iter().any(|g| g["name"] == "apps" && g["preferredVersion"]["groupVersion"] == "apps/v1"));
        assert_eq!(group("batch").unwrap()["kind"], "APIGroup");
        assert_eq!(version()["minor"], "33");
    }
}
