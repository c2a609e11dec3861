//! Content digests (`sha256:<64 hex>`) and a streaming hasher.

use std::fmt;
use std::io::{self, Read, Write};
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest as _, Sha256};

/// A SHA-256 content digest as the OCI image spec writes it: `sha256:<64 lowercase hex>`.
///
/// ```
/// use kantup_bundle::Digest;
/// let d = Digest::of(b"");
/// assert_eq!(d.to_string(),
///     "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
/// assert_eq!(d, d.to_string().parse().unwrap());
/// assert_eq!(d.algorithm(), "sha256");
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest([u8; 32]);

/// Why a string is not a digest.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid digest {input:?}: {reason}")]
pub struct DigestParseError {
    /// The rejected text.
    pub input: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

impl Digest {
    /// The digest of `bytes`.
    pub fn of(bytes: &[u8]) -> Self {
        Digest(Sha256::digest(bytes).into())
    }

    /// Hashes everything `reader` yields (streaming, constant memory); returns the digest and
    /// the number of bytes read.
    pub fn of_reader(mut reader: impl Read) -> io::Result<(Self, u64)> {
        let mut writer = DigestWriter::new(io::sink());
        io::copy(&mut reader, &mut writer)?;
        let (_, digest, size) = writer.finish();
        Ok((digest, size))
    }

    /// Builds a digest from its 32 raw bytes.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Digest(bytes)
    }

    /// Parses a bare 64-hex string (no `sha256:` prefix), as docker archives name files.
    pub fn from_hex(hex_str: &str) -> Result<Self, DigestParseError> {
        let err = |reason| DigestParseError {
            input: hex_str.to_string(),
            reason,
        };
        if hex_str.len() != 64 {
            return Err(err("expected 64 hex characters"));
        }
        if hex_str.bytes().any(|b| b.is_ascii_uppercase()) {
            return Err(err("hex must be lowercase"));
        }
        let mut out = [0u8; 32];
        hex::decode_to_slice(hex_str, &mut out).map_err(|_| err("not hexadecimal"))?;
        Ok(Digest(out))
    }

    /// The algorithm name; always `sha256`.
    pub fn algorithm(&self) -> &'static str {
        "sha256"
    }

    /// The 64 lowercase hex characters.
    pub fn hex(&self) -> String {
        hex::encode(self.0)
    }

    /// The raw 32 bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sha256:{}", self.hex())
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Digest({self})")
    }
}

impl FromStr for Digest {
    type Err = DigestParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let Some((algorithm, hex_part)) = s.split_once(':') else {
            return Err(DigestParseError {
                input: s.to_string(),
                reason: "expected `sha256:<64 hex>`",
            });
        };
        if algorithm != "sha256" {
            return Err(DigestParseError {
                input: s.to_string(),
                reason: "unsupported algorithm (only sha256)",
            });
        }
        Digest::from_hex(hex_part).map_err(|e| DigestParseError {
            input: s.to_string(),
            reason: e.reason,
        })
    }
}

impl Serialize for Digest {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Digest {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// A writer that hashes and counts everything written through it, then passes it on.
///
/// ```
/// use std::io::Write;
/// use kantup_bundle::{Digest, DigestWriter};
/// let mut w = DigestWriter::new(Vec::new());
/// w.write_all(b"hello").unwrap();
/// let (inner, digest, size) = w.finish();
/// assert_eq!((inner.as_slice(), size), (&b"hello"[..], 5));
/// assert_eq!(digest, Digest::of(b"hello"));
/// ```
pub struct DigestWriter<W> {
    inner: W,
    hasher: Sha256,
    size: u64,
}

impl<W> DigestWriter<W> {
    /// Wraps `inner`.
    pub fn new(inner: W) -> Self {
        DigestWriter {
            inner,
            hasher: Sha256::new(),
            size: 0,
        }
    }

    /// Bytes written so far.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Returns the inner writer, the digest and the byte count.
    pub fn finish(self) -> (W, Digest, u64) {
        (self.inner, Digest(self.hasher.finalize().into()), self.size)
    }
}

impl<W: Write> Write for DigestWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.size += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// A reader that hashes and counts everything read through it.
pub struct DigestReader<R> {
    inner: R,
    hasher: Sha256,
    size: u64,
}

impl<R> DigestReader<R> {
    /// Wraps `inner`.
    pub fn new(inner: R) -> Self {
        DigestReader {
            inner,
            hasher: Sha256::new(),
            size: 0,
        }
    }

    /// The digest and byte count of what was read so far.
    pub fn finish(self) -> (Digest, u64) {
        (Digest(self.hasher.finalize().into()), self.size)
    }
}

impl<R: Read> Read for DigestReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.size += n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_table() {
        let good = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        let cases: &[(&str, Option<&str>)] = &[
            (good, None),
            ("sha256:abc", Some("expected 64 hex characters")),
            (
                "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
                Some("expected `sha256:<64 hex>`"),
            ),
            (
                "sha512:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
                Some("unsupported algorithm (only sha256)"),
            ),
            (
                "sha256:E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855",
                Some("hex must be lowercase"),
            ),
            (
                "sha256:z3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
                Some("not hexadecimal"),
            ),
        ];
        for (input, want) in cases {
            let got = input.parse::<Digest>();
            match want {
                None => assert_eq!(got.unwrap().to_string(), *input),
                Some(reason) => {
                    let e = got.unwrap_err();
                    assert_eq!(e.reason, *reason, "{input}");
                    assert!(e.to_string().contains(input), "error quotes input: {e}");
                }
            }
        }
    }

    #[test]
    fn serde_as_string() {
        let d = Digest::of(b"x");
        let json = serde_json::to_string(&d).unwrap();
        assert_eq!(json, format!("\"{d}\""));
        assert_eq!(serde_json::from_str::<Digest>(&json).unwrap(), d);
    }

    #[test]
    fn reader_and_writer_agree() {
        let data = vec![7u8; 100_000];
        let (d, n) = Digest::of_reader(&data[..]).unwrap();
        assert_eq!((d, n), (Digest::of(&data), 100_000));
        let mut r = DigestReader::new(&data[..]);
        io::copy(&mut r, &mut io::sink()).unwrap();
        assert_eq!(r.finish(), (d, 100_000));
    }
}
