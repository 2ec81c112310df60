//! Unknown-field detection for `fieldValidation` (Strict / Warn / Ignore): the typed round trip
//! through k8s-openapi drops fields the schema does not know; whatever the request had and the
//! round trip lost is unknown.

use serde_json::Value;

/// Paths (`spec.containers[0].imagee`) present in `original` but absent from `typed`.
pub fn unknown_fields(original: &Value, typed: &Value) -> Vec<String> {
    let mut out = Vec::new();
    walk(original, typed, "", &mut out);
    out
}

fn walk(orig: &Value, typed: &Value, path: &str, out: &mut Vec<String>) {
    match (orig, typed) {
        (Value::Object(o), Value::Object(t)) => {
            for (k, v) in o {
                let p = if path.is_empty() { k.clone() } else { format!("{path}.{k}") };
                match t.get(k) {
                    Some(tv) => walk(v, tv, &p, out),
                    // A null in the request is "unset": the round trip drops it legitimately.
                    None if v.is_null() => {}
                    None => {
                        // Free-form maps (labels, data, annotations...) keep every key, so a key
                        // missing here is a field the type does not have.
                        out.push(p);
                    }
                }
            }
        }
        (Value::Array(o), Value::Array(t)) => {
            for (i, v) in o.iter().enumerate() {
                if let Some(tv) = t.get(i) {
                    walk(v, tv, &format!("{path}[{i}]"), out);
                }
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn finds_unknown_fields_at_any_depth() {
        let info = crate::registry::find("apps", "v1", "deployments").unwrap();
        let obj = json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "d", "labels": {"a": "b"}, "bogusMeta": 1},
            "spec": {"selector": {"matchLabels": {"a": "b"}}, "replicaz": 3,
                     "template": {"metadata": {"labels": {"a": "b"}}, "spec": {"containers": [{"name": "c", "image": "i", "imagee": "x"}]}}},
            "status": null
        });
        let typed = (info.round_trip)(&obj).unwrap();
        let mut unknown = unknown_fields(&obj, &typed);
        unknown.sort();
        assert_eq!(unknown, vec!["metadata.bogusMeta", "spec.replicaz", "spec.template.spec.containers[0].imagee"]);
        let clean = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"x": "1"}});
        let cm = crate::registry::find("", "v1", "configmaps").unwrap();
        assert!(unknown_fields(&clean, &(cm.round_trip)(&clean).unwrap()).is_empty());
    }
}
