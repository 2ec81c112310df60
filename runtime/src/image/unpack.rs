//! Layer tar → directory. The result is used as an overlayfs lowerdir as is, so OCI whiteouts
//! become overlayfs ones: `.wh.<name>` a character device 0:0 named `<name>`, `.wh..wh..opq` the
//! `trusted.overlay.opaque=y` xattr on its directory.
//!
//! A layer comes from a registry we do not trust: entries with absolute paths or `..`
//! components are rejected, and so is any entry (or hard-link target) whose path goes through a
//! symlink — in a layer tarred from a real filesystem nothing lives below a symlink, so such an
//! entry can only be an attempt to write outside the layer. Ownership, permissions (setuid
//! included), mtimes and PAX xattrs (file capabilities) are kept; we run as root.
//!
//! The uncompressed stream is hashed while it is unpacked: its digest is the layer's diff id,
//! checked against the image config by the caller.

use std::ffi::CString;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, BufReader, Read};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

use tracing::debug;

use super::digest::HashingReader;
use crate::{Error, Result};

const WHITEOUT_PREFIX: &str = ".wh.";
const OPAQUE_MARKER: &str = ".wh..wh..opq";
const OPAQUE_XATTR: &str = "trusted.overlay.opaque";
const PAX_XATTR_PREFIX: &str = "SCHILY.xattr.";

const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];
const ZSTD_MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Compression {
    None,
    Gzip,
    Zstd,
}

/// What unpacking a layer produced.
#[derive(Debug)]
pub(crate) struct Unpacked {
    /// sha256 of the uncompressed tar: the layer's diff id.
    pub diff_id: String,
    pub uncompressed_bytes: u64,
    pub entries: u64,
}

/// The compression a media type announces (`None` when it does not say).
fn compression_of_media_type(media_type: &str) -> Option<Compression> {
    let m = media_type.to_ascii_lowercase();
    if m.ends_with("+gzip") || m.ends_with(".gzip") || m.ends_with("tar.gz") {
        Some(Compression::Gzip)
    } else if m.ends_with("+zstd") || m.ends_with(".zstd") {
        Some(Compression::Zstd)
    } else if m.ends_with(".tar") || m.ends_with("layer.v1.tar") {
        Some(Compression::None)
    } else {
        None
    }
}

/// Decides the compression from the first bytes; the media type is only a hint (registries
/// and tools get it wrong, the magic bytes do not lie).
pub(crate) fn detect(head: &[u8], media_type: Option<&str>) -> Compression {
    let by_magic = if head.starts_with(&GZIP_MAGIC) {
        Some(Compression::Gzip)
    } else if head.starts_with(&ZSTD_MAGIC) {
        Some(Compression::Zstd)
    } else {
        None
    };
    let by_type = media_type.and_then(compression_of_media_type);
    match (by_magic, by_type) {
        (Some(m), t) => {
            if t.is_some_and(|t| t != m) {
                debug!(?media_type, detected = ?m, "layer media type disagrees with its content; using the content");
            }
            m
        }
        // A tar starts with a file name, never with either magic: this is an uncompressed tar.
        (None, _) => Compression::None,
    }
}

/// Unpacks the layer blob at `blob` into `dest` (an empty or missing directory). `what` names
/// the layer in errors.
pub(crate) fn unpack_layer(blob: &Path, media_type: Option<&str>, dest: &Path, what: &str) -> Result<Unpacked> {
    if let Some(m) = media_type
        && m.contains("+encrypted")
    {
        return Err(Error::Image(format!("layer {what}: encrypted layers ({m}) are not supported")));
    }
    let file = File::open(blob).map_err(|e| Error::io(format!("opening layer blob {}", blob.display()), e))?;
    let mut reader = BufReader::with_capacity(256 << 10, file);
    let head = reader.fill_buf().map_err(|e| Error::io(format!("reading layer blob {}", blob.display()), e))?;
    let compression = detect(head, media_type);
    let decoded: Box<dyn Read> = match compression {
        Compression::Gzip => Box::new(flate2::bufread::MultiGzDecoder::new(reader)),
        Compression::Zstd => Box::new(
            zstd::stream::read::Decoder::with_buffer(reader)
                .map_err(|e| Error::io(format!("layer {what}: starting zstd decoder"), e))?,
        ),
        Compression::None => Box::new(reader),
    };
    unpack_tar(decoded, dest, what)
}

/// Unpacks an uncompressed tar stream into `dest`, returning its digest.
pub(crate) fn unpack_tar<R: Read>(reader: R, dest: &Path, what: &str) -> Result<Unpacked> {
    fs::create_dir_all(dest).map_err(|e| Error::io(format!("creating {}", dest.display()), e))?;
    let mut hashing = HashingReader::new(reader);
    let mut state = State { root: dest.to_path_buf(), what: what.to_string(), dirs: Vec::new(), root_owner: is_root(), entries: 0 };
    {
        let mut archive = tar::Archive::new(&mut hashing);
        let entries = archive.entries().map_err(|e| state.bad_stream(e))?;
        for entry in entries {
            let mut entry = entry.map_err(|e| state.bad_stream(e))?;
            state.entry(&mut entry)?;
            state.entries += 1;
        }
    }
    state.finish_dirs()?;
    let (diff_id, uncompressed_bytes) = hashing.drain().map_err(|e| state.bad_stream(e))?;
    Ok(Unpacked { diff_id, uncompressed_bytes, entries: state.entries })
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// Directory metadata applied after every entry is in place: a read-only directory must not
/// stop its own entries from being written, and writing them would change its mtime.
struct DirMeta {
    rel: PathBuf,
    mode: u32,
    mtime: (i64, i64),
}

struct State {
    root: PathBuf,
    what: String,
    dirs: Vec<DirMeta>,
    root_owner: bool,
    entries: u64,
}

/// The parts of a header we apply, PAX overrides included.
struct Meta {
    mode: u32,
    uid: u64,
    gid: u64,
    mtime: (i64, i64),
    xattrs: Vec<(String, Vec<u8>)>,
}

/// `a/./b/` → `a/b`; absolute paths and `..` are refused. An empty result is the layer root.
fn normalize(raw: &Path) -> std::result::Result<PathBuf, &'static str> {
    let mut out = PathBuf::new();
    for c in raw.components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::CurDir => {}
            Component::RootDir | Component::Prefix(_) => return Err("absolute path"),
            Component::ParentDir => return Err("path with a \"..\" component"),
        }
    }
    Ok(out)
}

fn cstring(p: &Path) -> io::Result<CString> {
    CString::new(p.as_os_str().as_bytes()).map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path contains a NUL byte"))
}

fn errno(ret: libc::c_int) -> io::Result<()> {
    if ret == 0 { Ok(()) } else { Err(io::Error::last_os_error()) }
}

fn set_times_nofollow(path: &Path, (secs, nsec): (i64, i64)) -> io::Result<()> {
    let c = cstring(path)?;
    let ts = libc::timespec { tv_sec: secs as libc::time_t, tv_nsec: nsec as _ };
    let times = [ts, ts];
    // SAFETY: c is a valid NUL-terminated path and times points to two timespecs.
    errno(unsafe { libc::utimensat(libc::AT_FDCWD, c.as_ptr(), times.as_ptr(), libc::AT_SYMLINK_NOFOLLOW) })
}

fn lsetxattr(path: &Path, name: &str, value: &[u8]) -> io::Result<()> {
    let c = cstring(path)?;
    let n = CString::new(name).map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "xattr name contains a NUL byte"))?;
    // SAFETY: both strings are NUL-terminated and value is a valid slice.
    errno(unsafe { libc::lsetxattr(c.as_ptr(), n.as_ptr(), value.as_ptr().cast(), value.len(), 0) })
}

fn mknod(path: &Path, kind: libc::mode_t, perm: u32, major: u32, minor: u32) -> io::Result<()> {
    let c = cstring(path)?;
    // SAFETY: c is a valid NUL-terminated path.
    errno(unsafe { libc::mknod(c.as_ptr(), kind | (perm & 0o7777) as libc::mode_t, libc::makedev(major, minor)) })
}

fn parse_pax_time(v: &str) -> Option<(i64, i64)> {
    let (s, frac) = v.split_once('.').unwrap_or((v, ""));
    let secs: i64 = s.parse().ok()?;
    let digits: String = frac.chars().take(9).collect();
    let nsec = if digits.is_empty() { 0 } else { format!("{digits:0<9}").parse().ok()? };
    Some((secs, nsec))
}

/// Removes whatever is at `path` (not following a symlink there).
fn remove_existing(path: &Path) -> io::Result<()> {
    match fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => fs::remove_dir_all(path),
        Ok(_) => fs::remove_file(path),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

impl State {
    fn bad_stream(&self, e: io::Error) -> Error {
        Error::Image(format!("layer {}: not a valid tar stream: {e}", self.what))
    }

    fn bad_entry(&self, path: &Path, why: impl std::fmt::Display) -> Error {
        Error::Image(format!("layer {}: entry {:?}: {why}", self.what, path.display().to_string()))
    }

    fn io_err(&self, path: &Path, action: &str, e: io::Error) -> Error {
        Error::io(format!("layer {}: {action} {}", self.what, path.display()), e)
    }

    /// Makes sure every directory on the way to `rel`'s parent exists and none is a symlink;
    /// returns the parent's absolute path.
    fn prepare_parents(&self, entry: &Path, rel: &Path) -> Result<PathBuf> {
        let mut cur = self.root.clone();
        let Some(parent) = rel.parent() else { return Ok(cur) };
        for c in parent.components() {
            cur.push(c);
            match fs::symlink_metadata(&cur) {
                Ok(m) if m.file_type().is_symlink() => {
                    return Err(self.bad_entry(entry, "its path goes through a symlink (it would escape the layer)"));
                }
                Ok(m) if m.is_dir() => {}
                Ok(_) => return Err(self.bad_entry(entry, format!("{:?} is not a directory", cur.strip_prefix(&self.root).unwrap_or(&cur)))),
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    fs::create_dir(&cur).map_err(|e| self.io_err(&cur, "creating directory", e))?;
                    fs::set_permissions(&cur, fs::Permissions::from_mode(0o755)).map_err(|e| self.io_err(&cur, "chmod", e))?;
                }
                Err(e) => return Err(self.io_err(&cur, "inspecting", e)),
            }
        }
        Ok(cur)
    }

    /// True when no component of `rel` (the last included) is a symlink.
    fn no_symlink_on_path(&self, rel: &Path) -> bool {
        let mut cur = self.root.clone();
        for c in rel.components() {
            cur.push(c);
            match fs::symlink_metadata(&cur) {
                Ok(m) if m.file_type().is_symlink() => return false,
                _ => {}
            }
        }
        true
    }

    fn meta<R: Read>(&self, entry: &mut tar::Entry<'_, R>, path: &Path) -> Result<Meta> {
        let h = entry.header();
        let old = h.as_old();
        // An empty numeric field is 0 (as Go's archive/tar reads it); garbage is an error.
        let num = |v: io::Result<u64>, raw: &[u8]| match v {
            Ok(n) => Ok(n),
            Err(_) if raw.iter().all(|b| *b == 0 || *b == b' ') => Ok(0),
            Err(e) => Err(self.bad_entry(path, format!("invalid header: {e}"))),
        };
        let mut meta = Meta {
            mode: num(h.mode().map(u64::from), &old.mode)? as u32 & 0o7777,
            uid: num(h.uid(), &old.uid)?,
            gid: num(h.gid(), &old.gid)?,
            mtime: (num(h.mtime(), &old.mtime)? as i64, 0),
            xattrs: Vec::new(),
        };
        if let Some(exts) = entry.pax_extensions().map_err(|e| self.bad_entry(path, format!("invalid PAX header: {e}")))? {
            for ext in exts {
                let ext = ext.map_err(|e| self.bad_entry(path, format!("invalid PAX header: {e}")))?;
                let Ok(key) = ext.key() else { continue };
                let value = ext.value_bytes();
                match key {
                    "uid" => meta.uid = std::str::from_utf8(value).ok().and_then(|v| v.parse().ok()).unwrap_or(meta.uid),
                    "gid" => meta.gid = std::str::from_utf8(value).ok().and_then(|v| v.parse().ok()).unwrap_or(meta.gid),
                    "mtime" => {
                        meta.mtime = std::str::from_utf8(value).ok().and_then(parse_pax_time).unwrap_or(meta.mtime);
                    }
                    k if k.starts_with(PAX_XATTR_PREFIX) => {
                        meta.xattrs.push((k[PAX_XATTR_PREFIX.len()..].to_string(), value.to_vec()));
                    }
                    _ => {}
                }
            }
        }
        Ok(meta)
    }

    fn chown(&self, path: &Path, meta: &Meta) -> Result<()> {
        if !self.root_owner {
            return Ok(());
        }
        let uid = u32::try_from(meta.uid).map_err(|_| self.bad_entry(path, format!("uid {} out of range", meta.uid)))?;
        let gid = u32::try_from(meta.gid).map_err(|_| self.bad_entry(path, format!("gid {} out of range", meta.gid)))?;
        std::os::unix::fs::lchown(path, Some(uid), Some(gid)).map_err(|e| self.io_err(path, "chown", e))
    }

    /// Xattrs go on after chown (which clears security.capability). Namespaces the filesystem
    /// does not support are skipped: the layer is still usable without them.
    fn xattrs(&self, path: &Path, meta: &Meta) {
        for (name, value) in &meta.xattrs {
            if let Err(e) = lsetxattr(path, name, value) {
                debug!(layer = %self.what, path = %path.display(), xattr = %name, "cannot set xattr: {e}");
            }
        }
    }

    fn entry<R: Read>(&mut self, entry: &mut tar::Entry<'_, R>) -> Result<()> {
        let raw = entry.path().map_err(|e| self.bad_stream(e))?.into_owned();
        let rel = normalize(&raw).map_err(|why| self.bad_entry(&raw, why))?;
        let kind = entry.header().entry_type();
        let meta = self.meta(entry, &raw)?;

        if rel.as_os_str().is_empty() {
            // `./`: the layer root's own metadata.
            if kind.is_dir() {
                self.chown(&self.root, &meta)?;
                self.dirs.push(DirMeta { rel, mode: meta.mode, mtime: meta.mtime });
            }
            return Ok(());
        }
        let parent = self.prepare_parents(&raw, &rel)?;
        let name = rel.file_name().expect("a normalized non-empty path has a file name").to_string_lossy().into_owned();

        if name == OPAQUE_MARKER {
            return lsetxattr(&parent, OPAQUE_XATTR, b"y").map_err(|e| self.io_err(&parent, "setting trusted.overlay.opaque on", e));
        }
        if let Some(hidden) = name.strip_prefix(WHITEOUT_PREFIX) {
            if hidden.starts_with(WHITEOUT_PREFIX) {
                // Other `.wh..wh.` names are aufs bookkeeping (hard-link dirs): not content.
                debug!(layer = %self.what, entry = %raw.display(), "skipping aufs metadata entry");
                return Ok(());
            }
            if hidden.is_empty() {
                return Err(self.bad_entry(&raw, "whiteout without a name"));
            }
            let target = parent.join(hidden);
            remove_existing(&target).map_err(|e| self.io_err(&target, "removing", e))?;
            mknod(&target, libc::S_IFCHR, 0, 0, 0).map_err(|e| self.io_err(&target, "creating whiteout device", e))?;
            return Ok(());
        }

        let dest = self.root.join(&rel);
        if kind.is_dir() {
            match fs::symlink_metadata(&dest) {
                Ok(m) if m.is_dir() => {}
                Ok(_) => {
                    fs::remove_file(&dest).map_err(|e| self.io_err(&dest, "removing", e))?;
                    fs::create_dir(&dest).map_err(|e| self.io_err(&dest, "creating directory", e))?;
                }
                Err(_) => fs::create_dir(&dest).map_err(|e| self.io_err(&dest, "creating directory", e))?,
            }
            // Owner-writable until the end, whatever the final mode.
            fs::set_permissions(&dest, fs::Permissions::from_mode(0o700)).map_err(|e| self.io_err(&dest, "chmod", e))?;
            self.chown(&dest, &meta)?;
            self.xattrs(&dest, &meta);
            self.dirs.push(DirMeta { rel, mode: meta.mode, mtime: meta.mtime });
            return Ok(());
        }

        remove_existing(&dest).map_err(|e| self.io_err(&dest, "replacing", e))?;
        match kind {
            tar::EntryType::Regular | tar::EntryType::Continuous | tar::EntryType::GNUSparse => {
                let mut f = OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .custom_flags(libc::O_NOFOLLOW)
                    .open(&dest)
                    .map_err(|e| self.io_err(&dest, "creating", e))?;
                io::copy(entry, &mut f).map_err(|e| self.bad_stream(e))?;
                drop(f);
                self.chown(&dest, &meta)?;
                fs::set_permissions(&dest, fs::Permissions::from_mode(meta.mode)).map_err(|e| self.io_err(&dest, "chmod", e))?;
            }
            tar::EntryType::Symlink => {
                let target = entry
                    .link_name()
                    .map_err(|e| self.bad_entry(&raw, format!("invalid link name: {e}")))?
                    .ok_or_else(|| self.bad_entry(&raw, "symlink without a target"))?
                    .into_owned();
                // The target may be anything: it is resolved inside the container's root.
                std::os::unix::fs::symlink(&target, &dest).map_err(|e| self.io_err(&dest, "creating symlink", e))?;
                self.chown(&dest, &meta)?;
            }
            tar::EntryType::Link => {
                let raw_target = entry
                    .link_name()
                    .map_err(|e| self.bad_entry(&raw, format!("invalid link name: {e}")))?
                    .ok_or_else(|| self.bad_entry(&raw, "hard link without a target"))?
                    .into_owned();
                let target = normalize(&raw_target).map_err(|why| self.bad_entry(&raw, format!("hard link target: {why}")))?;
                if target.as_os_str().is_empty() || !self.no_symlink_on_path(target.parent().unwrap_or(Path::new(""))) {
                    return Err(self.bad_entry(&raw, format!("hard link target {:?} is outside the layer", raw_target.display().to_string())));
                }
                let source = self.root.join(&target);
                match fs::symlink_metadata(&source) {
                    Ok(m) if !m.is_dir() => {}
                    Ok(_) => return Err(self.bad_entry(&raw, "hard link to a directory")),
                    Err(_) => {
                        return Err(self.bad_entry(&raw, format!("hard link target {:?} is not in the layer", raw_target.display().to_string())));
                    }
                }
                // linkat without AT_SYMLINK_FOLLOW: a link to a symlink is a link to the symlink.
                fs::hard_link(&source, &dest).map_err(|e| self.io_err(&dest, "creating hard link", e))?;
                // A hard link shares the inode: its metadata is its target's.
                return Ok(());
            }
            tar::EntryType::Char | tar::EntryType::Block | tar::EntryType::Fifo => {
                let h = entry.header();
                let major = h.device_major().ok().flatten().unwrap_or(0);
                let minor = h.device_minor().ok().flatten().unwrap_or(0);
                let t = match kind {
                    tar::EntryType::Char => libc::S_IFCHR,
                    tar::EntryType::Block => libc::S_IFBLK,
                    _ => libc::S_IFIFO,
                };
                mknod(&dest, t, meta.mode, major, minor).map_err(|e| self.io_err(&dest, "creating device node", e))?;
                self.chown(&dest, &meta)?;
                fs::set_permissions(&dest, fs::Permissions::from_mode(meta.mode)).map_err(|e| self.io_err(&dest, "chmod", e))?;
            }
            other => {
                debug!(layer = %self.what, entry = %raw.display(), kind = ?other, "skipping unsupported tar entry type");
                return Ok(());
            }
        }
        self.xattrs(&dest, &meta);
        set_times_nofollow(&dest, meta.mtime).map_err(|e| self.io_err(&dest, "setting mtime of", e))?;
        Ok(())
    }

    /// Directory modes and mtimes, deepest first so setting one does not disturb another.
    fn finish_dirs(&mut self) -> Result<()> {
        let mut dirs = std::mem::take(&mut self.dirs);
        dirs.sort_by_key(|d| std::cmp::Reverse(d.rel.components().count()));
        for d in dirs {
            // A later entry may have replaced the directory (or a parent) with a symlink.
            if !self.no_symlink_on_path(&d.rel) {
                continue;
            }
            let path = self.root.join(&d.rel);
            match fs::symlink_metadata(&path) {
                Ok(m) if m.is_dir() => {}
                _ => continue,
            }
            fs::set_permissions(&path, fs::Permissions::from_mode(d.mode)).map_err(|e| self.io_err(&path, "chmod", e))?;
            set_times_nofollow(&path, d.mtime).map_err(|e| self.io_err(&path, "setting mtime of", e))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::os::unix::fs::{FileTypeExt, MetadataExt};

    use super::*;

    /// One crafted entry. Names are written into the header raw, so hostile ones (`../x`,
    /// `/abs`) survive the tar crate's own checks.
    struct E<'a> {
        name: &'a str,
        kind: tar::EntryType,
        data: &'a [u8],
        link: Option<&'a str>,
        mode: u32,
        uid: u64,
        mtime: u64,
    }

    fn e<'a>(name: &'a str, kind: tar::EntryType) -> E<'a> {
        E { name, kind, data: b"", link: None, mode: if kind.is_dir() { 0o755 } else { 0o644 }, uid: 0, mtime: 1_600_000_000 }
    }

    fn file<'a>(name: &'a str, data: &'a [u8]) -> E<'a> {
        E { data, ..e(name, tar::EntryType::Regular) }
    }

    fn link<'a>(name: &'a str, kind: tar::EntryType, target: &'a str) -> E<'a> {
        E { link: Some(target), ..e(name, kind) }
    }

    fn tar_of(entries: &[E]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for en in entries {
            let mut h = tar::Header::new_gnu();
            {
                let name = &mut h.as_old_mut().name;
                name.fill(0);
                name[..en.name.len()].copy_from_slice(en.name.as_bytes());
            }
            if let Some(l) = en.link {
                let ln = &mut h.as_old_mut().linkname;
                ln.fill(0);
                ln[..l.len()].copy_from_slice(l.as_bytes());
            }
            h.set_entry_type(en.kind);
            h.set_mode(en.mode);
            h.set_uid(en.uid);
            h.set_gid(en.uid);
            h.set_mtime(en.mtime);
            h.set_size(en.data.len() as u64);
            h.set_cksum();
            b.append(&h, en.data).unwrap();
        }
        b.into_inner().unwrap()
    }

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(data).unwrap();
        enc.finish().unwrap()
    }

    fn unpack_bytes(blob: &[u8], media_type: Option<&str>) -> (tempfile::TempDir, Result<Unpacked>) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("blob");
        fs::write(&path, blob).unwrap();
        let r = unpack_layer(&path, media_type, &dir.path().join("layer"), "test");
        (dir, r)
    }

    fn sample() -> Vec<u8> {
        tar_of(&[
            e("./", tar::EntryType::Directory),
            E { mode: 0o750, uid: 1000, mtime: 1_500_000_000, ..e("bin/", tar::EntryType::Directory) },
            E { mode: 0o4755, uid: 1000, ..file("bin/tool", b"#!/bin/sh\necho hi\n") },
            link("bin/sh", tar::EntryType::Symlink, "/bin/tool"),
            link("bin/hard", tar::EntryType::Link, "./bin/tool"),
            file("etc/implicit-parent", b"x"),
            E { mode: 0o600, ..e("dev/null-ish", tar::EntryType::Fifo) },
        ])
    }

    #[test]
    fn unpacks_files_links_and_metadata() {
        let tar = sample();
        let (dir, r) = unpack_bytes(&gzip(&tar), Some("application/vnd.oci.image.layer.v1.tar+gzip"));
        let u = r.unwrap();
        assert_eq!(u.diff_id, super::super::digest::of(&tar), "diff id is the digest of the uncompressed tar");
        assert_eq!(u.uncompressed_bytes, tar.len() as u64);
        let l = dir.path().join("layer");
        assert_eq!(fs::read(l.join("bin/tool")).unwrap(), b"#!/bin/sh\necho hi\n");
        let m = fs::metadata(l.join("bin/tool")).unwrap();
        assert_eq!(m.mode() & 0o7777, 0o4755, "setuid survives chown");
        assert_eq!((m.uid(), m.gid()), (1000, 1000));
        assert_eq!(m.mtime(), 1_600_000_000);
        assert_eq!(m.nlink(), 2, "bin/hard is a hard link");
        assert_eq!(fs::metadata(l.join("bin/hard")).unwrap().ino(), m.ino());
        assert_eq!(fs::read_link(l.join("bin/sh")).unwrap(), Path::new("/bin/tool"));
        let d = fs::metadata(l.join("bin")).unwrap();
        assert_eq!((d.mode() & 0o7777, d.uid(), d.mtime()), (0o750, 1000, 1_500_000_000), "directory metadata applied last");
        assert_eq!(fs::read(l.join("etc/implicit-parent")).unwrap(), b"x");
        assert!(fs::symlink_metadata(l.join("dev/null-ish")).unwrap().file_type().is_fifo());
    }

    #[test]
    fn detects_compression_whatever_the_media_type_says() {
        let tar = sample();
        let zst = zstd::encode_all(&tar[..], 3).unwrap();
        let expected = super::super::digest::of(&tar);
        let cases: Vec<(Vec<u8>, Option<&str>)> = vec![
            (tar.clone(), Some("application/vnd.oci.image.layer.v1.tar")),
            (tar.clone(), Some("application/vnd.oci.image.layer.v1.tar+gzip")),
            (gzip(&tar), Some("application/vnd.oci.image.layer.v1.tar")),
            (gzip(&tar), Some("application/vnd.docker.image.rootfs.diff.tar.gzip")),
            (zst.clone(), Some("application/vnd.oci.image.layer.v1.tar+zstd")),
            (zst, None),
        ];
        for (i, (blob, mt)) in cases.into_iter().enumerate() {
            let (dir, r) = unpack_bytes(&blob, mt);
            let u = r.unwrap_or_else(|e| panic!("case {i}: {e}"));
            assert_eq!(u.diff_id, expected, "case {i}");
            assert!(dir.path().join("layer/bin/tool").is_file(), "case {i}");
        }
        assert_eq!(detect(&GZIP_MAGIC, None), Compression::Gzip);
        assert_eq!(detect(b"bin/\0\0", Some("x+zstd")), Compression::None);
    }

    #[test]
    fn whiteouts_become_overlayfs_whiteouts() {
        let tar = tar_of(&[
            e("etc/", tar::EntryType::Directory),
            file("etc/.wh.passwd", b""),
            e("opaque/", tar::EntryType::Directory),
            file("opaque/.wh..wh..opq", b""),
            file("opaque/kept", b"k"),
            file("implicit/.wh..wh..opq", b""),
            file(".wh..wh.plnk", b""),
            file("replaced", b"old"),
            file(".wh.replaced", b""),
        ]);
        let (dir, r) = unpack_bytes(&tar, None);
        r.unwrap();
        let l = dir.path().join("layer");
        for w in ["etc/passwd", "replaced"] {
            let m = fs::symlink_metadata(l.join(w)).unwrap();
            assert!(m.file_type().is_char_device(), "{w} is a whiteout device");
            assert_eq!(m.rdev(), 0, "{w} is device 0:0");
        }
        assert!(!l.join("etc/.wh.passwd").exists(), "the marker itself is not unpacked");
        for d in ["opaque", "implicit"] {
            let mut buf = [0u8; 8];
            let c = cstring(&l.join(d)).unwrap();
            let name = CString::new(OPAQUE_XATTR).unwrap();
            // SAFETY: valid C strings and buffer.
            let n = unsafe { libc::lgetxattr(c.as_ptr(), name.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
            assert_eq!(n, 1, "{d} has {OPAQUE_XATTR}: {}", io::Error::last_os_error());
            assert_eq!(buf[0], b'y');
            assert!(!l.join(d).join(OPAQUE_MARKER).exists());
        }
        assert_eq!(fs::read(l.join("opaque/kept")).unwrap(), b"k");
        assert!(!l.join(".wh..wh.plnk").exists());
    }

    #[test]
    fn pax_xattrs_times_and_long_names() {
        let mut b = tar::Builder::new(Vec::new());
        b.append_pax_extensions([("SCHILY.xattr.user.rkube", &b"v1"[..]), ("mtime", &b"1700000000.25"[..]), ("uid", &b"3000000"[..])])
            .unwrap();
        let mut h = tar::Header::new_gnu();
        h.set_size(2);
        h.set_mode(0o640);
        h.set_mtime(1);
        h.set_uid(0);
        h.set_gid(0);
        b.append_data(&mut h, "withxattr", &b"xa"[..]).unwrap();
        let long = format!("{}/file", "d".repeat(150));
        let mut h = tar::Header::new_gnu();
        h.set_size(1);
        h.set_mode(0o644);
        b.append_data(&mut h, &long, &b"l"[..]).unwrap();
        let tar = b.into_inner().unwrap();
        let (dir, r) = unpack_bytes(&tar, None);
        r.unwrap();
        let l = dir.path().join("layer");
        let f = l.join("withxattr");
        let m = fs::metadata(&f).unwrap();
        assert_eq!((m.mtime(), m.mtime_nsec(), m.uid()), (1_700_000_000, 250_000_000, 3_000_000), "PAX overrides the header");
        let mut buf = [0u8; 8];
        let c = cstring(&f).unwrap();
        let name = CString::new("user.rkube").unwrap();
        // SAFETY: valid C strings and buffer.
        let n = unsafe { libc::lgetxattr(c.as_ptr(), name.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
        assert_eq!(&buf[..n.max(0) as usize], b"v1");
        assert_eq!(fs::read(l.join(&long)).unwrap(), b"l");
    }

    #[test]
    fn later_entries_replace_earlier_ones() {
        let tar = tar_of(&[
            file("a", b"first"),
            file("a", b"second"),
            e("d/", tar::EntryType::Directory),
            file("d/x", b"x"),
            file("d", b"now a file"),
            file("f", b"f"),
            e("f/", tar::EntryType::Directory),
        ]);
        let (dir, r) = unpack_bytes(&tar, None);
        r.unwrap();
        let l = dir.path().join("layer");
        assert_eq!(fs::read(l.join("a")).unwrap(), b"second");
        assert_eq!(fs::read(l.join("d")).unwrap(), b"now a file");
        assert!(l.join("f").is_dir());
    }

    #[test]
    fn rejects_paths_that_escape() {
        let cases: Vec<(&str, Vec<E>, &str)> = vec![
            ("dotdot", vec![file("../evil", b"x")], "\"..\""),
            ("nested dotdot", vec![file("a/../../evil", b"x")], "\"..\""),
            ("absolute", vec![file("/evil", b"x")], "absolute"),
            (
                "through symlink",
                vec![link("up", tar::EntryType::Symlink, ".."), file("up/evil", b"x")],
                "symlink",
            ),
            (
                "through absolute symlink",
                vec![link("root", tar::EntryType::Symlink, "/"), file("root/tmp/evil", b"x")],
                "symlink",
            ),
            ("hard link out", vec![link("h", tar::EntryType::Link, "../evil")], "\"..\""),
            (
                "hard link via symlink",
                vec![link("up", tar::EntryType::Symlink, ".."), link("h", tar::EntryType::Link, "up/blob")],
                "outside the layer",
            ),
            ("hard link to nothing", vec![link("h", tar::EntryType::Link, "missing")], "not in the layer"),
            (
                "whiteout through symlink",
                vec![link("up", tar::EntryType::Symlink, ".."), file("up/.wh.blob", b"")],
                "symlink",
            ),
        ];
        for (name, entries, want) in cases {
            let (dir, r) = unpack_bytes(&tar_of(&entries), None);
            let err = r.expect_err(name).to_string();
            assert!(err.contains(want) && err.contains("layer test"), "{name}: {err}");
            assert!(!dir.path().join("evil").exists(), "{name}: wrote outside the layer");
            assert!(!dir.path().parent().unwrap().join("evil").exists(), "{name}: wrote outside the layer");
            assert!(dir.path().join("blob").is_file(), "{name}: the blob next to the layer is untouched");
        }
    }

    #[test]
    fn rejects_garbage() {
        let (_d, r) = unpack_bytes(&gzip(b"this is not a tar archive, just some bytes that are long enough"), None);
        assert!(r.is_err());
        let (_d, r) = unpack_bytes(b"x", Some("application/vnd.oci.image.layer.v1.tar+gzip+encrypted"));
        assert!(r.unwrap_err().to_string().contains("encrypted"));
        assert_eq!(parse_pax_time("1700000000.5"), Some((1_700_000_000, 500_000_000)));
        assert_eq!(parse_pax_time("12"), Some((12, 0)));
        assert_eq!(parse_pax_time("x"), None);
    }
}
