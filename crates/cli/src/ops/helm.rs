//! The helm binary: the one place that builds helm command lines and their environment, runs
//! them and tells which Helm major version a binary is.
//!
//! Cluster access reaches helm as kubectl resolved it for kantup: a kubeconfig list through
//! `KUBECONFIG` (helm's `--kubeconfig` takes one file only), the context as `--kube-context`,
//! and the storage driver as `HELM_DRIVER`, so helm reads and writes the same release records
//! kantup checked.

use std::ffi::OsString;
use std::fmt;
use std::path::{Path, PathBuf};
use std::process::Command;

use kantup_helm_values::strvals::HelmVersion;
use kantup_k8s_apply::ClusterAccess;
use kantup_k8s_apply::release::StorageDriver;

/// What can go wrong running helm.
#[derive(Debug, thiserror::Error)]
pub enum HelmError {
    /// The binary could not be started.
    #[error("cannot run {}: {source} (set --helm or put helm on PATH)", binary.display())]
    Spawn {
        /// The helm binary.
        binary: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// helm ran and failed.
    #[error("`{command}` exited with {status}: {stderr}")]
    Failed {
        /// The command as printed by [`HelmCommand`]'s `Display`.
        command: String,
        /// The exit status.
        status: std::process::ExitStatus,
        /// What helm said on stderr (trimmed).
        stderr: String,
    },
}

/// A helm binary bound to one cluster access and storage driver.
#[derive(Debug, Clone)]
pub struct Helm {
    binary: PathBuf,
    version: HelmVersion,
    kubeconfig: Option<PathBuf>,
    context: Option<String>,
    driver: StorageDriver,
}

/// One helm invocation: arguments and the environment it needs.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct HelmCommand {
    /// The binary.
    pub program: PathBuf,
    /// Its arguments.
    pub args: Vec<String>,
    /// Environment variables set for it (on top of kantup's own environment).
    pub env: Vec<(String, String)>,
}

impl fmt::Display for HelmCommand {
    /// `HELM_DRIVER=secret helm upgrade ...`, with arguments quoted where a shell needs it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut words: Vec<String> = self
            .env
            .iter()
            .map(|(k, v)| format!("{k}={}", shell_quote(v)))
            .collect();
        words.push(shell_quote(&self.program.display().to_string()));
        words.extend(self.args.iter().map(|a| shell_quote(a)));
        f.write_str(&words.join(" "))
    }
}

fn shell_quote(word: &str) -> String {
    let plain = !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:=,@+%".contains(c));
    if plain {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

/// What `helm upgrade` gets.
#[derive(Debug, Clone)]
pub struct UpgradeRequest<'a> {
    /// The release.
    pub release: &'a str,
    /// Its namespace.
    pub namespace: &'a str,
    /// A chart directory or archive.
    pub chart: &'a Path,
    /// The one values file.
    pub values_file: &'a Path,
    /// `--timeout`.
    pub timeout: std::time::Duration,
    /// `--wait`.
    pub wait: bool,
    /// `--install`: the release does not exist yet.
    pub install: bool,
    /// `--create-namespace` (with `install`).
    pub create_namespace: bool,
    /// `--skip-crds` (with `install`): kantup applied the chart's CRDs already.
    pub skip_crds: bool,
}

impl Helm {
    /// The binary `binary` for `access` and `driver`; runs `helm version --short` to learn
    /// its major version (Helm 3 and 4 differ in a few `--set` rules).
    pub fn detect(
        binary: impl Into<PathBuf>,
        access: &ClusterAccess,
        driver: StorageDriver,
    ) -> Result<Helm, HelmError> {
        let binary = binary.into();
        let output = Command::new(&binary)
            .args(["version", "--short"])
            .output()
            .map_err(|source| HelmError::Spawn {
                binary: binary.clone(),
                source,
            })?;
        if !output.status.success() {
            return Err(HelmError::Failed {
                command: format!("{} version --short", binary.display()),
                status: output.status,
                stderr: String::from_utf8_lossy(&output.stderr).trim().to_string(),
            });
        }
        let text = String::from_utf8_lossy(&output.stdout);
        let version = if text.trim_start().starts_with("v4") {
            HelmVersion::V4
        } else {
            HelmVersion::V3
        };
        Ok(Helm {
            binary,
            version,
            kubeconfig: access.kubeconfig.clone(),
            context: access.context.clone(),
            driver,
        })
    }

    /// The Helm major version whose rules values follow.
    pub fn version(&self) -> HelmVersion {
        self.version
    }

    /// The binary.
    pub fn binary(&self) -> &Path {
        &self.binary
    }

    /// A command `helm ARGS` with the cluster access and storage driver of this helm.
    pub fn command(&self, args: Vec<String>) -> HelmCommand {
        let mut args = args;
        if let Some(context) = &self.context {
            args.push("--kube-context".to_string());
            args.push(context.clone());
        }
        let mut env = vec![(
            "HELM_DRIVER".to_string(),
            match self.driver {
                StorageDriver::Secret => "secret",
                StorageDriver::ConfigMap => "configmap",
            }
            .to_string(),
        )];
        if let Some(kubeconfig) = &self.kubeconfig {
            env.push((
                "KUBECONFIG".to_string(),
                kubeconfig.to_string_lossy().into_owned(),
            ));
        }
        HelmCommand {
            program: self.binary.clone(),
            args,
            env,
        }
    }

    /// `helm upgrade [--install] RELEASE CHART -n NS --values FILE --timeout T ...`.
    pub fn upgrade_command(&self, request: &UpgradeRequest<'_>) -> HelmCommand {
        let mut args = vec!["upgrade".to_string()];
        if request.install {
            args.push("--install".to_string());
        }
        args.extend([
            request.release.to_string(),
            request.chart.display().to_string(),
            "--namespace".to_string(),
            request.namespace.to_string(),
            "--values".to_string(),
            request.values_file.display().to_string(),
            "--timeout".to_string(),
            go_duration(request.timeout),
        ]);
        if request.wait {
            args.push("--wait".to_string());
        }
        if request.install && request.create_namespace {
            args.push("--create-namespace".to_string());
        }
        if request.install && request.skip_crds {
            args.push("--skip-crds".to_string());
        }
        self.command(args)
    }

    /// `helm rollback RELEASE REVISION -n NS` (printed, and run by `kantup rollback`).
    pub fn rollback_command(&self, release: &str, revision: u32, namespace: &str) -> HelmCommand {
        self.command(vec![
            "rollback".to_string(),
            release.to_string(),
            revision.to_string(),
            "--namespace".to_string(),
            namespace.to_string(),
        ])
    }

    /// `helm uninstall RELEASE -n NS`: the way back from a first install.
    pub fn uninstall_command(&self, release: &str, namespace: &str) -> HelmCommand {
        self.command(vec![
            "uninstall".to_string(),
            release.to_string(),
            "--namespace".to_string(),
            namespace.to_string(),
        ])
    }

    /// Runs `command`; returns helm's stdout. Fails with helm's stderr when it exits non-zero.
    pub fn run(&self, command: &HelmCommand) -> Result<String, HelmError> {
        tracing::info!(command = %command, "running helm");
        let output = Command::new(&command.program)
            .args(&command.args)
            .envs(
                command
                    .env
                    .iter()
                    .map(|(k, v)| (OsString::from(k), OsString::from(v))),
            )
            .output()
            .map_err(|source| HelmError::Spawn {
                binary: command.program.clone(),
                source,
            })?;
        if !output.status.success() {
            return Err(HelmError::Failed {
                command: command.to_string(),
                status: output.status,
                stderr: String::from_utf8_lossy(&output.stderr).trim().to_string(),
            });
        }
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    }
}

/// A duration in Go's syntax (`90s`, `1500ms`), which helm's `--timeout` parses.
pub fn go_duration(duration: std::time::Duration) -> String {
    if duration.subsec_millis() == 0 {
        format!("{}s", duration.as_secs())
    } else {
        format!("{}ms", duration.as_millis())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn helm(kubeconfig: Option<&str>, context: Option<&str>, driver: StorageDriver) -> Helm {
        Helm {
            binary: PathBuf::from("/opt/helm"),
            version: HelmVersion::V3,
            kubeconfig: kubeconfig.map(PathBuf::from),
            context: context.map(str::to_string),
            driver,
        }
    }

    #[test]
    fn cluster_access_and_driver_reach_helm_through_its_environment() {
        let h = helm(
            Some("/a/one:/b/two"),
            Some("prod"),
            StorageDriver::ConfigMap,
        );
        let command = h.upgrade_command(&UpgradeRequest {
            release: "kant",
            namespace: "kant-system",
            chart: Path::new("/tmp/kant"),
            values_file: Path::new("/tmp/v.yaml"),
            timeout: std::time::Duration::from_secs(5400),
            wait: false,
            install: true,
            create_namespace: true,
            skip_crds: true,
        });
        assert_eq!(
            command.env,
            vec![
                ("HELM_DRIVER".to_string(), "configmap".to_string()),
                ("KUBECONFIG".to_string(), "/a/one:/b/two".to_string())
            ]
        );
        assert!(!command.args.iter().any(|a| a == "--kubeconfig"));
        assert_eq!(
            command.to_string(),
            "HELM_DRIVER=configmap KUBECONFIG=/a/one:/b/two /opt/helm upgrade --install kant \
             /tmp/kant --namespace kant-system --values /tmp/v.yaml --timeout 5400s \
             --create-namespace --skip-crds --kube-context prod"
        );
    }

    #[test]
    fn an_upgrade_has_no_install_flags_and_the_default_driver_is_named() {
        let h = helm(None, None, StorageDriver::Secret);
        let command = h.upgrade_command(&UpgradeRequest {
            release: "kant",
            namespace: "ns",
            chart: Path::new("c d"),
            values_file: Path::new("v.yaml"),
            timeout: std::time::Duration::from_millis(1500),
            wait: true,
            install: false,
            create_namespace: true,
            skip_crds: true,
        });
        assert_eq!(
            command.to_string(),
            "HELM_DRIVER=secret /opt/helm upgrade kant 'c d' --namespace ns --values v.yaml \
             --timeout 1500ms --wait"
        );
    }
}
