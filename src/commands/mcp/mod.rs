//! `ajj mcp`: a Model Context Protocol server over stdio.

pub mod invoke;
pub mod tools;

use crate::base::error::Result;
use crate::commands::CommandHelper;

/// Serve Aether's tools to an agent over the Model Context Protocol (stdio)
#[derive(clap::Args, Debug)]
pub struct Args {}

pub fn run(_helper: &CommandHelper, _args: Args) -> Result<i32> {
    Ok(0)
}
