//! `sha256:<hex>` digests: validation and hashing readers. Only sha256 is supported — it is the
//! only algorithm registries and image builders use in practice.

use std::io::{self, Read};

use sha2::{Digest, Sha256};

/// The hex part of a `sha256:<64 lowercase hex>` digest, or why it is not one.
pub(crate) fn hex(digest: &str) -> Result<&str, String> {
    let Some((alg, hex)) = digest.split_once(':') else {
        return Err(format!("invalid digest {digest:?}: expected sha256:<hex>"));
    };
    if alg != "sha256" {
        return Err(format!("unsupported digest algorithm {alg:?} in {digest:?} (only sha256)"));
    }
    if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
        return Err(format!("invalid digest {digest:?}: expected 64 lowercase hex characters"));
    }
    Ok(hex)
}

/// `hex` as a runtime error.
pub(crate) fn checked(digest: &str) -> crate::Result<&str> {
    hex(digest).map_err(crate::Error::Image)
}

pub(crate) fn of(bytes: &[u8]) -> String {
    format!("sha256:{}", ::hex::encode(Sha256::digest(bytes)))
}

pub(crate) fn finish(hasher: Sha256) -> String {
    format!("sha256:{}", ::hex::encode(hasher.finalize()))
}

/// Hashes everything read through it.
pub(crate) struct HashingReader<R> {
    inner: R,
    hasher: Sha256,
    pub(crate) bytes: u64,
}

impl<R: Read> HashingReader<R> {
    pub(crate) fn new(inner: R) -> Self {
        HashingReader { inner, hasher: Sha256::new(), bytes: 0 }
    }

    /// Reads what is left (a tar reader stops at the end-of-archive blocks, but the digest
    /// covers the padding after them too) and returns the digest and the byte count.
    pub(crate) fn drain(mut self) -> io::Result<(String, u64)> {
        io::copy(&mut self, &mut io::sink())?;
        Ok((finish(self.hasher), self.bytes))
    }
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn validates() {
        let empty = super::of(b"");
        assert_eq!(empty, "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
        assert!(super::hex(&empty).is_ok());
        for bad in ["", "sha256:", "sha256:ABC", "e3b0c442", "sha512:00", &empty.to_uppercase()] {
            assert!(super::hex(bad).is_err(), "{bad}");
        }
    }
}
