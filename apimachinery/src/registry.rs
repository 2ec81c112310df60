//! The resources rkube serves: names, scope, subresources, verbs, and the typed schema behind each
//! (the k8s-openapi type used for unknown-field detection and for OpenAPI documents).

use std::sync::OnceLock;

use serde_json::Value;

/// The Kubernetes version whose API we serve (k8s-openapi feature `v1_33`).
pub const KUBERNETES_VERSION: &str = "v1.33.0";

pub type RoundTrip = fn(&Value) -> Result<Value, String>;
pub type SchemaFn = fn(&mut schemars::SchemaGenerator) -> schemars::Schema;

#[derive(Clone, Copy)]
pub struct ResourceInfo {
    /// API group; `""` for the core group.
    pub group: &'static str,
    pub version: &'static str,
    pub kind: &'static str,
    /// The plural resource name used in URLs (`pods`).
    pub plural: &'static str,
    pub singular: &'static str,
    pub namespaced: bool,
    pub short_names: &'static [&'static str],
    pub categories: &'static [&'static str],
    pub has_status: bool,
    pub has_scale: bool,
    /// Verbs on the main resource.
    pub verbs: &'static [&'static str],
    /// Deserializes into the typed struct and back: fails on wrong types, drops unknown fields.
    pub round_trip: RoundTrip,
    pub schema: SchemaFn,
    /// OpenAPI definition name (`io.k8s.api.core.v1.Pod`).
    pub definition: &'static str,
}

impl std::fmt::Debug for ResourceInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.gvr())
    }
}

impl ResourceInfo {
    pub fn api_version(&self) -> String {
        if self.group.is_empty() { self.version.to_string() } else { format!("{}/{}", self.group, self.version) }
    }

    pub fn gvr(&self) -> String {
        format!("{}/{}/{}", if self.group.is_empty() { "core" } else { self.group }, self.version, self.plural)
    }

    /// `pods` or `deployments.apps`, as Kubernetes names a resource in messages.
    pub fn group_resource(&self) -> String {
        if self.group.is_empty() { self.plural.to_string() } else { format!("{}.{}", self.plural, self.group) }
    }

    /// The storage key prefix: `/registry/<group>/<plural>/`.
    pub fn key_prefix(&self) -> String {
        format!("/registry/{}/{}/", if self.group.is_empty() { "core" } else { self.group }, self.plural)
    }

    /// The storage key of one object.
    pub fn key(&self, namespace: Option<&str>, name: &str) -> String {
        match (self.namespaced, namespace) {
            (true, Some(ns)) => format!("{}{ns}/{name}", self.key_prefix()),
            _ => format!("{}{name}", self.key_prefix()),
        }
    }

    /// The storage prefix of a list (all namespaces when `namespace` is `None`).
    pub fn list_prefix(&self, namespace: Option<&str>) -> String {
        match (self.namespaced, namespace) {
            (true, Some(ns)) => format!("{}{ns}/", self.key_prefix()),
            _ => self.key_prefix(),
        }
    }
}

const RW: &[&str] = &["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"];
const ALL: &[&str] = &["all"];

macro_rules! typed {
    ($t:ty) => {
        (
            (|v: &Value| -> Result<Value, String> {
                let typed: $t = serde_json::from_value(v.clone()).map_err(|e| e.to_string())?;
                serde_json::to_value(&typed).map_err(|e| e.to_string())
            }) as RoundTrip,
            (|g: &mut schemars::SchemaGenerator| g.subschema_for::<$t>()) as SchemaFn,
            <$t as schemars::JsonSchema>::schema_name,
        )
    };
}

macro_rules! res {
    ($group:expr, $version:expr, $kind:expr, $plural:expr, $singular:expr, $namespaced:expr, $short:expr, $cats:expr, $status:expr, $scale:expr, $t:ty) => {{
        let (round_trip, schema, name) = typed!($t);
        ResourceInfo {
            group: $group,
            version: $version,
            kind: $kind,
            plural: $plural,
            singular: $singular,
            namespaced: $namespaced,
            short_names: $short,
            categories: $cats,
            has_status: $status,
            has_scale: $scale,
            verbs: RW,
            round_trip,
            schema,
            definition: leak(name()),
        }
    }};
}

fn leak(s: std::borrow::Cow<'static, str>) -> &'static str {
    match s {
        std::borrow::Cow::Borrowed(b) => b,
        std::borrow::Cow::Owned(o) => Box::leak(o.into_boxed_str()),
    }
}

use k8s_openapi::api::{apps::v1 as apps, autoscaling::v2 as autoscaling, batch::v1 as batch, coordination::v1 as coordination, core::v1 as core, discovery::v1 as discovery, events::v1 as events, policy::v1 as policy, rbac::v1 as rbac, scheduling::v1 as scheduling};

fn build() -> Vec<ResourceInfo> {
    let n = true;
    let c = false;
    vec![
        res!("", "v1", "Namespace", "namespaces", "namespace", c, &["ns"], &[], true, false, core::Namespace),
        res!("", "v1", "Node", "nodes", "node", c, &["no"], &[], true, false, core::Node),
        res!("", "v1", "Pod", "pods", "pod", n, &["po"], ALL, true, false, core::Pod),
        res!("", "v1", "Service", "services", "service", n, &["svc"], ALL, true, false, core::Service),
        res!("", "v1", "Endpoints", "endpoints", "endpoints", n, &["ep"], &[], false, false, core::Endpoints),
        res!("", "v1", "ConfigMap", "configmaps", "configmap", n, &["cm"], &[], false, false, core::ConfigMap),
        res!("", "v1", "Secret", "secrets", "secret", n, &[], &[], false, false, core::Secret),
        res!("", "v1", "ServiceAccount", "serviceaccounts", "serviceaccount", n, &["sa"], &[], false, false, core::ServiceAccount),
        res!("", "v1", "Event", "events", "event", n, &["ev"], &[], false, false, core::Event),
        res!("", "v1", "PersistentVolumeClaim", "persistentvolumeclaims", "persistentvolumeclaim", n, &["pvc"], &[], true, false, core::PersistentVolumeClaim),
        res!("", "v1", "PersistentVolume", "persistentvolumes", "persistentvolume", c, &["pv"], &[], true, false, core::PersistentVolume),
        res!("", "v1", "LimitRange", "limitranges", "limitrange", n, &["limits"], &[], false, false, core::LimitRange),
        res!("", "v1", "ResourceQuota", "resourcequotas", "resourcequota", n, &["quota"], &[], true, false, core::ResourceQuota),
        res!("", "v1", "ReplicationController", "replicationcontrollers", "replicationcontroller", n, &["rc"], ALL, true, true, core::ReplicationController),
        res!("apps", "v1", "Deployment", "deployments", "deployment", n, &["deploy"], ALL, true, true, apps::Deployment),
        res!("apps", "v1", "ReplicaSet", "replicasets", "replicaset", n, &["rs"], ALL, true, true, apps::ReplicaSet),
        res!("apps", "v1", "DaemonSet", "daemonsets", "daemonset", n, &["ds"], ALL, true, false, apps::DaemonSet),
        res!("apps", "v1", "StatefulSet", "statefulsets", "statefulset", n, &["sts"], ALL, true, true, apps::StatefulSet),
        res!("apps", "v1", "ControllerRevision", "controllerrevisions", "controllerrevision", n, &[], &[], false, false, apps::ControllerRevision),
        res!("batch", "v1", "Job", "jobs", "job", n, &[], ALL, true, false, batch::Job),
        res!("batch", "v1", "CronJob", "cronjobs", "cronjob", n, &["cj"], ALL, true, false, batch::CronJob),
        res!("autoscaling", "v2", "HorizontalPodAutoscaler", "horizontalpodautoscalers", "horizontalpodautoscaler", n, &["hpa"], ALL, true, false, autoscaling::HorizontalPodAutoscaler),
        res!("coordination.k8s.io", "v1", "Lease", "leases", "lease", n, &[], &[], false, false, coordination::Lease),
        res!("discovery.k8s.io", "v1", "EndpointSlice", "endpointslices", "endpointslice", n, &[], &[], false, false, discovery::EndpointSlice),
        res!("events.k8s.io", "v1", "Event", "events", "event", n, &["ev"], &[], false, false, events::Event),
        res!("rbac.authorization.k8s.io", "v1", "Role", "roles", "role", n, &[], &[], false, false, rbac::Role),
        res!("rbac.authorization.k8s.io", "v1", "ClusterRole", "clusterroles", "clusterrole", c, &[], &[], false, false, rbac::ClusterRole),
        res!("rbac.authorization.k8s.io", "v1", "RoleBinding", "rolebindings", "rolebinding", n, &[], &[], false, false, rbac::RoleBinding),
        res!("rbac.authorization.k8s.io", "v1", "ClusterRoleBinding", "clusterrolebindings", "clusterrolebinding", c, &[], &[], false, false, rbac::ClusterRoleBinding),
        res!("policy", "v1", "PodDisruptionBudget", "poddisruptionbudgets", "poddisruptionbudget", n, &["pdb"], &[], true, false, policy::PodDisruptionBudget),
        res!("scheduling.k8s.io", "v1", "PriorityClass", "priorityclasses", "priorityclass", c, &["pc"], &[], false, false, scheduling::PriorityClass),
    ]
}

/// Every served resource.
pub fn resources() -> &'static [ResourceInfo] {
    static R: OnceLock<Vec<ResourceInfo>> = OnceLock::new();
    R.get_or_init(build)
}

/// Looks a resource up by group, version and plural name.
pub fn find(group: &str, version: &str, plural: &str) -> Option<&'static ResourceInfo> {
    resources().iter().find(|r| r.group == group && r.version == version && r.plural == plural)
}

/// Looks a resource up by `apiVersion` and `kind`.
pub fn find_kind(api_version: &str, kind: &str) -> Option<&'static ResourceInfo> {
    let (group, version) = split_api_version(api_version);
    resources().iter().find(|r| r.group == group && r.version == version && r.kind == kind)
}

/// Typed decoders of the bodies subresources take that are no stored resource (so have no
/// registry entry): `autoscaling/v1` Scale (`PUT .../scale`) and `v1` Binding (`pods/binding`).
pub fn subresource_round_trip(api_version: &str, kind: &str) -> Option<RoundTrip> {
    match (api_version, kind) {
        ("autoscaling/v1", "Scale") => Some(typed!(k8s_openapi::api::autoscaling::v1::Scale).0),
        ("v1", "Binding") => Some(typed!(core::Binding).0),
        _ => None,
    }
}

/// `apps/v1` → (`apps`, `v1`); `v1` → (``, `v1`).
pub fn split_api_version(api_version: &str) -> (&str, &str) {
    match api_version.split_once('/') {
        Some((g, v)) => (g, v),
        None => ("", api_version),
    }
}

/// Groups in discovery order (core first), each with its versions.
pub fn groups() -> Vec<(&'static str, Vec<&'static str>)> {
    let mut out: Vec<(&'static str, Vec<&'static str>)> = Vec::new();
    for r in resources() {
        match out.iter_mut().find(|(g, _)| *g == r.group) {
            Some((_, versions)) => {
                if !versions.contains(&r.version) {
                    versions.push(r.version);
                }
            }
            None => out.push((r.group, vec![r.version])),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookups_and_keys() {
        let pods = find("", "v1", "pods").unwrap();
        assert_eq!(pods.key(Some("default"), "web"), "/registry/core/pods/default/web");
        assert_eq!(pods.list_prefix(None), "/registry/core/pods/");
        assert_eq!(pods.definition, "io.k8s.api.core.v1.Pod");
        let ns = find_kind("v1", "Namespace").unwrap();
        assert_eq!(ns.key(None, "kube-system"), "/registry/core/namespaces/kube-system");
        let d = find_kind("apps/v1", "Deployment").unwrap();
        assert_eq!(d.group_resource(), "deployments.apps");
        assert!(d.has_scale);
        assert_eq!(groups()[0].0, "");
    }

    #[test]
    fn round_trip_drops_unknown_fields_and_rejects_wrong_types() {
        let cm = find("", "v1", "configmaps").unwrap();
        let v = serde_json::json!({"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"a"},"data":{"k":"v"},"bogus":1});
        let back = (cm.round_trip)(&v).unwrap();
        assert!(back.get("bogus").is_none());
        assert_eq!(back["data"]["k"], "v");
        let bad = serde_json::json!({"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"a"},"data":{"k":5}});
        assert!((cm.round_trip)(&bad).is_err());
    }

    #[test]
    fn subresource_bodies_decode_as_their_own_kinds() {
        let scale = subresource_round_trip("autoscaling/v1", "Scale").unwrap();
        let v = serde_json::json!({"apiVersion":"autoscaling/v1","kind":"Scale","metadata":{"name":"d"},"spec":{"replicas":3,"bogus":1}});
        let back = scale(&v).unwrap();
        assert_eq!(back["spec"]["replicas"], 3);
        assert!(back["spec"].get("bogus").is_none());
        // A Scale is not a Deployment: the resource's own decoder refuses it.
        let d = find_kind("apps/v1", "Deployment").unwrap();
        assert!((d.round_trip)(&v).is_err());
        let binding = subresource_round_trip("v1", "Binding").unwrap();
        let b = serde_json::json!({"apiVersion":"v1","kind":"Binding","metadata":{"name":"p"},"target":{"kind":"Node","name":"n1"}});
        assert_eq!(binding(&b).unwrap()["target"]["name"], "n1");
        assert!(binding(&serde_json::json!({"apiVersion":"v1","kind":"Binding","target":{"name":5}})).is_err());
        assert!(subresource_round_trip("v1", "Pod").is_none());
    }
}
