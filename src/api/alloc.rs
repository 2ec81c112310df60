//! ClusterIP and NodePort allocation. Each allocated address or port is a key in the store
//! (`/registry/rkube/serviceips/<ip>`, `/registry/rkube/nodeports/<port>`) created in the same
//! atomic transaction as the Service, so two masters can never hand out the same one: the second
//! transaction aborts and the create is retried with another pick.

use std::net::Ipv4Addr;

use apimachinery::registry::ResourceInfo;
use apimachinery::status::{ApiError, Cause};
use bytes::Bytes;
use serde_json::{Value, json};
use storage::Op;

use super::Api;
use super::meta;

pub const IP_CLAIMS: &str = "/registry/rkube/serviceips/";
pub const PORT_CLAIMS: &str = "/registry/rkube/nodeports/";

#[derive(Clone, Debug)]
pub struct ServiceNetwork {
    pub base: u32,
    pub prefix: u8,
    pub node_ports: (u16, u16),
}

impl ServiceNetwork {
    pub fn parse(cidr: &str, node_ports: &str) -> Result<ServiceNetwork, String> {
        let (ip, len) = cidr.split_once('/').ok_or_else(|| format!("service CIDR {cidr:?} must look like 10.96.0.0/12"))?;
        let ip: Ipv4Addr = ip.parse().map_err(|_| format!("service CIDR {cidr:?}: {ip:?} is not an IPv4 address"))?;
        let prefix: u8 = len.parse().map_err(|_| format!("service CIDR {cidr:?}: bad prefix length"))?;
        if !(8..=29).contains(&prefix) {
            return Err(format!("service CIDR {cidr:?}: prefix length must be between 8 and 29"));
        }
        let mask = u32::MAX << (32 - prefix);
        let (lo, hi) = node_ports.split_once('-').ok_or_else(|| format!("node port range {node_ports:?} must look like 30000-32767"))?;
        let lo: u16 = lo.parse().map_err(|_| format!("node port range {node_ports:?}"))?;
        let hi: u16 = hi.parse().map_err(|_| format!("node port range {node_ports:?}"))?;
        if lo == 0 || lo > hi {
            return Err(format!("node port range {node_ports:?} is empty"));
        }
        Ok(ServiceNetwork { base: u32::from(ip) & mask, prefix, node_ports: (lo, hi) })
    }

    fn size(&self) -> u32 {
        1u32 << (32 - self.prefix)
    }

    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        let mask = u32::MAX << (32 - self.prefix);
        u32::from(ip) & mask == self.base
    }

    /// The address reserved for the `kubernetes` service: the first usable one.
    pub fn first(&self) -> Ipv4Addr {
        Ipv4Addr::from(self.base + 1)
    }

    fn random_ip(&self) -> Ipv4Addr {
        // Skip the network address, the first usable one (kubernetes) and the broadcast address.
        Ipv4Addr::from(self.base + rand::random_range(2..self.size() - 1))
    }
}

fn claim(key: String, owner: &str) -> Op {
    Op::Create { key, value: Bytes::from(owner.to_string()) }
}

fn svc_invalid(name: &str, field: &str, msg: String) -> ApiError {
    ApiError::Invalid {
        group: String::new(),
        kind: "Service".into(),
        name: name.into(),
        causes: vec![Cause { reason: "FieldValueInvalid".into(), message: format!("Invalid value: {msg}"), field: field.into() }],
    }
}

fn wants_node_ports(svc: &Value) -> bool {
    matches!(svc.pointer("/spec/type").and_then(|t| t.as_str()), Some("NodePort") | Some("LoadBalancer"))
}

impl Api {
    fn ip_taken(&self, ip: Ipv4Addr) -> bool {
        matches!(self.node.store.get(&format!("{IP_CLAIMS}{ip}"), None), Ok((Some(_), _)))
    }

    fn port_taken(&self, port: u16) -> bool {
        matches!(self.node.store.get(&format!("{PORT_CLAIMS}{port}"), None), Ok((Some(_), _)))
    }

    fn pick_port(&self, exclude: &[u16]) -> Result<u16, ApiError> {
        let (lo, hi) = self.net.node_ports;
        for _ in 0..256 {
            let p = rand::random_range(lo..=hi);
            if !exclude.contains(&p) && !self.port_taken(p) {
                return Ok(p);
            }
        }
        Err(ApiError::ServiceUnavailable(format!("no free node port in {lo}-{hi}")))
    }

    /// Allocates addresses and ports for a new object (only Services need any); returns the
    /// claims to create with it.
    pub async fn admit_create(&self, info: &ResourceInfo, obj: &mut Value, name: &str) -> Result<Vec<Op>, ApiError> {
        if info.plural != "services" || info.group != "" {
            return Ok(Vec::new());
        }
        let owner = format!("{}/{name}", meta::meta_str(obj, "namespace").unwrap_or(""));
        let mut claims = Vec::new();
        let ty = obj.pointer("/spec/type").and_then(|t| t.as_str()).unwrap_or("ClusterIP").to_string();
        if ty != "ExternalName" {
            let requested = obj.pointer("/spec/clusterIP").and_then(|c| c.as_str()).unwrap_or("").to_string();
            let ip = match requested.as_str() {
                "None" => None,
                "" => {
                    let mut pick = None;
                    for _ in 0..256 {
                        let ip = self.net.random_ip();
                        if !self.ip_taken(ip) {
                            pick = Some(ip);
                            break;
                        }
                    }
                    Some(pick.ok_or_else(|| ApiError::ServiceUnavailable("the service IP range is full".into()))?)
                }
                s => {
                    let ip: Ipv4Addr = s.parse().map_err(|_| svc_invalid(name, "spec.clusterIP", format!("\"{s}\": must be a valid IPv4 address, None, or empty")))?;
                    if !self.net.contains(ip) {
                        return Err(svc_invalid(name, "spec.clusterIP", format!("\"{s}\": provided IP is not in the valid range")));
                    }
                    Some(ip)
                }
            };
            match ip {
                Some(ip) => {
                    obj["spec"]["clusterIP"] = json!(ip.to_string());
                    obj["spec"]["clusterIPs"] = json!([ip.to_string()]);
                    claims.push(claim(format!("{IP_CLAIMS}{ip}"), &owner));
                }
                None => {
                    obj["spec"]["clusterIP"] = json!("None");
                    obj["spec"]["clusterIPs"] = json!(["None"]);
                }
            }
        }
        if wants_node_ports(obj) {
            claims.extend(self.assign_node_ports(obj, &[], &owner, name)?);
        }
        Ok(claims)
    }

    /// Gives every port of a NodePort/LoadBalancer service a node port; `kept` are ports the
    /// service already owns (no new claim needed).
    fn assign_node_ports(&self, obj: &mut Value, kept: &[u16], owner: &str, name: &str) -> Result<Vec<Op>, ApiError> {
        let mut claims = Vec::new();
        let mut used: Vec<u16> = Vec::new();
        let (lo, hi) = self.net.node_ports;
        if let Some(ports) = obj.pointer_mut("/spec/ports").and_then(|p| p.as_array_mut()) {
            for (i, p) in ports.iter_mut().enumerate() {
                let port = match p.get("nodePort").and_then(|n| n.as_u64()).filter(|n| *n != 0) {
                    Some(n) => {
                        let n = n as u16;
                        if !(lo..=hi).contains(&n) {
                            return Err(svc_invalid(name, &format!("spec.ports[{i}].nodePort"), format!("{n}: provided port is not in the valid range. The range of valid ports is {lo}-{hi}")));
                        }
                        if !kept.contains(&n) && self.port_taken(n) {
                            return Err(svc_invalid(name, &format!("spec.ports[{i}].nodePort"), format!("{n}: provided port is already allocated")));
                        }
                        n
                    }
                    None => self.pick_port(&used)?,
                };
                p["nodePort"] = json!(port);
                if !kept.contains(&port) && !used.contains(&port) {
                    claims.push(claim(format!("{PORT_CLAIMS}{port}"), owner));
                }
                used.push(port);
            }
        }
        Ok(claims)
    }

    /// Claim changes for an updated Service: keeps its cluster IP, allocates node ports it now
    /// needs, releases the ones it no longer uses.
    pub fn admit_update(&self, info: &ResourceInfo, current: &Value, new: &mut Value) -> Result<Vec<Op>, ApiError> {
        if info.plural != "services" || info.group != "" {
            return Ok(Vec::new());
        }
        let name = meta::name(current).unwrap_or("").to_string();
        let owner = format!("{}/{name}", meta::meta_str(current, "namespace").unwrap_or(""));
        // An update that leaves clusterIP empty keeps the allocated one.
        let cur_ip = current.pointer("/spec/clusterIP").cloned();
        if new.pointer("/spec/clusterIP").and_then(|c| c.as_str()).is_none_or(|s| s.is_empty()) && cur_ip.is_some() {
            new["spec"]["clusterIP"] = cur_ip.clone().expect("checked");
            new["spec"]["clusterIPs"] = current.pointer("/spec/clusterIPs").cloned().unwrap_or(json!([cur_ip]));
        }
        let old_ports = node_ports_of(current);
        let mut ops = Vec::new();
        if wants_node_ports(new) {
            // Ports the client left unset keep the node port they had, matched by port number.
            if let (Some(np), Some(cp)) = (new.pointer_mut("/spec/ports").and_then(|p| p.as_array_mut()), current.pointer("/spec/ports").and_then(|p| p.as_array())) {
                for p in np.iter_mut() {
                    if p.get("nodePort").and_then(|n| n.as_u64()).is_none_or(|n| n == 0)
                        && let Some(old) = cp.iter().find(|o| o.get("port") == p.get("port")).and_then(|o| o.get("nodePort"))
                    {
                        p["nodePort"] = old.clone();
                    }
                }
            }
            ops.extend(self.assign_node_ports(new, &old_ports, &owner, &name)?);
        } else if let Some(ports) = new.pointer_mut("/spec/ports").and_then(|p| p.as_array_mut()) {
            for p in ports {
                p.as_object_mut().map(|o| o.remove("nodePort"));
            }
        }
        let new_ports = node_ports_of(new);
        for p in old_ports {
            if !new_ports.contains(&p) {
                ops.push(Op::Delete { key: format!("{PORT_CLAIMS}{p}"), expected_rev: None });
            }
        }
        Ok(ops)
    }

    /// Claims to release when an object is deleted.
    pub fn release_claims(&self, info: &ResourceInfo, obj: &Value) -> Vec<Op> {
        if info.plural != "services" || info.group != "" {
            return Vec::new();
        }
        let mut ops = Vec::new();
        if let Some(ip) = obj.pointer("/spec/clusterIP").and_then(|c| c.as_str()).filter(|s| !s.is_empty() && *s != "None") {
            ops.push(Op::Delete { key: format!("{IP_CLAIMS}{ip}"), expected_rev: None });
        }
        for p in node_ports_of(obj) {
            ops.push(Op::Delete { key: format!("{PORT_CLAIMS}{p}"), expected_rev: None });
        }
        ops
    }
}

fn node_ports_of(svc: &Value) -> Vec<u16> {
    svc.pointer("/spec/ports")
        .and_then(|p| p.as_array())
        .map(|a| a.iter().filter_map(|p| p.get("nodePort").and_then(|n| n.as_u64())).filter(|n| *n != 0).map(|n| n as u16).collect())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_networks() {
        let n = ServiceNetwork::parse("100.64.128.0/17", "30000-32767").unwrap();
        assert_eq!(n.first().to_string(), "100.64.128.1");
        assert!(n.contains("100.64.200.3".parse().unwrap()));
        assert!(!n.contains("100.64.0.3".parse().unwrap()));
        for _ in 0..100 {
            let ip = n.random_ip();
            assert!(n.contains(ip) && ip != n.first());
        }
        assert!(ServiceNetwork::parse("10.0.0.0", "1-2").is_err());
        assert!(ServiceNetwork::parse("10.0.0.0/12", "5-2").is_err());
    }
}
