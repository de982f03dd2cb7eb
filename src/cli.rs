//! Command line: flags from the key table, `--help`, `--print-config`,
//! `--check-config`, `--config PATH`.

use std::ffi::OsString;

use crate::config::Config;

/// What the binary should do after parsing its arguments.
pub enum Action {
    /// Start the tracker with this configuration.
    Run(Box<Config>),
    /// Print this text to stdout and exit 0 (`--help`, `--print-config`, `--check-config`).
    Print(String),
}

/// Parses the arguments (without the program name). An `Err` is the one-line
/// message to print before exiting with status 2.
pub fn parse(_args: impl Iterator<Item = OsString>) -> Result<Action, String> {
    Err("not implemented yet".into())
}
