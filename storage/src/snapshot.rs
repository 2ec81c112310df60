//! Snapshots: a RocksDB checkpoint (a consistent, hard-linked copy taken in an instant) is
//! exported into one self-checking file holding only replicated state; restoring replaces the
//! state column families of a live store with the file's contents in one atomic batch.
//!
//! File layout: `RKSNAP01` magic, then records `[cf u8][key len u32][value len u32][key][value]`,
//! then the trailer `[0xff][record count u64][crc32 of everything before the trailer's crc]`.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::Path;

use rocksdb::{DB, IteratorMode, Options, WriteBatch, WriteOptions, checkpoint::Checkpoint};

use crate::error::{Result, StoreError};
use crate::store::{CF_SMMETA, STATE_CFS, Store};

const MAGIC: &[u8; 8] = b"RKSNAP01";
const END: u8 = 0xff;

/// What an export wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SnapshotStats {
    pub records: u64,
    pub bytes: u64,
}

impl Store {
    /// Creates a RocksDB checkpoint of the whole database in `dir` (which must not exist).
    pub fn checkpoint(&self, dir: &Path) -> Result<()> {
        let cp = Checkpoint::new(self.db())?;
        cp.create_checkpoint(dir)?;
        Ok(())
    }

    /// Replaces all replicated state with the snapshot in `file`, and writes `meta` into the
    /// replicated metadata in the same batch. Watchers are told to re-read from disk.
    pub fn restore(&self, file: &Path, meta: &[(&[u8], &[u8])]) -> Result<SnapshotStats> {
        let stats = verify(file)?;
        let mut batch = WriteBatch::default();
        for name in STATE_CFS {
            let cf = self.cf(name);
            let first = self.db().iterator_cf(cf, IteratorMode::Start).next().transpose()?;
            let last = self.db().iterator_cf(cf, IteratorMode::End).next().transpose()?;
            if let (Some((first, _)), Some((last, _))) = (first, last) {
                let mut end = last.to_vec();
                end.push(0);
                batch.delete_range_cf(cf, &first[..], &end[..]);
            }
        }
        for_each_record(file, |cf, k, v| {
            batch.put_cf(self.cf(STATE_CFS[cf as usize]), k, v);
            Ok(())
        })?;
        for (k, v) in meta {
            batch.put_cf(self.cf(CF_SMMETA), k, v);
        }
        let mut wo = WriteOptions::default();
        wo.set_sync(true);
        self.db().write_opt(batch, &wo)?;
        self.reload_after_restore()?;
        Ok(stats)
    }
}

/// Exports the replicated state of a checkpoint directory into a snapshot file.
pub fn export_checkpoint(checkpoint: &Path, out: &Path) -> Result<SnapshotStats> {
    let file = File::create(out)?;
    let (stats, file) = export_checkpoint_to(checkpoint, file)?;
    file.sync_all()?;
    Ok(stats)
}

/// Exports the replicated state of a checkpoint directory in the snapshot format to any writer
/// (a file, or a stream to a member that needs it); returns the writer.
pub fn export_checkpoint_to<W: Write>(checkpoint: &Path, out: W) -> Result<(SnapshotStats, W)> {
    let db = DB::open_cf_for_read_only(&Options::default(), checkpoint, crate::store::all_cf_names(), false)?;
    let mut w = CrcWriter { inner: BufWriter::with_capacity(1 << 20, out), crc: crc32fast::Hasher::new(), bytes: 0 };
    w.write_all(MAGIC)?;
    let mut records = 0u64;
    for (i, name) in STATE_CFS.iter().enumerate() {
        let cf = db.cf_handle(name).ok_or_else(|| StoreError::InvalidSnapshot(format!("checkpoint lacks {name}")))?;
        for item in db.iterator_cf(cf, IteratorMode::Start) {
            let (k, v) = item?;
            w.write_all(&[i as u8])?;
            w.write_all(&(k.len() as u32).to_be_bytes())?;
            w.write_all(&(v.len() as u32).to_be_bytes())?;
            w.write_all(&k)?;
            w.write_all(&v)?;
            records += 1;
        }
    }
    w.write_all(&[END])?;
    w.write_all(&records.to_be_bytes())?;
    let crc = w.crc.clone().finalize();
    w.inner.write_all(&crc.to_be_bytes())?;
    let bytes = w.bytes + 4;
    let mut inner = w.inner.into_inner().map_err(|e| StoreError::Io(e.into_error()))?;
    inner.flush()?;
    Ok((SnapshotStats { records, bytes }, inner))
}

/// Checks a snapshot file's structure and checksum without loading it.
pub fn verify(file: &Path) -> Result<SnapshotStats> {
    let mut n = 0;
    let stats = for_each_record(file, |_, _, _| {
        n += 1;
        Ok(())
    })?;
    Ok(stats)
}

/// Reads the replicated metadata (the `smmeta` records) of a snapshot file.
pub fn read_meta(file: &Path) -> Result<HashMap<Vec<u8>, Vec<u8>>> {
    let smmeta = STATE_CFS.iter().position(|n| *n == CF_SMMETA).expect("smmeta is a state cf") as u8;
    let mut out = HashMap::new();
    for_each_record(file, |cf, k, v| {
        if cf == smmeta {
            out.insert(k.to_vec(), v.to_vec());
        }
        Ok(())
    })?;
    Ok(out)
}

fn for_each_record(file: &Path, mut f: impl FnMut(u8, &[u8], &[u8]) -> Result<()>) -> Result<SnapshotStats> {
    let bad = |what: &str| StoreError::InvalidSnapshot(format!("{}: {what}", file.display()));
    let total = std::fs::metadata(file)?.len();
    let mut r = CrcReader { inner: BufReader::with_capacity(1 << 20, File::open(file)?), crc: crc32fast::Hasher::new() };
    let mut magic = [0u8; 8];
    r.read_exact(&mut magic).map_err(|_| bad("too short to be a snapshot"))?;
    if &magic != MAGIC {
        return Err(bad("not an rkube snapshot (bad magic)"));
    }
    let mut records = 0u64;
    let mut k = Vec::new();
    let mut v = Vec::new();
    loop {
        let mut tag = [0u8; 1];
        r.read_exact(&mut tag).map_err(|_| bad("truncated"))?;
        if tag[0] == END {
            break;
        }
        if tag[0] as usize >= STATE_CFS.len() {
            return Err(bad("unknown column family tag"));
        }
        let mut lens = [0u8; 8];
        r.read_exact(&mut lens).map_err(|_| bad("truncated"))?;
        let kl = u32::from_be_bytes(lens[..4].try_into().expect("4 bytes")) as usize;
        let vl = u32::from_be_bytes(lens[4..].try_into().expect("4 bytes")) as usize;
        if (kl + vl) as u64 > total {
            return Err(bad("record longer than the file"));
        }
        k.resize(kl, 0);
        v.resize(vl, 0);
        r.read_exact(&mut k).map_err(|_| bad("truncated"))?;
        r.read_exact(&mut v).map_err(|_| bad("truncated"))?;
        f(tag[0], &k, &v)?;
        records += 1;
    }
    let mut count = [0u8; 8];
    r.read_exact(&mut count).map_err(|_| bad("truncated trailer"))?;
    if u64::from_be_bytes(count) != records {
        return Err(bad("record count mismatch"));
    }
    let computed = r.crc.clone().finalize();
    let mut crc = [0u8; 4];
    r.inner.read_exact(&mut crc).map_err(|_| bad("missing checksum"))?;
    if u32::from_be_bytes(crc) != computed {
        return Err(bad("checksum mismatch"));
    }
    Ok(SnapshotStats { records, bytes: total })
}

struct CrcWriter<W: Write> {
    inner: W,
    crc: crc32fast::Hasher,
    bytes: u64,
}

impl<W: Write> Write for CrcWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.crc.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

struct CrcReader<R: Read> {
    inner: R,
    crc: crc32fast::Hasher,
}

impl<R: Read> Read for CrcReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.crc.update(&buf[..n]);
        Ok(n)
    }
}
