//! Shared harness for the differential tests: writes a small chart whose only template prints
//! `{{ toJson .Values }}`, runs the real helm on it, and runs kantup on the same inputs.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

use kantup_helm_values::chart::Chart;
use kantup_helm_values::merge::{ValueOptions, render_owned_values_as, render_values_as};
use kantup_helm_values::strvals::{HelmVersion, SetKind};
use kantup_helm_values::value::to_go_json;
use kantup_helm_values::yaml::{lossy_in_file, to_yaml};
use serde_json::Value;

/// A chart "top" (1.0.0) with subchart "sub" (0.1.0), listed twice in Chart.yaml: once
/// plainly and once as alias `alias1` (with an optional condition).
pub struct TestChart {
    pub dir: PathBuf,
}

pub fn write_file(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

const TEMPLATE: &str = "{{ toJson .Values }}\n";

impl TestChart {
    /// `parent_values`/`sub_values` are written verbatim as the charts' values.yaml.
    pub fn write(root: &Path, parent_values: &str, sub_values: &str, deps_yaml: &str) -> Self {
        let dir = root.join("top");
        write_file(
            &dir.join("Chart.yaml"),
            &format!("apiVersion: v2\nname: top\nversion: 1.0.0\n{deps_yaml}"),
        );
        write_file(&dir.join("values.yaml"), parent_values);
        write_file(&dir.join("templates/values.yaml"), TEMPLATE);
        let sub = dir.join("charts/sub");
        write_file(
            &sub.join("Chart.yaml"),
            "apiVersion: v2\nname: sub\nversion: 0.1.0\n",
        );
        write_file(&sub.join("values.yaml"), sub_values);
        write_file(&sub.join("templates/values.yaml"), TEMPLATE);
        TestChart { dir }
    }

    /// The default layout: `sub` and `sub` as `alias1`.
    pub fn standard(root: &Path, parent_values: &str, sub_values: &str) -> Self {
        Self::write(
            root,
            parent_values,
            sub_values,
            "dependencies:\n- name: sub\n  version: 0.1.0\n- name: sub\n  version: 0.1.0\n  alias: alias1\n",
        )
    }
}

/// The flags of one helm run.
#[derive(Debug, Clone, Default)]
pub struct Inputs {
    pub files: Vec<PathBuf>,
    pub flags: Vec<(SetKind, String)>,
    pub helm: HelmVersion,
}

impl Inputs {
    pub fn options(&self) -> ValueOptions {
        let mut o = ValueOptions {
            value_files: self.files.clone(),
            helm: self.helm,
            ..Default::default()
        };
        for (kind, expr) in &self.flags {
            let list = match kind {
                SetKind::Set => &mut o.values,
                SetKind::SetString => &mut o.string_values,
                SetKind::SetFile => &mut o.file_values,
                SetKind::SetJson => &mut o.json_values,
                SetKind::SetLiteral => &mut o.literal_values,
            };
            list.push(expr.clone());
        }
        o
    }

    fn args(&self) -> Vec<String> {
        let mut args = Vec::new();
        for f in &self.files {
            args.push("-f".to_string());
            args.push(f.display().to_string());
        }
        for (kind, expr) in &self.flags {
            args.push(kind.flag().to_string());
            args.push(expr.clone());
        }
        args
    }
}

/// Runs `helm template` and returns the JSON line its template printed, or helm's stderr.
pub fn helm_values(helm: &Path, chart: &Path, inputs: &Inputs) -> Result<String, String> {
    let out = Command::new(helm)
        .arg("template")
        .arg("rel")
        .arg(chart)
        .args(["--show-only", "templates/values.yaml"])
        .args(inputs.args())
        .env("HELM_CACHE_HOME", chart.join("../.helm/cache"))
        .env("HELM_CONFIG_HOME", chart.join("../.helm/config"))
        .env("HELM_DATA_HOME", chart.join("../.helm/data"))
        .output()
        .expect("run helm");
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    let stdout = String::from_utf8(out.stdout).expect("utf-8 output");
    let json: Vec<&str> = stdout
        .lines()
        .filter(|l| !l.starts_with("---") && !l.starts_with("# Source:") && !l.is_empty())
        .collect();
    assert_eq!(json.len(), 1, "unexpected helm output: {stdout}");
    Ok(json[0].to_string())
}

/// kantup's user values and rendered values (Go JSON), or its error. The values are rendered
/// both ways (lent, and handed over as `kantup values merge` does), which must agree.
pub fn kantup_values(chart: &Path, inputs: &Inputs) -> Result<(Value, String), String> {
    let user = inputs.options().merge_values().map_err(|e| e.to_string())?;
    let chart = Chart::load(chart).map_err(|e| e.to_string())?;
    let rendered = render_values_as(&chart, &user, inputs.helm).map_err(|e| e.to_string());
    let owned =
        render_owned_values_as(&chart, user.clone(), inputs.helm).map_err(|e| e.to_string());
    let rendered = rendered.map(|r| to_go_json(&Value::Object(r)));
    let owned = owned.map(|r| to_go_json(&Value::Object(r)));
    assert_eq!(rendered, owned, "rendering lent and owned values differ");
    Ok((Value::Object(user), rendered?))
}

/// Outcome of one differential comparison.
#[derive(Debug)]
pub enum Verdict {
    /// Both agree (values, and helm with kantup's merged file renders the same).
    Same,
    /// Both failed.
    BothFailed { helm: String, kantup: String },
    /// A mismatch, described.
    Mismatch(String),
}

/// Compares kantup with `helm` on one input set: the rendered values must be equal, and
/// `helm template -f <kantup's merged user values>` must render what helm renders with the
/// original flags. `work` is a scratch directory for the merged file.
pub fn compare(helm: &Path, chart: &Path, inputs: &Inputs, work: &Path) -> Verdict {
    let mut inputs = inputs.clone();
    inputs.helm = helm_version(helm);
    let inputs = &inputs;
    let h = helm_values(helm, chart, inputs);
    let k = kantup_values(chart, inputs);
    match (h, k) {
        (Err(he), Err(ke)) => Verdict::BothFailed {
            helm: he,
            kantup: ke,
        },
        (Ok(hv), Err(ke)) => {
            Verdict::Mismatch(format!("helm succeeded ({hv}) but kantup failed: {ke}"))
        }
        (Err(he), Ok((_, kv))) => {
            Verdict::Mismatch(format!("helm failed ({he}) but kantup succeeded: {kv}"))
        }
        (Ok(hv), Ok((user, kv))) => {
            if hv != kv {
                return Verdict::Mismatch(format!("values differ:\n helm:   {hv}\n kantup: {kv}"));
            }
            if !lossy_in_file(&user).is_empty() {
                // No values file can carry these ints (Helm reads file numbers as float64);
                // kantup reports them instead of writing a file that silently changes them.
                return Verdict::Same;
            }
            std::fs::create_dir_all(work).unwrap();
            let merged = work.join("kantup-merged.yaml");
            let text = to_yaml(&user);
            std::fs::write(&merged, &text).unwrap();
            let again = Inputs {
                files: vec![merged],
                flags: vec![],
                helm: inputs.helm,
            };
            match helm_values(helm, chart, &again) {
                Ok(v) if v == hv => Verdict::Same,
                Ok(v) => Verdict::Mismatch(format!(
                    "helm -f <kantup merged file> differs:\n original: {hv}\n merged:   {v}\n file:\n{text}"
                )),
                Err(e) => {
                    Verdict::Mismatch(format!("helm rejected kantup's merged file: {e}\n{text}"))
                }
            }
        }
    }
}

pub fn helm_version(helm: &Path) -> HelmVersion {
    if helm.to_string_lossy().contains("helm-4") {
        HelmVersion::V4
    } else {
        HelmVersion::V3
    }
}

pub fn helms() -> Vec<(&'static str, PathBuf)> {
    vec![
        ("helm3", kantup_test_support::helm3()),
        ("helm4", kantup_test_support::helm4()),
    ]
}
