//! A blob's bytes on their way out: read from the source on a blocking thread in pieces,
//! hashed as they go, and handed to the HTTP stack as a streamed body.

use std::io::Read;

use bytes::{Bytes, BytesMut};
use kantup_bundle::Digest;
use sha2::{Digest as _, Sha256};

use super::{Blob, PIECE};
use crate::client::RegistryClient;
use crate::error::RegistryError;

/// Pieces queued between the reading thread and the connection, per transfer.
const PIECES_IN_FLIGHT: usize = 4;

/// The bytes of a blob being read in order, hashed as they go.
pub(super) struct SourceCursor {
    pub(super) reader: Box<dyn Read + Send>,
    pub(super) hasher: Sha256,
    pub(super) position: u64,
}

impl RegistryClient {
    /// Opens the source and reads (hashing, not sending) its first `offset` bytes.
    pub(super) async fn source_at(
        &self,
        blob: &Blob<'_>,
        offset: u64,
    ) -> std::result::Result<SourceCursor, RegistryError> {
        let reader = (blob.open)().map_err(|e| blob.source_error(e))?;
        let mut cursor = SourceCursor {
            reader,
            hasher: Sha256::new(),
            position: 0,
        };
        if offset == 0 {
            return Ok(cursor);
        }
        let skipped = tokio::task::spawn_blocking(move || {
            let mut buf = vec![0u8; PIECE];
            while cursor.position < offset {
                let n = (offset - cursor.position).min(PIECE as u64) as usize;
                cursor.reader.read_exact(&mut buf[..n])?;
                cursor.hasher.update(&buf[..n]);
                cursor.position += n as u64;
            }
            Ok::<_, std::io::Error>(cursor)
        })
        .await
        .map_err(|e| blob.source_error(std::io::Error::other(e)))?;
        skipped.map_err(|e| blob.source_error(e))
    }
}

/// A request body streaming `len` bytes of `cursor`, read on a blocking thread. When
/// `expected` (digest, size) is given, the last piece is held back unless the whole blob
/// hashed to that digest, which fails the request instead.
pub(super) fn stream_body(
    mut cursor: SourceCursor,
    len: u64,
    expected: Option<(Digest, u64)>,
) -> (
    reqwest::Body,
    tokio::task::JoinHandle<std::io::Result<SourceCursor>>,
) {
    let (tx, rx) = tokio::sync::mpsc::channel::<std::io::Result<Bytes>>(PIECES_IN_FLIGHT);
    let reading = tokio::task::spawn_blocking(move || {
        let mut left = len;
        loop {
            let n = left.min(PIECE as u64) as usize;
            let mut piece = BytesMut::zeroed(n);
            if let Err(e) = cursor.reader.read_exact(&mut piece) {
                let e = if e.kind() == std::io::ErrorKind::UnexpectedEof {
                    std::io::Error::new(
                        std::io::ErrorKind::InvalidData,
                        format!(
                            "source content does not match: it ends before byte {}",
                            cursor.position + n as u64
                        ),
                    )
                } else {
                    e
                };
                let _ = tx.blocking_send(Err(std::io::Error::new(e.kind(), e.to_string())));
                return Err(e);
            }
            cursor.hasher.update(&piece);
            cursor.position += n as u64;
            left -= n as u64;
            if left == 0
                && let Some((digest, size)) = &expected
            {
                let computed = Digest::from_bytes(cursor.hasher.clone().finalize().into());
                let mut extra = [0u8; 1];
                let longer = matches!(cursor.reader.read(&mut extra), Ok(1));
                if computed != *digest || cursor.position != *size || longer {
                    let e = std::io::Error::new(
                        std::io::ErrorKind::InvalidData,
                        format!(
                            "source content does not match: {} bytes with digest {computed}, expected {size} bytes with {digest}",
                            if longer {
                                format!("more than {}", cursor.position)
                            } else {
                                cursor.position.to_string()
                            }
                        ),
                    );
                    let _ = tx.blocking_send(Err(std::io::Error::new(e.kind(), e.to_string())));
                    return Err(e);
                }
            }
            if n > 0 && tx.blocking_send(Ok(piece.freeze())).is_err() {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::BrokenPipe,
                    "the request ended before its body was sent",
                ));
            }
            if left == 0 {
                return Ok(cursor);
            }
        }
    });
    let stream = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    });
    (reqwest::Body::wrap_stream(stream), reading)
}
