//! Defaults applied to minimal objects give what kube-apiserver v1.33 stores, and applying them
//! again changes nothing.

mod common;

use apimachinery::defaults::apply_defaults;
use common::{info, prepare};
use serde_json::{Value, json};

fn minimal_pod() -> Value {
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web", "namespace": "default"},
           "spec": {"containers": [{"name": "app", "image": "nginx"}]}})
}

fn pod_template() -> Value {
    json!({"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "app", "image": "nginx:1.25"}]}})
}

#[test]
fn pod() {
    let pod = prepare(&minimal_pod());
    let spec = &pod["spec"];
    assert_eq!(spec["restartPolicy"], "Always");
    assert_eq!(spec["dnsPolicy"], "ClusterFirst");
    assert_eq!(spec["terminationGracePeriodSeconds"], 30);
    assert_eq!(spec["schedulerName"], "default-scheduler");
    assert_eq!(spec["securityContext"], json!({}));
    assert_eq!(spec["enableServiceLinks"], true);
    assert_eq!(spec["serviceAccountName"], "default");
    assert_eq!(spec["serviceAccount"], "default");
    assert_eq!(spec["priority"], 0);
    assert_eq!(spec["preemptionPolicy"], "PreemptLowerPriority");
    assert_eq!(
        spec["tolerations"],
        json!([
            {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300},
            {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300},
        ])
    );
    let c = &spec["containers"][0];
    assert_eq!(c["imagePullPolicy"], "Always");
    assert_eq!(c["terminationMessagePath"], "/dev/termination-log");
    assert_eq!(c["terminationMessagePolicy"], "File");
}

#[test]
fn pod_containers_probes_env_and_volumes() {
    let pod = prepare(&json!({
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web", "namespace": "default"},
        "spec": {
            "priorityClassName": "system-node-critical",
            "tolerations": [{"operator": "Exists"}],
            "containers": [{
                "name": "app", "image": "nginx:1.25",
                "ports": [{"containerPort": 80}],
                "env": [{"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}],
                "resources": {"limits": {"cpu": "500m", "memory": "128Mi"}, "requests": {"cpu": "100m"}},
                "livenessProbe": {"httpGet": {"port": 80}},
                "readinessProbe": {"grpc": {"port": 9000}, "periodSeconds": 5},
            }],
            "initContainers": [{"name": "init", "image": "busybox@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"}],
            "volumes": [
                {"name": "cfg", "configMap": {"name": "cfg"}},
                {"name": "sec", "secret": {"secretName": "sec", "defaultMode": 256}},
                {"name": "scratch"},
            ],
        }
    }));
    let spec = &pod["spec"];
    let c = &spec["containers"][0];
    assert_eq!(c["imagePullPolicy"], "IfNotPresent");
    assert_eq!(c["ports"][0]["protocol"], "TCP");
    assert_eq!(c["env"][0]["valueFrom"]["fieldRef"]["apiVersion"], "v1");
    // Requests default to limits, keeping the ones given.
    assert_eq!(c["resources"]["requests"], json!({"cpu": "100m", "memory": "128Mi"}));
    assert_eq!(
        c["livenessProbe"],
        json!({"httpGet": {"path": "/", "port": 80, "scheme": "HTTP"}, "timeoutSeconds": 1, "periodSeconds": 10, "successThreshold": 1, "failureThreshold": 3})
    );
    assert_eq!(c["readinessProbe"]["periodSeconds"], 5);
    assert_eq!(c["readinessProbe"]["grpc"]["service"], "");
    assert_eq!(spec["initContainers"][0]["imagePullPolicy"], "IfNotPresent");
    assert_eq!(spec["volumes"][0]["configMap"]["defaultMode"], 420);
    assert_eq!(spec["volumes"][1]["secret"]["defaultMode"], 256);
    assert_eq!(spec["volumes"][2]["emptyDir"], json!({}));
    assert_eq!(spec["priority"], 2000001000);
    // A toleration for everything already covers not-ready and unreachable nodes.
    assert_eq!(spec["tolerations"], json!([{"operator": "Exists"}]));
}

#[test]
fn deployment() {
    let d = prepare(&json!({
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": "default"},
        "spec": {"selector": {"matchLabels": {"app": "web"}}, "template": pod_template()}
    }));
    let spec = &d["spec"];
    assert_eq!(spec["replicas"], 1);
    assert_eq!(spec["revisionHistoryLimit"], 10);
    assert_eq!(spec["progressDeadlineSeconds"], 600);
    assert_eq!(spec["strategy"], json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}}));
    let pod = &spec["template"]["spec"];
    assert_eq!(pod["restartPolicy"], "Always");
    assert_eq!(pod["dnsPolicy"], "ClusterFirst");
    assert_eq!(pod["terminationGracePeriodSeconds"], 30);
    assert_eq!(pod["schedulerName"], "default-scheduler");
    assert_eq!(pod["securityContext"], json!({}));
    assert_eq!(pod["containers"][0]["imagePullPolicy"], "IfNotPresent");
    // Admission-time and Pod-only defaults stay out of templates.
    for field in ["serviceAccountName", "tolerations", "enableServiceLinks", "priority"] {
        assert!(pod.get(field).is_none(), "{field} must not be defaulted in a template");
    }
}

#[test]
fn other_workloads() {
    let ds = prepare(&json!({"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": "agent", "namespace": "default"},
        "spec": {"selector": {"matchLabels": {"app": "web"}}, "template": pod_template()}}));
    assert_eq!(ds["spec"]["updateStrategy"], json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}}));
    assert_eq!(ds["spec"]["revisionHistoryLimit"], 10);

    let sts = prepare(&json!({"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "db", "namespace": "default"},
        "spec": {"selector": {"matchLabels": {"app": "web"}}, "serviceName": "db", "template": pod_template(),
                 "volumeClaimTemplates": [{"metadata": {"name": "data"}, "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}]}}));
    let spec = &sts["spec"];
    assert_eq!(spec["replicas"], 1);
    assert_eq!(spec["podManagementPolicy"], "OrderedReady");
    assert_eq!(spec["updateStrategy"], json!({"type": "RollingUpdate", "rollingUpdate": {"partition": 0}}));
    assert_eq!(spec["revisionHistoryLimit"], 10);
    assert_eq!(spec["persistentVolumeClaimRetentionPolicy"], json!({"whenDeleted": "Retain", "whenScaled": "Retain"}));
    assert_eq!(spec["volumeClaimTemplates"][0]["spec"]["volumeMode"], "Filesystem");
    assert_eq!(spec["volumeClaimTemplates"][0]["status"]["phase"], "Pending");

    let rs = prepare(&json!({"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {"name": "web", "namespace": "default"},
        "spec": {"selector": {"matchLabels": {"app": "web"}}, "template": pod_template()}}));
    assert_eq!(rs["spec"]["replicas"], 1);

    let rc = prepare(&json!({"apiVersion": "v1", "kind": "ReplicationController", "metadata": {"name": "web", "namespace": "default"},
        "spec": {"template": pod_template()}}));
    assert_eq!(rc["spec"]["replicas"], 1);
    assert_eq!(rc["spec"]["selector"], json!({"app": "web"}));
    assert_eq!(rc["metadata"]["labels"], json!({"app": "web"}));
}

#[test]
fn service() {
    let svc = prepare(&json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web", "namespace": "default"},
        "spec": {"selector": {"app": "web"}, "ports": [{"port": 80}, {"name": "metrics", "port": 9090, "targetPort": "metrics"}]}}));
    let spec = &svc["spec"];
    assert_eq!(spec["type"], "ClusterIP");
    assert_eq!(spec["sessionAffinity"], "None");
    assert_eq!(spec["ports"][0], json!({"port": 80, "protocol": "TCP", "targetPort": 80}));
    assert_eq!(spec["ports"][1]["targetPort"], "metrics");
    assert_eq!(spec["ipFamilyPolicy"], "SingleStack");
    assert_eq!(spec["ipFamilies"], json!(["IPv4"]));
    assert_eq!(spec["internalTrafficPolicy"], "Cluster");
    assert!(spec.get("externalTrafficPolicy").is_none());
    assert!(spec.get("clusterIP").is_none(), "allocation is not defaulting");

    let np = prepare(&json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web", "namespace": "default"},
        "spec": {"type": "NodePort", "ports": [{"port": 80}], "clusterIP": "10.96.0.10"}}));
    assert_eq!(np["spec"]["externalTrafficPolicy"], "Cluster");
    assert_eq!(np["spec"]["clusterIPs"], json!(["10.96.0.10"]));

    let lb = prepare(&json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web", "namespace": "default"},
        "spec": {"type": "LoadBalancer", "ports": [{"port": 80}], "sessionAffinity": "ClientIP"}}));
    assert_eq!(lb["spec"]["allocateLoadBalancerNodePorts"], true);
    assert_eq!(lb["spec"]["sessionAffinityConfig"], json!({"clientIP": {"timeoutSeconds": 10800}}));

    let headless = prepare(&json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "db", "namespace": "default"},
        "spec": {"clusterIP": "None"}}));
    assert_eq!(headless["spec"]["clusterIPs"], json!(["None"]));
    assert_eq!(headless["spec"]["ipFamilyPolicy"], "RequireDualStack");
    assert_eq!(headless["spec"]["ipFamilies"], json!(["IPv4", "IPv6"]));

    let ext = prepare(&json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "ext", "namespace": "default"},
        "spec": {"type": "ExternalName", "externalName": "example.com"}}));
    for field in ["ipFamilies", "ipFamilyPolicy", "internalTrafficPolicy", "clusterIPs"] {
        assert!(ext["spec"].get(field).is_none(), "{field}");
    }
}

#[test]
fn job() {
    let job = json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "pi", "namespace": "default"},
        "spec": {"template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "pi", "image": "perl"}]}}}});
    let d = prepare(&job);
    let spec = &d["spec"];
    assert_eq!(spec["completions"], 1);
    assert_eq!(spec["parallelism"], 1);
    assert_eq!(spec["backoffLimit"], 6);
    assert_eq!(spec["completionMode"], "NonIndexed");
    assert_eq!(spec["suspend"], false);
    assert_eq!(spec["podReplacementPolicy"], "TerminatingOrFailed");
    assert!(spec.get("manualSelector").is_none());
    assert!(spec.get("selector").is_none(), "no uid yet, so no generated selector");
    assert_eq!(spec["template"]["spec"]["dnsPolicy"], "ClusterFirst");

    // Only parallelism given: completions stay unset.
    let par = prepare(&common::set(&job, "/spec/parallelism", json!(3)));
    assert!(par["spec"].get("completions").is_none());
    assert_eq!(par["spec"]["parallelism"], 3);

    // Once the server assigned a uid, the selector and pod labels are generated.
    let with_uid = prepare(&common::set(&job, "/metadata/uid", json!("0c9a1f57-2d4b-4a52-9b1a-7b0f3c6c8e11")));
    let uid = "0c9a1f57-2d4b-4a52-9b1a-7b0f3c6c8e11";
    assert_eq!(with_uid["spec"]["selector"], json!({"matchLabels": {"batch.kubernetes.io/controller-uid": uid}}));
    let labels = &with_uid["spec"]["template"]["metadata"]["labels"];
    assert_eq!(labels["controller-uid"], uid);
    assert_eq!(labels["job-name"], "pi");
    assert_eq!(labels["batch.kubernetes.io/job-name"], "pi");
    assert_eq!(with_uid["metadata"]["labels"], *labels);
}

#[test]
fn cron_job() {
    let cj = prepare(&json!({"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "tick", "namespace": "default"},
        "spec": {"schedule": "*/1 * * * *", "jobTemplate": {"spec": {"template": {"spec": {"restartPolicy": "OnFailure",
            "containers": [{"name": "tick", "image": "busybox"}]}}}}}}));
    let spec = &cj["spec"];
    assert_eq!(spec["concurrencyPolicy"], "Allow");
    assert_eq!(spec["suspend"], false);
    assert_eq!(spec["successfulJobsHistoryLimit"], 3);
    assert_eq!(spec["failedJobsHistoryLimit"], 1);
    let job_spec = &spec["jobTemplate"]["spec"];
    assert!(job_spec.get("backoffLimit").is_none(), "Job defaults apply to Jobs, not templates");
    assert_eq!(job_spec["template"]["spec"]["schedulerName"], "default-scheduler");
    assert_eq!(job_spec["template"]["spec"]["containers"][0]["imagePullPolicy"], "Always");
}

#[test]
fn namespace_and_small_kinds() {
    let ns = prepare(&json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team-a"}}));
    assert_eq!(ns["spec"]["finalizers"], json!(["kubernetes"]));
    assert_eq!(ns["status"]["phase"], "Active");
    assert_eq!(ns["metadata"]["labels"]["kubernetes.io/metadata.name"], "team-a");
    // The controller removed the finalizer while deleting: it must not come back.
    let deleting = prepare(&json!({"apiVersion": "v1", "kind": "Namespace",
        "metadata": {"name": "team-a", "deletionTimestamp": "2025-01-01T00:00:00Z"}, "spec": {}, "status": {"phase": "Terminating"}}));
    assert!(deleting["spec"].get("finalizers").is_none());
    assert_eq!(deleting["status"]["phase"], "Terminating");

    let secret = prepare(&json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s", "namespace": "default"},
        "data": {"a": "YQ=="}, "stringData": {"b": "hello", "a": "x"}}));
    assert_eq!(secret["type"], "Opaque");
    assert_eq!(secret["data"], json!({"a": "eA==", "b": "aGVsbG8="}));
    assert!(secret.get("stringData").is_none());

    let pvc = prepare(&json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "data", "namespace": "default"},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}));
    assert_eq!(pvc["spec"]["volumeMode"], "Filesystem");
    assert_eq!(pvc["status"]["phase"], "Pending");

    let hpa = prepare(&json!({"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "metadata": {"name": "web", "namespace": "default"},
        "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"}, "maxReplicas": 5, "behavior": {"scaleDown": {"stabilizationWindowSeconds": 60}}}}));
    assert_eq!(hpa["spec"]["minReplicas"], 1);
    assert_eq!(hpa["spec"]["metrics"][0]["resource"]["target"]["averageUtilization"], 80);
    assert_eq!(hpa["spec"]["behavior"]["scaleDown"]["stabilizationWindowSeconds"], 60);
    assert_eq!(hpa["spec"]["behavior"]["scaleDown"]["selectPolicy"], "Max");
    assert_eq!(hpa["spec"]["behavior"]["scaleUp"]["policies"][0], json!({"type": "Pods", "value": 4, "periodSeconds": 15}));

    let es = prepare(&json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice", "metadata": {"name": "web-abc", "namespace": "default"},
        "addressType": "IPv4", "endpoints": [], "ports": [{"port": 80}]}));
    assert_eq!(es["ports"][0], json!({"name": "", "port": 80, "protocol": "TCP"}));

    let rb = prepare(&json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", "metadata": {"name": "rb", "namespace": "default"},
        "roleRef": {"apiGroup": "", "kind": "Role", "name": "r"}, "subjects": [{"kind": "User", "name": "alice"}, {"kind": "ServiceAccount", "name": "default", "namespace": "default"}]}));
    assert_eq!(rb["roleRef"]["apiGroup"], "rbac.authorization.k8s.io");
    assert_eq!(rb["subjects"][0]["apiGroup"], "rbac.authorization.k8s.io");

    let pc = prepare(&json!({"apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass", "metadata": {"name": "high"}, "value": 1000}));
    assert_eq!(pc["preemptionPolicy"], "PreemptLowerPriority");

    let lease = json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": {"name": "l", "namespace": "default"}, "spec": {}});
    assert_eq!(prepare(&lease), (info(&lease).round_trip)(&lease).unwrap(), "leases have no defaults");
}

/// One object per kind with the fields that get defaults; defaulting twice equals once.
fn samples() -> Vec<Value> {
    let tpl = pod_template();
    vec![
        minimal_pod(),
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "hn", "namespace": "default"},
               "spec": {"hostNetwork": true, "containers": [{"name": "a", "image": "a", "ports": [{"containerPort": 8080}],
                        "resources": {"limits": {"cpu": "1"}}}]}}),
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d", "namespace": "default"}, "spec": {"selector": {"matchLabels": {"app": "web"}}, "template": tpl}}),
        json!({"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {"name": "d", "namespace": "default"}, "spec": {"selector": {"matchLabels": {"app": "web"}}, "template": tpl}}),
        json!({"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": "d", "namespace": "default"}, "spec": {"selector": {"matchLabels": {"app": "web"}}, "template": tpl}}),
        json!({"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "d", "namespace": "default"}, "spec": {"selector": {"matchLabels": {"app": "web"}}, "template": tpl}}),
        json!({"apiVersion": "v1", "kind": "ReplicationController", "metadata": {"name": "d", "namespace": "default"}, "spec": {"template": tpl}}),
        json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "j", "namespace": "default", "uid": "u-1"}, "spec": {"template": tpl}}),
        json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "j", "namespace": "default", "uid": "u-1"}, "spec": {"template": {"spec": tpl["spec"].clone()}}}),
        json!({"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "c", "namespace": "default"}, "spec": {"schedule": "@daily", "jobTemplate": {"spec": {"template": tpl}}}}),
        json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s", "namespace": "default"}, "spec": {"type": "LoadBalancer", "ports": [{"port": 80}], "sessionAffinity": "ClientIP"}}),
        json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s", "namespace": "default"}, "spec": {"clusterIP": "None"}}),
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "n"}}),
        json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s", "namespace": "default"}, "stringData": {"k": "v"}}),
        json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "p", "namespace": "default"}, "spec": {}}),
        json!({"apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": "p"}, "spec": {"capacity": {"storage": "1Gi"}}}),
        json!({"apiVersion": "v1", "kind": "Endpoints", "metadata": {"name": "e", "namespace": "default"}, "subsets": [{"addresses": [{"ip": "10.0.0.1"}], "ports": [{"port": 80}]}]}),
        json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n"}, "status": {"capacity": {"cpu": "4"}}}),
        json!({"apiVersion": "v1", "kind": "LimitRange", "metadata": {"name": "l", "namespace": "default"}, "spec": {"limits": [{"type": "Container", "max": {"cpu": "2"}, "min": {"memory": "1Mi"}}]}}),
        json!({"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "metadata": {"name": "h", "namespace": "default"}, "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "d"}, "maxReplicas": 3, "behavior": {}}}),
        json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice", "metadata": {"name": "e", "namespace": "default"}, "addressType": "IPv4", "endpoints": [], "ports": [{}]}),
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding", "metadata": {"name": "b"}, "roleRef": {"kind": "ClusterRole", "name": "r", "apiGroup": ""}, "subjects": [{"kind": "Group", "name": "g"}]}),
        json!({"apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass", "metadata": {"name": "p"}, "value": 1}),
    ]
}

#[test]
fn defaults_are_idempotent() {
    for sample in samples() {
        let info = info(&sample);
        let mut once = (info.round_trip)(&sample).unwrap();
        apply_defaults(info, &mut once);
        let mut twice = once.clone();
        apply_defaults(info, &mut twice);
        assert_eq!(once, twice, "{} {}", sample["kind"], sample["metadata"]["name"]);
        (info.round_trip)(&once).unwrap_or_else(|e| panic!("{}: defaulted object is not typed: {e}", sample["kind"]));
    }
}

#[test]
fn host_network_limits_and_limit_ranges() {
    let s = samples();
    let pod = prepare(&s[1]);
    let c = &pod["spec"]["containers"][0];
    assert_eq!(c["ports"][0]["hostPort"], 8080);
    assert_eq!(c["resources"]["requests"], json!({"cpu": "1"}));
    let lr = prepare(&s[18]);
    assert_eq!(lr["spec"]["limits"][0]["default"], json!({"cpu": "2"}));
    assert_eq!(lr["spec"]["limits"][0]["defaultRequest"], json!({"cpu": "2", "memory": "1Mi"}));
    let node = prepare(&s[17]);
    assert_eq!(node["status"]["allocatable"], json!({"cpu": "4"}));
}

#[test]
fn unexpected_shapes_do_not_panic() {
    for sample in samples() {
        let info = info(&sample);
        for mut odd in [json!(null), json!(42), json!([]), json!({"spec": 7}), json!({"spec": {"containers": "x", "template": []}}), json!({"metadata": 1, "spec": {"ports": [1, null]}})] {
            apply_defaults(info, &mut odd);
        }
    }
}
