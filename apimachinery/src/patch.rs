//! PATCH semantics as the kube-apiserver implements them: JSON patch (RFC 6902), JSON merge patch
//! (RFC 7386) and Kubernetes strategic merge patch, with the built-in types' patch strategies and
//! merge keys.
//!
//! Strategic merge patch follows `k8s.io/apimachinery/pkg/util/strategicpatch` as the apiserver
//! calls it (`StrategicMergeMapPatch`): the type of every nested field comes from the k8s-openapi
//! schemas, and the patch strategy of each field from [`patch_meta`], the table of the Go struct
//! tags (`patchStrategy`, `patchMergeKey`).

mod meta;
mod schema;
mod strategic;

use std::fmt;

use serde_json::Value;

/// The most operations one JSON patch may hold; the apiserver rejects longer patches so a single
/// request cannot make it do unbounded work.
pub const MAX_JSON_PATCH_OPERATIONS: usize = 10_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PatchType {
    /// `application/json-patch+json` (RFC 6902).
    Json,
    /// `application/merge-patch+json` (RFC 7386).
    Merge,
    /// `application/strategic-merge-patch+json`.
    Strategic,
    /// `application/apply-patch+yaml` (server-side apply).
    Apply,
}

impl PatchType {
    /// The request Content-Type of this patch type.
    pub fn content_type(self) -> &'static str {
        match self {
            PatchType::Json => "application/json-patch+json",
            PatchType::Merge => "application/merge-patch+json",
            PatchType::Strategic => "application/strategic-merge-patch+json",
            PatchType::Apply => "application/apply-patch+yaml",
        }
    }
}

impl fmt::Display for PatchType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PatchType::Json => "JSON patch",
            PatchType::Merge => "JSON merge patch",
            PatchType::Strategic => "strategic merge patch",
            PatchType::Apply => "apply patch",
        })
    }
}

/// Maps a request Content-Type (ignoring parameters like charset) to a patch type:
/// application/json-patch+json, application/merge-patch+json, application/strategic-merge-patch+json, application/apply-patch+yaml.
pub fn patch_type_for(content_type: &str) -> Option<PatchType> {
    let media_type = content_type.split(';').next().unwrap_or_default().trim();
    [PatchType::Json, PatchType::Merge, PatchType::Strategic, PatchType::Apply]
        .into_iter()
        .find(|t| t.content_type().eq_ignore_ascii_case(media_type))
}

#[derive(Debug, thiserror::Error)]
pub enum PatchError {
    /// The body does not parse, or is not the shape its patch type requires.
    #[error("invalid {patch_type}: {reason}")]
    InvalidBody { patch_type: PatchType, reason: String },
    #[error("JSON patch has {count} operations, more than the allowed maximum of {max}")]
    TooManyOperations { count: usize, max: usize },
    #[error("JSON patch operation {index} ({op} {path}) failed: the test value did not match")]
    TestFailed { index: usize, op: &'static str, path: String },
    #[error("JSON patch operation {index} ({op}) failed: path {path:?} does not exist")]
    PathNotFound { index: usize, op: &'static str, path: String },
    #[error("JSON patch operation {index} ({op} {path}) failed: {reason}")]
    OperationFailed { index: usize, op: &'static str, path: String, reason: String },
    /// The object to patch, or the result of a JSON patch, is not a JSON object.
    #[error("{patch_type}: a Kubernetes object must be a JSON object, found {found}")]
    NotAnObject { patch_type: PatchType, found: &'static str },
    #[error("strategic merge patch is not supported for {definition}; use a JSON merge patch")]
    StrategicNotSupported { definition: String },
    /// A strategic merge patch that breaks its own rules: a bad directive, a list item without its
    /// merge key, an order list that contradicts the patch. `path` locates it in the patch.
    #[error("invalid strategic merge patch{}: {message}", if path.is_empty() { String::new() } else { format!(" at {path}") })]
    InvalidStrategicPatch { path: String, message: String },
    #[error("server-side apply (application/apply-patch+yaml) is not supported by apply_patch")]
    ApplyNotSupported,
}

/// Applies a patch body to the original object. `definition` is the object's OpenAPI definition
/// name (from `ResourceInfo::definition`); only strategic merge patch needs it.
///
/// Server-side apply needs field managers and managed fields, which live above this crate, so
/// [`PatchType::Apply`] is refused with [`PatchError::ApplyNotSupported`].
pub fn apply_patch(definition: &str, original: &Value, patch_type: PatchType, body: &[u8]) -> Result<Value, PatchError> {
    match patch_type {
        PatchType::Json => json_patch(original, body),
        PatchType::Merge => {
            let patch = parse_object(patch_type, body)?;
            let mut patched = original.clone();
            json_patch::merge(&mut patched, &patch);
            Ok(patched)
        }
        PatchType::Strategic => {
            // Like the apiserver, an unsupported type is refused before the body is looked at.
            if !schema::is_known(definition) {
                return Err(PatchError::StrategicNotSupported { definition: definition.to_string() });
            }
            let patch = parse_object(patch_type, body)?;
            strategic_merge(definition, original, &patch)
        }
        PatchType::Apply => Err(PatchError::ApplyNotSupported),
    }
}

/// Applies a strategic merge patch (already parsed) to `original`, an object of OpenAPI
/// definition `definition`.
pub fn strategic_merge(definition: &str, original: &Value, patch: &Value) -> Result<Value, PatchError> {
    let Some(ty) = schema::Ty::of(definition) else {
        return Err(PatchError::StrategicNotSupported { definition: definition.to_string() });
    };
    let Value::Object(patch) = patch else {
        return Err(PatchError::InvalidBody { patch_type: PatchType::Strategic, reason: format!("expected a JSON object, found {}", kind_name(patch)) });
    };
    let original = match original {
        Value::Object(map) => map.clone(),
        Value::Null => serde_json::Map::new(),
        other => return Err(PatchError::NotAnObject { patch_type: PatchType::Strategic, found: kind_name(other) }),
    };
    strategic::merge_map(original, patch.clone(), ty)
        .map(Value::Object)
        .map_err(|e| PatchError::InvalidStrategicPatch { path: e.path(), message: e.message })
}

/// Patch metadata of one field of a definition, as Kubernetes publishes it in OpenAPI
/// (x-kubernetes-patch-strategy / x-kubernetes-patch-merge-key); used by the OpenAPI generator too.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PatchMeta {
    /// "merge", "replace", "retainKeys", "merge,retainKeys"
    pub strategy: &'static str,
    pub merge_key: Option<&'static str>,
}

/// The patch metadata Kubernetes' Go struct tags give `field` of `definition`; `None` for fields
/// without a tag (lists are then replaced wholesale, maps merged key by key).
pub fn patch_meta(definition: &str, field: &str) -> Option<PatchMeta> {
    meta::TABLE.iter().find(|(d, f, _)| *d == definition && *f == field).map(|(_, _, m)| *m)
}

fn parse_object(patch_type: PatchType, body: &[u8]) -> Result<Value, PatchError> {
    match serde_json::from_slice::<Value>(body) {
        Ok(patch @ Value::Object(_)) => Ok(patch),
        Ok(other) => Err(PatchError::InvalidBody { patch_type, reason: format!("expected a JSON object, found {}", kind_name(&other)) }),
        Err(e) => Err(PatchError::InvalidBody { patch_type, reason: format!("malformed JSON: {e}") }),
    }
}

fn json_patch(original: &Value, body: &[u8]) -> Result<Value, PatchError> {
    let invalid = |reason: String| PatchError::InvalidBody { patch_type: PatchType::Json, reason };
    let raw: Value = serde_json::from_slice(body).map_err(|e| invalid(format!("malformed JSON: {e}")))?;
    let Value::Array(raw_ops) = &raw else {
        return Err(invalid(format!("expected a JSON array of operations, found {}", kind_name(&raw))));
    };
    if raw_ops.len() > MAX_JSON_PATCH_OPERATIONS {
        return Err(PatchError::TooManyOperations { count: raw_ops.len(), max: MAX_JSON_PATCH_OPERATIONS });
    }
    let ops: json_patch::Patch = serde_json::from_value(raw).map_err(|e| invalid(format!("malformed operation: {e}")))?;
    let mut patched = original.clone();
    json_patch::patch(&mut patched, &ops).map_err(|e| json_patch_error(e, &ops))?;
    if !patched.is_object() {
        return Err(PatchError::NotAnObject { patch_type: PatchType::Json, found: kind_name(&patched) });
    }
    Ok(patched)
}

fn json_patch_error(e: json_patch::PatchError, ops: &json_patch::Patch) -> PatchError {
    use json_patch::{PatchErrorKind, PatchOperation};
    let (op, from) = match ops.0.get(e.operation) {
        Some(PatchOperation::Add(_)) => ("add", None),
        Some(PatchOperation::Remove(_)) => ("remove", None),
        Some(PatchOperation::Replace(_)) => ("replace", None),
        Some(PatchOperation::Move(m)) => ("move", Some(m.from.to_string())),
        Some(PatchOperation::Copy(c)) => ("copy", Some(c.from.to_string())),
        Some(PatchOperation::Test(_)) => ("test", None),
        None => ("unknown", None),
    };
    let index = e.operation;
    let path = e.path.to_string();
    match e.kind {
        PatchErrorKind::TestFailed => PatchError::TestFailed { index, op, path },
        PatchErrorKind::InvalidPointer => PatchError::PathNotFound { index, op, path },
        PatchErrorKind::InvalidFromPointer => PatchError::PathNotFound { index, op, path: from.unwrap_or(path) },
        kind => PatchError::OperationFailed { index, op, path, reason: kind.to_string() },
    }
}

fn kind_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}
