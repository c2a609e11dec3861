//! kantup: Helm values semantics, computed exactly as Helm 3.17 and 4.1 compute them.
//!
//! - [`strvals`]: the `--set`, `--set-string`, `--set-file`, `--set-json`, `--set-literal`
//!   grammar; [`typing`]: how `--set` types scalars.
//! - [`yaml`]: values files read as Helm reads them (YAML 1.1 scalars, float64 numbers, string
//!   keys) and written so Helm reads them back unchanged.
//! - [`merge`]: Helm's flag merge order ([`merge::ValueOptions::merge_values`]) and
//!   [`merge::render_values`] (what a chart is rendered with).
//! - [`coalesce`], [`deps`], [`chart`]: chart defaults, globals, subcharts, aliases,
//!   conditions, tags, import-values.
//! - [`release`]: a release's stored values as `helm get values [--all]` shows them (the
//!   values backup).
//! - [`upgrade`]: `helm upgrade` with `--reuse-values`, `--reset-values`,
//!   `--reset-then-reuse-values`.
//! - [`diff`]: a values diff; [`relocate`]: image relocation through relok8s hints, editing
//!   values.yaml files in place and keeping their comments.
//! - [`value`]: the values type and Go-compatible JSON (`toJson`).
//!
//! ```
//! use kantup_helm_values::merge::ValueOptions;
//! let opts = ValueOptions { values: vec!["image.registry=reg.local:5000".into()], ..Default::default() };
//! let user = opts.merge_values().unwrap();
//! print!("{}", kantup_helm_values::yaml::to_yaml(&serde_json::Value::Object(user)));
//! ```
#![warn(missing_docs)]

pub mod chart;
pub mod coalesce;
pub mod deps;
pub mod diff;
pub mod error;
pub mod merge;
pub mod release;
pub mod relocate;
pub mod strvals;
pub mod typing;
pub mod upgrade;
pub mod value;
pub mod yaml;
pub mod yaml_edit;

pub use error::{Error, Result};
pub use value::Values;
