//! `ajj schema`: the JSON Schema of aether.toml, generated from the types
//! that load it, so the two cannot disagree.

use crate::base::error::Result;
use crate::model::config;

/// Print the JSON Schema of aether.toml
///
/// For editors: `ajj init` writes it as aether.schema.json beside
/// aether.toml, whose first line `#:schema ./aether.schema.json` tells
/// Taplo (Even Better TOML) to complete and check keys with it.
#[derive(clap::Args, Debug)]
pub struct Args {}

pub fn run(_args: Args) -> Result<i32> {
    let text = serde_json::to_string_pretty(&config::schema()).expect("a schema serialises");
    println!("{text}");
    Ok(0)
}
