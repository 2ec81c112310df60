//! (stub until the patch module lands)
pub enum PatchType { Json, Merge, Strategic, Apply }
#[derive(Debug, thiserror::Error)]
pub enum PatchError { #[error("{0}")] Invalid(String) }
pub struct PatchMeta { pub strategy: &'static str, pub merge_key: Option<&'static str> }
pub fn patch_meta(_definition: &str, _field: &str) -> Option<PatchMeta> { None }
pub fn patch_type_for(content_type: &str) -> Option<PatchType> {
    match content_type.split(';').next().unwrap_or("").trim() {
        "application/json-patch+json" => Some(PatchType::Json),
        "application/merge-patch+json" => Some(PatchType::Merge),
        "application/strategic-merge-patch+json" => Some(PatchType::Strategic),
        "application/apply-patch+yaml" => Some(PatchType::Apply),
        _ => None,
    }
}
pub fn apply_patch(_definition: &str, original: &serde_json::Value, patch_type: PatchType, body: &[u8]) -> Result<serde_json::Value, PatchError> {
    let patch: serde_json::Value = serde_json::from_slice(body).map_err(|e| PatchError::Invalid(e.to_string()))?;
    let mut out = original.clone();
    match patch_type {
        PatchType::Json => { let p: json_patch::Patch = serde_json::from_value(patch).map_err(|e| PatchError::Invalid(e.to_string()))?; json_patch::patch(&mut out, &p).map_err(|e| PatchError::Invalid(e.to_string()))?; }
        _ => json_patch::merge(&mut out, &patch),
    }
    Ok(out)
}
