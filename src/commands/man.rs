//! `ajj man DIR`: the manual pages, generated from the same clap
//! definitions as `--help` (clap_mangen), one per command.

use crate::base::error::{CommandError, ErrorCode, Result};
use crate::base::fs::write_atomic;
use std::path::{Path, PathBuf};

/// Write the manual pages into a directory
///
/// One page per command: `ajj.1`, `ajj-workspace-add.1`, … Install them
/// where `man` looks, e.g. `ajj man ~/.local/share/man/man1`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The directory to write the pages into (made if missing)
    pub dir: PathBuf,
}

/// `cmd` is the whole command line's definition, handed down by `cli.rs`.
pub fn run(args: Args, mut cmd: clap::Command) -> Result<i32> {
    std::fs::create_dir_all(&args.dir).map_err(|e| {
        CommandError::io(format!("cannot make {}", args.dir.display()), e)
            .hint("choose a directory you can write, e.g. ~/.local/share/man/man1")
    })?;
    cmd.build();
    let mut written = Vec::new();
    write_pages(&cmd, "ajj", &args.dir, &mut written)?;
    for path in &written {
        println!("{}", path.display());
    }
    Ok(0)
}

/// The page of `cmd` as `name.1`, then those of its subcommands as
/// `name-sub.1`, recursively. `help` is clap's, not a command of its own.
fn write_pages(
    cmd: &clap::Command,
    name: &str,
    dir: &Path,
    written: &mut Vec<PathBuf>,
) -> Result<()> {
    let page = cmd
        .clone()
        .display_name(name.to_string())
        .bin_name(name.replace('-', " "))
        .version(env!("CARGO_PKG_VERSION"));
    let mut bytes = Vec::new();
    clap_mangen::Man::new(page)
        .title(name.to_uppercase())
        .render(&mut bytes)
        .map_err(|e| CommandError::new(ErrorCode::Internal, format!("rendering {name}.1: {e}")))?;
    let path = dir.join(format!("{name}.1"));
    write_atomic(&path, &bytes, 0o644)?;
    written.push(path);
    for sub in cmd.get_subcommands().filter(|s| s.get_name() != "help") {
        write_pages(sub, &format!("{name}-{}", sub.get_name()), dir, written)?;
    }
    Ok(())
}
