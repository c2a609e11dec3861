//! Output format, logging set-up, error printing and exit codes shared by every command.

use std::process::ExitCode;

use clap::ValueEnum;
use serde::Serialize;

/// How a command prints its result on stdout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    /// A readable table or summary.
    Table,
    /// One JSON document.
    Json,
}

/// What every command gets: the output format and verbosity.
#[derive(Debug, Clone)]
pub struct Ctx {
    pub output: OutputFormat,
    pub verbose: u8,
    pub quiet: bool,
    /// How bundles are opened (`--max-expanded-size`), handed to every workflow that opens one.
    pub open: kantup_bundle::OpenOptions,
}

impl Ctx {
    pub fn new(
        output: OutputFormat,
        verbose: u8,
        quiet: bool,
        open: kantup_bundle::OpenOptions,
    ) -> Self {
        Self {
            output,
            verbose,
            quiet,
            open,
        }
    }

    /// Logs go to stderr through tracing; `RUST_LOG` overrides `-v`/`-q`.
    pub fn init_logging(&self) {
        let default = match (self.quiet, self.verbose) {
            (true, _) => "error",
            (false, 0) => "warn",
            (false, 1) => "info",
            (false, 2) => "debug",
            (false, _) => "trace",
        };
        // kube's own "Server cert bypassed" names no server; kantup's access code says it
        // with the server's address instead.
        let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
            tracing_subscriber::EnvFilter::new(format!("{default},kube_client::client::tls=error"))
        });
        let _ = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            // Colour codes only for a person at a terminal, never into a log file or pipe.
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .with_target(false)
            .try_init();
    }

    /// Whether progress bars may be drawn (not with `-q`, not with `--output json`).
    pub fn show_progress(&self) -> bool {
        !self.quiet && self.output == OutputFormat::Table
    }

    /// Prints `value` as pretty JSON on stdout.
    pub fn print_json<T: Serialize>(&self, value: &T) -> anyhow::Result<()> {
        println!("{}", serde_json::to_string_pretty(value)?);
        Ok(())
    }
}

/// A byte count as people read it: `512 B`, `4.2 KiB`, `560.2 MiB`, `1.1 GiB`.
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

/// Prints an error and its causes on stderr, one per line.
/// A cause whose text the line before already says is not repeated: workflow errors show
/// their inner error's message and keep it as their source, so exit codes can be read from it.
pub fn print_error(error: &anyhow::Error) {
    for line in error_lines(error) {
        eprintln!("{line}");
    }
}

/// The lines [`print_error`] prints.
fn error_lines(error: &anyhow::Error) -> Vec<String> {
    let mut last = error.to_string();
    let mut lines = vec![format!("error: {last}")];
    for cause in error.chain().skip(1) {
        let text = cause.to_string();
        if last.contains(&text) {
            continue;
        }
        lines.push(format!("  caused by: {text}"));
        last = text;
    }
    lines
}

/// The exit codes every command uses (also listed in `kantup --help`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// 0: success.
    Ok = 0,
    /// 1: the command failed (bad input, I/O, network, a runtime command failed).
    Failure = 1,
    /// 2: the command line is wrong (unknown flag, missing argument); clap's own code.
    Usage = 2,
    /// 3: verification failed: content does not match its digest (bundle member, image blob,
    /// chart archive against the repository index).
    VerificationFailed = 3,
    /// 4: nothing to do / not found: the asked-for chart, version or image is not there, or
    /// the target is not in the expected state (e.g. not synced).
    NothingToDo = 4,
    /// 5: not ready: objects of the release are not Current (`status`; `upgrade` and
    /// `rollback` after waiting: a timeout or a failed object). The release is left as it is.
    NotReady = 5,
}

impl Exit {
    /// The process exit code.
    pub fn code(self) -> ExitCode {
        ExitCode::from(self as u8)
    }
}

/// Success when `ok`, else failure (1): the exit code of a plan or a check.
pub fn success_if(ok: bool) -> ExitCode {
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// The exit-code table printed at the end of `kantup --help`.
pub const EXIT_CODES_HELP: &str = "\
Exit codes:
  0  success
  1  failure (bad input, I/O, network, a container runtime or registry error)
  2  usage error (unknown flag, missing or invalid argument)
  3  verification failed (a digest, size or signature does not match, or an image is not
     signed by any --image-key; nothing was written)
  4  nothing to do / not found (no such chart, version or image; target not in sync)
  5  not ready (status; upgrade/rollback waited: an object failed or the timeout passed)";

/// An error that carries the exit code it should end the process with.
#[derive(Debug)]
pub struct ExitError {
    pub exit: Exit,
    pub message: String,
}

impl ExitError {
    pub fn new(exit: Exit, message: impl Into<String>) -> Self {
        Self {
            exit,
            message: message.into(),
        }
    }
}

impl std::fmt::Display for ExitError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ExitError {}

/// Maps an error to its exit code, the one place exit codes are decided: an [`ExitError`]
/// anywhere in the chain decides; digest and size mismatches from the libraries are
/// verification failures (3); "not found" from a chart repository, a repository without
/// versions, a source without bundles and a bundle without images are "nothing to do" (4);
/// half a username/password pair, a version that is not semver for an `oci://` chart or a
/// `--retag` that is not `REGISTRY[/PREFIX]` is a usage error (2); everything else is 1.
pub fn exit_for(error: &anyhow::Error) -> Exit {
    use kantup::ops::load::LoadError;
    use kantup::ops::repo::RepoOpError;
    use kantup::ops::sync::SyncError;
    use kantup_registry::chart_repo::RepoError;
    use kantup_registry::credentials::CredentialsError;
    for cause in error.chain() {
        if let Some(coded) = cause.downcast_ref::<ExitError>() {
            return coded.exit;
        }
        if let Some(RepoOpError::NoVersions { .. }) = cause.downcast_ref::<RepoOpError>() {
            return Exit::NothingToDo;
        }
        if let Some(SyncError::NoBundles(_)) = cause.downcast_ref::<SyncError>() {
            return Exit::NothingToDo;
        }
        match cause.downcast_ref::<LoadError>() {
            Some(LoadError::NoImages(_)) => return Exit::NothingToDo,
            Some(LoadError::BadRetag(_)) => return Exit::Usage,
            // A node runtime `load --node` cannot feed (podman): the flags are wrong.
            Some(LoadError::NodeRuntime(_)) => return Exit::Usage,
            _ => {}
        }
        if let Some(repo) = cause.downcast_ref::<RepoError>() {
            if repo.is_verification_failure() {
                return Exit::VerificationFailed;
            }
            if repo.is_not_found() {
                return Exit::NothingToDo;
            }
            if repo.is_bad_request() {
                return Exit::Usage;
            }
        }
        if let Some(CredentialsError::Incomplete(_)) = cause.downcast_ref::<CredentialsError>() {
            return Exit::Usage;
        }
        // An unreadable `--image-key` file is a plain failure; an image it does not verify
        // is a verification failure.
        if let Some(kantup::ops::image_keys::ImageKeysError::Key(_)) =
            cause.downcast_ref::<kantup::ops::image_keys::ImageKeysError>()
        {
            return Exit::Failure;
        }
        if cause
            .downcast_ref::<kantup_bundle::image_signature::ImagesNotVerified>()
            .is_some()
        {
            return Exit::VerificationFailed;
        }
        let signature = cause.downcast_ref::<kantup_bundle::signature::SignatureError>();
        if let Some(signature) = signature
            && !matches!(
                signature,
                kantup_bundle::signature::SignatureError::BadKey { .. }
            )
        {
            return Exit::VerificationFailed;
        }
        if let Some(bundle) = cause.downcast_ref::<kantup_bundle::BundleError>()
            && bundle.is_verification_failure()
        {
            return Exit::VerificationFailed;
        }
    }
    Exit::Failure
}

/// The process exit code for `error` (see [`exit_for`]).
pub fn exit_code_for(error: &anyhow::Error) -> ExitCode {
    exit_for(error).code()
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_cause_the_line_before_already_says_is_not_repeated() {
        let inner = std::io::Error::other("disk on fire");
        let wrapped: anyhow::Error = kantup::ops::load::LoadError::Spawn {
            command: "ctr images import".into(),
            source: inner,
        }
        .into();
        let lines = super::error_lines(&wrapped.context("loading images"));
        assert_eq!(
            lines,
            [
                "error: loading images",
                "  caused by: cannot run `ctr images import`: disk on fire",
            ]
        );
    }

    #[test]
    fn human_bytes_table() {
        for (bytes, text) in [
            (0, "0 B"),
            (1023, "1023 B"),
            (1024, "1.0 KiB"),
            (587_397_657, "560.2 MiB"),
            (1 << 30, "1.0 GiB"),
        ] {
            assert_eq!(super::human_bytes(bytes), text);
        }
    }

    use anyhow::Context;
    use kantup_bundle::BundleError;
    use kantup_registry::chart_repo::RepoError;

    use super::*;

    #[test]
    fn exit_code_table() {
        let cases: Vec<(anyhow::Error, Exit)> = vec![
            (anyhow::anyhow!("plain failure"), Exit::Failure),
            (
                ExitError::new(Exit::NothingToDo, "not synced").into(),
                Exit::NothingToDo,
            ),
            (
                anyhow::Error::from(ExitError::new(Exit::Usage, "bad flag combination"))
                    .context("outer context"),
                Exit::Usage,
            ),
            (
                RepoError::DigestMismatch {
                    source_name: "http://h/c.tgz".into(),
                    what: "the index",
                    expected: "a".into(),
                    actual: "b".into(),
                }
                .into(),
                Exit::VerificationFailed,
            ),
            (
                RepoError::NotFound {
                    chart: "web".into(),
                    version: "1.0.0".into(),
                    repository: "http://h".into(),
                    available: Vec::new(),
                }
                .into(),
                Exit::NothingToDo,
            ),
            (
                Err::<(), _>(BundleError::SizeMismatch {
                    what: "images.tar".into(),
                    expected: 1,
                    actual: 2,
                })
                .context("verifying the bundle")
                .unwrap_err(),
                Exit::VerificationFailed,
            ),
            (
                BundleError::Invalid("bad option".into()).into(),
                Exit::Failure,
            ),
            (
                anyhow::Error::from(kantup_registry::CredentialsError::Incomplete(
                    "--username/--password".into(),
                ))
                .context("opening the repository"),
                Exit::Usage,
            ),
            (
                anyhow::Error::from(kantup::ops::sync::SyncError::from(
                    kantup::ops::image_keys::ImageKeysError::Refused {
                        path: "kant.bundle.tar".into(),
                        source: kantup_bundle::image_signature::ImagesNotVerified {
                            refused: Vec::new(),
                        },
                    },
                )),
                Exit::VerificationFailed,
            ),
            (
                anyhow::Error::from(kantup::ops::load::LoadError::from(
                    kantup::ops::image_keys::ImageKeysError::Key(Box::new(
                        kantup_bundle::signature::SignatureError::Io(kantup_bundle::FileError {
                            action: "read the public key",
                            path: "missing.pub".into(),
                            source: std::io::Error::from(std::io::ErrorKind::NotFound),
                        }),
                    )),
                )),
                Exit::Failure,
            ),
        ];
        for (error, expected) in cases {
            assert_eq!(exit_for(&error), expected, "{error:#}");
        }
        let codes: Vec<u8> = [
            Exit::Ok,
            Exit::Failure,
            Exit::Usage,
            Exit::VerificationFailed,
            Exit::NothingToDo,
        ]
        .iter()
        .map(|e| *e as u8)
        .collect();
        assert_eq!(codes, [0, 1, 2, 3, 4]);
    }
}
