//! The image store against a real registry (Debian's docker-registry on 127.0.0.1) seeded with
//! the busybox test image (scripts/build-test-image.sh), plus OCI archive imports and gc.
//! Needs root (layers keep their ownership; whiteouts are device nodes) and the tools
//! scripts/deps.sh installs: docker-registry, skopeo, umoci, busybox-static.

#[path = "common/registry.rs"]
mod registry;

use std::collections::HashSet;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use registry::{LocalRegistry, build_test_image, run, skopeo_copy};
use runtime::Error;
use runtime::image::{AuthConfig, ImageStore, Mirror, PullPolicy, RegistriesConfig, RegistryConfig, parse_docker_config};

const REPO: &str = "rkube-test/busybox";

fn init() {
    // SAFETY: geteuid has no preconditions.
    assert_eq!(unsafe { libc::geteuid() }, 0, "the image tests need root");
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "runtime=info".into()))
        .with_test_writer()
        .try_init();
}

/// A registry holding `rkube-test/busybox:latest`, and a scratch directory.
struct Fixture {
    reg: LocalRegistry,
    dir: tempfile::TempDir,
    archive: PathBuf,
}

impl Fixture {
    fn new() -> Fixture {
        init();
        let dir = tempfile::tempdir().unwrap();
        let archive = build_test_image(dir.path(), "busybox.tar", &format!("{REPO}:latest"));
        let reg = LocalRegistry::start();
        reg.push(&format!("oci-archive:{}", archive.display()), &format!("{REPO}:latest"));
        Fixture { reg, dir, archive }
    }

    fn store(&self, name: &str) -> ImageStore {
        ImageStore::open(&self.dir.path().join(name), RegistriesConfig::default()).unwrap()
    }

    fn image(&self, tag: &str) -> String {
        self.reg.image(&format!("{REPO}:{tag}"))
    }

    /// An OCI layout directory holding the test image as `latest`.
    fn layout(&self, name: &str) -> PathBuf {
        let layout = self.dir.path().join(name);
        skopeo_copy(&format!("oci-archive:{}", self.archive.display()), &format!("oci:{}:latest", layout.display()), false);
        layout
    }

    /// Pushes `:whiteout`: the test image plus a layer (made by umoci repack) that deletes
    /// /etc/hostname and the /home directory and adds /etc/added. Returns the OCI layout.
    fn push_whiteout_image(&self) -> PathBuf {
        let layout = self.layout("layout-whiteout");
        let bundle = self.dir.path().join("bundle");
        let l = layout.display().to_string();
        run("umoci", &["unpack", "--image", &format!("{l}:latest"), bundle.to_str().unwrap()]);
        let rootfs = bundle.join("rootfs");
        std::fs::remove_file(rootfs.join("etc/hostname")).unwrap();
        std::fs::remove_dir(rootfs.join("home")).unwrap();
        std::fs::write(rootfs.join("etc/added"), b"added in layer 2\n").unwrap();
        run("umoci", &["repack", "--image", &format!("{l}:whiteout"), bundle.to_str().unwrap()]);
        self.reg.push(&format!("oci:{l}:whiteout"), &format!("{REPO}:whiteout"));
        layout
    }
}

fn sha256(bytes: &[u8]) -> String {
    use sha2::Digest;
    format!("sha256:{}", hex::encode(sha2::Sha256::digest(bytes)))
}

/// Adds an image `tag` to an OCI layout: the image tagged `base` plus one layer made of
/// `entries` (path, contents; a path ending in '/' is a directory).
fn add_layer(layout: &Path, base: &str, tag: &str, entries: &[(&str, &[u8])]) {
    let blob = |d: &str| layout.join("blobs/sha256").join(d.trim_start_matches("sha256:"));
    let put = |bytes: &[u8]| {
        let d = sha256(bytes);
        std::fs::write(blob(&d), bytes).unwrap();
        (d, bytes.len())
    };
    let mut tar = tar::Builder::new(Vec::new());
    for (path, data) in entries {
        let mut h = tar::Header::new_gnu();
        if path.ends_with('/') {
            h.set_entry_type(tar::EntryType::Directory);
            h.set_mode(0o755);
        } else {
            h.set_mode(0o644);
        }
        h.set_size(data.len() as u64);
        h.set_mtime(1_700_000_000);
        tar.append_data(&mut h, path, *data).unwrap();
    }
    let tar = tar.into_inner().unwrap();
    let diff_id = sha256(&tar);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut gz, &tar).unwrap();
    let (layer_digest, layer_size) = put(&gz.finish().unwrap());

    let mut index: serde_json::Value = serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
    let base_desc = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["annotations"]["org.opencontainers.image.ref.name"] == base)
        .unwrap()
        .clone();
    let mut manifest: serde_json::Value = serde_json::from_slice(&std::fs::read(blob(base_desc["digest"].as_str().unwrap())).unwrap()).unwrap();
    let mut config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(blob(manifest["config"]["digest"].as_str().unwrap())).unwrap()).unwrap();
    config["rootfs"]["diff_ids"].as_array_mut().unwrap().push(diff_id.into());
    if let Some(h) = config["history"].as_array_mut() {
        h.push(serde_json::json!({"created_by": format!("rkube test layer {tag}")}));
    }
    let (config_digest, config_size) = put(&serde_json::to_vec(&config).unwrap());
    manifest["config"]["digest"] = config_digest.into();
    manifest["config"]["size"] = config_size.into();
    manifest["layers"].as_array_mut().unwrap().push(serde_json::json!({
        "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": layer_digest, "size": layer_size,
    }));
    let (md, ms) = put(&serde_json::to_vec(&manifest).unwrap());
    index["manifests"].as_array_mut().unwrap().push(serde_json::json!({
        "mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": md, "size": ms,
        "annotations": {"org.opencontainers.image.ref.name": tag},
    }));
    std::fs::write(layout.join("index.json"), serde_json::to_vec(&index).unwrap()).unwrap();
}

/// An overlayfs of `layers` (bottom first) mounted on `<dir>/merged`, unmounted on drop.
struct Overlay {
    merged: PathBuf,
}

impl Overlay {
    fn mount(dir: &Path, layers: &[PathBuf]) -> Overlay {
        let (upper, work, merged) = (dir.join("upper"), dir.join("work"), dir.join("merged"));
        for d in [&upper, &work, &merged] {
            std::fs::create_dir_all(d).unwrap();
        }
        let lower: Vec<String> = layers.iter().rev().map(|l| l.display().to_string()).collect();
        let opts = format!("lowerdir={},upperdir={},workdir={}", lower.join(":"), upper.display(), work.display());
        run("mount", &["-t", "overlay", "overlay", "-o", &opts, merged.to_str().unwrap()]);
        Overlay { merged }
    }
}

impl Drop for Overlay {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.merged).status();
    }
}

fn is_whiteout(p: &Path) -> bool {
    std::fs::symlink_metadata(p).is_ok_and(|m| m.file_type().is_char_device() && m.rdev() == 0)
}

fn tmp_is_empty(store: &ImageStore) -> bool {
    std::fs::read_dir(store.root().join("tmp")).unwrap().next().is_none()
}

fn count(dir: &Path) -> usize {
    std::fs::read_dir(dir).unwrap().count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pull_by_tag_and_by_digest() {
    let f = Fixture::new();
    let store = f.store("store");
    let img = store.pull(&f.image("latest"), &[]).await.unwrap();

    assert_eq!(img.reference, f.image("latest"));
    assert_eq!(img.digest, f.reg.digest(&format!("{REPO}:latest")), "the manifest digest the registry serves");
    assert!(img.id.starts_with("sha256:") && img.id != img.digest);
    assert_eq!(img.layers.len(), 1);
    assert!(img.size > 500_000, "compressed busybox layer: {} bytes", img.size);
    let layer = &img.layers[0];
    assert!(layer.starts_with(store.root().join("layers")));
    let busybox = std::fs::metadata(layer.join("bin/busybox")).unwrap();
    assert!(busybox.is_file() && busybox.permissions().mode() & 0o111 != 0, "/bin/busybox is an executable file");
    assert_eq!(std::fs::read_link(layer.join("bin/sh")).unwrap(), Path::new("/bin/busybox"));
    assert_eq!(std::fs::metadata(layer.join("tmp")).unwrap().permissions().mode() & 0o7777, 0o1777);
    assert_eq!(img.config.cmd, vec!["sh"]);
    assert!(img.config.env.iter().any(|e| e.starts_with("PATH=")), "{:?}", img.config.env);
    assert_eq!(img.config.labels.get("org.opencontainers.image.title").map(String::as_str), Some("rkube-test-busybox"));

    // The record reads back, by reference, by name@digest and by id.
    assert_eq!(store.get(&f.image("latest")).unwrap().as_ref(), Some(&img));
    let by_digest = format!("{}/{REPO}@{}", f.reg.host, img.digest);
    assert_eq!(store.get(&by_digest).unwrap().map(|i| i.id), Some(img.id.clone()));
    assert_eq!(store.get(&img.id).unwrap().map(|i| i.reference), Some(img.reference.clone()));
    assert_eq!(store.list().unwrap(), vec![img.clone()]);
    assert!(tmp_is_empty(&store));

    // By digest into another store: the same image, recorded under the digest reference.
    let other = f.store("other");
    let d = other.pull(&by_digest, &[]).await.unwrap();
    assert_eq!((d.id.as_str(), d.digest.as_str()), (img.id.as_str(), img.digest.as_str()));
    assert_eq!(d.reference, by_digest);
    assert!(d.layers[0].join("bin/busybox").is_file());

    // A digest the registry does not have fails and says which.
    let missing = format!("{}/{REPO}@sha256:{}", f.reg.host, "0".repeat(64));
    let e = other.pull(&missing, &[]).await.unwrap_err().to_string();
    assert!(e.contains(&"0".repeat(64)) && e.contains("MANIFEST_UNKNOWN"), "{e}");

    // Removing forgets the record (gc deletes the data).
    assert!(other.remove(&by_digest).unwrap());
    assert_eq!(other.get(&by_digest).unwrap(), None);
    assert!(!other.remove(&by_digest).unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pull_policies() {
    let mut f = Fixture::new();
    let store = f.store("store");
    let absent = f.image("not-pulled");
    let e = store.ensure(&absent, PullPolicy::Never, &[]).await.unwrap_err();
    assert!(matches!(e, Error::ImageNotPresent(_)), "{e:?}");
    let msg = e.to_string();
    assert!(msg.contains(&absent) && msg.contains("Never"), "{msg}");

    let pulled = store.ensure(&f.image("latest"), PullPolicy::IfNotPresent, &[]).await.unwrap();
    // Always with an unchanged tag: one HEAD, the same image.
    assert_eq!(store.ensure(&f.image("latest"), PullPolicy::Always, &[]).await.unwrap(), pulled);

    f.reg.stop();
    // Without a registry: IfNotPresent and Never use the local copy...
    assert_eq!(store.ensure(&f.image("latest"), PullPolicy::IfNotPresent, &[]).await.unwrap(), pulled);
    assert_eq!(store.ensure(&f.image("latest"), PullPolicy::Never, &[]).await.unwrap(), pulled);
    assert_eq!(store.ensure("busybox", PullPolicy::Never, &[]).await.unwrap_err().to_string(),
        "image docker.io/library/busybox:latest is not present on this node and imagePullPolicy is Never");
    // ...Always must ask the registry, and says it could not.
    let e = store.ensure(&f.image("latest"), PullPolicy::Always, &[]).await.unwrap_err().to_string();
    assert!(e.contains(&f.reg.host), "{e}");
    // Always for a digest reference: content-addressed, nothing to ask.
    let by_digest = format!("{}/{REPO}@{}", f.reg.host, pulled.digest);
    assert_eq!(store.ensure(&by_digest, PullPolicy::Always, &[]).await.unwrap().id, pulled.id);

    // A reopened store still has it.
    drop(store);
    let reopened = f.store("store");
    assert_eq!(reopened.ensure(&f.image("latest"), PullPolicy::IfNotPresent, &[]).await.unwrap(), pulled);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mirror_serves_docker_hub_names() {
    let f = Fixture::new();
    f.reg.push(&format!("oci-archive:{}", f.archive.display()), "library/busybox:latest");
    let mut registries = RegistriesConfig::default();
    registries.mirrors.insert("docker.io".into(), Mirror { endpoint: vec![format!("http://{}", f.reg.host)] });
    let store = ImageStore::open(&f.dir.path().join("store"), registries).unwrap();
    // No internet here: this only works through the mirror.
    let img = store.pull("docker.io/library/busybox:latest", &[]).await.unwrap();
    assert_eq!(img.reference, "docker.io/library/busybox:latest");
    assert!(img.layers[0].join("bin/busybox").is_file());
    assert_eq!(store.ensure("busybox", PullPolicy::IfNotPresent, &[]).await.unwrap(), img);
    // A name the mirror lacks fails, naming the mirror.
    let e = store.pull("busybox:nope", &[]).await.unwrap_err().to_string();
    assert!(e.contains(&format!("mirror http://{}", f.reg.host)), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_pulls_of_one_image() {
    let f = Fixture::new();
    let store = Arc::new(f.store("store"));
    let image = f.image("latest");
    let (a, b) = tokio::join!(store.pull(&image, &[]), store.pull(&image, &[]));
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(a, b);
    assert_eq!(count(&store.root().join("layers")), 1, "the layer is unpacked once");
    assert!(a.layers[0].join("bin/busybox").is_file());
    assert!(tmp_is_empty(&store));

    // Two stores on one root stand in for two processes: only rename-atomic writes keep them
    // from tripping over each other.
    let s1 = f.store("shared");
    let s2 = f.store("shared");
    let t1 = tokio::spawn({
        let image = image.clone();
        async move { s1.pull(&image, &[]).await.map(|i| i.id) }
    });
    let t2 = tokio::spawn(async move { s2.pull(&image, &[]).await.map(|i| i.id) });
    let (i1, i2) = (t1.await.unwrap().unwrap(), t2.await.unwrap().unwrap());
    assert_eq!(i1, i2);
    let shared = f.store("shared");
    let img = shared.get(&f.image("latest")).unwrap().expect("recorded");
    assert!(img.layers[0].join("bin/busybox").is_file());
    assert_eq!(count(&shared.root().join("layers")), 1);
    assert!(tmp_is_empty(&shared));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn whiteouts_become_overlayfs_whiteouts() {
    let f = Fixture::new();
    f.push_whiteout_image();
    let store = f.store("store");
    let base = store.pull(&f.image("latest"), &[]).await.unwrap();
    let img = store.pull(&f.image("whiteout"), &[]).await.unwrap();
    assert_eq!(img.layers.len(), 2);
    assert_eq!(img.layers[0], base.layers[0], "the shared bottom layer is unpacked once");
    let top = &img.layers[1];
    assert!(is_whiteout(&top.join("etc/hostname")), "deleted file is a 0:0 char device");
    assert!(is_whiteout(&top.join("home")), "deleted directory is a 0:0 char device");
    assert_eq!(std::fs::read(top.join("etc/added")).unwrap(), b"added in layer 2\n");
    assert!(!top.join("bin/busybox").exists(), "the top layer holds only the changes");
    assert!(base.layers[0].join("etc/hostname").is_file(), "the lower layer is untouched");
    assert_eq!(count(&store.root().join("layers")), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn index_resolves_to_this_platform() {
    let f = Fixture::new();
    // An OCI index with an arm64 manifest (same layer, config saying arm64) listed first and
    // the real amd64 one second.
    let layout = f.layout("layout-multi");
    let blob = |d: &str| layout.join("blobs/sha256").join(d.trim_start_matches("sha256:"));
    let put = |bytes: &[u8]| {
        use sha2::Digest;
        let d = format!("sha256:{}", hex::encode(sha2::Sha256::digest(bytes)));
        std::fs::write(blob(&d), bytes).unwrap();
        (d, bytes.len())
    };
    let mut index: serde_json::Value = serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
    let amd64 = index["manifests"][0].clone();
    let manifest_bytes = std::fs::read(blob(amd64["digest"].as_str().unwrap())).unwrap();
    let manifest: serde_json::Value = serde_json::from_slice(&manifest_bytes).unwrap();
    let amd64_config = manifest["config"]["digest"].as_str().unwrap().to_string();
    let mut config: serde_json::Value = serde_json::from_slice(&std::fs::read(blob(&amd64_config)).unwrap()).unwrap();
    config["architecture"] = "arm64".into();
    let (cd, cs) = put(&serde_json::to_vec(&config).unwrap());
    let mut arm = manifest.clone();
    arm["config"]["digest"] = cd.into();
    arm["config"]["size"] = cs.into();
    let (ad, asz) = put(&serde_json::to_vec(&arm).unwrap());
    let oci_manifest = "application/vnd.oci.image.manifest.v1+json";
    let list = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [
            {"mediaType": oci_manifest, "digest": ad.clone(), "size": asz, "platform": {"architecture": "arm64", "os": "linux"}},
            {"mediaType": oci_manifest, "digest": amd64["digest"], "size": amd64["size"], "platform": {"architecture": "amd64", "os": "linux"}},
        ]
    });
    let (id, isz) = put(&serde_json::to_vec(&list).unwrap());
    index["manifests"].as_array_mut().unwrap().push(serde_json::json!({
        "mediaType": "application/vnd.oci.image.index.v1+json", "digest": id.clone(), "size": isz,
        "annotations": {"org.opencontainers.image.ref.name": "multi"}
    }));
    std::fs::write(layout.join("index.json"), serde_json::to_vec(&index).unwrap()).unwrap();
    f.reg.push_all(&format!("oci:{}:multi", layout.display()), &format!("{REPO}:multi"));

    let store = f.store("store");
    let img = store.pull(&f.image("multi"), &[]).await.unwrap();
    assert_eq!(img.digest, f.reg.digest(&format!("{REPO}:multi")), "recorded under the index digest");
    assert_eq!(img.digest, id);
    assert_eq!(img.id, amd64_config, "the amd64 image was chosen");
    assert!(img.layers[0].join("bin/busybox").is_file());
    // It reads back through the stored index.
    assert_eq!(store.get(&f.image("multi")).unwrap(), Some(img.clone()));
    assert!(!store.root().join("blobs/sha256").join(ad.trim_start_matches("sha256:")).exists(), "the arm64 manifest was not fetched");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_oci_archives_and_layouts() {
    let f = Fixture::new();
    let store = f.store("store");

    // The archive as build-test-image.sh writes it (skopeo's oci-archive), named by its annotation.
    let imported = store.import_oci_archive(&f.archive, None).await.unwrap();
    assert_eq!(imported.len(), 1);
    let img = &imported[0];
    assert_eq!(img.reference, "docker.io/rkube-test/busybox:latest");
    assert!(img.layers[0].join("bin/busybox").is_file());
    assert_eq!(store.get("rkube-test/busybox").unwrap().as_ref(), Some(img));
    assert!(tmp_is_empty(&store), "the extracted archive is removed");

    // Pulled from the registry and exported again with skopeo, under another name.
    let exported = f.dir.path().join("exported.tar");
    skopeo_copy(&format!("docker://{}", f.image("latest")), &format!("oci-archive:{}:example.com/exported:v2", exported.display()), false);
    let again = store.import_oci_archive(&exported, None).await.unwrap();
    assert_eq!(again[0].reference, "example.com/exported:v2");
    assert_eq!(again[0].id, img.id);
    assert_eq!(again[0].layers, img.layers);

    // An explicit reference wins.
    let named = store.import_oci_archive(&f.archive, Some("local/app:1")).await.unwrap();
    assert_eq!(named[0].reference, "docker.io/local/app:1");

    // A layout directory whose only name is a tag needs a reference.
    let layout = f.layout("layout-dir");
    let e = store.import_oci_archive(&layout, None).await.unwrap_err().to_string();
    assert!(e.contains("\"latest\"") && e.contains("give the reference"), "{e}");
    let from_dir = store.import_oci_archive(&layout, Some("local/dir:1")).await.unwrap();
    assert_eq!(from_dir[0].id, img.id);
    assert!(layout.join("index.json").is_file(), "a directory layout is read, not consumed");
    let mut names: Vec<String> = store.list().unwrap().into_iter().map(|i| i.reference).collect();
    names.sort();
    assert_eq!(names, vec!["docker.io/local/app:1", "docker.io/local/dir:1", "docker.io/rkube-test/busybox:latest", "example.com/exported:v2"]);

    // A corrupted blob is refused.
    let broken = f.layout("layout-broken");
    let index: serde_json::Value = serde_json::from_slice(&std::fs::read(broken.join("index.json")).unwrap()).unwrap();
    let md = index["manifests"][0]["digest"].as_str().unwrap().trim_start_matches("sha256:").to_string();
    let manifest: serde_json::Value = serde_json::from_slice(&std::fs::read(broken.join("blobs/sha256").join(&md)).unwrap()).unwrap();
    let layer = broken.join("blobs/sha256").join(manifest["layers"][0]["digest"].as_str().unwrap().trim_start_matches("sha256:"));
    let mut bytes = std::fs::read(&layer).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    std::fs::write(&layer, bytes).unwrap();
    let fresh = f.store("fresh");
    let e = fresh.import_oci_archive(&broken, Some("local/broken:1")).await.unwrap_err().to_string();
    assert!(e.contains("hashes to"), "{e}");
    assert!(fresh.list().unwrap().is_empty());

    let e = store.import_oci_archive(&f.dir.path().join("nope.tar"), None).await.unwrap_err().to_string();
    assert!(e.contains("nope.tar"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gc_removes_unused_images_and_their_data() {
    let f = Fixture::new();
    f.push_whiteout_image();
    let store = f.store("store");
    let kept = store.pull(&f.image("latest"), &[]).await.unwrap();
    let unused = store.pull(&f.image("whiteout"), &[]).await.unwrap();
    let blobs = store.root().join("blobs/sha256");
    let blob = |d: &str| blobs.join(d.trim_start_matches("sha256:"));
    assert_eq!(count(&blobs), 6, "two manifests, two configs, two layer blobs");

    // Nothing is in use by reference form either: every form keeps its image.
    for name in [kept.id.clone(), kept.reference.clone(), format!("{}/{REPO}@{}", f.reg.host, kept.digest)] {
        let r = store.gc(&HashSet::from([name.clone(), unused.id.clone()])).unwrap();
        assert!(r.images_removed.is_empty() && r.blobs_removed == 0 && r.layers_removed == 0, "{name}: {r:?}");
    }

    let report = store.gc(&HashSet::from([kept.id.clone()])).unwrap();
    assert_eq!(report.images_removed, vec![unused.reference.clone()]);
    assert_eq!((report.blobs_removed, report.layers_removed), (3, 1), "{report:?}");
    assert!(report.bytes_freed > 0);
    assert!(!unused.layers[1].exists(), "the unused top layer is gone");
    assert!(!blob(&unused.digest).exists() && !blob(&unused.id).exists());
    assert_eq!(store.get(&unused.reference).unwrap(), None);
    // The in-use image keeps everything, including the layer it shared.
    assert_eq!(store.get(&kept.reference).unwrap(), Some(kept.clone()));
    assert!(kept.layers[0].join("bin/busybox").is_file());

    // Nothing in use: all gone.
    let report = store.gc(&HashSet::new()).unwrap();
    assert_eq!(report.images_removed, vec![kept.reference.clone()]);
    assert_eq!(count(&blobs), 0);
    assert_eq!(count(&store.root().join("layers")), 0);
    assert_eq!(count(&store.root().join("images")), 0);
    assert!(store.list().unwrap().is_empty());
    // And it can be pulled again.
    assert_eq!(store.pull(&f.image("latest"), &[]).await.unwrap().id, kept.id);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pull_with_credentials() {
    init();
    // bcrypt (cost 4) of "rkube-secret".
    const HTPASSWD: &str = "tester:$2b$04$yutulR7VGtFdFKVrcUjez.qb/epHSkbOhkU7j51ovDRJzhJNVWaXm";
    let dir = tempfile::tempdir().unwrap();
    let archive = build_test_image(dir.path(), "busybox.tar", &format!("{REPO}:latest"));
    let reg = LocalRegistry::start_with_htpasswd(HTPASSWD);
    reg.push_as(&format!("oci-archive:{}", archive.display()), "private/busybox:latest", "tester", "rkube-secret");
    let image = reg.image("private/busybox:latest");
    let store = ImageStore::open(&dir.path().join("store"), RegistriesConfig::default()).unwrap();

    let e = store.pull(&image, &[]).await.unwrap_err().to_string();
    assert!(e.contains("no credentials are configured") && e.contains(&reg.host), "{e}");
    let wrong = parse_docker_config(format!(r#"{{"auths": {{"{}": {{"username": "tester", "password": "nope"}}}}}}"#, reg.host).as_bytes()).unwrap();
    let e = store.pull(&image, &wrong).await.unwrap_err().to_string();
    assert!(e.contains("401") && e.contains("rejected"), "{e}");

    // An imagePullSecret's .dockerconfigjson, as the agent passes it.
    use base64::Engine;
    let auth = base64::engine::general_purpose::STANDARD.encode("tester:rkube-secret");
    let secret = format!(r#"{{"auths": {{"http://{}": {{"auth": "{auth}"}}}}}}"#, reg.host);
    let img = store.pull(&image, &parse_docker_config(secret.as_bytes()).unwrap()).await.unwrap();
    assert!(img.layers[0].join("bin/busybox").is_file());

    // Or registries.yaml credentials for the registry.
    let mut registries = RegistriesConfig::default();
    registries.configs.insert(
        reg.host.clone(),
        RegistryConfig { auth: Some(AuthConfig { username: "tester".into(), password: "rkube-secret".into() }), tls: None },
    );
    let other = ImageStore::open(&dir.path().join("other"), registries).unwrap();
    assert_eq!(other.pull(&image, &[]).await.unwrap().id, img.id);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overlayfs_honours_the_unpacked_whiteouts() {
    let f = Fixture::new();
    let layout = f.push_whiteout_image();
    // A third layer that makes /etc opaque: only /etc/only is left of it.
    add_layer(&layout, "whiteout", "opaque", &[("etc/", b""), ("etc/.wh..wh..opq", b""), ("etc/only", b"only\n")]);
    f.reg.push(&format!("oci:{}:opaque", layout.display()), &format!("{REPO}:opaque"));
    let store = f.store("store");
    let img = store.pull(&f.image("opaque"), &[]).await.unwrap();
    assert_eq!(img.layers.len(), 3);
    assert!(!img.layers[2].join("etc/.wh..wh..opq").exists());

    let ov = Overlay::mount(&f.dir.path().join("rootfs"), &img.layers);
    let m = &ov.merged;
    assert!(m.join("bin/busybox").is_file(), "the bottom layer shows through");
    assert!(m.join("tmp").is_dir());
    assert!(!m.join("home").exists(), "the directory whiteout hides /home");
    let mut etc: Vec<String> = std::fs::read_dir(m.join("etc")).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    etc.sort();
    assert_eq!(etc, vec!["only"], "the opaque /etc hides every lower entry");
    drop(ov);

    // And the two-layer image alone: the file whiteout hides /etc/hostname, /etc/added shows.
    let two = store.pull(&f.image("whiteout"), &[]).await.unwrap();
    let ov = Overlay::mount(&f.dir.path().join("rootfs2"), &two.layers);
    assert!(!ov.merged.join("etc/hostname").exists());
    assert!(ov.merged.join("etc/passwd").is_file());
    assert_eq!(std::fs::read(ov.merged.join("etc/added")).unwrap(), b"added in layer 2\n");
}
