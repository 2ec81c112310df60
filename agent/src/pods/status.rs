//! A pod's status from what the worker knows about its containers: phase (kubelet's
//! `getPhase`), conditions (PodReadyToStartContainers, Initialized, ContainersReady, Ready,
//! PodScheduled), containerStatuses / initContainerStatuses with state, lastState, ready,
//! started, restartCount, image, imageID and containerID. Pure.

use serde_json::{Value, json};

/// A container's state as `kubectl describe` shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum State {
    Waiting { reason: String, message: Option<String> },
    Running { started_at: String },
    Terminated(Terminated),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Terminated {
    pub exit_code: i32,
    pub signal: Option<i32>,
    /// Completed, Error, OOMKilled, ContainerCannotRun, StartError.
    pub reason: String,
    pub message: Option<String>,
    pub started_at: Option<String>,
    pub finished_at: String,
    pub container_id: Option<String>,
}

impl Terminated {
    /// kubelet's reasons for an exit.
    pub fn reason_for(exit_code: i32, oom_killed: bool) -> &'static str {
        if oom_killed {
            "OOMKilled"
        } else if exit_code == 0 {
            "Completed"
        } else {
            "Error"
        }
    }
}

/// What the worker knows about one container.
#[derive(Clone, Debug)]
pub struct ContainerView {
    pub name: String,
    pub image: String,
    /// `<repo>@sha256:...` once pulled.
    pub image_id: String,
    /// `rkube://<id>` of the current (or last) instance.
    pub container_id: Option<String>,
    pub state: State,
    pub last_state: Option<Terminated>,
    pub ready: bool,
    /// startupProbe passed (or none): Some only for app containers.
    pub started: Option<bool>,
    pub restart_count: u32,
}

impl ContainerView {
    pub fn waiting(name: &str, image: &str, reason: &str) -> ContainerView {
        ContainerView {
            name: name.to_string(),
            image: image.to_string(),
            image_id: String::new(),
            container_id: None,
            state: State::Waiting { reason: reason.to_string(), message: None },
            last_state: None,
            ready: false,
            started: None,
            restart_count: 0,
        }
    }

    fn terminated_json(t: &Terminated) -> Value {
        let mut v = json!({"exitCode": t.exit_code, "reason": t.reason, "finishedAt": t.finished_at});
        if let Some(s) = t.signal {
            v["signal"] = json!(s);
        }
        if let Some(m) = &t.message {
            v["message"] = json!(m);
        }
        if let Some(s) = &t.started_at {
            v["startedAt"] = json!(s);
        }
        if let Some(c) = &t.container_id {
            v["containerID"] = json!(c);
        }
        json!({"terminated": v})
    }

    pub fn to_json(&self, init: bool) -> Value {
        let state = match &self.state {
            State::Waiting { reason, message } => {
                let mut w = json!({"reason": reason});
                if let Some(m) = message {
                    w["message"] = json!(m);
                }
                json!({"waiting": w})
            }
            State::Running { started_at } => json!({"running": {"startedAt": started_at}}),
            State::Terminated(t) => Self::terminated_json(t),
        };
        let mut v = json!({
            "name": self.name,
            "image": self.image,
            "imageID": self.image_id,
            "state": state,
            "lastState": self.last_state.as_ref().map(Self::terminated_json).unwrap_or_else(|| json!({})),
            "ready": self.ready,
            "restartCount": self.restart_count,
        });
        if let Some(c) = &self.container_id {
            v["containerID"] = json!(c);
        }
        if !init {
            v["started"] = json!(self.started.unwrap_or(matches!(self.state, State::Running { .. })));
        }
        v
    }
}

/// Inputs to a pod's status besides its containers.
#[derive(Clone, Debug, Default)]
pub struct PodFacts {
    pub restart_policy: String,
    /// The sandbox and its network are up.
    pub sandbox_ready: bool,
    pub pod_ip: Option<String>,
    pub host_ip: String,
    pub start_time: Option<String>,
    /// Set when the pod failed as a whole (e.g. activeDeadlineSeconds): phase Failed.
    pub failed: Option<(String, String)>,
    /// Readiness gate condition types and whether each is True on the pod.
    pub readiness_gates: Vec<(String, bool)>,
}

/// kubelet's getPhase.
pub fn phase(init: &[ContainerView], apps: &[ContainerView], restart_policy: &str, init_done: bool) -> &'static str {
    if !init_done {
        // A failed init container with restartPolicy Never fails the pod.
        if restart_policy == "Never" && init.iter().any(|c| matches!(&c.state, State::Terminated(t) if t.exit_code != 0)) {
            return "Failed";
        }
        return "Pending";
    }
    let (mut running, mut waiting, mut stopped, mut succeeded) = (0, 0, 0, 0);
    for c in apps {
        match &c.state {
            State::Running { .. } => running += 1,
            State::Terminated(t) => {
                stopped += 1;
                if t.exit_code == 0 {
                    succeeded += 1;
                }
            }
            State::Waiting { .. } => {
                if c.last_state.is_some() {
                    stopped += 1;
                    if c.last_state.as_ref().map(|t| t.exit_code == 0).unwrap_or(false) {
                        succeeded += 1;
                    }
                } else {
                    waiting += 1;
                }
            }
        }
    }
    if waiting > 0 {
        return "Pending";
    }
    if running > 0 {
        return "Running";
    }
    if stopped > 0 {
        return match restart_policy {
            "Always" => "Running",
            "OnFailure" if stopped == succeeded => "Succeeded",
            "OnFailure" => "Running",
            _ if stopped == succeeded => "Succeeded",
            _ => "Failed",
        };
    }
    "Pending"
}

fn condition(ty: &str, status: bool, reason: Option<&str>, message: Option<&str>, previous: &Value, now: &str) -> Value {
    let s = if status { "True" } else { "False" };
    let prev = previous.as_array().and_then(|cs| cs.iter().find(|c| c["type"].as_str() == Some(ty)));
    let transition = match prev {
        Some(p) if p["status"].as_str() == Some(s) => p["lastTransitionTime"].clone(),
        _ => json!(now),
    };
    let mut c = json!({"type": ty, "status": s, "lastProbeTime": null, "lastTransitionTime": transition});
    if let Some(r) = reason {
        c["reason"] = json!(r);
    }
    if let Some(m) = message {
        c["message"] = json!(m);
    }
    c
}

/// The pod's `status` object. `previous` is the current status (conditions keep their
/// transition times; PodScheduled and conditions owned by others are carried over).
pub fn pod_status(init: &[ContainerView], apps: &[ContainerView], facts: &PodFacts, previous: &Value, now: &str) -> Value {
    let init_done = init.iter().all(|c| matches!(&c.state, State::Terminated(t) if t.exit_code == 0));
    let mut phase = phase(init, apps, &facts.restart_policy, init_done).to_string();
    let mut reason = None;
    let mut message = None;
    if let Some((r, m)) = &facts.failed {
        phase = "Failed".into();
        reason = Some(r.clone());
        message = Some(m.clone());
    }
    let prev_conditions = &previous["conditions"];
    let not_ready: Vec<&str> = apps.iter().filter(|c| !c.ready).map(|c| c.name.as_str()).collect();
    let containers_ready = not_ready.is_empty() && !apps.is_empty();
    let not_ready_msg = format!("containers with unready status: [{}]", not_ready.join(" "));
    let gates_ok = facts.readiness_gates.iter().all(|(_, ok)| *ok);
    let terminal = phase == "Succeeded" || phase == "Failed";
    let pending_init: Vec<&str> = init.iter().filter(|c| !matches!(&c.state, State::Terminated(t) if t.exit_code == 0)).map(|c| c.name.as_str()).collect();
    let init_msg = format!("containers with incomplete status: [{}]", pending_init.join(" "));
    let mut conditions = vec![
        condition("PodReadyToStartContainers", facts.sandbox_ready, None, None, prev_conditions, now),
        if init_done {
            condition("Initialized", true, None, None, prev_conditions, now)
        } else {
            condition("Initialized", false, Some("ContainersNotInitialized"), Some(&init_msg), prev_conditions, now)
        },
    ];
    let (ready_reason, ready_msg) = if terminal {
        (Some("PodCompleted"), None)
    } else if !containers_ready {
        (Some("ContainersNotReady"), Some(not_ready_msg.as_str()))
    } else {
        (None, None)
    };
    let containers_ready = containers_ready && !terminal;
    conditions.push(condition("ContainersReady", containers_ready, ready_reason, ready_msg, prev_conditions, now));
    let ready = containers_ready && gates_ok;
    let (r2, m2) = if containers_ready && !gates_ok { (Some("ReadinessGatesNotReady"), Some("corresponding condition of pod readiness gate is not True")) } else { (ready_reason, ready_msg) };
    conditions.push(condition("Ready", ready, r2, m2, prev_conditions, now));
    // Conditions others own (PodScheduled, DisruptionTarget, readiness gates) are kept.
    for c in prev_conditions.as_array().into_iter().flatten() {
        let ty = c["type"].as_str().unwrap_or("");
        if !conditions.iter().any(|x| x["type"].as_str() == Some(ty)) {
            conditions.push(c.clone());
        }
    }
    let mut status = json!({
        "phase": phase,
        "conditions": conditions,
        "hostIP": facts.host_ip,
        "hostIPs": [{"ip": facts.host_ip}],
        "qosClass": previous["qosClass"].clone(),
        "containerStatuses": apps.iter().map(|c| c.to_json(false)).collect::<Vec<_>>(),
    });
    if status["qosClass"].is_null() {
        status.as_object_mut().expect("object").remove("qosClass");
    }
    if !init.is_empty() {
        status["initContainerStatuses"] = json!(init.iter().map(|c| c.to_json(true)).collect::<Vec<_>>());
    }
    if let Some(ip) = &facts.pod_ip {
        status["podIP"] = json!(ip);
        status["podIPs"] = json!([{"ip": ip}]);
    }
    if let Some(t) = &facts.start_time {
        status["startTime"] = json!(t);
    }
    if let Some(r) = reason {
        status["reason"] = json!(r);
    }
    if let Some(m) = message {
        status["message"] = json!(m);
    }
    status
}

#[cfg(test)]
mod tests {
    use super::*;

    fn running(name: &str, ready: bool) -> ContainerView {
        ContainerView { state: State::Running { started_at: "t0".into() }, ready, ..ContainerView::waiting(name, "busybox", "") }
    }

    fn exited(name: &str, code: i32) -> ContainerView {
        ContainerView {
            state: State::Terminated(Terminated { exit_code: code, signal: None, reason: Terminated::reason_for(code, false).into(), message: None, started_at: Some("t0".into()), finished_at: "t1".into(), container_id: Some("rkube://x".into()) }),
            ..ContainerView::waiting(name, "busybox", "")
        }
    }

    fn backing_off(name: &str, last_code: i32) -> ContainerView {
        let mut c = ContainerView::waiting(name, "busybox", "CrashLoopBackOff");
        c.last_state = match exited(name, last_code).state {
            State::Terminated(t) => Some(t),
            _ => None,
        };
        c.restart_count = 3;
        c
    }

    #[test]
    fn phases() {
        let w = ContainerView::waiting("a", "busybox", "ContainerCreating");
        assert_eq!(phase(&[], &[w.clone()], "Always", true), "Pending");
        assert_eq!(phase(&[], &[running("a", false)], "Always", true), "Running");
        assert_eq!(phase(&[], &[running("a", true), w], "Always", true), "Pending");
        assert_eq!(phase(&[], &[exited("a", 0)], "Never", true), "Succeeded");
        assert_eq!(phase(&[], &[exited("a", 1)], "Never", true), "Failed");
        assert_eq!(phase(&[], &[exited("a", 0), exited("b", 2)], "OnFailure", true), "Running");
        assert_eq!(phase(&[], &[exited("a", 0)], "OnFailure", true), "Succeeded");
        assert_eq!(phase(&[], &[backing_off("a", 1)], "Always", true), "Running");
        assert_eq!(phase(&[], &[exited("a", 0)], "Always", true), "Running");
        assert_eq!(phase(&[exited("i", 1)], &[ContainerView::waiting("a", "b", "PodInitializing")], "Never", false), "Failed");
        assert_eq!(phase(&[exited("i", 1)], &[ContainerView::waiting("a", "b", "PodInitializing")], "Always", false), "Pending");
    }

    #[test]
    fn conditions_and_statuses() {
        let facts = PodFacts { restart_policy: "Always".into(), sandbox_ready: true, pod_ip: Some("10.42.0.9".into()), host_ip: "192.0.2.1".into(), start_time: Some("t0".into()), ..Default::default() };
        let previous = json!({"conditions": [{"type": "PodScheduled", "status": "True", "lastTransitionTime": "s"}], "qosClass": "BestEffort"});
        let s = pod_status(&[exited("init", 0)], &[running("a", true), running("b", false)], &facts, &previous, "now");
        assert_eq!(s["phase"], "Running");
        let cond = |s: &Value, ty: &str| s["conditions"].as_array().unwrap().iter().find(|c| c["type"] == ty).cloned().unwrap();
        assert_eq!(cond(&s, "Initialized")["status"], "True");
        assert_eq!(cond(&s, "ContainersReady")["status"], "False");
        assert_eq!(cond(&s, "Ready")["message"], "containers with unready status: [b]");
        assert_eq!(cond(&s, "PodScheduled")["lastTransitionTime"], "s");
        assert_eq!(s["podIP"], "10.42.0.9");
        assert_eq!(s["qosClass"], "BestEffort");
        assert_eq!(s["initContainerStatuses"][0]["state"]["terminated"]["reason"], "Completed");
        assert!(s["initContainerStatuses"][0].get("started").is_none());
        assert_eq!(s["containerStatuses"][0]["started"], true);
        // Everyone ready: Ready=True, and the transition time stays on the next round.
        let s2 = pod_status(&[exited("init", 0)], &[running("a", true), running("b", true)], &facts, &s, "later");
        assert_eq!(cond(&s2, "Ready")["status"], "True");
        assert_eq!(cond(&s2, "Ready")["lastTransitionTime"], "later");
        assert_eq!(cond(&s2, "Initialized")["lastTransitionTime"], "now");
        let s3 = pod_status(&[exited("init", 0)], &[running("a", true), running("b", true)], &facts, &s2, "even-later");
        assert_eq!(cond(&s3, "Ready")["lastTransitionTime"], "later");
        assert_eq!(s3, pod_status(&[exited("init", 0)], &[running("a", true), running("b", true)], &facts, &s2, "even-later"), "same inputs, same status: nothing to write");
        // A crash loop shows the waiting reason and the last exit.
        let s4 = pod_status(&[], &[backing_off("a", 1)], &facts, &s3, "x");
        assert_eq!(s4["containerStatuses"][0]["state"]["waiting"]["reason"], "CrashLoopBackOff");
        assert_eq!(s4["containerStatuses"][0]["lastState"]["terminated"]["exitCode"], 1);
        assert_eq!(s4["containerStatuses"][0]["restartCount"], 3);
        // Init still running.
        let s5 = pod_status(&[running("init", false)], &[ContainerView::waiting("a", "b", "PodInitializing")], &facts, &json!({}), "x");
        assert_eq!(s5["phase"], "Pending");
        assert_eq!(cond(&s5, "Initialized")["message"], "containers with incomplete status: [init]");
        // Completed pods are not ready.
        let never = PodFacts { restart_policy: "Never".into(), ..facts.clone() };
        let s6 = pod_status(&[], &[exited("a", 0)], &never, &json!({}), "x");
        assert_eq!(s6["phase"], "Succeeded");
        assert_eq!(cond(&s6, "Ready")["reason"], "PodCompleted");
        // Readiness gates.
        let gated = PodFacts { readiness_gates: vec![("example.com/lb".into(), false)], ..facts };
        let s7 = pod_status(&[], &[running("a", true)], &gated, &json!({}), "x");
        assert_eq!(cond(&s7, "ContainersReady")["status"], "True");
        assert_eq!(cond(&s7, "Ready")["status"], "False");
    }
}
