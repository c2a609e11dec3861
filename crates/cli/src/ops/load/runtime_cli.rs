//! The container runtime's CLI (`ctr`, `docker`, `podman`) as a child process: its command
//! lines, its global arguments, stdin streamed into it, its failures with its stderr.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::{LoadError, LoadOptions, Runtime};
use crate::ops::progress::Progress;

/// Runs the runtime CLI with its global arguments and reports failures with its stderr.
pub(super) struct RuntimeCli {
    runtime: Runtime,
    program: PathBuf,
    global_args: Vec<String>,
    /// The containerd namespace (`ctr -n`).
    namespace: String,
}

impl RuntimeCli {
    pub(super) fn new(options: &LoadOptions) -> Self {
        Self {
            runtime: options.runtime,
            namespace: options.namespace.clone(),
            program: options
                .runtime_bin
                .clone()
                .unwrap_or_else(|| PathBuf::from(options.runtime.binary())),
            global_args: options
                .runtime_args
                .iter()
                .filter(|a| !a.is_empty())
                .cloned()
                .collect(),
        }
    }

    /// Loads an image archive: the file `archive`, or what `stdin` streams when `None`.
    pub(super) fn load(
        &self,
        archive: Option<&Path>,
        stdin: Option<Box<dyn Read + Send + '_>>,
    ) -> Result<(), LoadError> {
        let mut args: Vec<String> = match self.runtime {
            Runtime::Containerd => vec![
                "-n".into(),
                self.namespace.clone(),
                "images".into(),
                "import".into(),
            ],
            Runtime::Docker | Runtime::Podman => vec!["load".into()],
        };
        match (archive, self.runtime) {
            (Some(path), Runtime::Containerd) => args.push(path.to_string_lossy().into_owned()),
            (Some(path), Runtime::Docker | Runtime::Podman) => {
                args.extend(["-i".into(), path.to_string_lossy().into_owned()])
            }
            // ctr reads stdin only when told; docker and podman read it without -i.
            (None, Runtime::Containerd) => args.push("-".into()),
            (None, Runtime::Docker | Runtime::Podman) => {}
        }
        self.run(&args, stdin)
    }

    /// Tags the image `source` as `target` (replacing an existing `target`).
    pub(super) fn tag(&self, source: &str, target: &str) -> Result<(), LoadError> {
        let args: Vec<String> = match self.runtime {
            Runtime::Containerd => vec![
                "-n".into(),
                self.namespace.clone(),
                "images".into(),
                "tag".into(),
                "--force".into(),
                source.into(),
                target.into(),
            ],
            Runtime::Docker | Runtime::Podman => vec!["tag".into(), source.into(), target.into()],
        };
        self.run(&args, None)
    }

    /// Runs `program global_args.. args..`, streaming `stdin` into it when given.
    fn run(
        &self,
        args: &[String],
        stdin: Option<Box<dyn Read + Send + '_>>,
    ) -> Result<(), LoadError> {
        let command = std::iter::once(self.program.display().to_string())
            .chain(self.global_args.iter().cloned())
            .chain(args.iter().cloned())
            .collect::<Vec<_>>()
            .join(" ");
        tracing::info!("running {command}");
        let mut child = Command::new(&self.program)
            .args(&self.global_args)
            .args(args)
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|source| LoadError::Spawn {
                command: command.clone(),
                source,
            })?;
        let (output, copied) = std::thread::scope(|scope| {
            let writer = match (stdin, child.stdin.take()) {
                (Some(mut source), Some(mut sink)) => Some(scope.spawn(move || {
                    let copied = std::io::copy(&mut source, &mut sink);
                    drop(sink);
                    copied
                })),
                _ => None,
            };
            let output = child.wait_with_output();
            let copied = writer.map(|handle| handle.join());
            (output, copied)
        });
        let output = output.map_err(|source| LoadError::Spawn {
            command: command.clone(),
            source,
        })?;
        if !output.status.success() {
            return Err(LoadError::Failed {
                command,
                status: output.status,
                stderr: String::from_utf8_lossy(&output.stderr).trim().to_string(),
            });
        }
        match copied {
            Some(Ok(Err(source))) => return Err(LoadError::Stream { command, source }),
            Some(Err(_)) => {
                return Err(LoadError::Stream {
                    command,
                    source: std::io::Error::other("the copying thread panicked"),
                });
            }
            _ => {}
        }
        tracing::debug!(
            "{command}: {}",
            String::from_utf8_lossy(&output.stdout).trim()
        );
        Ok(())
    }
}

/// Reports bytes read to a [`Progress`].
pub(super) struct ProgressReader<'a, R> {
    pub(super) inner: R,
    pub(super) progress: &'a dyn Progress,
}

impl<R: Read> Read for ProgressReader<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.progress.advance(n as u64);
        Ok(n)
    }
}
