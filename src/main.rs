//! `ajj`: jj, plus per-workspace environments. Commands Aether defines are
//! parsed here; everything else is exec'd into jj before any runtime, Docker
//! connection or config read, so the pass-through path costs one exec.
//!
//! `no_main`: Rust's own start-up (stack-guard discovery through
//! /proc/self/maps, an alternate signal stack) is most of what `ajj log`
//! costs over `jj log`, and the pass-through path needs none of it. std
//! still works: on Linux it takes argv from glibc's init hooks.
#![cfg_attr(not(test), no_main)]

mod backend;
mod base;
mod cli;
mod commands;
mod model;
mod reconcile;
mod watch;

use clap::Parser;
use std::ffi::OsString;

#[cfg(not(test))]
#[no_mangle]
extern "C" fn main(_argc: libc::c_int, _argv: *const *const libc::c_char) -> libc::c_int {
    // std's runtime would have ignored SIGPIPE; do the same so a closed
    // pipe on stdout is an error, not a silent death.
    // SAFETY: setting a signal disposition before any thread exists.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_IGN) };
    real_main();
    0
}

#[cfg_attr(test, allow(dead_code))]
fn real_main() {
    let args: Vec<OsString> = std::env::args_os().collect();
    if let Some(shell) =
        std::env::var_os(commands::completions::VAR).filter(|v| !v.is_empty() && v != "0")
    {
        commands::completions::complete(
            &args,
            &shell,
            <cli::Cli as clap::CommandFactory>::command,
            cli::routes_to_aether,
        );
    }
    if !cli::routes_to_aether(&args[1..]) {
        commands::passthrough::exec_jj(&args[1..]);
    }
    let json = cli::wants_json(&args[1..]);
    let parsed = match cli::Cli::try_parse_from(&args) {
        Ok(cli) => cli,
        Err(e) if json && e.use_stderr() => {
            let err =
                base::error::CommandError::new(base::error::ErrorCode::Usage, e.kind().to_string())
                    .hint("see `ajj --help`")
                    .detail("usage", e.render().to_string());
            err.report(true);
            std::process::exit(err.code.exit_code());
        }
        Err(e) => e.exit(),
    };
    init_tracing();
    match parsed.run() {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            e.report(json);
            std::process::exit(e.exit_code());
        }
    }
}

#[cfg_attr(test, allow(dead_code))]
/// `AETHER_LOG=debug` turns on diagnostics on stderr (Docker API call counts among them).
fn init_tracing() {
    if let Ok(filter) = std::env::var("AETHER_LOG") {
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
            .with_writer(std::io::stderr)
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .init();
    }
}
