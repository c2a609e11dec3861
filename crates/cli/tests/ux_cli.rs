//! CLI-wide behaviour of the real binary: help, exit codes, shell completions, man pages.

use std::path::Path;
use std::process::{Command, Output};

fn kantup(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kantup"))
        .args(args)
        .output()
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The commands every user-facing surface (help, completions, man) must know.
const COMMANDS: &[&str] = &[
    "bundle",
    "sync",
    "values",
    "crds",
    "preflight",
    "load",
    "repo",
    "completions",
    "man",
];

#[test]
fn help_lists_commands_and_documents_exit_codes() {
    let help = kantup(&["--help"]);
    assert_eq!(help.status.code(), Some(0));
    let out = text(&help.stdout);
    for command in COMMANDS {
        assert!(
            out.contains(&format!("  {command}")),
            "--help lacks {command}:\n{out}"
        );
    }
    for line in [
        "Exit codes:",
        "0  success",
        "1  failure",
        "2  usage error",
        "3  verification failed",
        "4  nothing to do",
    ] {
        assert!(out.contains(line), "--help lacks {line:?}:\n{out}");
    }
    for flag in ["--output", "--verbose", "--quiet"] {
        assert!(out.contains(flag), "{flag}");
    }
}

#[test]
fn subcommand_help_exits_zero() {
    for args in [
        &["load", "--help"][..],
        &["repo", "--help"],
        &["repo", "versions", "--help"],
        &["repo", "pull", "--help"],
        &["completions", "--help"],
        &["man", "--help"],
    ] {
        let output = kantup(args);
        assert_eq!(
            output.status.code(),
            Some(0),
            "{args:?}: {}",
            text(&output.stderr)
        );
        assert!(text(&output.stdout).contains("Usage: kantup"), "{args:?}");
    }
    let load = text(&kantup(&["load", "--help"]).stdout);
    for needle in [
        "containerd",
        "docker",
        "podman",
        "--retag",
        "--namespace",
        "--runtime-arg",
    ] {
        assert!(load.contains(needle), "load --help lacks {needle}");
    }
}

#[test]
fn usage_errors_exit_2() {
    let cases: &[&[&str]] = &[
        &["--no-such-flag"],
        &["no-such-command"],
        &["load"],
        &["load", "x.tar", "--runtime", "cri-o"],
        &["repo", "pull", "http://127.0.0.1:9/"],
        &["completions", "tcsh"],
        &["-v", "-q", "man"],
        &["--output", "xml", "man"],
    ];
    for args in cases {
        let output = kantup(args);
        assert_eq!(
            output.status.code(),
            Some(2),
            "{args:?}: {}",
            text(&output.stderr)
        );
        assert!(!text(&output.stderr).is_empty(), "{args:?} says why");
    }
}

#[test]
fn failures_exit_1_with_the_cause_on_stderr() {
    let temp = tempfile::tempdir().unwrap();
    let missing = temp.path().join("missing.bundle.tar");
    let output = kantup(&["load", missing.to_str().unwrap(), "--runtime", "podman"]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = text(&output.stderr);
    assert!(stderr.starts_with("error: "), "{stderr}");
    assert!(stderr.contains("missing.bundle.tar"), "{stderr}");
    assert!(output.stdout.is_empty(), "nothing on stdout on failure");

    // Not a URL and not a directory.
    let output = kantup(&["repo", "versions", "no-such-dir-or-url"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(text(&output.stderr).contains("no-such-dir-or-url"));
}

#[test]
fn version_flag_prints_the_version() {
    let output = kantup(&["--version"]);
    assert_eq!(output.status.code(), Some(0));
    // The version and the commit the binary was built from: this checkout's HEAD, or
    // `unknown` outside a git checkout.
    let commit = std::process::Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()
        .filter(|out| out.status.success())
        .map(|out| text(&out.stdout).trim().to_string())
        .unwrap_or_else(|| "unknown".into());
    assert_eq!(
        text(&output.stdout).trim(),
        format!("kantup {} (commit {commit})", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn completions_for_every_shell() {
    for shell in ["bash", "zsh", "fish", "powershell", "elvish"] {
        let output = kantup(&["completions", shell]);
        assert_eq!(
            output.status.code(),
            Some(0),
            "{shell}: {}",
            text(&output.stderr)
        );
        let script = text(&output.stdout);
        assert!(script.contains("kantup"), "{shell}");
        for command in ["load", "repo", "versions", "completions", "--runtime"] {
            assert!(
                script.contains(command),
                "{shell} completion lacks {command}"
            );
        }
    }
}

#[test]
fn bash_completion_is_valid_bash_and_completes_subcommands() {
    let temp = tempfile::tempdir().unwrap();
    let script = temp.path().join("kantup.bash");
    std::fs::write(&script, kantup(&["completions", "bash"]).stdout).unwrap();
    let syntax = Command::new("bash")
        .arg("-n")
        .arg(&script)
        .output()
        .unwrap();
    assert!(syntax.status.success(), "{}", text(&syntax.stderr));

    // Drive the completion function the way bash would for `kantup lo<TAB>` and
    // `kantup load x --runtime <TAB>`.
    let probe = format!(
        r#"source {script}
COMP_WORDS=(kantup lo); COMP_CWORD=1; COMP_LINE="kantup lo"; COMP_POINT=${{#COMP_LINE}}
_kantup kantup lo kantup; echo "first:${{COMPREPLY[*]}}"
COMP_WORDS=(kantup load x.tar --runtime ""); COMP_CWORD=4; COMP_LINE="kantup load x.tar --runtime "; COMP_POINT=${{#COMP_LINE}}
_kantup kantup "" --runtime; echo "runtime:${{COMPREPLY[*]}}"
"#,
        script = script.display()
    );
    let output = Command::new("bash").arg("-c").arg(probe).output().unwrap();
    let out = text(&output.stdout);
    assert!(out.contains("first:load"), "{out}{}", text(&output.stderr));
    let runtime_line = out.lines().find(|l| l.starts_with("runtime:")).unwrap();
    for runtime in ["containerd", "docker", "podman"] {
        assert!(runtime_line.contains(runtime), "{runtime_line}");
    }
}

#[test]
fn man_prints_the_top_page() {
    let output = kantup(&["man"]);
    assert_eq!(output.status.code(), Some(0));
    let page = text(&output.stdout);
    assert!(page.contains("\n.TH kantup 1 "), "{page}");
    // The SEE ALSO-style list of subcommand pages.
    assert!(page.contains("kantup\\-load(1)"), "{page}");
    assert!(page.contains("kantup\\-repo(1)"), "{page}");
}

#[test]
fn man_dir_writes_one_page_per_command_and_man_renders_them() {
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path().join("man1");
    let output = kantup(&["man", "--dir", dir.to_str().unwrap(), "-o", "json"]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let pages: Vec<String> = report["pages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            Path::new(p.as_str().unwrap())
                .file_name()
                .unwrap()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    for expected in [
        "kantup.1",
        "kantup-load.1",
        "kantup-repo.1",
        "kantup-repo-versions.1",
        "kantup-repo-pull.1",
        "kantup-completions.1",
        "kantup-man.1",
        "kantup-sync.1",
    ] {
        assert!(
            pages.contains(&expected.to_owned()),
            "{expected} missing from {pages:?}"
        );
        assert!(dir.join(expected).is_file());
    }
    // groff renders the page without warnings and the text names the options.
    let groff = kantup_test_support::require_tool("groff");
    let rendered = Command::new(&groff)
        .args(["-man", "-Tutf8", "-ww", "-z"])
        .arg(dir.join("kantup-load.1"))
        .output()
        .unwrap();
    assert!(rendered.status.success(), "{}", text(&rendered.stderr));
    assert!(
        text(&rendered.stderr).is_empty(),
        "groff warnings: {}",
        text(&rendered.stderr)
    );
    let plain = Command::new(&groff)
        .args(["-man", "-Tutf8"])
        .arg(dir.join("kantup-load.1"))
        .output()
        .unwrap();
    let plain = text(&plain.stdout);
    assert!(plain.contains("runtime"), "{plain}");
}

#[test]
fn json_output_is_one_document_on_stdout() {
    let temp = tempfile::tempdir().unwrap();
    let output = kantup(&[
        "man",
        "--dir",
        temp.path().to_str().unwrap(),
        "--output",
        "json",
    ]);
    assert_eq!(output.status.code(), Some(0));
    let value: serde_json::Value = serde_json::from_slice(&output.stdout).expect("valid JSON");
    assert!(value["pages"].as_array().is_some_and(|p| !p.is_empty()));
}
