//! Field paths (`field.Path`) and error constructors (`field.Required`, `field.Invalid`, ...)
//! with the exact details apimachinery produces.

use serde_json::Value;

use super::{ErrorType, FieldError, go_quote};

/// A field path as Kubernetes prints it: `spec.containers[0].ports[1].name`, `data[key]`.
#[derive(Clone, Debug)]
pub(crate) struct Path(String);

impl Path {
    pub(crate) fn root(name: &str) -> Path {
        Path(name.to_string())
    }
    pub(crate) fn new(parts: &[&str]) -> Path {
        let mut p = Path(String::new());
        for part in parts {
            p = p.child(part);
        }
        p
    }
    pub(crate) fn child(&self, name: &str) -> Path {
        if self.0.is_empty() { Path(name.to_string()) } else { Path(format!("{}.{name}", self.0)) }
    }
    pub(crate) fn index(&self, i: usize) -> Path {
        Path(format!("{}[{i}]", self.0))
    }
    pub(crate) fn key(&self, k: &str) -> Path {
        Path(format!("{}[{k}]", self.0))
    }
    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }
}

pub(crate) type Errs = Vec<FieldError>;

pub(crate) fn required(p: &Path, detail: &str) -> FieldError {
    FieldError::new(ErrorType::Required, p.as_str(), Some(Value::String(String::new())), detail)
}

pub(crate) fn invalid(p: &Path, value: impl Into<Value>, detail: impl Into<String>) -> FieldError {
    FieldError::new(ErrorType::Invalid, p.as_str(), Some(value.into()), detail)
}

pub(crate) fn forbidden(p: &Path, detail: impl Into<String>) -> FieldError {
    FieldError::new(ErrorType::Forbidden, p.as_str(), Some(Value::String(String::new())), detail)
}

pub(crate) fn duplicate(p: &Path, value: impl Into<Value>) -> FieldError {
    FieldError::new(ErrorType::Duplicate, p.as_str(), Some(value.into()), "")
}

pub(crate) fn not_found(p: &Path, value: impl Into<Value>) -> FieldError {
    FieldError::new(ErrorType::NotFound, p.as_str(), Some(value.into()), "")
}

/// `field.NotSupported`: the detail lists the allowed values Go-quoted, in the order given
/// (Kubernetes passes sorted lists for sets, declaration order otherwise).
pub(crate) fn not_supported(p: &Path, value: impl Into<Value>, valid: &[&str]) -> FieldError {
    let detail = if valid.is_empty() {
        String::new()
    } else {
        format!("supported values: {}", valid.iter().map(|v| go_quote(v)).collect::<Vec<_>>().join(", "))
    };
    FieldError::new(ErrorType::NotSupported, p.as_str(), Some(value.into()), detail)
}

/// `field.TooLong`; the value is never printed.
pub(crate) fn too_long(p: &Path, max: usize) -> FieldError {
    let unit = if max == 1 { "byte" } else { "bytes" };
    FieldError::new(ErrorType::TooLong, p.as_str(), None, format!("may not be more than {max} {unit}"))
}

pub(crate) fn too_many(p: &Path, actual: usize, max: usize) -> FieldError {
    let unit = if max == 1 { "item" } else { "items" };
    FieldError::new(ErrorType::TooMany, p.as_str(), Some(Value::from(actual)), format!("must have at most {max} {unit}"))
}

/// `ValidateNonnegativeField`.
pub(crate) fn nonnegative(v: &Value, p: &Path) -> Option<FieldError> {
    match super::json::J::int(v) {
        Some(n) if n < 0 => Some(invalid(p, n, "must be greater than or equal to 0")),
        _ => None,
    }
}

/// `ValidateImmutableField`, comparing semantically (absent == empty).
pub(crate) fn immutable(new: &Value, old: &Value, p: &Path) -> Option<FieldError> {
    if super::json::sem_eq(new, old) { None } else { Some(invalid(p, new.clone(), "field is immutable")) }
}
