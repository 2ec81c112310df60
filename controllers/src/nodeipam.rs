//! Node IPAM: gives every Node without one a `spec.podCIDR` (and `podCIDRs`) carved out of the
//! cluster CIDR (`--cluster-cidr`, subnets of `--node-cidr-mask-size`), the lowest free subnet
//! first — what kube-controller-manager's range allocator does. Agents wait for it before they
//! set up the pod network. One loop on the leader makes the choices, so two nodes never get the
//! same subnet; the caches are re-read before each choice.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;
use std::sync::Arc;

use serde_json::{Value, json};

use crate::Ctx;
use crate::client::res;

/// An IPv4 CIDR.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cidr {
    pub base: u32,
    pub prefix: u8,
}

impl Cidr {
    pub fn parse(s: &str) -> Result<Cidr, String> {
        let (ip, len) = s.split_once('/').ok_or_else(|| format!("{s:?} is not a CIDR (like 10.42.0.0/16)"))?;
        let ip: Ipv4Addr = ip.parse().map_err(|_| format!("{s:?}: {ip:?} is not an IPv4 address"))?;
        let prefix: u8 = len.parse().ok().filter(|p| *p <= 32).ok_or_else(|| format!("{s:?}: bad prefix length {len:?}"))?;
        let mask = if prefix == 0 { 0 } else { u32::MAX << (32 - prefix) };
        Ok(Cidr { base: u32::from(ip) & mask, prefix })
    }

    pub fn to_string(self) -> String {
        format!("{}/{}", Ipv4Addr::from(self.base), self.prefix)
    }
}

/// The lowest subnet of `cluster` with `mask` bits that is not in `used`.
pub fn allocate(cluster: Cidr, mask: u8, used: &BTreeSet<u32>) -> Option<Cidr> {
    if mask < cluster.prefix || mask > 32 {
        return None;
    }
    let count: u64 = 1u64 << (mask - cluster.prefix);
    let step: u64 = 1u64 << (32 - mask);
    (0..count).map(|i| (cluster.base as u64 + i * step) as u32).find(|b| !used.contains(b)).map(|base| Cidr { base, prefix: mask })
}

/// Subnet bases already given to nodes (inside the cluster CIDR).
pub fn used_subnets<V: std::ops::Deref<Target = Value>>(nodes: &[V], cluster: Cidr) -> BTreeSet<u32> {
    let mask = if cluster.prefix == 0 { 0 } else { u32::MAX << (32 - cluster.prefix) };
    nodes
        .iter()
        .filter_map(|n| n.deref().pointer("/spec/podCIDR").and_then(Value::as_str))
        .filter_map(|c| Cidr::parse(c).ok())
        .filter(|c| c.base & mask == cluster.base)
        .map(|c| c.base)
        .collect()
}

pub async fn run(ctx: Arc<Ctx>) {
    let Some(cluster) = ctx.config.cluster_cidr.as_deref() else { return };
    let cluster = match Cidr::parse(cluster) {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "node IPAM disabled: the cluster CIDR is unusable");
            return;
        }
    };
    let mask = ctx.config.node_cidr_mask_size;
    let nodes = ctx.informers.get(res("", "nodes"));
    let mut changes = nodes.subscribe();
    nodes.synced().await;
    let recorder = ctx.recorder("node-ipam-controller");
    loop {
        let all = nodes.list();
        let mut used = used_subnets(&all, cluster);
        for n in all.iter().filter(|n| n.pointer("/spec/podCIDR").and_then(Value::as_str).unwrap_or("").is_empty()) {
            let name = crate::util::name(n).to_string();
            let Some(subnet) = allocate(cluster, mask, &used) else {
                tracing::error!(node = %name, cluster_cidr = %cluster.to_string(), "no pod CIDR left for the node: the cluster CIDR is full");
                recorder.event(n, "Warning", "CIDRNotAvailable", &format!("Node {name} status is now: CIDRNotAvailable")).await;
                continue;
            };
            let cidr = subnet.to_string();
            let patch = json!({"spec": {"podCIDR": cidr, "podCIDRs": [cidr]}});
            match ctx.client.merge_patch(res("", "nodes"), None, &name, patch).await {
                Ok(_) => {
                    used.insert(subnet.base);
                    tracing::info!(node = %name, pod_cidr = %cidr, "assigned a pod CIDR");
                    recorder.event(n, "Normal", "CIDRAssignmentSucceeded", &format!("Node {name} got pod CIDR {cidr}")).await;
                }
                Err(e) => tracing::warn!(node = %name, error = %e, "could not assign a pod CIDR; will retry"),
            }
        }
        // Wait for the next change to the nodes (a lagged receiver just looks again).
        if let Err(tokio::sync::broadcast::error::RecvError::Closed) = changes.recv().await {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allocation_is_lowest_free_and_bounded() {
        let c = Cidr::parse("10.42.0.0/16").unwrap();
        let mut used = BTreeSet::new();
        let a = allocate(c, 24, &used).unwrap();
        assert_eq!(a.to_string(), "10.42.0.0/24");
        used.insert(a.base);
        used.insert(Cidr::parse("10.42.2.0/24").unwrap().base);
        assert_eq!(allocate(c, 24, &used).unwrap().to_string(), "10.42.1.0/24");
        let small = Cidr::parse("100.80.0.0/23").unwrap();
        let mut u = BTreeSet::new();
        u.insert(allocate(small, 24, &u).unwrap().base);
        u.insert(allocate(small, 24, &u).unwrap().base);
        assert_eq!(allocate(small, 24, &u), None, "a full cluster CIDR gives nothing");
        assert_eq!(allocate(small, 16, &BTreeSet::new()), None, "a mask shorter than the cluster's prefix is refused");
        assert!(Cidr::parse("10.0.0.0").is_err());
        assert_eq!(Cidr::parse("10.42.7.9/16").unwrap().to_string(), "10.42.0.0/16");
    }

    #[test]
    fn used_subnets_ignore_foreign_ranges() {
        let c = Cidr::parse("10.42.0.0/16").unwrap();
        let nodes: Vec<Box<Value>> = vec![
            Box::new(json!({"spec": {"podCIDR": "10.42.3.0/24"}})),
            Box::new(json!({"spec": {"podCIDR": "192.168.0.0/24"}})),
            Box::new(json!({"spec": {}})),
        ];
        let used = used_subnets(&nodes, c);
        assert_eq!(used.len(), 1);
        assert!(used.contains(&Cidr::parse("10.42.3.0/24").unwrap().base));
    }
}
