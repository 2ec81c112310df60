//! Which pods a ReplicaSet deletes first when it has too many: Kubernetes' ActivePodsWithRanks
//! order, so that a scale-down removes the pods that serve least (unscheduled, not running, not
//! ready, cheap to delete, doubled up on a node, recently ready, crash-looping, new) and keeps the
//! long-ready ones.

use std::cmp::Reverse;
use std::collections::{HashMap, HashSet};

use serde_json::Value;

use crate::util;

pub const POD_DELETION_COST: &str = "controller.kubernetes.io/pod-deletion-cost";

/// A total order built from Kubernetes' pairwise rules, compared field by field. Kubernetes
/// breaks ties inside a logarithmic age bucket by UID (an arbitrary pick); here they fall
/// through to the later rules first and to the UID last, which keeps the order total (Rust's
/// sort requires one).
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
struct DeletionKey {
    assigned: bool,
    phase: u8,
    ready: bool,
    deletion_cost: i64,
    doubled_up: Reverse<usize>,
    ready_age: Age,
    restarts: Reverse<(i64, i64)>,
    created_age: Age,
    uid: String,
}

/// How long ago something happened, coarsened to powers of two (Kubernetes'
/// LogarithmicScaleDown): pods that became ready 10 s and 12 s ago count as equally fresh, so
/// the other rules decide between them. An unknown time sorts first.
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Age {
    Unknown,
    Bucket(i64),
}

fn age(t: Option<jiff::Timestamp>, now: jiff::Timestamp) -> Age {
    match t {
        None => Age::Unknown,
        Some(t) => {
            let nanos = now.duration_since(t).as_nanos();
            if nanos > 0 { Age::Bucket((nanos as f64).log2().floor() as i64) } else { Age::Bucket(-1) }
        }
    }
}

fn parse_time(v: Option<&Value>) -> Option<jiff::Timestamp> {
    v.and_then(|t| t.as_str()).and_then(|t| t.parse::<jiff::Timestamp>().ok())
}

fn phase_ordinal(p: &Value) -> u8 {
    match util::pod_phase(p) {
        "Unknown" => 1,
        "Running" => 2,
        _ => 0,
    }
}

fn ready_since(p: &Value) -> Option<jiff::Timestamp> {
    let conds = p.pointer("/status/conditions")?.as_array()?;
    let ready = conds.iter().find(|c| c.get("type").and_then(|t| t.as_str()) == Some("Ready"))?;
    parse_time(ready.get("lastTransitionTime"))
}

/// The highest restart count of the regular containers, then of the sidecars (init containers
/// that keep running).
fn max_restarts(p: &Value) -> (i64, i64) {
    let max_of = |statuses: Option<&Value>, only: Option<&HashSet<&str>>| -> i64 {
        statuses
            .and_then(|s| s.as_array())
            .map(|a| {
                a.iter()
                    .filter(|c| only.is_none_or(|names| c.get("name").and_then(|n| n.as_str()).is_some_and(|n| names.contains(n))))
                    .filter_map(|c| c.get("restartCount").and_then(|r| r.as_i64()))
                    .max()
                    .unwrap_or(0)
            })
            .unwrap_or(0)
    };
    let sidecars: HashSet<&str> = p
        .pointer("/spec/initContainers")
        .and_then(|c| c.as_array())
        .map(|a| {
            a.iter()
                .filter(|c| c.get("restartPolicy").and_then(|r| r.as_str()) == Some("Always"))
                .filter_map(|c| c.get("name").and_then(|n| n.as_str()))
                .collect()
        })
        .unwrap_or_default();
    (max_of(p.pointer("/status/containerStatuses"), None), max_of(p.pointer("/status/initContainerStatuses"), Some(&sidecars)))
}

/// The `controller.kubernetes.io/pod-deletion-cost` annotation (an int32; anything else is 0).
pub fn deletion_cost(p: &Value) -> i64 {
    p.pointer("/metadata/annotations")
        .and_then(|a| a.get(POD_DELETION_COST))
        .and_then(|c| c.as_str())
        .and_then(|c| c.trim().parse::<i32>().ok())
        .map(i64::from)
        .unwrap_or(0)
}

fn node_of(p: &Value) -> &str {
    p.pointer("/spec/nodeName").and_then(|n| n.as_str()).unwrap_or("")
}

fn key(p: &Value, doubled_up: usize, now: jiff::Timestamp) -> DeletionKey {
    let ready = util::is_pod_ready(p);
    DeletionKey {
        assigned: !node_of(p).is_empty(),
        phase: phase_ordinal(p),
        ready,
        deletion_cost: deletion_cost(p),
        doubled_up: Reverse(doubled_up),
        ready_age: if ready { age(ready_since(p), now) } else { Age::Unknown },
        restarts: Reverse(max_restarts(p)),
        created_age: age(parse_time(p.pointer("/metadata/creationTimestamp")), now),
        uid: util::uid(p).to_string(),
    }
}

/// Indices into `pods`, the first to delete first. `related` are the pods of every ReplicaSet
/// with the same owner (a Deployment's old and new ReplicaSets; only active ones count): a pod
/// sharing its node with more of them is deleted before one that is alone, so what remains
/// stays spread over nodes.
pub fn deletion_order(pods: &[&Value], related: &[&Value], now: jiff::Timestamp) -> Vec<usize> {
    let mut on_node: HashMap<&str, usize> = HashMap::new();
    for p in related.iter().filter(|p| util::is_pod_active(p)) {
        *on_node.entry(node_of(p)).or_default() += 1;
    }
    let mut keyed: Vec<(DeletionKey, usize)> = pods.iter().enumerate().map(|(i, p)| (key(p, on_node.get(node_of(p)).copied().unwrap_or(0), now), i)).collect();
    keyed.sort();
    keyed.into_iter().map(|(_, i)| i).collect()
}

/// The `n` pods to delete (all of them if `n` is at least their number).
pub fn pods_to_delete<'a>(pods: &[&'a Value], related: &[&Value], n: usize, now: jiff::Timestamp) -> Vec<&'a Value> {
    if n >= pods.len() {
        return pods.to_vec();
    }
    deletion_order(pods, related, now).into_iter().take(n).map(|i| pods[i]).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ts(secs_ago: i64, now: jiff::Timestamp) -> String {
        util::timestamp(now - jiff::SignedDuration::from_secs(secs_ago))
    }

    struct P {
        name: &'static str,
        node: &'static str,
        phase: &'static str,
        ready_ago: Option<i64>,
        created_ago: i64,
        restarts: i64,
        cost: Option<&'static str>,
    }

    fn pod(p: &P, now: jiff::Timestamp) -> Value {
        let mut v = json!({
            "metadata": {"name": p.name, "namespace": "ns", "uid": format!("uid-{}", p.name), "creationTimestamp": ts(p.created_ago, now)},
            "spec": {"containers": [{"name": "c"}]},
            "status": {"phase": p.phase, "containerStatuses": [{"name": "c", "restartCount": p.restarts}]},
        });
        if !p.node.is_empty() {
            v["spec"]["nodeName"] = json!(p.node);
        }
        if let Some(r) = p.ready_ago {
            v["status"]["conditions"] = json!([{"type": "Ready", "status": "True", "lastTransitionTime": ts(r, now)}]);
        } else {
            v["status"]["conditions"] = json!([{"type": "Ready", "status": "False"}]);
        }
        if let Some(c) = p.cost {
            v["metadata"]["annotations"] = json!({POD_DELETION_COST: c});
        }
        v
    }

    const fn p(name: &'static str, node: &'static str, phase: &'static str, ready_ago: Option<i64>, created_ago: i64, restarts: i64) -> P {
        P { name, node, phase, ready_ago, created_ago, restarts, cost: None }
    }

    #[test]
    fn deletion_order_table() {
        let now = jiff::Timestamp::now();
        // (case, pods, expected order of names)
        let cases: Vec<(&str, Vec<P>, Vec<&str>)> = vec![
            ("unscheduled before scheduled", vec![p("a", "n1", "Pending", None, 10, 0), p("b", "", "Pending", None, 10, 0)], vec!["b", "a"]),
            (
                "pending < unknown < running",
                vec![p("run", "n1", "Running", None, 10, 0), p("unk", "n2", "Unknown", None, 10, 0), p("pend", "n3", "Pending", None, 10, 0)],
                vec!["pend", "unk", "run"],
            ),
            (
                "not ready before ready",
                vec![p("ready", "n1", "Running", Some(100), 200, 0), p("notready", "n2", "Running", None, 200, 0)],
                vec!["notready", "ready"],
            ),
            (
                "more recently ready first",
                vec![p("old", "n1", "Running", Some(100_000), 200_000, 0), p("new", "n2", "Running", Some(10), 200_000, 0)],
                vec!["new", "old"],
            ),
            (
                "higher restart count first",
                vec![p("calm", "n1", "Running", Some(1000), 2000, 0), p("crashy", "n2", "Running", Some(1000), 2000, 7)],
                vec!["crashy", "calm"],
            ),
            ("newer first", vec![p("older", "n1", "Running", Some(1000), 100_000, 0), p("newer", "n2", "Running", Some(1000), 50, 0)], vec!["newer", "older"]),
            (
                "phase beats readiness and age",
                vec![p("readyrunning", "n1", "Running", Some(1), 1, 9), p("pending", "n2", "Pending", None, 100_000, 0)],
                vec!["pending", "readyrunning"],
            ),
        ];
        for (name, pods, want) in cases {
            let values: Vec<Value> = pods.iter().map(|x| pod(x, now)).collect();
            let refs: Vec<&Value> = values.iter().collect();
            let order: Vec<&str> = deletion_order(&refs, &[], now).into_iter().map(|i| pods[i].name).collect();
            assert_eq!(order, want, "{name}");
        }
    }

    #[test]
    fn deletion_cost_and_node_sharing() {
        let now = jiff::Timestamp::now();
        let mut cheap = p("cheap", "n1", "Running", Some(1000), 2000, 0);
        cheap.cost = Some("-100");
        let mut dear = p("dear", "n2", "Running", Some(1000), 2000, 0);
        dear.cost = Some("100");
        let pods = [pod(&dear, now), pod(&cheap, now)];
        let refs: Vec<&Value> = pods.iter().collect();
        assert_eq!(deletion_order(&refs, &[], now), vec![1, 0], "lower deletion cost first");

        // Two related pods on n1, one on n2: the pod on the crowded node goes first.
        let alone = pod(&p("alone", "n2", "Running", Some(1000), 2000, 0), now);
        let crowded = pod(&p("crowded", "n1", "Running", Some(1000), 2000, 0), now);
        let sibling = pod(&p("sibling", "n1", "Running", Some(1000), 2000, 0), now);
        let related = [&alone, &crowded, &sibling];
        assert_eq!(deletion_order(&[&alone, &crowded], &related, now), vec![1, 0]);
    }

    #[test]
    fn pods_to_delete_takes_the_first_n() {
        let now = jiff::Timestamp::now();
        let pods: Vec<Value> = vec![
            pod(&p("r1", "n1", "Running", Some(5000), 9000, 0), now),
            pod(&p("u", "", "Pending", None, 5, 0), now),
            pod(&p("nr", "n2", "Running", None, 50, 0), now),
        ];
        let refs: Vec<&Value> = pods.iter().collect();
        let names = |v: Vec<&Value>| v.into_iter().map(|p| util::name(p).to_string()).collect::<Vec<_>>();
        assert_eq!(names(pods_to_delete(&refs, &[], 2, now)), vec!["u", "nr"]);
        assert_eq!(names(pods_to_delete(&refs, &[], 5, now)).len(), 3);
        assert!(pods_to_delete(&refs, &[], 0, now).is_empty());
    }

    #[test]
    fn odd_shapes_do_not_panic() {
        let now = jiff::Timestamp::now();
        let odd = [json!(null), json!({"metadata": "x", "status": {"conditions": "no", "phase": 3}}), json!([1, 2])];
        let refs: Vec<&Value> = odd.iter().collect();
        assert_eq!(deletion_order(&refs, &refs, now).len(), 3);
    }
}
