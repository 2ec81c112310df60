//! The patch strategies and merge keys of the served built-in types, transcribed from the
//! `patchStrategy` / `patchMergeKey` struct tags of k8s.io/api (Kubernetes 1.33). The k8s-openapi
//! schemas do not carry these extensions, so they have to be listed here.
//!
//! Fields absent from the table have no strategy: lists are replaced wholesale (tolerations,
//! readinessGates, taints, container args and command, containerStatuses, endpoint subsets), maps
//! are merged key by key. Fields that only carry `+listType=map` markers for server-side apply
//! (e.g. `resources.claims`) have no patch strategy, and neither do two fields sometimes assumed
//! to: `Container.resizePolicy` (`+listType=atomic`) and `DaemonSetSpec.updateStrategy`.

use super::PatchMeta;

const fn merge(key: &'static str) -> PatchMeta {
    PatchMeta { strategy: "merge", merge_key: Some(key) }
}

const fn merge_retain_keys(key: &'static str) -> PatchMeta {
    PatchMeta { strategy: "merge,retainKeys", merge_key: Some(key) }
}

/// A list of primitives merged as an ordered set.
const MERGE_PRIMITIVES: PatchMeta = PatchMeta { strategy: "merge", merge_key: None };

/// A struct whose fields are a union: `$retainKeys` clears the members the patch does not keep.
const RETAIN_KEYS: PatchMeta = PatchMeta { strategy: "retainKeys", merge_key: None };

pub(super) static TABLE: &[(&str, &str, PatchMeta)] = &[
    ("io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta", "finalizers", MERGE_PRIMITIVES),
    ("io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta", "ownerReferences", merge("uid")),
    // core/v1
    ("io.k8s.api.core.v1.PodSpec", "containers", merge("name")),
    ("io.k8s.api.core.v1.PodSpec", "initContainers", merge("name")),
    ("io.k8s.api.core.v1.PodSpec", "ephemeralContainers", merge("name")),
    ("io.k8s.api.core.v1.PodSpec", "volumes", merge_retain_keys("name")),
    ("io.k8s.api.core.v1.PodSpec", "imagePullSecrets", merge("name")),
    ("io.k8s.api.core.v1.PodSpec", "hostAliases", merge("ip")),
    ("io.k8s.api.core.v1.PodSpec", "topologySpreadConstraints", merge("topologyKey")),
    ("io.k8s.api.core.v1.PodSpec", "schedulingGates", merge("name")),
    ("io.k8s.api.core.v1.PodSpec", "resourceClaims", merge_retain_keys("name")),
    ("io.k8s.api.core.v1.Container", "ports", merge("containerPort")),
    ("io.k8s.api.core.v1.Container", "env", merge("name")),
    ("io.k8s.api.core.v1.Container", "volumeMounts", merge("mountPath")),
    ("io.k8s.api.core.v1.Container", "volumeDevices", merge("devicePath")),
    // EphemeralContainer inlines EphemeralContainerCommon, which repeats Container's tags.
    ("io.k8s.api.core.v1.EphemeralContainer", "ports", merge("containerPort")),
    ("io.k8s.api.core.v1.EphemeralContainer", "env", merge("name")),
    ("io.k8s.api.core.v1.EphemeralContainer", "volumeMounts", merge("mountPath")),
    ("io.k8s.api.core.v1.EphemeralContainer", "volumeDevices", merge("devicePath")),
    ("io.k8s.api.core.v1.PodStatus", "conditions", merge("type")),
    ("io.k8s.api.core.v1.PodStatus", "podIPs", merge("ip")),
    ("io.k8s.api.core.v1.PodStatus", "hostIPs", merge("ip")),
    ("io.k8s.api.core.v1.PodStatus", "resourceClaimStatuses", merge_retain_keys("name")),
    ("io.k8s.api.core.v1.ContainerStatus", "volumeMounts", merge("mountPath")),
    ("io.k8s.api.core.v1.ContainerStatus", "allocatedResourcesStatus", merge("name")),
    ("io.k8s.api.core.v1.NodeSpec", "podCIDRs", MERGE_PRIMITIVES),
    ("io.k8s.api.core.v1.NodeStatus", "conditions", merge("type")),
    ("io.k8s.api.core.v1.NodeStatus", "addresses", merge("type")),
    ("io.k8s.api.core.v1.ServiceSpec", "ports", merge("port")),
    ("io.k8s.api.core.v1.ServiceStatus", "conditions", merge("type")),
    ("io.k8s.api.core.v1.ServiceAccount", "secrets", merge("name")),
    ("io.k8s.api.core.v1.NamespaceStatus", "conditions", merge("type")),
    ("io.k8s.api.core.v1.PersistentVolumeClaimStatus", "conditions", merge("type")),
    ("io.k8s.api.core.v1.ReplicationControllerStatus", "conditions", merge("type")),
    // apps/v1
    ("io.k8s.api.apps.v1.DeploymentSpec", "strategy", RETAIN_KEYS),
    ("io.k8s.api.apps.v1.DeploymentStatus", "conditions", merge("type")),
    ("io.k8s.api.apps.v1.ReplicaSetStatus", "conditions", merge("type")),
    ("io.k8s.api.apps.v1.DaemonSetStatus", "conditions", merge("type")),
    ("io.k8s.api.apps.v1.StatefulSetStatus", "conditions", merge("type")),
    // batch/v1, autoscaling/v2, policy/v1
    ("io.k8s.api.batch.v1.JobStatus", "conditions", merge("type")),
    ("io.k8s.api.autoscaling.v2.HorizontalPodAutoscalerStatus", "conditions", merge("type")),
    ("io.k8s.api.policy.v1.PodDisruptionBudgetStatus", "conditions", merge("type")),
];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::patch::schema::{Shape, Ty};

    /// Every entry must name a real field of a definition we serve, of the right shape: a typo in
    /// a definition or field name would otherwise silently turn a merge into a replace.
    #[test]
    fn every_entry_names_a_served_field_of_the_right_shape() {
        for (definition, field, meta) in TABLE {
            let ty = Ty::of(definition).unwrap_or_else(|| panic!("{definition} is not a served definition"));
            assert!(ty.has_property(field), "{definition} has no field {field}");
            let shape = ty.field(field).shape();
            if meta.strategy == "retainKeys" {
                assert_eq!(shape, Shape::Object, "{definition}.{field}");
            } else {
                assert_eq!(shape, Shape::Array, "{definition}.{field}");
                let items = ty.field(field).items().shape();
                match meta.merge_key {
                    Some(key) => {
                        assert_eq!(items, Shape::Object, "{definition}.{field} items");
                        assert!(ty.field(field).items().has_property(key), "{definition}.{field} items lack {key}");
                    }
                    None => assert_eq!(items, Shape::Scalar, "{definition}.{field} items"),
                }
            }
        }
    }
}
