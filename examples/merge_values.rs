//! Merges a chart's defaults with `-f` / `--set`-style inputs exactly as Helm would and prints
//! the resulting `.Values` as YAML.
//!
//! ```text
//! cargo run -p kantup-examples --example merge_values -- CHART [-f FILE]... [--set EXPR]...
//!     [--set-string EXPR]... [--set-json EXPR]... [--set-file EXPR]... [--set-literal EXPR]...
//! ```
//!
//! Without a chart argument it writes a small demo chart (a subchart and globals) to a
//! temporary directory and merges `--set image.tag=2.0,global.registry=reg.local:5000` into it.

use std::path::PathBuf;

use anyhow::{Context, bail};
use kantup_helm_values::chart::Chart;
use kantup_helm_values::merge::{ValueOptions, render_values};
use kantup_helm_values::yaml::to_yaml;

fn demo_chart() -> anyhow::Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!("kantup-merge-values-demo-{}", std::process::id()));
    let files = [
        (
            "Chart.yaml",
            "apiVersion: v2\nname: demo\nversion: 1.0.0\ndependencies:\n- name: db\n  version: 0.1.0\n",
        ),
        (
            "values.yaml",
            "image:\n  repository: library/app\n  tag: \"1.0\"\nglobal:\n  registry: docker.io\n",
        ),
        (
            "charts/db/Chart.yaml",
            "apiVersion: v2\nname: db\nversion: 0.1.0\n",
        ),
        (
            "charts/db/values.yaml",
            "image:\n  repository: library/postgres\n  tag: \"16\"\n",
        ),
    ];
    for (name, text) in files {
        let path = dir.join(name);
        std::fs::create_dir_all(path.parent().unwrap())?;
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(dir)
}

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let mut chart: Option<PathBuf> = None;
    let mut options = ValueOptions::default();
    while let Some(arg) = args.next() {
        let mut value = || args.next().with_context(|| format!("{arg} needs a value"));
        match arg.as_str() {
            "-f" | "--values" => options.value_files.push(value()?.into()),
            "--set" => options.values.push(value()?),
            "--set-string" => options.string_values.push(value()?),
            "--set-json" => options.json_values.push(value()?),
            "--set-file" => options.file_values.push(value()?),
            "--set-literal" => options.literal_values.push(value()?),
            other if other.starts_with('-') => bail!("unknown flag {other}"),
            other => chart = Some(other.into()),
        }
    }
    let (chart_dir, demo) = match chart {
        Some(dir) => (dir, false),
        None => {
            options
                .values
                .push("image.tag=2.0,global.registry=reg.local:5000".into());
            (demo_chart()?, true)
        }
    };
    let chart = Chart::load(&chart_dir)?;
    let user = options.merge_values()?;
    let values = render_values(&chart, &user)?;
    print!("{}", to_yaml(&serde_json::Value::Object(values)));
    if demo {
        std::fs::remove_dir_all(&chart_dir).ok();
    }
    Ok(())
}
