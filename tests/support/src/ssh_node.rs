//! A node reached over ssh, for tests: a real OpenSSH server (Debian `openssh-server`'s
//! `sshd`, run by the test on a loopback port with its own config, host key and
//! `authorized_keys`) in front of a private [`Containerd`] or [`Dockerd`]. The sshd's `SetEnv
//! CONTAINERD_ADDRESS=...` (or `DOCKER_HOST=...`) makes that runtime the default of `ctr` (or
//! `docker`) in every session, as the node's own runtime is for an operator. Stops on drop.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::runtimes::{Containerd, Dockerd};

/// A client key pair and a `known_hosts` file, shared by the nodes of one test.
pub struct SshClientKeys {
    temp: tempfile::TempDir,
}

impl SshClientKeys {
    /// Makes an ed25519 key pair (`ssh-keygen`, no passphrase).
    pub fn new() -> Self {
        let temp = tempfile::tempdir().expect("temp dir");
        keygen(&temp.path().join("id_ed25519"));
        std::fs::write(temp.path().join("known_hosts"), "").expect("known_hosts");
        Self { temp }
    }

    /// The private key.
    pub fn identity(&self) -> PathBuf {
        self.temp.path().join("id_ed25519")
    }

    /// The known_hosts file every started node adds its host key to.
    pub fn known_hosts(&self) -> PathBuf {
        self.temp.path().join("known_hosts")
    }

    /// `-o` options for a client that trusts only these nodes and uses only this key.
    pub fn ssh_options(&self) -> Vec<String> {
        vec![
            format!("IdentityFile={}", self.identity().display()),
            "IdentitiesOnly=yes".into(),
            format!("UserKnownHostsFile={}", self.known_hosts().display()),
            "StrictHostKeyChecking=yes".into(),
            "GlobalKnownHostsFile=/dev/null".into(),
        ]
    }

    /// A directory for the test's own files (wrappers, counters).
    pub fn dir(&self) -> &Path {
        self.temp.path()
    }
}

impl Default for SshClientKeys {
    fn default() -> Self {
        Self::new()
    }
}

fn keygen(path: &Path) {
    let out = Command::new(crate::require_tool("ssh-keygen"))
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "kantup-test", "-f"])
        .arg(path)
        .output()
        .expect("run ssh-keygen");
    assert!(
        out.status.success(),
        "ssh-keygen: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn sshd_binary() -> PathBuf {
    ["/usr/sbin/sshd", "/usr/bin/sshd"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
        .expect("`sshd` is not installed; run scripts/install-test-tools.sh (openssh-server)")
}

/// The runtime behind a node's sshd.
enum NodeRuntime {
    Containerd(Containerd),
    Docker(Dockerd),
}

/// An sshd in front of its own containerd or Docker Engine; dropped = both stopped.
pub struct SshNode {
    sshd: Child,
    port: u16,
    user: String,
    runtime: NodeRuntime,
    temp: tempfile::TempDir,
}

impl SshNode {
    /// Starts a containerd and an sshd on a free loopback port accepting `keys`' key for the
    /// current user, and adds the node's host key to `keys`' known_hosts.
    pub fn start(keys: &SshClientKeys) -> Self {
        Self::start_with(keys, NodeRuntime::Containerd(Containerd::start()))
    }

    /// As [`SshNode::start`], with a Docker Engine (on its own containerd) as the runtime.
    pub fn start_docker(keys: &SshClientKeys) -> Self {
        Self::start_with(keys, NodeRuntime::Docker(Dockerd::start()))
    }

    fn start_with(keys: &SshClientKeys, runtime: NodeRuntime) -> Self {
        let session_env = match &runtime {
            NodeRuntime::Containerd(containerd) => {
                format!("CONTAINERD_ADDRESS={}", containerd.socket().display())
            }
            NodeRuntime::Docker(docker) => {
                format!("DOCKER_HOST=unix://{}", docker.socket().display())
            }
        };
        let temp = tempfile::tempdir().expect("temp dir");
        let dir = temp.path();
        keygen(&dir.join("host_key"));
        std::fs::copy(
            keys.identity().with_extension("pub"),
            dir.join("authorized_keys"),
        )
        .expect("authorized_keys");
        // sshd refuses to start without its privilege separation directory.
        std::fs::create_dir_all("/run/sshd").expect("create /run/sshd (run the tests as root)");
        let user = std::env::var("USER")
            .ok()
            .filter(|u| !u.is_empty())
            .unwrap_or_else(|| "root".into());
        let port = crate::registry_server::free_port();
        let config = dir.join("sshd_config");
        std::fs::write(
            &config,
            format!(
                "Port {port}\nListenAddress 127.0.0.1\nHostKey {host_key}\nPidFile none\n\
                 AuthorizedKeysFile {authorized}\nPasswordAuthentication no\n\
                 KbdInteractiveAuthentication no\nUsePAM no\nStrictModes no\n\
                 PermitRootLogin prohibit-password\nAllowUsers {user}\n\
                 SetEnv {session_env}\nLogLevel INFO\n",
                host_key = dir.join("host_key").display(),
                authorized = dir.join("authorized_keys").display(),
            ),
        )
        .expect("sshd_config");
        let log = std::fs::File::create(dir.join("sshd.log")).expect("log file");
        let sshd = Command::new(sshd_binary())
            .arg("-D")
            .arg("-e")
            .arg("-f")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start sshd");
        let host_key = std::fs::read_to_string(dir.join("host_key.pub")).expect("host key");
        let mut known = std::fs::read_to_string(keys.known_hosts()).unwrap_or_default();
        known.push_str(&format!("[127.0.0.1]:{port} {host_key}"));
        std::fs::write(keys.known_hosts(), known).expect("known_hosts");
        let node = SshNode {
            sshd,
            port,
            user,
            runtime,
            temp,
        };
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return node;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!(
            "sshd did not come up; its log:\n{}",
            std::fs::read_to_string(node.temp.path().join("sshd.log")).unwrap_or_default()
        );
    }

    /// `ssh://USER@127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("ssh://{}@127.0.0.1:{}", self.user, self.port)
    }

    /// The node's containerd (a node started with [`SshNode::start`]).
    pub fn containerd(&self) -> &Containerd {
        match &self.runtime {
            NodeRuntime::Containerd(containerd) => containerd,
            NodeRuntime::Docker(_) => panic!("{} runs docker, not containerd", self.url()),
        }
    }

    /// The node's Docker Engine (a node started with [`SshNode::start_docker`]).
    pub fn docker(&self) -> &Dockerd {
        match &self.runtime {
            NodeRuntime::Docker(docker) => docker,
            NodeRuntime::Containerd(_) => panic!("{} runs containerd, not docker", self.url()),
        }
    }

    /// The sshd's log.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.temp.path().join("sshd.log")).unwrap_or_default()
    }
}

impl Drop for SshNode {
    fn drop(&mut self) {
        let _ = self.sshd.kill();
        let _ = self.sshd.wait();
    }
}
