//! API errors, rendered in one place as Kubernetes `Status` objects with the reason and code
//! clients (kubectl, client-go, the Python client) switch on.

use serde_json::{Value, json};

/// One field-level cause of an `Invalid` error.
#[derive(Debug, Clone, PartialEq)]
pub struct Cause {
    /// `FieldValueRequired`, `FieldValueInvalid`, ...
    pub reason: String,
    pub message: String,
    /// `spec.containers[0].image`
    pub field: String,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ApiError {
    BadRequest(String),
    Unauthorized(String),
    Forbidden(String),
    NotFound { group_resource: String, name: String },
    /// The route or resource type does not exist.
    NotFoundPath(String),
    MethodNotAllowed(String),
    AlreadyExists { group: String, resource: String, name: String },
    Conflict { group_resource: String, name: String, message: String },
    Gone(String),
    RequestEntityTooLarge(String),
    UnsupportedMediaType(String),
    NotAcceptable(String),
    Invalid { group: String, kind: String, name: String, causes: Vec<Cause> },
    ServiceUnavailable(String),
    Timeout(String),
    Internal(String),
}

impl ApiError {
    pub fn code(&self) -> u16 {
        match self {
            ApiError::BadRequest(_) => 400,
            ApiError::Unauthorized(_) => 401,
            ApiError::Forbidden(_) => 403,
            ApiError::NotFound { .. } | ApiError::NotFoundPath(_) => 404,
            ApiError::MethodNotAllowed(_) => 405,
            ApiError::NotAcceptable(_) => 406,
            ApiError::AlreadyExists { .. } | ApiError::Conflict { .. } => 409,
            ApiError::Gone(_) => 410,
            ApiError::RequestEntityTooLarge(_) => 413,
            ApiError::UnsupportedMediaType(_) => 415,
            ApiError::Invalid { .. } => 422,
            ApiError::Internal(_) => 500,
            ApiError::ServiceUnavailable(_) => 503,
            ApiError::Timeout(_) => 504,
        }
    }

    pub fn reason(&self) -> &'static str {
        match self {
            ApiError::BadRequest(_) => "BadRequest",
            ApiError::Unauthorized(_) => "Unauthorized",
            ApiError::Forbidden(_) => "Forbidden",
            ApiError::NotFound { .. } | ApiError::NotFoundPath(_) => "NotFound",
            ApiError::MethodNotAllowed(_) => "MethodNotAllowed",
            ApiError::NotAcceptable(_) => "NotAcceptable",
            ApiError::AlreadyExists { .. } => "AlreadyExists",
            ApiError::Conflict { .. } => "Conflict",
            ApiError::Gone(_) => "Expired",
            ApiError::RequestEntityTooLarge(_) => "RequestEntityTooLarge",
            ApiError::UnsupportedMediaType(_) => "UnsupportedMediaType",
            ApiError::Invalid { .. } => "Invalid",
            ApiError::ServiceUnavailable(_) => "ServiceUnavailable",
            ApiError::Timeout(_) => "Timeout",
            ApiError::Internal(_) => "InternalError",
        }
    }

    pub fn message(&self) -> String {
        match self {
            ApiError::NotFound { group_resource, name } => format!("{group_resource} \"{name}\" not found"),
            ApiError::AlreadyExists { group, resource, name } => {
                let gr = if group.is_empty() { resource.clone() } else { format!("{resource}.{group}") };
                format!("{gr} \"{name}\" already exists")
            }
            ApiError::Conflict { group_resource, name, message } => {
                format!("Operation cannot be fulfilled on {group_resource} \"{name}\": {message}")
            }
            ApiError::Invalid { group, kind, name, causes } => {
                let gk = if group.is_empty() { kind.clone() } else { format!("{kind}.{group}") };
                let list: Vec<String> =
                    causes.iter().map(|c| if c.field.is_empty() { c.message.clone() } else { format!("{}: {}", c.field, c.message) }).collect();
                if list.len() == 1 {
                    format!("{gk} \"{name}\" is invalid: {}", list[0])
                } else {
                    format!("{gk} \"{name}\" is invalid: [{}]", list.join(", "))
                }
            }
            ApiError::BadRequest(m)
            | ApiError::Unauthorized(m)
            | ApiError::Forbidden(m)
            | ApiError::NotFoundPath(m)
            | ApiError::MethodNotAllowed(m)
            | ApiError::NotAcceptable(m)
            | ApiError::Gone(m)
            | ApiError::RequestEntityTooLarge(m)
            | ApiError::UnsupportedMediaType(m)
            | ApiError::ServiceUnavailable(m)
            | ApiError::Timeout(m)
            | ApiError::Internal(m) => m.clone(),
        }
    }

    /// The `Status` object.
    pub fn to_status(&self) -> Value {
        let mut status = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message(),
            "reason": self.reason(),
            "code": self.code(),
        });
        let details = match self {
            ApiError::NotFound { group_resource, name } => {
                let (resource, group) = group_resource.split_once('.').unwrap_or((group_resource, ""));
                Some(json!({"name": name, "group": group, "kind": resource}))
            }
            ApiError::AlreadyExists { group, resource, name } => Some(json!({"name": name, "group": group, "kind": resource})),
            ApiError::Conflict { group_resource, name, .. } => {
                let (resource, group) = group_resource.split_once('.').unwrap_or((group_resource, ""));
                Some(json!({"name": name, "group": group, "kind": resource}))
            }
            ApiError::Invalid { group, kind, name, causes } => Some(json!({
                "name": name,
                "group": group,
                "kind": kind,
                "causes": causes.iter().map(|c| json!({"reason": c.reason, "message": c.message, "field": c.field})).collect::<Vec<_>>(),
            })),
            ApiError::Timeout(_) | ApiError::ServiceUnavailable(_) => Some(json!({"retryAfterSeconds": 1})),
            _ => None,
        };
        if let Some(d) = details {
            status["details"] = d;
        }
        status
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({}): {}", self.reason(), self.code(), self.message())
    }
}

impl std::error::Error for ApiError {}

/// A `Status` of success (what DELETE of a collection and some subresources return).
pub fn success_status(details: Option<Value>) -> Value {
    let mut s = json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success"});
    if let Some(d) = details {
        s["details"] = d;
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_carry_kubernetes_reasons_and_messages() {
        let e = ApiError::NotFound { group_resource: "deployments.apps".into(), name: "web".into() };
        let s = e.to_status();
        assert_eq!(s["code"], 404);
        assert_eq!(s["reason"], "NotFound");
        assert_eq!(s["message"], "deployments.apps \"web\" not found");
        assert_eq!(s["details"]["group"], "apps");
        assert_eq!(s["details"]["kind"], "deployments");
        let e = ApiError::AlreadyExists { group: "".into(), resource: "pods".into(), name: "p".into() };
        assert_eq!(e.message(), "pods \"p\" already exists");
        let e = ApiError::Conflict {
            group_resource: "configmaps".into(),
            name: "c".into(),
            message: "the object has been modified; please apply your changes to the latest version and try again".into(),
        };
        assert_eq!(e.code(), 409);
        assert!(e.message().starts_with("Operation cannot be fulfilled on configmaps \"c\""));
        let e = ApiError::Invalid {
            group: "".into(),
            kind: "Pod".into(),
            name: "p".into(),
            causes: vec![Cause { reason: "FieldValueRequired".into(), message: "Required value".into(), field: "spec.containers".into() }],
        };
        let s = e.to_status();
        assert_eq!(s["code"], 422);
        assert_eq!(s["message"], "Pod \"p\" is invalid: spec.containers: Required value");
        assert_eq!(s["details"]["causes"][0]["field"], "spec.containers");
        assert_eq!(ApiError::Gone("too old".into()).to_status()["reason"], "Expired");
    }
}
