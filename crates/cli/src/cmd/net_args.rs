//! The TLS and credential flags every command that talks HTTP takes, the same way: `sync`,
//! `repo versions` and `repo pull`.

use std::path::PathBuf;

use clap::Args;
use kantup_registry::credentials::{CredentialResolver, CredentialsError};
use kantup_registry::net::HttpOptions;

/// `--ca-file`, `--insecure-skip-tls-verify`, `--plain-http`.
#[derive(Debug, Clone, Args)]
pub struct TlsArgs {
    /// CA certificates (PEM) to trust besides the system's, for every registry and chart
    /// repository this command talks to.
    #[arg(long, value_name = "FILE")]
    pub ca_file: Option<PathBuf>,
    /// Do not verify TLS certificates (a warning names each host).
    #[arg(long)]
    pub insecure_skip_tls_verify: bool,
    /// Talk plain HTTP to registries. Without it HTTPS is tried first; only a loopback or
    /// private address that does not answer TLS falls back to plain HTTP, with a warning.
    #[arg(long)]
    pub plain_http: bool,
}

impl TlsArgs {
    /// The shared HTTP options these flags stand for.
    pub fn http_options(&self) -> HttpOptions {
        HttpOptions::with_tls(
            self.ca_file.clone(),
            self.insecure_skip_tls_verify,
            self.plain_http,
        )
    }
}

/// `--username`, `--password` (else `KANTUP_REPO_USERNAME`/`KANTUP_REPO_PASSWORD`).
#[derive(Debug, Clone, Args)]
pub struct CredentialArgs {
    /// Username for the repository or registry (else $KANTUP_REPO_USERNAME, else docker's
    /// config.json for oci://). Sent only to the repository's own host.
    #[arg(long)]
    pub username: Option<String>,
    /// Password for the repository; prefer $KANTUP_REPO_PASSWORD over the flag, which other
    /// users may see in the process list.
    #[arg(long)]
    pub password: Option<String>,
}

impl CredentialArgs {
    /// Flags, then `KANTUP_REPO_*`, then docker's `config.json` (for `oci://` only).
    pub fn resolver(&self) -> Result<CredentialResolver, CredentialsError> {
        Ok(CredentialResolver::new()
            .given(
                "--username/--password",
                self.username.clone(),
                self.password.clone(),
            )?
            .env(kantup_registry::credentials::EnvPair::KANTUP_REPO)
            .docker_config())
    }
}
