//! Blobs held in memory, as a [`BlobSource`].

use std::collections::HashMap;
use std::io::Read;

use bytes::Bytes;
use kantup_bundle::Digest;

use super::{BlobRef, BlobSource};

/// A [`BlobSource`] over in-memory blobs (tests, charts, generated content).
#[derive(Debug, Default, Clone)]
pub struct MemoryBlobs(pub HashMap<Digest, Bytes>);

impl MemoryBlobs {
    /// Adds `data`, returning its descriptor.
    pub fn add(&mut self, data: impl Into<Bytes>) -> BlobRef {
        let data = data.into();
        let digest = Digest::of(&data);
        let size = data.len() as u64;
        self.0.insert(digest, data);
        BlobRef { digest, size }
    }
}

impl BlobSource for MemoryBlobs {
    fn open_blob(&self, digest: &Digest) -> std::io::Result<Box<dyn Read + Send>> {
        let data = self.0.get(digest).cloned().ok_or_else(|| {
            std::io::Error::new(std::io::ErrorKind::NotFound, format!("no blob {digest}"))
        })?;
        Ok(Box::new(std::io::Cursor::new(data)))
    }
}
