//! Garbage collection: images no container uses are forgotten, then every blob and layer no
//! remaining image reaches is deleted.
//!
//! Safe against concurrent pulls and imports: they pin each digest before they look for it in
//! the store, and gc decides "unreferenced" and moves a blob or layer out of the way while
//! holding the pin table's lock, re-checking the pin at that moment. Deletion itself happens
//! after the move (a rename into tmp/), outside the lock.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use tracing::{debug, info, warn};

use super::manifest::{self, Manifest};
use super::store::{ImageStore, Record, lock};
use super::{GcReport, Reference, digest};
use crate::{Error, Result};

/// The strings under which a record may be named as in use: its id, reference, digest, and
/// what a reference normalizes to.
fn in_use_keys(in_use: &HashSet<String>) -> HashSet<String> {
    let mut keys = HashSet::new();
    for s in in_use {
        keys.insert(s.clone());
        if digest::hex(s).is_ok() {
            continue;
        }
        if let Some(hex) = s.strip_prefix("sha256:") {
            keys.insert(hex.to_string());
        }
        if let Ok(r) = Reference::parse(s) {
            keys.insert(r.to_string_normalized());
            if let Some(d) = &r.digest {
                // `repo@sha256:...` (the kubelet's imageID form) names the manifest digest.
                keys.insert(d.clone());
            }
        }
    }
    keys
}

fn record_in_use(rec: &Record, keys: &HashSet<String>) -> bool {
    keys.contains(&rec.id)
        || keys.contains(&rec.reference)
        || keys.contains(&rec.digest)
        || rec.id.strip_prefix("sha256:").is_some_and(|h| keys.contains(h))
}

/// Total bytes of the files under `path` (not following symlinks).
fn tree_size(path: &Path) -> u64 {
    let Ok(meta) = std::fs::symlink_metadata(path) else { return 0 };
    if !meta.is_dir() {
        return meta.len();
    }
    let mut total = 0;
    if let Ok(entries) = std::fs::read_dir(path) {
        for e in entries.flatten() {
            total += tree_size(&e.path());
        }
    }
    total
}

impl ImageStore {
    /// Every digest (blobs and layer diff ids) the remaining records reach. Blobs that are
    /// missing are skipped: a broken image keeps what it still has.
    fn reachable(&self) -> Result<HashSet<String>> {
        let mut live = HashSet::new();
        for (_, rec) in self.records()? {
            let what = rec.reference.as_str();
            live.insert(rec.id.clone());
            let mut pending = vec![(rec.digest.clone(), None::<String>)];
            let mut depth = 0;
            while let Some((d, media_type)) = pending.pop() {
                live.insert(d.clone());
                depth += 1;
                if depth > 64 {
                    break;
                }
                let Ok(Some(bytes)) = self.read_small_blob(&d) else { continue };
                match manifest::parse(&bytes, media_type.as_deref(), what) {
                    Ok(Manifest::Index(list)) => {
                        // Every platform of a kept index stays: it is small and it is the image.
                        pending.extend(list.into_iter().map(|m| (m.digest, m.media_type)));
                    }
                    Ok(Manifest::Image { config, layers }) => {
                        live.insert(config.digest.clone());
                        live.extend(layers.into_iter().map(|l| l.digest));
                        if let Ok(Some(cfg)) = self.read_small_blob(&config.digest)
                            && let Ok((_, diff_ids)) = manifest::parse_config(&cfg, what)
                        {
                            live.extend(diff_ids);
                        }
                    }
                    Err(e) => debug!(image = %what, blob = %d, "gc: unparsable manifest: {e}"),
                }
            }
        }
        Ok(live)
    }

    /// Moves `path` (named by `digest`) into tmp/ if nothing reaches or pins it; returns the
    /// new location to delete.
    fn detach_if_unused(&self, path: &Path, digest: &str, live: &HashSet<String>) -> Option<PathBuf> {
        if live.contains(digest) {
            return None;
        }
        let pins = lock(&self.pins);
        if pins.contains_key(digest) {
            return None;
        }
        let to = self.tmp_path("gc");
        match std::fs::rename(path, &to) {
            Ok(()) => Some(to),
            Err(e) => {
                warn!(path = %path.display(), "gc: cannot move aside: {e}");
                None
            }
        }
    }

    /// Sweeps one of blobs/sha256 and layers; returns (count, bytes).
    fn sweep(&self, dir: &Path, live: &HashSet<String>) -> Result<(usize, u64)> {
        let mut count = 0;
        let mut bytes = 0;
        let entries = std::fs::read_dir(dir).map_err(|e| Error::io(format!("listing {}", dir.display()), e))?;
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let digest = format!("sha256:{name}");
            if digest::hex(&digest).is_err() {
                debug!(path = %entry.path().display(), "gc: ignoring a file that is not named by a digest");
                continue;
            }
            let Some(moved) = self.detach_if_unused(&entry.path(), &digest, live) else { continue };
            bytes += tree_size(&moved);
            let r = if moved.is_dir() { std::fs::remove_dir_all(&moved) } else { std::fs::remove_file(&moved) };
            if let Err(e) = r {
                warn!(path = %moved.display(), "gc: cannot delete: {e} (it is removed at the next start)");
            }
            count += 1;
        }
        Ok((count, bytes))
    }

    /// Forgets every image not named in `in_use` (image ids, references, `repo@digest`s),
    /// then deletes the blobs and layers no remaining image needs.
    pub fn gc(&self, in_use: &HashSet<String>) -> Result<GcReport> {
        let keys = in_use_keys(in_use);
        let mut report = GcReport::default();
        for (path, rec) in self.records()? {
            if record_in_use(&rec, &keys) {
                continue;
            }
            let _g = lock(&self.records_lock);
            // A pull may have just rewritten this record (a new digest for the tag): re-read.
            if self.read_record_file(&path).as_ref() != Some(&rec) {
                continue;
            }
            match std::fs::remove_file(&path) {
                Ok(()) => report.images_removed.push(rec.reference.clone()),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(Error::io(format!("removing image record {}", path.display()), e)),
            }
        }

        // Reachability and the pins are read under the pin lock: a pull either still pins its
        // digests, or has written its record before unpinning — either way they are live.
        let live = {
            let _pins = lock(&self.pins);
            self.reachable()?
        };
        let (blobs, blob_bytes) = self.sweep(&self.blobs_dir(), &live)?;
        let (layers, layer_bytes) = self.sweep(&self.layers_dir(), &live)?;
        report.blobs_removed = blobs;
        report.layers_removed = layers;
        report.bytes_freed = blob_bytes + layer_bytes;
        if !report.images_removed.is_empty() || blobs > 0 || layers > 0 {
            info!(
                images = report.images_removed.len(),
                blobs,
                layers,
                bytes = report.bytes_freed,
                "image gc"
            );
        }
        Ok(report)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::RegistriesConfig;

    #[test]
    fn pinned_and_stray_data() {
        let dir = tempfile::tempdir().unwrap();
        let s = ImageStore::open(dir.path(), RegistriesConfig::default()).unwrap();
        let d = digest::of(b"blob");
        std::fs::write(s.blob_path(&d).unwrap(), b"blob").unwrap();
        std::fs::create_dir_all(s.layer_path(&d).unwrap().join("usr/bin")).unwrap();
        std::fs::write(s.layers_dir().join("README"), b"not a digest").unwrap();
        {
            let mut pins = s.pins();
            pins.add(&d);
            let r = s.gc(&HashSet::new()).unwrap();
            assert_eq!((r.blobs_removed, r.layers_removed), (0, 0), "a pull in flight keeps its digests");
        }
        let r = s.gc(&HashSet::new()).unwrap();
        assert_eq!((r.blobs_removed, r.layers_removed), (1, 1));
        assert!(r.bytes_freed >= 4);
        assert!(!s.blob_path(&d).unwrap().exists() && !s.layer_path(&d).unwrap().exists());
        assert!(s.layers_dir().join("README").exists(), "files not named by a digest are left alone");
        assert_eq!(std::fs::read_dir(s.root().join("tmp")).unwrap().count(), 0);
    }

    #[test]
    fn in_use_forms() {
        let id = format!("sha256:{}", "a".repeat(64));
        let md = format!("sha256:{}", "b".repeat(64));
        let rec = Record { reference: "docker.io/library/busybox:latest".into(), digest: md.clone(), id: id.clone() };
        let yes = [
            id.clone(),
            "a".repeat(64),
            "busybox".into(),
            "docker.io/library/busybox:latest".into(),
            format!("docker.io/library/busybox@{md}"),
            md.clone(),
        ];
        for s in yes {
            let keys = in_use_keys(&HashSet::from([s.clone()]));
            assert!(record_in_use(&rec, &keys), "{s}");
        }
        for s in ["busybox:1.36", "alpine", &format!("sha256:{}", "c".repeat(64))] {
            let keys = in_use_keys(&HashSet::from([s.to_string()]));
            assert!(!record_in_use(&rec, &keys), "{s}");
        }
    }
}
