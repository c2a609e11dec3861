//! A registry with the OCI 1.1 referrers API (`GET /v2/<name>/referrers/<digest>`):
//! go-containerregistry's registry with its referrers support switched on
//! (`tests/referrers-registry`, see [`crate::tools::referrers_registry`]), in memory, plain HTTP
//! on 127.0.0.1 at a free port; killed on drop.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use crate::tools::referrers_registry;

/// A running referrers-API registry; dropped = killed.
pub struct ReferrersRegistry {
    child: Child,
    port: u16,
}

impl ReferrersRegistry {
    /// Starts it on a free port and waits until it listens.
    pub fn start() -> Self {
        let mut child = Command::new(referrers_registry())
            .args(["-port", "0"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn referrers-registry");
        let stdout = child.stdout.take().expect("stdout");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("read referrers-registry's first line");
        let port = line
            .trim()
            .strip_prefix("listening on ")
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("referrers-registry said {line:?}"));
        ReferrersRegistry { child, port }
    }

    /// `127.0.0.1:PORT`.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

impl Drop for ReferrersRegistry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
