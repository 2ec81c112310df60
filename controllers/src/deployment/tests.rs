//! Table-driven tests of the Deployment controller's pure pieces.

use serde_json::{Value, json};

use super::*;

fn deployment(replicas: i64, surge: Value, unavailable: Value) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "ns", "uid": "d-uid", "generation": 2, "annotations": {"kubernetes.io/change-cause": "v2", "kubectl.kubernetes.io/last-applied-configuration": "{}", "team": "a"}},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": "web"}},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": surge, "maxUnavailable": unavailable}},
            "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "c", "image": "nginx:2"}]}},
        },
    })
}

/// A ReplicaSet: name, spec.replicas, status.replicas, status.availableReplicas, created at
/// second `created` (larger is newer).
fn rs(name: &str, spec: i64, replicas: i64, available: i64, created: i64) -> Value {
    let t = jiff::Timestamp::from_second(1_700_000_000 + created).expect("timestamp");
    json!({
        "metadata": {"name": name, "namespace": "ns", "uid": format!("uid-{name}"), "creationTimestamp": util::timestamp(t), "generation": 1, "annotations": {}},
        "spec": {"replicas": spec},
        "status": {"replicas": replicas, "availableReplicas": available, "readyReplicas": available, "observedGeneration": 1},
    })
}

fn with_annotations(mut v: Value, pairs: &[(&str, &str)]) -> Value {
    for (k, val) in pairs {
        v["metadata"]["annotations"][*k] = json!(val);
    }
    v
}

#[test]
fn scaled_value_table() {
    let cases: Vec<(Value, i64, bool, Result<i64, ()>)> = vec![
        (json!(3), 10, true, Ok(3)),
        (json!("25%"), 10, true, Ok(3)),
        (json!("25%"), 10, false, Ok(2)),
        (json!("25%"), 4, false, Ok(1)),
        (json!("25%"), 3, false, Ok(0)),
        (json!("25%"), 3, true, Ok(1)),
        (json!("100%"), 7, false, Ok(7)),
        (json!("0%"), 7, true, Ok(0)),
        (json!("33%"), 0, true, Ok(0)),
        (json!("abc"), 10, true, Err(())),
        (json!("5"), 10, true, Err(())),
        (json!("x%"), 10, true, Err(())),
        (json!(null), 10, true, Err(())),
        (json!(1.5), 10, true, Err(())),
    ];
    for (v, total, up, want) in cases {
        assert_eq!(scaled_value(&v, total, up).map_err(|_| ()), want, "{v} of {total} (up={up})");
    }
}

/// (maxSurge, maxUnavailable, desired) -> (surge, unavailable)
type FencepostCase = (Option<Value>, Option<Value>, i64, (i64, i64));

#[test]
fn fenceposts_table() {
    let cases: Vec<FencepostCase> = vec![
        (None, None, 10, (3, 2)),
        (None, None, 4, (1, 1)),
        (None, None, 1, (1, 0)),
        (Some(json!(0)), Some(json!(0)), 5, (0, 1)),
        (Some(json!("0%")), Some(json!("10%")), 5, (0, 1)),
        (Some(json!(2)), Some(json!(0)), 5, (2, 0)),
        (Some(json!("50%")), Some(json!("50%")), 3, (2, 1)),
        (Some(json!("bogus")), Some(json!(1)), 3, (0, 1)),
        (Some(json!(-2)), Some(json!(-1)), 3, (0, 1)),
    ];
    for (s, u, n, want) in cases {
        assert_eq!(resolve_fenceposts(s.as_ref(), u.as_ref(), n), want, "surge {s:?} unavailable {u:?} of {n}");
    }
}

#[test]
fn max_surge_and_unavailable_of_deployments() {
    let d = deployment(10, json!("25%"), json!("25%"));
    assert_eq!((max_surge(&d), max_unavailable(&d)), (3, 2));
    let mut recreate = d.clone();
    recreate["spec"]["strategy"] = json!({"type": "Recreate"});
    assert_eq!((max_surge(&recreate), max_unavailable(&recreate)), (0, 0));
    let zero = deployment(0, json!(1), json!(1));
    assert_eq!(max_unavailable(&zero), 0, "nothing can be unavailable of nothing");
    let capped = deployment(2, json!(0), json!(5));
    assert_eq!(max_unavailable(&capped), 2);
    let mut defaulted = d.clone();
    defaulted["spec"].as_object_mut().expect("spec").remove("strategy");
    assert_eq!((max_surge(&defaulted), max_unavailable(&defaulted)), (3, 2), "absent strategy is RollingUpdate 25%/25%");
}

#[test]
fn revision_bookkeeping_table() {
    let d = deployment(3, json!(1), json!(0));
    struct Case {
        name: &'static str,
        rs_annotations: Vec<(&'static str, &'static str)>,
        new_revision: i64,
        exists: bool,
        changed: bool,
        revision: Option<&'static str>,
        history: Option<&'static str>,
    }
    let cases = vec![
        Case { name: "brand new", rs_annotations: vec![], new_revision: 1, exists: false, changed: true, revision: Some("1"), history: None },
        Case {
            name: "current already",
            rs_annotations: vec![(REVISION, "4"), ("kubernetes.io/change-cause", "v2"), ("team", "a")],
            new_revision: 4,
            exists: true,
            changed: false,
            revision: Some("4"),
            history: None,
        },
        Case {
            name: "newer than asked",
            rs_annotations: vec![(REVISION, "7"), ("kubernetes.io/change-cause", "v2"), ("team", "a")],
            new_revision: 5,
            exists: true,
            changed: false,
            revision: Some("7"),
            history: None,
        },
        Case {
            name: "rolled back to",
            rs_annotations: vec![(REVISION, "1")],
            new_revision: 3,
            exists: true,
            changed: true,
            revision: Some("3"),
            history: Some("1"),
        },
        Case {
            name: "rolled back again",
            rs_annotations: vec![(REVISION, "3"), (REVISION_HISTORY, "1")],
            new_revision: 5,
            exists: true,
            changed: true,
            revision: Some("5"),
            history: Some("1,3"),
        },
        Case {
            name: "garbage revision left alone",
            rs_annotations: vec![(REVISION, "x"), ("kubernetes.io/change-cause", "v2"), ("team", "a")],
            new_revision: 5,
            exists: true,
            changed: false,
            revision: Some("x"),
            history: None,
        },
    ];
    for c in cases {
        let mut r = with_annotations(rs("web-abc", 1, 1, 1, 0), &c.rs_annotations);
        let changed = set_new_rs_annotations(&d, &mut r, c.new_revision, c.exists);
        assert_eq!(changed, c.changed, "{}: changed", c.name);
        assert_eq!(annotation(&r, REVISION), c.revision, "{}: revision", c.name);
        assert_eq!(annotation(&r, REVISION_HISTORY), c.history, "{}: history", c.name);
        assert_eq!(annotation(&r, CHANGE_CAUSE), Some("v2"), "{}: change-cause copied", c.name);
        assert_eq!(annotation(&r, "kubectl.kubernetes.io/last-applied-configuration"), None, "{}: last-applied not copied", c.name);
        if !c.exists {
            assert_eq!((annotation(&r, DESIRED_REPLICAS), annotation(&r, MAX_REPLICAS)), (Some("3"), Some("4")), "{}", c.name);
        }
    }
}

#[test]
fn revision_history_is_bounded() {
    assert_eq!(append_revision_history("", "3", 10).as_deref(), Some("3"));
    assert_eq!(append_revision_history("1,2", "3", 10).as_deref(), Some("1,2,3"));
    assert_eq!(append_revision_history("10,11,12", "13", 9).as_deref(), Some("11,12,13"));
    assert_eq!(append_revision_history("1", "12345", 3), None);
}

#[test]
fn max_revision_ignores_garbage() {
    let a = with_annotations(rs("a", 0, 0, 0, 0), &[(REVISION, "3")]);
    let b = with_annotations(rs("b", 0, 0, 0, 1), &[(REVISION, "oops")]);
    let c = rs("c", 0, 0, 0, 2);
    assert_eq!(max_revision([&a, &b, &c]), 3);
    assert_eq!(max_revision(std::iter::empty::<&Value>()), 0);
    assert_eq!(revision(&c), Some(0));
    assert_eq!(revision(&b), None);
}

#[test]
fn template_identity() {
    let t1 = json!({"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "c", "image": "a"}]}});
    let t1_reordered = json!({"spec": {"containers": [{"image": "a", "name": "c"}]}, "metadata": {"labels": {"app": "web"}}});
    let t1_hashed = json!({"metadata": {"labels": {"app": "web", POD_TEMPLATE_HASH: "xyz"}}, "spec": {"containers": [{"name": "c", "image": "a", "env": []}]}});
    let t2 = json!({"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "c", "image": "b"}]}});
    assert!(equal_ignore_hash(&t1, &t1_hashed));
    assert!(equal_ignore_hash(&t1, &t1_reordered));
    assert!(!equal_ignore_hash(&t1, &t2));
    assert_eq!(template_hash(&t1, None), template_hash(&t1_reordered, None));
    assert_ne!(template_hash(&t1, None), template_hash(&t2, None));
    assert_ne!(template_hash(&t1, None), template_hash(&t1, Some(0)), "a collision count changes the name");
    assert_ne!(template_hash(&t1, Some(0)), template_hash(&t1, Some(1)));
}

#[test]
fn new_replica_set_shape() {
    let d = deployment(3, json!(1), json!(0));
    let r = new_replica_set(&d, "h4sh");
    assert_eq!(r["metadata"]["name"], "web-h4sh");
    assert_eq!(r["metadata"]["labels"], json!({"app": "web", POD_TEMPLATE_HASH: "h4sh"}));
    assert_eq!(r["spec"]["selector"]["matchLabels"], json!({"app": "web", POD_TEMPLATE_HASH: "h4sh"}));
    assert_eq!(r["spec"]["template"]["metadata"]["labels"][POD_TEMPLATE_HASH], "h4sh");
    assert_eq!(r["metadata"]["ownerReferences"][0]["uid"], "d-uid");
    assert_eq!(r["metadata"]["ownerReferences"][0]["kind"], "Deployment");
    assert!(equal_ignore_hash(&r["spec"]["template"], &d["spec"]["template"]));
    // Odd shapes: no panic.
    let odd = new_replica_set(&json!({"metadata": {"name": "x"}, "spec": {"template": 7, "selector": "y"}}), "h");
    assert_eq!(odd["spec"]["selector"]["matchLabels"][POD_TEMPLATE_HASH], "h");
}

#[test]
fn find_new_rs_prefers_the_oldest_match() {
    let d = deployment(3, json!(1), json!(0));
    let mut a = rs("web-a", 1, 1, 1, 5);
    a["spec"]["template"] = d["spec"]["template"].clone();
    let mut b = rs("web-b", 1, 1, 1, 1);
    b["spec"]["template"] = d["spec"]["template"].clone();
    b["spec"]["template"]["metadata"]["labels"][POD_TEMPLATE_HASH] = json!("b");
    let mut c = rs("web-c", 1, 1, 1, 0);
    c["spec"]["template"] = json!({"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "c", "image": "old"}]}});
    assert_eq!(find_new_rs(&d, &[&a, &b, &c]).map(util::name), Some("web-b"));
    assert_eq!(find_new_rs(&d, &[&c]).map(util::name), None);
}

/// (replicas, surge, unavailable, old ReplicaSets (spec, status.replicas), new spec) -> new size
type NewSizeCase = (i64, Value, Value, Vec<(i64, i64)>, i64, i64);

#[test]
fn new_rs_new_replicas_table() {
    let cases: Vec<NewSizeCase> = vec![
        (4, json!(1), json!(1), vec![(4, 4)], 0, 1),
        (4, json!(2), json!(0), vec![(4, 4)], 0, 2),
        (4, json!(1), json!(1), vec![(3, 3)], 1, 2),
        (4, json!(1), json!(1), vec![(3, 4)], 1, 1),
        (4, json!(0), json!(1), vec![(4, 4)], 0, 0),
        (4, json!(10), json!(0), vec![(4, 4)], 0, 4),
        (4, json!(1), json!(1), vec![], 0, 4),
        (4, json!(1), json!(1), vec![(1, 1)], 3, 4),
        (10, json!(3), json!(2), vec![(8, 8)], 5, 5),
    ];
    for (i, (n, s, u, old, new_spec, want)) in cases.into_iter().enumerate() {
        let d = deployment(n, s, u);
        let olds: Vec<Value> = old.iter().enumerate().map(|(j, (spec, have))| rs(&format!("old{j}"), *spec, *have, *have, j as i64)).collect();
        let new = rs("new", new_spec, new_spec, 0, 100);
        let mut all: Vec<&Value> = olds.iter().collect();
        all.push(&new);
        assert_eq!(new_rs_new_replicas(&d, &all, &new), want, "case {i}");
    }
    let mut recreate = deployment(4, json!(1), json!(1));
    recreate["spec"]["strategy"] = json!({"type": "Recreate"});
    let new = rs("new", 0, 0, 0, 0);
    assert_eq!(new_rs_new_replicas(&recreate, &[&new], &new), 4);
}

#[test]
fn old_replica_set_plans() {
    // 4 replicas, surge 1, unavailable 1: old 4 (all available) + new 1 (not available yet).
    let d = deployment(4, json!(1), json!(1));
    let old = rs("old", 4, 4, 4, 0);
    let new = rs("new", 1, 1, 0, 10);
    assert_eq!(max_scaled_down(&d, &[&old, &new], &new), 1, "5 pods, 3 must stay available, 1 new unavailable");
    assert_eq!(scale_down_old_plan(&d, &[&old, &new], &[&old]), vec![("old".to_string(), 3)], "one old may go: 3 stay available");
    let new2 = rs("new", 2, 2, 0, 10);
    let old3 = rs("old", 3, 3, 3, 0);
    assert_eq!(max_scaled_down(&d, &[&old3, &new2], &new2), 0, "5 pods, 3 must stay available, 2 new unavailable");
    let new_ready = rs("new", 1, 1, 1, 10);
    assert_eq!(max_scaled_down(&d, &[&old, &new_ready], &new_ready), 2);
    assert_eq!(scale_down_old_plan(&d, &[&old, &new_ready], &[&old]), vec![("old".to_string(), 2)]);

    // Unhealthy old replicas go first, oldest ReplicaSet first, within the budget.
    let sick_old = rs("a", 3, 3, 1, 0);
    let sick_newer = rs("b", 2, 2, 0, 5);
    assert_eq!(cleanup_unhealthy_plan(&[&sick_newer, &sick_old], 3), vec![("a".to_string(), 1), ("b".to_string(), 1)]);
    assert_eq!(cleanup_unhealthy_plan(&[&sick_newer, &sick_old], 10), vec![("a".to_string(), 1), ("b".to_string(), 0)]);
    assert!(cleanup_unhealthy_plan(&[&old], 10).is_empty(), "healthy: nothing to clean");

    // A status still counting pods beyond a just-lowered spec does not count as available.
    let shrinking = rs("old", 2, 4, 4, 0);
    assert_eq!(available_estimate(&shrinking), 2);
    assert_eq!(pods_upper_bound(&shrinking), 4);
    assert!(scale_down_old_plan(&d, &[&shrinking, &new], &[&shrinking]).is_empty(), "2 + 0 available is below 3");
}

#[test]
fn scale_plan_table() {
    // One active ReplicaSet takes all replicas.
    let d = deployment(5, json!(1), json!(1));
    let only = with_annotations(rs("only", 3, 3, 3, 0), &[(DESIRED_REPLICAS, "3")]);
    assert_eq!(scale_plan(&d, Some(&only), &[]), vec![("only".to_string(), 5)]);
    let idle_old = rs("idle", 0, 0, 0, 0);
    assert_eq!(scale_plan(&d, Some(&only), &[&idle_old]), vec![("only".to_string(), 5)]);
    // None active: the new one.
    let new0 = rs("new", 0, 0, 0, 9);
    assert_eq!(scale_plan(&d, Some(&new0), &[&idle_old]), vec![("new".to_string(), 5)]);
    // Saturated new ReplicaSet: old ones to zero.
    let sat = with_annotations(rs("new", 5, 5, 5, 9), &[(DESIRED_REPLICAS, "5")]);
    let leftover = rs("old", 2, 2, 2, 0);
    assert_eq!(scale_plan(&d, Some(&sat), &[&leftover]), vec![("old".to_string(), 0)]);

    // Kubernetes' documented example: 10 replicas, surge 3, unavailable 2, stuck rollout at
    // old 8 / new 5; scaling to 15 adds 3 to the old and 2 to the new ReplicaSet.
    let d15 = deployment(15, json!(3), json!(2));
    let old = with_annotations(rs("old", 8, 8, 8, 0), &[(DESIRED_REPLICAS, "10"), (MAX_REPLICAS, "13")]);
    let new = with_annotations(rs("new", 5, 5, 0, 10), &[(DESIRED_REPLICAS, "10"), (MAX_REPLICAS, "13")]);
    let mut plan = scale_plan(&d15, Some(&new), &[&old]);
    plan.sort();
    assert_eq!(plan, vec![("new".to_string(), 7), ("old".to_string(), 11)]);
    // And back down to 10 from 15 (old 11 / new 7, max 18): proportional shrink.
    let d10 = deployment(10, json!(3), json!(2));
    let old = with_annotations(rs("old", 11, 11, 11, 0), &[(DESIRED_REPLICAS, "15"), (MAX_REPLICAS, "18")]);
    let new = with_annotations(rs("new", 7, 7, 0, 10), &[(DESIRED_REPLICAS, "15"), (MAX_REPLICAS, "18")]);
    let mut plan = scale_plan(&d10, Some(&new), &[&old]);
    plan.sort();
    assert_eq!(plan, vec![("new".to_string(), 5), ("old".to_string(), 8)]);
    // Scaling to zero empties everything.
    let d0 = deployment(0, json!(3), json!(2));
    let mut plan = scale_plan(&d0, Some(&new), &[&old]);
    plan.sort();
    assert_eq!(plan, vec![("new".to_string(), 0), ("old".to_string(), 0)]);
}

#[test]
fn scaling_event_detection() {
    let d = deployment(5, json!(1), json!(1));
    let a = with_annotations(rs("a", 3, 3, 3, 0), &[(DESIRED_REPLICAS, "5")]);
    let b = with_annotations(rs("b", 0, 0, 0, 1), &[(DESIRED_REPLICAS, "2")]);
    let c = with_annotations(rs("c", 2, 2, 2, 2), &[(DESIRED_REPLICAS, "4")]);
    let no_annotation = rs("d", 2, 2, 2, 3);
    assert!(!is_scaling_event(&d, &[&a, &b]), "inactive ReplicaSets do not count");
    assert!(is_scaling_event(&d, &[&a, &c]));
    assert!(!is_scaling_event(&d, &[&no_annotation]));
}

#[test]
fn condition_semantics() {
    let t0 = jiff::Timestamp::from_second(1_700_000_000).expect("ts");
    let t1 = t0 + jiff::SignedDuration::from_secs(60);
    let mut status = json!({});
    set_condition(&mut status, new_condition(PROGRESSING, "True", NEW_RS_REASON, "created", t0));
    // Same status and reason: the first report stays.
    set_condition(&mut status, new_condition(PROGRESSING, "True", NEW_RS_REASON, "other message", t1));
    let c = get_condition(&status, PROGRESSING).expect("condition").clone();
    assert_eq!((cond_str(&c, "message"), cond_str(&c, "lastUpdateTime")), ("created", util::timestamp(t0).as_str()));
    // New reason, same status: the transition time is kept, the update time moves.
    set_condition(&mut status, new_condition(PROGRESSING, "True", RS_UPDATED_REASON, "progressing", t1));
    let c = get_condition(&status, PROGRESSING).expect("condition").clone();
    assert_eq!(cond_str(&c, "lastTransitionTime"), util::timestamp(t0));
    assert_eq!(cond_str(&c, "lastUpdateTime"), util::timestamp(t1));
    // New status: a transition.
    set_condition(&mut status, new_condition(PROGRESSING, "False", TIMED_OUT_REASON, "late", t1));
    let c = get_condition(&status, PROGRESSING).expect("condition").clone();
    assert_eq!(cond_str(&c, "lastTransitionTime"), util::timestamp(t1));
    assert_eq!(status["conditions"].as_array().map(Vec::len), Some(1));
    remove_condition(&mut status, PROGRESSING);
    assert!(get_condition(&status, PROGRESSING).is_none());
    // Odd shapes do not panic.
    let mut odd = json!({"conditions": "nope"});
    set_condition(&mut odd, new_condition(AVAILABLE, "True", "x", "y", t0));
    assert!(get_condition(&odd, AVAILABLE).is_some());
    set_condition(&mut odd, json!("not a condition"));
}

/// A deployment with `status`, a new ReplicaSet with `new_ready` of 3 pods and an old one.
fn rollout_case(status: Value, new_replicas: i64, new_ready: i64, old_replicas: i64) -> (Value, Value, Value) {
    let mut d = deployment(3, json!(1), json!(0));
    d["status"] = status;
    d["spec"]["progressDeadlineSeconds"] = json!(60);
    let new = rs("web-new", new_replicas, new_replicas, new_ready, 10);
    let old = rs("web-old", old_replicas, old_replicas, old_replicas, 0);
    (d, new, old)
}

#[test]
fn progressing_condition_transitions() {
    let now = jiff::Timestamp::from_second(1_700_000_000).expect("ts");
    let long_ago = util::timestamp(now - jiff::SignedDuration::from_secs(120));
    let recent = util::timestamp(now - jiff::SignedDuration::from_secs(5));
    let cond = |reason: &str, status: &str, at: &str| json!({"type": PROGRESSING, "status": status, "reason": reason, "message": "m", "lastUpdateTime": at, "lastTransitionTime": at});
    struct Case {
        name: &'static str,
        status: Value,
        new: (i64, i64),
        old: i64,
        reason: &'static str,
        cstatus: &'static str,
    }
    let cases = vec![
        Case {
            name: "progress refreshes the condition",
            status: json!({"observedGeneration": 2, "replicas": 4, "updatedReplicas": 1, "availableReplicas": 3, "conditions": [cond(NEW_RS_REASON, "True", &long_ago)]}),
            new: (2, 1),
            old: 2,
            reason: RS_UPDATED_REASON,
            cstatus: "True",
        },
        Case {
            name: "no progress within the deadline times out",
            status: json!({"observedGeneration": 2, "replicas": 4, "updatedReplicas": 1, "readyReplicas": 3, "availableReplicas": 3, "conditions": [cond(RS_UPDATED_REASON, "True", &long_ago)]}),
            new: (1, 0),
            old: 3,
            reason: TIMED_OUT_REASON,
            cstatus: "False",
        },
        Case {
            name: "no progress but still within the deadline",
            status: json!({"observedGeneration": 2, "replicas": 4, "updatedReplicas": 1, "readyReplicas": 3, "availableReplicas": 3, "conditions": [cond(RS_UPDATED_REASON, "True", &recent)]}),
            new: (1, 0),
            old: 3,
            reason: RS_UPDATED_REASON,
            cstatus: "True",
        },
        Case {
            name: "complete",
            status: json!({"observedGeneration": 2, "replicas": 3, "updatedReplicas": 3, "readyReplicas": 2, "availableReplicas": 2, "conditions": [cond(RS_UPDATED_REASON, "True", &recent)]}),
            new: (3, 3),
            old: 0,
            reason: NEW_RS_AVAILABLE_REASON,
            cstatus: "True",
        },
        Case {
            name: "complete stays complete",
            status: json!({"observedGeneration": 2, "replicas": 3, "updatedReplicas": 3, "readyReplicas": 3, "availableReplicas": 3, "conditions": [cond(NEW_RS_AVAILABLE_REASON, "True", &long_ago)]}),
            new: (3, 3),
            old: 0,
            reason: NEW_RS_AVAILABLE_REASON,
            cstatus: "True",
        },
        Case {
            name: "timed out stays timed out",
            status: json!({"observedGeneration": 2, "replicas": 4, "updatedReplicas": 1, "readyReplicas": 3, "availableReplicas": 3, "conditions": [cond(TIMED_OUT_REASON, "False", &long_ago)]}),
            new: (1, 0),
            old: 3,
            reason: TIMED_OUT_REASON,
            cstatus: "False",
        },
    ];
    for c in cases {
        let (d, new, old) = rollout_case(c.status, c.new.0, c.new.1, c.old);
        let s = rollout_status(&d, &[&old, &new], Some(&new), now);
        let p = get_condition(&s, PROGRESSING).unwrap_or_else(|| panic!("{}: no Progressing condition", c.name));
        assert_eq!((cond_str(p, "reason"), cond_str(p, "status")), (c.reason, c.cstatus), "{}", c.name);
    }
}

#[test]
fn available_condition_and_counts() {
    let now = jiff::Timestamp::now();
    let d = deployment(4, json!(1), json!(1));
    let old = rs("old", 2, 3, 2, 0);
    let new = rs("new", 3, 2, 1, 10);
    let s = calculate_status(&d, &[&old, &new], Some(&new), now);
    assert_eq!(s["replicas"], 5);
    assert_eq!(s["updatedReplicas"], 2);
    assert_eq!(s["availableReplicas"], 3);
    assert_eq!(s["unavailableReplicas"], 2);
    assert_eq!(s["observedGeneration"], 2);
    let a = get_condition(&s, AVAILABLE).expect("Available");
    assert_eq!((cond_str(a, "status"), cond_str(a, "reason")), ("True", MINIMUM_REPLICAS_AVAILABLE));
    let few = rs("new", 3, 2, 0, 10);
    let old_few = rs("old", 2, 2, 1, 0);
    let s = calculate_status(&d, &[&old_few, &few], Some(&few), now);
    let a = get_condition(&s, AVAILABLE).expect("Available");
    assert_eq!((cond_str(a, "status"), cond_str(a, "reason")), ("False", MINIMUM_REPLICAS_UNAVAILABLE));
}

#[test]
fn replica_failure_is_carried_over() {
    let now = jiff::Timestamp::now();
    let (d, mut new, old) = rollout_case(json!({}), 3, 0, 0);
    new["status"]["conditions"] =
        json!([{"type": "ReplicaFailure", "status": "True", "reason": "FailedCreate", "message": "quota", "lastTransitionTime": "2024-01-01T00:00:00Z"}]);
    let s = rollout_status(&d, &[&old, &new], Some(&new), now);
    let f = get_condition(&s, REPLICA_FAILURE).expect("ReplicaFailure");
    assert_eq!((cond_str(f, "reason"), cond_str(f, "message")), ("FailedCreate", "quota"));
    let mut d2 = d.clone();
    d2["status"] = s;
    new["status"].as_object_mut().expect("status").remove("conditions");
    let s = rollout_status(&d2, &[&old, &new], Some(&new), now);
    assert!(get_condition(&s, REPLICA_FAILURE).is_none());
}

#[test]
fn progress_recheck_timing() {
    let now = jiff::Timestamp::from_second(1_700_000_000).expect("ts");
    let at = |ago: i64| util::timestamp(now - jiff::SignedDuration::from_secs(ago));
    let (mut d, _, _) = rollout_case(json!({}), 1, 0, 3);
    d["status"] = json!({"conditions": [{"type": PROGRESSING, "status": "True", "reason": RS_UPDATED_REASON, "lastUpdateTime": at(20)}]});
    let not_done = json!({"replicas": 4, "updatedReplicas": 1});
    assert_eq!(progress_recheck_after(&d, &not_done, now), Some(std::time::Duration::from_secs(41)));
    d["status"]["conditions"][0]["lastUpdateTime"] = json!(at(100));
    assert_eq!(progress_recheck_after(&d, &not_done, now), Some(std::time::Duration::from_secs(1)));
    d["status"]["conditions"][0]["reason"] = json!(TIMED_OUT_REASON);
    assert_eq!(progress_recheck_after(&d, &not_done, now), None);
    d["spec"]["progressDeadlineSeconds"] = json!(i32::MAX);
    assert_eq!(progress_recheck_after(&d, &not_done, now), None);
}

#[test]
fn status_equality_ignores_serialization() {
    let a = json!({"replicas": 0, "observedGeneration": 2, "conditions": []});
    let b = json!({"observedGeneration": 2});
    assert!(status_equal(Some(&a), &b));
    assert!(status_equal(None, &json!({"replicas": 0})));
    assert!(!status_equal(Some(&b), &json!({"observedGeneration": 3})));
}

#[test]
fn spec_defaults() {
    let bare = json!({"metadata": {"name": "x"}, "spec": {}});
    assert_eq!(replicas(&bare), 1);
    assert_eq!(strategy_type(&bare), "RollingUpdate");
    assert_eq!(progress_deadline_seconds(&bare), Some(600));
    assert_eq!(revision_history_limit(&bare), Some(10));
    assert!(!is_paused(&bare));
    let unlimited = json!({"spec": {"progressDeadlineSeconds": i32::MAX, "revisionHistoryLimit": i32::MAX}});
    assert_eq!(progress_deadline_seconds(&unlimited), None);
    assert_eq!(revision_history_limit(&unlimited), None);
}
