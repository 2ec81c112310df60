//! (stub until the validation module lands)
use crate::registry::ResourceInfo;
#[derive(Debug, Clone, PartialEq)]
pub enum ErrorType { Required, Invalid, NotSupported, Duplicate, Forbidden, TooLong, TooMany, NotFound }
#[derive(Debug, Clone)]
pub struct FieldError { pub error_type: ErrorType, pub field: String, pub value: Option<serde_json::Value>, pub detail: String }
impl FieldError {
    pub fn reason(&self) -> &'static str { "FieldValueInvalid" }
    pub fn message(&self) -> String { format!("{}: {}", self.field, self.detail) }
}
pub fn validate_create(_info: &ResourceInfo, _obj: &serde_json::Value) -> Vec<FieldError> { Vec::new() }
pub fn validate_update(_info: &ResourceInfo, _old: &serde_json::Value, _new: &serde_json::Value) -> Vec<FieldError> { Vec::new() }
