//! Routes to other nodes' pod CIDRs through those nodes' addresses (host-gw networking, like
//! flannel's host-gw backend): pods on different nodes of one L2 network reach each other
//! directly. Managed with iproute2 (`ip route replace/del`), tagged with a dedicated protocol
//! number so only rkube's routes are ever touched.
//!
//! The routes go into the main table of the network namespace the `ip` processes run in, which
//! is the calling thread's (children inherit the namespaces of the thread that forks them).

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::Duration;

use serde::Deserialize;

use crate::error::IoContext;
use crate::{Error, Result};

/// Route protocol number marking rkube's routes (see /etc/iproute2/rt_protos).
pub const RKUBE_ROUTE_PROTO: u8 = 77;

const IP_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct PodRoute {
    /// e.g. `100.80.2.0/24`
    pub cidr: String,
    /// The other node's address, e.g. `100.65.0.12`.
    pub via: String,
}

/// Makes rkube's routes exactly `desired` (adds/replaces missing ones, deletes stale ones).
///
/// Input is validated first (a bad CIDR or address changes nothing); CIDRs with host bits set
/// are taken as their network. `replace` also takes over a route to the same CIDR that is not
/// rkube's. Every change is attempted even if one fails (an unreachable gateway, say); the
/// errors are reported together.
pub async fn sync(desired: &[PodRoute]) -> Result<()> {
    let mut want: BTreeMap<String, IpAddr> = BTreeMap::new();
    for route in desired {
        let (net, prefix) = parse_cidr(&route.cidr)
            .ok_or_else(|| Error::Invalid(format!("invalid pod route CIDR {:?}", route.cidr)))?;
        let via: IpAddr = route.via.trim().parse().map_err(|_| {
            Error::Invalid(format!(
                "invalid gateway {:?} for pod route {}",
                route.via, route.cidr
            ))
        })?;
        if via.is_ipv4() != net.is_ipv4() {
            return Err(Error::Invalid(format!(
                "pod route {} via {}: address families differ",
                route.cidr, route.via
            )));
        }
        let cidr = canonical_cidr(net, prefix);
        if let Some(other) = want.insert(cidr.clone(), via)
            && other != via
        {
            return Err(Error::Invalid(format!(
                "pod route {cidr} given twice, via {other} and via {via}"
            )));
        }
    }

    let current = list().await?;
    let mut errors = Vec::new();
    for route in &current {
        if want
            .get(&route.cidr)
            .is_some_and(|via| Some(*via) == route.via)
        {
            continue;
        }
        if want.contains_key(&route.cidr) {
            // Wrong gateway: the replace below fixes it in place.
            continue;
        }
        let mut args = vec!["route".to_string(), "del".into(), route.cidr.clone()];
        if let Some(via) = route.via {
            args.extend(["via".into(), via.to_string()]);
        }
        args.extend(["proto".into(), RKUBE_ROUTE_PROTO.to_string()]);
        match ip(&args).await {
            Ok(_) => tracing::info!(cidr = %route.cidr, via = ?route.via, "removed pod route"),
            Err(e) => errors.push(e.to_string()),
        }
    }
    for (cidr, via) in &want {
        if current
            .iter()
            .any(|r| &r.cidr == cidr && r.via == Some(*via))
        {
            continue;
        }
        let args = [
            "route".to_string(),
            "replace".into(),
            cidr.clone(),
            "via".into(),
            via.to_string(),
            "proto".into(),
            RKUBE_ROUTE_PROTO.to_string(),
        ];
        match ip(&args).await {
            Ok(_) => tracing::info!(%cidr, %via, "installed pod route"),
            Err(e) => errors.push(e.to_string()),
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(Error::Network(errors.join("; ")))
    }
}

#[derive(Debug)]
struct Current {
    cidr: String,
    via: Option<IpAddr>,
}

/// rkube's routes in the main table, both families.
async fn list() -> Result<Vec<Current>> {
    #[derive(Deserialize)]
    struct JsonRoute {
        dst: String,
        gateway: Option<String>,
    }
    let proto = RKUBE_ROUTE_PROTO.to_string();
    let mut routes = Vec::new();
    for family in ["-4", "-6"] {
        let args = [
            "-j", family, "route", "show", "table", "main", "proto", &proto,
        ];
        let out = match ip(&args).await {
            Ok(out) => out,
            // A kernel or namespace without IPv6 has no IPv6 routes to clean up either.
            Err(e) if family == "-6" => {
                tracing::debug!(error = %e, "listing IPv6 routes failed");
                continue;
            }
            Err(e) => return Err(e),
        };
        let text = String::from_utf8_lossy(&out);
        if text.trim().is_empty() {
            continue;
        }
        let parsed: Vec<JsonRoute> = serde_json::from_str(&text)
            .map_err(|e| Error::Network(format!("parsing `ip {}`: {e}: {text}", args.join(" "))))?;
        for r in parsed {
            let cidr = match r.dst.as_str() {
                "default" if family == "-4" => "0.0.0.0/0".to_string(),
                "default" => "::/0".to_string(),
                dst => match parse_cidr(dst) {
                    Some((net, prefix)) => canonical_cidr(net, prefix),
                    None => {
                        tracing::warn!(dst, "ignoring a route with an unparsable destination");
                        continue;
                    }
                },
            };
            let via = r.gateway.and_then(|g| g.parse().ok());
            routes.push(Current { cidr, via });
        }
    }
    Ok(routes)
}

/// Runs `ip <args>` with a timeout; stdout on success, stderr in the error.
async fn ip<S: AsRef<str>>(args: &[S]) -> Result<Vec<u8>> {
    let args: Vec<&str> = args.iter().map(AsRef::as_ref).collect();
    let shown = format!("ip {}", args.join(" "));
    let child = tokio::process::Command::new("ip")
        .args(&args)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .ctx(|| format!("running `{shown}`"))?;
    let out = tokio::time::timeout(IP_TIMEOUT, child.wait_with_output())
        .await
        .map_err(|_| {
            Error::Network(format!(
                "`{shown}` timed out after {}s",
                IP_TIMEOUT.as_secs()
            ))
        })?
        .ctx(|| format!("running `{shown}`"))?;
    if !out.status.success() {
        return Err(Error::Network(format!(
            "`{shown}` failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(out.stdout)
}

/// `a.b.c.d/n` (or IPv6) to its address and prefix length; a bare address is a host route.
pub(crate) fn parse_cidr(s: &str) -> Option<(IpAddr, u8)> {
    let s = s.trim();
    let (addr, prefix) = match s.split_once('/') {
        Some((addr, prefix)) => (addr, Some(prefix)),
        None => (s, None),
    };
    let addr: IpAddr = addr.parse().ok()?;
    let bits = if addr.is_ipv4() { 32 } else { 128 };
    let prefix = match prefix {
        Some(p) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => {
            p.parse::<u8>().ok()?
        }
        Some(_) => return None,
        None => bits,
    };
    (prefix <= bits).then_some((addr, prefix))
}

/// `net/prefix` with the host bits cleared.
pub(crate) fn canonical_cidr(addr: IpAddr, prefix: u8) -> String {
    match addr {
        IpAddr::V4(a) => {
            let mask = if prefix == 0 {
                0
            } else {
                u32::MAX << (32 - prefix as u32)
            };
            format!("{}/{prefix}", std::net::Ipv4Addr::from(u32::from(a) & mask))
        }
        IpAddr::V6(a) => {
            let mask = if prefix == 0 {
                0
            } else {
                u128::MAX << (128 - prefix as u32)
            };
            format!(
                "{}/{prefix}",
                std::net::Ipv6Addr::from(u128::from(a) & mask)
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidrs() {
        let c = |s: &str| parse_cidr(s).map(|(a, p)| canonical_cidr(a, p));
        assert_eq!(c("100.80.2.0/24").as_deref(), Some("100.80.2.0/24"));
        assert_eq!(c("100.80.2.7/24").as_deref(), Some("100.80.2.0/24"));
        assert_eq!(c("100.80.2.7").as_deref(), Some("100.80.2.7/32"));
        assert_eq!(c("0.0.0.0/0").as_deref(), Some("0.0.0.0/0"));
        assert_eq!(c("fd00::1/64").as_deref(), Some("fd00::/64"));
        for bad in [
            "",
            "100.80.2.0/33",
            "100.80.2.0/",
            "100.80.2.0/+1",
            "x/24",
            "100.80.2/24",
        ] {
            assert_eq!(parse_cidr(bad), None, "{bad}");
        }
    }

    #[tokio::test]
    async fn bad_input_changes_nothing() {
        for (cidr, via) in [
            ("nope", "100.65.0.1"),
            ("100.80.0.0/24", "x"),
            ("100.80.0.0/24", "fd00::1"),
        ] {
            let r = sync(&[PodRoute {
                cidr: cidr.into(),
                via: via.into(),
            }])
            .await;
            assert!(
                matches!(r, Err(Error::Invalid(_))),
                "{cidr} via {via}: {r:?}"
            );
        }
        let twice = [
            PodRoute {
                cidr: "100.80.0.0/24".into(),
                via: "100.65.0.1".into(),
            },
            PodRoute {
                cidr: "100.80.0.0/24".into(),
                via: "100.65.0.2".into(),
            },
        ];
        assert!(matches!(sync(&twice).await, Err(Error::Invalid(_))));
    }
}
