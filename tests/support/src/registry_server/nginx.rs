//! The real nginx (Debian's package; Harbor's own front end is nginx) for the HTTP parts a
//! registry test needs around docker-registry:
//! - [`Nginx::static_https`]: a static chart repository served over TLS, optionally with
//!   basic auth (htpasswd);
//! - [`Nginx::redirecting_front`]: a TLS front for a registry that answers blob GETs with a
//!   307 to another host name and port ("object storage", serving the registry's own blob
//!   files), and logs for every request whether it carried an `Authorization` header.
//!
//! Runs as one foreground process (`master_process off`) on 127.0.0.1 ports, killed on drop.

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::free_port;
use super::tls::TestCa;
use crate::tools::require_tool;

/// nginx on PATH, else Debian's `/usr/sbin/nginx` (not on a non-root PATH).
fn nginx_binary() -> PathBuf {
    let sbin = Path::new("/usr/sbin/nginx");
    if sbin.is_file() {
        return sbin.to_owned();
    }
    require_tool("nginx")
}

/// A running nginx; dropped = killed.
pub struct Nginx {
    child: Child,
    dir: tempfile::TempDir,
    ports: Vec<u16>,
}

/// The `http {}` settings every configuration shares; `log_format auth` records whether a
/// request had an `Authorization` header (never its value).
fn config(dir: &Path, servers: &str) -> String {
    let d = dir.display();
    format!(
        "daemon off;\nmaster_process off;\nworker_processes 1;\nerror_log {d}/error.log warn;\npid {d}/nginx.pid;\nevents {{ worker_connections 128; }}\nhttp {{\n  access_log off;\n  client_body_temp_path {d}/tmp/body;\n  proxy_temp_path {d}/tmp/proxy;\n  fastcgi_temp_path {d}/tmp/fastcgi;\n  uwsgi_temp_path {d}/tmp/uwsgi;\n  scgi_temp_path {d}/tmp/scgi;\n  types {{ application/x-yaml yaml; application/gzip tgz; }}\n  default_type application/octet-stream;\n  client_max_body_size 0;\n  map $http_authorization $has_auth {{ \"\" no; default yes; }}\n  log_format auth '$request_method $uri status=$status authorization=$has_auth';\n{servers}}}\n"
    )
}

impl Nginx {
    /// Starts nginx with `servers` (the `server {}` blocks, given the ports and nginx's
    /// working directory) on `ports` free ports.
    pub fn start(ports: usize, servers: impl Fn(&[u16], &Path) -> String) -> Self {
        let mut last_error = String::new();
        for _ in 0..4 {
            let dir = tempfile::tempdir().expect("temp dir");
            std::fs::create_dir_all(dir.path().join("tmp")).expect("nginx temp dir");
            let ports: Vec<u16> = (0..ports).map(|_| free_port()).collect();
            let conf = dir.path().join("nginx.conf");
            std::fs::write(&conf, config(dir.path(), &servers(&ports, dir.path())))
                .expect("write nginx.conf");
            let log = std::fs::File::create(dir.path().join("stderr.log")).expect("log");
            let child = Command::new(nginx_binary())
                .arg("-p")
                .arg(dir.path())
                .arg("-c")
                .arg(&conf)
                .stdin(Stdio::null())
                .stdout(log.try_clone().expect("log fd"))
                .stderr(log)
                .spawn()
                .expect("spawn nginx");
            let mut nginx = Nginx { child, dir, ports };
            match nginx.wait_ready() {
                Ok(()) => return nginx,
                Err(e) => last_error = e,
            }
        }
        panic!("nginx did not start: {last_error}");
    }

    fn wait_ready(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                let log = std::fs::read_to_string(self.dir.path().join("stderr.log"))
                    .unwrap_or_default()
                    + &std::fs::read_to_string(self.dir.path().join("error.log"))
                        .unwrap_or_default();
                return Err(format!("exited with {status}: {log}"));
            }
            if self
                .ports
                .iter()
                .all(|port| TcpStream::connect(("127.0.0.1", *port)).is_ok())
            {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Err("timed out waiting for its ports".into())
    }

    /// `127.0.0.1:PORT` of the `n`th port.
    pub fn host(&self, n: usize) -> String {
        format!("127.0.0.1:{}", self.ports[n])
    }

    /// The `n`th port.
    pub fn port(&self, n: usize) -> u16 {
        self.ports[n]
    }

    /// nginx's working directory (its logs are there).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The lines of an access log written with `log_format auth` (`NAME.log` in [`dir`]).
    ///
    /// [`dir`]: Nginx::dir
    pub fn log_lines(&self, name: &str) -> Vec<String> {
        std::fs::read_to_string(self.dir.path().join(format!("{name}.log")))
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    /// Serves `root` over HTTPS at `https://127.0.0.1:PORT/` with a certificate from `ca`;
    /// with `basic_auth = Some((user, password))` every request needs it. Requests are logged
    /// in `access.log` (`log_format auth`).
    pub fn static_https(root: &Path, ca: &TestCa, basic_auth: Option<(&str, &str)>) -> Self {
        let root = root.to_owned();
        let htpasswd = basic_auth.map(|(user, password)| {
            let out = Command::new(require_tool("htpasswd"))
                .args(["-nbm", user, password])
                .output()
                .expect("run htpasswd");
            assert!(out.status.success(), "htpasswd: {out:?}");
            out.stdout
        });
        Self::start(1, move |ports, dir| {
            let cert = ca.issue(&dir.join("cert"), &["127.0.0.1", "localhost"]);
            let auth = match &htpasswd {
                Some(lines) => {
                    let file = dir.join("htpasswd");
                    std::fs::write(&file, lines).expect("write htpasswd");
                    format!(
                        "    auth_basic \"kantup test charts\";\n    auth_basic_user_file {};\n",
                        file.display()
                    )
                }
                None => String::new(),
            };
            format!(
                "  server {{\n    listen 127.0.0.1:{port} ssl;\n    ssl_certificate {cert};\n    ssl_certificate_key {key};\n    access_log {dir}/access.log auth;\n    root {root};\n{auth}  }}\n",
                port = ports[0],
                cert = cert.cert.display(),
                key = cert.key.display(),
                dir = dir.display(),
                root = root.display(),
            )
        })
    }

    /// A TLS front at `127.0.0.1:port(0)` for the plain-HTTP registry at `registry`
    /// (`127.0.0.1:PORT`, storage root `storage`): it proxies every request, except that a
    /// blob GET is answered `307` to `https://localhost:port(1)/...`, a second server that
    /// serves the blob's bytes straight from the registry's storage, as object storage behind
    /// a registry does. Both log to `front.log` and `storage.log` (`log_format auth`).
    pub fn redirecting_front(registry: &str, storage: &Path, ca: &TestCa) -> Self {
        let registry = registry.to_owned();
        let storage: PathBuf = storage.to_owned();
        Self::start(2, move |ports, dir| {
            let cert = ca.issue(&dir.join("cert"), &["127.0.0.1", "localhost"]);
            let tls = format!(
                "    ssl_certificate {};\n    ssl_certificate_key {};\n",
                cert.cert.display(),
                cert.key.display()
            );
            let blobs = storage.join("docker/registry/v2/blobs/sha256");
            format!(
                "  server {{\n    listen 127.0.0.1:{front} ssl;\n{tls}    access_log {dir}/front.log auth;\n    location ~ \"^/v2/.+/blobs/sha256:[0-9a-f]{{64}}$\" {{\n      if ($request_method = GET) {{ return 307 https://localhost:{store}$uri; }}\n      proxy_pass http://{registry};\n      proxy_set_header Host $http_host;\n      proxy_set_header X-Forwarded-Proto https;\n    }}\n    location / {{\n      proxy_pass http://{registry};\n      proxy_set_header Host $http_host;\n      proxy_set_header X-Forwarded-Proto https;\n      proxy_request_buffering off;\n    }}\n  }}\n  server {{\n    listen 127.0.0.1:{store} ssl;\n{tls}    access_log {dir}/storage.log auth;\n    location ~ \"^/v2/.+/blobs/sha256:(?<first>[0-9a-f]{{2}})(?<rest>[0-9a-f]{{62}})$\" {{\n      alias {blobs}/$first/$first$rest/data;\n    }}\n  }}\n",
                front = ports[0],
                store = ports[1],
                dir = dir.display(),
                blobs = blobs.display(),
            )
        })
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
