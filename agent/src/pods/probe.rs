//! Liveness, readiness and startup probes: exec (a process in the container, through the
//! runtime), httpGet (2xx/3xx is success; HTTPS without certificate checks, like kubelet) and
//! tcpSocket, with their timing fields. Network probes are made from the node's pod network
//! namespace so they reach pod IPs the way kubelet's do.

use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::time::Duration;

use serde_json::Value;

use crate::netns;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    Exec(Vec<String>),
    Http { https: bool, host: Option<String>, port: u16, path: String, headers: Vec<(String, String)> },
    Tcp { host: Option<String>, port: u16 },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Probe {
    pub action: Action,
    pub initial_delay: Duration,
    pub period: Duration,
    pub timeout: Duration,
    pub success_threshold: u32,
    pub failure_threshold: u32,
    /// probe-level terminationGracePeriodSeconds (liveness and startup).
    pub termination_grace: Option<Duration>,
}

/// Resolves a probe port: a number, or the name of one of the container's ports.
fn port(v: &Value, container: &Value) -> Result<u16, String> {
    if let Some(n) = v.as_u64() {
        return u16::try_from(n).ok().filter(|p| *p > 0).ok_or_else(|| format!("probe port {n} is out of range"));
    }
    if let Some(name) = v.as_str() {
        if let Ok(n) = name.parse::<u16>() {
            return Ok(n);
        }
        for p in container["ports"].as_array().into_iter().flatten() {
            if p["name"].as_str() == Some(name) {
                return p["containerPort"].as_u64().and_then(|n| u16::try_from(n).ok()).ok_or_else(|| format!("port {name} has no containerPort"));
            }
        }
        return Err(format!("probe port {name:?} is not a port of the container"));
    }
    Err("probe port is missing".into())
}

/// Parses a probe of `container` (`livenessProbe`, ...), with Kubernetes' defaults.
pub fn parse(probe: &Value, container: &Value) -> Result<Option<Probe>, String> {
    if probe.is_null() {
        return Ok(None);
    }
    let secs = |k: &str, d: u64| Duration::from_secs(probe[k].as_u64().unwrap_or(d));
    let action = if let Some(e) = probe.get("exec") {
        let cmd: Vec<String> = e["command"].as_array().into_iter().flatten().filter_map(Value::as_str).map(String::from).collect();
        if cmd.is_empty() {
            return Err("exec probe has no command".into());
        }
        Action::Exec(cmd)
    } else if let Some(h) = probe.get("httpGet") {
        Action::Http {
            https: h["scheme"].as_str().map(|s| s.eq_ignore_ascii_case("HTTPS")).unwrap_or(false),
            host: h["host"].as_str().filter(|s| !s.is_empty()).map(String::from),
            port: port(&h["port"], container)?,
            path: h["path"].as_str().filter(|s| !s.is_empty()).unwrap_or("/").to_string(),
            headers: h["httpHeaders"].as_array().into_iter().flatten().map(|x| (x["name"].as_str().unwrap_or("").to_string(), x["value"].as_str().unwrap_or("").to_string())).collect(),
        }
    } else if let Some(t) = probe.get("tcpSocket") {
        Action::Tcp { host: t["host"].as_str().filter(|s| !s.is_empty()).map(String::from), port: port(&t["port"], container)? }
    } else if probe.get("grpc").is_some() {
        return Err("grpc probes are not supported by this node yet".into());
    } else {
        return Err("probe has no handler (exec, httpGet or tcpSocket)".into());
    };
    Ok(Some(Probe {
        action,
        initial_delay: secs("initialDelaySeconds", 0),
        period: secs("periodSeconds", 10).max(Duration::from_secs(1)),
        timeout: secs("timeoutSeconds", 1).max(Duration::from_secs(1)),
        success_threshold: probe["successThreshold"].as_u64().unwrap_or(1).max(1) as u32,
        failure_threshold: probe["failureThreshold"].as_u64().unwrap_or(3).max(1) as u32,
        termination_grace: probe["terminationGracePeriodSeconds"].as_u64().map(Duration::from_secs),
    }))
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    Success,
    Failure(String),
}

/// Consecutive results against the thresholds.
#[derive(Clone, Debug, Default)]
pub struct Tracker {
    successes: u32,
    failures: u32,
    /// The current verdict (None until a threshold was first reached).
    pub verdict: Option<bool>,
}

impl Tracker {
    /// Records one result; returns the verdict when it changed.
    pub fn record(&mut self, ok: bool, probe: &Probe) -> Option<bool> {
        if ok {
            self.successes += 1;
            self.failures = 0;
            if self.successes >= probe.success_threshold && self.verdict != Some(true) {
                self.verdict = Some(true);
                return Some(true);
            }
        } else {
            self.failures += 1;
            self.successes = 0;
            if self.failures >= probe.failure_threshold && self.verdict != Some(false) {
                self.verdict = Some(false);
                return Some(false);
            }
        }
        None
    }
}

/// An httpGet probe against `ip` (the pod IP unless the probe names a host).
pub async fn http(pod_netns: Option<&Path>, ip: IpAddr, action: &Action, timeout: Duration) -> Outcome {
    let Action::Http { https, host, port, path, headers } = action else { return Outcome::Failure("not an http probe".into()) };
    let host = host.clone().unwrap_or_else(|| ip.to_string());
    let authority = if host.contains(':') && !host.starts_with('[') { format!("[{host}]:{port}") } else { format!("{host}:{port}") };
    let url = format!("{}://{authority}{}", if *https { "https" } else { "http" }, if path.starts_with('/') { path.clone() } else { format!("/{path}") });
    let headers = headers.clone();
    let r = netns::run_in(pod_netns, move || async move {
        let client = reqwest::Client::builder()
            .use_rustls_tls()
            .danger_accept_invalid_certs(true)
            .timeout(timeout)
            .redirect(reqwest::redirect::Policy::limited(10))
            .no_proxy()
            .build()
            .map_err(|e| e.to_string())?;
        let mut req = client.get(&url).header("user-agent", "kube-probe/1.33");
        for (k, v) in &headers {
            req = req.header(k.as_str(), v.as_str());
        }
        let resp = req.send().await.map_err(|e| format!("Get \"{url}\": {}", root_cause(&e)))?;
        let code = resp.status().as_u16();
        if (200..400).contains(&code) { Ok(()) } else { Err(format!("HTTP probe failed with statuscode: {code}")) }
    })
    .await;
    match r {
        Ok(Ok(())) => Outcome::Success,
        Ok(Err(m)) => Outcome::Failure(m),
        Err(e) => Outcome::Failure(e.to_string()),
    }
}

fn root_cause(e: &dyn std::error::Error) -> String {
    let mut cur: &dyn std::error::Error = e;
    while let Some(s) = cur.source() {
        cur = s;
    }
    cur.to_string()
}

/// A tcpSocket probe.
pub async fn tcp(pod_netns: Option<&Path>, ip: IpAddr, action: &Action, timeout: Duration) -> Outcome {
    let Action::Tcp { host, port } = action else { return Outcome::Failure("not a tcp probe".into()) };
    let ip = match host.as_deref().map(|h| h.parse::<IpAddr>()) {
        Some(Ok(h)) => h,
        Some(Err(_)) => return Outcome::Failure(format!("tcp probe host {:?} is not an IP address", host.as_deref().unwrap_or(""))),
        None => ip,
    };
    match netns::connect(pod_netns, SocketAddr::new(ip, *port), timeout).await {
        Ok(_) => Outcome::Success,
        Err(e) => Outcome::Failure(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parse_with_defaults_and_named_ports() {
        let c = json!({"ports": [{"name": "http", "containerPort": 8080}]});
        let p = parse(&json!({"httpGet": {"port": "http", "path": "/healthz"}}), &c).unwrap().unwrap();
        assert_eq!(p.action, Action::Http { https: false, host: None, port: 8080, path: "/healthz".into(), headers: vec![] });
        assert_eq!((p.period, p.timeout, p.success_threshold, p.failure_threshold), (Duration::from_secs(10), Duration::from_secs(1), 1, 3));
        let p = parse(&json!({"tcpSocket": {"port": 53}, "periodSeconds": 2, "failureThreshold": 1, "initialDelaySeconds": 5}), &c).unwrap().unwrap();
        assert_eq!(p.action, Action::Tcp { host: None, port: 53 });
        assert_eq!((p.period, p.failure_threshold, p.initial_delay), (Duration::from_secs(2), 1, Duration::from_secs(5)));
        let p = parse(&json!({"exec": {"command": ["cat", "/tmp/ok"]}}), &c).unwrap().unwrap();
        assert_eq!(p.action, Action::Exec(vec!["cat".into(), "/tmp/ok".into()]));
        assert!(parse(&json!({"httpGet": {"port": "nope"}}), &c).is_err());
        assert!(parse(&json!({"periodSeconds": 1}), &c).is_err());
        assert_eq!(parse(&Value::Null, &c).unwrap(), None);
    }

    #[test]
    fn thresholds() {
        let p = parse(&json!({"exec": {"command": ["x"]}, "failureThreshold": 2, "successThreshold": 2}), &json!({})).unwrap().unwrap();
        let mut t = Tracker::default();
        assert_eq!(t.record(true, &p), None);
        assert_eq!(t.record(true, &p), Some(true));
        assert_eq!(t.record(true, &p), None);
        assert_eq!(t.record(false, &p), None);
        assert_eq!(t.record(true, &p), None, "one success resets the failure count");
        assert_eq!(t.record(false, &p), None);
        assert_eq!(t.record(false, &p), Some(false));
        assert_eq!(t.verdict, Some(false));
    }

    #[tokio::test]
    async fn http_and_tcp_against_a_local_server() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = l.local_addr().unwrap().port();
        tokio::spawn(async move {
            loop {
                let Ok((mut s, _)) = l.accept().await else { return };
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 4096];
                    let n = s.read(&mut buf).await.unwrap_or(0);
                    let req = String::from_utf8_lossy(&buf[..n]).to_string();
                    let code = if req.starts_with("GET /ok ") && req.to_ascii_lowercase().contains("x-probe: yes") { "200 OK" } else { "503 Service Unavailable" };
                    let _ = s.write_all(format!("HTTP/1.1 {code}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n").as_bytes()).await;
                });
            }
        });
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        let ok = Action::Http { https: false, host: None, port, path: "/ok".into(), headers: vec![("X-Probe".into(), "yes".into())] };
        assert_eq!(http(None, ip, &ok, Duration::from_secs(2)).await, Outcome::Success);
        let bad = Action::Http { https: false, host: None, port, path: "/bad".into(), headers: vec![] };
        assert_eq!(http(None, ip, &bad, Duration::from_secs(2)).await, Outcome::Failure("HTTP probe failed with statuscode: 503".into()));
        assert_eq!(tcp(None, ip, &Action::Tcp { host: None, port }, Duration::from_secs(1)).await, Outcome::Success);
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        assert!(matches!(tcp(None, ip, &Action::Tcp { host: None, port: closed }, Duration::from_secs(1)).await, Outcome::Failure(_)));
    }
}
