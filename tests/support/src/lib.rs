//! Shared test harness for the kantup workspace.
//!
//! Tests use real tools, not mocks (DEVELOPERS.md). `scripts/install-test-tools.sh` installs them;
//! this crate finds them and fails loudly, naming the install script, when one is missing, so a
//! test can never pass by silently skipping its real peer.

pub mod dt_wrap;
pub mod fake_apiserver;
pub mod fault_proxy;
pub mod gnu_time;
pub mod image_gen;
pub mod kube_cluster;
pub mod kubelet;
pub mod registry_server;
pub mod runtimes;
pub mod signed_images;
pub mod ssh_node;
pub mod token_issuer;
pub mod tools;

pub use tools::{
    fixtures_dir, helm3, helm4, kubectl, relok8s_fixtures, require_tool, skopeo,
    skopeo_manifest_digest, workspace_root, write_back_dirty_pages,
};
