//! A detached bundle signature, as `cosign sign-blob --key` writes it.

use std::path::PathBuf;

use kantup_bundle::signature::{SigningKey, default_signature_path};

use super::BundleOpError;

/// What [`sign`] signs, with which key, into which file.
#[derive(Debug, Clone)]
pub struct SignOptions {
    /// The bundle.
    pub bundle: PathBuf,
    /// The private key (PEM: `EC PRIVATE KEY` or PKCS#8).
    pub key: PathBuf,
    /// Where to write the signature (default `<bundle>.sig`).
    pub output: Option<PathBuf>,
}

/// Signs the bundle (ECDSA P-256 / SHA-256) and writes the base64 of the DER signature,
/// atomically; returns the signature file.
pub fn sign(options: &SignOptions) -> Result<PathBuf, BundleOpError> {
    let key = SigningKey::read(&options.key)?;
    let signature = key.sign_file(&options.bundle)?;
    let output = options
        .output
        .clone()
        .unwrap_or_else(|| default_signature_path(&options.bundle));
    // A signature is public: normal permissions.
    kantup_bundle::atomic::write(&output, signature.to_base64().as_bytes())?;
    Ok(output)
}
