//! `--image-key`, the same on every command that takes a bundle's images somewhere:
//! `bundle verify`, `sync`, `load` and `upgrade` (`bundle sbom` has its own: it marks, never
//! refuses).

use std::path::PathBuf;

use clap::Args;

/// `--image-key PUB.pem` (repeatable).
#[derive(Debug, Clone, Default, Args)]
pub struct ImageKeyArgs {
    /// Refuse the bundle unless every image it carries (every platform of a multi-platform
    /// image) has a valid signature by one of these public keys (PEM, as `cosign
    /// generate-key-pair` or `openssl ec -pubout` write it; repeatable): a cosign `.sig`
    /// signature, or an attestation or Sigstore bundle whose subject is the image, carried in
    /// the bundle. Checked offline before anything changes; a refusal exits 3 naming each
    /// image and why.
    #[arg(long = "image-key", value_name = "PUB.pem")]
    pub image_keys: Vec<PathBuf>,
}
