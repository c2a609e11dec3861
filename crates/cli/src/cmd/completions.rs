//! `kantup completions SHELL` and `kantup man [--dir DIR]`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use serde::Serialize;

use crate::output::{Ctx, Exit, OutputFormat};

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to generate the script for.
    #[arg(value_enum)]
    shell: clap_complete::Shell,
}

#[derive(Debug, Args)]
pub struct ManArgs {
    /// Write `kantup.1` and one `kantup-<command>.1` per (sub)command into DIR (created if
    /// missing) instead of printing the top-level page.
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
}

/// Writes the completion script for `args.shell` to stdout.
pub fn run_completions(
    mut command: clap::Command,
    args: CompletionsArgs,
) -> anyhow::Result<ExitCode> {
    let name = command.get_name().to_owned();
    clap_complete::generate(args.shell, &mut command, name, &mut std::io::stdout());
    Ok(Exit::Ok.code())
}

#[derive(Debug, Serialize)]
struct ManReport {
    dir: PathBuf,
    pages: Vec<PathBuf>,
}

/// Prints the top-level man page, or writes every page into `--dir`.
pub fn run_man(ctx: &Ctx, command: clap::Command, args: ManArgs) -> anyhow::Result<ExitCode> {
    let Some(dir) = args.dir else {
        clap_mangen::Man::new(command)
            .render(&mut std::io::stdout())
            .context("writing the man page to stdout")?;
        return Ok(Exit::Ok.code());
    };
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    clap_mangen::generate_to(command, &dir)
        .with_context(|| format!("writing man pages into {}", dir.display()))?;
    let mut pages: Vec<PathBuf> = std::fs::read_dir(&dir)
        .with_context(|| format!("listing {}", dir.display()))?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| {
            path.extension().is_some_and(|ext| ext == "1")
                && path
                    .file_name()
                    .is_some_and(|name| name.to_string_lossy().starts_with("kantup"))
        })
        .collect();
    pages.sort();
    match ctx.output {
        OutputFormat::Json => ctx.print_json(&ManReport { dir, pages })?,
        OutputFormat::Table => {
            for page in &pages {
                println!("{}", page.display());
            }
        }
    }
    Ok(Exit::Ok.code())
}
