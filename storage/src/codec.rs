//! On-disk encodings. Every layout is fixed-width big-endian so that RocksDB's byte order is
//! the order we need (revisions ascending, a key's versions contiguous and ascending).

use crate::error::{Result, StoreError};

/// Separates a user key from the revision in the `mvcc` column family. Kubernetes keys are
/// printable, so a NUL byte cannot occur inside them (checked on write).
pub const KEY_REV_SEP: u8 = 0;

pub fn rev_bytes(rev: u64) -> [u8; 8] {
    rev.to_be_bytes()
}

pub fn decode_u64(b: &[u8]) -> Result<u64> {
    let arr: [u8; 8] = b
        .get(..8)
        .and_then(|s| s.try_into().ok())
        .ok_or_else(|| StoreError::Corrupt(format!("expected 8 bytes, found {}", b.len())))?;
    Ok(u64::from_be_bytes(arr))
}

/// `key \0 rev`
pub fn mvcc_key(key: &str, rev: u64) -> Vec<u8> {
    let mut k = Vec::with_capacity(key.len() + 9);
    k.extend_from_slice(key.as_bytes());
    k.push(KEY_REV_SEP);
    k.extend_from_slice(&rev_bytes(rev));
    k
}

/// Splits an `mvcc` key into the user key and the revision.
pub fn split_mvcc_key(k: &[u8]) -> Result<(&[u8], u64)> {
    if k.len() < 9 || k[k.len() - 9] != KEY_REV_SEP {
        return Err(StoreError::Corrupt("malformed mvcc key".into()));
    }
    let (key, rest) = k.split_at(k.len() - 9);
    Ok((key, decode_u64(&rest[1..])?))
}

/// A version in the `mvcc` column family: `[flags][create_rev][value]`.
pub struct Version<'a> {
    pub tombstone: bool,
    pub create_rev: u64,
    pub value: &'a [u8],
}

pub fn encode_version(tombstone: bool, create_rev: u64, value: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(9 + value.len());
    v.push(tombstone as u8);
    v.extend_from_slice(&rev_bytes(create_rev));
    v.extend_from_slice(value);
    v
}

pub fn decode_version(b: &[u8]) -> Result<Version<'_>> {
    if b.len() < 9 {
        return Err(StoreError::Corrupt("short mvcc version".into()));
    }
    Ok(Version { tombstone: b[0] & 1 == 1, create_rev: decode_u64(&b[1..9])?, value: &b[9..] })
}

/// The latest version of a live key in the `current` column family: `[create_rev][mod_rev][value]`.
pub fn encode_current(create_rev: u64, mod_rev: u64, value: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(16 + value.len());
    v.extend_from_slice(&rev_bytes(create_rev));
    v.extend_from_slice(&rev_bytes(mod_rev));
    v.extend_from_slice(value);
    v
}

pub fn decode_current(b: &[u8]) -> Result<(u64, u64, &[u8])> {
    if b.len() < 16 {
        return Err(StoreError::Corrupt("short current record".into()));
    }
    Ok((decode_u64(&b[0..8])?, decode_u64(&b[8..16])?, &b[16..]))
}

/// `rev seq` key of the `events` column family.
pub fn event_key(rev: u64, seq: u32) -> [u8; 12] {
    let mut k = [0u8; 12];
    k[..8].copy_from_slice(&rev_bytes(rev));
    k[8..].copy_from_slice(&seq.to_be_bytes());
    k
}

/// The smallest key strictly greater than every key that starts with `prefix`,
/// or `None` when there is none (prefix of all 0xff).
pub fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mvcc_keys_sort_by_key_then_revision() {
        let mut keys = vec![mvcc_key("/a/b", 3), mvcc_key("/a", 10), mvcc_key("/a", 2), mvcc_key("/a/b", 1)];
        keys.sort();
        let decoded: Vec<_> = keys.iter().map(|k| split_mvcc_key(k).unwrap()).map(|(k, r)| (k.to_vec(), r)).collect();
        assert_eq!(
            decoded,
            vec![(b"/a".to_vec(), 2), (b"/a".to_vec(), 10), (b"/a/b".to_vec(), 1), (b"/a/b".to_vec(), 3)]
        );
    }

    #[test]
    fn prefix_end_cases() {
        assert_eq!(prefix_end(b"/a/"), Some(b"/a0".to_vec()));
        assert_eq!(prefix_end(&[1, 0xff]), Some(vec![2]));
        assert_eq!(prefix_end(&[0xff, 0xff]), None);
        assert_eq!(prefix_end(b""), None);
    }

    #[test]
    fn version_round_trip() {
        let enc = encode_version(true, 7, b"v");
        let v = decode_version(&enc).unwrap();
        assert!(v.tombstone);
        assert_eq!(v.create_rev, 7);
        assert_eq!(v.value, b"v");
        let c = encode_current(1, 2, b"xyz");
        assert_eq!(decode_current(&c).unwrap(), (1, 2, &b"xyz"[..]));
    }
}
