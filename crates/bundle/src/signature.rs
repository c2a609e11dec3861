//! Detached bundle signatures that work fully offline with a pinned key: ECDSA P-256 over the
//! SHA-256 of the whole bundle file.
//!
//! The signature file is what `cosign sign-blob --key` writes (the DER signature in base64, one
//! line) or what `openssl dgst -sha256 -sign key.pem` writes (the raw DER signature); both are
//! read. Keys are PEM: a public key as `cosign generate-key-pair` and
//! `openssl ec -pubout` write it (`PUBLIC KEY`, SubjectPublicKeyInfo), a private key as
//! `openssl ecparam -genkey` (`EC PRIVATE KEY`) or PKCS#8 (`PRIVATE KEY`) write it. The bundle
//! is hashed as a stream, so its size does not matter.
//!
//! Crypto: RustCrypto's `p256` (ECDSA with RFC 6979 deterministic nonces), because it verifies
//! a prehashed digest; `ring`, already in the tree through kube, only verifies whole messages
//! held in memory.
//!
//! ```
//! use kantup_bundle::signature::{SigningKey, VerifyingKey};
//! let dir = tempfile::tempdir()?;
//! let bundle = dir.path().join("kant.bundle.tar");
//! std::fs::write(&bundle, b"a bundle")?;
//! let key = SigningKey::generate();
//! let signature = key.sign_file(&bundle)?;
//! let public = VerifyingKey::from_pem(&key.verifying_key().to_pem(), "pub.pem")?;
//! public.verify_file(&bundle, &signature)?;
//! std::fs::write(&bundle, b"a changed bundle")?;
//! assert!(public.verify_file(&bundle, &signature).is_err());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::io::Read;
use std::path::{Path, PathBuf};

use base64::Engine;
use p256::ecdsa::signature::hazmat::{PrehashSigner, PrehashVerifier};
use p256::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePublicKey, LineEnding};
use sha2::{Digest as _, Sha256};

use crate::FileError;

/// Why a signature could not be made or did not verify.
#[derive(Debug, thiserror::Error)]
pub enum SignatureError {
    /// A file could not be read or written.
    #[error(transparent)]
    Io(FileError),
    /// A key file is not a P-256 key in PEM.
    #[error("{file}: not an ECDSA P-256 {kind} key in PEM: {reason}")]
    BadKey {
        /// The key file.
        file: String,
        /// `public` or `private`.
        kind: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// A signature file holds neither base64 nor DER of an ECDSA signature.
    #[error(
        "{file}: not an ECDSA signature (base64 as cosign writes it, or DER as openssl writes it): {reason}"
    )]
    BadSignature {
        /// The signature file.
        file: String,
        /// What is wrong.
        reason: String,
    },
    /// The signature does not match the bundle and key.
    #[error("{}: the signature in {signature} does not verify with the key in {key}: the bundle was changed or signed with another key", bundle.display())]
    Mismatch {
        /// The bundle.
        bundle: PathBuf,
        /// The signature file.
        signature: String,
        /// The public key file.
        key: String,
    },
}

/// A P-256 public key, with the file it came from for messages.
#[derive(Debug, Clone)]
pub struct VerifyingKey {
    key: p256::ecdsa::VerifyingKey,
    origin: String,
}

/// A P-256 private key.
pub struct SigningKey {
    key: p256::ecdsa::SigningKey,
}

/// A detached signature (DER), with the file it came from for messages.
#[derive(Debug, Clone)]
pub struct DetachedSignature {
    signature: p256::ecdsa::Signature,
    origin: String,
}

impl DetachedSignature {
    /// Parses a signature file's bytes: base64 of DER (cosign), or raw DER (openssl).
    pub fn parse(bytes: &[u8], origin: &str) -> Result<Self, SignatureError> {
        let bad = |reason: String| SignatureError::BadSignature {
            file: origin.to_string(),
            reason,
        };
        let der = if bytes.first() == Some(&0x30) {
            bytes.to_vec()
        } else {
            let text: String = String::from_utf8_lossy(bytes)
                .chars()
                .filter(|c| !c.is_whitespace())
                .collect();
            base64::engine::general_purpose::STANDARD
                .decode(text.as_bytes())
                .map_err(|e| bad(format!("not base64 ({e}) and not DER")))?
        };
        let signature = p256::ecdsa::Signature::from_der(&der).map_err(|e| bad(e.to_string()))?;
        Ok(Self {
            signature,
            origin: origin.to_string(),
        })
    }

    /// Reads a signature file.
    pub fn read(path: &Path) -> Result<Self, SignatureError> {
        let bytes = std::fs::read(path).map_err(|source| {
            SignatureError::Io(FileError {
                action: "read the signature",
                path: path.to_path_buf(),
                source,
            })
        })?;
        Self::parse(&bytes, &path.display().to_string())
    }

    /// The signature as cosign writes it: base64 of the DER, with a newline.
    pub fn to_base64(&self) -> String {
        let der = self.signature.to_der();
        format!(
            "{}\n",
            base64::engine::general_purpose::STANDARD.encode(der.as_bytes())
        )
    }

    /// The DER bytes, as openssl writes them.
    pub fn to_der(&self) -> Vec<u8> {
        self.signature.to_der().as_bytes().to_vec()
    }
}

impl VerifyingKey {
    /// Parses a PEM public key (`PUBLIC KEY`); `origin` names it in errors.
    pub fn from_pem(pem: &str, origin: &str) -> Result<Self, SignatureError> {
        let key = p256::ecdsa::VerifyingKey::from_public_key_pem(pem.trim()).map_err(|e| {
            SignatureError::BadKey {
                file: origin.to_string(),
                kind: "public",
                reason: e.to_string(),
            }
        })?;
        Ok(Self {
            key,
            origin: origin.to_string(),
        })
    }

    /// Reads a PEM public key file.
    pub fn read(path: &Path) -> Result<Self, SignatureError> {
        let pem = std::fs::read_to_string(path).map_err(|source| {
            SignatureError::Io(FileError {
                action: "read the public key",
                path: path.to_path_buf(),
                source,
            })
        })?;
        Self::from_pem(&pem, &path.display().to_string())
    }

    /// The key as PEM (`PUBLIC KEY`).
    pub fn to_pem(&self) -> String {
        self.key
            .to_public_key_pem(LineEnding::LF)
            .expect("a valid key encodes")
    }

    /// A key from its SEC1 encoding (`04 || X || Y`, or compressed), as test vectors give it.
    pub fn from_sec1(bytes: &[u8], origin: &str) -> Result<Self, SignatureError> {
        let key = p256::ecdsa::VerifyingKey::from_sec1_bytes(bytes).map_err(|e| {
            SignatureError::BadKey {
                file: origin.to_string(),
                kind: "public",
                reason: e.to_string(),
            }
        })?;
        Ok(Self {
            key,
            origin: origin.to_string(),
        })
    }

    /// Where the key came from (its file), for messages.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// The key's hint as Sigstore bundles carry it (`verificationMaterial.publicKey.hint`,
    /// what cosign writes): base64 of the SHA-256 of the DER `SubjectPublicKeyInfo`.
    pub fn hint(&self) -> String {
        let der = self.key.to_public_key_der().expect("a valid key encodes");
        base64::engine::general_purpose::STANDARD.encode(Sha256::digest(der.as_bytes()))
    }

    /// Whether `signature` (DER as cosign and openssl write it, or the fixed 64-byte `r || s`
    /// of the DSSE test vectors) is this key's ECDSA signature over the SHA-256 digest
    /// `prehash`.
    pub fn verifies_prehash(&self, prehash: &[u8; 32], signature: &[u8]) -> bool {
        let parsed = p256::ecdsa::Signature::from_der(signature)
            .or_else(|_| p256::ecdsa::Signature::from_slice(signature));
        parsed.is_ok_and(|signature| self.key.verify_prehash(prehash, &signature).is_ok())
    }

    /// Whether `signature` is this key's ECDSA P-256 / SHA-256 signature over `message`.
    pub fn verifies_message(&self, message: &[u8], signature: &[u8]) -> bool {
        self.verifies_prehash(&Sha256::digest(message).into(), signature)
    }

    /// Checks `signature` over the bundle file at `path` (hashed as a stream).
    pub fn verify_file(
        &self,
        path: &Path,
        signature: &DetachedSignature,
    ) -> Result<(), SignatureError> {
        let digest = sha256_file(path)?;
        self.key
            .verify_prehash(&digest, &signature.signature)
            .map_err(|_| SignatureError::Mismatch {
                bundle: path.to_path_buf(),
                signature: signature.origin.clone(),
                key: self.origin.clone(),
            })
    }
}

impl SigningKey {
    /// A new random key (for tests and `cosign generate-key-pair`-like tooling).
    pub fn generate() -> Self {
        Self {
            key: p256::ecdsa::SigningKey::random(&mut p256::elliptic_curve::rand_core::OsRng),
        }
    }

    /// Parses a PEM private key: `EC PRIVATE KEY` (SEC1, as `openssl ecparam -genkey` writes)
    /// or `PRIVATE KEY` (PKCS#8).
    pub fn from_pem(pem: &str, origin: &str) -> Result<Self, SignatureError> {
        let bad = |reason: String| SignatureError::BadKey {
            file: origin.to_string(),
            kind: "private",
            reason,
        };
        let pem = pem.trim();
        let secret = if pem.contains("BEGIN EC PRIVATE KEY") {
            // openssl puts an `EC PARAMETERS` block first: only the key block counts.
            let start = pem.find("-----BEGIN EC PRIVATE KEY").unwrap_or(0);
            p256::SecretKey::from_sec1_pem(&pem[start..]).map_err(|e| bad(e.to_string()))?
        } else if pem.contains("BEGIN PRIVATE KEY") {
            p256::SecretKey::from_pkcs8_pem(pem).map_err(|e| bad(e.to_string()))?
        } else if pem.contains("ENCRYPTED") {
            return Err(bad(
                "the key is encrypted (a cosign key file); export it unencrypted, e.g. with \
                 `openssl ec`, or sign with cosign itself"
                    .to_string(),
            ));
        } else {
            return Err(bad("no `EC PRIVATE KEY` or `PRIVATE KEY` block".to_string()));
        };
        Ok(Self {
            key: p256::ecdsa::SigningKey::from(secret),
        })
    }

    /// Reads a PEM private key file.
    pub fn read(path: &Path) -> Result<Self, SignatureError> {
        let pem = std::fs::read_to_string(path).map_err(|source| {
            SignatureError::Io(FileError {
                action: "read the private key",
                path: path.to_path_buf(),
                source,
            })
        })?;
        Self::from_pem(&pem, &path.display().to_string())
    }

    /// The matching public key.
    pub fn verifying_key(&self) -> VerifyingKey {
        VerifyingKey {
            key: *self.key.verifying_key(),
            origin: "(generated)".to_string(),
        }
    }

    /// Signs `message` (ECDSA P-256 over its SHA-256): the DER signature, as cosign stores it
    /// (base64) in a signature layer's annotation.
    pub fn sign_message(&self, message: &[u8]) -> Vec<u8> {
        let signature: p256::ecdsa::Signature = self
            .key
            .sign_prehash(&Sha256::digest(message))
            .expect("a 32-byte digest is a valid prehash");
        signature.to_der().as_bytes().to_vec()
    }

    /// Signs the SHA-256 of the file at `path` (hashed as a stream).
    pub fn sign_file(&self, path: &Path) -> Result<DetachedSignature, SignatureError> {
        let digest = sha256_file(path)?;
        let signature: p256::ecdsa::Signature = self
            .key
            .sign_prehash(&digest)
            .expect("a 32-byte digest is a valid prehash");
        Ok(DetachedSignature {
            signature,
            origin: path.display().to_string(),
        })
    }
}

/// The signature file beside a bundle when none is named: `<bundle>.sig`, as cosign's
/// `--output-signature` is usually given.
pub fn default_signature_path(bundle: &Path) -> PathBuf {
    let mut name = bundle.as_os_str().to_owned();
    name.push(".sig");
    PathBuf::from(name)
}

/// Verifies `bundle` with the public key file `key` and the signature file `signature`
/// (default [`default_signature_path`]): what `--verify-key` does before any change.
pub fn verify_bundle_file(
    bundle: &Path,
    key: &Path,
    signature: Option<&Path>,
) -> Result<(), SignatureError> {
    let key = VerifyingKey::read(key)?;
    let signature_path = signature
        .map(Path::to_path_buf)
        .unwrap_or_else(|| default_signature_path(bundle));
    let signature = DetachedSignature::read(&signature_path)?;
    key.verify_file(bundle, &signature)
}

fn sha256_file(path: &Path) -> Result<[u8; 32], SignatureError> {
    let io = |source| {
        SignatureError::Io(FileError {
            action: "read",
            path: path.to_path_buf(),
            source,
        })
    };
    let mut file = std::fs::File::open(path).map_err(io)?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buffer).map_err(io)?;
        if n == 0 {
            break;
        }
        hasher.update(&buffer[..n]);
    }
    Ok(hasher.finalize().into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_and_der_signatures_parse_alike() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("b");
        std::fs::write(&file, b"x").unwrap();
        let key = SigningKey::generate();
        let signature = key.sign_file(&file).unwrap();
        let from_b64 = DetachedSignature::parse(signature.to_base64().as_bytes(), "s").unwrap();
        let from_der = DetachedSignature::parse(&signature.to_der(), "s").unwrap();
        assert_eq!(from_b64.to_der(), from_der.to_der());
        for bad in [&b"not a signature"[..], b"", b"\x30\x02\x01"] {
            let err = DetachedSignature::parse(bad, "sig.txt")
                .unwrap_err()
                .to_string();
            assert!(err.starts_with("sig.txt: not an ECDSA signature"), "{err}");
        }
    }

    #[test]
    fn keys_that_are_not_p256_pem_are_named() {
        let err = VerifyingKey::from_pem("hello", "pub.pem")
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("pub.pem: not an ECDSA P-256 public key"),
            "{err}"
        );
        let err = SigningKey::from_pem("hello", "key.pem")
            .err()
            .unwrap()
            .to_string();
        assert!(
            err.starts_with("key.pem: not an ECDSA P-256 private key"),
            "{err}"
        );
    }
}
