//! The foundation every layer may use: the error type, templates, files and
//! the async runtime. It imports nothing of Aether's.

pub mod error;
pub mod fs;
pub mod hex;
pub mod interrupt;
pub mod runtime;
pub mod template;
