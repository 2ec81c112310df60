//! (stub until the defaulting module lands)
use crate::registry::ResourceInfo;
pub fn apply_defaults(_info: &ResourceInfo, _obj: &mut serde_json::Value) {}
