//! Real container runtimes for tests: a private containerd (its own root, state and socket in a
//! temp dir; the CRI plugin off), and a Docker Engine (Debian `docker.io`'s dockerd with the vfs
//! storage driver, no iptables, no bridge) on top of its own containerd. Both stop on drop.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use crate::tools::require_tool;

/// A private containerd; dropped = killed.
pub struct Containerd {
    child: Child,
    temp: tempfile::TempDir,
}

impl Containerd {
    /// Starts containerd and waits until `ctr version` answers (up to ~20 s).
    pub fn start() -> Self {
        let binary = require_tool("containerd");
        require_tool("ctr");
        let temp = tempfile::tempdir().expect("temp dir");
        let config = temp.path().join("config.toml");
        std::fs::write(
            &config,
            format!(
                "version = 2\nroot = {root:?}\nstate = {state:?}\n\
                 disabled_plugins = [\"io.containerd.grpc.v1.cri\"]\n\
                 [grpc]\n  address = {sock:?}\n",
                root = temp.path().join("root").display().to_string(),
                state = temp.path().join("state").display().to_string(),
                sock = temp.path().join("c.sock").display().to_string(),
            ),
        )
        .expect("write containerd config");
        let log = std::fs::File::create(temp.path().join("containerd.log")).expect("log file");
        let child = Command::new(binary)
            .arg("--config")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start containerd");
        let daemon = Containerd { child, temp };
        wait_until_up(
            "containerd",
            &daemon.temp.path().join("containerd.log"),
            200,
            || daemon.socket().exists() && daemon.ctr(&["version"]).status.success(),
        );
        daemon
    }

    /// The gRPC socket.
    pub fn socket(&self) -> PathBuf {
        self.temp.path().join("c.sock")
    }

    /// `ctr --address SOCKET ARGS`.
    pub fn ctr(&self, args: &[&str]) -> Output {
        Command::new("ctr")
            .arg("--address")
            .arg(self.socket())
            .args(args)
            .output()
            .expect("run ctr")
    }

    /// Image names in `namespace`, sorted.
    pub fn images(&self, namespace: &str) -> Vec<String> {
        let output = self.ctr(&["-n", namespace, "images", "ls", "-q"]);
        assert!(
            output.status.success(),
            "ctr images ls: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let mut names: Vec<String> = String::from_utf8_lossy(&output.stdout)
            .lines()
            .map(str::to_owned)
            .collect();
        names.sort();
        names
    }
}

impl Drop for Containerd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A Docker Engine on its own containerd; dropped = both killed.
pub struct Dockerd {
    child: Child,
    // Dropped after the engine: it runs on this containerd.
    _containerd: Containerd,
    temp: tempfile::TempDir,
}

impl Dockerd {
    /// Starts dockerd (vfs storage, no iptables, no bridge: it runs in this sandbox) and waits
    /// until `docker version` answers (up to ~30 s).
    pub fn start() -> Self {
        let binary = require_tool("dockerd");
        require_tool("docker");
        let containerd = Containerd::start();
        let temp = tempfile::tempdir().expect("temp dir");
        let log = std::fs::File::create(temp.path().join("dockerd.log")).expect("log file");
        let child = Command::new(binary)
            .arg("--containerd")
            .arg(containerd.socket())
            .args([
                "--storage-driver",
                "vfs",
                "--iptables=false",
                "--bridge=none",
            ])
            .arg("--host")
            .arg(format!(
                "unix://{}",
                temp.path().join("docker.sock").display()
            ))
            .arg("--data-root")
            .arg(temp.path().join("data"))
            .arg("--exec-root")
            .arg(temp.path().join("exec"))
            .arg("--pidfile")
            .arg(temp.path().join("docker.pid"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start dockerd");
        let daemon = Dockerd {
            child,
            _containerd: containerd,
            temp,
        };
        wait_until_up(
            "dockerd",
            &daemon.temp.path().join("dockerd.log"),
            300,
            || daemon.socket().exists() && daemon.docker(&["version"]).status.success(),
        );
        daemon
    }

    /// The API socket.
    pub fn socket(&self) -> PathBuf {
        self.temp.path().join("docker.sock")
    }

    /// `--host=unix://SOCKET`, for a docker CLI (kantup's `--runtime-arg`).
    pub fn host_arg(&self) -> String {
        format!("--host=unix://{}", self.socket().display())
    }

    /// `docker --host unix://SOCKET ARGS`.
    pub fn docker(&self, args: &[&str]) -> Output {
        Command::new("docker")
            .arg(self.host_arg())
            .args(args)
            .env_remove("DOCKER_HOST")
            .output()
            .expect("run docker")
    }

    /// `repository:tag` of every image, sorted.
    pub fn images(&self) -> Vec<String> {
        let output = self.docker(&["images", "--format", "{{.Repository}}:{{.Tag}}"]);
        assert!(
            output.status.success(),
            "docker images: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let mut names: Vec<String> = String::from_utf8_lossy(&output.stdout)
            .lines()
            .map(str::to_owned)
            .collect();
        names.sort();
        names
    }

    /// The image ID (`sha256:` of its config) docker gives `name`.
    pub fn image_id(&self, name: &str) -> String {
        let output = self.docker(&["image", "inspect", "--format", "{{.Id}}", name]);
        assert!(
            output.status.success(),
            "docker image inspect {name}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).trim().to_string()
    }

    /// The engine's log file.
    pub fn log_path(&self) -> PathBuf {
        self.temp.path().join("dockerd.log")
    }
}

impl Drop for Dockerd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Polls `ready` every 100 ms, `tries` times; panics with the daemon's log when it never is.
fn wait_until_up(name: &str, log: &Path, tries: u32, ready: impl Fn() -> bool) {
    for _ in 0..tries {
        if ready() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!(
        "{name} did not come up; its log:\n{}",
        std::fs::read_to_string(log).unwrap_or_default()
    );
}
