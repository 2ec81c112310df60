//! `ImageStore`: the image records, pulls and pull policies.
//!
//! Everything under the root is written to `tmp/` first and renamed into place, so a crash (or
//! a second process sharing the directory) never sees a half blob, a half layer or a half record.
//! Within the process, work on one digest is serialized by a per-digest async lock: two pulls of
//! the same image download each blob and unpack each layer once, the second waits for the first.
//!
//! Garbage collection (gc.rs) runs concurrently with pulls: a pull pins every digest it is
//! about to use until its record is written, and gc never deletes a pinned digest.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Instant;

use futures::{StreamExt, TryStreamExt};
use serde::{Deserialize, Serialize};
use tracing::{debug, info, warn};

use super::manifest::{self, Descriptor, MAX_MANIFEST_BYTES, Manifest};
use super::registry::{Clients, Session};
use super::{Image, PullPolicy, Reference, RegistriesConfig, RegistryAuth, digest, unpack};
use crate::{Error, Result};

/// How many layers of one image are downloaded and unpacked at a time.
const PARALLEL_LAYERS: usize = 3;
/// An index pointing to an index pointing to ... is not something real images do.
const MAX_INDEX_DEPTH: usize = 2;
/// Longest record file name; longer references are stored under their hash.
const MAX_RECORD_NAME: usize = 200;

/// What `images/<escaped reference>` holds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Record {
    pub reference: String,
    /// The manifest (or index) digest the reference resolved to.
    pub digest: String,
    /// The config digest: the image id.
    pub id: String,
}

/// Per-digest async locks; entries go away when nobody holds them.
#[derive(Default)]
struct DigestLocks {
    map: Mutex<HashMap<String, Weak<tokio::sync::Mutex<()>>>>,
}

impl DigestLocks {
    async fn lock(&self, key: &str) -> tokio::sync::OwnedMutexGuard<()> {
        let m = {
            let mut map = lock(&self.map);
            if map.len() > 256 {
                map.retain(|_, w| w.strong_count() > 0);
            }
            match map.get(key).and_then(Weak::upgrade) {
                Some(m) => m,
                None => {
                    let m = Arc::new(tokio::sync::Mutex::new(()));
                    map.insert(key.to_string(), Arc::downgrade(&m));
                    m
                }
            }
        };
        m.lock_owned().await
    }
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Where blobs come from: a registry (pull) or an OCI layout on disk (import).
pub(crate) enum Source<'a> {
    Registry { session: &'a Session, endpoint: usize },
    /// `owned`: the layout is our own extracted copy, so its blobs may be moved, not copied.
    Layout { dir: &'a Path, owned: bool },
}

/// Digests in use by an unfinished pull or import; gc leaves them alone.
pub(crate) struct Pins<'a> {
    store: &'a ImageStore,
    keys: Vec<String>,
}

impl Pins<'_> {
    pub(crate) fn add(&mut self, digest: &str) {
        *lock(&self.store.pins).entry(digest.to_string()).or_insert(0) += 1;
        self.keys.push(digest.to_string());
    }
}

impl Drop for Pins<'_> {
    fn drop(&mut self) {
        let mut pins = lock(&self.store.pins);
        for k in self.keys.drain(..) {
            if let Some(n) = pins.get_mut(&k) {
                *n -= 1;
                if *n == 0 {
                    pins.remove(&k);
                }
            }
        }
    }
}

/// The local image store (see the module docs of `image` for the layout).
pub struct ImageStore {
    root: PathBuf,
    registries: RegistriesConfig,
    clients: Clients,
    locks: DigestLocks,
    pub(crate) pins: Mutex<HashMap<String, usize>>,
    /// Serializes record writes against gc's record removal.
    pub(crate) records_lock: Mutex<()>,
}

static TMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// `docker.io/library/busybox:latest` → `docker.io%2Flibrary%2Fbusybox%3Alatest`.
pub(crate) fn escape_reference(reference: &str) -> String {
    let mut s = String::with_capacity(reference.len() + 16);
    for b in reference.bytes() {
        if b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-' {
            s.push(b as char);
        } else {
            s.push_str(&format!("%{b:02X}"));
        }
    }
    if s.len() > MAX_RECORD_NAME || s.starts_with('.') {
        // Still unique; the record inside names the reference.
        return format!("sha256-{}", &digest::of(reference.as_bytes())["sha256:".len()..]);
    }
    s
}

impl ImageStore {
    /// Opens (creating if needed) the store at `root`, removing the partial downloads and
    /// unpacks that exited processes left in `tmp/`. Several processes may share a root.
    pub fn open(root: &Path, registries: RegistriesConfig) -> Result<ImageStore> {
        std::fs::create_dir_all(root).map_err(|e| Error::io(format!("creating image store {}", root.display()), e))?;
        let root = root.canonicalize().map_err(|e| Error::io(format!("resolving image store {}", root.display()), e))?;
        for d in ["blobs/sha256", "layers", "images", "tmp"] {
            let p = root.join(d);
            std::fs::create_dir_all(&p).map_err(|e| Error::io(format!("creating {}", p.display()), e))?;
        }
        let tmp = root.join("tmp");
        let entries = std::fs::read_dir(&tmp).map_err(|e| Error::io(format!("listing {}", tmp.display()), e))?;
        let mut removed = 0;
        for entry in entries.flatten() {
            let p = entry.path();
            // `rkube images import` may open the store while the agent pulls into it: only the
            // leftovers of processes that are gone are removed.
            if tmp_owner(&entry.file_name().to_string_lossy()).is_some_and(process_alive) {
                continue;
            }
            let r = match entry.file_type() {
                Ok(t) if t.is_dir() => std::fs::remove_dir_all(&p),
                _ => std::fs::remove_file(&p),
            };
            match r {
                Ok(()) => removed += 1,
                Err(e) => warn!(path = %p.display(), "cannot remove leftover: {e}"),
            }
        }
        if removed > 0 {
            info!(root = %root.display(), removed, "removed partial downloads left by a previous run");
        }
        Ok(ImageStore {
            root,
            registries,
            clients: Clients::default(),
            locks: DigestLocks::default(),
            pins: Mutex::new(HashMap::new()),
            records_lock: Mutex::new(()),
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub(crate) fn blobs_dir(&self) -> PathBuf {
        self.root.join("blobs/sha256")
    }

    pub(crate) fn layers_dir(&self) -> PathBuf {
        self.root.join("layers")
    }

    pub(crate) fn images_dir(&self) -> PathBuf {
        self.root.join("images")
    }

    pub(crate) fn blob_path(&self, digest: &str) -> Result<PathBuf> {
        Ok(self.blobs_dir().join(digest::checked(digest)?))
    }

    pub(crate) fn layer_path(&self, diff_id: &str) -> Result<PathBuf> {
        Ok(self.layers_dir().join(digest::checked(diff_id)?))
    }

    /// A fresh name under tmp/ (unique across processes and within this one).
    pub(crate) fn tmp_path(&self, kind: &str) -> PathBuf {
        let n = TMP_COUNTER.fetch_add(1, Ordering::Relaxed);
        self.root.join("tmp").join(format!("{kind}-{}-{n}", std::process::id()))
    }

    pub(crate) fn pins(&self) -> Pins<'_> {
        Pins { store: self, keys: Vec::new() }
    }

    // ---- records ----

    fn record_path(&self, reference: &str) -> PathBuf {
        self.images_dir().join(escape_reference(reference))
    }

    pub(crate) fn read_record_file(&self, path: &Path) -> Option<Record> {
        let bytes = match std::fs::read(path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
            Err(e) => {
                warn!(path = %path.display(), "cannot read image record: {e}");
                return None;
            }
        };
        match serde_json::from_slice::<Record>(&bytes) {
            Ok(r) => Some(r),
            Err(e) => {
                warn!(path = %path.display(), "ignoring a corrupt image record: {e}");
                None
            }
        }
    }

    /// Every record with the path it is stored at.
    pub(crate) fn records(&self) -> Result<Vec<(PathBuf, Record)>> {
        let dir = self.images_dir();
        let mut out = Vec::new();
        for entry in std::fs::read_dir(&dir).map_err(|e| Error::io(format!("listing {}", dir.display()), e))? {
            let entry = entry.map_err(|e| Error::io(format!("listing {}", dir.display()), e))?;
            let path = entry.path();
            if entry.file_name().to_string_lossy().starts_with('.') {
                continue;
            }
            if let Some(r) = self.read_record_file(&path) {
                out.push((path, r));
            }
        }
        out.sort_by(|a, b| a.1.reference.cmp(&b.1.reference));
        Ok(out)
    }

    fn write_record(&self, rec: &Record) -> Result<()> {
        let json = serde_json::to_vec_pretty(rec).expect("a record serializes");
        let tmp = self.tmp_path("record");
        let path = self.record_path(&rec.reference);
        let _g = lock(&self.records_lock);
        write_synced(&tmp, &json)?;
        std::fs::rename(&tmp, &path).map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            Error::io(format!("storing image record {}", path.display()), e)
        })
    }

    // ---- reading images back ----

    /// A small blob (manifest, index, config) from the store; `None` when absent.
    pub(crate) fn read_small_blob(&self, digest: &str) -> Result<Option<Vec<u8>>> {
        let path = self.blob_path(digest)?;
        let meta = match std::fs::metadata(&path) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::io(format!("reading blob {digest}"), e)),
        };
        if meta.len() > MAX_MANIFEST_BYTES {
            return Err(Error::Image(format!("blob {digest} is {} bytes: too large for a manifest or config", meta.len())));
        }
        std::fs::read(&path).map(Some).map_err(|e| Error::io(format!("reading blob {digest}"), e))
    }

    /// The image manifest a record's digest leads to (through indexes), from the store.
    /// `None` when a blob on the way is missing.
    pub(crate) fn resolve_stored(&self, top: &str, what: &str) -> Result<Option<(Descriptor, Vec<Descriptor>)>> {
        let mut digest = top.to_string();
        let mut media_type: Option<String> = None;
        for _ in 0..=MAX_INDEX_DEPTH {
            let Some(bytes) = self.read_small_blob(&digest)? else { return Ok(None) };
            match manifest::parse(&bytes, media_type.as_deref(), what)? {
                Manifest::Image { config, layers } => return Ok(Some((config, layers))),
                Manifest::Index(list) => {
                    let chosen = manifest::select_platform(&list, what)?;
                    digest = chosen.digest.clone();
                    media_type = chosen.media_type.clone();
                }
            }
        }
        Err(Error::Image(format!("{what}: indexes nested more than {MAX_INDEX_DEPTH} deep")))
    }

    /// The full image for a record, or `None` when a blob or layer it needs is missing (the
    /// image then counts as absent and is pulled again).
    pub(crate) fn load(&self, rec: &Record) -> Result<Option<Image>> {
        let what = &rec.reference;
        let Some((config_desc, layer_descs)) = self.resolve_stored(&rec.digest, what)? else {
            debug!(image = %what, "manifest blob missing; treating the image as absent");
            return Ok(None);
        };
        if config_desc.digest != rec.id {
            warn!(image = %what, record = %rec.id, manifest = %config_desc.digest, "image record does not match its manifest; treating it as absent");
            return Ok(None);
        }
        let Some(config_bytes) = self.read_small_blob(&config_desc.digest)? else {
            debug!(image = %what, "config blob missing; treating the image as absent");
            return Ok(None);
        };
        let (config, diff_ids) = manifest::parse_config(&config_bytes, what)?;
        let mut layers = Vec::with_capacity(diff_ids.len());
        for d in &diff_ids {
            let p = self.layer_path(d)?;
            if !p.is_dir() {
                debug!(image = %what, layer = %d, "layer missing; treating the image as absent");
                return Ok(None);
            }
            layers.push(p);
        }
        let size = layer_descs.iter().map(|l| l.size.unwrap_or(0)).sum();
        Ok(Some(Image { reference: rec.reference.clone(), id: rec.id.clone(), digest: rec.digest.clone(), layers, config, size }))
    }

    /// The image for a reference (`busybox`, `repo@sha256:...`) or an image id (`sha256:...`),
    /// if it is complete in the store.
    pub fn get(&self, reference: &str) -> Result<Option<Image>> {
        if digest::hex(reference).is_ok() {
            for (_, rec) in self.records()? {
                if rec.id == reference
                    && let Some(img) = self.load(&rec)?
                {
                    return Ok(Some(img));
                }
            }
            return Ok(None);
        }
        let r = Reference::parse(reference)?;
        let normalized = r.to_string_normalized();
        if let Some(rec) = self.read_record_file(&self.record_path(&normalized))
            && let Some(img) = self.load(&rec)?
        {
            return Ok(Some(img));
        }
        // `name@digest` is present when any tag of that name resolved to that digest.
        if let Some(d) = &r.digest {
            let name = r.name();
            for (_, rec) in self.records()? {
                let Ok(rr) = Reference::parse(&rec.reference) else { continue };
                if rec.digest == *d
                    && rr.name() == name
                    && let Some(img) = self.load(&rec)?
                {
                    return Ok(Some(img));
                }
            }
        }
        Ok(None)
    }

    /// Every complete image, by reference.
    pub fn list(&self) -> Result<Vec<Image>> {
        let mut out = Vec::new();
        for (_, rec) in self.records()? {
            match self.load(&rec) {
                Ok(Some(img)) => out.push(img),
                Ok(None) => {}
                Err(e) => warn!(image = %rec.reference, "skipping unreadable image: {e}"),
            }
        }
        Ok(out)
    }

    /// Forgets an image (by reference, or every reference of an image id). Its blobs and
    /// layers stay until `gc` finds nothing else uses them. Returns whether anything was removed.
    pub fn remove(&self, reference: &str) -> Result<bool> {
        let paths: Vec<PathBuf> = if digest::hex(reference).is_ok() {
            self.records()?.into_iter().filter(|(_, r)| r.id == reference).map(|(p, _)| p).collect()
        } else {
            let normalized = Reference::parse(reference)?.to_string_normalized();
            vec![self.record_path(&normalized)]
        };
        let _g = lock(&self.records_lock);
        let mut removed = false;
        for p in paths {
            match std::fs::remove_file(&p) {
                Ok(()) => removed = true,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(Error::io(format!("removing image record {}", p.display()), e)),
            }
        }
        Ok(removed)
    }

    // ---- pulling ----

    /// The image, pulled or not as `policy` says (the kubelet's imagePullPolicy semantics).
    pub async fn ensure(&self, reference: &str, policy: PullPolicy, auths: &[RegistryAuth]) -> Result<Image> {
        let r = Reference::parse(reference)?;
        let present = self.get(reference)?;
        match (policy, present) {
            (PullPolicy::Never, Some(img)) | (PullPolicy::IfNotPresent, Some(img)) => Ok(img),
            (PullPolicy::Never, None) => Err(Error::ImageNotPresent(r.to_string_normalized())),
            (PullPolicy::IfNotPresent, None) | (PullPolicy::Always, None) => self.pull(reference, auths).await,
            (PullPolicy::Always, Some(img)) => {
                // A digest names immutable content: nothing newer can exist.
                if r.digest.is_some() {
                    return Ok(img);
                }
                let session = Session::new(&self.clients, &self.registries, &r, auths)?;
                let tag = r.manifest_ref().to_string();
                if session.head_digest(&tag).await.as_deref() == Some(img.digest.as_str()) {
                    debug!(image = %img.reference, digest = %img.digest, "image is up to date");
                    return Ok(img);
                }
                self.pull(reference, auths).await
            }
        }
    }

    /// Pulls an image: the manifest (an index resolved to linux/<this arch>), its config and
    /// layers, each blob verified by digest and each layer unpacked once; then records it.
    pub async fn pull(&self, reference: &str, auths: &[RegistryAuth]) -> Result<Image> {
        let r = Reference::parse(reference)?;
        let what = r.to_string_normalized();
        let started = Instant::now();
        info!(image = %what, "pulling image");
        let session = Session::new(&self.clients, &self.registries, &r, auths)?;
        let mut pins = self.pins();
        let top = session.manifest(r.manifest_ref(), 0).await?;
        let top_digest = digest::of(&top.bytes);
        if let Some(d) = &r.digest
            && *d != top_digest
        {
            return Err(Error::Registry(format!(
                "pulling {what}: the registry returned a manifest whose digest is {top_digest}, not the requested {d}"
            )));
        }
        pins.add(&top_digest);
        self.store_small_blob(&top_digest, &top.bytes).await?;
        let source = Source::Registry { session: &session, endpoint: top.endpoint };
        let img = self.assemble(&source, what.clone(), top_digest, top.content_type, &mut pins).await?;
        info!(image = %what, digest = %img.digest, layers = img.layers.len(), bytes = img.size, elapsed = ?started.elapsed(), "pulled image");
        Ok(img)
    }

    /// From a stored top-level manifest or index: resolves the platform, fetches the config
    /// and layers from `source`, unpacks the layers and writes the record for `reference`.
    pub(crate) async fn assemble(
        &self,
        source: &Source<'_>,
        reference: String,
        top_digest: String,
        top_media_type: Option<String>,
        pins: &mut Pins<'_>,
    ) -> Result<Image> {
        let what = reference.as_str();
        let mut digest = top_digest.clone();
        let mut media_type = top_media_type;
        let mut depth = 0;
        let (config_desc, layer_descs) = loop {
            let bytes = self
                .read_small_blob(&digest)?
                .ok_or_else(|| Error::Image(format!("{what}: manifest {digest} vanished from the store")))?;
            match manifest::parse(&bytes, media_type.as_deref(), what)? {
                Manifest::Image { config, layers } => break (config, layers),
                Manifest::Index(list) => {
                    depth += 1;
                    if depth > MAX_INDEX_DEPTH {
                        return Err(Error::Image(format!("{what}: indexes nested more than {MAX_INDEX_DEPTH} deep")));
                    }
                    let chosen = manifest::select_platform(&list, what)?.clone();
                    debug!(image = %what, manifest = %chosen.digest, "index resolved for this platform");
                    pins.add(&chosen.digest);
                    self.ensure_manifest(source, &chosen, what).await?;
                    digest = chosen.digest;
                    media_type = chosen.media_type;
                }
            }
        };

        pins.add(&config_desc.digest);
        if config_desc.size.is_some_and(|s| s > MAX_MANIFEST_BYTES) {
            return Err(Error::Image(format!("{what}: config {} is larger than {MAX_MANIFEST_BYTES} bytes", config_desc.digest)));
        }
        self.ensure_blob(source, &config_desc.digest, config_desc.size, what).await?;
        let config_bytes = self
            .read_small_blob(&config_desc.digest)?
            .ok_or_else(|| Error::Image(format!("{what}: config {} vanished from the store", config_desc.digest)))?;
        let (config, diff_ids) = manifest::parse_config(&config_bytes, what)?;
        if diff_ids.len() != layer_descs.len() {
            return Err(Error::Image(format!(
                "{what}: the manifest has {} layers but the config lists {} diff ids",
                layer_descs.len(),
                diff_ids.len()
            )));
        }
        for (l, d) in layer_descs.iter().zip(&diff_ids) {
            pins.add(&l.digest);
            pins.add(d);
        }
        let total = layer_descs.len();
        // The futures come from an async fn, not a closure: a closure here makes the pull
        // future's Send-ness unprovable (rustc's "FnOnce is not general enough"), and the
        // agent spawns pulls.
        let mut jobs = Vec::with_capacity(total);
        for (i, (l, d)) in layer_descs.iter().zip(&diff_ids).enumerate() {
            jobs.push(self.fetch_layer(source, i, total, l, d, what));
        }
        let layers: Vec<(usize, PathBuf)> =
            futures::stream::iter(jobs).buffer_unordered(PARALLEL_LAYERS).try_collect().await?;
        let mut layers = layers;
        layers.sort_by_key(|(i, _)| *i);
        let layers: Vec<PathBuf> = layers.into_iter().map(|(_, p)| p).collect();

        let rec = Record { reference: reference.clone(), digest: top_digest.clone(), id: config_desc.digest.clone() };
        self.write_record(&rec)?;
        let size = layer_descs.iter().map(|l| l.size.unwrap_or(0)).sum();
        Ok(Image { reference, id: config_desc.digest, digest: top_digest, layers, config, size })
    }

    /// One layer: its blob in the store, then unpacked; returns its index and directory.
    async fn fetch_layer(
        &self,
        source: &Source<'_>,
        i: usize,
        total: usize,
        layer: &Descriptor,
        diff_id: &str,
        what: &str,
    ) -> Result<(usize, PathBuf)> {
        let t = Instant::now();
        let bytes = self.ensure_blob(source, &layer.digest, layer.size, what).await?;
        let path = self.ensure_layer(&layer.digest, layer.media_type.as_deref(), diff_id, what).await?;
        info!(image = %what, layer = i + 1, of = total, digest = %layer.digest, bytes, elapsed = ?t.elapsed(), "layer ready");
        Ok((i, path))
    }

    /// Stores bytes already in memory (a manifest) under their digest.
    pub(crate) async fn store_small_blob(&self, digest: &str, bytes: &[u8]) -> Result<()> {
        let dest = self.blob_path(digest)?;
        if digest::of(bytes) != digest {
            return Err(Error::Image(format!("blob content does not match its digest {digest}")));
        }
        let _g = self.locks.lock(digest).await;
        if dest.exists() {
            return Ok(());
        }
        let tmp = self.tmp_path("blob");
        write_synced(&tmp, bytes)?;
        std::fs::rename(&tmp, &dest).map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            Error::io(format!("storing blob {}", dest.display()), e)
        })
    }

    /// Makes sure the manifest `desc` names is in the store.
    async fn ensure_manifest(&self, source: &Source<'_>, desc: &Descriptor, what: &str) -> Result<()> {
        if desc.size.is_some_and(|s| s > MAX_MANIFEST_BYTES) {
            return Err(Error::Image(format!("{what}: manifest {} is larger than {MAX_MANIFEST_BYTES} bytes", desc.digest)));
        }
        if self.blob_path(&desc.digest)?.exists() {
            return Ok(());
        }
        match source {
            Source::Registry { session, endpoint } => {
                let fetched = session.manifest(&desc.digest, *endpoint).await?;
                let got = digest::of(&fetched.bytes);
                if got != desc.digest {
                    return Err(Error::Registry(format!(
                        "pulling {what}: manifest {} from the registry hashes to {got}",
                        desc.digest
                    )));
                }
                self.store_small_blob(&desc.digest, &fetched.bytes).await
            }
            Source::Layout { .. } => self.ensure_blob(source, &desc.digest, desc.size, what).await.map(|_| ()),
        }
    }

    /// Makes sure a blob is in the store, fetching it from `source`; returns its size.
    pub(crate) async fn ensure_blob(&self, source: &Source<'_>, digest: &str, size: Option<u64>, what: &str) -> Result<u64> {
        let dest = self.blob_path(digest)?;
        let _g = self.locks.lock(digest).await;
        match tokio::fs::metadata(&dest).await {
            Ok(m) if size.is_none_or(|s| s == m.len()) => return Ok(m.len()),
            Ok(m) => {
                warn!(blob = %digest, have = m.len(), want = ?size, "stored blob has the wrong size; fetching it again");
                let _ = tokio::fs::remove_file(&dest).await;
            }
            Err(_) => {}
        }
        let tmp = self.tmp_path("blob");
        match source {
            Source::Registry { session, endpoint } => {
                debug!(image = %what, blob = %digest, size = ?size, "downloading blob");
                session.blob(digest, size, &tmp, &dest, *endpoint).await
            }
            Source::Layout { dir, owned } => {
                let src = dir.join("blobs/sha256").join(digest::checked(digest)?);
                let (d, owned, label) = (digest.to_string(), *owned, what.to_string());
                tokio::task::spawn_blocking(move || copy_verified(&src, &tmp, &dest, &d, size, owned, &label))
                    .await
                    .map_err(|e| Error::Image(format!("{what}: blob copy task failed: {e}")))?
            }
        }
    }

    /// Makes sure the layer with this diff id is unpacked, from the stored blob `blob`.
    pub(crate) async fn ensure_layer(&self, blob: &str, media_type: Option<&str>, diff_id: &str, what: &str) -> Result<PathBuf> {
        let dest = self.layer_path(diff_id)?;
        let _g = self.locks.lock(&format!("layer:{diff_id}")).await;
        if dest.is_dir() {
            return Ok(dest);
        }
        let blob_path = self.blob_path(blob)?;
        let tmp = self.tmp_path("layer");
        let media_type = media_type.map(str::to_string);
        let (diff_id, label, dest2) = (diff_id.to_string(), format!("{blob} of {what}"), dest.clone());
        tokio::task::spawn_blocking(move || unpack_into_place(&blob_path, media_type.as_deref(), &tmp, &dest2, &diff_id, &label))
            .await
            .map_err(|e| Error::Image(format!("{what}: unpack task failed: {e}")))??;
        Ok(dest)
    }
}

/// The pid in a tmp/ name (`<kind>-<pid>-<n>`).
fn tmp_owner(name: &str) -> Option<i32> {
    let mut parts = name.rsplitn(3, '-');
    let _n = parts.next()?;
    parts.next()?.parse().ok()
}

fn process_alive(pid: i32) -> bool {
    if pid <= 0 {
        return false;
    }
    // SAFETY: signal 0 only checks that the process exists.
    let r = unsafe { libc::kill(pid, 0) };
    r == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

fn write_synced(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(|e| Error::io(format!("creating {}", path.display()), e))?;
    f.write_all(bytes).map_err(|e| Error::io(format!("writing {}", path.display()), e))?;
    f.sync_all().map_err(|e| Error::io(format!("syncing {}", path.display()), e))
}

/// Hashes `src` (checking digest and size) and puts it at `dest`: by rename when `owned`,
/// else through a copy at `tmp`.
fn copy_verified(src: &Path, tmp: &Path, dest: &Path, digest: &str, size: Option<u64>, owned: bool, what: &str) -> Result<u64> {
    use sha2::Digest as _;
    let mut input = std::fs::File::open(src).map_err(|e| Error::io(format!("{what}: opening blob {}", src.display()), e))?;
    let mut out = if owned {
        None
    } else {
        Some(
            std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(tmp)
                .map_err(|e| Error::io(format!("creating {}", tmp.display()), e))?,
        )
    };
    let result = (|| {
        let mut hasher = sha2::Sha256::new();
        let mut buf = vec![0u8; 256 << 10];
        let mut n: u64 = 0;
        loop {
            let k = std::io::Read::read(&mut input, &mut buf).map_err(|e| Error::io(format!("reading {}", src.display()), e))?;
            if k == 0 {
                break;
            }
            n += k as u64;
            hasher.update(&buf[..k]);
            if let Some(o) = out.as_mut() {
                o.write_all(&buf[..k]).map_err(|e| Error::io(format!("writing {}", tmp.display()), e))?;
            }
        }
        if let Some(s) = size
            && s != n
        {
            return Err(Error::Image(format!("{what}: blob {digest} has {n} bytes, its descriptor says {s}")));
        }
        let got = digest::finish(hasher);
        if got != digest {
            return Err(Error::Image(format!("{what}: blob {digest} in the archive hashes to {got}")));
        }
        if let Some(o) = out.as_mut() {
            o.sync_all().map_err(|e| Error::io(format!("syncing {}", tmp.display()), e))?;
        }
        Ok(n)
    })();
    let n = match result {
        Ok(n) => n,
        Err(e) => {
            if !owned {
                let _ = std::fs::remove_file(tmp);
            }
            return Err(e);
        }
    };
    let from = if owned { src } else { tmp };
    std::fs::rename(from, dest).map_err(|e| {
        if !owned {
            let _ = std::fs::remove_file(tmp);
        }
        Error::io(format!("storing blob {}", dest.display()), e)
    })?;
    Ok(n)
}

/// Unpacks into `tmp`, checks the diff id, flushes, and renames to `dest` — a layer directory
/// exists complete or not at all.
fn unpack_into_place(blob: &Path, media_type: Option<&str>, tmp: &Path, dest: &Path, diff_id: &str, what: &str) -> Result<()> {
    let result = (|| {
        let u = unpack::unpack_layer(blob, media_type, tmp, what)?;
        if u.diff_id != diff_id {
            return Err(Error::Image(format!(
                "layer {what}: uncompressed content hashes to {}, the image config says {diff_id}",
                u.diff_id
            )));
        }
        debug!(layer = %what, entries = u.entries, bytes = u.uncompressed_bytes, "layer unpacked");
        sync_filesystem(tmp)?;
        Ok(())
    })();
    if let Err(e) = result {
        let _ = std::fs::remove_dir_all(tmp);
        return Err(e);
    }
    match std::fs::rename(tmp, dest) {
        Ok(()) => Ok(()),
        // Another process unpacked the same layer first: same content, keep theirs.
        Err(e) if dest.is_dir() => {
            debug!(layer = %what, "layer appeared concurrently ({e}); discarding our copy");
            let _ = std::fs::remove_dir_all(tmp);
            Ok(())
        }
        Err(e) => {
            let _ = std::fs::remove_dir_all(tmp);
            Err(Error::io(format!("moving unpacked layer into {}", dest.display()), e))
        }
    }
}

/// One syncfs for the whole unpacked tree, rather than an fsync per file.
fn sync_filesystem(path: &Path) -> Result<()> {
    use std::os::fd::AsRawFd;
    let dir = std::fs::File::open(path).map_err(|e| Error::io(format!("opening {}", path.display()), e))?;
    // SAFETY: the fd is valid for the lifetime of `dir`.
    if unsafe { libc::syncfs(dir.as_raw_fd()) } != 0 {
        return Err(Error::io(format!("syncing {}", path.display()), std::io::Error::last_os_error()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_references() {
        assert_eq!(escape_reference("docker.io/library/busybox:latest"), "docker.io%2Flibrary%2Fbusybox%3Alatest");
        let d = format!("127.0.0.1:5000/a/b@sha256:{}", "0".repeat(64));
        assert_eq!(escape_reference(&d), format!("127.0.0.1%3A5000%2Fa%2Fb%40sha256%3A{}", "0".repeat(64)));
        let long = format!("r.io/{}:{}", "a".repeat(200), "t".repeat(100));
        let e = escape_reference(&long);
        assert!(e.starts_with("sha256-") && e.len() < MAX_RECORD_NAME, "{e}");
        assert_ne!(escape_reference("a/b"), escape_reference("a:b"));
    }

    #[tokio::test]
    async fn open_creates_layout_and_clears_tmp() {
        let dir = tempfile::tempdir().unwrap();
        let s = ImageStore::open(dir.path(), RegistriesConfig::default()).unwrap();
        for d in ["blobs/sha256", "layers", "images", "tmp"] {
            assert!(s.root().join(d).is_dir(), "{d}");
        }
        std::fs::write(s.root().join("tmp/blob-partial"), b"x").unwrap();
        // pid 0x7fff_fff0 does not exist: a dead process's unpack.
        std::fs::create_dir_all(s.root().join("tmp/layer-2147483632-7/usr")).unwrap();
        // Ours: another store of this process may still be writing it.
        let live = s.tmp_path("blob");
        std::fs::write(&live, b"in flight").unwrap();
        drop(s);
        let s = ImageStore::open(dir.path(), RegistriesConfig::default()).unwrap();
        let left: Vec<PathBuf> = std::fs::read_dir(s.root().join("tmp")).unwrap().map(|e| e.unwrap().path()).collect();
        assert_eq!(left, vec![live], "only the live process's file stays");
        assert!(s.list().unwrap().is_empty());
        assert_eq!(s.get("busybox").unwrap(), None);
        let e = s.ensure("busybox", PullPolicy::Never, &[]).await.unwrap_err().to_string();
        assert!(e.contains("docker.io/library/busybox:latest") && e.contains("Never"), "{e}");
        assert!(!s.remove("busybox").unwrap());
    }

    #[test]
    fn tmp_names() {
        assert_eq!(tmp_owner("blob-123-4"), Some(123));
        assert_eq!(tmp_owner("import-1-0"), Some(1));
        assert_eq!(tmp_owner("junk"), None);
        assert!(process_alive(std::process::id() as i32));
        assert!(!process_alive(0x7fff_fff0));
    }

    #[test]
    fn failed_unpack_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let s = ImageStore::open(dir.path(), RegistriesConfig::default()).unwrap();
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_path("f").unwrap();
        h.set_size(1);
        h.set_mode(0o644);
        h.set_cksum();
        b.append(&h, &b"x"[..]).unwrap();
        let tar = b.into_inner().unwrap();
        let blob = s.blob_path(&digest::of(&tar)).unwrap();
        std::fs::write(&blob, &tar).unwrap();
        let wrong = format!("sha256:{}", "1".repeat(64));
        let dest = s.layer_path(&wrong).unwrap();
        let tmp = s.tmp_path("layer");
        let e = unpack_into_place(&blob, None, &tmp, &dest, &wrong, "l").unwrap_err().to_string();
        assert!(e.contains("the image config says"), "{e}");
        assert!(!dest.exists() && !tmp.exists());
        let right = digest::of(&tar);
        let dest = s.layer_path(&right).unwrap();
        unpack_into_place(&blob, None, &tmp, &dest, &right, "l").unwrap();
        assert_eq!(std::fs::read(dest.join("f")).unwrap(), b"x");
        assert!(!tmp.exists());
        // A second copy (another process won the race) is discarded, the first one kept.
        let tmp2 = s.tmp_path("layer");
        unpack_into_place(&blob, None, &tmp2, &dest, &right, "l").unwrap();
        assert!(!tmp2.exists() && dest.join("f").is_file());
    }

    #[test]
    fn copies_are_verified() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("src");
        std::fs::write(&src, b"content").unwrap();
        let (tmp, dest) = (dir.path().join("tmp"), dir.path().join("dest"));
        let good = digest::of(b"content");
        let bad = digest::of(b"other");
        let e = copy_verified(&src, &tmp, &dest, &bad, None, false, "x").unwrap_err().to_string();
        assert!(e.contains("hashes to") && e.contains(&good), "{e}");
        let e = copy_verified(&src, &tmp, &dest, &good, Some(3), false, "x").unwrap_err().to_string();
        assert!(e.contains("3"), "{e}");
        assert!(!tmp.exists() && !dest.exists());
        assert_eq!(copy_verified(&src, &tmp, &dest, &good, Some(7), false, "x").unwrap(), 7);
        assert!(src.exists() && dest.exists() && !tmp.exists());
        std::fs::remove_file(&dest).unwrap();
        copy_verified(&src, &tmp, &dest, &good, None, true, "x").unwrap();
        assert!(!src.exists() && dest.exists(), "owned: moved, not copied");
    }

    #[tokio::test]
    async fn digest_locks_serialize() {
        let locks = Arc::new(DigestLocks::default());
        let g = locks.lock("a").await;
        let l2 = locks.clone();
        let other = tokio::spawn(async move { l2.lock("b").await; });
        other.await.unwrap();
        let l3 = locks.clone();
        let waiter = tokio::spawn(async move {
            let _g = l3.lock("a").await;
        });
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        assert!(!waiter.is_finished(), "a second holder of the same digest waits");
        drop(g);
        waiter.await.unwrap();
    }
}
