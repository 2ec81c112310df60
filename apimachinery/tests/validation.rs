//! Validation rules, table-driven: each valid object passes, each rule fails with Kubernetes'
//! field path and message.

mod common;

use apimachinery::registry::find_kind;
use apimachinery::validation::{self, ErrorType, FieldError};
use common::{assert_contains, assert_has, assert_messages, create, messages, prepare, remove, set, update};
use serde_json::{Value, json};

const LABEL_MSG: &str = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";
const SUBDOMAIN_MSG: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
const NAME_PART_MSG: &str = "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')";
const LABEL_VALUE_MSG: &str = "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')";

/// (description, object, expected messages) — an empty list means valid.
type Case = (&'static str, Value, Vec<String>);

#[track_caller]
fn run(cases: Vec<Case>) {
    for (name, obj, want) in cases {
        let got = messages(&create(&obj));
        assert_eq!(got, want, "case {name:?}");
    }
}

fn m(s: &str) -> String {
    s.to_string()
}

fn pod() -> Value {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "web", "namespace": "default", "labels": {"app": "web"}, "annotations": {"example.com/owner": "team-a"}},
        "spec": {
            "containers": [{
                "name": "app", "image": "nginx:1.25",
                "ports": [{"name": "http", "containerPort": 80}],
                "env": [{"name": "MODE", "value": "prod"}, {"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}}],
                "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}, "limits": {"cpu": "500m", "memory": "128Mi"}},
                "volumeMounts": [{"name": "config", "mountPath": "/etc/app"}],
                "readinessProbe": {"httpGet": {"path": "/healthz", "port": "http"}},
                "livenessProbe": {"tcpSocket": {"port": 80}},
            }],
            "volumes": [{"name": "config", "configMap": {"name": "app-config"}}],
            "nodeSelector": {"kubernetes.io/os": "linux"},
            "affinity": {"podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
                {"weight": 50, "podAffinityTerm": {"labelSelector": {"matchLabels": {"app": "web"}}, "topologyKey": "kubernetes.io/hostname"}}]}},
        }
    })
}

#[test]
fn pods() {
    let p = pod();
    run(vec![
        ("valid", p.clone(), vec![]),
        ("generateName instead of name", set(&remove(&p, "/metadata/name"), "/metadata/generateName", json!("web-")), vec![]),
        ("no name", remove(&p, "/metadata/name"), vec![m("metadata.name: Required value: name or generateName is required")]),
        ("bad name", set(&p, "/metadata/name", json!("Foo_")), vec![format!("metadata.name: Invalid value: \"Foo_\": {SUBDOMAIN_MSG}")]),
        ("bad namespace", set(&p, "/metadata/namespace", json!("Bad_NS")), vec![format!("metadata.namespace: Invalid value: \"Bad_NS\": {LABEL_MSG}")]),
        ("bad label key", set(&p, "/metadata/labels", json!({"bad key!": "x"})), vec![format!("metadata.labels: Invalid value: \"bad key!\": {NAME_PART_MSG}")]),
        (
            "label value too long",
            set(&p, "/metadata/labels/app", json!("a".repeat(64))),
            vec![format!("metadata.labels: Invalid value: \"{}\": must be no more than 63 characters", "a".repeat(64))],
        ),
        (
            "bad annotation key",
            set(&p, "/metadata/annotations", json!({"a/b/c": "x"})),
            vec![m(
                "metadata.annotations: Invalid value: \"a/b/c\": a qualified name must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]') with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')",
            )],
        ),
        (
            "annotations over 256 KiB",
            set(&p, "/metadata/annotations/big", json!("x".repeat(256 * 1024))),
            vec![m("metadata.annotations: Too long: may not be more than 262144 bytes")],
        ),
        (
            "unqualified finalizer",
            set(&p, "/metadata/finalizers", json!(["example.com/ok", "foo"])),
            vec![m("metadata.finalizers[1]: Invalid value: \"foo\": name is neither a standard finalizer name nor is it fully qualified")],
        ),
        ("no containers", set(&p, "/spec/containers", json!([])), vec![m("spec.containers: Required value")]),
        (
            "bad container name",
            set(&p, "/spec/containers/0/name", json!("App_1")),
            vec![format!("spec.containers[0].name: Invalid value: \"App_1\": {LABEL_MSG}")],
        ),
        (
            "init container reuses a name",
            set(&p, "/spec/initContainers", json!([{"name": "app", "image": "busybox"}])),
            vec![m("spec.initContainers[0].name: Duplicate value: \"app\"")],
        ),
        ("no image", set(&p, "/spec/containers/0/image", json!("")), vec![m("spec.containers[0].image: Required value")]),
        (
            "image with spaces",
            set(&p, "/spec/containers/0/image", json!(" nginx")),
            vec![m("spec.containers[0].image: Invalid value: \" nginx\": must not have leading or trailing whitespace")],
        ),
        ("port missing", remove(&p, "/spec/containers/0/ports/0/containerPort"), vec![m("spec.containers[0].ports[0].containerPort: Required value")]),
        (
            "port out of range",
            set(&p, "/spec/containers/0/ports/0/containerPort", json!(70000)),
            vec![m("spec.containers[0].ports[0].containerPort: Invalid value: 70000: must be between 1 and 65535, inclusive")],
        ),
        (
            "bad protocol",
            set(&p, "/spec/containers/0/ports/0/protocol", json!("HTTP")),
            vec![m("spec.containers[0].ports[0].protocol: Unsupported value: \"HTTP\": supported values: \"SCTP\", \"TCP\", \"UDP\"")],
        ),
        (
            "bad port name",
            set(&p, "/spec/containers/0/ports/0/name", json!("http-web-port-123")),
            vec![m("spec.containers[0].ports[0].name: Invalid value: \"http-web-port-123\": must be no more than 15 characters")],
        ),
        (
            "duplicate port name",
            set(&p, "/spec/containers/0/ports", json!([{"name": "http", "containerPort": 80}, {"name": "http", "containerPort": 81}])),
            vec![m("spec.containers[0].ports[1].name: Duplicate value: \"http\"")],
        ),
        (
            "bad env name",
            set(&p, "/spec/containers/0/env/0/name", json!("1BAD")),
            vec![m("spec.containers[0].env[0].name: Invalid value: \"1BAD\": a valid environment variable name must consist of alphabetic characters, digits, '_', '-', or '.', and must not start with a digit (e.g. 'my.env-name',  or 'MY_ENV.NAME',  or 'MyEnvName1', regex used for validation is '[-._a-zA-Z][-._a-zA-Z0-9]*')")],
        ),
        (
            "unsupported downward API field",
            set(&p, "/spec/containers/0/env/1/valueFrom/fieldRef/fieldPath", json!("spec.schedulerName")),
            vec![m("spec.containers[0].env[1].valueFrom.fieldRef.fieldPath: Unsupported value: \"spec.schedulerName\": supported values: \"metadata.name\", \"metadata.namespace\", \"metadata.uid\", \"spec.nodeName\", \"spec.serviceAccountName\", \"status.hostIP\", \"status.hostIPs\", \"status.podIP\", \"status.podIPs\"")],
        ),
        (
            "value and valueFrom",
            set(&p, "/spec/containers/0/env/1/value", json!("x")),
            vec![m("spec.containers[0].env[1].valueFrom: Invalid value: \"\": may not be specified when `value` is not empty")],
        ),
        (
            "duplicate volume",
            set(&p, "/spec/volumes/1", json!({"name": "config", "emptyDir": {}})),
            vec![m("spec.volumes[1].name: Duplicate value: \"config\"")],
        ),
        (
            "bad volume name",
            set(&p, "/spec/volumes/1", json!({"name": "Scratch", "emptyDir": {}})),
            vec![format!("spec.volumes[1].name: Invalid value: \"Scratch\": {LABEL_MSG}")],
        ),
        (
            "two volume sources",
            set(&p, "/spec/volumes/1", json!({"name": "two", "emptyDir": {}, "secret": {"secretName": "s"}})),
            vec![m("spec.volumes[1].secret: Forbidden: may not specify more than 1 volume type")],
        ),
        (
            "configMap volume without name",
            set(&p, "/spec/volumes/0/configMap", json!({})),
            vec![m("spec.volumes[0].configMap.name: Required value"), m("spec.containers[0].volumeMounts[0].name: Not found: \"config\"")],
        ),
        (
            "mount of a missing volume",
            set(&p, "/spec/containers/0/volumeMounts/0/name", json!("data")),
            vec![m("spec.containers[0].volumeMounts[0].name: Not found: \"data\"")],
        ),
        ("mount without path", set(&p, "/spec/containers/0/volumeMounts/0/mountPath", json!("")), vec![m("spec.containers[0].volumeMounts[0].mountPath: Required value")]),
        (
            "bad restart policy",
            set(&p, "/spec/restartPolicy", json!("Sometimes")),
            vec![m("spec.restartPolicy: Unsupported value: \"Sometimes\": supported values: \"Always\", \"OnFailure\", \"Never\"")],
        ),
        (
            "bad dns policy",
            set(&p, "/spec/dnsPolicy", json!("Bogus")),
            vec![m("spec.dnsPolicy: Unsupported value: \"Bogus\": supported values: \"ClusterFirstWithHostNet\", \"ClusterFirst\", \"Default\", \"None\"")],
        ),
        (
            "dns policy None without config",
            set(&p, "/spec/dnsPolicy", json!("None")),
            vec![m("spec.dnsConfig: Required value: must provide `dnsConfig` when `dnsPolicy` is None")],
        ),
        (
            "request above limit",
            set(&p, "/spec/containers/0/resources/requests/cpu", json!("1")),
            vec![m("spec.containers[0].resources.requests: Invalid value: \"1\": must be less than or equal to cpu limit of 500m")],
        ),
        (
            "negative request",
            set(&p, "/spec/containers/0/resources/requests/memory", json!("-1")),
            vec![m("spec.containers[0].resources.requests[memory]: Invalid value: \"-1\": must be greater than or equal to 0")],
        ),
        (
            "malformed quantity",
            set(&p, "/spec/containers/0/resources/limits/memory", json!("12XB")),
            vec![m("spec.containers[0].resources.limits[memory]: Invalid value: \"12XB\": quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'")],
        ),
        (
            "unknown resource",
            set(&p, "/spec/containers/0/resources/limits/gpus", json!("1")),
            // Requests default to limits, so the request is reported too (as in Kubernetes).
            vec![
                m("spec.containers[0].resources.limits[gpus]: Invalid value: \"gpus\": must be a standard resource type or fully qualified"),
                m("spec.containers[0].resources.limits[gpus]: Invalid value: \"gpus\": must be a standard resource for containers"),
                m("spec.containers[0].resources.requests[gpus]: Invalid value: \"gpus\": must be a standard resource type or fully qualified"),
                m("spec.containers[0].resources.requests[gpus]: Invalid value: \"gpus\": must be a standard resource for containers"),
            ],
        ),
        (
            "extended resource request without limit",
            set(&p, "/spec/containers/0/resources/requests/example.com~1gpu", json!("1")),
            vec![m("spec.containers[0].resources.limits: Required value: Limit must be set for non overcommitable resources")],
        ),
        (
            "probe with two handlers",
            set(&p, "/spec/containers/0/readinessProbe/exec", json!({"command": ["true"]})),
            vec![m("spec.containers[0].readinessProbe.httpGet: Forbidden: may not specify more than 1 handler type")],
        ),
        (
            "probe without handler",
            set(&p, "/spec/containers/0/readinessProbe", json!({"periodSeconds": 5})),
            vec![m("spec.containers[0].readinessProbe: Required value: must specify a handler type")],
        ),
        (
            "liveness success threshold",
            set(&p, "/spec/containers/0/livenessProbe/successThreshold", json!(2)),
            vec![m("spec.containers[0].livenessProbe.successThreshold: Invalid value: 2: must be 1")],
        ),
        (
            "negative probe period",
            set(&p, "/spec/containers/0/livenessProbe/timeoutSeconds", json!(-1)),
            vec![m("spec.containers[0].livenessProbe.timeoutSeconds: Invalid value: -1: must be greater than or equal to 0")],
        ),
        (
            "negative grace period",
            set(&p, "/spec/terminationGracePeriodSeconds", json!(-5)),
            vec![m("spec.terminationGracePeriodSeconds: Invalid value: -5: must be greater than or equal to 0")],
        ),
        (
            "Exists toleration with a value",
            set(&p, "/spec/tolerations", json!([{"key": "k", "operator": "Exists", "value": "v"}])),
            vec![m("spec.tolerations[0].operator: Invalid value: \"v\": value must be empty when `operator` is 'Exists'")],
        ),
        (
            "bad toleration operator",
            set(&p, "/spec/tolerations", json!([{"key": "k", "operator": "Sometimes"}])),
            vec![m("spec.tolerations[0].operator: Unsupported value: \"Sometimes\": supported values: \"Equal\", \"Exists\"")],
        ),
        (
            "bad toleration effect",
            set(&p, "/spec/tolerations", json!([{"key": "k", "operator": "Exists", "effect": "Never"}])),
            vec![m("spec.tolerations[0].effect: Unsupported value: \"Never\": supported values: \"NoSchedule\", \"PreferNoSchedule\", \"NoExecute\"")],
        ),
        (
            "tolerationSeconds without NoExecute",
            set(&p, "/spec/tolerations", json!([{"key": "k", "operator": "Exists", "effect": "NoSchedule", "tolerationSeconds": 5}])),
            vec![m("spec.tolerations[0].effect: Invalid value: \"NoSchedule\": effect must be 'NoExecute' when `tolerationSeconds` is set")],
        ),
        (
            "empty key needs Exists",
            set(&p, "/spec/tolerations", json!([{"operator": "Equal", "value": "v"}])),
            vec![m("spec.tolerations[0].operator: Invalid value: \"Equal\": operator must be Exists when `key` is empty, which means \"match all values and all keys\"")],
        ),
        ("bad node selector key", set(&p, "/spec/nodeSelector", json!({"bad key!": "x"})), vec![format!("spec.nodeSelector: Invalid value: \"bad key!\": {NAME_PART_MSG}")]),
        (
            "bad node selector value",
            set(&p, "/spec/nodeSelector", json!({"disk": "bad value!"})),
            vec![format!("spec.nodeSelector: Invalid value: \"bad value!\": {LABEL_VALUE_MSG}")],
        ),
        (
            "node affinity without terms",
            set(&p, "/spec/affinity/nodeAffinity", json!({"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": []}})),
            vec![m("spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms: Required value: must have at least one node selector term")],
        ),
        (
            "node affinity operator",
            set(&p, "/spec/affinity/nodeAffinity", json!({"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [{"matchExpressions": [{"key": "zone", "operator": "Near"}]}]}})),
            vec![m("spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0].matchExpressions[0].operator: Invalid value: \"Near\": not a valid selector operator")],
        ),
        (
            "affinity weight",
            set(&p, "/spec/affinity/podAntiAffinity/preferredDuringSchedulingIgnoredDuringExecution/0/weight", json!(0)),
            vec![m("spec.affinity.podAntiAffinity.preferredDuringSchedulingIgnoredDuringExecution[0].weight: Invalid value: 0: must be in the range 1-100")],
        ),
        (
            "hostname",
            set(&p, "/spec/hostname", json!("web.1")),
            vec![m("spec.hostname: Invalid value: \"web.1\": must not contain dots")],
        ),
        (
            "ephemeral containers on create",
            set(&p, "/spec/ephemeralContainers", json!([{"name": "debug", "image": "busybox"}])),
            vec![m("spec.ephemeralContainers: Forbidden: cannot be set on create")],
        ),
    ]);
}

#[test]
fn pod_with_a_volume_without_source_before_defaults() {
    // Defaults turn a source-less volume into an emptyDir; validating raw input shows the rule.
    let mut raw = prepare(&pod());
    common::set_in(&mut raw, "/spec/volumes/0", json!({"name": "config"}));
    let errs = validation::validate_create(find_kind("v1", "Pod").unwrap(), &raw);
    assert_contains(&errs, "spec.volumes[0]: Required value: must specify a volume type");
}

#[test]
fn pod_updates() {
    let p = pod();
    assert_messages(&update(&p, |v| common::set_in(v, "/spec/containers/0/image", json!("nginx:1.26"))), &[]);
    assert_messages(&update(&p, |v| common::set_in(v, "/metadata/labels/tier", json!("front"))), &[]);
    let errs = update(&p, |v| common::set_in(v, "/spec/restartPolicy", json!("Never")));
    assert_eq!(errs.len(), 1);
    assert_eq!(errs[0].field, "spec");
    assert_eq!(errs[0].reason(), "FieldValueForbidden");
    assert!(
        errs[0].message().starts_with("spec: Forbidden: pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)\n"),
        "{}",
        errs[0].message()
    );
    assert!(errs[0].detail.contains("restartPolicy"), "{}", errs[0].detail);
    assert_messages(
        &update(&p, |v| {
            let c = v["spec"]["containers"][0].clone();
            v["spec"]["containers"].as_array_mut().unwrap().push(set(&c, "/name", json!("sidecar")));
        }),
        &["spec.containers: Forbidden: pod updates may not add or remove containers"],
    );
    assert_messages(
        &update(&p, |v| v["spec"]["tolerations"].as_array_mut().unwrap().push(json!({"key": "gpu", "operator": "Exists", "effect": "NoSchedule"}))),
        &[],
    );
    assert_messages(
        &update(&p, |v| common::set_in(v, "/spec/tolerations/0/tolerationSeconds", json!(60))),
        &[],
    );
    let tolerating = set(&p, "/spec/tolerations", json!([{"key": "gpu", "operator": "Exists", "effect": "NoSchedule"}]));
    assert_messages(
        &update(&tolerating, |v| common::set_in(v, "/spec/tolerations/0/effect", json!("NoExecute"))),
        &["spec.tolerations: Forbidden: existing toleration can not be modified except its tolerationSeconds"],
    );
    let with_deadline = set(&p, "/spec/activeDeadlineSeconds", json!(30));
    assert_messages(&update(&with_deadline, |v| common::set_in(v, "/spec/activeDeadlineSeconds", json!(10))), &[]);
    assert_messages(
        &update(&with_deadline, |v| common::set_in(v, "/spec/activeDeadlineSeconds", json!(60))),
        &["spec.activeDeadlineSeconds: Invalid value: 60: must be less than or equal to previous value"],
    );
    assert_messages(
        &update(&p, |v| common::set_in(v, "/metadata/name", json!("other"))),
        &["metadata.name: Invalid value: \"other\": field is immutable"],
    );
}

fn service() -> Value {
    json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web", "namespace": "default"},
           "spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": 8080}]}})
}

#[test]
fn services() {
    let s = service();
    let two_ports = set(&s, "/spec/ports", json!([{"name": "http", "port": 80}, {"name": "https", "port": 443}]));
    run(vec![
        ("valid", s.clone(), vec![]),
        ("valid named target port", set(&s, "/spec/ports/0/targetPort", json!("http")), vec![]),
        ("valid headless without ports", set(&remove(&s, "/spec/ports"), "/spec/clusterIP", json!("None")), vec![]),
        ("valid node port", set(&set(&s, "/spec/type", json!("NodePort")), "/spec/ports/0/nodePort", json!(30080)), vec![]),
        ("valid two named ports", two_ports.clone(), vec![]),
        ("valid external name", json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "ext", "namespace": "default"}, "spec": {"type": "ExternalName", "externalName": "db.example.com."}}), vec![]),
        (
            "name is a DNS-1035 label",
            set(&s, "/metadata/name", json!("1web")),
            vec![m("metadata.name: Invalid value: \"1web\": a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')")],
        ),
        ("no ports", remove(&s, "/spec/ports"), vec![m("spec.ports: Required value")]),
        ("port zero", set(&s, "/spec/ports/0/port", json!(0)), vec![m("spec.ports[0].port: Invalid value: 0: must be between 1 and 65535, inclusive")]),
        (
            "unnamed ports",
            set(&s, "/spec/ports", json!([{"port": 80}, {"port": 443}])),
            vec![m("spec.ports[0].name: Required value"), m("spec.ports[1].name: Required value")],
        ),
        ("duplicate port names", set(&two_ports, "/spec/ports/1/name", json!("http")), vec![m("spec.ports[1].name: Duplicate value: \"http\"")]),
        (
            "bad protocol",
            set(&s, "/spec/ports/0/protocol", json!("HTTP")),
            vec![m("spec.ports[0].protocol: Unsupported value: \"HTTP\": supported values: \"SCTP\", \"TCP\", \"UDP\"")],
        ),
        (
            "bad target port name",
            set(&s, "/spec/ports/0/targetPort", json!("8080")),
            vec![m("spec.ports[0].targetPort: Invalid value: \"8080\": must contain at least one letter (a-z)")],
        ),
        (
            "bad type",
            set(&s, "/spec/type", json!("Magic")),
            vec![m("spec.type: Unsupported value: \"Magic\": supported values: \"ClusterIP\", \"ExternalName\", \"LoadBalancer\", \"NodePort\"")],
        ),
        (
            "external name missing",
            json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "ext", "namespace": "default"}, "spec": {"type": "ExternalName"}}),
            vec![m("spec.externalName: Required value")],
        ),
        (
            "external name not a DNS name",
            json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "ext", "namespace": "default"}, "spec": {"type": "ExternalName", "externalName": "Bad_Name"}}),
            vec![format!("spec.externalName: Invalid value: \"Bad_Name\": {SUBDOMAIN_MSG}")],
        ),
        (
            "node port outside the range",
            set(&set(&s, "/spec/type", json!("NodePort")), "/spec/ports/0/nodePort", json!(80)),
            vec![m("spec.ports[0].nodePort: Invalid value: 80: provided port is not in the valid range. The range of valid ports is 30000-32767")],
        ),
        (
            "node port on ClusterIP",
            set(&s, "/spec/ports/0/nodePort", json!(30080)),
            vec![m("spec.ports[0].nodePort: Forbidden: may not be used when `type` is 'ClusterIP'")],
        ),
        (
            "selector value",
            set(&s, "/spec/selector/app", json!("bad value!")),
            vec![format!("spec.selector: Invalid value: \"bad value!\": {LABEL_VALUE_MSG}")],
        ),
        (
            "bad cluster IP",
            set(&s, "/spec/clusterIP", json!("10.0.0.300")),
            vec![m("spec.clusterIPs[0]: Invalid value: \"10.0.0.300\": must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)")],
        ),
        (
            "session affinity",
            set(&s, "/spec/sessionAffinity", json!("Sticky")),
            vec![m("spec.sessionAffinity: Unsupported value: \"Sticky\": supported values: \"ClientIP\", \"None\"")],
        ),
    ]);
}

#[test]
fn service_updates() {
    let s = set(&service(), "/spec/clusterIP", json!("10.96.0.10"));
    assert_messages(&update(&s, |v| common::set_in(v, "/spec/ports/0/port", json!(81))), &[]);
    assert_messages(
        &update(&s, |v| {
            common::set_in(v, "/spec/clusterIP", json!("10.96.0.11"));
            v["spec"].as_object_mut().unwrap().remove("clusterIPs");
        }),
        &["spec.clusterIPs[0]: Invalid value: []string{\"10.96.0.11\"}: may not change once set"],
    );
    assert_messages(
        &update(&s, |v| common::set_in(v, "/spec/clusterIP", json!("10.96.0.11"))),
        &["spec.clusterIPs: Invalid value: []string{\"10.96.0.10\"}: first value must match `clusterIP`"],
    );
}

#[test]
fn config_maps_and_secrets() {
    let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cfg", "namespace": "default"},
                    "data": {"app.properties": "a=b", "KEY_1": "x"}, "binaryData": {"logo.png": "iVBORw0KGgo="}});
    let secret = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "tls", "namespace": "default"},
                        "type": "kubernetes.io/tls", "data": {"tls.crt": "Y3J0", "tls.key": "a2V5"}});
    run(vec![
        ("valid config map", cm.clone(), vec![]),
        (
            "bad key",
            set(&cm, "/data/bad key", json!("v")),
            vec![m("data[bad key]: Invalid value: \"bad key\": a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')")],
        ),
        (
            "dot-dot key",
            set(&cm, "/data/..secret", json!("v")),
            vec![m("data[..secret]: Invalid value: \"..secret\": must not start with '..'")],
        ),
        (
            "key in data and binaryData",
            set(&cm, "/binaryData/KEY_1", json!("eA==")),
            vec![m("data[KEY_1]: Invalid value: \"KEY_1\": duplicate of key present in binaryData")],
        ),
        ("over 1 MiB", set(&cm, "/data/big", json!("x".repeat(1024 * 1024))), vec![m(": Too long: may not be more than 1048576 bytes")]),
        ("valid secret", secret.clone(), vec![]),
        ("tls secret without key", remove(&secret, "/data/tls.key"), vec![m("data[tls.key]: Required value")]),
        (
            "service account token secret needs the annotation",
            json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "t", "namespace": "default"}, "type": "kubernetes.io/service-account-token"}),
            vec![m("metadata.annotations[kubernetes.io/service-account.name]: Required value")],
        ),
    ]);
    let immutable = set(&cm, "/immutable", json!(true));
    assert_messages(&update(&immutable, |v| common::set_in(v, "/metadata/labels", json!({"a": "b"}))), &[]);
    assert_messages(
        &update(&immutable, |v| common::set_in(v, "/data/KEY_1", json!("y"))),
        &["data: Forbidden: field is immutable when `immutable` is set"],
    );
    assert_messages(
        &update(&immutable, |v| common::set_in(v, "/immutable", json!(false))),
        &["immutable: Forbidden: field is immutable when `immutable` is set"],
    );
    assert_messages(
        &update(&secret, |v| common::set_in(v, "/type", json!("Opaque"))),
        &["type: Invalid value: \"Opaque\": field is immutable"],
    );
    assert_messages(
        &update(&set(&secret, "/immutable", json!(true)), |v| common::set_in(v, "/data/tls.crt", json!("eA=="))),
        &["data: Forbidden: field is immutable when `immutable` is set"],
    );
}

#[test]
fn namespaces_and_nodes() {
    run(vec![
        ("valid namespace", json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team-a"}}), vec![]),
        (
            "namespace name is a label",
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team.a"}}),
            vec![m("metadata.name: Invalid value: \"team.a\": must not contain dots")],
        ),
        ("valid node", json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "node-1.example.com"}}), vec![]),
        (
            "node name is a subdomain",
            json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "node_1"}}),
            vec![format!("metadata.name: Invalid value: \"node_1\": {SUBDOMAIN_MSG}")],
        ),
        (
            "node taint effect",
            json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n1"}, "spec": {"taints": [{"key": "gpu", "effect": "Maybe"}]}}),
            vec![m("metadata.taints[0].effect: Unsupported value: \"Maybe\": supported values: \"NoSchedule\", \"PreferNoSchedule\", \"NoExecute\"")],
        ),
    ]);
    let node = json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n1"}, "spec": {"podCIDRs": ["10.244.1.0/24"], "podCIDR": "10.244.1.0/24"}});
    assert_messages(&update(&node, |v| common::set_in(v, "/spec/unschedulable", json!(true))), &[]);
    assert_messages(
        &update(&node, |v| common::set_in(v, "/spec/podCIDRs", json!(["10.244.2.0/24"]))),
        &["spec.podCIDRs: Forbidden: node updates may not change podCIDR except from \"\" to valid"],
    );
}

fn template(restart: &str) -> Value {
    json!({"metadata": {"labels": {"app": "web"}}, "spec": {"restartPolicy": restart, "containers": [{"name": "app", "image": "nginx:1.25"}]}})
}

fn deployment() -> Value {
    json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": "default"},
           "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}}, "template": template("Always")}})
}

#[test]
fn deployments() {
    let d = deployment();
    run(vec![
        ("valid", d.clone(), vec![]),
        ("valid expression selector", set(&d, "/spec/selector", json!({"matchExpressions": [{"key": "app", "operator": "In", "values": ["web", "api"]}]})), vec![]),
        (
            "selector does not match",
            set(&d, "/spec/template/metadata/labels/app", json!("other")),
            vec![m("spec.template.metadata.labels: Invalid value: map[string]string{\"app\":\"other\"}: `selector` does not match template `labels`")],
        ),
        ("negative replicas", set(&d, "/spec/replicas", json!(-1)), vec![m("spec.replicas: Invalid value: -1: must be greater than or equal to 0")]),
        (
            "restart policy",
            set(&d, "/spec/template/spec/restartPolicy", json!("Never")),
            vec![m("spec.template.spec.restartPolicy: Unsupported value: \"Never\": supported values: \"Always\"")],
        ),
        ("template is validated as a pod", set(&d, "/spec/template/spec/containers/0/image", json!("")), vec![m("spec.template.spec.containers[0].image: Required value")]),
        (
            "template labels",
            set(&d, "/spec/template/metadata/labels/bad key!", json!("x")),
            vec![format!("spec.template.labels: Invalid value: \"bad key!\": {NAME_PART_MSG}")],
        ),
        (
            "surge and unavailable both zero",
            set(&d, "/spec/strategy", json!({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 0, "maxUnavailable": 0}})),
            vec![m("spec.strategy.rollingUpdate.maxUnavailable: Invalid value: 0: may not be 0 when `maxSurge` is 0")],
        ),
        (
            "unavailable above 100%",
            set(&d, "/spec/strategy/rollingUpdate/maxUnavailable", json!("150%")),
            vec![m("spec.strategy.rollingUpdate.maxUnavailable: Invalid value: \"150%\": must not be greater than 100%")],
        ),
        (
            "surge not a percentage",
            set(&d, "/spec/strategy/rollingUpdate/maxSurge", json!("25")),
            vec![m("spec.strategy.rollingUpdate.maxSurge: Invalid value: \"25\": a valid percent string must be a numeric string followed by an ending '%' (e.g. '1%',  or '93%', regex used for validation is '[0-9]+%')")],
        ),
        (
            "recreate with rolling parameters",
            set(&d, "/spec/strategy", json!({"type": "Recreate", "rollingUpdate": {"maxSurge": 1}})),
            vec![m("spec.strategy.rollingUpdate: Forbidden: may not be specified when strategy `type` is 'Recreate'")],
        ),
        (
            "progress deadline",
            set(&set(&d, "/spec/minReadySeconds", json!(30)), "/spec/progressDeadlineSeconds", json!(10)),
            vec![m("spec.progressDeadlineSeconds: Invalid value: 10: must be greater than minReadySeconds")],
        ),
    ]);
    // The typed round trip turns a missing selector into an empty one...
    assert_has(&create(&remove(&d, "/spec/selector")), "spec.selector", ErrorType::Invalid, "empty selector is invalid for deployment");
    // ...which is why the missing case only shows on untyped input.
    let raw = remove(&prepare(&d), "/spec/selector");
    let errs = validation::validate_create(find_kind("apps/v1", "Deployment").unwrap(), &raw);
    assert_contains(&errs, "spec.selector: Required value");
    assert_contains(&errs, "spec.template.metadata.labels: Invalid value: map[string]string{\"app\":\"web\"}: `selector` does not match template `labels`");
    assert_has(&create(&set(&d, "/spec/selector", json!({}))), "spec.selector", ErrorType::Invalid, "empty selector is invalid for deployment");
    assert_has(
        &create(&set(&d, "/spec/strategy", json!({"type": "BlueGreen"}))),
        "spec.strategy",
        ErrorType::NotSupported,
        "supported values: \"Recreate\", \"RollingUpdate\"",
    );
    assert_messages(&update(&d, |v| common::set_in(v, "/spec/replicas", json!(5))), &[]);
    assert_messages(&update(&d, |v| common::set_in(v, "/spec/template/spec/containers/0/image", json!("nginx:1.26"))), &[]);
    let errs = update(&d, |v| {
        common::set_in(v, "/spec/selector/matchLabels/tier", json!("front"));
        common::set_in(v, "/spec/template/metadata/labels/tier", json!("front"));
    });
    assert_eq!(errs.len(), 1, "{:?}", messages(&errs));
    assert_has(&errs, "spec.selector", ErrorType::Invalid, "field is immutable");
}

#[test]
fn replica_sets_daemon_sets_stateful_sets_and_controllers() {
    let rs = set(&set(&deployment(), "/kind", json!("ReplicaSet")), "/spec/replicas", json!(2));
    let ds = remove(&set(&deployment(), "/kind", json!("DaemonSet")), "/spec/replicas");
    let sts = set(&set(&remove(&deployment(), "/spec/replicas"), "/kind", json!("StatefulSet")), "/spec/serviceName", json!("web"));
    let sts_with_claims = set(
        &set(&sts, "/spec/template/spec/containers/0/volumeMounts", json!([{"name": "data", "mountPath": "/data"}])),
        "/spec/volumeClaimTemplates",
        json!([{"metadata": {"name": "data"}, "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}]),
    );
    let rc = json!({"apiVersion": "v1", "kind": "ReplicationController", "metadata": {"name": "web", "namespace": "default"},
                    "spec": {"replicas": 1, "selector": {"app": "web"}, "template": template("Always")}});
    run(vec![
        ("valid replica set", rs.clone(), vec![]),
        (
            "replica set selector",
            set(&rs, "/spec/template/metadata/labels/app", json!("x")),
            vec![m("spec.template.metadata.labels: Invalid value: map[string]string{\"app\":\"x\"}: `selector` does not match template `labels`")],
        ),
        ("valid daemon set", ds.clone(), vec![]),
        (
            "daemon set with zero surge and unavailable",
            set(&ds, "/spec/updateStrategy", json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 0}})),
            vec![m("spec.updateStrategy.rollingUpdate.maxUnavailable: Required value: cannot be 0 when maxSurge is 0")],
        ),
        (
            "daemon set restart policy",
            set(&ds, "/spec/template/spec/restartPolicy", json!("OnFailure")),
            vec![m("spec.template.spec.restartPolicy: Unsupported value: \"OnFailure\": supported values: \"Always\"")],
        ),
        ("valid stateful set", sts.clone(), vec![]),
        ("stateful set mounting a claim template", sts_with_claims.clone(), vec![]),
        ("stateful set name is a label", set(&sts, "/metadata/name", json!("web.v1")), vec![m("metadata.name: Invalid value: \"web.v1\": must not contain dots")]),
        (
            "pod management policy",
            set(&sts, "/spec/podManagementPolicy", json!("Random")),
            vec![m("spec.podManagementPolicy: Invalid value: \"Random\": must be 'OrderedReady' or 'Parallel'")],
        ),
        (
            "retention policy",
            set(&sts, "/spec/persistentVolumeClaimRetentionPolicy/whenDeleted", json!("Keep")),
            vec![m("spec.persistentVolumeClaimRetentionPolicy.whenDeleted: Unsupported value: \"Keep\": supported values: \"Retain\", \"Delete\"")],
        ),
        ("valid replication controller", rc.clone(), vec![]),
        (
            "replication controller deadline",
            set(&rc, "/spec/template/spec/activeDeadlineSeconds", json!(10)),
            vec![m("spec.template.spec.activeDeadlineSeconds: Forbidden: activeDeadlineSeconds in ReplicationController is not Supported")],
        ),
    ]);
    assert_has(
        &update(&ds, |v| common::set_in(v, "/spec/selector/matchLabels/app", json!("x"))),
        "spec.selector",
        ErrorType::Invalid,
        "field is immutable",
    );
    assert_messages(&update(&sts, |v| common::set_in(v, "/spec/replicas", json!(3))), &[]);
    assert_messages(
        &update(&sts, |v| common::set_in(v, "/spec/serviceName", json!("other"))),
        &["spec: Forbidden: updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', 'updateStrategy', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden"],
    );
}

const UID: &str = "0c9a1f57-2d4b-4a52-9b1a-7b0f3c6c8e11";

fn job() -> Value {
    json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "pi", "namespace": "default", "uid": UID},
           "spec": {"template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "pi", "image": "perl:5.34"}]}}}})
}

#[test]
fn jobs() {
    let j = job();
    run(vec![
        ("valid", j.clone(), vec![]),
        (
            "valid manual selector",
            set(&set(&set(&j, "/spec/manualSelector", json!(true)), "/spec/selector", json!({"matchLabels": {"app": "pi"}})), "/spec/template/metadata/labels", json!({"app": "pi"})),
            vec![],
        ),
        (
            "restart policy must be given",
            remove(&j, "/spec/template/spec/restartPolicy"),
            vec![m("spec.template.spec.restartPolicy: Unsupported value: \"Always\": supported values: \"OnFailure\", \"Never\"")],
        ),
        ("negative parallelism", set(&j, "/spec/parallelism", json!(-1)), vec![m("spec.parallelism: Invalid value: -1: must be greater than or equal to 0")]),
        ("negative completions", set(&j, "/spec/completions", json!(-2)), vec![m("spec.completions: Invalid value: -2: must be greater than or equal to 0")]),
        ("negative backoff", set(&j, "/spec/backoffLimit", json!(-1)), vec![m("spec.backoffLimit: Invalid value: -1: must be greater than or equal to 0")]),
        (
            "completion mode",
            set(&j, "/spec/completionMode", json!("Sometimes")),
            vec![m("spec.completionMode: Unsupported value: \"Sometimes\": supported values: \"NonIndexed\", \"Indexed\"")],
        ),
        (
            "no uid, so no generated selector",
            remove(&j, "/metadata/uid"),
            vec![m("spec.selector: Required value"), m("spec.template.metadata.labels: Invalid value: null: `selector` does not match template `labels`")],
        ),
        (
            "generated labels overridden",
            set(&j, "/spec/template/metadata/labels", json!({"controller-uid": "other"})),
            vec![m(&format!(
                "spec.template.metadata.labels[controller-uid]: Invalid value: map[string]string{{\"batch.kubernetes.io/controller-uid\":\"{UID}\", \"batch.kubernetes.io/job-name\":\"pi\", \"controller-uid\":\"other\", \"job-name\":\"pi\"}}: must be '{UID}'"
            ))],
        ),
    ]);
    assert_messages(&update(&j, |v| common::set_in(v, "/spec/parallelism", json!(3))), &[]);
    assert_has(
        &update(&j, |v| common::set_in(v, "/spec/template/spec/containers/0/image", json!("perl:5.36"))),
        "spec.template",
        ErrorType::Invalid,
        "field is immutable",
    );
    assert_has(
        &update(&j, |v| common::set_in(v, "/spec/selector/matchLabels/extra", json!("x"))),
        "spec.selector",
        ErrorType::Invalid,
        "field is immutable",
    );
    assert_messages(
        &update(&j, |v| common::set_in(v, "/spec/completions", json!(5))),
        &["spec.completions: Invalid value: 5: field is immutable"],
    );
}

fn cron_job() -> Value {
    json!({"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "tick", "namespace": "default"},
           "spec": {"schedule": "*/5 * * * *", "jobTemplate": {"spec": {"template": {"spec": {"restartPolicy": "OnFailure",
                    "containers": [{"name": "tick", "image": "busybox:1.36"}]}}}}}})
}

#[test]
fn cron_jobs() {
    let c = cron_job();
    let mut cases: Vec<Case> = vec![
        ("valid", c.clone(), vec![]),
        ("valid descriptor", set(&c, "/spec/schedule", json!("@daily")), vec![]),
        ("valid every", set(&c, "/spec/schedule", json!("@every 1h30m")), vec![]),
        ("valid names and ranges", set(&c, "/spec/schedule", json!("0 9-17/2 * jan-jun mon-fri")), vec![]),
        ("valid time zone", set(&c, "/spec/timeZone", json!("Etc/UTC")), vec![]),
        ("no schedule", set(&c, "/spec/schedule", json!("")), vec![m("spec.schedule: Required value")]),
        (
            "minute out of range",
            set(&c, "/spec/schedule", json!("61 * * * *")),
            vec![m("spec.schedule: Invalid value: \"61 * * * *\": end of range (61) above maximum (59): 61")],
        ),
        (
            "four fields",
            set(&c, "/spec/schedule", json!("* * * *")),
            vec![m("spec.schedule: Invalid value: \"* * * *\": expected exactly 5 fields, found 4: [* * * *]")],
        ),
        (
            "unknown descriptor",
            set(&c, "/spec/schedule", json!("@fortnightly")),
            vec![m("spec.schedule: Invalid value: \"@fortnightly\": unrecognized descriptor: @fortnightly")],
        ),
        (
            "TZ in schedule",
            set(&c, "/spec/schedule", json!("TZ=UTC 0 * * * *")),
            vec![m("spec.schedule: Invalid value: \"TZ=UTC 0 * * * *\": cannot use TZ or CRON_TZ in schedule, use timeZone field instead")],
        ),
        (
            "concurrency policy",
            set(&c, "/spec/concurrencyPolicy", json!("Sometimes")),
            vec![m("spec.concurrencyPolicy: Unsupported value: \"Sometimes\": supported values: \"Allow\", \"Forbid\", \"Replace\"")],
        ),
        (
            "job template restart policy",
            set(&c, "/spec/jobTemplate/spec/template/spec/restartPolicy", json!("Always")),
            vec![m("spec.jobTemplate.spec.template.spec.restartPolicy: Unsupported value: \"Always\": supported values: \"OnFailure\", \"Never\"")],
        ),
        (
            "long name",
            set(&c, "/metadata/name", json!("a".repeat(53))),
            vec![format!("metadata.name: Invalid value: \"{}\": must be no more than 52 characters", "a".repeat(53))],
        ),
        (
            "local time zone",
            set(&c, "/spec/timeZone", json!("Local")),
            vec![m("spec.timeZone: Invalid value: \"Local\": timeZone must be an explicit time zone as defined in https://www.iana.org/time-zones")],
        ),
    ];
    if jiff::tz::db().available().next().is_some() {
        cases.push((
            "unknown time zone",
            set(&c, "/spec/timeZone", json!("Mars/Olympus_Mons")),
            vec![m("spec.timeZone: Invalid value: \"Mars/Olympus_Mons\": unknown time zone Mars/Olympus_Mons")],
        ));
    }
    run(cases);
    assert_has(
        &create(&set(&c, "/spec/jobTemplate/spec/selector", json!({"matchLabels": {"a": "b"}}))),
        "spec.jobTemplate.spec.selector",
        ErrorType::Invalid,
        "`selector` will be auto-generated",
    );
    assert_messages(&update(&c, |v| common::set_in(v, "/spec/schedule", json!("@hourly"))), &[]);
}

#[test]
fn other_kinds() {
    let hpa = json!({"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "metadata": {"name": "web", "namespace": "default"},
                     "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"}, "minReplicas": 2, "maxReplicas": 5}});
    let role = json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": {"name": "reader", "namespace": "default"},
                      "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]}]});
    let binding = json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", "metadata": {"name": "read", "namespace": "default"},
                         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "reader"},
                         "subjects": [{"kind": "User", "name": "alice"}, {"kind": "ServiceAccount", "name": "default"}]});
    let crb = json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding", "metadata": {"name": "read"},
                     "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "view"},
                     "subjects": [{"kind": "ServiceAccount", "name": "default", "namespace": "default"}]});
    let pdb = json!({"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": {"name": "web", "namespace": "default"},
                     "spec": {"minAvailable": "50%", "selector": {"matchLabels": {"app": "web"}}}});
    let pc = json!({"apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass", "metadata": {"name": "high"}, "value": 1000000});
    let lease = json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": {"name": "leader", "namespace": "default"},
                       "spec": {"holderIdentity": "a", "leaseDurationSeconds": 15}});
    let slice = json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice", "metadata": {"name": "web-x1", "namespace": "default"},
                       "addressType": "IPv4", "endpoints": [{"addresses": ["10.244.1.5"], "conditions": {"ready": true}}],
                       "ports": [{"name": "http", "port": 80}]});
    let event = json!({"apiVersion": "v1", "kind": "Event", "metadata": {"name": "web.1", "namespace": "default"},
                       "involvedObject": {"kind": "Pod", "name": "web", "namespace": "default"}, "reason": "Started", "message": "ok"});
    let new_event = json!({"apiVersion": "events.k8s.io/v1", "kind": "Event", "metadata": {"name": "web.2", "namespace": "default"},
                           "eventTime": "2025-01-01T00:00:00.000000Z", "reportingController": "example.com/ctl", "reportingInstance": "ctl-1",
                           "action": "Sync", "reason": "Synced", "type": "Normal", "regarding": {"kind": "Pod", "name": "web", "namespace": "default"}});
    let pvc = json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "data", "namespace": "default"},
                     "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}});
    let cr = json!({"apiVersion": "apps/v1", "kind": "ControllerRevision", "metadata": {"name": "web-1", "namespace": "default"}, "revision": 1, "data": {}});
    run(vec![
        ("valid hpa", hpa.clone(), vec![]),
        (
            "hpa max below min",
            set(&hpa, "/spec/maxReplicas", json!(1)),
            vec![m("spec.maxReplicas: Invalid value: 1: must be greater than or equal to `minReplicas`")],
        ),
        ("hpa min zero", set(&hpa, "/spec/minReplicas", json!(0)), vec![m("spec.minReplicas: Invalid value: 0: must be greater than or equal to 1")]),
        ("hpa target name", set(&hpa, "/spec/scaleTargetRef/name", json!("")), vec![m("spec.scaleTargetRef.name: Required value")]),
        (
            "hpa metric type",
            set(&hpa, "/spec/metrics", json!([{"type": "Bogus"}])),
            vec![m("spec.metrics[0].type: Unsupported value: \"Bogus\": supported values: \"ContainerResource\", \"External\", \"Object\", \"Pods\", \"Resource\"")],
        ),
        ("valid role", role.clone(), vec![]),
        ("role without verbs", set(&role, "/rules/0/verbs", json!([])), vec![m("rules[0].verbs: Required value: verbs must contain at least one value")]),
        (
            "role without api groups",
            remove(&role, "/rules/0/apiGroups"),
            vec![m("rules[0].apiGroups: Required value: resource rules must supply at least one api group")],
        ),
        ("role name", set(&role, "/metadata/name", json!("a/b")), vec![m("metadata.name: Invalid value: \"a/b\": may not contain '/'")]),
        ("valid role binding", binding.clone(), vec![]),
        (
            "role ref kind",
            set(&binding, "/roleRef/kind", json!("Deployment")),
            vec![m("roleRef.kind: Unsupported value: \"Deployment\": supported values: \"Role\", \"ClusterRole\"")],
        ),
        ("role ref name", set(&binding, "/roleRef/name", json!("")), vec![m("roleRef.name: Required value")]),
        ("valid cluster role binding", crb.clone(), vec![]),
        ("cluster binding service account without namespace", remove(&crb, "/subjects/0/namespace"), vec![m("subjects[0].namespace: Required value")]),
        ("valid pdb", pdb.clone(), vec![]),
        (
            "pdb percentage",
            set(&pdb, "/spec/minAvailable", json!("150%")),
            vec![m("spec.minAvailable: Invalid value: \"150%\": must not be greater than 100%")],
        ),
        ("valid priority class", pc.clone(), vec![]),
        ("user priority too high", set(&pc, "/value", json!(2000000000)), vec![m("value: Forbidden: maximum allowed value of a user defined priority is 1000000000")]),
        (
            "reserved prefix",
            set(&pc, "/metadata/name", json!("system-foo")),
            vec![m("metadata.name: Forbidden: priority class names with 'system-' prefix are reserved for system use only. error: system-foo is not a known system priority class")],
        ),
        ("valid lease", lease.clone(), vec![]),
        ("lease duration", set(&lease, "/spec/leaseDurationSeconds", json!(0)), vec![m("spec.leaseDurationSeconds: Invalid value: 0: must be greater than 0")]),
        ("valid endpoint slice", slice.clone(), vec![]),
        (
            "address type",
            set(&slice, "/addressType", json!("IPv5")),
            vec![m("addressType: Unsupported value: \"IPv5\": supported values: \"FQDN\", \"IPv4\", \"IPv6\"")],
        ),
        (
            "bad address",
            set(&slice, "/endpoints/0/addresses/0", json!("999.1.1.1")),
            vec![m("endpoints[0].addresses[0]: Invalid value: \"999.1.1.1\": must be a valid IPv4 address")],
        ),
        (
            "loopback address",
            set(&slice, "/endpoints/0/addresses/0", json!("127.0.0.1")),
            vec![m("endpoints[0].addresses[0]: Invalid value: \"127.0.0.1\": may not be in the loopback range (127.0.0.0/8, ::1/128)")],
        ),
        ("valid event", event.clone(), vec![]),
        (
            "event namespace mismatch",
            set(&event, "/involvedObject/namespace", json!("other")),
            vec![m("involvedObject.namespace: Invalid value: \"other\": does not match event.namespace")],
        ),
        ("valid events.k8s.io event", new_event.clone(), vec![]),
        ("events.k8s.io event without reason", remove(&new_event, "/reason"), vec![m("reason: Required value")]),
        ("valid pvc", pvc.clone(), vec![]),
        ("pvc without access modes", remove(&pvc, "/spec/accessModes"), vec![m("spec.accessModes: Required value: at least 1 access mode is required")]),
        ("pvc without storage", remove(&pvc, "/spec/resources/requests/storage"), vec![m("spec.resources[storage]: Required value")]),
        ("valid controller revision", cr.clone(), vec![]),
        ("controller revision without data", remove(&cr, "/data"), vec![m("data: Required value: data is mandatory")]),
    ]);
    assert_has(
        &update(&binding, |v| common::set_in(v, "/roleRef/name", json!("admin"))),
        "roleRef",
        ErrorType::Invalid,
        "cannot change roleRef",
    );
    assert_messages(&update(&pc, |v| common::set_in(v, "/value", json!(5))), &["value: Forbidden: may not be changed in an update."]);
    assert_messages(
        &update(&slice, |v| common::set_in(v, "/addressType", json!("IPv6"))),
        &[
            "endpoints[0].addresses[0]: Invalid value: \"10.244.1.5\": must be a valid IPv6 address",
            "addressType: Invalid value: \"IPv6\": field is immutable",
        ],
    );
}

#[test]
fn storage_quota_and_endpoints() {
    let lr = json!({"apiVersion": "v1", "kind": "LimitRange", "metadata": {"name": "limits", "namespace": "default"},
                    "spec": {"limits": [{"type": "Container", "max": {"cpu": "2"}, "min": {"cpu": "100m"}, "defaultRequest": {"cpu": "500m"}}]}});
    let quota = json!({"apiVersion": "v1", "kind": "ResourceQuota", "metadata": {"name": "q", "namespace": "default"},
                       "spec": {"hard": {"pods": "10", "requests.cpu": "4", "count/deployments.apps": "5"}}});
    let pv = json!({"apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": "pv-1"},
                    "spec": {"capacity": {"storage": "10Gi"}, "accessModes": ["ReadWriteOnce"], "hostPath": {"path": "/data"}}});
    let ep = json!({"apiVersion": "v1", "kind": "Endpoints", "metadata": {"name": "web", "namespace": "default"},
                    "subsets": [{"addresses": [{"ip": "10.244.1.5"}], "ports": [{"port": 8080}]}]});
    let sa = json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "builder", "namespace": "default"}});
    run(vec![
        ("valid limit range", lr.clone(), vec![]),
        (
            "min above max",
            set(&lr, "/spec/limits/0/min/cpu", json!("3")),
            vec![
                m("spec.limits[0].min[cpu]: Invalid value: \"3\": min value 3 is greater than max value 2"),
                m("spec.limits[0].defaultRequest[cpu]: Invalid value: \"500m\": min value 3 is greater than default request value 500m"),
                m("spec.limits[0].default[cpu]: Invalid value: \"3\": min value 3 is greater than default value 2"),
            ],
        ),
        (
            "limit type",
            set(&lr, "/spec/limits/0/type", json!("Cluster")),
            vec![m("spec.limits[0].type: Invalid value: \"Cluster\": must be a standard limit type or fully qualified")],
        ),
        ("valid quota", quota.clone(), vec![]),
        ("fractional pods", set(&quota, "/spec/hard/pods", json!("1.5")), vec![m("spec.hard[pods]: Invalid value: \"1500m\": must be an integer")]),
        (
            "unknown quota resource",
            set(&quota, "/spec/hard/widgets", json!("1")),
            vec![
                m("spec.hard[widgets]: Invalid value: \"widgets\": must be a standard resource type or fully qualified"),
                m("spec.hard[widgets]: Invalid value: \"widgets\": must be a standard resource for quota"),
            ],
        ),
        ("valid pv", pv.clone(), vec![]),
        ("pv without source", remove(&pv, "/spec/hostPath"), vec![m("spec: Required value: must specify a volume type")]),
        (
            "pv reclaim policy",
            set(&pv, "/spec/persistentVolumeReclaimPolicy", json!("Keep")),
            vec![m("spec.persistentVolumeReclaimPolicy: Unsupported value: \"Keep\": supported values: \"Delete\", \"Recycle\", \"Retain\"")],
        ),
        ("valid endpoints", ep.clone(), vec![]),
        (
            "endpoints without addresses",
            set(&ep, "/subsets/0/addresses", json!([])),
            vec![m("subsets[0]: Required value: must specify `addresses` or `notReadyAddresses`")],
        ),
        (
            "endpoints port names",
            set(&ep, "/subsets/0/ports", json!([{"port": 80}, {"port": 443}])),
            vec![m("subsets[0].ports[0].name: Required value"), m("subsets[0].ports[1].name: Required value")],
        ),
        ("valid service account", sa.clone(), vec![]),
        ("service account name", set(&sa, "/metadata/name", json!("Builder")), vec![format!("metadata.name: Invalid value: \"Builder\": {SUBDOMAIN_MSG}")]),
    ]);
    assert_messages(
        &update(&pv, |v| common::set_in(v, "/spec/capacity/storage", json!("20Gi"))),
        &[],
    );
    let errs = update(&pv, |v| common::set_in(v, "/spec/hostPath/path", json!("/other")));
    assert_eq!(errs.len(), 1, "{:?}", messages(&errs));
    assert!(errs[0].message().starts_with("spec.persistentvolumesource: Forbidden: spec.persistentvolumesource is immutable after creation\n"));
}

#[test]
fn status_cause_reasons_and_aggregate_message() {
    let errs = create(&set(&set(&deployment(), "/spec/replicas", json!(-1)), "/spec/template/spec/containers/0/image", json!("")));
    let reasons: Vec<&str> = errs.iter().map(FieldError::reason).collect();
    assert_eq!(reasons, vec!["FieldValueInvalid", "FieldValueRequired"]);
    let info = find_kind("apps/v1", "Deployment").unwrap();
    assert_eq!(
        validation::invalid_message(info, "web", &errs),
        "Deployment.apps \"web\" is invalid: [spec.replicas: Invalid value: -1: must be greater than or equal to 0, spec.template.spec.containers[0].image: Required value]"
    );
    let one = create(&set(&pod(), "/spec/containers/0/image", json!("")));
    assert_eq!(
        validation::invalid_message(find_kind("v1", "Pod").unwrap(), "web", &one),
        "Pod \"web\" is invalid: spec.containers[0].image: Required value"
    );
    assert_eq!(one[0].body(), "Required value");
}

#[test]
fn unexpected_shapes_do_not_panic() {
    for info in apimachinery::registry::resources() {
        for odd in [
            json!(null),
            json!(7),
            json!({"metadata": 1, "spec": [], "data": "x"}),
            json!({"metadata": {"name": 5, "labels": [1]}, "spec": {"containers": [null, 3, {"ports": "x"}], "template": 1, "ports": [1]}}),
            json!({"spec": {"selector": {"matchExpressions": [{}]}, "template": {"spec": {"volumes": [{}], "containers": [{"resources": {"limits": {"cpu": []}}}]}}}}),
        ] {
            let _ = validation::validate_create(info, &odd);
            let _ = validation::validate_update(info, &odd, &json!({}));
            let _ = validation::validate_update(info, &json!({"spec": {"clusterIPs": ["a", "b", "c"]}}), &odd);
        }
    }
}
