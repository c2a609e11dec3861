//! Odd and hostile `index.yaml` files through the public parsing API, each against the real
//! helm 3.17 and 4.1: `helm repo index DIR --merge odd.yaml` loads the file as `helm repo add`
//! and `helm search repo` do (`repo.LoadIndexFile`), so kantup must refuse what helm refuses
//! and keep the versions helm keeps, in helm's order. Errors name the file.

use std::path::Path;
use std::process::Command;

use kantup_registry::chart_index::{IndexError, IndexFile};

/// helm's reading of `text` (via `repo index --merge` into an empty directory): each chart
/// with its versions newest first, or helm's error.
fn helm_reads(helm: &Path, work: &Path, text: &str) -> Result<Vec<(String, Vec<String>)>, String> {
    let repo = work.join("repo");
    std::fs::create_dir_all(&repo).unwrap();
    let odd = work.join("odd.yaml");
    std::fs::write(&odd, text).unwrap();
    let out = Command::new(helm)
        .args(["repo", "index"])
        .arg(&repo)
        .arg("--merge")
        .arg(&odd)
        .env("HELM_CONFIG_HOME", work.join("config"))
        .env("HELM_CACHE_HOME", work.join("cache"))
        .env("HELM_DATA_HOME", work.join("data"))
        .output()
        .expect("run helm");
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    let written = std::fs::read_to_string(repo.join("index.yaml")).unwrap();
    Ok(versions(
        &IndexFile::from_yaml(&written).expect("helm's own index"),
    ))
}

fn versions(index: &IndexFile) -> Vec<(String, Vec<String>)> {
    index
        .entries
        .iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(name, v)| {
            (
                name.clone(),
                v.iter().map(|c| c.metadata.version.clone()).collect(),
            )
        })
        .collect()
}

/// kantup's reading of the same file, merged into an empty index as helm does.
fn kantup_reads(text: &str) -> Result<Vec<(String, Vec<String>)>, IndexError> {
    let odd = IndexFile::from_yaml_named(text, "odd.yaml")?;
    let mut index = IndexFile::new();
    index.merge(&odd);
    Ok(versions(&index))
}

fn entry(name: &str, version: &str) -> String {
    format!("  - name: {name}\n    version: {version:?}\n    urls: [{name}-{version}.tgz]\n")
}

#[test]
fn odd_indexes_read_as_helm_reads_them() {
    let semver_mix: String = [
        "1.0.0",
        "v1.2",
        "2",
        "1.10.0",
        "banana",
        "1.2.3.4",
        "0.9.0-rc.1",
    ]
    .iter()
    .map(|v| entry("web", v))
    .collect();
    // (name, index text, what kantup's error must say when it refuses)
    let cases: Vec<(&str, String, &str)> = vec![
        (
            "missing apiVersion",
            format!("entries:\n  web:\n{}", entry("web", "1.0.0")),
            "odd.yaml: no apiVersion",
        ),
        (
            "entries is a list",
            "apiVersion: v1\nentries:\n- web\n".to_string(),
            "odd.yaml: not a chart repository index",
        ),
        (
            "entries is a string",
            "apiVersion: v1\nentries: web\n".to_string(),
            "odd.yaml: not a chart repository index",
        ),
        (
            "a chart's versions are a map",
            "apiVersion: v1\nentries:\n  web: {name: web, version: 1.0.0}\n".to_string(),
            "odd.yaml: not a chart repository index",
        ),
        (
            "not YAML",
            "apiVersion: v1\nentries: [\n".to_string(),
            "odd.yaml: not a chart repository index",
        ),
        (
            "an HTML page",
            "<html><body>502 Bad Gateway</body></html>\n".to_string(),
            "odd.yaml: not a chart repository index",
        ),
        ("empty file", String::new(), "odd.yaml: no apiVersion"),
        (
            "versions that are not semver",
            format!("apiVersion: v1\nentries:\n  web:\n{semver_mix}"),
            "",
        ),
        (
            "duplicate versions",
            format!(
                "apiVersion: v1\nentries:\n  web:\n{}{}{}",
                entry("web", "1.0.0"),
                entry("web", "1.0.0"),
                entry("web", "0.5.0")
            ),
            "",
        ),
        (
            "null and nameless entries",
            "apiVersion: v1\nentries:\n  web:\n  - null\n  - version: 1.0.0\n  - name: web\n    version: 2.0.0\n  db: null\n".to_string(),
            "",
        ),
    ];
    let tmp = tempfile::tempdir().unwrap();
    let mut failures = Vec::new();
    for (helm_name, helm) in [
        ("helm3", kantup_test_support::helm3()),
        ("helm4", kantup_test_support::helm4()),
    ] {
        for (i, (name, text, want)) in cases.iter().enumerate() {
            if helm_name == "helm3" && *name == "null and nameless entries" {
                // helm 3.17 itself crashes on this one (a nil pointer in ChartVersions.Less).
                continue;
            }
            let work = tmp.path().join(format!("{helm_name}-{i}"));
            let theirs = helm_reads(&helm, &work, text);
            let ours = kantup_reads(text);
            match (theirs, ours) {
                (Ok(h), Ok(k)) if h == k => {}
                (Err(_), Err(e)) => {
                    let msg = e.to_string();
                    if !msg.contains(want) {
                        failures.push(format!("{name}: error {msg:?} lacks {want:?}"));
                    }
                }
                (h, k) => failures.push(format!(
                    "{helm_name} {name}:\n helm:   {h:?}\n kantup: {:?}",
                    k.map_err(|e| e.to_string())
                )),
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// A large index (5,000 charts, 20 versions each: ~8 MB) parses, sorted, and a YAML alias
/// bomb in an index is refused by the YAML reader's own repetition limit.
#[test]
fn huge_and_hostile_indexes_are_bounded() {
    let mut text = String::from("apiVersion: v1\nentries:\n");
    for c in 0..5_000 {
        text.push_str(&format!("  chart{c}:\n"));
        for v in 0..20 {
            text.push_str(&format!(
                "  - name: chart{c}\n    version: 1.{v}.0\n    urls: [chart{c}-1.{v}.0.tgz]\n    digest: {}\n",
                "0".repeat(64)
            ));
        }
    }
    let index = IndexFile::from_yaml(&text).unwrap();
    assert_eq!(index.entries.len(), 5_000);
    assert_eq!(index.versions("chart42")[0].metadata.version, "1.19.0");
    assert_eq!(
        index.latest("chart4999", false).unwrap().metadata.version,
        "1.19.0"
    );

    let mut bomb = String::from("apiVersion: v1\na0: &a0 [x, x, x, x, x, x, x, x, x]\n");
    for i in 1..9 {
        let items = vec![format!("*a{}", i - 1); 9].join(", ");
        bomb.push_str(&format!("a{i}: &a{i} [{items}]\n"));
    }
    bomb.push_str("entries: {web: [{name: web, version: 1.0.0, keywords: *a8}]}\n");
    let err = IndexFile::from_yaml_named(&bomb, "bomb.yaml").unwrap_err();
    assert!(
        err.to_string()
            .starts_with("bomb.yaml: not a chart repository index:"),
        "{err}"
    );
    assert!(
        err.to_string().contains("repetition limit exceeded"),
        "{err}"
    );
}

/// Unquoted numbers as names and versions: helm refuses the whole index ("cannot unmarshal
/// number into Go struct field"), kantup reads them as the text they are written as.
#[test]
fn numeric_names_and_versions_are_read_as_text() {
    let index = IndexFile::from_yaml(
        "apiVersion: v1\nentries:\n  web:\n  - {name: web, version: 1.0}\n  '7':\n  - {name: 7, version: 2}\n",
    )
    .unwrap();
    assert_eq!(
        versions(&index),
        [
            ("7".to_string(), vec!["2".to_string()]),
            ("web".to_string(), vec!["1.0".to_string()])
        ]
    );
}
