//! Resource usage: the node's and every pod's (and container's) cpu and memory, sampled every
//! 10 s from cgroups so cpu can be reported as a rate (nanocores), and served as kubelet's
//! `/stats/summary` shape — the masters build the metrics.k8s.io API (`kubectl top`) from it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use runtime::stats::Usage;
use serde_json::{Value, json};

use crate::Agent;

#[derive(Clone, Debug, Default)]
pub struct Sample {
    pub usage: Usage,
    pub nano_cores: u64,
}

impl Sample {
    fn next(prev: Option<&Sample>, usage: Usage) -> Sample {
        let nano_cores = match prev {
            Some(p) if usage.timestamp_ns > p.usage.timestamp_ns && usage.cpu_usage_ns >= p.usage.cpu_usage_ns => {
                ((usage.cpu_usage_ns - p.usage.cpu_usage_ns) as u128 * 1_000_000_000 / (usage.timestamp_ns - p.usage.timestamp_ns) as u128) as u64
            }
            _ => 0,
        };
        Sample { usage, nano_cores }
    }

    fn to_json(&self) -> (Value, Value) {
        let time = jiff::Timestamp::from_nanosecond(self.usage.timestamp_ns as i128).map(|t| t.to_string()).unwrap_or_default();
        (
            json!({"time": time, "usageNanoCores": self.nano_cores, "usageCoreNanoSeconds": self.usage.cpu_usage_ns}),
            json!({"time": time, "workingSetBytes": self.usage.memory_working_set_bytes, "usageBytes": self.usage.memory_usage_bytes}),
        )
    }
}

#[derive(Clone, Debug, Default)]
pub struct PodSample {
    pub namespace: String,
    pub name: String,
    pub pod: Sample,
    pub containers: HashMap<String, Sample>,
}

#[derive(Default)]
pub struct Sampler {
    node: Mutex<Option<Sample>>,
    pods: Mutex<HashMap<String, PodSample>>,
}

impl Sampler {
    pub fn summary(&self, node_name: &str) -> Value {
        let node = self.node.lock().expect("sampler lock").clone().unwrap_or_default();
        let (cpu, memory) = node.to_json();
        let pods: Vec<Value> = self
            .pods
            .lock()
            .expect("sampler lock")
            .iter()
            .map(|(uid, p)| {
                let (cpu, memory) = p.pod.to_json();
                let containers: Vec<Value> = p
                    .containers
                    .iter()
                    .map(|(name, s)| {
                        let (cpu, memory) = s.to_json();
                        json!({"name": name, "cpu": cpu, "memory": memory})
                    })
                    .collect();
                json!({"podRef": {"name": p.name, "namespace": p.namespace, "uid": uid}, "cpu": cpu, "memory": memory, "containers": containers})
            })
            .collect();
        json!({"node": {"nodeName": node_name, "cpu": cpu, "memory": memory}, "pods": pods})
    }
}

impl Agent {
    pub(crate) async fn usage_loop(self: Arc<Self>) {
        let mut tick = tokio::time::interval(Duration::from_secs(10));
        loop {
            tick.tick().await;
            let agent = self.clone();
            let _ = tokio::task::spawn_blocking(move || agent.sample_usage()).await;
        }
    }

    fn sample_usage(&self) {
        if let Ok(u) = runtime::stats::node_usage() {
            let mut node = self.usage.node.lock().expect("sampler lock");
            *node = Some(Sample::next(node.as_ref(), u));
        }
        let running: Vec<_> = self
            .runtime
            .list()
            .unwrap_or_default()
            .into_iter()
            .filter(|c| matches!(c.status, runtime::container::ContainerStatus::Running { .. }))
            .collect();
        let pods = self.pods.snapshot();
        let mut prev = self.usage.pods.lock().expect("sampler lock").clone();
        let mut next = HashMap::new();
        for p in pods {
            let Ok(u) = runtime::stats::cgroup_usage(&crate::pods::pod_cgroup(&p.uid)) else { continue };
            let old = prev.remove(&p.uid);
            let mut s = PodSample { namespace: p.namespace.clone(), name: p.name.clone(), pod: Sample::next(old.as_ref().map(|o| &o.pod), u), containers: HashMap::new() };
            for c in running.iter().filter(|c| c.labels.get(crate::pods::LABEL_POD_UID) == Some(&p.uid)) {
                let Some(name) = c.labels.get(crate::pods::LABEL_CONTAINER) else { continue };
                if let Ok(u) = self.runtime.usage(&c.id) {
                    s.containers.insert(name.clone(), Sample::next(old.as_ref().and_then(|o| o.containers.get(name)), u));
                }
            }
            next.insert(p.uid.clone(), s);
        }
        *self.usage.pods.lock().expect("sampler lock") = next;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_rate_from_two_samples() {
        let a = Sample::next(None, Usage { cpu_usage_ns: 1_000_000_000, timestamp_ns: 10_000_000_000, ..Default::default() });
        assert_eq!(a.nano_cores, 0);
        // 0.5 s of cpu over 2 s of wall time = 250 millicores.
        let b = Sample::next(Some(&a), Usage { cpu_usage_ns: 1_500_000_000, timestamp_ns: 12_000_000_000, ..Default::default() });
        assert_eq!(b.nano_cores, 250_000_000);
        // A counter that went backwards (a restarted container) is not a negative rate.
        let c = Sample::next(Some(&b), Usage { cpu_usage_ns: 1, timestamp_ns: 13_000_000_000, ..Default::default() });
        assert_eq!(c.nano_cores, 0);
    }
}
