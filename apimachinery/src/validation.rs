//! Kubernetes validation (the `pkg/apis/*/validation` packages of kube-apiserver v1.33) on JSON
//! objects, with the same field paths, error types and messages, so that clients which parse
//! `Status` causes or match error strings see what a real API server would send.
//!
//! [`validate_create`] and [`validate_update`] expect an object that already went through
//! [`crate::defaults::apply_defaults`], as kube-apiserver validates after defaulting: a missing
//! defaulted field (say `spec.dnsPolicy`) is reported as `Required value`, as Kubernetes does.
//!
//! Server-owned metadata (`uid`, `resourceVersion`, `generation`, `creationTimestamp`,
//! `managedFields`) and the cluster-scope rule for `metadata.namespace` are left to the caller.

use std::fmt;

use serde_json::Value;

use crate::registry::ResourceInfo;

mod apps;
mod batch;
mod core;
mod cron;
mod json;
mod meta;
pub mod names;
mod others;
mod path;
mod pod;
pub mod quantity;
mod workloads;

pub use names::{
    is_config_map_key, is_dns1035_label, is_dns1123_label, is_dns1123_subdomain, is_env_var_name, is_qualified_name,
    is_valid_label_value, is_valid_port_name,
};
pub use quantity::Quantity;

/// The kind of a field error; mirrors `field.ErrorType` of apimachinery.
#[derive(Debug, Clone, PartialEq)]
pub enum ErrorType {
    Required,
    Invalid,
    NotSupported,
    Duplicate,
    Forbidden,
    TooLong,
    TooMany,
    NotFound,
}

impl ErrorType {
    /// The text Kubernetes prints for the type (`field.ErrorType.String()`).
    fn text(&self) -> &'static str {
        match self {
            ErrorType::Required => "Required value",
            ErrorType::Invalid => "Invalid value",
            ErrorType::NotSupported => "Unsupported value",
            ErrorType::Duplicate => "Duplicate value",
            ErrorType::Forbidden => "Forbidden",
            ErrorType::TooLong => "Too long",
            ErrorType::TooMany => "Too many",
            ErrorType::NotFound => "Not found",
        }
    }
}

/// One validation failure: a field path, what is wrong, the offending value and an explanation.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldError {
    pub error_type: ErrorType,
    /// The field path as Kubernetes prints it, e.g. `spec.containers[0].image`.
    pub field: String,
    /// The offending value; `None` when Kubernetes omits it from the message.
    pub value: Option<Value>,
    pub detail: String,
}

impl FieldError {
    pub fn new(error_type: ErrorType, field: impl Into<String>, value: Option<Value>, detail: impl Into<String>) -> Self {
        FieldError { error_type, field: field.into(), value, detail: detail.into() }
    }

    /// The Kubernetes Status cause reason: FieldValueRequired, FieldValueInvalid,
    /// FieldValueNotSupported, FieldValueDuplicate, FieldValueForbidden, FieldValueTooLong,
    /// FieldValueTooMany, FieldValueNotFound.
    pub fn reason(&self) -> &'static str {
        match self.error_type {
            ErrorType::Required => "FieldValueRequired",
            ErrorType::Invalid => "FieldValueInvalid",
            ErrorType::NotSupported => "FieldValueNotSupported",
            ErrorType::Duplicate => "FieldValueDuplicate",
            ErrorType::Forbidden => "FieldValueForbidden",
            ErrorType::TooLong => "FieldValueTooLong",
            ErrorType::TooMany => "FieldValueTooMany",
            ErrorType::NotFound => "FieldValueNotFound",
        }
    }

    /// The message without the field: `Invalid value: "Foo_": a lowercase RFC 1123 ...`
    /// (`field.Error.ErrorBody()`); this is what a Status cause carries as `message`.
    pub fn body(&self) -> String {
        let mut s = String::from(self.error_type.text());
        // Kubernetes never prints the value of these types, even when one was recorded.
        let hide_value = matches!(self.error_type, ErrorType::Required | ErrorType::Forbidden | ErrorType::TooLong);
        if !hide_value && let Some(v) = &self.value {
            s.push_str(": ");
            s.push_str(&format_value(v));
        }
        if !self.detail.is_empty() {
            s.push_str(": ");
            s.push_str(&self.detail);
        }
        s
    }

    /// The message exactly as Kubernetes formats it: `spec.containers[0].image: Required value`,
    /// `metadata.name: Invalid value: "Foo_": a lowercase RFC 1123 subdomain must consist of ...`
    pub fn message(&self) -> String {
        format!("{}: {}", self.field, self.body())
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message())
    }
}

impl std::error::Error for FieldError {}

/// Prints a bad value the way `ErrorBody` does: strings Go-quoted (`%q`), numbers and booleans
/// bare, string lists and maps as Go's `%#v` prints `[]string` and `map[string]string`
/// (labels, cluster IPs). Go prints other structs with `%#v`, which has no JSON equivalent, so
/// those are printed as compact JSON.
fn format_value(v: &Value) -> String {
    match v {
        Value::String(s) => go_quote(s),
        Value::Null => "null".to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::Array(a) if !a.is_empty() && a.iter().all(Value::is_string) => {
            let items: Vec<String> = a.iter().map(|s| go_quote(s.as_str().unwrap_or(""))).collect();
            format!("[]string{{{}}}", items.join(", "))
        }
        Value::Object(m) if !m.is_empty() && m.values().all(Value::is_string) => {
            let mut items: Vec<(&String, &Value)> = m.iter().collect();
            items.sort_by(|a, b| a.0.cmp(b.0));
            let items: Vec<String> = items.iter().map(|(k, v)| format!("{}:{}", go_quote(k), go_quote(v.as_str().unwrap_or("")))).collect();
            format!("map[string]string{{{}}}", items.join(", "))
        }
        other => other.to_string(),
    }
}

/// Go's `strconv.Quote`: printable characters kept, the rest escaped.
pub(crate) fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{07}' => out.push_str("\\a"),
            '\u{08}' => out.push_str("\\b"),
            '\u{0b}' => out.push_str("\\v"),
            '\u{0c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => out.push_str(&format!("\\x{:02x}", c as u32)),
            c if c.is_control() => {
                if (c as u32) <= 0xffff {
                    out.push_str(&format!("\\u{:04x}", c as u32))
                } else {
                    out.push_str(&format!("\\U{:08x}", c as u32))
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Validates an object about to be created (`strategy.Validate`).
pub fn validate_create(info: &ResourceInfo, obj: &Value) -> Vec<FieldError> {
    match (info.group, info.kind) {
        ("", "Pod") => pod::pod_create(obj),
        ("", "Service") => core::service(obj, None),
        ("", "Namespace") => core::namespace(obj),
        ("", "Node") => core::node(obj),
        ("", "ConfigMap") => core::config_map(obj),
        ("", "Secret") => core::secret(obj),
        ("", "ServiceAccount") => meta::object_meta(obj, true, names::name_is_dns_subdomain),
        ("", "Endpoints") => core::endpoints(obj),
        ("", "Event") => others::core_event(obj, None),
        ("", "PersistentVolumeClaim") => core::pvc(obj),
        ("", "PersistentVolume") => core::pv(obj),
        ("", "LimitRange") => core::limit_range(obj),
        ("", "ResourceQuota") => core::resource_quota(obj),
        ("", "ReplicationController") => workloads::replication_controller(obj),
        ("apps", "Deployment") => apps::deployment(obj),
        ("apps", "ReplicaSet") => apps::replica_set(obj),
        ("apps", "DaemonSet") => apps::daemon_set(obj),
        ("apps", "StatefulSet") => apps::stateful_set(obj),
        ("apps", "ControllerRevision") => apps::controller_revision(obj),
        ("batch", "Job") => batch::job_create(obj),
        ("batch", "CronJob") => batch::cron_job(obj, None),
        ("autoscaling", "HorizontalPodAutoscaler") => others::hpa(obj),
        ("coordination.k8s.io", "Lease") => others::lease(obj),
        ("discovery.k8s.io", "EndpointSlice") => others::endpoint_slice(obj, None),
        ("events.k8s.io", "Event") => others::events_event(obj, None),
        ("rbac.authorization.k8s.io", "Role") => others::role(obj, true),
        ("rbac.authorization.k8s.io", "ClusterRole") => others::role(obj, false),
        ("rbac.authorization.k8s.io", "RoleBinding") => others::role_binding(obj, true),
        ("rbac.authorization.k8s.io", "ClusterRoleBinding") => others::role_binding(obj, false),
        ("policy", "PodDisruptionBudget") => others::pdb(obj),
        ("scheduling.k8s.io", "PriorityClass") => others::priority_class(obj),
        _ => meta::object_meta(obj, info.namespaced, names::name_is_dns_subdomain),
    }
}

/// Validates an update of `old` into `new` (`strategy.ValidateUpdate`): the new object's own
/// rules, metadata update rules and the fields that may not change ("field is immutable").
pub fn validate_update(info: &ResourceInfo, old: &Value, new: &Value) -> Vec<FieldError> {
    let mut errs = meta::object_meta_update(new, old);
    let kind_errs = match (info.group, info.kind) {
        ("", "Pod") => pod::pod_update(new, old),
        ("", "Service") => core::service(new, Some(old)),
        ("", "Namespace") => core::namespace_update(new),
        ("", "Node") => core::node_update(new, old),
        ("", "ConfigMap") => core::config_map_update(new, old),
        ("", "Secret") => core::secret_update(new, old),
        ("", "ServiceAccount") => meta::object_meta(new, true, names::name_is_dns_subdomain),
        ("", "Endpoints") => core::endpoints(new),
        ("", "Event") => others::core_event(new, Some(old)),
        ("", "PersistentVolumeClaim") => core::pvc_update(new, old),
        ("", "PersistentVolume") => core::pv_update(new, old),
        ("", "LimitRange") => core::limit_range_spec(new),
        ("", "ResourceQuota") => core::resource_quota_update(new, old),
        ("", "ReplicationController") => workloads::replication_controller_spec(new),
        ("apps", "Deployment") => apps::deployment_update(new, old),
        ("apps", "ReplicaSet") => apps::replica_set_update(new, old),
        ("apps", "DaemonSet") => apps::daemon_set_update(new, old),
        ("apps", "StatefulSet") => apps::stateful_set_update(new, old),
        ("apps", "ControllerRevision") => apps::controller_revision_update(new, old),
        ("batch", "Job") => batch::job_update(new, old),
        ("batch", "CronJob") => batch::cron_job(new, Some(old)),
        ("autoscaling", "HorizontalPodAutoscaler") => others::hpa_spec(new),
        ("coordination.k8s.io", "Lease") => others::lease_spec(new),
        ("discovery.k8s.io", "EndpointSlice") => others::endpoint_slice(new, Some(old)),
        ("events.k8s.io", "Event") => others::events_event(new, Some(old)),
        ("rbac.authorization.k8s.io", "Role") => others::role_rules(new, true),
        ("rbac.authorization.k8s.io", "ClusterRole") => others::role_rules(new, false),
        ("rbac.authorization.k8s.io", "RoleBinding") => others::role_binding_update(new, old, true),
        ("rbac.authorization.k8s.io", "ClusterRoleBinding") => others::role_binding_update(new, old, false),
        ("policy", "PodDisruptionBudget") => others::pdb_spec(new),
        ("scheduling.k8s.io", "PriorityClass") => others::priority_class_update(new, old),
        _ => Vec::new(),
    };
    errs.extend(kind_errs);
    errs
}

/// The `message` of the `422 Invalid` Status Kubernetes returns for these errors:
/// `Deployment.apps "web" is invalid: [spec.replicas: ..., ...]` (`errors.NewInvalid`, which
/// drops repeated messages and brackets only lists of more than one).
pub fn invalid_message(info: &ResourceInfo, name: &str, errs: &[FieldError]) -> String {
    let kind = if info.group.is_empty() { info.kind.to_string() } else { format!("{}.{}", info.kind, info.group) };
    let mut seen = std::collections::HashSet::new();
    let msgs: Vec<String> = errs.iter().map(|e| e.message()).filter(|m| seen.insert(m.clone())).collect();
    let joined = match msgs.len() {
        0 => String::new(),
        1 => msgs[0].clone(),
        _ => format!("[{}]", msgs.join(", ")),
    };
    format!("{kind} {} is invalid: {joined}", go_quote(name))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn messages_follow_error_body() {
        let e = FieldError::new(ErrorType::Required, "spec.containers[0].image", Some(json!("")), "");
        assert_eq!(e.message(), "spec.containers[0].image: Required value");
        assert_eq!(e.reason(), "FieldValueRequired");
        let e = FieldError::new(ErrorType::Invalid, "spec.replicas", Some(json!(-1)), "must be greater than or equal to 0");
        assert_eq!(e.message(), "spec.replicas: Invalid value: -1: must be greater than or equal to 0");
        let e = FieldError::new(ErrorType::NotSupported, "spec.type", Some(json!("Foo")), "supported values: \"ClusterIP\"");
        assert_eq!(e.message(), "spec.type: Unsupported value: \"Foo\": supported values: \"ClusterIP\"");
        let e = FieldError::new(ErrorType::TooLong, "data", Some(json!("")), "may not be more than 1048576 bytes");
        assert_eq!(e.message(), "data: Too long: may not be more than 1048576 bytes");
        let e = FieldError::new(ErrorType::TooMany, "endpoints", None, "must have at most 1000 items");
        assert_eq!(e.message(), "endpoints: Too many: must have at most 1000 items");
        assert_eq!(go_quote("a\"b\\c\n\u{1}é"), "\"a\\\"b\\\\c\\n\\x01é\"");
        assert_eq!(format_value(&json!(["10.0.0.1", "::1"])), "[]string{\"10.0.0.1\", \"::1\"}");
        assert_eq!(format_value(&json!({"b": "2", "a": "1"})), "map[string]string{\"a\":\"1\", \"b\":\"2\"}");
        assert_eq!(format_value(&json!({"port": 80})), "{\"port\":80}");
    }
}
