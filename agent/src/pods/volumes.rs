//! Pod volumes on the host, under `<pods>/<uid>/volumes/<name>`: emptyDir (a directory, or a
//! tmpfs mounted there for `medium: Memory`), hostPath (with its `type` checks), and the
//! projected kinds — configMap, secret, downwardAPI, projected — written like kubelet's atomic
//! writer: the files live in a timestamped directory, `..data` points at it and every visible
//! name is a symlink through `..data`, so a running container sees an update all at once.
//! Plus the per-pod files every container gets: /etc/hosts, /etc/hostname, /etc/resolv.conf.

use std::collections::BTreeMap;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Component, Path, PathBuf};

use runtime::spec::{MountKind, MountSpec};
use serde_json::Value;

use super::spec::{ConfigError, PodContext, Sources, field_value, resource_field_value};

/// Files of a projected volume: relative path → (content, mode).
pub type Files = BTreeMap<String, (Vec<u8>, u32)>;

/// A volume as set up on the host.
#[derive(Clone, Debug)]
pub struct HostVolume {
    pub path: PathBuf,
    /// Projected kinds are always mounted read-only.
    pub readonly: bool,
}

fn valid_relative(p: &str) -> bool {
    !p.is_empty() && !p.starts_with("..") && Path::new(p).components().all(|c| matches!(c, Component::Normal(_)))
}

fn items_or_all(items: &Value, data: &BTreeMap<String, Vec<u8>>, default_mode: u32, what: &str, optional: bool) -> Result<Files, ConfigError> {
    let mut files = Files::new();
    match items.as_array().filter(|a| !a.is_empty()) {
        Some(items) => {
            for it in items {
                let key = it["key"].as_str().unwrap_or("");
                let path = it["path"].as_str().unwrap_or(key);
                if !valid_relative(path) {
                    return Err(ConfigError(format!("{what}: invalid item path {path:?}")));
                }
                let mode = it["mode"].as_u64().map(|m| m as u32).unwrap_or(default_mode);
                match data.get(key) {
                    Some(v) => {
                        files.insert(path.to_string(), (v.clone(), mode));
                    }
                    None if optional => {}
                    None => return Err(ConfigError(format!("configmap references non-existent config key: {key} ({what})"))),
                }
            }
        }
        None => {
            for (k, v) in data {
                files.insert(k.clone(), (v.clone(), default_mode));
            }
        }
    }
    Ok(files)
}

fn downward_items(pod: &Value, items: &Value, default_mode: u32, ctx: &PodContext) -> Result<Files, ConfigError> {
    let mut files = Files::new();
    for it in items.as_array().into_iter().flatten() {
        let path = it["path"].as_str().unwrap_or("");
        if !valid_relative(path) {
            return Err(ConfigError(format!("downwardAPI: invalid item path {path:?}")));
        }
        let mode = it["mode"].as_u64().map(|m| m as u32).unwrap_or(default_mode);
        let value = if let Some(f) = it.get("fieldRef") {
            field_value(pod, f["fieldPath"].as_str().unwrap_or(""), ctx).map_err(ConfigError)?
        } else if let Some(r) = it.get("resourceFieldRef") {
            let first = pod["spec"]["containers"][0]["name"].as_str().unwrap_or("");
            resource_field_value(pod, first, r, ctx).map_err(ConfigError)?
        } else {
            continue;
        };
        files.insert(path.to_string(), (value.into_bytes(), mode));
    }
    Ok(files)
}

/// The files a configMap / secret / downwardAPI / projected volume should hold now (None for
/// other kinds). `token` is the service account token for projected `serviceAccountToken`
/// sources, when one could be issued.
pub fn projected_files(pod: &Value, volume: &Value, sources: &Sources, ctx: &PodContext, token: Option<&str>) -> Result<Option<Files>, ConfigError> {
    let ns = pod["metadata"]["namespace"].as_str().unwrap_or("default");
    let mode = |v: &Value| v["defaultMode"].as_u64().map(|m| m as u32).unwrap_or(0o644);
    if let Some(cm) = volume.get("configMap") {
        let name = cm["name"].as_str().unwrap_or("");
        let optional = cm["optional"].as_bool().unwrap_or(false);
        return match sources.config_maps.get(name) {
            Some(data) => items_or_all(&cm["items"], data, mode(cm), &format!("ConfigMap {ns}/{name}"), optional).map(Some),
            None if optional => Ok(Some(Files::new())),
            None => Err(ConfigError(format!("configmap \"{name}\" not found"))),
        };
    }
    if let Some(s) = volume.get("secret") {
        let name = s["secretName"].as_str().unwrap_or("");
        let optional = s["optional"].as_bool().unwrap_or(false);
        return match sources.secrets.get(name) {
            Some(data) => items_or_all(&s["items"], data, mode(s), &format!("Secret {ns}/{name}"), optional).map(Some),
            None if optional => Ok(Some(Files::new())),
            None => Err(ConfigError(format!("secret \"{name}\" not found"))),
        };
    }
    if let Some(d) = volume.get("downwardAPI") {
        return downward_items(pod, &d["items"], mode(d), ctx).map(Some);
    }
    if let Some(p) = volume.get("projected") {
        let default_mode = mode(p);
        let mut files = Files::new();
        for src in p["sources"].as_array().into_iter().flatten() {
            if let Some(cm) = src.get("configMap") {
                let name = cm["name"].as_str().unwrap_or("");
                let optional = cm["optional"].as_bool().unwrap_or(false);
                match sources.config_maps.get(name) {
                    Some(data) => files.extend(items_or_all(&cm["items"], data, default_mode, &format!("ConfigMap {ns}/{name}"), optional)?),
                    None if optional => {}
                    None => return Err(ConfigError(format!("configmap \"{name}\" not found"))),
                }
            } else if let Some(s) = src.get("secret") {
                let name = s["name"].as_str().unwrap_or("");
                let optional = s["optional"].as_bool().unwrap_or(false);
                match sources.secrets.get(name) {
                    Some(data) => files.extend(items_or_all(&s["items"], data, default_mode, &format!("Secret {ns}/{name}"), optional)?),
                    None if optional => {}
                    None => return Err(ConfigError(format!("secret \"{name}\" not found"))),
                }
            } else if let Some(d) = src.get("downwardAPI") {
                files.extend(downward_items(pod, &d["items"], default_mode, ctx)?);
            } else if let Some(t) = src.get("serviceAccountToken") {
                let path = t["path"].as_str().unwrap_or("token");
                if let Some(token) = token {
                    files.insert(path.to_string(), (token.as_bytes().to_vec(), default_mode));
                }
            } else if let Some(ctb) = src.get("clusterTrustBundle") {
                let _ = ctb;
            }
        }
        return Ok(Some(files));
    }
    Ok(None)
}

/// Writes `files` into `dir` atomically (kubelet's AtomicWriter layout). Returns whether
/// anything changed.
pub fn atomic_write(dir: &Path, files: &Files) -> std::io::Result<bool> {
    std::fs::create_dir_all(dir)?;
    let data_link = dir.join("..data");
    let current = std::fs::read_link(&data_link).ok().map(|t| dir.join(t));
    if let Some(cur) = &current {
        if same_contents(cur, files) {
            return Ok(false);
        }
    }
    let stamp = format!("..{}", jiff::Timestamp::now().strftime("%Y_%m_%d_%H_%M_%S.%f"));
    let new_dir = dir.join(&stamp);
    std::fs::create_dir_all(&new_dir)?;
    for (rel, (content, mode)) in files {
        let p = new_dir.join(rel);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(&p, content)?;
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(*mode & 0o7777))?;
    }
    // Swap ..data in one rename.
    let tmp_link = dir.join("..data_tmp");
    let _ = std::fs::remove_file(&tmp_link);
    symlink(&stamp, &tmp_link)?;
    std::fs::rename(&tmp_link, &data_link)?;
    // Visible names: top-level entries as symlinks through ..data.
    let mut tops: Vec<String> = files.keys().map(|k| k.split('/').next().unwrap_or(k).to_string()).collect();
    tops.sort();
    tops.dedup();
    for top in &tops {
        let link = dir.join(top);
        if std::fs::symlink_metadata(&link).is_err() {
            symlink(format!("..data/{top}"), &link)?;
        }
    }
    // Names no longer present, and the old data directory.
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with("..") {
            if name != "..data" && name != stamp && entry.path().is_dir() {
                std::fs::remove_dir_all(entry.path())?;
            }
            continue;
        }
        if !tops.contains(&name) {
            let _ = std::fs::remove_file(entry.path());
        }
    }
    Ok(true)
}

fn same_contents(dir: &Path, files: &Files) -> bool {
    let mut count = 0;
    let mut ok = true;
    walk(dir, dir, &mut |rel, path| {
        count += 1;
        match files.get(rel) {
            Some((content, mode)) => {
                let same_content = std::fs::read(path).map(|c| &c == content).unwrap_or(false);
                let same_mode = std::fs::metadata(path).map(|m| m.permissions().mode() & 0o7777 == *mode & 0o7777).unwrap_or(false);
                ok &= same_content && same_mode;
            }
            None => ok = false,
        }
    });
    ok && count == files.len()
}

fn walk(root: &Path, dir: &Path, f: &mut dyn FnMut(&str, &Path)) {
    let Ok(rd) = std::fs::read_dir(dir) else { return };
    for e in rd.flatten() {
        let p = e.path();
        if p.is_dir() {
            walk(root, &p, f);
        } else if let Ok(rel) = p.strip_prefix(root) {
            f(&rel.to_string_lossy(), &p);
        }
    }
}

fn is_mountpoint(path: &Path) -> bool {
    let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") else { return false };
    let p = path.to_string_lossy();
    info.lines().any(|l| l.split(' ').nth(4) == Some(&p))
}

/// Sets up (or refreshes) every volume of the pod under `pod_dir/volumes`; returns them by
/// name. Safe to call again: existing emptyDirs and tmpfs mounts are kept, projected volumes
/// are rewritten only when their contents changed.
pub fn setup(pod_dir: &Path, pod: &Value, sources: &Sources, ctx: &PodContext, token: Option<&str>) -> Result<BTreeMap<String, HostVolume>, ConfigError> {
    let io = |what: &str, e: std::io::Error| ConfigError(format!("{what}: {e}"));
    let mut out = BTreeMap::new();
    for v in pod["spec"]["volumes"].as_array().into_iter().flatten() {
        let name = v["name"].as_str().unwrap_or("");
        if !valid_relative(name) || name.contains('/') {
            return Err(ConfigError(format!("invalid volume name {name:?}")));
        }
        let dir = pod_dir.join("volumes").join(name);
        if let Some(e) = v.get("emptyDir") {
            std::fs::create_dir_all(&dir).map_err(|e| io(&format!("creating emptyDir {name}"), e))?;
            if e["medium"].as_str() == Some("Memory") && !is_mountpoint(&dir) {
                let size = super::spec::units(&e["sizeLimit"]).filter(|s| *s > 0);
                let opts = match size {
                    Some(s) => format!("mode=0777,size={s}"),
                    None => "mode=0777".to_string(),
                };
                nix::mount::mount(Some("tmpfs"), &dir, Some("tmpfs"), nix::mount::MsFlags::MS_NOSUID | nix::mount::MsFlags::MS_NODEV, Some(opts.as_str()))
                    .map_err(|e| ConfigError(format!("mounting the memory emptyDir {name}: {e}")))?;
            } else {
                let _ = std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777));
            }
            out.insert(name.to_string(), HostVolume { path: dir, readonly: false });
        } else if let Some(h) = v.get("hostPath") {
            let path = PathBuf::from(h["path"].as_str().unwrap_or(""));
            if !path.is_absolute() {
                return Err(ConfigError(format!("hostPath volume {name}: path {:?} must be absolute", path)));
            }
            let ty = h["type"].as_str().unwrap_or("");
            let meta = std::fs::metadata(&path);
            let fail = |what: &str| Err(ConfigError(format!("hostPath type check failed: {} is not a {what}", path.display())));
            match ty {
                "DirectoryOrCreate" => {
                    if meta.is_err() {
                        std::fs::create_dir_all(&path).map_err(|e| io(&format!("creating {}", path.display()), e))?;
                        let _ = std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755));
                    } else if !meta.as_ref().map(|m| m.is_dir()).unwrap_or(false) {
                        return fail("directory");
                    }
                }
                "Directory" if !meta.as_ref().map(|m| m.is_dir()).unwrap_or(false) => return fail("directory"),
                "FileOrCreate" => {
                    if meta.is_err() {
                        if let Some(p) = path.parent() {
                            std::fs::create_dir_all(p).map_err(|e| io(&format!("creating {}", p.display()), e))?;
                        }
                        std::fs::OpenOptions::new().create(true).append(true).open(&path).map_err(|e| io(&format!("creating {}", path.display()), e))?;
                    } else if !meta.as_ref().map(|m| m.is_file()).unwrap_or(false) {
                        return fail("file");
                    }
                }
                "File" if !meta.as_ref().map(|m| m.is_file()).unwrap_or(false) => return fail("file"),
                "Socket" => {
                    use std::os::unix::fs::FileTypeExt;
                    if !meta.as_ref().map(|m| m.file_type().is_socket()).unwrap_or(false) {
                        return fail("socket");
                    }
                }
                "CharDevice" | "BlockDevice" => {
                    use std::os::unix::fs::FileTypeExt;
                    let ok = meta.as_ref().map(|m| if ty == "CharDevice" { m.file_type().is_char_device() } else { m.file_type().is_block_device() }).unwrap_or(false);
                    if !ok {
                        return fail(if ty == "CharDevice" { "character device" } else { "block device" });
                    }
                }
                _ => {}
            }
            out.insert(name.to_string(), HostVolume { path, readonly: false });
        } else if let Some(files) = projected_files(pod, v, sources, ctx, token)? {
            atomic_write(&dir, &files).map_err(|e| io(&format!("writing volume {name}"), e))?;
            out.insert(name.to_string(), HostVolume { path: dir, readonly: true });
        } else {
            let kind = v.as_object().and_then(|o| o.keys().find(|k| *k != "name").cloned()).unwrap_or_default();
            return Err(ConfigError(format!("volume {name}: volume type {kind:?} is not supported on this node")));
        }
    }
    Ok(out)
}

/// Re-writes the configMap / secret / downwardAPI / projected volumes whose sources changed.
/// Returns the names of the volumes that changed.
pub fn refresh(pod_dir: &Path, pod: &Value, sources: &Sources, ctx: &PodContext, token: Option<&str>) -> Vec<String> {
    let mut changed = Vec::new();
    for v in pod["spec"]["volumes"].as_array().into_iter().flatten() {
        let name = v["name"].as_str().unwrap_or("");
        if let Ok(Some(files)) = projected_files(pod, v, sources, ctx, token) {
            if let Ok(true) = atomic_write(&pod_dir.join("volumes").join(name), &files) {
                changed.push(name.to_string());
            }
        }
    }
    changed
}

/// The container's mounts for its volumeMounts (subPath inside the volume, readOnly).
pub fn mounts(container: &Value, volumes: &BTreeMap<String, HostVolume>) -> Result<Vec<MountSpec>, ConfigError> {
    let mut out = Vec::new();
    for m in container["volumeMounts"].as_array().into_iter().flatten() {
        let name = m["name"].as_str().unwrap_or("");
        let dest = m["mountPath"].as_str().unwrap_or("");
        let vol = volumes.get(name).ok_or_else(|| ConfigError(format!("volumeMount {name:?}: the pod has no volume of that name")))?;
        if !dest.starts_with('/') {
            return Err(ConfigError(format!("volumeMount {name:?}: mountPath {dest:?} must be absolute")));
        }
        let mut source = vol.path.clone();
        if let Some(sub) = m["subPath"].as_str().filter(|s| !s.is_empty()) {
            if !valid_relative(sub) {
                return Err(ConfigError(format!("volumeMount {name:?}: subPath {sub:?} must be a relative path without '..'")));
            }
            source = source.join(sub);
            if std::fs::symlink_metadata(&source).is_err() {
                std::fs::create_dir_all(&source).map_err(|e| ConfigError(format!("creating subPath {}: {e}", source.display())))?;
            }
            // A subPath must stay inside its volume even through symlinks.
            let real = std::fs::canonicalize(&source).map_err(|e| ConfigError(format!("subPath {sub}: {e}")))?;
            let base = std::fs::canonicalize(&vol.path).map_err(|e| ConfigError(format!("volume {name}: {e}")))?;
            if !real.starts_with(&base) {
                return Err(ConfigError(format!("subPath {sub:?} escapes volume {name:?}")));
            }
            source = real;
        }
        out.push(MountSpec {
            destination: dest.to_string(),
            source,
            kind: MountKind::Bind,
            readonly: vol.readonly || m["readOnly"].as_bool().unwrap_or(false),
        });
    }
    Ok(out)
}

/// The pod's /etc/hosts, /etc/hostname and /etc/resolv.conf under `pod_dir/etc`, and the
/// mounts that put them in a container (skipped where the container mounts its own).
pub fn pod_files(pod_dir: &Path, pod: &Value, pod_ip: &str, host_network: bool) -> std::io::Result<Vec<MountSpec>> {
    let etc = pod_dir.join("etc");
    std::fs::create_dir_all(&etc)?;
    let hostname = pod_hostname(pod);
    let mut hosts = String::from("# Kubernetes-managed hosts file.\n127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n");
    if !host_network && !pod_ip.is_empty() {
        let fqdn = match (pod["spec"]["subdomain"].as_str(), pod["metadata"]["namespace"].as_str()) {
            (Some(sub), Some(ns)) if !sub.is_empty() => format!("\t{hostname}.{sub}.{ns}.svc.cluster.local"),
            _ => String::new(),
        };
        hosts.push_str(&format!("{pod_ip}\t{hostname}{fqdn}\n"));
    }
    for h in pod["spec"]["hostAliases"].as_array().into_iter().flatten() {
        let names: Vec<&str> = h["hostnames"].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
        if let Some(ip) = h["ip"].as_str() {
            hosts.push_str(&format!("{ip}\t{}\n", names.join("\t")));
        }
    }
    let mut files = vec![("hosts", hosts.into_bytes()), ("hostname", format!("{hostname}\n").into_bytes())];
    let resolv = match &pod["spec"]["dnsConfig"] {
        Value::Object(c) => {
            let mut s = String::new();
            for ns in c.get("nameservers").and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_str) {
                s.push_str(&format!("nameserver {ns}\n"));
            }
            let search: Vec<&str> = c.get("searches").and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_str).collect();
            if !search.is_empty() {
                s.push_str(&format!("search {}\n", search.join(" ")));
            }
            if pod["spec"]["dnsPolicy"].as_str() != Some("None") {
                s.push_str(&std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default());
            }
            s.into_bytes()
        }
        _ => std::fs::read("/etc/resolv.conf").unwrap_or_default(),
    };
    files.push(("resolv.conf", resolv));
    let mut mounts = Vec::new();
    for (name, content) in files {
        let p = etc.join(name);
        let tmp = etc.join(format!(".{name}.tmp"));
        std::fs::write(&tmp, &content)?;
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o644))?;
        std::fs::rename(&tmp, &p)?;
        if host_network && name == "hostname" {
            continue;
        }
        mounts.push(MountSpec { destination: format!("/etc/{name}"), source: p, kind: MountKind::Bind, readonly: false });
    }
    Ok(mounts)
}

/// The pod's hostname: spec.hostname, else the pod name (truncated to 63 characters).
pub fn pod_hostname(pod: &Value) -> String {
    let h = pod["spec"]["hostname"].as_str().filter(|s| !s.is_empty()).or(pod["metadata"]["name"].as_str()).unwrap_or("pod");
    let h = &h[..h.len().min(63)];
    h.trim_end_matches(['-', '.']).to_string()
}

/// Unmounts the pod's memory emptyDirs and removes its volume directories (hostPath volumes
/// are the host's and stay). Idempotent.
pub fn teardown(pod_dir: &Path) -> std::io::Result<()> {
    let vols = pod_dir.join("volumes");
    if let Ok(rd) = std::fs::read_dir(&vols) {
        for e in rd.flatten() {
            let p = e.path();
            if is_mountpoint(&p) {
                nix::mount::umount2(&p, nix::mount::MntFlags::MNT_DETACH).map_err(std::io::Error::from)?;
            }
        }
    }
    match std::fs::remove_dir_all(&vols) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn read(dir: &Path, rel: &str) -> String {
        std::fs::read_to_string(dir.join(rel)).unwrap()
    }

    #[test]
    fn atomic_writer_swaps_data() {
        let d = tempfile::tempdir().unwrap();
        let dir = d.path().join("v");
        let mut files = Files::new();
        files.insert("a".into(), (b"1".to_vec(), 0o644));
        files.insert("sub/b".into(), (b"2".to_vec(), 0o600));
        assert!(atomic_write(&dir, &files).unwrap());
        assert_eq!(read(&dir, "a"), "1");
        assert_eq!(read(&dir, "sub/b"), "2");
        assert!(std::fs::symlink_metadata(dir.join("a")).unwrap().file_type().is_symlink());
        assert_eq!(std::fs::metadata(dir.join("sub/b")).unwrap().permissions().mode() & 0o777, 0o600);
        // Same contents: nothing to do.
        assert!(!atomic_write(&dir, &files).unwrap());
        // An update replaces values and removes names that went away.
        files.remove("sub/b");
        files.insert("a".into(), (b"changed".to_vec(), 0o644));
        assert!(atomic_write(&dir, &files).unwrap());
        assert_eq!(read(&dir, "a"), "changed");
        assert!(std::fs::symlink_metadata(dir.join("sub")).is_err());
        let data_dirs = std::fs::read_dir(&dir).unwrap().flatten().filter(|e| e.file_name().to_string_lossy().starts_with("..") && e.path().is_dir() && !e.file_type().unwrap().is_symlink()).count();
        assert_eq!(data_dirs, 1, "the old data directory is removed");
    }

    fn sources() -> Sources {
        let mut s = Sources::default();
        s.config_maps.insert("cfg".into(), BTreeMap::from([("app.conf".into(), b"x=1".to_vec()), ("other".into(), b"o".to_vec())]));
        s.secrets.insert("sec".into(), BTreeMap::from([("token".into(), b"t0k".to_vec())]));
        s
    }

    #[test]
    fn projected_kinds() {
        let pod = json!({"metadata": {"name": "p", "namespace": "ns", "labels": {"a": "b"}}, "spec": {"containers": [{"name": "c"}]}});
        let ctx = PodContext::default();
        let s = sources();
        let f = projected_files(&pod, &json!({"name": "v", "configMap": {"name": "cfg"}}), &s, &ctx, None).unwrap().unwrap();
        assert_eq!(f.keys().collect::<Vec<_>>(), vec!["app.conf", "other"]);
        let f = projected_files(&pod, &json!({"name": "v", "configMap": {"name": "cfg", "items": [{"key": "other", "path": "d/o.txt", "mode": 0o400}]}}), &s, &ctx, None).unwrap().unwrap();
        assert_eq!(f.get("d/o.txt"), Some(&(b"o".to_vec(), 0o400)));
        let f = projected_files(&pod, &json!({"name": "v", "secret": {"secretName": "sec", "defaultMode": 0o400}}), &s, &ctx, None).unwrap().unwrap();
        assert_eq!(f.get("token"), Some(&(b"t0k".to_vec(), 0o400)));
        assert!(projected_files(&pod, &json!({"name": "v", "secret": {"secretName": "nope"}}), &s, &ctx, None).is_err());
        assert!(projected_files(&pod, &json!({"name": "v", "secret": {"secretName": "nope", "optional": true}}), &s, &ctx, None).unwrap().unwrap().is_empty());
        let f = projected_files(&pod, &json!({"name": "v", "downwardAPI": {"items": [{"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}}]}}), &s, &ctx, None).unwrap().unwrap();
        assert_eq!(f["labels"].0, b"a=\"b\"");
        let f = projected_files(&pod, &json!({"name": "v", "projected": {"sources": [
            {"configMap": {"name": "cfg", "items": [{"key": "app.conf", "path": "app.conf"}]}},
            {"secret": {"name": "sec"}},
            {"serviceAccountToken": {"path": "sa-token"}},
        ]}}), &s, &ctx, Some("jwt")).unwrap().unwrap();
        assert_eq!(f.keys().collect::<Vec<_>>(), vec!["app.conf", "sa-token", "token"]);
        assert!(projected_files(&pod, &json!({"name": "v", "configMap": {"name": "cfg", "items": [{"key": "other", "path": "../escape"}]}}), &s, &ctx, None).is_err());
        assert_eq!(projected_files(&pod, &json!({"name": "v", "emptyDir": {}}), &s, &ctx, None).unwrap(), None);
    }

    #[test]
    fn setup_mounts_and_teardown() {
        let d = tempfile::tempdir().unwrap();
        let host = d.path().join("host-data");
        let pod = json!({"metadata": {"name": "p", "namespace": "ns"}, "spec": {
            "containers": [{"name": "c"}],
            "volumes": [
                {"name": "scratch", "emptyDir": {}},
                {"name": "conf", "configMap": {"name": "cfg"}},
                {"name": "data", "hostPath": {"path": host.to_str().unwrap(), "type": "DirectoryOrCreate"}},
            ],
        }});
        let pod_dir = d.path().join("pod");
        let vols = setup(&pod_dir, &pod, &sources(), &PodContext::default(), None).unwrap();
        assert!(host.is_dir());
        assert!(vols["conf"].readonly && !vols["scratch"].readonly);
        assert_eq!(read(&vols["conf"].path, "app.conf"), "x=1");
        let c = json!({"name": "c", "volumeMounts": [
            {"name": "scratch", "mountPath": "/tmp/s"},
            {"name": "data", "mountPath": "/data", "subPath": "sub", "readOnly": true},
            {"name": "conf", "mountPath": "/etc/app"},
        ]});
        let m = mounts(&c, &vols).unwrap();
        assert_eq!(m.len(), 3);
        assert!(m[1].readonly && m[1].source.ends_with("sub") && host.join("sub").is_dir());
        assert!(m[2].readonly);
        assert!(mounts(&json!({"volumeMounts": [{"name": "missing", "mountPath": "/x"}]}), &vols).is_err());
        assert!(mounts(&json!({"volumeMounts": [{"name": "data", "mountPath": "/x", "subPath": "../../etc"}]}), &vols).is_err());
        // An update of the ConfigMap propagates.
        let mut s = sources();
        s.config_maps.get_mut("cfg").unwrap().insert("app.conf".into(), b"x=2".to_vec());
        assert_eq!(refresh(&pod_dir, &pod, &s, &PodContext::default(), None), vec!["conf".to_string()]);
        assert_eq!(read(&vols["conf"].path, "app.conf"), "x=2");
        teardown(&pod_dir).unwrap();
        assert!(!pod_dir.join("volumes").exists());
        assert!(host.is_dir(), "hostPath data stays");
        teardown(&pod_dir).unwrap();
        // Type checks.
        let bad = json!({"spec": {"volumes": [{"name": "f", "hostPath": {"path": host.to_str().unwrap(), "type": "File"}}]}});
        assert!(setup(&pod_dir, &bad, &sources(), &PodContext::default(), None).unwrap_err().0.contains("is not a file"));
    }

    #[test]
    fn hosts_and_hostname_files() {
        let d = tempfile::tempdir().unwrap();
        let pod = json!({"metadata": {"name": "web-0", "namespace": "ns"}, "spec": {"subdomain": "web", "hostAliases": [{"ip": "10.1.2.3", "hostnames": ["foo", "bar"]}]}});
        let m = pod_files(d.path(), &pod, "10.42.0.7", false).unwrap();
        assert_eq!(m.iter().map(|m| m.destination.as_str()).collect::<Vec<_>>(), vec!["/etc/hosts", "/etc/hostname", "/etc/resolv.conf"]);
        let hosts = read(d.path(), "etc/hosts");
        assert!(hosts.contains("10.42.0.7\tweb-0\tweb-0.web.ns.svc.cluster.local"), "{hosts}");
        assert!(hosts.contains("10.1.2.3\tfoo\tbar"));
        assert_eq!(read(d.path(), "etc/hostname"), "web-0\n");
        assert_eq!(pod_hostname(&json!({"metadata": {"name": "x"}, "spec": {"hostname": "h"}})), "h");
    }
}
