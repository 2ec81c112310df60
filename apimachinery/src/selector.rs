//! Label selectors (the `labelSelector` query string and `LabelSelector` objects) and field
//! selectors, parsed and matched as Kubernetes does.

use std::collections::BTreeMap;

use serde_json::Value;

#[derive(Debug, Clone, PartialEq)]
pub enum Requirement {
    Equals(String, String),
    NotEquals(String, String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
    Exists(String),
    DoesNotExist(String),
    Gt(String, i64),
    Lt(String, i64),
}

/// A conjunction of requirements; the empty selector matches everything.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct LabelSelector {
    pub requirements: Vec<Requirement>,
}

/// A selector that matches nothing (a `LabelSelector` object that is null, for controllers).
pub fn nothing() -> LabelSelector {
    LabelSelector { requirements: vec![Requirement::In(String::new(), vec![])] }
}

impl LabelSelector {
    pub fn is_empty(&self) -> bool {
        self.requirements.is_empty()
    }

    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.requirements.iter().all(|r| match r {
            Requirement::Equals(k, v) => labels.get(k) == Some(v),
            Requirement::NotEquals(k, v) => labels.get(k) != Some(v),
            Requirement::In(k, vs) => labels.get(k).is_some_and(|l| vs.contains(l)),
            Requirement::NotIn(k, vs) => labels.get(k).is_none_or(|l| !vs.contains(l)),
            Requirement::Exists(k) => labels.contains_key(k),
            Requirement::DoesNotExist(k) => !labels.contains_key(k),
            Requirement::Gt(k, n) => labels.get(k).and_then(|l| l.parse::<i64>().ok()).is_some_and(|l| l > *n),
            Requirement::Lt(k, n) => labels.get(k).and_then(|l| l.parse::<i64>().ok()).is_some_and(|l| l < *n),
        })
    }

    /// Matches the `metadata.labels` of an object.
    pub fn matches_object(&self, obj: &Value) -> bool {
        self.matches(&labels_of(obj))
    }
}

pub fn labels_of(obj: &Value) -> BTreeMap<String, String> {
    obj.pointer("/metadata/labels")
        .and_then(|l| l.as_object())
        .map(|m| m.iter().filter_map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_string()))).collect())
        .unwrap_or_default()
}

/// Parses the `labelSelector` query syntax: `a=b,c!=d,e in (x,y),f notin (z),g,!h,n>5`.
pub fn parse_label_selector(s: &str) -> Result<LabelSelector, String> {
    let mut requirements = Vec::new();
    for term in split_terms(s)? {
        let t = term.trim();
        if t.is_empty() {
            continue;
        }
        requirements.push(parse_term(t)?);
    }
    Ok(LabelSelector { requirements })
}

/// Splits on commas that are not inside parentheses.
fn split_terms(s: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut depth = 0i32;
    let mut cur = String::new();
    for ch in s.chars() {
        match ch {
            '(' => {
                depth += 1;
                cur.push(ch);
            }
            ')' => {
                depth -= 1;
                if depth < 0 {
                    return Err(format!("unbalanced parenthesis in label selector {s:?}"));
                }
                cur.push(ch);
            }
            ',' if depth == 0 => out.push(std::mem::take(&mut cur)),
            _ => cur.push(ch),
        }
    }
    if depth != 0 {
        return Err(format!("unbalanced parenthesis in label selector {s:?}"));
    }
    out.push(cur);
    Ok(out)
}

fn check_key(k: &str, whole: &str) -> Result<String, String> {
    let k = k.trim();
    let ok = !k.is_empty()
        && k.len() <= 317
        && k.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/'));
    if !ok {
        return Err(format!("invalid label key {k:?} in selector {whole:?}"));
    }
    Ok(k.to_string())
}

fn check_value(v: &str, whole: &str) -> Result<String, String> {
    let v = v.trim();
    let ok = v.len() <= 63 && v.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if !ok {
        return Err(format!("invalid label value {v:?} in selector {whole:?}"));
    }
    Ok(v.to_string())
}

fn parse_set(rest: &str, whole: &str) -> Result<Vec<String>, String> {
    let rest = rest.trim();
    let inner = rest
        .strip_prefix('(')
        .and_then(|r| r.strip_suffix(')'))
        .ok_or_else(|| format!("expected a parenthesised value set in {whole:?}"))?;
    inner.split(',').map(|v| check_value(v, whole)).collect()
}

fn parse_term(t: &str) -> Result<Requirement, String> {
    if let Some(k) = t.strip_prefix('!') {
        return Ok(Requirement::DoesNotExist(check_key(k, t)?));
    }
    // Set-based: `key in (...)` / `key notin (...)`.
    let lower = t.to_string();
    if let Some(pos) = lower.find(" notin ").or_else(|| lower.find(" notin(")) {
        let (k, rest) = t.split_at(pos);
        return Ok(Requirement::NotIn(check_key(k, t)?, parse_set(&rest[6..], t)?));
    }
    if let Some(pos) = lower.find(" in ").or_else(|| lower.find(" in(")) {
        let (k, rest) = t.split_at(pos);
        return Ok(Requirement::In(check_key(k, t)?, parse_set(&rest[3..], t)?));
    }
    for (op, ctor) in [("!=", 0), ("==", 1), ("=", 1), (">", 2), ("<", 3)] {
        if let Some((k, v)) = t.split_once(op) {
            let key = check_key(k, t)?;
            return match ctor {
                0 => Ok(Requirement::NotEquals(key, check_value(v, t)?)),
                1 => Ok(Requirement::Equals(key, check_value(v, t)?)),
                2 => Ok(Requirement::Gt(key, v.trim().parse().map_err(|_| format!("{t:?}: > needs an integer"))?)),
                _ => Ok(Requirement::Lt(key, v.trim().parse().map_err(|_| format!("{t:?}: < needs an integer"))?)),
            };
        }
    }
    Ok(Requirement::Exists(check_key(t, t)?))
}

/// Converts a `LabelSelector` object (`matchLabels`, `matchExpressions`). A missing selector
/// (`None`) matches nothing, as for controllers; an empty one matches everything.
pub fn from_label_selector_object(sel: Option<&Value>) -> Result<LabelSelector, String> {
    let Some(sel) = sel.filter(|s| !s.is_null()) else { return Ok(nothing()) };
    let mut requirements = Vec::new();
    if let Some(m) = sel.get("matchLabels").and_then(|m| m.as_object()) {
        for (k, v) in m {
            requirements.push(Requirement::Equals(k.clone(), v.as_str().unwrap_or_default().to_string()));
        }
    }
    if let Some(exprs) = sel.get("matchExpressions").and_then(|m| m.as_array()) {
        for e in exprs {
            let key = e.get("key").and_then(|k| k.as_str()).unwrap_or_default().to_string();
            let values: Vec<String> = e
                .get("values")
                .and_then(|v| v.as_array())
                .map(|a| a.iter().filter_map(|x| x.as_str().map(String::from)).collect())
                .unwrap_or_default();
            let op = e.get("operator").and_then(|o| o.as_str()).unwrap_or_default();
            requirements.push(match op {
                "In" => Requirement::In(key, values),
                "NotIn" => Requirement::NotIn(key, values),
                "Exists" => Requirement::Exists(key),
                "DoesNotExist" => Requirement::DoesNotExist(key),
                other => return Err(format!("{other:?} is not a valid label selector operator")),
            });
        }
    }
    Ok(LabelSelector { requirements })
}

/// A field selector: `metadata.name=x,status.phase!=Running`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct FieldSelector {
    /// (field path, value, equal?)
    pub terms: Vec<(String, String, bool)>,
}

/// The fields each kind supports in field selectors, beyond `metadata.name` and
/// `metadata.namespace` which every kind supports (as Kubernetes does).
fn supported_fields(kind: &str) -> &'static [&'static str] {
    match kind {
        "Pod" => &["spec.nodeName", "spec.restartPolicy", "spec.schedulerName", "spec.serviceAccountName", "spec.hostNetwork", "status.phase", "status.podIP", "status.nominatedNodeName"],
        "Event" => &["involvedObject.kind", "involvedObject.namespace", "involvedObject.name", "involvedObject.uid", "involvedObject.apiVersion", "involvedObject.resourceVersion", "involvedObject.fieldPath", "reason", "reportingComponent", "source", "type", "regarding.kind", "regarding.name", "regarding.namespace", "regarding.uid"],
        "Namespace" => &["status.phase"],
        "Node" => &["spec.unschedulable"],
        "Secret" => &["type"],
        "ReplicaSet" | "ReplicationController" => &["status.replicas"],
        "Job" => &["status.successful"],
        "Service" => &["spec.clusterIP", "spec.type"],
        _ => &[],
    }
}

pub fn parse_field_selector(s: &str, kind: &str) -> Result<FieldSelector, String> {
    let mut terms = Vec::new();
    for term in s.split(',') {
        let t = term.trim();
        if t.is_empty() {
            continue;
        }
        let (field, value, eq) = if let Some((f, v)) = t.split_once("!=") {
            (f, v, false)
        } else if let Some((f, v)) = t.split_once("==") {
            (f, v, true)
        } else if let Some((f, v)) = t.split_once('=') {
            (f, v, true)
        } else {
            return Err(format!("invalid field selector term {t:?}: expected field=value or field!=value"));
        };
        let field = field.trim();
        if field != "metadata.name" && field != "metadata.namespace" && !supported_fields(kind).contains(&field) {
            return Err(format!("field label not supported: {field}"));
        }
        terms.push((field.to_string(), value.trim().to_string(), eq));
    }
    Ok(FieldSelector { terms })
}

impl FieldSelector {
    pub fn is_empty(&self) -> bool {
        self.terms.is_empty()
    }

    pub fn matches(&self, obj: &Value) -> bool {
        self.terms.iter().all(|(field, want, eq)| {
            let mut cur = obj;
            let mut found = true;
            for part in field.split('.') {
                match cur.get(part) {
                    Some(v) => cur = v,
                    None => {
                        found = false;
                        break;
                    }
                }
            }
            let have = if !found {
                // An absent boolean selects as "false", an absent string as "".
                if field == "spec.unschedulable" || field == "spec.hostNetwork" { "false".to_string() } else { String::new() }
            } else {
                match cur {
                    Value::String(s) => s.clone(),
                    Value::Null => String::new(),
                    other => other.to_string(),
                }
            };
            (have == *want) == *eq
        })
    }

    /// The value a single `field=value` term pins (e.g. `spec.nodeName`), for indexing.
    pub fn equality(&self, field: &str) -> Option<&str> {
        self.terms.iter().find(|(f, _, eq)| f == field && *eq).map(|(_, v, _)| v.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn label_selector_table() {
        let l = labels(&[("app", "web"), ("tier", "front"), ("n", "7")]);
        let cases = [
            ("", true),
            ("app=web", true),
            ("app==web", true),
            ("app!=web", false),
            ("app=web,tier=back", false),
            ("app in (web,api)", true),
            ("app in (api)", false),
            ("app notin (api)", true),
            ("missing notin (api)", true),
            ("tier", true),
            ("!tier", false),
            ("!missing", true),
            ("n>5", true),
            ("n<5", false),
            ("app in (web, api),tier", true),
        ];
        for (sel, want) in cases {
            let s = parse_label_selector(sel).unwrap_or_else(|e| panic!("{sel}: {e}"));
            assert_eq!(s.matches(&l), want, "{sel}");
        }
        for bad in ["app in (web", "app=we b", "a b c", "n>x"] {
            assert!(parse_label_selector(bad).is_err(), "{bad} must be refused");
        }
    }

    #[test]
    fn selector_objects() {
        let l = labels(&[("app", "web")]);
        let s = from_label_selector_object(Some(&json!({"matchLabels": {"app": "web"}, "matchExpressions": [{"key": "tier", "operator": "DoesNotExist"}]}))).unwrap();
        assert!(s.matches(&l));
        assert!(from_label_selector_object(Some(&json!({}))).unwrap().matches(&l));
        assert!(!from_label_selector_object(None).unwrap().matches(&l));
        assert!(from_label_selector_object(Some(&json!({"matchExpressions": [{"key": "a", "operator": "Bad"}]}))).is_err());
    }

    #[test]
    fn field_selector_table() {
        let pod = json!({"metadata": {"name": "p", "namespace": "ns"}, "spec": {"nodeName": "n1"}, "status": {"phase": "Running"}});
        let unscheduled = json!({"metadata": {"name": "q", "namespace": "ns"}, "spec": {}, "status": {"phase": "Pending"}});
        let cases = [
            ("metadata.name=p", true, false),
            ("metadata.namespace!=ns", false, false),
            ("spec.nodeName=n1", true, false),
            ("spec.nodeName=", false, true),
            ("status.phase!=Running", false, true),
            ("status.phase=Running,metadata.name=p", true, false),
        ];
        for (sel, want_pod, want_unsched) in cases {
            let s = parse_field_selector(sel, "Pod").unwrap();
            assert_eq!(s.matches(&pod), want_pod, "{sel}");
            assert_eq!(s.matches(&unscheduled), want_unsched, "{sel}");
        }
        assert!(parse_field_selector("spec.bogus=1", "Pod").unwrap_err().contains("field label not supported"));
        assert!(parse_field_selector("status.phase=Running", "ConfigMap").is_err());
        assert_eq!(parse_field_selector("spec.nodeName=n1", "Pod").unwrap().equality("spec.nodeName"), Some("n1"));
    }
}
