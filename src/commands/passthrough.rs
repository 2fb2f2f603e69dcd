//! Everything Aether does not define becomes jj, by exec: no runtime, no
//! Docker connection, no config read, the same process id and signals.

use crate::base::error::{CommandError, ErrorCode};
use std::ffi::OsString;
use std::os::unix::process::CommandExt;

pub fn exec_jj(args: &[OsString]) -> ! {
    let err = crate::model::jj::command().args(args).exec();
    let e = if err.kind() == std::io::ErrorKind::NotFound {
        CommandError::new(ErrorCode::JjNotFound, "the `jj` binary was not found on PATH")
            .hint("install Jujutsu 0.44 or newer: `cargo install jj-cli@0.45.1 --locked`, or set AETHER_JJ")
    } else {
        CommandError::new(ErrorCode::JjNotFound, format!("could not run jj: {err}"))
    };
    e.report(false);
    std::process::exit(e.code.exit_code());
}
