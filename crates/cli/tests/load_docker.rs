//! `kantup load --runtime docker`: this machine has the docker CLI but no Docker daemon, so the
//! test drives the real `docker` client at a socket nobody listens on and checks that the
//! failure names the exact command and carries docker's own message.

use std::process::Command;

#[test]
fn docker_failure_names_the_command_and_dockers_message() {
    kantup_test_support::require_tool("docker");
    let temp = tempfile::tempdir().unwrap();
    let socket = temp.path().join("no-docker-here.sock");
    let bundle =
        kantup_test_support::workspace_root().join("examples/bundles/testchart.bundle.tar");
    let output = Command::new(env!("CARGO_BIN_EXE_kantup"))
        .arg("load")
        .arg(&bundle)
        .args(["--runtime", "docker", "--retag", "reg.local/kant"])
        .arg(format!("--runtime-arg=--host=unix://{}", socket.display()))
        .env_remove("KANTUP_RUNTIME_ARGS")
        .env_remove("DOCKER_HOST")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&format!("`docker --host=unix://{} load`", socket.display())),
        "{stderr}"
    );
    assert!(
        stderr.contains("no-docker-here.sock"),
        "docker's message: {stderr}"
    );
    assert!(output.stdout.is_empty());
}
