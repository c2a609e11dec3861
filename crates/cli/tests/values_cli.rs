//! `kantup values merge | diff | relocate` end to end, against the real helm 3.17.

use std::path::Path;
use std::process::{Command, Output};

fn kantup(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kantup"))
        .args(args)
        .output()
        .expect("run kantup")
}

fn stdout(o: &Output) -> String {
    assert!(
        o.status.success(),
        "kantup failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout.clone()).unwrap()
}

fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

fn chart(root: &Path) -> std::path::PathBuf {
    let dir = root.join("app");
    write(
        &dir.join("Chart.yaml"),
        "apiVersion: v2\nname: app\nversion: 1.0.0\ndependencies:\n- name: db\n  version: 0.1.0\n  alias: database\n",
    );
    write(
        &dir.join("values.yaml"),
        "image: {repository: app, tag: '1.0'}\nglobal: {registry: docker.io}\nlist: [a, b]\n",
    );
    write(&dir.join("templates/values.yaml"), "{{ toJson .Values }}\n");
    write(
        &dir.join("charts/db/Chart.yaml"),
        "apiVersion: v2\nname: db\nversion: 0.1.0\n",
    );
    write(
        &dir.join("charts/db/values.yaml"),
        "image: {repository: postgres, tag: '16'}\nenabled: on\n",
    );
    dir
}

fn helm_json(chart: &Path, args: &[&str]) -> String {
    let out = Command::new(kantup_test_support::helm3())
        .args(["template", "r"])
        .arg(chart)
        .args(["--show-only", "templates/values.yaml"])
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .last()
        .unwrap()
        .to_string()
}

#[test]
fn merge_json_equals_helm_and_yaml_round_trips_through_helm() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = chart(tmp.path());
    let user = tmp.path().join("user.yaml");
    write(
        &user,
        "image: {tag: 2.0}\ndatabase: {image: {tag: null}}\nlist: [x]\nglobal: {gone: null}\n",
    );
    let flags = [
        "-f",
        user.to_str().unwrap(),
        "--set",
        "global.registry=reg.local:5000,list[2]=c",
        "--set-string",
        "image.pull=yes",
    ];
    let chart_arg = dir.to_str().unwrap();
    let mut args = vec!["-o", "json", "values", "merge", "--chart", chart_arg];
    args.extend(flags);
    let ours = stdout(&kantup(&args));
    assert_eq!(ours.trim_end(), helm_json(&dir, &flags));
    // The YAML of the user values (no --chart) is a file helm reads back to the same values.
    let mut args = vec!["values", "merge"];
    args.extend(flags);
    let merged = tmp.path().join("merged.yaml");
    write(&merged, &stdout(&kantup(&args)));
    assert_eq!(
        helm_json(&dir, &["-f", merged.to_str().unwrap()]),
        helm_json(&dir, &flags)
    );
}

/// An integer from `--set` that a values file cannot carry is written, and named in a warning
/// on stderr; integers a file carries exactly give no warning.
#[test]
fn merge_warns_about_integers_a_file_cannot_carry() {
    let out = kantup(&[
        "values",
        "merge",
        "--set",
        "small=9007199254740992,list={1,-9007199254740993}",
        "--set",
        "x.big=9007199254740993",
    ]);
    assert_eq!(
        stdout(&out),
        "list:\n  - 1\n  - -9007199254740993\nsmall: 9007199254740992\nx:\n  big: 9007199254740993\n"
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("list[1]: integer beyond 2^53"), "{err}");
    assert!(err.contains("x.big: integer beyond 2^53"), "{err}");
    assert!(!err.contains("small"), "{err}");

    let out = kantup(&["values", "merge", "--set", "a=9007199254740992,b=1.5"]);
    assert_eq!(stdout(&out), "a: 9007199254740992\nb: \"1.5\"\n");
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `values merge ... | head`: a reader that stops early ends the output quietly, and other
/// write errors name what was being written.
#[test]
fn merge_output_to_a_closed_pipe_or_a_full_disk() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("big.yaml");
    let mut text = String::new();
    for i in 0..20000 {
        text.push_str(&format!("key{i}:\n  value: {i}\n"));
    }
    write(&file, &text);
    let mut child = Command::new(env!("CARGO_BIN_EXE_kantup"))
        .args(["values", "merge", "-f", file.to_str().unwrap()])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Read one line, then close the pipe while kantup still has most of its output to write.
    let mut stdout = child.stdout.take().unwrap();
    let mut first = [0u8; 16];
    std::io::Read::read_exact(&mut stdout, &mut first).unwrap();
    assert_eq!(&first, b"key0:\n  value: 0");
    drop(stdout);
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{out:?}");
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    if Path::new("/dev/full").exists() {
        let full = std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/full")
            .unwrap();
        let out = Command::new(env!("CARGO_BIN_EXE_kantup"))
            .args(["values", "merge", "-f", file.to_str().unwrap()])
            .stdout(full)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("writing the values") && err.contains("No space left"),
            "{err}"
        );
    }
}

#[test]
fn merge_errors_like_helm_and_exits_nonzero() {
    let out = kantup(&["values", "merge", "--set", "a=1,a.b=2"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--set") && err.contains("a=1,a.b=2") && err.contains("interface conversion"),
        "{err}"
    );
    let out = kantup(&["values", "merge", "-f", "/nonexistent/values.yaml"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/values.yaml"));
}

#[test]
fn diff_text_and_json() {
    let tmp = tempfile::tempdir().unwrap();
    let (old, new) = (tmp.path().join("old.yaml"), tmp.path().join("new.yaml"));
    write(&old, "a: 1\nb: {c: yes, gone: x}\n");
    write(&new, "a: 2\nb: {c: yes, d: [1]}\n");
    let text = stdout(&kantup(&[
        "values",
        "diff",
        old.to_str().unwrap(),
        new.to_str().unwrap(),
    ]));
    assert_eq!(text, "~ a: 1 -> 2\n+ b.d: [1]\n- b.gone: \"x\"\n");
    let json: serde_json::Value = serde_json::from_str(&stdout(&kantup(&[
        "-o",
        "json",
        "values",
        "diff",
        old.to_str().unwrap(),
        new.to_str().unwrap(),
    ])))
    .unwrap();
    assert_eq!(json.as_array().unwrap().len(), 3);
    assert_eq!(json[0]["change"], "changed");
    let same = stdout(&kantup(&[
        "values",
        "diff",
        old.to_str().unwrap(),
        old.to_str().unwrap(),
    ]));
    assert_eq!(same, "no differences\n");
}

#[test]
fn relocate_into_out_dir_keeps_the_original() {
    let tmp = tempfile::tempdir().unwrap();
    let fixtures = kantup_test_support::relok8s_fixtures();
    let out_dir = tmp.path().join("relocated");
    let report = stdout(&kantup(&[
        "-o",
        "json",
        "values",
        "relocate",
        "--chart",
        fixtures.join("testchart").to_str().unwrap(),
        "--hints",
        fixtures.join("testchart.images.yaml").to_str().unwrap(),
        "--registry",
        "reg.local:5000",
        "--repository-prefix",
        "mirror",
        "--out",
        out_dir.to_str().unwrap(),
    ]));
    let report: serde_json::Value = serde_json::from_str(&report).unwrap();
    let relocated: Vec<&str> = report["images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["relocated"].as_str().unwrap())
        .collect();
    assert_eq!(
        relocated,
        [
            "reg.local:5000/mirror/tiny:tiniest",
            "reg.local:5000/mirror/busybox:1.33.1"
        ]
    );
    // The edits name the files where they are now, not where they were staged.
    for edit in report["edits"].as_array().unwrap() {
        let file = edit["file"].as_str().unwrap();
        assert!(file.starts_with(out_dir.to_str().unwrap()), "{file}");
    }
    let names: Vec<_> = std::fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["relocated"]);
    let values = std::fs::read_to_string(out_dir.join("values.yaml")).unwrap();
    assert!(
        values.contains("  repository: \"reg.local:5000/mirror/tiny\"\n"),
        "{values}"
    );
    assert!(values.contains("# Overrides the image tag whose default is the chart appVersion."));
    let original = std::fs::read_to_string(fixtures.join("testchart/values.yaml")).unwrap();
    assert!(original.contains("harbor-repo.vmware.com/tanzu_isv_engineering/tiny"));
    // Rendering the relocated chart with helm shows the new repository.
    let out = Command::new(kantup_test_support::helm3())
        .args(["template", "r"])
        .arg(&out_dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("reg.local:5000/mirror/tiny:tiniest"));
}

#[test]
fn a_relocation_that_fails_leaves_no_out_dir() {
    let tmp = tempfile::tempdir().unwrap();
    let fixtures = kantup_test_support::relok8s_fixtures();
    let hints = tmp.path().join("hints.yaml");
    write(
        &hints,
        "- \"{{ .image.repository }}:{{ .image.tag }}\"\n- \"{{ .no.such.value }}\"\n",
    );
    let out_dir = tmp.path().join("out/relocated");
    let out = kantup(&[
        "values",
        "relocate",
        "--chart",
        fixtures.join("testchart").to_str().unwrap(),
        "--hints",
        hints.to_str().unwrap(),
        "--registry",
        "reg.local:5000",
        "--out",
        out_dir.to_str().unwrap(),
    ]);
    assert!(!out.status.success(), "{}", stdout(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no.such.value"), "{err}");
    // Neither the copy nor its staging directory is left behind.
    let names: Vec<_> = std::fs::read_dir(tmp.path().join("out"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(names.is_empty(), "{names:?}");
}
