//! PATCH semantics against what the kube-apiserver produces for the same requests.

use apimachinery::patch::{PatchError, PatchMeta, PatchType, apply_patch, patch_meta, patch_type_for, strategic_merge};
use serde_json::{Value, json};

const DEPLOYMENT: &str = "io.k8s.api.apps.v1.Deployment";
const POD: &str = "io.k8s.api.core.v1.Pod";
const SERVICE: &str = "io.k8s.api.core.v1.Service";

fn deployment() -> Value {
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": "web",
            "namespace": "default",
            "labels": {"app": "web", "tier": "frontend"},
            "annotations": {"owner": "team-a"},
            "finalizers": ["example.com/a", "example.com/b"],
        },
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "web"}},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {
                    "containers": [
                        {
                            "name": "web",
                            "image": "nginx:1.25",
                            "args": ["--port=80", "--verbose"],
                            "ports": [{"containerPort": 80, "protocol": "TCP"}],
                            "env": [{"name": "A", "value": "1"}],
                        },
                        {"name": "sidecar", "image": "envoy:1.0"},
                    ],
                    "tolerations": [{"key": "dedicated", "operator": "Exists"}],
                },
            },
        },
        "status": {"replicas": 2},
    })
}

fn pod() -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p", "namespace": "default", "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "rs", "uid": "u1"}]},
        "spec": {
            "containers": [{"name": "main", "image": "busybox"}],
            "nodeSelector": {"disk": "ssd", "zone": "a"},
            "affinity": {"nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [{"weight": 1, "preference": {}}]}},
            "volumes": [{"name": "data", "emptyDir": {}}, {"name": "cfg", "configMap": {"name": "settings"}}],
        },
        "status": {
            "phase": "Pending",
            "conditions": [{"type": "Ready", "status": "False"}, {"type": "PodScheduled", "status": "True"}],
        },
    })
}

fn service() -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {
            "selector": {"app": "web"},
            "ports": [
                {"name": "http", "port": 80, "targetPort": 8080, "protocol": "TCP"},
                {"name": "https", "port": 443, "targetPort": 8443, "protocol": "TCP"},
            ],
        },
    })
}

/// `base` with `edit` applied: expectations read as the change the patch should make.
fn edited(mut base: Value, edit: impl FnOnce(&mut Value)) -> Value {
    edit(&mut base);
    base
}

fn containers(d: &mut Value) -> &mut Value {
    &mut d["spec"]["template"]["spec"]["containers"]
}

fn body(patch: &Value) -> Vec<u8> {
    serde_json::to_vec(patch).expect("a Value always serializes")
}

struct Case {
    name: &'static str,
    definition: &'static str,
    original: Value,
    patch: Value,
    expected: Value,
}

#[test]
fn strategic_merge_patch() {
    let cases = vec![
        Case {
            name: "change a container image by name keeps the other containers and their order",
            definition: DEPLOYMENT,
            original: deployment(),
            patch: json!({"spec": {"template": {"spec": {"containers": [{"name": "sidecar", "image": "envoy:2.0"}]}}}}),
            expected: edited(deployment(), |d| containers(d)[1]["image"] = json!("envoy:2.0")),
        },
        Case {
            name: "add an env var by name: merged into the list, new items first as in Kubernetes",
            definition: DEPLOYMENT,
            original: deployment(),
            patch: json!({"spec": {"template": {"spec": {"containers": [{"name": "web", "env": [{"name": "B", "value": "2"}]}]}}}}),
            expected: edited(deployment(), |d| containers(d)[0]["env"] = json!([{"name": "B", "value": "2"}, {"name": "A", "value": "1"}])),
        },
        Case {
            name: "change an env var by name merges its fields",
            definition: DEPLOYMENT,
            original: deployment(),
            patch: json!({"spec": {"template": {"spec": {"containers": [{"name": "web", "env": [{"name": "A", "value": "9"}]}]}}}}),
            expected: edited(deployment(), |d| containers(d)[0]["env"][0]["value"] = json!("9")),
        },
        Case {
            name: "$patch: delete removes the container with that name",
            definition: DEPLOYMENT,
            original: deployment(),
            patch: json!({"spec": {"template": {"spec": {"containers": [{"name": "sidecar", "$patch": "delete"}]}}}}),
            expected: edited(deployment(), |d| {
                let web = containers(d)[0].clone();
                *containers(d) = json!([web]);
            }),
        },
        Case {
            name: "$patch: replace replaces the whole list",
            definition: DEPLOYMENT,
            original: deployment(),
            patch: json!({"spec": {"template": {"spec": {"containers": [{"$patch": "replace"}, {"name": "only", "image": "busybox"}]}}}}),
            expected: edited(deployment(), |d| *containers(d) = json!([{"name": "only", "image": "busybox"}])),
        },
        Case {
            name: "null removes a label",
            definition: DEPLOYMENT,
            original: deployment(),
            patch: json!({"metadata": {"labels": {"tier": null}}}),
            expected: edited(deployment(), |d| d["metadata"]["labels"] = json!({"app": "web"})),
        },
        Case {
            name: "finalizers are a primitive merge list: union, patch items first",
            definition: DEPLOYMENT,
            original: deployment(),
            patch: json!({"metadata": {"finalizers": ["example.com/c", "example.com/a"]}}),
            expected: edited(deployment(), |d| d["metadata"]["finalizers"] = json!(["example.com/c", "example.com/a", "example.com/b"])),
        },
        Case {
            name: "$deleteFromPrimitiveList removes finalizers",
            definition: DEPLOYMENT,
            original: deployment(),
            patch: json!({"metadata": {"$deleteFromPrimitiveList/finalizers": ["example.com/a"]}}),
            expected: edited(deployment(), |d| d["metadata"]["finalizers"] = json!(["example.com/b"])),
        },
        Case {
            name: "$setElementOrder orders the merged list",
            definition: DEPLOYMENT,
            original: deployment(),
            patch: json!({"spec": {"template": {"spec": {
                "$setElementOrder/containers": [{"name": "sidecar"}, {"name": "web"}],
                "containers": [{"name": "web", "image": "nginx:1.27"}],
            }}}}),
            expected: edited(deployment(), |d| {
                let mut web = containers(d)[0].clone();
                web["image"] = json!("nginx:1.27");
                let sidecar = containers(d)[1].clone();
                *containers(d) = json!([sidecar, web]);
            }),
        },
        Case {
            name: "$setElementOrder places a new container where the order says",
            definition: DEPLOYMENT,
            original: deployment(),
            patch: json!({"spec": {"template": {"spec": {
                "$setElementOrder/containers": [{"name": "web"}, {"name": "logger"}, {"name": "sidecar"}],
                "containers": [{"name": "logger", "image": "fluentbit"}],
            }}}}),
            expected: edited(deployment(), |d| {
                let web = containers(d)[0].clone();
                let sidecar = containers(d)[1].clone();
                *containers(d) = json!([web, {"name": "logger", "image": "fluentbit"}, sidecar]);
            }),
        },
        Case {
            name: "$setElementOrder alone reorders without changing items",
            definition: DEPLOYMENT,
            original: deployment(),
            patch: json!({"metadata": {"$setElementOrder/finalizers": ["example.com/b", "example.com/a"]}}),
            expected: edited(deployment(), |d| d["metadata"]["finalizers"] = json!(["example.com/b", "example.com/a"])),
        },
        Case {
            name: "$retainKeys on the deployment strategy drops rollingUpdate when switching to Recreate",
            definition: DEPLOYMENT,
            original: deployment(),
            patch: json!({"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate"}}}),
            expected: edited(deployment(), |d| d["spec"]["strategy"] = json!({"type": "Recreate"})),
        },
        Case {
            name: "without $retainKeys the strategy is merged and rollingUpdate stays",
            definition: DEPLOYMENT,
            original: deployment(),
            patch: json!({"spec": {"strategy": {"type": "Recreate"}}}),
            expected: edited(deployment(), |d| d["spec"]["strategy"]["type"] = json!("Recreate")),
        },
        Case {
            name: "tolerations have no strategy and are replaced",
            definition: DEPLOYMENT,
            original: deployment(),
            patch: json!({"spec": {"template": {"spec": {"tolerations": [{"key": "gpu", "operator": "Exists", "effect": "NoSchedule"}]}}}}),
            expected: edited(deployment(), |d| {
                d["spec"]["template"]["spec"]["tolerations"] = json!([{"key": "gpu", "operator": "Exists", "effect": "NoSchedule"}]);
            }),
        },
        Case {
            name: "container args have no strategy and are replaced",
            definition: DEPLOYMENT,
            original: deployment(),
            patch: json!({"spec": {"template": {"spec": {"containers": [{"name": "web", "args": ["--port=8080"]}]}}}}),
            expected: edited(deployment(), |d| containers(d)[0]["args"] = json!(["--port=8080"])),
        },
        Case {
            name: "an empty merge list changes nothing",
            definition: DEPLOYMENT,
            original: deployment(),
            patch: json!({"spec": {"template": {"spec": {"containers": []}}}}),
            expected: deployment(),
        },
        Case {
            name: "service ports merge by port",
            definition: SERVICE,
            original: service(),
            patch: json!({"spec": {"ports": [{"port": 443, "targetPort": 9443}]}}),
            expected: edited(service(), |s| s["spec"]["ports"][1]["targetPort"] = json!(9443)),
        },
        Case {
            name: "volumes merge by name and $retainKeys switches a volume's source",
            definition: POD,
            original: pod(),
            patch: json!({"spec": {"volumes": [{"name": "data", "$retainKeys": ["name", "hostPath"], "hostPath": {"path": "/srv"}}]}}),
            expected: edited(pod(), |p| p["spec"]["volumes"][0] = json!({"name": "data", "hostPath": {"path": "/srv"}})),
        },
        Case {
            name: "a list the object lacks is built with its directives applied, none copied",
            definition: POD,
            original: pod(),
            patch: json!({"spec": {"initContainers": [{"name": "init", "image": "busybox"}, {"name": "gone", "$patch": "delete"}]}}),
            expected: edited(pod(), |p| p["spec"]["initContainers"] = json!([{"name": "init", "image": "busybox"}])),
        },
        Case {
            name: "$patch: replace on a map replaces it",
            definition: POD,
            original: pod(),
            patch: json!({"spec": {"nodeSelector": {"$patch": "replace", "gpu": "yes"}}}),
            expected: edited(pod(), |p| p["spec"]["nodeSelector"] = json!({"gpu": "yes"})),
        },
        Case {
            name: "$patch: delete on a map empties it, as Kubernetes does",
            definition: POD,
            original: pod(),
            patch: json!({"spec": {"affinity": {"$patch": "delete"}}}),
            expected: edited(pod(), |p| p["spec"]["affinity"] = json!({})),
        },
        Case {
            name: "pod status conditions merge by type",
            definition: POD,
            original: pod(),
            patch: json!({"status": {"conditions": [{"type": "Ready", "status": "True"}]}}),
            expected: edited(pod(), |p| p["status"]["conditions"][0]["status"] = json!("True")),
        },
        Case {
            name: "ownerReferences merge by uid",
            definition: POD,
            original: pod(),
            patch: json!({"metadata": {"ownerReferences": [{"uid": "u1", "controller": true}]}}),
            expected: edited(pod(), |p| p["metadata"]["ownerReferences"][0]["controller"] = json!(true)),
        },
    ];
    for case in cases {
        let got = apply_patch(case.definition, &case.original, PatchType::Strategic, &body(&case.patch)).unwrap_or_else(|e| panic!("{}: {e}", case.name));
        assert_eq!(got, case.expected, "{}", case.name);
        let direct = strategic_merge(case.definition, &case.original, &case.patch).unwrap_or_else(|e| panic!("{}: {e}", case.name));
        assert_eq!(direct, case.expected, "{} (strategic_merge)", case.name);
    }
}

/// What `kubectl apply` sends the second time, after the manifest changed the web image and
/// dropped the `tier` label: a three-way patch with the new last-applied annotation, a null for
/// the removed label and the container order as `$setElementOrder`.
#[test]
fn kubectl_second_apply() {
    let last_applied = |image: &str, labels: Value| {
        json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "default", "labels": labels},
            "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}}, "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "web", "image": image}, {"name": "sidecar", "image": "envoy:1.0"}]},
            }},
        })
        .to_string()
            + "\n"
    };
    let annotation = "kubectl.kubernetes.io/last-applied-configuration";
    let live = edited(deployment(), |d| {
        d["metadata"]["annotations"][annotation] = json!(last_applied("nginx:1.25", json!({"app": "web", "tier": "frontend"})));
    });
    let new_last_applied = last_applied("nginx:1.27", json!({"app": "web"}));
    let patch = json!({
        "metadata": {
            "annotations": {annotation: new_last_applied},
            "labels": {"tier": null},
        },
        "spec": {"template": {"spec": {
            "$setElementOrder/containers": [{"name": "web"}, {"name": "sidecar"}],
            "containers": [{"image": "nginx:1.27", "name": "web"}],
        }}},
    });
    let got = apply_patch(DEPLOYMENT, &live, PatchType::Strategic, &body(&patch)).expect("kubectl's patch applies");
    let expected = edited(live.clone(), |d| {
        d["metadata"]["annotations"][annotation] = json!(new_last_applied);
        d["metadata"]["labels"] = json!({"app": "web"});
        containers(d)[0]["image"] = json!("nginx:1.27");
    });
    assert_eq!(got, expected);
    // The fields kubectl did not mention are untouched: env, ports, args, the sidecar, status.
    assert_eq!(got["spec"]["template"]["spec"]["containers"][0]["env"], live["spec"]["template"]["spec"]["containers"][0]["env"]);
    assert_eq!(got["status"], live["status"]);
    assert!(!got.to_string().contains("$setElementOrder"));
}

/// Ordering and matching stay fast on long lists (the naive Go-style index scans are quadratic
/// inside a sort), and stay correct.
#[test]
fn long_lists() {
    let n = 5000;
    let env: Vec<Value> = (0..n).map(|i| json!({"name": format!("V{i}"), "value": "old"})).collect();
    let original = edited(deployment(), |d| containers(d)[0]["env"] = Value::Array(env));
    let reversed: Vec<Value> = (0..n).rev().map(|i| json!({"name": format!("V{i}")})).collect();
    let changed: Vec<Value> = (0..n).rev().step_by(2).map(|i| json!({"name": format!("V{i}"), "value": "new"})).collect();
    let patch = json!({"spec": {"template": {"spec": {"containers": [{
        "name": "web",
        "$setElementOrder/env": reversed,
        "env": changed,
    }]}}}});
    let got = apply_patch(DEPLOYMENT, &original, PatchType::Strategic, &body(&patch)).expect("long list patch");
    let env = got["spec"]["template"]["spec"]["containers"][0]["env"].as_array().expect("env stays a list");
    assert_eq!(env.len(), n);
    for (k, item) in env.iter().enumerate() {
        let i = n - 1 - k;
        assert_eq!(item["name"], json!(format!("V{i}")));
        assert_eq!(item["value"], json!(if i % 2 == (n - 1) % 2 { "new" } else { "old" }), "V{i}");
    }
}

#[test]
fn directives_never_leak() {
    let patches = [
        json!({"spec": {"template": {"spec": {"$setElementOrder/containers": [{"name": "sidecar"}, {"name": "web"}]}}}}),
        json!({"spec": {"template": {"spec": {"containers": [{"$patch": "replace"}, {"name": "x", "image": "y", "env": [{"name": "E", "$patch": "delete"}]}]}}}}),
        json!({"spec": {"template": {"spec": {"initContainers": [{"name": "i", "image": "b", "env": [{"name": "E", "value": "1", "$patch": "merge"}]}]}}}}),
        json!({"spec": {"template": {"spec": {"affinity": {"$patch": "replace", "nodeAffinity": {"$patch": "merge"}}}}}}),
        json!({"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate"}}}),
        json!({"metadata": {"$deleteFromPrimitiveList/finalizers": ["example.com/a"], "$setElementOrder/finalizers": ["example.com/b"]}}),
    ];
    for patch in patches {
        let got = apply_patch(DEPLOYMENT, &deployment(), PatchType::Strategic, &body(&patch)).unwrap_or_else(|e| panic!("{patch}: {e}"));
        let text = got.to_string();
        assert!(!text.contains("\"$"), "directive leaked from {patch}: {text}");
    }
}

#[test]
fn strategic_merge_patch_errors() {
    let cases: Vec<(&str, &str, Value, &str)> = vec![
        ("unknown definition", "com.example.v1.Widget", json!({"spec": {}}), "strategic merge patch is not supported for com.example.v1.Widget; use a JSON merge patch"),
        ("bad $patch on a map", DEPLOYMENT, json!({"spec": {"$patch": "bogus"}}), "invalid $patch directive \"bogus\""),
        (
            "bad $patch in a list item",
            DEPLOYMENT,
            json!({"spec": {"template": {"spec": {"containers": [{"name": "web", "$patch": "remove"}]}}}}),
            "at spec.template.spec.containers[name=web]: invalid $patch directive \"remove\"",
        ),
        (
            "list item without its merge key",
            DEPLOYMENT,
            json!({"spec": {"template": {"spec": {"containers": [{"image": "nginx"}]}}}}),
            "at spec.template.spec.containers[0]: list item has no merge key \"name\"",
        ),
        (
            "field outside $retainKeys",
            DEPLOYMENT,
            json!({"spec": {"strategy": {"$retainKeys": ["type"], "type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1}}}}),
            "at spec.strategy: the patch sets \"rollingUpdate\", which is not in $retainKeys",
        ),
        (
            "$setElementOrder contradicting the patch",
            DEPLOYMENT,
            json!({"spec": {"template": {"spec": {"$setElementOrder/containers": [{"name": "web"}], "containers": [{"name": "sidecar", "image": "x"}]}}}}),
            "at spec.template.spec.$setElementOrder/containers: the items of the patch list",
        ),
        ("$deleteFromPrimitiveList on a list without merge strategy", DEPLOYMENT, json!({"spec": {"template": {"spec": {"containers": [{"name": "web", "$deleteFromPrimitiveList/args": ["--verbose"]}]}}}}), "\"args\" is not a list of primitives"),
        ("malformed directive key", DEPLOYMENT, json!({"metadata": {"$setElementOrder": []}}), "malformed directive $setElementOrder"),
        ("unknown directive", DEPLOYMENT, json!({"metadata": {"$frobnicate": 1}}), "unknown directive $frobnicate"),
        ("mixed item types", DEPLOYMENT, json!({"metadata": {"finalizers": [1]}}), "list items are not all of one type"),
    ];
    for (name, definition, patch, message) in cases {
        let err = apply_patch(definition, &deployment(), PatchType::Strategic, &body(&patch)).expect_err(name);
        assert!(err.to_string().contains(message), "{name}: {err}");
    }
    let err = apply_patch(DEPLOYMENT, &deployment(), PatchType::Strategic, b"[]").expect_err("a list is no strategic patch");
    assert!(matches!(err, PatchError::InvalidBody { patch_type: PatchType::Strategic, .. }), "{err}");
}

#[test]
fn json_patch() {
    let ok: Vec<(&str, Value, Value)> = vec![
        (
            "add a label",
            json!([{"op": "add", "path": "/metadata/labels/track", "value": "stable"}]),
            edited(deployment(), |d| d["metadata"]["labels"]["track"] = json!("stable")),
        ),
        (
            "replace a container image by index",
            json!([{"op": "replace", "path": "/spec/template/spec/containers/0/image", "value": "nginx:1.27"}]),
            edited(deployment(), |d| containers(d)[0]["image"] = json!("nginx:1.27")),
        ),
        (
            "remove an annotation",
            json!([{"op": "remove", "path": "/metadata/annotations/owner"}]),
            edited(deployment(), |d| d["metadata"]["annotations"] = json!({})),
        ),
        (
            "test then replace",
            json!([{"op": "test", "path": "/spec/replicas", "value": 2}, {"op": "replace", "path": "/spec/replicas", "value": 5}]),
            edited(deployment(), |d| d["spec"]["replicas"] = json!(5)),
        ),
        (
            "append to a list",
            json!([{"op": "add", "path": "/metadata/finalizers/-", "value": "example.com/c"}]),
            edited(deployment(), |d| d["metadata"]["finalizers"] = json!(["example.com/a", "example.com/b", "example.com/c"])),
        ),
    ];
    for (name, patch, expected) in ok {
        let got = apply_patch(DEPLOYMENT, &deployment(), PatchType::Json, &body(&patch)).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(got, expected, "{name}");
    }

    let failing = json!([{"op": "replace", "path": "/spec/replicas", "value": 9}, {"op": "test", "path": "/spec/replicas", "value": 3}]);
    let err = apply_patch(DEPLOYMENT, &deployment(), PatchType::Json, &body(&failing)).expect_err("test must fail");
    assert!(matches!(&err, PatchError::TestFailed { index: 1, path, .. } if path == "/spec/replicas"), "{err:?}");

    let missing = json!([{"op": "remove", "path": "/metadata/labels/nope"}]);
    let err = apply_patch(DEPLOYMENT, &deployment(), PatchType::Json, &body(&missing)).expect_err("nothing to remove");
    assert!(matches!(&err, PatchError::PathNotFound { index: 0, op: "remove", path } if path == "/metadata/labels/nope"), "{err:?}");
    assert!(err.to_string().contains("does not exist"), "{err}");

    let bad_op = json!([{"op": "frobnicate", "path": "/spec"}]);
    let err = apply_patch(DEPLOYMENT, &deployment(), PatchType::Json, &body(&bad_op)).expect_err("unknown op");
    assert!(matches!(err, PatchError::InvalidBody { patch_type: PatchType::Json, .. }), "{err:?}");

    let not_a_list = json!({"op": "add", "path": "/a", "value": 1});
    let err = apply_patch(DEPLOYMENT, &deployment(), PatchType::Json, &body(&not_a_list)).expect_err("needs an array");
    assert!(err.to_string().contains("expected a JSON array"), "{err}");

    let to_scalar = json!([{"op": "replace", "path": "", "value": 1}]);
    let err = apply_patch(DEPLOYMENT, &deployment(), PatchType::Json, &body(&to_scalar)).expect_err("result must be an object");
    assert!(matches!(err, PatchError::NotAnObject { .. }), "{err:?}");

    let too_many = Value::Array(vec![json!({"op": "test", "path": "/kind", "value": "Deployment"}); apimachinery::patch::MAX_JSON_PATCH_OPERATIONS + 1]);
    let err = apply_patch(DEPLOYMENT, &deployment(), PatchType::Json, &body(&too_many)).expect_err("too many operations");
    assert!(matches!(err, PatchError::TooManyOperations { .. }), "{err:?}");
}

#[test]
fn json_merge_patch() {
    let cases: Vec<(&str, Value, Value)> = vec![
        ("null deletes a field", json!({"metadata": {"labels": {"tier": null}}}), edited(deployment(), |d| d["metadata"]["labels"] = json!({"app": "web"}))),
        (
            "lists are replaced wholesale, even merge-keyed ones",
            json!({"spec": {"template": {"spec": {"containers": [{"name": "sidecar", "image": "envoy:2.0"}]}}}}),
            edited(deployment(), |d| *containers(d) = json!([{"name": "sidecar", "image": "envoy:2.0"}])),
        ),
        ("maps merge recursively", json!({"spec": {"strategy": {"type": "Recreate"}}}), edited(deployment(), |d| d["spec"]["strategy"]["type"] = json!("Recreate"))),
    ];
    for (name, patch, expected) in cases {
        let got = apply_patch(DEPLOYMENT, &deployment(), PatchType::Merge, &body(&patch)).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(got, expected, "{name}");
    }
    // A merge patch works for any definition, known to the type graph or not.
    let widget = json!({"apiVersion": "example.com/v1", "kind": "Widget", "spec": {"size": 1, "tags": ["a"]}});
    let got = apply_patch("com.example.v1.Widget", &widget, PatchType::Merge, br#"{"spec":{"tags":["b"]}}"#).expect("merge patch");
    assert_eq!(got["spec"], json!({"size": 1, "tags": ["b"]}));
}

#[test]
fn bad_bodies_are_patch_errors() {
    for patch_type in [PatchType::Json, PatchType::Merge, PatchType::Strategic] {
        for bad in [&b"{\"spec\":"[..], b"not json", b""] {
            let err = apply_patch(DEPLOYMENT, &deployment(), patch_type, bad).expect_err("malformed body");
            assert!(matches!(err, PatchError::InvalidBody { .. }), "{patch_type}: {err:?}");
            assert!(err.to_string().contains("malformed JSON"), "{patch_type}: {err}");
        }
    }
    for patch_type in [PatchType::Merge, PatchType::Strategic] {
        let err = apply_patch(DEPLOYMENT, &deployment(), patch_type, b"\"text\"").expect_err("not an object");
        assert!(err.to_string().contains("expected a JSON object, found a string"), "{err}");
    }
}

#[test]
fn apply_patches_are_not_handled_here() {
    let err = apply_patch(DEPLOYMENT, &deployment(), PatchType::Apply, b"{}").expect_err("apply is not supported");
    assert!(matches!(err, PatchError::ApplyNotSupported));
    assert!(err.to_string().contains("server-side apply"), "{err}");
}

#[test]
fn content_types() {
    let cases = [
        ("application/json-patch+json", Some(PatchType::Json)),
        ("application/merge-patch+json", Some(PatchType::Merge)),
        ("application/strategic-merge-patch+json; charset=utf-8", Some(PatchType::Strategic)),
        ("Application/Apply-Patch+YAML", Some(PatchType::Apply)),
        ("application/apply-patch+yaml;charset=utf-8", Some(PatchType::Apply)),
        ("application/json", None),
        ("", None),
    ];
    for (content_type, expected) in cases {
        assert_eq!(patch_type_for(content_type), expected, "{content_type}");
    }
    assert_eq!(patch_type_for(PatchType::Strategic.content_type()), Some(PatchType::Strategic));
}

#[test]
fn patch_metadata_of_built_in_fields() {
    let merge = |key| Some(PatchMeta { strategy: "merge", merge_key: Some(key) });
    let cases = [
        ("io.k8s.api.core.v1.PodSpec", "containers", merge("name")),
        ("io.k8s.api.core.v1.PodSpec", "initContainers", merge("name")),
        ("io.k8s.api.core.v1.PodSpec", "volumes", Some(PatchMeta { strategy: "merge,retainKeys", merge_key: Some("name") })),
        ("io.k8s.api.core.v1.PodSpec", "hostAliases", merge("ip")),
        ("io.k8s.api.core.v1.PodSpec", "topologySpreadConstraints", merge("topologyKey")),
        ("io.k8s.api.core.v1.PodSpec", "tolerations", None),
        ("io.k8s.api.core.v1.PodSpec", "readinessGates", None),
        ("io.k8s.api.core.v1.Container", "ports", merge("containerPort")),
        ("io.k8s.api.core.v1.Container", "env", merge("name")),
        ("io.k8s.api.core.v1.Container", "volumeMounts", merge("mountPath")),
        ("io.k8s.api.core.v1.Container", "volumeDevices", merge("devicePath")),
        ("io.k8s.api.core.v1.Container", "args", None),
        ("io.k8s.api.core.v1.EphemeralContainer", "env", merge("name")),
        ("io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta", "ownerReferences", merge("uid")),
        ("io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta", "finalizers", Some(PatchMeta { strategy: "merge", merge_key: None })),
        ("io.k8s.api.core.v1.ServiceSpec", "ports", merge("port")),
        ("io.k8s.api.core.v1.NodeStatus", "addresses", merge("type")),
        ("io.k8s.api.core.v1.NodeSpec", "taints", None),
        ("io.k8s.api.core.v1.PodStatus", "containerStatuses", None),
        ("io.k8s.api.apps.v1.DeploymentSpec", "strategy", Some(PatchMeta { strategy: "retainKeys", merge_key: None })),
        ("io.k8s.api.batch.v1.JobStatus", "conditions", merge("type")),
    ];
    for (definition, field, expected) in cases {
        assert_eq!(patch_meta(definition, field), expected, "{definition}.{field}");
    }
}
