//! Small helpers on object metadata, and the server-set fields (uid, timestamps, names).

use serde_json::{Map, Value, json};

pub fn meta(v: &Value) -> Option<&Map<String, Value>> {
    v.get("metadata").and_then(|m| m.as_object())
}

pub fn meta_mut(v: &mut Value) -> &mut Map<String, Value> {
    if !v.get("metadata").is_some_and(|m| m.is_object()) {
        v["metadata"] = json!({});
    }
    v["metadata"].as_object_mut().expect("metadata is an object")
}

pub fn meta_str<'a>(v: &'a Value, field: &str) -> Option<&'a str> {
    meta(v).and_then(|m| m.get(field)).and_then(|s| s.as_str()).filter(|s| !s.is_empty())
}

pub fn name(v: &Value) -> Option<&str> {
    meta_str(v, "name")
}

pub fn rv(v: &Value) -> Option<u64> {
    meta_str(v, "resourceVersion").and_then(|s| s.parse().ok())
}

pub fn finalizers(v: &Value) -> Vec<String> {
    meta(v)
        .and_then(|m| m.get("finalizers"))
        .and_then(|f| f.as_array())
        .map(|a| a.iter().filter_map(|s| s.as_str().map(String::from)).collect())
        .unwrap_or_default()
}

pub fn is_deleting(v: &Value) -> bool {
    meta_str(v, "deletionTimestamp").is_some()
}

/// RFC 3339 with second precision, as Kubernetes writes timestamps.
pub fn now() -> String {
    jiff::Timestamp::now().strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

pub fn timestamp_in(seconds: i64) -> String {
    let t = jiff::Timestamp::now() + jiff::SignedDuration::from_secs(seconds);
    t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// A random (version 4) UUID.
pub fn new_uid() -> String {
    let b: [u8; 16] = rand::random();
    let mut b = b;
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex::encode(b);
    format!("{}-{}-{}-{}-{}", &h[0..8], &h[8..12], &h[12..16], &h[16..20], &h[20..32])
}

/// The random suffix of `generateName`, from the alphabet Kubernetes uses (no vowels, no
/// look-alike characters).
pub fn name_suffix() -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    (0..5).map(|_| ALPHABET[rand::random_range(0..ALPHABET.len())] as char).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_values_have_kubernetes_shapes() {
        let u = new_uid();
        assert_eq!(u.len(), 36);
        assert_eq!(&u[14..15], "4");
        assert_eq!(name_suffix().len(), 5);
        let t = now();
        assert!(t.ends_with('Z') && t.len() == 20, "{t}");
    }
}
