//! Protobuf request bodies: objects encoded with k8s-pb (prost bindings generated from Kubernetes'
//! own .proto files, so an encoder independent of the decoder's schema) and a few hand-made wire
//! bytes for what prost never writes (packed lists, unknown fields, damage).

use std::collections::BTreeMap;

use apimachinery::protobuf::{self, ProtobufError, decode_object};
use apimachinery::registry;
use k8s_pb::api::apps::v1 as apps;
use k8s_pb::api::core::v1 as core;
use k8s_pb::apimachinery::pkg::api::resource::Quantity;
use k8s_pb::apimachinery::pkg::apis::meta::v1 as meta;
use k8s_pb::apimachinery::pkg::runtime::{RawExtension, TypeMeta, Unknown};
use k8s_pb::apimachinery::pkg::util::intstr::IntOrString;
use prost::Message;
use serde_json::{Value, json};

fn envelope(api_version: &str, kind: &str, raw: Vec<u8>) -> Vec<u8> {
    let unknown = Unknown {
        type_meta: Some(TypeMeta { api_version: s(api_version), kind: s(kind) }),
        raw: Some(raw),
        // Go writes these non-pointer strings even when empty, as here.
        content_encoding: s(""),
        content_type: s(""),
    };
    let mut body = b"k8s\0".to_vec();
    body.extend(unknown.encode_to_vec());
    body
}

fn encode<M: Message>(api_version: &str, kind: &str, m: &M) -> Vec<u8> {
    envelope(api_version, kind, m.encode_to_vec())
}

fn s(x: &str) -> Option<String> {
    Some(x.to_string())
}

fn map<V>(entries: &[(&str, V)]) -> BTreeMap<String, V>
where
    V: Clone,
{
    entries.iter().map(|(k, v)| (k.to_string(), v.clone())).collect()
}

fn q(x: &str) -> Quantity {
    Quantity { string: s(x) }
}

/// IntOrString as Go writes it: all three fields, whichever is used.
fn int_or_str_int(i: i32) -> Option<IntOrString> {
    Some(IntOrString { r#type: Some(0), int_val: Some(i), str_val: s("") })
}

fn int_or_str_string(v: &str) -> Option<IntOrString> {
    Some(IntOrString { r#type: Some(1), int_val: Some(0), str_val: s(v) })
}

/// ObjectMeta as Go's generated marshaller writes it for a new object: every non-pointer field
/// present, the empty strings and the zero creationTimestamp included.
fn go_meta(name: &str, namespace: &str) -> meta::ObjectMeta {
    meta::ObjectMeta {
        name: s(name),
        generate_name: s(""),
        namespace: s(namespace),
        self_link: s(""),
        uid: s(""),
        resource_version: s(""),
        generation: Some(0),
        creation_timestamp: Some(meta::Time::default()),
        ..Default::default()
    }
}

fn decode(body: &[u8]) -> Value {
    match decode_object(body) {
        Ok(v) => v,
        Err(e) => panic!("decoding failed: {e}"),
    }
}

#[test]
fn configmap_as_kubectl_create_configmap_sends_it() {
    let cm = core::ConfigMap {
        metadata: Some(meta::ObjectMeta { labels: map(&[("app", "web".to_string()), ("tier", "front".to_string())]), ..go_meta("game-config", "default") }),
        data: map(&[("game.properties", "lives=3\nenemies=aliens\n".to_string()), ("ui.color", "purple".to_string()), ("empty", String::new())]),
        binary_data: map(&[("logo.bin", vec![0u8, 1, 2, 0xfe, 0xff])]),
        immutable: None,
    };
    assert_eq!(
        decode(&encode("v1", "ConfigMap", &cm)),
        json!({
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {
                "name": "game-config",
                "namespace": "default",
                "generation": 0,
                "creationTimestamp": null,
                "labels": {"app": "web", "tier": "front"},
            },
            "data": {"empty": "", "game.properties": "lives=3\nenemies=aliens\n", "ui.color": "purple"},
            "binaryData": {"logo.bin": "AAEC/v8="},
        })
    );
}

#[test]
fn map_keys_come_out_sorted_like_go_writes_them() {
    // prost writes BTreeMaps in order; put the entries on the wire out of order by hand.
    let mut raw = Vec::new();
    for (k, v) in [("zeta", "1"), ("alpha", "2"), ("mid", "3"), ("alpha", "4")] {
        let mut entry = Vec::new();
        put_len(&mut entry, 1, k.as_bytes());
        put_len(&mut entry, 2, v.as_bytes());
        put_len(&mut raw, 2, &entry);
    }
    let v = decode(&envelope("v1", "ConfigMap", raw));
    let keys: Vec<&String> = v["data"].as_object().unwrap().keys().collect();
    assert_eq!(keys, ["alpha", "mid", "zeta"]);
    // The last duplicate wins, as protobuf and Go's map decoding agree.
    assert_eq!(v["data"]["alpha"], "4");
}

#[test]
fn namespace_keeps_empty_spec_and_status() {
    let ns = core::Namespace {
        metadata: Some(meta::ObjectMeta { name: s("team-a"), creation_timestamp: Some(meta::Time::default()), ..Default::default() }),
        spec: Some(core::NamespaceSpec::default()),
        status: Some(core::NamespaceStatus { phase: s(""), conditions: vec![] }),
    };
    assert_eq!(
        decode(&encode("v1", "Namespace", &ns)),
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team-a", "creationTimestamp": null}, "spec": {}, "status": {}})
    );
}

#[test]
fn deployment_with_a_pod_template() {
    let labels = map(&[("app", "web".to_string())]);
    let container = core::Container {
        name: s("nginx"),
        image: s("nginx:1.27"),
        args: vec!["--port".into(), "80".into()],
        ports: vec![
            core::ContainerPort { name: s("http"), container_port: Some(80), protocol: s("TCP"), host_port: Some(0), host_ip: s("") },
            core::ContainerPort { container_port: Some(9090), ..Default::default() },
        ],
        env: vec![
            core::EnvVar { name: s("MODE"), value: s("production"), value_from: None },
            core::EnvVar {
                name: s("COLOR"),
                value: s(""),
                value_from: Some(core::EnvVarSource {
                    config_map_key_ref: Some(core::ConfigMapKeySelector {
                        local_object_reference: Some(core::LocalObjectReference { name: s("game-config") }),
                        key: s("ui.color"),
                        optional: Some(false),
                    }),
                    ..Default::default()
                }),
            },
        ],
        resources: Some(core::ResourceRequirements {
            limits: map(&[("cpu", q("500m")), ("memory", q("256Mi"))]),
            requests: map(&[("cpu", q("250m")), ("memory", q("64Mi"))]),
            claims: vec![],
        }),
        readiness_probe: Some(core::Probe {
            handler: Some(core::ProbeHandler {
                http_get: Some(core::HttpGetAction { path: s("/healthz"), port: int_or_str_string("http"), host: s(""), scheme: s("HTTP"), http_headers: vec![] }),
                ..Default::default()
            }),
            period_seconds: Some(5),
            ..Default::default()
        }),
        volume_mounts: vec![core::VolumeMount { name: s("config"), mount_path: s("/etc/game"), read_only: Some(true), ..Default::default() }],
        // Unset non-pointer fields, as Go writes them.
        termination_message_path: s(""),
        image_pull_policy: s(""),
        stdin: Some(false),
        ..Default::default()
    };
    let deployment = apps::Deployment {
        metadata: Some(meta::ObjectMeta { labels: labels.clone(), ..go_meta("web", "") }),
        spec: Some(apps::DeploymentSpec {
            replicas: Some(3),
            selector: Some(meta::LabelSelector { match_labels: labels.clone(), match_expressions: vec![] }),
            template: Some(core::PodTemplateSpec {
                metadata: Some(meta::ObjectMeta { labels: labels.clone(), creation_timestamp: Some(meta::Time::default()), ..Default::default() }),
                spec: Some(core::PodSpec {
                    volumes: vec![core::Volume {
                        name: s("config"),
                        volume_source: Some(core::VolumeSource {
                            config_map: Some(core::ConfigMapVolumeSource {
                                local_object_reference: Some(core::LocalObjectReference { name: s("game-config") }),
                                default_mode: Some(0o644),
                                ..Default::default()
                            }),
                            ..Default::default()
                        }),
                    }],
                    containers: vec![container],
                    restart_policy: s(""),
                    termination_grace_period_seconds: Some(0),
                    automount_service_account_token: Some(false),
                    ..Default::default()
                }),
            }),
            strategy: Some(apps::DeploymentStrategy {
                r#type: s("RollingUpdate"),
                rolling_update: Some(apps::RollingUpdateDeployment { max_unavailable: int_or_str_int(1), max_surge: int_or_str_string("25%") }),
            }),
            min_ready_seconds: Some(0),
            ..Default::default()
        }),
        status: Some(apps::DeploymentStatus::default()),
    };
    assert_eq!(
        decode(&encode("apps/v1", "Deployment", &deployment)),
        json!({
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "web", "generation": 0, "creationTimestamp": null, "labels": {"app": "web"}},
            "spec": {
                "replicas": 3,
                "selector": {"matchLabels": {"app": "web"}},
                "template": {
                    "metadata": {"creationTimestamp": null, "labels": {"app": "web"}},
                    "spec": {
                        // Embedded VolumeSource and LocalObjectReference land in their parents.
                        "volumes": [{"name": "config", "configMap": {"name": "game-config", "defaultMode": 420}}],
                        "containers": [{
                            "name": "nginx",
                            "image": "nginx:1.27",
                            "args": ["--port", "80"],
                            "ports": [
                                {"name": "http", "containerPort": 80, "protocol": "TCP", "hostPort": 0},
                                {"containerPort": 9090},
                            ],
                            "env": [
                                {"name": "MODE", "value": "production"},
                                {"name": "COLOR", "valueFrom": {"configMapKeyRef": {"name": "game-config", "key": "ui.color", "optional": false}}},
                            ],
                            "resources": {
                                "limits": {"cpu": "500m", "memory": "256Mi"},
                                "requests": {"cpu": "250m", "memory": "64Mi"},
                            },
                            "volumeMounts": [{"name": "config", "mountPath": "/etc/game", "readOnly": true}],
                            "readinessProbe": {"httpGet": {"path": "/healthz", "port": "http", "scheme": "HTTP"}, "periodSeconds": 5},
                            "stdin": false,
                        }],
                        "terminationGracePeriodSeconds": 0,
                        "automountServiceAccountToken": false,
                    },
                },
                "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1, "maxSurge": "25%"}},
                "minReadySeconds": 0,
            },
            "status": {},
        })
    );
}

#[test]
fn secret_bytes_become_base64() {
    let secret = core::Secret {
        metadata: Some(go_meta("db-credentials", "prod")),
        data: map(&[("password", b"s3cr3t!".to_vec()), ("binary", vec![0xde, 0xad, 0xbe, 0xef]), ("empty", vec![])]),
        string_data: map(&[("note", "plain".to_string())]),
        r#type: s("Opaque"),
        immutable: Some(true),
    };
    assert_eq!(
        decode(&encode("v1", "Secret", &secret)),
        json!({
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "db-credentials", "namespace": "prod", "generation": 0, "creationTimestamp": null},
            "data": {"binary": "3q2+7w==", "empty": "", "password": "czNjcjN0IQ=="},
            "type": "Opaque",
            "stringData": {"note": "plain"},
            "immutable": true,
        })
    );
}

#[test]
fn service_target_ports_int_and_string() {
    let svc = core::Service {
        metadata: Some(go_meta("web", "default")),
        spec: Some(core::ServiceSpec {
            ports: vec![
                core::ServicePort { name: s("http"), protocol: s("TCP"), port: Some(80), target_port: int_or_str_int(8080), node_port: Some(0), app_protocol: None },
                core::ServicePort {
                    name: s("metrics"),
                    protocol: s("TCP"),
                    port: Some(9090),
                    target_port: int_or_str_string("metrics"),
                    node_port: Some(30090),
                    app_protocol: s("http"),
                },
            ],
            selector: map(&[("app", "web".to_string())]),
            cluster_ip: s(""),
            r#type: s("NodePort"),
            session_affinity: s(""),
            ..Default::default()
        }),
        status: Some(core::ServiceStatus { load_balancer: Some(core::LoadBalancerStatus::default()), conditions: vec![] }),
    };
    assert_eq!(
        decode(&encode("v1", "Service", &svc)),
        json!({
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "web", "namespace": "default", "generation": 0, "creationTimestamp": null},
            "spec": {
                "ports": [
                    {"name": "http", "protocol": "TCP", "port": 80, "targetPort": 8080, "nodePort": 0},
                    {"name": "metrics", "protocol": "TCP", "port": 9090, "targetPort": "metrics", "nodePort": 30090, "appProtocol": "http"},
                ],
                "selector": {"app": "web"},
                "type": "NodePort",
            },
            "status": {"loadBalancer": {}},
        })
    );
}

#[test]
fn core_event_times_and_micro_times() {
    let event = core::Event {
        metadata: Some(meta::ObjectMeta { name: s("web-7d4b9.17a3"), namespace: s("default"), ..Default::default() }),
        involved_object: Some(core::ObjectReference { kind: s("Pod"), namespace: s("default"), name: s("web-7d4b9"), uid: s("0b1c"), api_version: s("v1"), ..Default::default() }),
        reason: s("Scheduled"),
        message: s("Successfully assigned default/web-7d4b9 to node-1"),
        source: Some(core::EventSource { component: s("default-scheduler"), host: s("") }),
        first_timestamp: Some(meta::Time { seconds: Some(1_700_000_000), nanos: Some(0) }),
        // Time has seconds precision: the nanoseconds are not written.
        last_timestamp: Some(meta::Time { seconds: Some(1_700_000_061), nanos: Some(999_999_999) }),
        count: Some(2),
        r#type: s("Normal"),
        event_time: Some(meta::MicroTime { seconds: Some(1_700_000_000), nanos: Some(123_456_789) }),
        reporting_component: s("default-scheduler"),
        reporting_instance: s("default-scheduler-node-1"),
        action: s("Binding"),
        ..Default::default()
    };
    assert_eq!(
        decode(&encode("v1", "Event", &event)),
        json!({
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": "web-7d4b9.17a3", "namespace": "default"},
            "involvedObject": {"kind": "Pod", "namespace": "default", "name": "web-7d4b9", "uid": "0b1c", "apiVersion": "v1"},
            "reason": "Scheduled",
            "message": "Successfully assigned default/web-7d4b9 to node-1",
            "source": {"component": "default-scheduler"},
            "firstTimestamp": "2023-11-14T22:13:20Z",
            "lastTimestamp": "2023-11-14T22:14:21Z",
            "count": 2,
            "type": "Normal",
            "eventTime": "2023-11-14T22:13:20.123456Z",
            "action": "Binding",
            "reportingComponent": "default-scheduler",
            "reportingInstance": "default-scheduler-node-1",
        })
    );
}

#[test]
fn events_k8s_io_event_and_series() {
    use k8s_pb::api::events::v1 as events;
    let event = events::Event {
        metadata: Some(meta::ObjectMeta { name: s("e1"), namespace: s("kube-system"), ..Default::default() }),
        event_time: Some(meta::MicroTime { seconds: Some(0), nanos: Some(1_000) }),
        series: Some(events::EventSeries { count: Some(3), last_observed_time: Some(meta::MicroTime { seconds: Some(86_400), nanos: Some(0) }) }),
        reporting_controller: s("kubelet"),
        reporting_instance: s("node-1"),
        action: s("Pulling"),
        reason: s("Pulling"),
        regarding: Some(core::ObjectReference { kind: s("Pod"), name: s("p"), ..Default::default() }),
        note: s("Pulling image"),
        r#type: s("Normal"),
        deprecated_first_timestamp: Some(meta::Time::default()),
        deprecated_count: Some(0),
        ..Default::default()
    };
    assert_eq!(
        decode(&encode("events.k8s.io/v1", "Event", &event)),
        json!({
            "apiVersion": "events.k8s.io/v1",
            "kind": "Event",
            "metadata": {"name": "e1", "namespace": "kube-system"},
            "eventTime": "1970-01-01T00:00:00.000001Z",
            "series": {"count": 3, "lastObservedTime": "1970-01-02T00:00:00.000000Z"},
            "reportingController": "kubelet",
            "reportingInstance": "node-1",
            "action": "Pulling",
            "reason": "Pulling",
            "regarding": {"kind": "Pod", "name": "p"},
            "note": "Pulling image",
            "type": "Normal",
            "deprecatedFirstTimestamp": null,
            "deprecatedCount": 0,
        })
    );
}

#[test]
fn delete_options_under_any_group_version() {
    let opts = meta::DeleteOptions {
        grace_period_seconds: Some(0),
        preconditions: Some(meta::Preconditions { uid: s("5c3a"), resource_version: None }),
        propagation_policy: s("Foreground"),
        dry_run: vec!["All".into()],
        ..Default::default()
    };
    let expected = |api_version: &str| {
        json!({
            "apiVersion": api_version,
            "kind": "DeleteOptions",
            "gracePeriodSeconds": 0,
            "preconditions": {"uid": "5c3a"},
            "propagationPolicy": "Foreground",
            "dryRun": ["All"],
        })
    };
    for api_version in ["v1", "apps/v1", "meta.k8s.io/v1"] {
        assert_eq!(decode(&encode(api_version, "DeleteOptions", &opts)), expected(api_version));
    }
}

#[test]
fn eviction_binding_and_scale_subresource_bodies() {
    use k8s_pb::api::autoscaling::v1 as autoscaling;
    use k8s_pb::api::policy::v1 as policy;
    let eviction = policy::Eviction {
        metadata: Some(meta::ObjectMeta { name: s("web-1"), namespace: s("default"), ..Default::default() }),
        delete_options: Some(meta::DeleteOptions { grace_period_seconds: Some(30), ..Default::default() }),
    };
    assert_eq!(
        decode(&encode("policy/v1", "Eviction", &eviction)),
        json!({"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": "web-1", "namespace": "default"}, "deleteOptions": {"gracePeriodSeconds": 30}})
    );
    let binding = core::Binding {
        metadata: Some(meta::ObjectMeta { name: s("web-1"), ..Default::default() }),
        target: Some(core::ObjectReference { kind: s("Node"), name: s("node-1"), api_version: s("v1"), ..Default::default() }),
    };
    assert_eq!(
        decode(&encode("v1", "Binding", &binding)),
        json!({"apiVersion": "v1", "kind": "Binding", "metadata": {"name": "web-1"}, "target": {"kind": "Node", "name": "node-1", "apiVersion": "v1"}})
    );
    let scale = autoscaling::Scale {
        metadata: Some(meta::ObjectMeta { name: s("web"), namespace: s("default"), resource_version: s("42"), ..Default::default() }),
        spec: Some(autoscaling::ScaleSpec { replicas: Some(0) }),
        status: Some(autoscaling::ScaleStatus { replicas: Some(3), selector: s("app=web") }),
    };
    assert_eq!(
        decode(&encode("autoscaling/v1", "Scale", &scale)),
        json!({
            "apiVersion": "autoscaling/v1",
            "kind": "Scale",
            "metadata": {"name": "web", "namespace": "default", "resourceVersion": "42"},
            "spec": {"replicas": 0},
            "status": {"replicas": 3, "selector": "app=web"},
        })
    );
}

#[test]
fn embedded_json_documents_and_managed_fields() {
    let revision = apps::ControllerRevision {
        metadata: Some(meta::ObjectMeta {
            name: s("web-5d8f"),
            managed_fields: vec![meta::ManagedFieldsEntry {
                manager: s("kube-controller-manager"),
                operation: s("Update"),
                api_version: s("apps/v1"),
                time: Some(meta::Time { seconds: Some(1_600_000_000), nanos: None }),
                fields_type: s("FieldsV1"),
                fields_v1: Some(meta::FieldsV1 { raw: Some(br#"{"f:data":{}}"#.to_vec()) }),
                subresource: s(""),
            }],
            ..Default::default()
        }),
        data: Some(RawExtension { raw: Some(br#"{"spec":{"template":{"spec":{"containers":[{"name":"a"}]}}}}"#.to_vec()) }),
        revision: Some(2),
    };
    assert_eq!(
        decode(&encode("apps/v1", "ControllerRevision", &revision)),
        json!({
            "apiVersion": "apps/v1",
            "kind": "ControllerRevision",
            "metadata": {
                "name": "web-5d8f",
                "managedFields": [{
                    "manager": "kube-controller-manager",
                    "operation": "Update",
                    "apiVersion": "apps/v1",
                    "time": "2020-09-13T12:26:40Z",
                    "fieldsType": "FieldsV1",
                    "fieldsV1": {"f:data": {}},
                }],
            },
            "data": {"spec": {"template": {"spec": {"containers": [{"name": "a"}]}}}},
            "revision": 2,
        })
    );

    // A RawExtension may carry a protobuf object of its own.
    let inner = encode("v1", "ConfigMap", &core::ConfigMap { metadata: Some(meta::ObjectMeta { name: s("inner"), ..Default::default() }), ..Default::default() });
    let revision = apps::ControllerRevision { data: Some(RawExtension { raw: Some(inner) }), ..Default::default() };
    assert_eq!(decode(&encode("apps/v1", "ControllerRevision", &revision))["data"], json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "inner"}}));

    // Damage inside it is located through both objects.
    let mut bad_meta = Vec::new();
    put_uint(&mut bad_meta, 1, 5);
    let mut bad_cm = Vec::new();
    put_len(&mut bad_cm, 1, &bad_meta);
    let revision = apps::ControllerRevision { data: Some(RawExtension { raw: Some(envelope("v1", "ConfigMap", bad_cm)) }), ..Default::default() };
    let err = decode_object(&encode("apps/v1", "ControllerRevision", &revision)).unwrap_err();
    assert!(err.to_string().starts_with("malformed protobuf at ControllerRevision.data->ConfigMap.metadata.name: wire type 0"), "{err}");

    let revision = apps::ControllerRevision { data: Some(RawExtension { raw: Some(b"{not json".to_vec()) }), ..Default::default() };
    let err = decode_object(&encode("apps/v1", "ControllerRevision", &revision)).unwrap_err();
    assert!(matches!(&err, ProtobufError::Malformed { path, .. } if path == "ControllerRevision.data"), "{err}");
    assert!(err.to_string().contains("not JSON"), "{err}");
}

#[test]
fn pointer_zero_values_survive() {
    use k8s_pb::api::discovery::v1 as discovery;
    let slice = discovery::EndpointSlice {
        metadata: Some(meta::ObjectMeta { name: s("web-abc"), ..Default::default() }),
        address_type: s("IPv4"),
        endpoints: vec![discovery::Endpoint {
            addresses: vec!["10.0.0.7".into()],
            conditions: Some(discovery::EndpointConditions { ready: Some(false), serving: Some(true), terminating: Some(false) }),
            node_name: s("node-1"),
            ..Default::default()
        }],
        ports: vec![discovery::EndpointPort { name: s(""), port: Some(8080), protocol: s("TCP"), app_protocol: None }],
    };
    assert_eq!(
        decode(&encode("discovery.k8s.io/v1", "EndpointSlice", &slice)),
        json!({
            "apiVersion": "discovery.k8s.io/v1",
            "kind": "EndpointSlice",
            "metadata": {"name": "web-abc"},
            "endpoints": [{"addresses": ["10.0.0.7"], "conditions": {"ready": false, "serving": true, "terminating": false}, "nodeName": "node-1"}],
            "ports": [{"port": 8080, "protocol": "TCP"}],
            "addressType": "IPv4",
        })
    );

    // "" asks for no storage class at all, unlike an unset storageClassName: it is kept.
    let pvc = core::PersistentVolumeClaim {
        metadata: Some(meta::ObjectMeta { name: s("data"), ..Default::default() }),
        spec: Some(core::PersistentVolumeClaimSpec {
            access_modes: vec!["ReadWriteOnce".into()],
            resources: Some(core::VolumeResourceRequirements { requests: map(&[("storage", q("1Gi"))]), limits: BTreeMap::new() }),
            storage_class_name: s(""),
            volume_mode: s(""),
            ..Default::default()
        }),
        status: None,
    };
    assert_eq!(
        decode(&encode("v1", "PersistentVolumeClaim", &pvc))["spec"],
        json!({"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}, "storageClassName": ""})
    );
}

#[test]
fn required_strings_keep_their_empty_value() {
    use k8s_pb::api::rbac::v1 as rbac;
    let binding = rbac::RoleBinding {
        metadata: Some(meta::ObjectMeta { name: s("read-pods"), namespace: s("default"), ..Default::default() }),
        subjects: vec![rbac::Subject { kind: s("User"), api_group: s("rbac.authorization.k8s.io"), name: s("jane"), namespace: s("") }],
        role_ref: Some(rbac::RoleRef { api_group: s(""), kind: s("Role"), name: s("pod-reader") }),
    };
    assert_eq!(
        decode(&encode("rbac.authorization.k8s.io/v1", "RoleBinding", &binding)),
        json!({
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": {"name": "read-pods", "namespace": "default"},
            "subjects": [{"kind": "User", "apiGroup": "rbac.authorization.k8s.io", "name": "jane"}],
            "roleRef": {"apiGroup": "", "kind": "Role", "name": "pod-reader"},
        })
    );
}

// ---------------------------------------------------------------------------------------------
// Hand-made wire bytes.

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn put_key(out: &mut Vec<u8>, tag: u64, wire: u64) {
    put_varint(out, tag << 3 | wire);
}

fn put_len(out: &mut Vec<u8>, tag: u64, b: &[u8]) {
    put_key(out, tag, 2);
    put_varint(out, b.len() as u64);
    out.extend_from_slice(b);
}

fn put_uint(out: &mut Vec<u8>, tag: u64, v: u64) {
    put_key(out, tag, 0);
    put_varint(out, v);
}

/// Job{spec{podFailurePolicy{rules[{action, onExitCodes{operator, values}}]}}} with the exit codes
/// packed or not.
fn job_with_exit_codes(packed: bool) -> Vec<u8> {
    let mut on_exit = Vec::new();
    put_len(&mut on_exit, 2, b"In");
    if packed {
        let mut values = Vec::new();
        for v in [1u64, 42, 255] {
            put_varint(&mut values, v);
        }
        put_len(&mut on_exit, 3, &values);
    } else {
        for v in [1u64, 42, 255] {
            put_uint(&mut on_exit, 3, v);
        }
    }
    let mut rule = Vec::new();
    put_len(&mut rule, 1, b"FailJob");
    put_len(&mut rule, 2, &on_exit);
    let mut policy = Vec::new();
    put_len(&mut policy, 1, &rule);
    let mut spec = Vec::new();
    put_len(&mut spec, 11, &policy);
    // A negative int32 (backoffLimit) goes on the wire sign-extended to ten bytes.
    put_uint(&mut spec, 7, -1i64 as u64);
    let mut job = Vec::new();
    put_len(&mut job, 2, &spec);
    envelope("batch/v1", "Job", job)
}

#[test]
fn repeated_scalars_packed_or_not() {
    let expected = json!({
        "apiVersion": "batch/v1",
        "kind": "Job",
        "spec": {
            "backoffLimit": -1,
            "podFailurePolicy": {"rules": [{"action": "FailJob", "onExitCodes": {"operator": "In", "values": [1, 42, 255]}}]},
        },
    });
    assert_eq!(decode(&job_with_exit_codes(true)), expected);
    assert_eq!(decode(&job_with_exit_codes(false)), expected);
}

#[test]
fn unknown_fields_are_skipped_and_repeated_messages_merge() {
    let mut raw = Vec::new();
    let mut meta1 = Vec::new();
    put_len(&mut meta1, 1, b"settings");
    put_len(&mut raw, 1, &meta1);
    // Fields this schema does not know, of every wire type.
    put_uint(&mut raw, 900, 7);
    put_len(&mut raw, 901, b"future");
    put_key(&mut raw, 902, 1);
    raw.extend_from_slice(&[0; 8]);
    put_key(&mut raw, 903, 5);
    raw.extend_from_slice(&[0; 4]);
    // A second occurrence of a singular message merges into the first.
    let mut meta2 = Vec::new();
    put_len(&mut meta2, 3, b"default");
    put_len(&mut raw, 1, &meta2);
    assert_eq!(decode(&envelope("v1", "ConfigMap", raw)), json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "settings", "namespace": "default"}}));
}

fn sample_deployment_body() -> Vec<u8> {
    let deployment = apps::Deployment {
        metadata: Some(go_meta("web", "default")),
        spec: Some(apps::DeploymentSpec {
            replicas: Some(2),
            template: Some(core::PodTemplateSpec {
                metadata: Some(go_meta("", "")),
                spec: Some(core::PodSpec {
                    containers: vec![core::Container {
                        name: s("c"),
                        image: s("busybox"),
                        resources: Some(core::ResourceRequirements { limits: map(&[("cpu", q("1"))]), ..Default::default() }),
                        ..Default::default()
                    }],
                    ..Default::default()
                }),
            }),
            strategy: Some(apps::DeploymentStrategy {
                r#type: s("RollingUpdate"),
                rolling_update: Some(apps::RollingUpdateDeployment { max_unavailable: int_or_str_int(1), max_surge: int_or_str_string("25%") }),
            }),
            ..Default::default()
        }),
        status: None,
    };
    encode("apps/v1", "Deployment", &deployment)
}

#[test]
fn truncated_bodies_are_errors() {
    let body = sample_deployment_body();
    assert!(decode_object(&body).is_ok());
    let err = decode_object(&body[..body.len() - 1]).unwrap_err();
    assert!(matches!(err, ProtobufError::Malformed { .. }), "{err}");
    assert_eq!(err.to_string(), "malformed protobuf at runtime.Unknown.contentType: truncated varint");

    // Cut inside the object: the raw bytes are re-wrapped so that only the object is short.
    let raw = Unknown::decode(&body[4..]).unwrap().raw.unwrap();
    let cut = &raw[..raw.len() - 3];
    let err = decode_object(&envelope("apps/v1", "Deployment", cut.to_vec())).unwrap_err();
    let msg = err.to_string();
    assert!(msg.starts_with("malformed protobuf at Deployment.spec"), "{msg}");
    assert!(msg.contains("truncated"), "{msg}");

    // No prefix of a valid body makes the decoder panic.
    for n in 0..body.len() {
        let _ = decode_object(&body[..n]);
    }
}

#[test]
fn damaged_bodies_never_panic() {
    let body = sample_deployment_body();
    // A small deterministic generator (xorshift) flips, drops and inserts bytes.
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut errors = 0;
    for _ in 0..3000 {
        let mut b = body.clone();
        for _ in 0..(next() % 4 + 1) {
            let i = 4 + (next() as usize) % (b.len() - 4);
            match next() % 3 {
                0 => b[i] = next() as u8,
                1 => {
                    b.remove(i);
                }
                _ => b.insert(i, next() as u8),
            }
        }
        if decode_object(&b).is_err() {
            errors += 1;
        }
    }
    assert!(errors > 0);
}

#[test]
fn non_protobuf_bodies_are_refused() {
    for body in [&b""[..], b"k8s", br#"{"apiVersion":"v1","kind":"ConfigMap"}"#, b"apiVersion: v1\nkind: ConfigMap\n"] {
        let err = decode_object(body).unwrap_err();
        assert!(matches!(err, ProtobufError::NotProtobuf), "{err}");
        assert!(err.to_string().contains("not a Kubernetes protobuf object"), "{err}");
    }
    // The magic followed by garbage.
    let err = decode_object(b"k8s\0\xff\xff\xff").unwrap_err();
    assert!(matches!(err, ProtobufError::Malformed { .. }), "{err}");
}

#[test]
fn envelope_problems_name_what_is_wrong() {
    let err = decode_object(&envelope("example.com/v1", "Widget", vec![])).unwrap_err();
    assert!(matches!(&err, ProtobufError::UnknownKind { api_version, kind } if api_version == "example.com/v1" && kind == "Widget"));
    let msg = err.to_string();
    assert!(msg.contains("example.com/v1") && msg.contains("Widget"), "{msg}");
    // A kind we serve, in a version we do not.
    assert!(matches!(decode_object(&envelope("apps/v1beta2", "Deployment", vec![])), Err(ProtobufError::UnknownKind { .. })));

    let no_type_meta = [b"k8s\0".to_vec(), Unknown { raw: Some(vec![]), ..Default::default() }.encode_to_vec()].concat();
    assert!(matches!(decode_object(&no_type_meta), Err(ProtobufError::MissingTypeMeta(_))));

    let gzipped = [
        b"k8s\0".to_vec(),
        Unknown { type_meta: Some(TypeMeta { api_version: s("v1"), kind: s("ConfigMap") }), raw: Some(vec![1, 2]), content_encoding: s("gzip"), content_type: None }
            .encode_to_vec(),
    ]
    .concat();
    let err = decode_object(&gzipped).unwrap_err();
    assert!(matches!(&err, ProtobufError::UnsupportedEncoding(e) if e == "gzip"), "{err}");

    // A field with the wrong wire type is reported where it is.
    let mut raw = Vec::new();
    let mut meta = Vec::new();
    put_uint(&mut meta, 1, 5); // name is a string, not a varint
    put_len(&mut raw, 1, &meta);
    let err = decode_object(&envelope("v1", "ConfigMap", raw)).unwrap_err();
    let msg = err.to_string();
    assert!(msg.starts_with("malformed protobuf at ConfigMap.metadata.name: wire type 0"), "{msg}");

    // An IntOrString that is neither kind.
    let mut ios = Vec::new();
    put_uint(&mut ios, 1, 7);
    let mut port = Vec::new();
    put_len(&mut port, 4, &ios);
    let mut spec = Vec::new();
    put_len(&mut spec, 1, &port);
    let mut svc = Vec::new();
    put_len(&mut svc, 2, &spec);
    let err = decode_object(&envelope("v1", "Service", svc)).unwrap_err();
    assert!(err.to_string().contains("Service.spec.ports[0].targetPort: IntOrString type 7"), "{err}");
}

#[test]
fn deep_nesting_is_refused() {
    // RawExtensions nested inside each other, each one a ControllerRevision.
    let mut inner = encode("v1", "ConfigMap", &core::ConfigMap::default());
    for _ in 0..200 {
        inner = encode("apps/v1", "ControllerRevision", &apps::ControllerRevision { data: Some(RawExtension { raw: Some(inner) }), ..Default::default() });
    }
    let err = decode_object(&inner).unwrap_err();
    assert!(err.to_string().contains("nested more than"), "{err}");
}

// ---------------------------------------------------------------------------------------------
// Coverage and the schema against k8s-openapi.

#[test]
fn every_served_resource_decodes() {
    for r in registry::resources() {
        assert!(protobuf::supports_kind(&r.api_version(), r.kind), "{} {}", r.api_version(), r.kind);
        // An empty object of each kind decodes to just its type.
        let v = decode(&envelope(&r.api_version(), r.kind, vec![]));
        assert_eq!(v, json!({"apiVersion": r.api_version(), "kind": r.kind}));
    }
    for (api_version, kind) in [("v1", "Binding"), ("autoscaling/v1", "Scale"), ("policy/v1", "Eviction"), ("meta.k8s.io/v1", "DeleteOptions")] {
        assert!(protobuf::supports_kind(api_version, kind), "{api_version} {kind}");
    }
    assert_eq!(protobuf::schema_dangling_references(), Vec::<String>::new());
}

/// Fields k8s-pb 0.9 (Kubernetes 1.34) has that 1.33's OpenAPI does not: their names are
/// camel-cased from the proto names rather than checked.
const NEWER_THAN_1_33: &[&str] = &[
    "io.k8s.api.core.v1.Container.restartPolicyRules",
    "io.k8s.api.core.v1.EnvVarSource.fileKeyRef",
    "io.k8s.api.core.v1.EphemeralContainer.restartPolicyRules",
    "io.k8s.api.core.v1.NodeStatus.declaredFeatures",
    "io.k8s.api.core.v1.PodSpec.hostnameOverride",
    "io.k8s.api.core.v1.PodSpec.workloadRef",
    "io.k8s.api.core.v1.PodStatus.allocatedResources",
    "io.k8s.api.core.v1.PodStatus.extendedResourceClaimStatus",
    "io.k8s.api.core.v1.PodStatus.resources",
    "io.k8s.api.core.v1.VolumeProjection.podCertificate",
];

#[test]
fn json_names_match_k8s_openapi() {
    use k8s_openapi::api;
    let mut generator = schemars::generate::SchemaSettings::openapi3().into_generator();
    for r in registry::resources() {
        (r.schema)(&mut generator);
    }
    generator.subschema_for::<api::core::v1::Binding>();
    generator.subschema_for::<api::autoscaling::v1::Scale>();
    generator.subschema_for::<api::policy::v1::Eviction>();
    generator.subschema_for::<k8s_openapi::apimachinery::pkg::apis::meta::v1::DeleteOptions>();
    let defs = generator.take_definitions(true);

    let mut checked = 0;
    let mut unexpected = Vec::new();
    for (definition, names) in protobuf::schema_json_names() {
        // Messages only ever embedded (VolumeSource, ProbeHandler) and those newer than 1.33 have
        // no definition of their own; their names are checked through the embedding object.
        let Some(props) = defs.get(&definition).and_then(|d| d.get("properties")).and_then(Value::as_object) else { continue };
        for name in names {
            checked += 1;
            let full = format!("{definition}.{name}");
            if !props.contains_key(&name) && !NEWER_THAN_1_33.contains(&full.as_str()) {
                unexpected.push(full);
            }
        }
    }
    assert!(checked > 1000, "only {checked} names checked");
    assert_eq!(unexpected, Vec::<String>::new());
}
