//! `meta.k8s.io/v1` Table output: the columns `kubectl get` prints.
//!
//! `kubectl get` asks for `Accept: application/json;as=Table;v=v1;g=meta.k8s.io` and prints the
//! cells the server computed, so the columns and the cell strings here follow kube-apiserver's
//! printers (`pkg/printers/internalversion/printers.go`, Kubernetes 1.33) and, for resources without
//! a printer, its default table convertor (`k8s.io/apiserver/pkg/registry/rest/table.go`).
//!
//! kube-apiserver always generates the wide cells (`GenerateOptions{Wide: true}`) and leaves it to
//! kubectl to hide the priority-1 columns unless `-o wide`, so every row here carries them too.
//!
//! kube-apiserver prints from objects that were defaulted when decoded from storage. Objects here
//! may be partial, so the few defaulted fields that feed a cell (replicas, service type, port
//! protocol, ...) are read with their API defaults; nothing panics on a missing field.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use jiff::Timestamp;
use serde_json::{Map, Value, json};

use crate::registry::{ResourceInfo, SchemaFn};

use k8s_openapi::api::{apps::v1 as apps, autoscaling::v2 as autoscaling, batch::v1 as batch, coordination::v1 as coordination, core::v1 as core, discovery::v1 as discovery, rbac::v1 as rbac, scheduling::v1 as scheduling};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

/// The meta.k8s.io/v1 Table for a list of objects of one resource, as kube-apiserver returns it.
/// `include_object`: "None" | "Metadata" (default) | "Object" (the `includeObject` query parameter):
/// each row's `object` is, respectively, absent, a PartialObjectMetadata (apiVersion meta.k8s.io/v1, kind PartialObjectMetadata, metadata), or the full object.
/// `list_metadata` (resourceVersion, continue, remainingItemCount) is copied to the table's metadata.
///
/// kube-apiserver answers 400 to any other `includeObject` value; callers should reject those
/// before calling (see [`is_valid_include_object`]); here they fall back to "Metadata".
pub fn to_table(info: &ResourceInfo, objects: &[Value], list_metadata: Value, include_object: &str, now: Timestamp) -> Value {
    let mut metadata = Map::new();
    for key in ["resourceVersion", "continue", "remainingItemCount"] {
        match list_metadata.get(key) {
            None | Some(Value::Null) => {}
            // ListMeta's string fields are `omitempty`.
            Some(Value::String(s)) if s.is_empty() => {}
            Some(v) => {
                metadata.insert(key.to_string(), v.clone());
            }
        }
    }

    let rows: Vec<Value> = objects
        .iter()
        .map(|obj| {
            let mut row = Map::new();
            row.insert("cells".into(), Value::Array(row_cells(info, obj, now)));
            if let Some(conditions) = row_conditions(info, obj) {
                row.insert("conditions".into(), conditions);
            }
            match include_object {
                "None" => {}
                "Object" => {
                    row.insert("object".into(), obj.clone());
                }
                _ => {
                    row.insert(
                        "object".into(),
                        json!({
                            "kind": "PartialObjectMetadata",
                            "apiVersion": "meta.k8s.io/v1",
                            "metadata": obj.get("metadata").filter(|m| m.is_object()).cloned().unwrap_or_else(|| json!({})),
                        }),
                    );
                }
            }
            Value::Object(row)
        })
        .collect();

    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": Value::Object(metadata),
        "columnDefinitions": column_definitions(info),
        "rows": rows,
    })
}

/// Whether `value` is an `includeObject` value kube-apiserver accepts (`""` means the default).
pub fn is_valid_include_object(value: &str) -> bool {
    matches!(value, "" | "None" | "Metadata" | "Object")
}

/// The table's columns for a resource: `name`, `type`, `format`, `description`, `priority`.
pub fn column_definitions(info: &ResourceInfo) -> Vec<Value> {
    let printer = Printer::of(info);
    // Descriptions come from the k8s-openapi schemas (the same text as Go's SwaggerDoc()), and
    // building those schemas walks whole type trees, so each printer's columns are built once.
    static CACHE: OnceLock<Mutex<HashMap<Printer, Vec<Value>>>> = OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    if let Some(cols) = cache.lock().unwrap_or_else(|e| e.into_inner()).get(&printer) {
        return cols.clone();
    }
    let cols: Vec<Value> = columns(printer)
        .into_iter()
        .map(|c| {
            json!({
                "name": c.name,
                "type": c.ty,
                "format": c.format,
                "description": c.desc.text(),
                "priority": c.priority,
            })
        })
        .collect();
    cache.lock().unwrap_or_else(|e| e.into_inner()).insert(printer, cols.clone());
    cols
}

/// One row's cells, in [`column_definitions`] order (wide columns included).
pub fn row_cells(info: &ResourceInfo, obj: &Value, now: Timestamp) -> Vec<Value> {
    match Printer::of(info) {
        Printer::Pod => pod_cells(obj, now),
        Printer::Service => service_cells(obj, now),
        Printer::Endpoints => vec![name(obj), formatted_endpoints(obj).into(), age(obj, now)],
        Printer::Node => node_cells(obj, now),
        Printer::Namespace => vec![name(obj), or(st(obj, &["status", "phase"]), "Active").into(), age(obj, now)],
        Printer::ConfigMap => vec![name(obj), ((map_len(obj, &["data"]) + map_len(obj, &["binaryData"])) as i64).into(), age(obj, now)],
        Printer::Secret => secret_cells(obj, now),
        Printer::ServiceAccount => vec![name(obj), (list(obj, &["secrets"]).len() as i64).into(), age(obj, now)],
        Printer::Event => event_cells(obj, info.group == "events.k8s.io", now),
        Printer::PersistentVolumeClaim => pvc_cells(obj, now),
        Printer::PersistentVolume => pv_cells(obj, now),
        Printer::ResourceQuota => resource_quota_cells(obj, now),
        Printer::ReplicationController => {
            let mut cells = vec![
                name(obj),
                opt_int(obj, &["spec", "replicas"]).unwrap_or(1).into(),
                int(obj, &["status", "replicas"]).into(),
                int(obj, &["status", "readyReplicas"]).into(),
                age(obj, now),
            ];
            let (names, images) = container_cells(list(obj, &["spec", "template", "spec", "containers"]));
            cells.extend([names.into(), images.into(), format_labels(get(obj, &["spec", "selector"])).into()]);
            cells
        }
        Printer::Deployment => {
            let selector = match label_selector_string(get(obj, &["spec", "selector"])) {
                Ok(s) => s,
                Err(()) => "<invalid>".to_string(),
            };
            let (names, images) = container_cells(list(obj, &["spec", "template", "spec", "containers"]));
            vec![
                name(obj),
                format!("{}/{}", int(obj, &["status", "readyReplicas"]), opt_int(obj, &["spec", "replicas"]).unwrap_or(1)).into(),
                int(obj, &["status", "updatedReplicas"]).into(),
                int(obj, &["status", "availableReplicas"]).into(),
                age(obj, now),
                names.into(),
                images.into(),
                selector.into(),
            ]
        }
        Printer::ReplicaSet => {
            let (names, images) = container_cells(list(obj, &["spec", "template", "spec", "containers"]));
            vec![
                name(obj),
                opt_int(obj, &["spec", "replicas"]).unwrap_or(1).into(),
                int(obj, &["status", "replicas"]).into(),
                int(obj, &["status", "readyReplicas"]).into(),
                age(obj, now),
                names.into(),
                images.into(),
                format_label_selector(get(obj, &["spec", "selector"])).into(),
            ]
        }
        Printer::DaemonSet => {
            let (names, images) = container_cells(list(obj, &["spec", "template", "spec", "containers"]));
            vec![
                name(obj),
                int(obj, &["status", "desiredNumberScheduled"]).into(),
                int(obj, &["status", "currentNumberScheduled"]).into(),
                int(obj, &["status", "numberReady"]).into(),
                int(obj, &["status", "updatedNumberScheduled"]).into(),
                int(obj, &["status", "numberAvailable"]).into(),
                format_labels(get(obj, &["spec", "template", "spec", "nodeSelector"])).into(),
                age(obj, now),
                names.into(),
                images.into(),
                format_label_selector(get(obj, &["spec", "selector"])).into(),
            ]
        }
        Printer::StatefulSet => {
            let (names, images) = container_cells(list(obj, &["spec", "template", "spec", "containers"]));
            vec![
                name(obj),
                format!("{}/{}", int(obj, &["status", "readyReplicas"]), opt_int(obj, &["spec", "replicas"]).unwrap_or(1)).into(),
                age(obj, now),
                names.into(),
                images.into(),
            ]
        }
        Printer::ControllerRevision => vec![name(obj), controller_of(obj).into(), int(obj, &["revision"]).into(), age(obj, now)],
        Printer::Job => job_cells(obj, now),
        Printer::CronJob => cronjob_cells(obj, now),
        Printer::HorizontalPodAutoscaler => vec![
            name(obj),
            format!("{}/{}", st(obj, &["spec", "scaleTargetRef", "kind"]), st(obj, &["spec", "scaleTargetRef", "name"])).into(),
            format_hpa_metrics(list(obj, &["spec", "metrics"]), list(obj, &["status", "currentMetrics"])).into(),
            opt_int(obj, &["spec", "minReplicas"]).unwrap_or(1).to_string().into(),
            int(obj, &["spec", "maxReplicas"]).into(),
            int(obj, &["status", "currentReplicas"]).into(),
            age(obj, now),
        ],
        Printer::Lease => vec![name(obj), st(obj, &["spec", "holderIdentity"]).into(), age(obj, now)],
        Printer::EndpointSlice => vec![
            name(obj),
            st(obj, &["addressType"]).into(),
            format_discovery_ports(list(obj, &["ports"])).into(),
            format_discovery_endpoints(list(obj, &["endpoints"])).into(),
            age(obj, now),
        ],
        Printer::RoleBinding | Printer::ClusterRoleBinding => {
            let (users, groups, sas) = subjects_strings(list(obj, &["subjects"]));
            vec![
                name(obj),
                format!("{}/{}", st(obj, &["roleRef", "kind"]), st(obj, &["roleRef", "name"])).into(),
                age(obj, now),
                users.join(", ").into(),
                groups.join(", ").into(),
                sas.join(", ").into(),
            ]
        }
        Printer::PodDisruptionBudget => vec![
            name(obj),
            int_or_string(get(obj, &["spec", "minAvailable"])).into(),
            int_or_string(get(obj, &["spec", "maxUnavailable"])).into(),
            int(obj, &["status", "disruptionsAllowed"]).into(),
            age(obj, now),
        ],
        Printer::PriorityClass => vec![
            name(obj),
            int(obj, &["value"]).into(),
            boolean(obj, &["globalDefault"]).into(),
            age(obj, now),
            or(st(obj, &["preemptionPolicy"]), "PreemptLowerPriority").into(),
        ],
        Printer::Default => {
            // `metav1.Time{}.UTC().Format(time.RFC3339)` for a missing timestamp is Go's zero time.
            let created = ts(obj, &["metadata", "creationTimestamp"])
                .map(|t| t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string())
                .unwrap_or_else(|| "0001-01-01T00:00:00Z".to_string());
            vec![name(obj), created.into()]
        }
    }
}

/// Kubernetes' duration formatting for the AGE column (k8s.io/apimachinery/pkg/util/duration.HumanDuration: "5s", "3m20s", "10m", "5h3m", "2d5h", "20d", "2y150d" rules).
pub fn human_duration(d: Duration) -> String {
    human_duration_nanos(d.as_nanos().min(i128::MAX as u128) as i128)
}

/// HumanDuration on a signed duration: timestamps slightly in the future (clock skew) read as
/// "0s", further ones as "<invalid>".
fn human_duration_nanos(d: i128) -> String {
    const SEC: i128 = 1_000_000_000;
    let seconds = d / SEC;
    if seconds < -1 {
        return "<invalid>".into();
    } else if seconds < 0 {
        return "0s".into();
    } else if seconds < 60 * 2 {
        return format!("{seconds}s");
    }
    let minutes = d / (60 * SEC);
    if minutes < 10 {
        let s = seconds % 60;
        return if s == 0 { format!("{minutes}m") } else { format!("{minutes}m{s}s") };
    } else if minutes < 60 * 3 {
        return format!("{minutes}m");
    }
    let hours = d / (3600 * SEC);
    if hours < 8 {
        let m = minutes % 60;
        if m == 0 { format!("{hours}h") } else { format!("{hours}h{m}m") }
    } else if hours < 48 {
        format!("{hours}h")
    } else if hours < 24 * 8 {
        let h = hours % 24;
        if h == 0 { format!("{}d", hours / 24) } else { format!("{}d{h}h", hours / 24) }
    } else if hours < 24 * 365 * 2 {
        format!("{}d", hours / 24)
    } else if hours < 24 * 365 * 8 {
        let dy = (hours / 24) % 365;
        if dy == 0 { format!("{}y", hours / 24 / 365) } else { format!("{}y{dy}d", hours / 24 / 365) }
    } else {
        format!("{}y", hours / 24 / 365)
    }
}

// ---------------------------------------------------------------------------------------------
// Printers and their columns

#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
enum Printer {
    Pod,
    Service,
    Endpoints,
    Node,
    Namespace,
    ConfigMap,
    Secret,
    ServiceAccount,
    Event,
    PersistentVolumeClaim,
    PersistentVolume,
    ResourceQuota,
    ReplicationController,
    Deployment,
    ReplicaSet,
    DaemonSet,
    StatefulSet,
    ControllerRevision,
    Job,
    CronJob,
    HorizontalPodAutoscaler,
    Lease,
    EndpointSlice,
    RoleBinding,
    ClusterRoleBinding,
    PodDisruptionBudget,
    PriorityClass,
    /// kube-apiserver's default table convertor: roles, clusterroles, limitranges have no printer.
    Default,
}

impl Printer {
    /// By group and resource, not version: a printer serves every version of its resource.
    fn of(info: &ResourceInfo) -> Printer {
        use Printer::*;
        match (info.group, info.plural) {
            ("", "pods") => Pod,
            ("", "services") => Service,
            ("", "endpoints") => Endpoints,
            ("", "nodes") => Node,
            ("", "namespaces") => Namespace,
            ("", "configmaps") => ConfigMap,
            ("", "secrets") => Secret,
            ("", "serviceaccounts") => ServiceAccount,
            // events.k8s.io events are the core events stored under another schema, and
            // kube-apiserver prints them with the same printer.
            ("", "events") | ("events.k8s.io", "events") => Event,
            ("", "persistentvolumeclaims") => PersistentVolumeClaim,
            ("", "persistentvolumes") => PersistentVolume,
            ("", "resourcequotas") => ResourceQuota,
            ("", "replicationcontrollers") => ReplicationController,
            ("apps", "deployments") => Deployment,
            ("apps", "replicasets") => ReplicaSet,
            ("apps", "daemonsets") => DaemonSet,
            ("apps", "statefulsets") => StatefulSet,
            ("apps", "controllerrevisions") => ControllerRevision,
            ("batch", "jobs") => Job,
            ("batch", "cronjobs") => CronJob,
            ("autoscaling", "horizontalpodautoscalers") => HorizontalPodAutoscaler,
            ("coordination.k8s.io", "leases") => Lease,
            ("discovery.k8s.io", "endpointslices") => EndpointSlice,
            ("rbac.authorization.k8s.io", "rolebindings") => RoleBinding,
            ("rbac.authorization.k8s.io", "clusterrolebindings") => ClusterRoleBinding,
            ("policy", "poddisruptionbudgets") => PodDisruptionBudget,
            ("scheduling.k8s.io", "priorityclasses") => PriorityClass,
            _ => Default,
        }
    }
}

enum Desc {
    Text(&'static str),
    /// The OpenAPI description of a field of a typed schema (what Go's `SwaggerDoc()[field]` returns).
    Field(SchemaFn, &'static str),
}

impl Desc {
    fn text(&self) -> String {
        match self {
            Desc::Text(t) => t.to_string(),
            Desc::Field(schema, field) => {
                let mut generator = schemars::SchemaGenerator::default();
                let schema = schema(&mut generator);
                // Go's SwaggerDoc map yields "" for an unknown key.
                schema
                    .get("properties")
                    .and_then(|p| p.get(*field))
                    .and_then(|f| f.get("description"))
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string()
            }
        }
    }
}

macro_rules! doc {
    ($t:ty, $field:literal) => {
        Desc::Field(<$t as schemars::JsonSchema>::json_schema, $field)
    };
}

struct Col {
    name: &'static str,
    ty: &'static str,
    format: &'static str,
    desc: Desc,
    priority: i64,
}

fn col(name: &'static str, ty: &'static str, desc: Desc) -> Col {
    Col { name, ty, format: "", desc, priority: 0 }
}

impl Col {
    /// Priority 1: shown only with `-o wide`.
    fn wide(mut self) -> Col {
        self.priority = 1;
        self
    }
}

fn name_col() -> Col {
    Col { format: "name", ..col("Name", "string", doc!(ObjectMeta, "name")) }
}

fn age_col() -> Col {
    col("Age", "string", doc!(ObjectMeta, "creationTimestamp"))
}

const CONTAINERS: &str = "Names of each container in the template.";
const IMAGES: &str = "Images referenced by each container in the template.";

fn columns(printer: Printer) -> Vec<Col> {
    use Desc::Text;
    let s = "string";
    let i = "integer";
    match printer {
        Printer::Pod => vec![
            name_col(),
            col("Ready", s, Text("The aggregate readiness state of this pod for accepting traffic.")),
            col("Status", s, Text("The aggregate status of the containers in this pod.")),
            col("Restarts", s, Text("The number of times the containers in this pod have been restarted and when the last container in this pod has restarted.")),
            age_col(),
            col("IP", s, doc!(core::PodStatus, "podIP")).wide(),
            col("Node", s, doc!(core::PodSpec, "nodeName")).wide(),
            col("Nominated Node", s, doc!(core::PodStatus, "nominatedNodeName")).wide(),
            col("Readiness Gates", s, doc!(core::PodSpec, "readinessGates")).wide(),
        ],
        Printer::PodDisruptionBudget => vec![
            name_col(),
            col("Min Available", s, Text("The minimum number of pods that must be available.")),
            col("Max Unavailable", s, Text("The maximum number of pods that may be unavailable.")),
            col("Allowed Disruptions", i, Text("Calculated number of pods that may be disrupted at this time.")),
            age_col(),
        ],
        Printer::ReplicationController => vec![
            name_col(),
            col("Desired", i, doc!(core::ReplicationControllerSpec, "replicas")),
            col("Current", i, doc!(core::ReplicationControllerStatus, "replicas")),
            col("Ready", i, doc!(core::ReplicationControllerStatus, "readyReplicas")),
            age_col(),
            col("Containers", s, Text(CONTAINERS)).wide(),
            col("Images", s, Text(IMAGES)).wide(),
            col("Selector", s, doc!(core::ReplicationControllerSpec, "selector")).wide(),
        ],
        Printer::ReplicaSet => vec![
            name_col(),
            col("Desired", i, doc!(apps::ReplicaSetSpec, "replicas")),
            col("Current", i, doc!(apps::ReplicaSetStatus, "replicas")),
            col("Ready", i, doc!(apps::ReplicaSetStatus, "readyReplicas")),
            age_col(),
            col("Containers", s, Text(CONTAINERS)).wide(),
            col("Images", s, Text(IMAGES)).wide(),
            col("Selector", s, doc!(apps::ReplicaSetSpec, "selector")).wide(),
        ],
        Printer::DaemonSet => vec![
            name_col(),
            col("Desired", i, doc!(apps::DaemonSetStatus, "desiredNumberScheduled")),
            col("Current", i, doc!(apps::DaemonSetStatus, "currentNumberScheduled")),
            col("Ready", i, doc!(apps::DaemonSetStatus, "numberReady")),
            col("Up-to-date", i, doc!(apps::DaemonSetStatus, "updatedNumberScheduled")),
            col("Available", i, doc!(apps::DaemonSetStatus, "numberAvailable")),
            col("Node Selector", s, doc!(core::PodSpec, "nodeSelector")),
            age_col(),
            col("Containers", s, Text(CONTAINERS)).wide(),
            col("Images", s, Text(IMAGES)).wide(),
            col("Selector", s, doc!(apps::DaemonSetSpec, "selector")).wide(),
        ],
        Printer::Job => vec![
            name_col(),
            col("Status", s, Text("Status of the job.")),
            col("Completions", s, doc!(batch::JobStatus, "succeeded")),
            col("Duration", s, Text("Time required to complete the job.")),
            age_col(),
            col("Containers", s, Text(CONTAINERS)).wide(),
            col("Images", s, Text(IMAGES)).wide(),
            col("Selector", s, doc!(batch::JobSpec, "selector")).wide(),
        ],
        Printer::CronJob => vec![
            name_col(),
            col("Schedule", s, doc!(batch::CronJobSpec, "schedule")),
            col("Timezone", s, doc!(batch::CronJobSpec, "timeZone")),
            col("Suspend", "boolean", doc!(batch::CronJobSpec, "suspend")),
            col("Active", i, doc!(batch::CronJobStatus, "active")),
            col("Last Schedule", s, doc!(batch::CronJobStatus, "lastScheduleTime")),
            age_col(),
            col("Containers", s, Text(CONTAINERS)).wide(),
            col("Images", s, Text(IMAGES)).wide(),
            col("Selector", s, doc!(batch::JobSpec, "selector")).wide(),
        ],
        Printer::Service => vec![
            name_col(),
            col("Type", s, doc!(core::ServiceSpec, "type")),
            col("Cluster-IP", s, doc!(core::ServiceSpec, "clusterIP")),
            col("External-IP", s, doc!(core::ServiceSpec, "externalIPs")),
            col("Port(s)", s, doc!(core::ServiceSpec, "ports")),
            age_col(),
            col("Selector", s, doc!(core::ServiceSpec, "selector")).wide(),
        ],
        Printer::StatefulSet => vec![
            name_col(),
            col("Ready", s, Text("Number of the pod with ready state")),
            age_col(),
            col("Containers", s, Text(CONTAINERS)).wide(),
            col("Images", s, Text(IMAGES)).wide(),
        ],
        Printer::Endpoints => vec![name_col(), col("Endpoints", s, doc!(core::Endpoints, "subsets")), age_col()],
        Printer::Node => vec![
            name_col(),
            col("Status", s, Text("The status of the node")),
            col("Roles", s, Text("The roles of the node")),
            age_col(),
            col("Version", s, doc!(core::NodeSystemInfo, "kubeletVersion")),
            col("Internal-IP", s, doc!(core::NodeStatus, "addresses")).wide(),
            col("External-IP", s, doc!(core::NodeStatus, "addresses")).wide(),
            col("OS-Image", s, doc!(core::NodeSystemInfo, "osImage")).wide(),
            col("Kernel-Version", s, doc!(core::NodeSystemInfo, "kernelVersion")).wide(),
            col("Container-Runtime", s, doc!(core::NodeSystemInfo, "containerRuntimeVersion")).wide(),
        ],
        Printer::Event => vec![
            col("Last Seen", s, doc!(core::Event, "lastTimestamp")),
            col("Type", s, doc!(core::Event, "type")),
            col("Reason", s, doc!(core::Event, "reason")),
            col("Object", s, doc!(core::Event, "involvedObject")),
            col("Subobject", s, doc!(core::ObjectReference, "fieldPath")).wide(),
            col("Source", s, doc!(core::Event, "source")).wide(),
            col("Message", s, doc!(core::Event, "message")),
            col("First Seen", s, doc!(core::Event, "firstTimestamp")).wide(),
            col("Count", s, doc!(core::Event, "count")).wide(),
            name_col().wide(),
        ],
        Printer::Namespace => vec![name_col(), col("Status", s, Text("The status of the namespace")), age_col()],
        Printer::Secret => vec![name_col(), col("Type", s, doc!(core::Secret, "type")), col("Data", s, doc!(core::Secret, "data")), age_col()],
        Printer::ServiceAccount => vec![name_col(), col("Secrets", s, doc!(core::ServiceAccount, "secrets")), age_col()],
        Printer::PersistentVolume => vec![
            name_col(),
            col("Capacity", s, doc!(core::PersistentVolumeSpec, "capacity")),
            col("Access Modes", s, doc!(core::PersistentVolumeSpec, "accessModes")),
            col("Reclaim Policy", s, doc!(core::PersistentVolumeSpec, "persistentVolumeReclaimPolicy")),
            col("Status", s, doc!(core::PersistentVolumeStatus, "phase")),
            col("Claim", s, doc!(core::PersistentVolumeSpec, "claimRef")),
            col("StorageClass", s, Text("StorageClass of the pv")),
            col("VolumeAttributesClass", s, Text("VolumeAttributesClass of the pv")),
            col("Reason", s, doc!(core::PersistentVolumeStatus, "reason")),
            age_col(),
            col("VolumeMode", s, doc!(core::PersistentVolumeSpec, "volumeMode")).wide(),
        ],
        Printer::PersistentVolumeClaim => vec![
            name_col(),
            col("Status", s, doc!(core::PersistentVolumeClaimStatus, "phase")),
            col("Volume", s, doc!(core::PersistentVolumeClaimSpec, "volumeName")),
            col("Capacity", s, doc!(core::PersistentVolumeClaimStatus, "capacity")),
            col("Access Modes", s, doc!(core::PersistentVolumeClaimStatus, "accessModes")),
            col("StorageClass", s, Text("StorageClass of the pvc")),
            col("VolumeAttributesClass", s, Text("VolumeAttributesClass of the pvc")),
            age_col(),
            col("VolumeMode", s, doc!(core::PersistentVolumeClaimSpec, "volumeMode")).wide(),
        ],
        Printer::Deployment => vec![
            name_col(),
            col("Ready", s, Text("Number of the pod with ready state")),
            col("Up-to-date", s, doc!(apps::DeploymentStatus, "updatedReplicas")),
            col("Available", s, doc!(apps::DeploymentStatus, "availableReplicas")),
            age_col(),
            col("Containers", s, Text(CONTAINERS)).wide(),
            col("Images", s, Text(IMAGES)).wide(),
            col("Selector", s, doc!(apps::DeploymentSpec, "selector")).wide(),
        ],
        Printer::HorizontalPodAutoscaler => vec![
            name_col(),
            col("Reference", s, doc!(autoscaling::HorizontalPodAutoscalerSpec, "scaleTargetRef")),
            col("Targets", s, doc!(autoscaling::HorizontalPodAutoscalerSpec, "metrics")),
            col("MinPods", s, doc!(autoscaling::HorizontalPodAutoscalerSpec, "minReplicas")),
            col("MaxPods", s, doc!(autoscaling::HorizontalPodAutoscalerSpec, "maxReplicas")),
            col("Replicas", s, doc!(autoscaling::HorizontalPodAutoscalerStatus, "currentReplicas")),
            age_col(),
        ],
        Printer::ConfigMap => vec![name_col(), col("Data", s, doc!(core::ConfigMap, "data")), age_col()],
        Printer::RoleBinding => vec![
            name_col(),
            col("Role", s, doc!(rbac::RoleBinding, "roleRef")),
            age_col(),
            col("Users", s, Text("Users in the roleBinding")).wide(),
            col("Groups", s, Text("Groups in the roleBinding")).wide(),
            col("ServiceAccounts", s, Text("ServiceAccounts in the roleBinding")).wide(),
        ],
        Printer::ClusterRoleBinding => vec![
            name_col(),
            col("Role", s, doc!(rbac::ClusterRoleBinding, "roleRef")),
            age_col(),
            col("Users", s, Text("Users in the clusterRoleBinding")).wide(),
            col("Groups", s, Text("Groups in the clusterRoleBinding")).wide(),
            col("ServiceAccounts", s, Text("ServiceAccounts in the clusterRoleBinding")).wide(),
        ],
        Printer::Lease => vec![name_col(), col("Holder", s, doc!(coordination::LeaseSpec, "holderIdentity")), age_col()],
        Printer::ControllerRevision => vec![
            name_col(),
            col("Controller", s, Text("Controller of the object")),
            col("Revision", s, doc!(apps::ControllerRevision, "revision")),
            age_col(),
        ],
        Printer::ResourceQuota => vec![
            name_col(),
            col("Request", s, Text("Request represents a minimum amount of cpu/memory that a container may consume.")),
            col("Limit", s, Text("Limits control the maximum amount of cpu/memory that a container may use independent of contention on the node.")),
            age_col(),
        ],
        // kube-apiserver declares PreemptionPolicy without a priority although only wide output fills it.
        Printer::PriorityClass => vec![
            name_col(),
            col("Value", i, doc!(scheduling::PriorityClass, "value")),
            col("Global-Default", "boolean", doc!(scheduling::PriorityClass, "globalDefault")),
            age_col(),
            col("PreemptionPolicy", s, doc!(scheduling::PriorityClass, "preemptionPolicy")),
        ],
        Printer::EndpointSlice => vec![
            name_col(),
            col("AddressType", s, doc!(discovery::EndpointSlice, "addressType")),
            col("Ports", s, doc!(discovery::EndpointSlice, "ports")),
            col("Endpoints", s, doc!(discovery::EndpointSlice, "endpoints")),
            age_col(),
        ],
        Printer::Default => vec![name_col(), col("Created At", "date", doc!(ObjectMeta, "creationTimestamp"))],
    }
}

/// Row conditions: kube-apiserver marks finished pods `Completed` so clients can de-emphasise them.
fn row_conditions(info: &ResourceInfo, obj: &Value) -> Option<Value> {
    if Printer::of(info) != Printer::Pod {
        return None;
    }
    let (reason, message) = match st(obj, &["status", "phase"]) {
        "Succeeded" => ("Succeeded", "The pod has completed successfully."),
        "Failed" => ("Failed", "The pod failed."),
        _ => return None,
    };
    Some(json!([{"type": "Completed", "status": "True", "reason": reason, "message": message}]))
}

// ---------------------------------------------------------------------------------------------
// Per-resource cells

fn pod_cells(pod: &Value, now: Timestamp) -> Vec<Value> {
    let init_specs = list(pod, &["spec", "initContainers"]);
    let restartable_init = |name: &str| init_specs.iter().any(|c| st(c, &["name"]) == name && st(c, &["restartPolicy"]) == "Always");

    let mut restarts = 0i64;
    let mut restartable_init_restarts = 0i64;
    let total = list(pod, &["spec", "containers"]).len() + init_specs.iter().filter(|c| st(c, &["restartPolicy"]) == "Always").count();
    let mut ready = 0usize;
    let mut last_restart: Option<Timestamp> = None;
    let mut last_restartable_init_restart: Option<Timestamp> = None;

    // The registry sets Pending on create, so a pod without a phase has not been seen by anyone yet.
    let phase = or(st(pod, &["status", "phase"]), "Pending");
    let mut reason = or(st(pod, &["status", "reason"]), phase).to_string();
    for condition in list(pod, &["status", "conditions"]) {
        if st(condition, &["type"]) == "PodScheduled" && st(condition, &["reason"]) == "SchedulingGated" {
            reason = "SchedulingGated".into();
        }
    }

    let mut initializing = false;
    for (i, status) in list(pod, &["status", "initContainerStatuses"]).iter().enumerate() {
        let count = int(status, &["restartCount"]);
        restarts += count;
        let finished = last_terminated_at(status);
        later(&mut last_restart, finished);
        let restartable = restartable_init(st(status, &["name"]));
        if restartable {
            restartable_init_restarts += count;
            later(&mut last_restartable_init_restart, finished);
        }
        let terminated = get(status, &["state", "terminated"]).filter(|t| t.is_object());
        let waiting = get(status, &["state", "waiting"]).filter(|w| w.is_object());
        if terminated.is_some_and(|t| int(t, &["exitCode"]) == 0) {
            continue;
        }
        if restartable && boolean(status, &["started"]) {
            if boolean(status, &["ready"]) {
                ready += 1;
            }
            continue;
        }
        if let Some(t) = terminated {
            reason = match st(t, &["reason"]) {
                "" if int(t, &["signal"]) != 0 => format!("Init:Signal:{}", int(t, &["signal"])),
                "" => format!("Init:ExitCode:{}", int(t, &["exitCode"])),
                r => format!("Init:{r}"),
            };
        } else if let Some(w) = waiting.filter(|w| !st(w, &["reason"]).is_empty() && st(w, &["reason"]) != "PodInitializing") {
            reason = format!("Init:{}", st(w, &["reason"]));
        } else {
            reason = format!("Init:{i}/{}", init_specs.len());
        }
        initializing = true;
        break;
    }

    if !initializing || condition_true(pod, "Initialized") {
        restarts = restartable_init_restarts;
        last_restart = last_restartable_init_restart;
        let mut has_running = false;
        for status in list(pod, &["status", "containerStatuses"]).iter().rev() {
            restarts += int(status, &["restartCount"]);
            later(&mut last_restart, last_terminated_at(status));
            let terminated = get(status, &["state", "terminated"]).filter(|t| t.is_object());
            let waiting_reason = get(status, &["state", "waiting"]).filter(|w| w.is_object()).map(|w| st(w, &["reason"])).unwrap_or("");
            if !waiting_reason.is_empty() {
                reason = waiting_reason.to_string();
            } else if let Some(t) = terminated {
                reason = match st(t, &["reason"]) {
                    "" if int(t, &["signal"]) != 0 => format!("Signal:{}", int(t, &["signal"])),
                    "" => format!("ExitCode:{}", int(t, &["exitCode"])),
                    r => r.to_string(),
                };
            } else if boolean(status, &["ready"]) && get(status, &["state", "running"]).is_some_and(Value::is_object) {
                has_running = true;
                ready += 1;
            }
        }
        // A pod whose last container completed while another still runs is not "Completed".
        if reason == "Completed" && has_running {
            reason = if condition_true(pod, "Ready") { "Running".into() } else { "NotReady".into() };
        }
    }

    let deleting = get(pod, &["metadata", "deletionTimestamp"]).is_some_and(|d| !d.is_null());
    if deleting && st(pod, &["status", "reason"]) == "NodeLost" {
        reason = "Unknown".into();
    } else if deleting && phase != "Succeeded" && phase != "Failed" {
        reason = "Terminating".into();
    }

    let restarts_cell = match last_restart {
        Some(at) if restarts != 0 => format!("{restarts} ({} ago)", since(Some(at), now)),
        _ => restarts.to_string(),
    };

    let pod_ip = list(pod, &["status", "podIPs"]).first().map(|p| st(p, &["ip"])).filter(|s| !s.is_empty()).unwrap_or_else(|| st(pod, &["status", "podIP"]));
    let gates = list(pod, &["spec", "readinessGates"]);
    let readiness_gates = if gates.is_empty() {
        "<none>".to_string()
    } else {
        let conditions = list(pod, &["status", "conditions"]);
        let true_count = gates
            .iter()
            .filter(|gate| {
                let wanted = st(gate, &["conditionType"]);
                conditions.iter().find(|c| st(c, &["type"]) == wanted).is_some_and(|c| st(c, &["status"]) == "True")
            })
            .count();
        format!("{true_count}/{}", gates.len())
    };

    vec![
        name(pod),
        format!("{ready}/{total}").into(),
        reason.into(),
        restarts_cell.into(),
        age(pod, now),
        or(pod_ip, "<none>").into(),
        or(st(pod, &["spec", "nodeName"]), "<none>").into(),
        or(st(pod, &["status", "nominatedNodeName"]), "<none>").into(),
        readiness_gates.into(),
    ]
}

fn last_terminated_at(container_status: &Value) -> Option<Timestamp> {
    ts(container_status, &["lastState", "terminated", "finishedAt"])
}

/// `if last.Before(t) { last = t }` with `None` as Go's zero time.
fn later(last: &mut Option<Timestamp>, t: Option<Timestamp>) {
    if let Some(t) = t
        && last.is_none_or(|l| l < t)
    {
        *last = Some(t);
    }
}

fn condition_true(obj: &Value, condition_type: &str) -> bool {
    list(obj, &["status", "conditions"]).iter().find(|c| st(c, &["type"]) == condition_type).is_some_and(|c| st(c, &["status"]) == "True")
}

fn service_cells(svc: &Value, now: Timestamp) -> Vec<Value> {
    let svc_type = or(st(svc, &["spec", "type"]), "ClusterIP");
    let cluster_ip = list(svc, &["spec", "clusterIPs"]).first().and_then(Value::as_str).filter(|s| !s.is_empty()).unwrap_or_else(|| st(svc, &["spec", "clusterIP"]));
    let external_ips: Vec<&str> = list(svc, &["spec", "externalIPs"]).iter().filter_map(Value::as_str).collect();
    let external = match svc_type {
        "ClusterIP" | "NodePort" if !external_ips.is_empty() => external_ips.join(","),
        "ClusterIP" | "NodePort" => "<none>".to_string(),
        "LoadBalancer" => {
            // Server-side tables are always wide, so the 16-character clipping never applies.
            let lb: BTreeSet<&str> = list(svc, &["status", "loadBalancer", "ingress"])
                .iter()
                .filter_map(|ing| [st(ing, &["ip"]), st(ing, &["hostname"])].into_iter().find(|s| !s.is_empty()))
                .collect();
            let mut all: Vec<&str> = lb.into_iter().collect();
            if !external_ips.is_empty() {
                all.extend(external_ips);
                all.join(",")
            } else if !all.is_empty() {
                all.join(",")
            } else {
                "<pending>".to_string()
            }
        }
        "ExternalName" => st(svc, &["spec", "externalName"]).to_string(),
        _ => "<unknown>".to_string(),
    };
    let ports: Vec<String> = list(svc, &["spec", "ports"])
        .iter()
        .map(|p| {
            let protocol = or(st(p, &["protocol"]), "TCP");
            match int(p, &["nodePort"]) {
                n if n > 0 => format!("{}:{n}/{protocol}", int(p, &["port"])),
                _ => format!("{}/{protocol}", int(p, &["port"])),
            }
        })
        .collect();
    vec![
        name(svc),
        svc_type.into(),
        or(cluster_ip, "<none>").into(),
        external.into(),
        (if ports.is_empty() { "<none>".to_string() } else { ports.join(",") }).into(),
        age(svc, now),
        format_labels(get(svc, &["spec", "selector"])).into(),
    ]
}

/// `ip:port,...` of the first three addresses, then `+ N more...`.
fn formatted_endpoints(ep: &Value) -> String {
    let subsets = list(ep, &["subsets"]);
    if subsets.is_empty() {
        return "<none>".into();
    }
    const MAX: usize = 3;
    let mut shown: Vec<String> = Vec::new();
    let mut more = false;
    let mut count = 0usize;
    for subset in subsets {
        let addresses = list(subset, &["addresses"]);
        let ports = list(subset, &["ports"]);
        if ports.is_empty() {
            // Headless services may have no ports.
            count += addresses.len();
            for addr in addresses {
                if shown.len() == MAX {
                    more = true;
                    break;
                }
                shown.push(st(addr, &["ip"]).to_string());
            }
            continue;
        }
        for port in ports {
            count += addresses.len();
            for addr in addresses {
                if shown.len() == MAX {
                    more = true;
                    break;
                }
                shown.push(join_host_port(st(addr, &["ip"]), int(port, &["port"])));
            }
        }
    }
    let joined = shown.join(",");
    if more { format!("{joined} + {} more...", count - MAX) } else { joined }
}

/// Go's net.JoinHostPort: IPv6 addresses get brackets.
fn join_host_port(host: &str, port: i64) -> String {
    if host.contains(':') { format!("[{host}]:{port}") } else { format!("{host}:{port}") }
}

fn format_discovery_ports(ports: &[Value]) -> String {
    let mut shown = Vec::new();
    let mut more = false;
    for port in ports {
        if shown.len() < 3 {
            shown.push(match (opt_int(port, &["port"]), get(port, &["name"]).and_then(Value::as_str)) {
                (Some(n), _) => n.to_string(),
                (None, Some(name)) => name.to_string(),
                (None, None) => "*".to_string(),
            });
        } else if shown.len() == 3 {
            more = true;
        }
    }
    list_with_more(shown, more, ports.len())
}

fn format_discovery_endpoints(endpoints: &[Value]) -> String {
    let mut shown = Vec::new();
    let mut more = false;
    let mut count = 0;
    for endpoint in endpoints {
        for address in list(endpoint, &["addresses"]) {
            if shown.len() < 3 {
                shown.push(address.as_str().unwrap_or("").to_string());
            } else if shown.len() == 3 {
                more = true;
            }
            count += 1;
        }
    }
    list_with_more(shown, more, count)
}

fn list_with_more(shown: Vec<String>, more: bool, count: usize) -> String {
    let joined = shown.join(",");
    if more {
        format!("{joined} + {} more...", count - 3)
    } else if joined.is_empty() {
        "<unset>".into()
    } else {
        joined
    }
}

fn node_cells(node: &Value, now: Timestamp) -> Vec<Value> {
    // Only the Ready condition is reported; the last one wins if it appears twice.
    let ready = list(node, &["status", "conditions"]).iter().rev().find(|c| st(c, &["type"]) == "Ready");
    let mut status = vec![match ready {
        Some(c) if st(c, &["status"]) == "True" => "Ready",
        Some(_) => "NotReady",
        None => "Unknown",
    }];
    if boolean(node, &["spec", "unschedulable"]) {
        status.push("SchedulingDisabled");
    }

    let mut roles = BTreeSet::new();
    if let Some(labels) = get(node, &["metadata", "labels"]).and_then(Value::as_object) {
        for (key, value) in labels {
            if let Some(role) = key.strip_prefix("node-role.kubernetes.io/") {
                if !role.is_empty() {
                    roles.insert(role.to_string());
                }
            } else if key == "kubernetes.io/role" && value.as_str().is_some_and(|v| !v.is_empty()) {
                roles.insert(value.as_str().unwrap_or_default().to_string());
            }
        }
    }
    let roles = roles.into_iter().collect::<Vec<_>>().join(",");

    let address = |kind: &str| {
        list(node, &["status", "addresses"]).iter().find(|a| st(a, &["type"]) == kind).map(|a| st(a, &["address"]).to_string()).unwrap_or_else(|| "<none>".into())
    };
    let info = |field: &str| or(st(node, &["status", "nodeInfo", field]), "<unknown>").to_string();
    vec![
        name(node),
        status.join(",").into(),
        (if roles.is_empty() { "<none>".to_string() } else { roles }).into(),
        age(node, now),
        st(node, &["status", "nodeInfo", "kubeletVersion"]).into(),
        address("InternalIP").into(),
        address("ExternalIP").into(),
        info("osImage").into(),
        info("kernelVersion").into(),
        info("containerRuntimeVersion").into(),
    ]
}

fn secret_cells(secret: &Value, now: Timestamp) -> Vec<Value> {
    // stringData is merged into data on write; count the union in case an object still carries it.
    let mut keys: BTreeSet<&str> = BTreeSet::new();
    for field in ["data", "stringData"] {
        if let Some(m) = get(secret, &[field]).and_then(Value::as_object) {
            keys.extend(m.keys().map(String::as_str));
        }
    }
    vec![name(secret), or(st(secret, &["type"]), "Opaque").into(), (keys.len() as i64).into(), age(secret, now)]
}

/// The core/v1 fields the event printer reads, from either a core/v1 or an events.k8s.io/v1 Event.
struct EventView<'a> {
    kind: &'a str,
    object_name: &'a str,
    field_path: &'a str,
    message: &'a str,
    component: &'a str,
    host: &'a str,
    first: Option<Timestamp>,
    last: Option<Timestamp>,
    count: i64,
}

fn event_cells(ev: &Value, events_api: bool, now: Timestamp) -> Vec<Value> {
    // events.k8s.io/v1 renames the core fields; the internal type kube-apiserver prints from has
    // the core names. The shape decides, since either group may hand over either shape.
    let new_shape = get(ev, &["involvedObject"]).is_none() && (events_api || get(ev, &["regarding"]).is_some() || get(ev, &["note"]).is_some());
    let v = if new_shape {
        EventView {
            kind: st(ev, &["regarding", "kind"]),
            object_name: st(ev, &["regarding", "name"]),
            field_path: st(ev, &["regarding", "fieldPath"]),
            message: st(ev, &["note"]),
            component: st(ev, &["deprecatedSource", "component"]),
            host: st(ev, &["deprecatedSource", "host"]),
            first: ts(ev, &["deprecatedFirstTimestamp"]),
            last: ts(ev, &["deprecatedLastTimestamp"]),
            count: int(ev, &["deprecatedCount"]),
        }
    } else {
        EventView {
            kind: st(ev, &["involvedObject", "kind"]),
            object_name: st(ev, &["involvedObject", "name"]),
            field_path: st(ev, &["involvedObject", "fieldPath"]),
            message: st(ev, &["message"]),
            component: st(ev, &["source", "component"]),
            host: st(ev, &["source", "host"]),
            first: ts(ev, &["firstTimestamp"]),
            last: ts(ev, &["lastTimestamp"]),
            count: int(ev, &["count"]),
        }
    };

    let first_seen = match v.first {
        Some(t) => since(Some(t), now),
        None => since(ts(ev, &["eventTime"]), now),
    };
    let mut last_seen = match v.last {
        Some(t) => since(Some(t), now),
        None => first_seen.clone(),
    };
    let mut count = v.count;
    if let Some(series) = get(ev, &["series"]).filter(|s| s.is_object()) {
        last_seen = since(ts(series, &["lastObservedTime"]), now);
        count = int(series, &["count"]);
    } else if count == 0 {
        // Singleton events of the new API carry no count.
        count = 1;
    }

    let kind = v.kind.to_lowercase();
    let target = if v.object_name.is_empty() { kind } else { format!("{kind}/{}", v.object_name) };
    let component = or(v.component, st(ev, &["reportingController"]));
    let host = or(v.host, st(ev, &["reportingInstance"]));
    let source = if host.is_empty() { component.to_string() } else { format!("{component}, {host}") };

    vec![
        last_seen.into(),
        st(ev, &["type"]).into(),
        st(ev, &["reason"]).into(),
        target.into(),
        v.field_path.into(),
        source.into(),
        v.message.trim().into(),
        first_seen.into(),
        count.into(),
        name(ev),
    ]
}

fn pv_cells(pv: &Value, now: Timestamp) -> Vec<Value> {
    let claim = match get(pv, &["spec", "claimRef"]).filter(|c| c.is_object()) {
        Some(c) => format!("{}/{}", st(c, &["namespace"]), st(c, &["name"])),
        None => String::new(),
    };
    let phase = if is_deleting(pv) { "Terminating" } else { or(st(pv, &["status", "phase"]), "Pending") };
    vec![
        name(pv),
        quantity(get(pv, &["spec", "capacity", "storage"])).into(),
        access_modes(list(pv, &["spec", "accessModes"])).into(),
        or(st(pv, &["spec", "persistentVolumeReclaimPolicy"]), "Retain").into(),
        phase.into(),
        claim.into(),
        storage_class(pv).into(),
        or(st(pv, &["spec", "volumeAttributesClassName"]), "<unset>").into(),
        st(pv, &["status", "reason"]).into(),
        age(pv, now),
        or(st(pv, &["spec", "volumeMode"]), "Filesystem").into(),
    ]
}

fn pvc_cells(pvc: &Value, now: Timestamp) -> Vec<Value> {
    let phase = if is_deleting(pvc) { "Terminating" } else { or(st(pvc, &["status", "phase"]), "Pending") };
    let volume = st(pvc, &["spec", "volumeName"]);
    // Capacity and access modes are only meaningful once bound.
    let (capacity, modes) = if volume.is_empty() {
        (String::new(), String::new())
    } else {
        (quantity(get(pvc, &["status", "capacity", "storage"])), access_modes(list(pvc, &["status", "accessModes"])))
    };
    vec![
        name(pvc),
        phase.into(),
        volume.into(),
        capacity.into(),
        modes.into(),
        storage_class(pvc).into(),
        or(st(pvc, &["spec", "volumeAttributesClassName"]), "<unset>").into(),
        age(pvc, now),
        or(st(pvc, &["spec", "volumeMode"]), "Filesystem").into(),
    ]
}

/// The beta annotation still wins over spec.storageClassName, as in kube-apiserver's helpers.
fn storage_class(obj: &Value) -> String {
    match get(obj, &["metadata", "annotations", "volume.beta.kubernetes.io/storage-class"]).and_then(Value::as_str) {
        Some(class) => class.to_string(),
        None => st(obj, &["spec", "storageClassName"]).to_string(),
    }
}

fn access_modes(modes: &[Value]) -> String {
    let has = |m: &str| modes.iter().any(|v| v.as_str() == Some(m));
    [("ReadWriteOnce", "RWO"), ("ReadOnlyMany", "ROX"), ("ReadWriteMany", "RWX"), ("ReadWriteOncePod", "RWOP")]
        .iter()
        .filter(|(mode, _)| has(mode))
        .map(|(_, short)| *short)
        .collect::<Vec<_>>()
        .join(",")
}

fn resource_quota_cells(quota: &Value, now: Timestamp) -> Vec<Value> {
    let mut requests = Vec::new();
    let mut limits = Vec::new();
    if let Some(hard) = get(quota, &["status", "hard"]).and_then(Value::as_object) {
        let mut resources: Vec<&String> = hard.keys().collect();
        resources.sort();
        for resource in resources {
            let used = quantity(get(quota, &["status", "used", resource.as_str()]));
            let entry = format!("{resource}: {used}/{}", quantity(hard.get(resource.as_str())));
            if resource.split('.').count() > 1 && resource.split('.').next() == Some("limits") {
                limits.push(entry);
            } else {
                requests.push(entry);
            }
        }
    }
    vec![name(quota), requests.join(", ").into(), limits.join(", ").into(), age(quota, now)]
}

fn job_cells(job: &Value, now: Timestamp) -> Vec<Value> {
    let succeeded = int(job, &["status", "succeeded"]);
    let completions = match opt_int(job, &["spec", "completions"]) {
        Some(c) => format!("{succeeded}/{c}"),
        None => match int(job, &["spec", "parallelism"]) {
            p if p > 1 => format!("{succeeded}/1 of {p}"),
            _ => format!("{succeeded}/1"),
        },
    };
    let duration = match (ts(job, &["status", "startTime"]), ts(job, &["status", "completionTime"])) {
        (None, _) => String::new(),
        (Some(start), None) => human_duration_nanos(now.duration_since(start).as_nanos()),
        (Some(start), Some(end)) => human_duration_nanos(end.duration_since(start).as_nanos()),
    };
    let has = |t: &str| job_condition(job, t);
    let status = if has("Complete") {
        "Complete"
    } else if has("Failed") {
        "Failed"
    } else if is_deleting(job) {
        "Terminating"
    } else if has("Suspended") {
        "Suspended"
    } else if has("FailureTarget") {
        "FailureTarget"
    } else {
        "Running"
    };
    let (names, images) = container_cells(list(job, &["spec", "template", "spec", "containers"]));
    vec![
        name(job),
        status.into(),
        completions.into(),
        duration.into(),
        age(job, now),
        names.into(),
        images.into(),
        format_label_selector(get(job, &["spec", "selector"])).into(),
    ]
}

/// The first condition of the type decides, as in kube-apiserver's hasJobCondition.
fn job_condition(job: &Value, condition_type: &str) -> bool {
    list(job, &["status", "conditions"]).iter().find(|c| st(c, &["type"]) == condition_type).is_some_and(|c| st(c, &["status"]) == "True")
}

fn cronjob_cells(cj: &Value, now: Timestamp) -> Vec<Value> {
    let last_schedule = match get(cj, &["status", "lastScheduleTime"]).filter(|v| !v.is_null()) {
        Some(_) => since(ts(cj, &["status", "lastScheduleTime"]), now),
        None => "<none>".to_string(),
    };
    let suspend = match get(cj, &["spec", "suspend"]).and_then(Value::as_bool) {
        Some(true) => "True",
        _ => "False",
    };
    let template = get(cj, &["spec", "jobTemplate", "spec"]).unwrap_or(&Value::Null);
    let (names, images) = container_cells(list(template, &["template", "spec", "containers"]));
    vec![
        name(cj),
        st(cj, &["spec", "schedule"]).into(),
        get(cj, &["spec", "timeZone"]).and_then(Value::as_str).unwrap_or("<none>").into(),
        suspend.into(),
        (list(cj, &["status", "active"]).len() as i64).into(),
        last_schedule.into(),
        age(cj, now),
        names.into(),
        images.into(),
        format_label_selector(get(template, &["selector"])).into(),
    ]
}

/// `kind.group/name` (lower-cased) of the controlling owner, as kube-apiserver prints revisions.
fn controller_of(obj: &Value) -> String {
    let Some(owner) = list(obj, &["metadata", "ownerReferences"]).iter().find(|o| boolean(o, &["controller"])) else {
        return "<none>".into();
    };
    let group = st(owner, &["apiVersion"]).split_once('/').map(|(g, _)| g).unwrap_or("");
    let kind = st(owner, &["kind"]);
    let owner_name = st(owner, &["name"]);
    match (kind, group) {
        ("", "") => owner_name.to_string(),
        (kind, "") => format!("{}/{owner_name}", kind.to_lowercase()),
        (kind, group) => format!("{}.{}/{owner_name}", kind.to_lowercase(), group.to_lowercase()),
    }
}

fn format_hpa_metrics(specs: &[Value], statuses: &[Value]) -> String {
    if specs.is_empty() {
        return "<none>".into();
    }
    // A status entry is matched to its spec by position, as kube-apiserver does.
    let status_of = |i: usize, field: &str| statuses.get(i).and_then(|s| s.get(field)).filter(|v| v.is_object());
    let mut shown = Vec::new();
    for (i, spec) in specs.iter().enumerate() {
        let entry = match st(spec, &["type"]) {
            "External" | "Object" => {
                let field = if st(spec, &["type"]) == "External" { "external" } else { "object" };
                let target = get(spec, &[field, "target"]).unwrap_or(&Value::Null);
                if let Some(avg) = get(target, &["averageValue"]).filter(|v| !v.is_null()) {
                    let current = status_of(i, field).and_then(|s| get(s, &["current", "averageValue"])).filter(|v| !v.is_null()).map(|q| quantity(Some(q))).unwrap_or_else(|| "<unknown>".into());
                    format!("{current}/{} (avg)", quantity(Some(avg)))
                } else {
                    let current = status_of(i, field).map(|s| nil_quantity(get(s, &["current", "value"]))).unwrap_or_else(|| "<unknown>".into());
                    format!("{current}/{}", nil_quantity(get(target, &["value"])))
                }
            }
            "Pods" => {
                let current = status_of(i, "pods").map(|s| nil_quantity(get(s, &["current", "averageValue"]))).unwrap_or_else(|| "<unknown>".into());
                format!("{current}/{}", nil_quantity(get(spec, &["pods", "target", "averageValue"])))
            }
            "Resource" | "ContainerResource" => {
                let field = if st(spec, &["type"]) == "Resource" { "resource" } else { "containerResource" };
                let resource = st(spec, &[field, "name"]);
                let target = get(spec, &[field, "target"]).unwrap_or(&Value::Null);
                if let Some(avg) = get(target, &["averageValue"]).filter(|v| !v.is_null()) {
                    let current = status_of(i, field).map(|s| nil_quantity(get(s, &["current", "averageValue"]))).unwrap_or_else(|| "<unknown>".into());
                    format!("{resource}: {current}/{}", quantity(Some(avg)))
                } else {
                    let current = status_of(i, field).and_then(|s| opt_int(s, &["current", "averageUtilization"])).map(|u| format!("{u}%")).unwrap_or_else(|| "<unknown>".into());
                    let target = opt_int(target, &["averageUtilization"]).map(|u| format!("{u}%")).unwrap_or_else(|| "<auto>".into());
                    format!("{resource}: {current}/{target}")
                }
            }
            _ => "<unknown type>".to_string(),
        };
        shown.push(entry);
    }
    const MAX: usize = 2;
    let count = shown.len();
    if count > MAX {
        shown.truncate(MAX);
        format!("{} + {} more...", shown.join(", "), count - MAX)
    } else {
        shown.join(", ")
    }
}

/// The users, groups and service accounts (`namespace/name`) a binding names.
fn subjects_strings(subjects: &[Value]) -> (Vec<String>, Vec<String>, Vec<String>) {
    let (mut users, mut groups, mut sas) = (Vec::new(), Vec::new(), Vec::new());
    for subject in subjects {
        let subject_name = st(subject, &["name"]).to_string();
        match st(subject, &["kind"]) {
            "ServiceAccount" => sas.push(format!("{}/{subject_name}", st(subject, &["namespace"]))),
            "User" => users.push(subject_name),
            "Group" => groups.push(subject_name),
            _ => {}
        }
    }
    (users, groups, sas)
}

// ---------------------------------------------------------------------------------------------
// Shared formatting

fn container_cells(containers: &[Value]) -> (String, String) {
    let names: Vec<&str> = containers.iter().map(|c| st(c, &["name"])).collect();
    let images: Vec<&str> = containers.iter().map(|c| st(c, &["image"])).collect();
    (names.join(","), images.join(","))
}

/// labels.FormatLabels: sorted `k=v,...`, or `<none>`.
fn format_labels(labels: Option<&Value>) -> String {
    let Some(map) = labels.and_then(Value::as_object).filter(|m| !m.is_empty()) else {
        return "<none>".into();
    };
    let mut pairs: Vec<String> = map.iter().map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or(""))).collect();
    pairs.sort();
    pairs.join(",")
}

/// metav1.FormatLabelSelector: the selector string, `<none>` when it selects everything or
/// nothing, `<error>` when it is malformed.
fn format_label_selector(selector: Option<&Value>) -> String {
    match label_selector_string(selector) {
        Ok(s) if s.is_empty() => "<none>".into(),
        Ok(s) => s,
        Err(()) => "<error>".into(),
    }
}

/// `LabelSelectorAsSelector(sel).String()`: requirements sorted by key, `In`/`NotIn` values sorted.
fn label_selector_string(selector: Option<&Value>) -> Result<String, ()> {
    let Some(selector) = selector.filter(|s| s.is_object()) else {
        return Ok(String::new());
    };
    let mut requirements: Vec<(String, String)> = Vec::new();
    if let Some(labels) = selector.get("matchLabels").and_then(Value::as_object) {
        for (key, value) in labels {
            requirements.push((key.clone(), format!("{key}={}", value.as_str().unwrap_or(""))));
        }
    }
    for expr in list(selector, &["matchExpressions"]) {
        let key = st(expr, &["key"]);
        let mut values: Vec<&str> = list(expr, &["values"]).iter().filter_map(Value::as_str).collect();
        values.sort_unstable();
        let rendered = match st(expr, &["operator"]) {
            "In" | "NotIn" if values.is_empty() => return Err(()),
            "In" => format!("{key} in ({})", values.join(",")),
            "NotIn" => format!("{key} notin ({})", values.join(",")),
            "Exists" | "DoesNotExist" if !values.is_empty() => return Err(()),
            "Exists" => key.to_string(),
            "DoesNotExist" => format!("!{key}"),
            _ => return Err(()),
        };
        requirements.push((key.to_string(), rendered));
    }
    requirements.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(requirements.into_iter().map(|(_, r)| r).collect::<Vec<_>>().join(","))
}

/// IntOrString's String(), `N/A` when unset.
fn int_or_string(v: Option<&Value>) -> String {
    match v {
        Some(Value::Number(n)) => n.to_string(),
        Some(Value::String(s)) => s.clone(),
        _ => "N/A".into(),
    }
}

/// A quantity as stored; a missing one is Go's zero Quantity, "0".
// kube-apiserver prints quantities in canonical form; stored quantities are normally canonical already.
fn quantity(v: Option<&Value>) -> String {
    match v {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ => "0".into(),
    }
}

/// A *Quantity printed through its String method, which prints a nil pointer as `<nil>`.
fn nil_quantity(v: Option<&Value>) -> String {
    match v {
        None | Some(Value::Null) => "<nil>".into(),
        some => quantity(some),
    }
}

fn name(obj: &Value) -> Value {
    st(obj, &["metadata", "name"]).into()
}

fn age(obj: &Value, now: Timestamp) -> Value {
    since(ts(obj, &["metadata", "creationTimestamp"]), now).into()
}

/// translateTimestampSince: `<unknown>` for a missing (zero) timestamp.
fn since(t: Option<Timestamp>, now: Timestamp) -> String {
    match t {
        Some(t) => human_duration_nanos(now.duration_since(t).as_nanos()),
        None => "<unknown>".into(),
    }
}

fn is_deleting(obj: &Value) -> bool {
    get(obj, &["metadata", "deletionTimestamp"]).is_some_and(|d| !d.is_null())
}

fn or<'a>(s: &'a str, default: &'a str) -> &'a str {
    if s.is_empty() { default } else { s }
}

fn get<'a>(v: &'a Value, path: &[&str]) -> Option<&'a Value> {
    path.iter().try_fold(v, |cur, key| cur.get(*key))
}

fn st<'a>(v: &'a Value, path: &[&str]) -> &'a str {
    get(v, path).and_then(Value::as_str).unwrap_or("")
}

fn opt_int(v: &Value, path: &[&str]) -> Option<i64> {
    get(v, path).and_then(|x| x.as_i64().or_else(|| x.as_f64().map(|f| f as i64)))
}

fn int(v: &Value, path: &[&str]) -> i64 {
    opt_int(v, path).unwrap_or(0)
}

fn boolean(v: &Value, path: &[&str]) -> bool {
    get(v, path).and_then(Value::as_bool).unwrap_or(false)
}

fn list<'a>(v: &'a Value, path: &[&str]) -> &'a [Value] {
    get(v, path).and_then(Value::as_array).map(Vec::as_slice).unwrap_or(&[])
}

fn map_len(v: &Value, path: &[&str]) -> usize {
    get(v, path).and_then(Value::as_object).map(Map::len).unwrap_or(0)
}

fn ts(v: &Value, path: &[&str]) -> Option<Timestamp> {
    get(v, path).and_then(Value::as_str).and_then(|s| s.parse::<Timestamp>().ok())
}
