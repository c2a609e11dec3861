//! The values flags of every command that computes Helm values (`upgrade`, `values merge`):
//! `-f/--values` and the `--set` family, bound straight to helm-values' options type
//! ([`ValueOptions`]), so a `--set` goes from clap to the values file through that one type.

use std::path::PathBuf;

use clap::Args;
use kantup_helm_values::merge::ValueOptions;
use kantup_helm_values::strvals::HelmVersion;

/// `-f/--values`, `--set`, `--set-string`, `--set-file`, `--set-json`, `--set-literal`, as
/// helm takes them (applied in Helm's order: files, then `--set-json`, `--set`,
/// `--set-string`, `--set-file`, `--set-literal`).
#[derive(Debug, Clone, Args)]
pub struct ValuesArgs {
    /// Values files, in order.
    #[arg(long = "values", short = 'f', value_name = "FILE")]
    pub values: Vec<PathBuf>,
    /// `--set` expressions (Helm's grammar and typing).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
    /// `--set-string` expressions.
    #[arg(long = "set-string", value_name = "KEY=VALUE")]
    pub set_string: Vec<String>,
    /// `--set-file` expressions.
    #[arg(long = "set-file", value_name = "KEY=PATH")]
    pub set_file: Vec<String>,
    /// `--set-json` expressions.
    #[arg(long = "set-json", value_name = "KEY=JSON")]
    pub set_json: Vec<String>,
    /// `--set-literal` expressions.
    #[arg(long = "set-literal", value_name = "KEY=VALUE")]
    pub set_literal: Vec<String>,
}

impl ValuesArgs {
    /// The flags as helm-values' options, following `helm`'s parser where versions differ.
    pub fn options(self, helm: HelmVersion) -> ValueOptions {
        ValueOptions {
            value_files: self.values,
            json_values: self.set_json,
            values: self.set,
            string_values: self.set_string,
            file_values: self.set_file,
            literal_values: self.set_literal,
            helm,
        }
    }
}
