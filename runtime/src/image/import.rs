//! `rkube images import`: OCI image layouts, as a tar (`skopeo copy ... oci-archive:x.tar`,
//! `docker buildx --output type=oci`) or as a directory (`oci:dir`). Blobs are verified by
//! digest on the way into the store exactly like pulled ones, and layers are unpacked once.
//!
//! Names: `index.json`'s `org.opencontainers.image.ref.name` annotation names each image when
//! no reference is given (a full reference such as `example.com/app:v1`; a bare tag like
//! `latest` does not say which repository, so a reference is needed then). With a reference,
//! an archive of one image is imported under it; in an archive of several, the reference picks
//! the one whose annotation matches, or, when index.json itself lists the platforms of one image,
//! the linux/<this arch> one.

use std::io::{BufRead, BufReader, Read};
use std::path::{Component, Path, PathBuf};

use tracing::{debug, info, warn};

use super::manifest::{self, Descriptor, MAX_MANIFEST_BYTES, Manifest, REF_NAME_ANNOTATION};
use super::store::{ImageStore, Source};
use super::{Image, Reference, digest, unpack};
use crate::{Error, Result};

/// An extracted archive, removed on drop.
struct Extracted(PathBuf);

impl Drop for Extracted {
    fn drop(&mut self) {
        if let Err(e) = std::fs::remove_dir_all(&self.0)
            && e.kind() != std::io::ErrorKind::NotFound
        {
            warn!(path = %self.0.display(), "cannot remove extracted archive: {e}");
        }
    }
}

/// What one image of the archive starts from.
#[derive(Debug)]
enum Top {
    /// A manifest or index blob listed in index.json.
    Blob(Descriptor),
    /// index.json itself is the image's index (its entries are platforms).
    WholeIndex,
}

#[derive(Debug)]
struct Choice {
    top: Top,
    reference: String,
}

fn ref_name(d: &Descriptor) -> Option<&str> {
    d.annotations.as_ref().and_then(|a| a.get(REF_NAME_ANNOTATION)).map(String::as_str).filter(|s| !s.is_empty())
}

fn usable(d: &Descriptor) -> bool {
    d.media_type.as_deref().is_none_or(|t| {
        matches!(t, manifest::OCI_MANIFEST | manifest::DOCKER_MANIFEST | manifest::OCI_INDEX | manifest::DOCKER_LIST)
    })
}

/// Which images of index.json to import, under which references.
fn choose(index: &[Descriptor], reference: Option<&str>, archive: &str) -> Result<Vec<Choice>> {
    let entries: Vec<&Descriptor> = index.iter().filter(|d| usable(d)).collect();
    if entries.is_empty() {
        return Err(Error::Image(format!("{archive}: index.json lists no image manifests")));
    }
    let names: Vec<&str> = entries.iter().filter_map(|d| ref_name(d)).collect();
    let all_platforms = entries.iter().all(|d| d.platform.is_some());
    match reference {
        Some(r) => {
            let parsed = Reference::parse(r)?;
            let normalized = parsed.to_string_normalized();
            if entries.len() == 1 {
                return Ok(vec![Choice { top: Top::Blob(entries[0].clone()), reference: normalized }]);
            }
            let matching: Vec<&&Descriptor> = entries
                .iter()
                .filter(|d| {
                    ref_name(d).is_some_and(|n| {
                        Some(n) == parsed.tag.as_deref()
                            || Reference::parse(n).is_ok_and(|p| p.to_string_normalized() == normalized)
                    })
                })
                .collect();
            if matching.len() == 1 {
                return Ok(vec![Choice { top: Top::Blob((*matching[0]).clone()), reference: normalized }]);
            }
            if matching.is_empty() && names.is_empty() && all_platforms {
                return Ok(vec![Choice { top: Top::WholeIndex, reference: normalized }]);
            }
            Err(Error::Image(format!(
                "{archive}: it holds {} images ({}); {r:?} does not pick exactly one of them",
                entries.len(),
                if names.is_empty() { "none of them named".to_string() } else { format!("named {}", names.join(", ")) }
            )))
        }
        None => {
            if names.is_empty() {
                return Err(Error::Image(format!(
                    "{archive}: no image in it is named (no {REF_NAME_ANNOTATION} annotation); give the reference to import it as"
                )));
            }
            let mut out = Vec::new();
            for d in entries {
                let Some(n) = ref_name(d) else {
                    warn!(archive, digest = %d.digest, "skipping an unnamed image in the archive");
                    continue;
                };
                if !n.contains('/') && !n.contains(':') && !n.contains('@') {
                    return Err(Error::Image(format!(
                        "{archive}: its image is named only {n:?} (a tag, no repository); give the reference to import it as"
                    )));
                }
                let r = Reference::parse(n)
                    .map_err(|e| Error::Image(format!("{archive}: {REF_NAME_ANNOTATION} {n:?} is not a usable reference: {e}")))?;
                out.push(Choice { top: Top::Blob(d.clone()), reference: r.to_string_normalized() });
            }
            Ok(out)
        }
    }
}

/// `a/./b` → `a/b`; `None` for absolute or `..` paths.
fn safe_relative(p: &Path) -> Option<PathBuf> {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::CurDir => {}
            _ => return None,
        }
    }
    Some(out)
}

/// Extracts the regular files and directories of an (optionally compressed) tar into `dest`.
fn extract_archive(archive: &Path, dest: &Path) -> Result<()> {
    let what = archive.display().to_string();
    let file = std::fs::File::open(archive).map_err(|e| Error::io(format!("opening {what}"), e))?;
    let mut reader = BufReader::with_capacity(256 << 10, file);
    let head = reader.fill_buf().map_err(|e| Error::io(format!("reading {what}"), e))?;
    let decoded: Box<dyn Read> = match unpack::detect(head, None) {
        unpack::Compression::Gzip => Box::new(flate2::bufread::MultiGzDecoder::new(reader)),
        unpack::Compression::Zstd => {
            Box::new(zstd::stream::read::Decoder::with_buffer(reader).map_err(|e| Error::io(format!("reading {what}"), e))?)
        }
        unpack::Compression::None => Box::new(reader),
    };
    std::fs::create_dir_all(dest).map_err(|e| Error::io(format!("creating {}", dest.display()), e))?;
    let bad = |e: std::io::Error| Error::Image(format!("{what}: not a valid tar archive: {e}"));
    let mut tar = tar::Archive::new(decoded);
    for entry in tar.entries().map_err(bad)? {
        let mut entry = entry.map_err(bad)?;
        let raw = entry.path().map_err(bad)?.into_owned();
        let Some(rel) = safe_relative(&raw) else {
            return Err(Error::Image(format!("{what}: entry {:?} has an unsafe path", raw.display().to_string())));
        };
        if rel.as_os_str().is_empty() {
            continue;
        }
        let path = dest.join(&rel);
        match entry.header().entry_type() {
            t if t.is_dir() => std::fs::create_dir_all(&path).map_err(|e| Error::io(format!("creating {}", path.display()), e))?,
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                if let Some(parent) = path.parent() {
                    std::fs::create_dir_all(parent).map_err(|e| Error::io(format!("creating {}", parent.display()), e))?;
                }
                // Only directories were created, never symlinks: nothing on the way can redirect.
                let mut out = std::fs::File::create(&path).map_err(|e| Error::io(format!("creating {}", path.display()), e))?;
                std::io::copy(&mut entry, &mut out).map_err(bad)?;
            }
            other => debug!(archive = %what, entry = %raw.display(), kind = ?other, "skipping a non-file entry of the archive"),
        }
    }
    Ok(())
}

impl ImageStore {
    /// Imports the images of an OCI image layout (tar archive or directory), returning them as
    /// stored. `reference` names the image (see the module docs for when it is needed).
    pub async fn import_oci_archive(&self, path: &Path, reference: Option<&str>) -> Result<Vec<Image>> {
        let archive = path.display().to_string();
        let meta = std::fs::metadata(path).map_err(|e| Error::io(format!("importing {archive}"), e))?;
        let (dir, extracted) = if meta.is_dir() {
            (path.to_path_buf(), None)
        } else {
            let dest = self.tmp_path("import");
            let guard = Extracted(dest.clone());
            let (src, d) = (path.to_path_buf(), dest.clone());
            tokio::task::spawn_blocking(move || extract_archive(&src, &d))
                .await
                .map_err(|e| Error::Image(format!("{archive}: extraction task failed: {e}")))??;
            (dest, Some(guard))
        };
        let owned = extracted.is_some();

        let index_path = dir.join("index.json");
        if !index_path.is_file() {
            let hint = if dir.join("manifest.json").is_file() {
                " (this looks like a `docker save` archive; convert it with `skopeo copy docker-archive:X oci-archive:Y`)"
            } else {
                ""
            };
            return Err(Error::Image(format!("{archive}: not an OCI image layout: no index.json{hint}")));
        }
        if !dir.join("oci-layout").is_file() {
            debug!(archive, "no oci-layout file; reading index.json anyway");
        }
        let index_meta = std::fs::metadata(&index_path).map_err(|e| Error::io(format!("reading {}", index_path.display()), e))?;
        if index_meta.len() > MAX_MANIFEST_BYTES {
            return Err(Error::Image(format!("{archive}: index.json is larger than {MAX_MANIFEST_BYTES} bytes")));
        }
        let index_bytes = std::fs::read(&index_path).map_err(|e| Error::io(format!("reading {}", index_path.display()), e))?;
        let list = match manifest::parse(&index_bytes, None, &format!("{archive} (index.json)"))? {
            Manifest::Index(list) => list,
            Manifest::Image { .. } => {
                return Err(Error::Image(format!("{archive}: index.json is an image manifest, not an index")));
            }
        };
        let choices = choose(&list, reference, &archive)?;
        let source = Source::Layout { dir: &dir, owned };
        let mut images = Vec::with_capacity(choices.len());
        for c in choices {
            let mut pins = self.pins();
            let (top_digest, media_type) = match c.top {
                Top::Blob(d) => {
                    if d.size.is_some_and(|s| s > MAX_MANIFEST_BYTES) {
                        return Err(Error::Image(format!("{archive}: manifest {} is larger than {MAX_MANIFEST_BYTES} bytes", d.digest)));
                    }
                    pins.add(&d.digest);
                    self.ensure_blob(&source, &d.digest, d.size, &c.reference).await?;
                    (d.digest, d.media_type)
                }
                Top::WholeIndex => {
                    let d = digest::of(&index_bytes);
                    pins.add(&d);
                    self.store_small_blob(&d, &index_bytes).await?;
                    (d, Some(manifest::OCI_INDEX.to_string()))
                }
            };
            let img = self.assemble(&source, c.reference, top_digest, media_type, &mut pins).await?;
            info!(archive, image = %img.reference, id = %img.id, layers = img.layers.len(), "imported image");
            images.push(img);
        }
        Ok(images)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::image::manifest::Platform;

    fn desc(n: u8, name: Option<&str>, arch: Option<&str>) -> Descriptor {
        Descriptor {
            media_type: Some(manifest::OCI_MANIFEST.into()),
            digest: format!("sha256:{}", format!("{n:x}").repeat(64).chars().take(64).collect::<String>()),
            size: Some(10),
            platform: arch.map(|a| Platform { architecture: a.into(), os: "linux".into(), variant: None }),
            annotations: name.map(|n| BTreeMap::from([(REF_NAME_ANNOTATION.to_string(), n.to_string())])),
        }
    }

    fn refs(c: &[Choice]) -> Vec<(String, String)> {
        c.iter()
            .map(|c| {
                let top = match &c.top {
                    Top::Blob(d) => d.digest[7..9].to_string(),
                    Top::WholeIndex => "index".into(),
                };
                (c.reference.clone(), top)
            })
            .collect()
    }

    #[test]
    fn names_come_from_annotations_or_the_reference() {
        let one = [desc(1, Some("rkube-test/busybox:latest"), None)];
        assert_eq!(refs(&choose(&one, None, "a").unwrap()), vec![("docker.io/rkube-test/busybox:latest".into(), "11".into())]);
        assert_eq!(refs(&choose(&one, Some("example.com/x:1"), "a").unwrap()), vec![("example.com/x:1".into(), "11".into())]);

        let tag_only = [desc(1, Some("latest"), None)];
        let e = choose(&tag_only, None, "a.tar").unwrap_err().to_string();
        assert!(e.contains("a.tar") && e.contains("\"latest\"") && e.contains("give the reference"), "{e}");
        assert_eq!(refs(&choose(&tag_only, Some("app"), "a").unwrap())[0].0, "docker.io/library/app:latest");

        let unnamed = [desc(1, None, None)];
        assert!(choose(&unnamed, None, "a").unwrap_err().to_string().contains("no image in it is named"));

        let two = [desc(1, Some("v1"), None), desc(2, Some("example.com/app:v2"), None)];
        assert_eq!(refs(&choose(&two, Some("x/app:v1"), "a").unwrap()), vec![("docker.io/x/app:v1".into(), "11".into())]);
        assert_eq!(refs(&choose(&two, Some("example.com/app:v2"), "a").unwrap())[0].1, "22");
        let e = choose(&two, Some("nope:v3"), "a").unwrap_err().to_string();
        assert!(e.contains("2 images") && e.contains("v1"), "{e}");

        let platforms = [desc(1, None, Some("arm64")), desc(2, None, Some("amd64"))];
        assert_eq!(refs(&choose(&platforms, Some("app:1"), "a").unwrap())[0].1, "index");
    }

    #[test]
    fn paths_in_archives() {
        assert_eq!(safe_relative(Path::new("./blobs/sha256/x")), Some(PathBuf::from("blobs/sha256/x")));
        assert_eq!(safe_relative(Path::new("../x")), None);
        assert_eq!(safe_relative(Path::new("/x")), None);
    }
}
