//! Container root filesystems: an overlayfs of the image's unpacked layers (read-only lowers)
//! with a per-container upper and work dir, so containers of one image share its layers.

use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use nix::mount::{MntFlags, MsFlags};

use crate::error::IoContext;
use crate::{Error, Result};

/// Bound on unmount loops, should several mounts have been stacked on one `merged`.
const MAX_STACKED: usize = 16;

/// Where a container's rootfs lives: `<dir>/upper`, `<dir>/work`, mounted on `<dir>/merged`.
#[derive(Clone, Debug)]
pub struct Rootfs {
    pub dir: PathBuf,
}

impl Rootfs {
    pub fn merged(&self) -> PathBuf {
        self.dir.join("merged")
    }

    /// Mounts the overlay (idempotent: an existing mount is kept, so an agent restart can
    /// re-adopt it). `layers` bottom first, as in `Image::layers`.
    pub fn mount(dir: &Path, layers: &[PathBuf]) -> Result<Rootfs> {
        if !dir.is_absolute() {
            return Err(Error::Invalid(format!(
                "rootfs directory {} is not absolute",
                dir.display()
            )));
        }
        if layers.is_empty() {
            return Err(Error::Invalid(format!(
                "rootfs {}: an overlay needs at least one layer",
                dir.display()
            )));
        }
        let rootfs = Rootfs {
            dir: dir.to_path_buf(),
        };
        let merged = rootfs.merged();
        if Self::is_mounted(dir) {
            return Ok(rootfs);
        }
        for layer in layers {
            if !layer.is_absolute() {
                return Err(Error::Path {
                    path: layer.clone(),
                    message: "layer path is not absolute".into(),
                });
            }
            if !layer.is_dir() {
                return Err(Error::Path {
                    path: layer.clone(),
                    message: "layer is not a directory".into(),
                });
            }
        }
        let upper = dir.join("upper");
        let work = dir.join("work");
        for d in [&upper, &work, &merged] {
            std::fs::create_dir_all(d).ctx(|| format!("creating {}", d.display()))?;
        }
        let data = overlay_options(layers, &upper, &work)?;
        nix::mount::mount(
            Some("overlay"),
            &merged,
            Some("overlay"),
            MsFlags::empty(),
            Some(data.as_str()),
        )
        .map_err(|e| Error::Path {
            path: merged.clone(),
            message: format!(
                "mounting the overlay of {} layer(s) failed: {e}",
                layers.len()
            ),
        })?;
        Ok(rootfs)
    }

    /// Unmounts (lazily if busy) and removes the directory. Idempotent.
    pub fn remove(dir: &Path) -> Result<()> {
        if std::fs::symlink_metadata(dir).is_err() {
            return Ok(());
        }
        let merged = dir.join("merged");
        for _ in 0..MAX_STACKED {
            if !Self::is_mounted(dir) {
                break;
            }
            match nix::mount::umount2(&merged, MntFlags::empty()) {
                Ok(()) => {}
                Err(nix::errno::Errno::EBUSY) => nix::mount::umount2(&merged, MntFlags::MNT_DETACH)
                    .map_err(|e| Error::Path {
                        path: merged.clone(),
                        message: format!("lazy unmount failed: {e}"),
                    })?,
                Err(nix::errno::Errno::EINVAL | nix::errno::Errno::ENOENT) => break,
                Err(e) => {
                    return Err(Error::Path {
                        path: merged.clone(),
                        message: format!("unmount failed: {e}"),
                    });
                }
            }
        }
        // Never delete through a live mount: that would write whiteouts into what the
        // container still sees, or worse, walk into a bind mount.
        if Self::is_mounted(dir) {
            return Err(Error::Path {
                path: merged,
                message: "still mounted after unmounting".into(),
            });
        }
        match std::fs::remove_dir_all(dir) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(Error::io(format!("removing rootfs {}", dir.display()), e)),
        }
    }

    pub fn is_mounted(dir: &Path) -> bool {
        let merged = dir.join("merged");
        let Ok(canonical) = std::fs::canonicalize(&merged) else {
            return false;
        };
        let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") else {
            return false;
        };
        mount_point_listed(&info, canonical.as_os_str().as_bytes())
    }
}

/// `lowerdir=<top>:...:<bottom>,upperdir=..,workdir=..` (overlayfs lists lowers top first).
fn overlay_options(layers: &[PathBuf], upper: &Path, work: &Path) -> Result<String> {
    let mut lowers = Vec::with_capacity(layers.len());
    for layer in layers.iter().rev() {
        lowers.push(option_path(layer)?);
    }
    let data = format!(
        "lowerdir={},upperdir={},workdir={}",
        lowers.join(":"),
        option_path(upper)?,
        option_path(work)?
    );
    // The kernel copies at most one page of mount data.
    if data.len() >= 4096 {
        return Err(Error::Invalid(format!(
            "overlay options for {} layers are {} bytes, more than the kernel's 4095",
            layers.len(),
            data.len()
        )));
    }
    Ok(data)
}

/// A path as it may appear in overlay options: `,` separates options and `:` lower dirs.
fn option_path(p: &Path) -> Result<String> {
    let s = p.to_str().ok_or_else(|| Error::Path {
        path: p.to_path_buf(),
        message: "path is not UTF-8".into(),
    })?;
    if s.contains([',', ':', '\n']) {
        return Err(Error::Path {
            path: p.to_path_buf(),
            message: "overlay paths must not contain ',' ':' or newlines".into(),
        });
    }
    Ok(s.to_string())
}

/// Whether `mount_point` is listed as a mount point in `mountinfo` (field 5, `\ooo`-escaped).
fn mount_point_listed(mountinfo: &str, mount_point: &[u8]) -> bool {
    mountinfo.lines().any(|line| {
        line.split(' ')
            .nth(4)
            .is_some_and(|mp| unescape(mp) == mount_point)
    })
}

fn unescape(field: &str) -> Vec<u8> {
    let b = field.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            out.push((b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0'));
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_list_lowers_top_first() {
        let layers = vec![
            PathBuf::from("/l/bottom"),
            PathBuf::from("/l/mid"),
            PathBuf::from("/l/top"),
        ];
        let data = overlay_options(&layers, Path::new("/c/upper"), Path::new("/c/work")).unwrap();
        assert_eq!(
            data,
            "lowerdir=/l/top:/l/mid:/l/bottom,upperdir=/c/upper,workdir=/c/work"
        );
    }

    #[test]
    fn options_reject_separators_and_overlong_data() {
        let bad = vec![PathBuf::from("/l/a,b")];
        assert!(overlay_options(&bad, Path::new("/u"), Path::new("/w")).is_err());
        let bad = vec![PathBuf::from("/l/a:b")];
        assert!(overlay_options(&bad, Path::new("/u"), Path::new("/w")).is_err());
        let many: Vec<PathBuf> = (0..200)
            .map(|i| PathBuf::from(format!("/var/lib/rkube/layers/{i:064}")))
            .collect();
        assert!(matches!(
            overlay_options(&many, Path::new("/u"), Path::new("/w")),
            Err(Error::Invalid(_))
        ));
    }

    #[test]
    fn mountinfo_lookup() {
        let info = "36 35 0:30 / /a\\040b/merged rw - overlay overlay rw\n37 35 0:31 / /c rw - tmpfs tmpfs rw\n";
        assert!(mount_point_listed(info, b"/a b/merged"));
        assert!(mount_point_listed(info, b"/c"));
        assert!(!mount_point_listed(info, b"/a"));
    }

    #[test]
    fn remove_missing_is_ok_and_mount_validates() {
        Rootfs::remove(Path::new("/nonexistent/rkube-rootfs-unit")).unwrap();
        assert!(!Rootfs::is_mounted(Path::new(
            "/nonexistent/rkube-rootfs-unit"
        )));
        assert!(Rootfs::mount(Path::new("relative"), &[PathBuf::from("/")]).is_err());
        assert!(Rootfs::mount(Path::new("/nonexistent/x"), &[]).is_err());
        assert!(matches!(
            Rootfs::mount(
                Path::new("/nonexistent/x"),
                &[PathBuf::from("/nonexistent/layer")]
            ),
            Err(Error::Path { .. })
        ));
    }
}
