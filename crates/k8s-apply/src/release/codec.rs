//! Helm's `encodeRelease` / `decodeRelease`: `base64(gzip(json))`.

use std::io::{Read, Write};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use super::model::Release;
use crate::error::CodecError;

const GZIP_MAGIC: [u8; 3] = [0x1f, 0x8b, 0x08];
/// Release records are at most 1 MiB (the Secret/ConfigMap limit); anything that inflates past
/// this is not a release record.
const MAX_DECODED: u64 = 128 * 1024 * 1024;

/// Decodes the `release` value of a storage object (the base64 text, after the Secret API's own
/// base64 has been removed). Like Helm, data without the gzip magic is read as plain JSON.
///
/// ```
/// let release = kantup_k8s_apply::release::Release { name: "demo".into(), version: 3, ..Default::default() };
/// let text = kantup_k8s_apply::release::encode_release(&release).unwrap();
/// let back = kantup_k8s_apply::release::decode_release(text.as_bytes()).unwrap();
/// assert_eq!((back.name.as_str(), back.version), ("demo", 3));
/// ```
pub fn decode_release(data: &[u8]) -> Result<Release, CodecError> {
    let text: Vec<u8> = data
        .iter()
        .copied()
        .filter(|b| !b.is_ascii_whitespace())
        .collect();
    let raw = STANDARD.decode(&text)?;
    let json = if raw.len() > 3 && raw[..3] == GZIP_MAGIC {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(raw.as_slice())
            .take(MAX_DECODED + 1)
            .read_to_end(&mut out)
            .map_err(CodecError::Gzip)?;
        if out.len() as u64 > MAX_DECODED {
            return Err(CodecError::TooLarge(MAX_DECODED));
        }
        out
    } else {
        raw
    };
    Ok(serde_json::from_slice(&json)?)
}

/// Encodes a release the way Helm's `encodeRelease` does (JSON, gzip at best compression,
/// standard base64). Useful for tests and tools that write fixtures.
pub fn encode_release(release: &Release) -> Result<String, CodecError> {
    let json = serde_json::to_vec(release)?;
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    gz.write_all(&json).map_err(CodecError::Gzip)?;
    let bytes = gz.finish().map_err(CodecError::Gzip)?;
    Ok(STANDARD.encode(bytes))
}
