//! Client side of `rkube cluster ...` and `rkube snapshot ...`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use futures::StreamExt;
use raft::{NodeConfig, NodeStatus};
use tokio::io::AsyncWriteExt;

use crate::ClientArgs;

fn http_for(c: &ClientArgs) -> Result<reqwest::Client> {
    let mut b = reqwest::Client::builder().connect_timeout(Duration::from_secs(3));
    if let Some(ca) = &c.cacert {
        let pem = std::fs::read(ca).with_context(|| format!("reading {}", ca.display()))?;
        b = b.tls_built_in_root_certs(false).add_root_certificate(reqwest::Certificate::from_pem(&pem)?);
    }
    if let (Some(cert), Some(key)) = (&c.cert, &c.key) {
        let mut pem = std::fs::read(cert).with_context(|| format!("reading {}", cert.display()))?;
        pem.extend(std::fs::read(key).with_context(|| format!("reading {}", key.display()))?);
        b = b.identity(reqwest::Identity::from_pem(&pem)?);
    }
    Ok(b.build()?)
}

async fn fetch_status(c: &ClientArgs, server: &str) -> Result<NodeStatus> {
    let url = format!("{}/cluster/v1/status", server.trim_end_matches('/'));
    let resp = http_for(c)?
        .get(&url)
        .timeout(Duration::from_secs(10))
        .send()
        .await
        .with_context(|| format!("cannot reach {server}: is a master running there? (set --server or RKUBE_SERVER)"))?;
    if !resp.status().is_success() {
        bail!("{url}: {}", resp.status());
    }
    Ok(resp.json().await?)
}

async fn error_text(resp: reqwest::Response) -> String {
    let status = resp.status();
    let body = resp.text().await.unwrap_or_default();
    let msg = serde_json::from_str::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| v.get("error").and_then(|e| e.as_str()).map(String::from))
        .unwrap_or(body);
    format!("{status}: {msg}")
}

pub async fn status(c: &ClientArgs) -> Result<()> {
    let mine = fetch_status(c, &c.server).await?;
    // Replication progress is known to the leader: ask it when it is someone else.
    let view = match &mine.leader_addr {
        Some(addr) if mine.leader != Some(mine.id) => fetch_status(c, addr).await.unwrap_or(mine.clone()),
        _ => mine.clone(),
    };
    println!("cluster:    {}", view.cluster_id);
    match (view.leader, &view.leader_addr) {
        (Some(id), Some(addr)) => println!("leader:     {id} ({addr})"),
        _ => println!("leader:     none (no quorum?)"),
    }
    println!("term:       {}", view.term);
    println!("committed:  {}", fmt_opt(view.committed));
    println!("applied:    {} (asked member {}: {})", fmt_opt(mine.applied), mine.id, fmt_opt(mine.applied));
    println!("revision:   {} (compacted up to {})", view.revision, view.compacted_revision);
    println!("snapshot:   {}   purged: {}", fmt_opt(view.snapshot), fmt_opt(view.purged));
    println!();
    println!("{:<18} {:<28} {:<8} {:<10} {:<10} {:<6}", "ID", "ADDRESS", "ROLE", "STATE", "MATCHED", "LAG");
    for m in &view.members {
        let role = if m.voter { "voter" } else { "learner" };
        let state = if Some(m.id) == view.leader { "leader" } else { "follower" };
        println!("{:<18} {:<28} {:<8} {:<10} {:<10} {:<6}", m.id, m.addr, role, state, fmt_opt(m.matched), fmt_opt(m.lag));
    }
    Ok(())
}

fn fmt_opt(v: Option<u64>) -> String {
    v.map(|v| v.to_string()).unwrap_or_else(|| "-".into())
}

pub async fn remove(c: &ClientArgs, id: u64) -> Result<()> {
    let url = format!("{}/cluster/v1/members/{id}", c.server.trim_end_matches('/'));
    let resp = http_for(c)?.delete(&url).timeout(Duration::from_secs(60)).send().await.with_context(|| format!("cannot reach {}", c.server))?;
    if !resp.status().is_success() {
        bail!("removing member {id} failed: {}", error_text(resp).await);
    }
    println!("member {id} removed");
    Ok(())
}

pub async fn transfer_leader(c: &ClientArgs, to: Option<u64>) -> Result<()> {
    let url = format!("{}/cluster/v1/transfer-leader", c.server.trim_end_matches('/'));
    let resp = http_for(c)?
        .post(&url)
        .json(&serde_json::json!({ "to": to }))
        .timeout(Duration::from_secs(30))
        .send()
        .await
        .with_context(|| format!("cannot reach {}", c.server))?;
    if !resp.status().is_success() {
        bail!("leadership transfer failed: {}", error_text(resp).await);
    }
    let v: serde_json::Value = resp.json().await?;
    println!("leader is now {}", v["leader"]);
    Ok(())
}

pub async fn snapshot_save(c: &ClientArgs, file: &Path) -> Result<()> {
    let url = format!("{}/cluster/v1/snapshot", c.server.trim_end_matches('/'));
    let resp = http_for(c)?.get(&url).timeout(Duration::from_secs(3600)).send().await.with_context(|| format!("cannot reach {}", c.server))?;
    if !resp.status().is_success() {
        bail!("snapshot failed: {}", error_text(resp).await);
    }
    let rev = resp.headers().get("x-rkube-revision").and_then(|v| v.to_str().ok()).unwrap_or("?").to_string();
    let tmp = file.with_extension("partial");
    let mut out = tokio::fs::File::create(&tmp).await.with_context(|| format!("cannot write {}", tmp.display()))?;
    let mut stream = resp.bytes_stream();
    let mut bytes = 0u64;
    let mut last_report = std::time::Instant::now();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.context("snapshot download interrupted")?;
        bytes += chunk.len() as u64;
        out.write_all(&chunk).await?;
        if last_report.elapsed() > Duration::from_secs(2) {
            eprintln!("  {} MiB received", bytes >> 20);
            last_report = std::time::Instant::now();
        }
    }
    out.sync_all().await?;
    drop(out);
    let stats = storage::snapshot::verify(&tmp).context("the downloaded snapshot does not verify")?;
    std::fs::rename(&tmp, file)?;
    println!("saved snapshot at revision {rev} to {} ({} records, {} bytes)", file.display(), stats.records, stats.bytes);
    Ok(())
}

pub fn snapshot_restore(file: &Path, data_dir: PathBuf, advertise: String, node_id: Option<u64>) -> Result<()> {
    let mut config = NodeConfig::new(data_dir.clone(), advertise.clone());
    config.node_id = node_id;
    let info = raft::restore::restore_snapshot(file, &config)?;
    println!(
        "restored revision {} ({} records) into {} as node {} of new cluster {}",
        info.revision,
        info.records,
        data_dir.display(),
        info.node_id,
        info.cluster_id
    );
    println!("start it with: rkube server --data-dir {} --advertise {advertise} --listen <host:port>", data_dir.display());
    Ok(())
}

pub fn pki_peer(out: &Path, hosts: &[String]) -> Result<()> {
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let (ca_crt, ca_key) = (out.join("ca.crt"), out.join("ca.key"));
    let pki = if ca_crt.exists() && ca_key.exists() {
        crate::api::tls::Pki { ca_cert_pem: std::fs::read_to_string(&ca_crt)?, ca_key_pem: std::fs::read_to_string(&ca_key)? }
    } else {
        let p = crate::api::tls::generate_ca()?;
        std::fs::write(&ca_crt, &p.ca_cert_pem)?;
        write_secret(&ca_key, &p.ca_key_pem)?;
        println!("created the peer CA {}", ca_crt.display());
        p
    };
    for host in hosts {
        let mut names = vec![host.clone()];
        for extra in ["127.0.0.1", "localhost"] {
            if host != extra {
                names.push(extra.to_string());
            }
        }
        let (cert, key) = crate::api::tls::peer_cert(&pki, &names)?;
        std::fs::write(out.join(format!("{host}.crt")), cert)?;
        write_secret(&out.join(format!("{host}.key")), &key)?;
        println!("wrote {host}.crt and {host}.key");
    }
    Ok(())
}

fn write_secret(path: &Path, contents: &str) -> Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(path)?;
    std::io::Write::write_all(&mut f, contents.as_bytes())?;
    Ok(())
}
