//! A node reached through the system OpenSSH client (`ssh`), so `~/.ssh/config`, the agent,
//! `known_hosts` and jump hosts work as they do for the operator: its address, the command
//! line, remote commands with their output, and stdin streamed into a remote command with the
//! bytes counted.

use std::fmt;
use std::io::{Read, Write};
use std::process::{Command, Stdio};

use serde::{Deserialize, Serialize};

/// A node: `ssh://[USER@]HOST[:PORT]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Node {
    /// Host name, address, or a `Host` alias of `~/.ssh/config`.
    pub host: String,
    /// Login user (default: what ssh picks).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// Port (default: what ssh picks).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
}

impl Node {
    /// Parses `ssh://[USER@]HOST[:PORT]` (an IPv6 host in brackets).
    ///
    /// ```
    /// use kantup::ops::load::Node;
    /// let node = Node::parse("ssh://root@10.0.0.7:2222").unwrap();
    /// assert_eq!((node.user.as_deref(), node.host.as_str(), node.port), (Some("root"), "10.0.0.7", Some(2222)));
    /// assert_eq!(Node::parse("ssh://edge-1").unwrap().to_string(), "ssh://edge-1");
    /// assert!(Node::parse("edge-1").is_err());
    /// ```
    pub fn parse(text: &str) -> Result<Node, String> {
        let bad = |why: &str| format!("node {text:?}: {why}; expected ssh://[USER@]HOST[:PORT]");
        let rest = text
            .strip_prefix("ssh://")
            .ok_or_else(|| bad("not an ssh:// address"))?;
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        let (user, hostport) = match rest.rsplit_once('@') {
            Some((user, hostport)) if !user.is_empty() => (Some(user.to_string()), hostport),
            Some(_) => return Err(bad("empty user")),
            None => (None, rest),
        };
        let (host, port) = if let Some(bracketed) = hostport.strip_prefix('[') {
            let (host, after) = bracketed.split_once(']').ok_or_else(|| bad("unclosed ["))?;
            (host, after.strip_prefix(':'))
        } else {
            match hostport.split_once(':') {
                Some((host, port)) => (host, Some(port)),
                None => (hostport, None),
            }
        };
        if host.is_empty() || host.contains(['/', ' ', '?', '#']) || host.starts_with('-') {
            return Err(bad("no usable host"));
        }
        let port = port
            .map(|p| {
                p.parse::<u16>()
                    .map_err(|_| bad("the port is not a number"))
            })
            .transpose()?;
        Ok(Node {
            host: host.to_string(),
            user,
            port,
        })
    }
}

impl fmt::Display for Node {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ssh://")?;
        if let Some(user) = &self.user {
            write!(f, "{user}@")?;
        }
        if self.host.contains(':') {
            write!(f, "[{}]", self.host)?;
        } else {
            write!(f, "{}", self.host)?;
        }
        if let Some(port) = self.port {
            write!(f, ":{port}")?;
        }
        Ok(())
    }
}

/// How to run `ssh`.
#[derive(Debug, Clone)]
pub struct SshClient {
    /// The client and its leading arguments (default `ssh`; `KANTUP_SSH` overrides it).
    pub command: Vec<String>,
    /// `-o` options for every connection, e.g. `UserKnownHostsFile=/etc/kantup/known_hosts`.
    pub options: Vec<String>,
}

impl Default for SshClient {
    fn default() -> Self {
        Self {
            command: vec!["ssh".into()],
            options: Vec::new(),
        }
    }
}

/// A remote command failed, or `ssh` could not be run.
#[derive(Debug, Clone)]
pub(super) struct RemoteError {
    pub(super) command: String,
    pub(super) message: String,
}

impl fmt::Display for RemoteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "`{}`: {}", self.command, self.message)
    }
}

/// Quotes `word` for the remote POSIX shell.
pub(super) fn quote(word: &str) -> String {
    if !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:=@,+".contains(c))
    {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

impl SshClient {
    fn command_for(&self, node: &Node, remote: &str) -> Command {
        let mut command = Command::new(&self.command[0]);
        command.args(&self.command[1..]);
        // Never ask for a password or a host key decision: there is no one to answer.
        command.args(["-o", "BatchMode=yes"]);
        for option in &self.options {
            command.arg("-o").arg(option);
        }
        if let Some(port) = node.port {
            command.arg("-p").arg(port.to_string());
        }
        if let Some(user) = &node.user {
            command.arg("-l").arg(user);
        }
        command.arg("--").arg(&node.host).arg(remote);
        command
    }

    /// Runs `remote` on `node`; returns its stdout.
    pub(super) fn run(&self, node: &Node, remote: &str) -> Result<String, RemoteError> {
        self.run_with_input(node, remote, None).map(|(out, _)| out)
    }

    /// Runs `commands` one after the other in one connection (stopping at the first that
    /// fails); returns the stdout of each.
    pub(super) fn run_each(
        &self,
        node: &Node,
        commands: &[String],
    ) -> Result<Vec<String>, RemoteError> {
        const SEPARATOR: &str = "--- kantup: next command ---";
        let remote = commands.join(&format!(" && printf '\\n%s\\n' '{SEPARATOR}' && "));
        let out = self.run(node, &remote)?;
        Ok(out
            .split(&format!("\n{SEPARATOR}\n"))
            .map(str::to_owned)
            .collect())
    }

    /// Runs `remote` on `node`, `write` producing its stdin; returns its stdout and the bytes
    /// written into the connection.
    #[allow(clippy::type_complexity)]
    pub(super) fn run_with_input(
        &self,
        node: &Node,
        remote: &str,
        write: Option<&mut (dyn FnMut(&mut dyn Write) -> std::io::Result<()> + Send)>,
    ) -> Result<(String, u64), RemoteError> {
        let error = |message: String| RemoteError {
            command: format!("{node}: {remote}"),
            message,
        };
        tracing::info!("{node}: running {remote}");
        let mut child = self
            .command_for(node, remote)
            .stdin(if write.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| error(format!("cannot run {}: {e}", self.command[0])))?;
        let stdin = child.stdin.take();
        let mut stdout = child.stdout.take().expect("piped");
        let mut stderr = child.stderr.take().expect("piped");
        let (written, out, err) = std::thread::scope(|scope| {
            let out = scope.spawn(move || {
                let mut buf = Vec::new();
                stdout.read_to_end(&mut buf).map(|_| buf)
            });
            let err = scope.spawn(move || {
                let mut buf = Vec::new();
                stderr.read_to_end(&mut buf).map(|_| buf)
            });
            let written = match (write, stdin) {
                (Some(write), Some(stdin)) => {
                    let mut counting = CountingWriter {
                        inner: std::io::BufWriter::with_capacity(1 << 20, stdin),
                        count: 0,
                    };
                    let result = write(&mut counting).and_then(|()| counting.flush());
                    let count = counting.count;
                    drop(counting);
                    Some(result.map(|()| count))
                }
                _ => None,
            };
            (written, out.join(), err.join())
        });
        let status = child
            .wait()
            .map_err(|e| error(format!("waiting for ssh: {e}")))?;
        let stdout = String::from_utf8_lossy(&out.ok().and_then(Result::ok).unwrap_or_default())
            .into_owned();
        let stderr = String::from_utf8_lossy(&err.ok().and_then(Result::ok).unwrap_or_default())
            .trim()
            .to_string();
        if !status.success() {
            // ssh exits 255 for its own failures (cannot connect, host key, auth).
            let what = if status.code() == Some(255) {
                "ssh failed"
            } else {
                "failed on the node"
            };
            return Err(error(format!("{what} ({status}): {stderr}")));
        }
        match written {
            Some(Err(e)) => Err(error(format!("streaming into it: {e}; {stderr}"))),
            Some(Ok(count)) => Ok((stdout, count)),
            None => Ok((stdout, 0)),
        }
    }
}

struct CountingWriter<W> {
    inner: W,
    count: u64,
}

impl<W: Write> Write for CountingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.count += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_addresses() {
        let node = Node::parse("ssh://[::1]:22").unwrap();
        assert_eq!((node.host.as_str(), node.port), ("::1", Some(22)));
        assert_eq!(node.to_string(), "ssh://[::1]:22");
        for bad in [
            "ssh://",
            "ssh://@h",
            "ssh://h:x",
            "http://h",
            "ssh://-oProxyCommand=x",
        ] {
            assert!(Node::parse(bad).is_err(), "{bad:?} must be refused");
        }
    }

    #[test]
    fn quoting() {
        assert_eq!(quote("k8s.io"), "k8s.io");
        assert_eq!(quote("a b"), "'a b'");
        assert_eq!(quote("it's"), r"'it'\''s'");
        assert_eq!(quote(""), "''");
    }
}
