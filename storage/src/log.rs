//! The log area: opaque entries by index in the `log` column family of the same database.
//! The Raft crate keeps its log here so that log and state share one RocksDB and one WAL.

use rocksdb::{Direction, IteratorMode, ReadOptions, WriteBatch, WriteOptions};

use crate::codec::{decode_u64, rev_bytes};
use crate::error::Result;
use crate::store::{CF_LOCAL, CF_LOG, Store};

impl Store {
    /// Writes entries so that they are readable at once. Not synced: call [`Store::sync`] to make
    /// them (and every earlier write) durable; one fsync then covers many appends.
    pub fn log_append<'a>(&self, entries: impl IntoIterator<Item = (u64, &'a [u8])>) -> Result<()> {
        let cf = self.cf(CF_LOG);
        let mut batch = WriteBatch::default();
        for (index, bytes) in entries {
            batch.put_cf(cf, rev_bytes(index), bytes);
        }
        let mut wo = WriteOptions::default();
        wo.set_sync(false);
        self.db().write_opt(batch, &wo)?;
        Ok(())
    }

    /// Entries with `start <= index < end`, in order.
    pub fn log_range(&self, start: u64, end: u64) -> Result<Vec<(u64, Vec<u8>)>> {
        let mut out = Vec::new();
        if start >= end {
            return Ok(out);
        }
        let mut ro = ReadOptions::default();
        ro.set_iterate_upper_bound(rev_bytes(end).to_vec());
        let from = rev_bytes(start);
        for item in self.db().iterator_cf_opt(self.cf(CF_LOG), ro, IteratorMode::From(&from, Direction::Forward)) {
            let (k, v) = item?;
            out.push((decode_u64(&k)?, v.to_vec()));
        }
        Ok(out)
    }

    /// The entry with the highest index.
    pub fn log_last(&self) -> Result<Option<(u64, Vec<u8>)>> {
        match self.db().iterator_cf(self.cf(CF_LOG), IteratorMode::End).next() {
            Some(item) => {
                let (k, v) = item?;
                Ok(Some((decode_u64(&k)?, v.to_vec())))
            }
            None => Ok(None),
        }
    }

    /// Deletes every entry with index `>= from`.
    pub fn log_truncate_from(&self, from: u64) -> Result<()> {
        let mut batch = WriteBatch::default();
        batch.delete_range_cf(self.cf(CF_LOG), rev_bytes(from), rev_bytes(u64::MAX));
        self.db().write(batch)?;
        Ok(())
    }

    /// Deletes every entry with index `<= upto`, writing `local_meta` in the same batch (the
    /// caller records what it purged atomically with purging it).
    pub fn log_purge_upto(&self, upto: u64, local_meta: &[(&[u8], &[u8])]) -> Result<()> {
        let mut batch = WriteBatch::default();
        for (k, v) in local_meta {
            batch.put_cf(self.cf(CF_LOCAL), k, v);
        }
        batch.delete_range_cf(self.cf(CF_LOG), rev_bytes(0), rev_bytes(upto.saturating_add(1)));
        self.db().write(batch)?;
        Ok(())
    }
}
