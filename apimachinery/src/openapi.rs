//! The OpenAPI documents kubectl fetches: `/openapi/v2` (one Swagger 2.0 document) and
//! `/openapi/v3` (an index of per group-version OpenAPI 3.0 documents).
//!
//! Schemas come from k8s-openapi (with their descriptions, so `kubectl explain` works), marked
//! with `x-kubernetes-group-version-kind` and the strategic-merge extensions. Every PATCH
//! operation lists the `fieldValidation` and `dryRun` parameters: that is how kubectl learns the
//! server validates fields itself, so it sends `fieldValidation=Strict` instead of validating
//! client-side.

use std::collections::BTreeMap;

use schemars::generate::SchemaSettings;
use serde_json::{Map, Value, json};

use crate::registry::{KUBERNETES_VERSION, ResourceInfo, resources};

pub struct OpenApiDocs {
    /// The Swagger 2.0 document.
    pub v2: Vec<u8>,
    /// The `/openapi/v3` index.
    pub v3_index: Vec<u8>,
    /// `api/v1`, `apis/apps/v1`, ... → the OpenAPI 3.0 document of that group-version.
    pub v3: BTreeMap<String, Vec<u8>>,
}

fn gv_path(r: &ResourceInfo) -> String {
    if r.group.is_empty() { format!("api/{}", r.version) } else { format!("apis/{}/{}", r.group, r.version) }
}

fn gvk(r: &ResourceInfo) -> Value {
    json!({"group": r.group, "version": r.version, "kind": r.kind})
}

/// Adds Kubernetes' extensions to generated definitions: GVKs of top-level kinds, patch strategies
/// of fields, and int-or-string markers.
fn decorate(defs: &mut Map<String, Value>, rs: &[&ResourceInfo]) {
    for r in rs {
        if let Some(d) = defs.get_mut(r.definition).and_then(|d| d.as_object_mut()) {
            d.insert("x-kubernetes-group-version-kind".into(), json!([gvk(r)]));
        }
    }
    for (name, def) in defs.iter_mut() {
        let Some(props) = def.get_mut("properties").and_then(|p| p.as_object_mut()) else { continue };
        for (field, schema) in props.iter_mut() {
            if let Some(meta) = crate::patch::patch_meta(name, field)
                && let Some(s) = schema.as_object_mut()
            {
                s.insert("x-kubernetes-patch-strategy".into(), json!(meta.strategy));
                if let Some(k) = meta.merge_key {
                    s.insert("x-kubernetes-patch-merge-key".into(), json!(k));
                }
            }
        }
    }
}

fn definitions(settings: SchemaSettings, rs: &[&ResourceInfo]) -> Map<String, Value> {
    let mut generator = settings.into_generator();
    for r in rs {
        let _ = (r.schema)(&mut generator);
    }
    let mut defs = generator.take_definitions(true);
    decorate(&mut defs, rs);
    defs
}

struct PathOps {
    path: String,
    ops: Vec<(&'static str, &'static str, bool)>, // (http method, k8s action, has body)
}

fn paths_of(r: &ResourceInfo) -> Vec<PathOps> {
    let base = if r.group.is_empty() { format!("/api/{}", r.version) } else { format!("/apis/{}/{}", r.group, r.version) };
    let coll = if r.namespaced { format!("{base}/namespaces/{{namespace}}/{}", r.plural) } else { format!("{base}/{}", r.plural) };
    let item = format!("{coll}/{{name}}");
    let mut out = vec![
        PathOps { path: coll, ops: vec![("get", "list", false), ("post", "post", true), ("delete", "deletecollection", false)] },
        PathOps {
            path: item.clone(),
            ops: vec![("get", "get", false), ("put", "put", true), ("patch", "patch", true), ("delete", "delete", false)],
        },
    ];
    if r.has_status {
        out.push(PathOps { path: format!("{item}/status"), ops: vec![("get", "get", false), ("put", "put", true), ("patch", "patch", true)] });
    }
    out
}

fn query_param(name: &str, description: &str, v3: bool) -> Value {
    if v3 {
        json!({"name": name, "in": "query", "description": description, "schema": {"type": "string", "uniqueItems": true}})
    } else {
        json!({"name": name, "in": "query", "description": description, "type": "string", "uniqueItems": true})
    }
}

fn operations(r: &ResourceInfo, p: &PathOps, v3: bool) -> Value {
    let reference = if v3 { format!("#/components/schemas/{}", r.definition) } else { format!("#/definitions/{}", r.definition) };
    let mut path_item = Map::new();
    let mut common = vec![
        if v3 {
            json!({"name": "name", "in": "path", "required": true, "schema": {"type": "string"}})
        } else {
            json!({"name": "name", "in": "path", "required": true, "type": "string"})
        },
    ];
    if r.namespaced {
        common.push(if v3 {
            json!({"name": "namespace", "in": "path", "required": true, "schema": {"type": "string"}})
        } else {
            json!({"name": "namespace", "in": "path", "required": true, "type": "string"})
        });
    }
    if !p.path.ends_with("{name}") && !p.path.ends_with("/status") {
        common.remove(0);
    }
    path_item.insert("parameters".into(), Value::Array(common));
    for (method, action, body) in &p.ops {
        let mut params = Vec::new();
        if *body {
            params.push(query_param("dryRun", "When present, indicates that modifications should not be persisted.", v3));
            params.push(query_param("fieldManager", "fieldManager is a name associated with the actor or entity that is making these changes.", v3));
            params.push(query_param(
                "fieldValidation",
                "fieldValidation instructs the server on how to handle objects in the request containing unknown or duplicate fields. Valid values are: Ignore, Warn, Strict.",
                v3,
            ));
            if *method == "patch" {
                params.push(if v3 {
                    json!({"name": "force", "in": "query", "schema": {"type": "boolean", "uniqueItems": true}})
                } else {
                    json!({"name": "force", "in": "query", "type": "boolean", "uniqueItems": true})
                });
            }
        }
        let mut op = json!({
            "operationId": format!("{method}{}{}", r.kind, if action == &"list" { "List" } else { "" }),
            "x-kubernetes-action": action,
            "x-kubernetes-group-version-kind": gvk(r),
            "parameters": params,
        });
        if v3 {
            op["responses"] = json!({"200": {"description": "OK", "content": {"application/json": {"schema": {"$ref": reference}}}}});
            if *body {
                let types: &[&str] = if *method == "patch" {
                    &["application/json-patch+json", "application/merge-patch+json", "application/strategic-merge-patch+json", "application/apply-patch+yaml"]
                } else {
                    &["application/json"]
                };
                let content: Map<String, Value> = types.iter().map(|t| (t.to_string(), json!({"schema": {"$ref": reference}}))).collect();
                op["requestBody"] = json!({"content": content, "required": true});
            }
        } else {
            op["responses"] = json!({"200": {"description": "OK", "schema": {"$ref": reference}}});
            if *body {
                op["parameters"].as_array_mut().expect("array").push(json!({"name": "body", "in": "body", "required": true, "schema": {"$ref": reference}}));
            }
            op["consumes"] = json!(["*/*"]);
            op["produces"] = json!(["application/json"]);
        }
        path_item.insert(method.to_string(), op);
    }
    Value::Object(path_item)
}

fn fnv_hex(bytes: &[u8]) -> String {
    let mut h: u64 = 0xcbf29ce484222325;
    for b in bytes {
        h ^= *b as u64;
        h = h.wrapping_mul(0x100000001b3);
    }
    format!("{h:016X}")
}

/// Builds every document. Costs some tens of milliseconds: done once at startup.
pub fn build() -> OpenApiDocs {
    let all: Vec<&ResourceInfo> = resources().iter().collect();

    // Swagger 2.0
    let mut v2_settings = SchemaSettings::draft07();
    v2_settings.definitions_path = "/definitions".into();
    v2_settings.meta_schema = None;
    let defs = definitions(v2_settings, &all);
    let mut paths = Map::new();
    for r in &all {
        for p in paths_of(r) {
            paths.insert(p.path.clone(), operations(r, &p, false));
        }
    }
    let v2 = json!({
        "swagger": "2.0",
        "info": {"title": "Kubernetes", "version": KUBERNETES_VERSION},
        "paths": paths,
        "definitions": defs,
    });

    // OpenAPI 3.0, one document per group-version.
    let mut by_gv: BTreeMap<String, Vec<&ResourceInfo>> = BTreeMap::new();
    for r in &all {
        by_gv.entry(gv_path(r)).or_default().push(r);
    }
    let mut v3 = BTreeMap::new();
    let mut index = Map::new();
    for (gv, rs) in by_gv {
        let defs = definitions(SchemaSettings::openapi3(), &rs);
        let mut paths = Map::new();
        for r in &rs {
            for p in paths_of(r) {
                paths.insert(p.path.clone(), operations(r, &p, true));
            }
        }
        let doc = json!({
            "openapi": "3.0.0",
            "info": {"title": "Kubernetes", "version": KUBERNETES_VERSION},
            "paths": paths,
            "components": {"schemas": defs},
        });
        let bytes = serde_json::to_vec(&doc).expect("serializing OpenAPI");
        index.insert(gv.clone(), json!({"serverRelativeURL": format!("/openapi/v3/{gv}?hash={}", fnv_hex(&bytes))}));
        v3.insert(gv, bytes);
    }
    OpenApiDocs {
        v2: serde_json::to_vec(&v2).expect("serializing OpenAPI"),
        v3_index: serde_json::to_vec(&json!({"paths": index})).expect("serializing OpenAPI index"),
        v3,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_carry_gvks_refs_and_field_validation() {
        let docs = build();
        let v3: Value = serde_json::from_slice(&docs.v3["apis/apps/v1"]).unwrap();
        let dep = &v3["components"]["schemas"]["io.k8s.api.apps.v1.Deployment"];
        assert_eq!(dep["x-kubernetes-group-version-kind"][0]["kind"], "Deployment");
        assert!(dep["description"].as_str().unwrap().contains("Deployment"));
        let patch = &v3["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"]["patch"];
        assert_eq!(patch["x-kubernetes-group-version-kind"]["kind"], "Deployment");
        assert!(patch["parameters"].as_array().unwrap().iter().any(|p| p["name"] == "fieldValidation"));
        // References resolve inside the document.
        let text = String::from_utf8(docs.v3["api/v1"].clone()).unwrap();
        assert!(text.contains("#/components/schemas/io.k8s.api.core.v1.PodSpec"));
        assert!(!text.contains("#/$defs/"));
        let v2: Value = serde_json::from_slice(&docs.v2).unwrap();
        assert!(v2["definitions"]["io.k8s.api.core.v1.Pod"]["x-kubernetes-group-version-kind"].is_array());
        assert!(v2["paths"]["/api/v1/nodes/{name}"]["patch"].is_object());
        let index: Value = serde_json::from_slice(&docs.v3_index).unwrap();
        assert!(index["paths"]["api/v1"]["serverRelativeURL"].as_str().unwrap().starts_with("/openapi/v3/api/v1?hash="));
    }
}
