//! Forgiving accessors on JSON values: a missing field, a `null` or a value of another type
//! reads as absent/empty, so validation never panics on unexpected shapes.

use serde_json::Value;

static NULL: Value = Value::Null;

pub(crate) trait J {
    /// The member `k`, or `null` when absent or when this is not an object.
    fn g(&self, k: &str) -> &Value;
    /// The string, or `""`.
    fn s(&self) -> &str;
    /// The elements, or none.
    fn arr(&self) -> &[Value];
    /// The members, or none.
    fn entries(&self) -> Vec<(&String, &Value)>;
    fn int(&self) -> Option<i64>;
    fn boolean(&self) -> Option<bool>;
    /// Present and not `null`.
    fn present(&self) -> bool;
    /// Go's idea of "unset or zero value": null, "", 0, false, [] and {}.
    fn is_empty_value(&self) -> bool;
    fn map_len(&self) -> usize;
}

impl J for Value {
    fn g(&self, k: &str) -> &Value {
        self.as_object().and_then(|m| m.get(k)).unwrap_or(&NULL)
    }
    fn s(&self) -> &str {
        self.as_str().unwrap_or("")
    }
    fn arr(&self) -> &[Value] {
        self.as_array().map(|a| a.as_slice()).unwrap_or(&[])
    }
    fn entries(&self) -> Vec<(&String, &Value)> {
        self.as_object().map(|m| m.iter().collect()).unwrap_or_default()
    }
    fn int(&self) -> Option<i64> {
        match self {
            Value::Number(n) => n.as_i64().or_else(|| n.as_f64().map(|f| f as i64)),
            _ => None,
        }
    }
    fn boolean(&self) -> Option<bool> {
        self.as_bool()
    }
    fn present(&self) -> bool {
        !self.is_null()
    }
    fn is_empty_value(&self) -> bool {
        match self {
            Value::Null => true,
            Value::String(s) => s.is_empty(),
            Value::Bool(b) => !b,
            Value::Number(n) => n.as_f64() == Some(0.0),
            Value::Array(a) => a.is_empty(),
            Value::Object(m) => m.is_empty(),
        }
    }
    fn map_len(&self) -> usize {
        self.as_object().map(|m| m.len()).unwrap_or(0)
    }
}

/// Semantic equality in the spirit of `apiequality.Semantic.DeepEqual` on typed structs: an
/// absent field equals its zero value, and empty lists/maps equal absent ones.
pub(crate) fn sem_eq(a: &Value, b: &Value) -> bool {
    if a.is_empty_value() && b.is_empty_value() {
        return true;
    }
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            x.iter().all(|(k, v)| sem_eq(v, y.get(k).unwrap_or(&NULL)))
                && y.iter().all(|(k, v)| x.contains_key(k) || v.is_empty_value())
        }
        (Value::Array(x), Value::Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(p, q)| sem_eq(p, q)),
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        _ => a == b,
    }
}

/// A short description of how two values differ, one `-`/`+` pair per differing field, used
/// where Kubernetes appends a go-cmp diff to a message.
pub(crate) fn diff(old: &Value, new: &Value) -> String {
    let mut out = Vec::new();
    diff_into("", old, new, &mut out);
    out.join("\n")
}

fn diff_into(path: &str, old: &Value, new: &Value, out: &mut Vec<String>) {
    if sem_eq(old, new) {
        return;
    }
    match (old, new) {
        (Value::Object(a), Value::Object(b)) => {
            let mut keys: Vec<&String> = a.keys().collect();
            keys.extend(b.keys().filter(|k| !a.contains_key(*k)));
            for k in keys {
                let p = if path.is_empty() { k.clone() } else { format!("{path}.{k}") };
                diff_into(&p, a.get(k).unwrap_or(&NULL), b.get(k).unwrap_or(&NULL), out);
            }
        }
        (Value::Array(a), Value::Array(b)) if a.len() == b.len() => {
            for (i, (x, y)) in a.iter().zip(b).enumerate() {
                diff_into(&format!("{path}[{i}]"), x, y, out);
            }
        }
        _ => {
            out.push(format!("- \t{path}: {old}"));
            out.push(format!("+ \t{path}: {new}"));
        }
    }
}
