//! Every media type kantup reads or writes: OCI and Docker images, and Helm charts stored in
//! OCI registries. The one place for them; the registry client, chart targets and chart
//! repositories all name these constants.
//!
//! ```
//! use kantup_bundle::media_types;
//! assert!(media_types::is_index(media_types::OCI_INDEX));
//! assert!(media_types::MANIFESTS.contains(&media_types::DOCKER_MANIFEST));
//! ```

/// Docker schema 2 manifest.
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// Docker manifest list.
pub const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
/// Docker image config.
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
/// Docker gzip layer.
pub const DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
/// Docker uncompressed layer.
pub const DOCKER_LAYER: &str = "application/vnd.docker.image.rootfs.diff.tar";
/// OCI manifest.
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// OCI index.
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// OCI config.
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
/// OCI uncompressed layer.
pub const OCI_LAYER: &str = "application/vnd.oci.image.layer.v1.tar";
/// OCI gzip layer.
pub const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
/// OCI zstd layer.
pub const OCI_LAYER_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";

/// A Helm chart's OCI config blob (`Chart.yaml` as JSON).
pub const HELM_CONFIG: &str = "application/vnd.cncf.helm.config.v1+json";
/// The OCI layer holding a Helm chart archive (`.tgz`).
pub const HELM_CHART_CONTENT: &str = "application/vnd.cncf.helm.chart.content.v1.tar+gzip";
/// The chart layer's media type before Helm 3.8 (helm still pulls it).
pub const HELM_CHART_CONTENT_LEGACY: &str = "application/tar+gzip";
/// A Helm chart's provenance file layer.
pub const HELM_PROVENANCE: &str = "application/vnd.cncf.helm.chart.provenance.v1.prov";

/// The empty config / layer of OCI 1.1 artifacts (`{}`).
pub const OCI_EMPTY: &str = "application/vnd.oci.empty.v1+json";
/// A cosign signature layer: the simple-signing payload, its signature in the layer annotation
/// [`COSIGN_SIGNATURE_ANNOTATION`].
pub const COSIGN_SIMPLE_SIGNING: &str = "application/vnd.dev.cosign.simplesigning.v1+json";
/// A DSSE envelope (cosign attestation layers).
pub const DSSE_ENVELOPE: &str = "application/vnd.dsse.envelope.v1+json";
/// A Sigstore bundle, v0.3 (what cosign 3 attaches as an OCI 1.1 referrer).
pub const SIGSTORE_BUNDLE_V03: &str = "application/vnd.dev.sigstore.bundle.v0.3+json";
/// The layer annotation holding a cosign signature (base64 DER ECDSA) over the layer's bytes.
pub const COSIGN_SIGNATURE_ANNOTATION: &str = "dev.cosignproject.cosign/signature";
/// The layer annotation holding the signing certificate (PEM) of a keyless cosign signature.
pub const COSIGN_CERTIFICATE_ANNOTATION: &str = "dev.sigstore.cosign/certificate";
/// The `index.json` annotation `cosign save` writes to say what a manifest is.
pub const COSIGN_KIND_ANNOTATION: &str = "kind";

/// The manifest media types kantup asks registries for and understands, most preferred first
/// (the `Accept` header of manifest requests).
pub const MANIFESTS: [&str; 4] = [
    OCI_MANIFEST,
    OCI_INDEX,
    DOCKER_MANIFEST,
    DOCKER_MANIFEST_LIST,
];

/// Whether a media type is an index / manifest list.
pub fn is_index(media_type: &str) -> bool {
    media_type == OCI_INDEX || media_type == DOCKER_MANIFEST_LIST
}

/// Whether a media type is an image manifest kantup reads (OCI, Docker schema 2).
pub fn is_manifest(media_type: &str) -> bool {
    media_type == OCI_MANIFEST || media_type == DOCKER_MANIFEST
}
