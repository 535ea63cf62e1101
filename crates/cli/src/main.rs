//! `partyline-cli`: the terminal client without the server, for a machine
//! that only plays. The same client as `partyline client`, same flags.

use clap::Parser;
use std::process::ExitCode;

/// A client at a prompt, to try every command by hand; with --json, a
/// JSON-lines client for scripts and bots.
#[derive(Parser)]
#[command(name = "partyline-cli", version)]
struct Cli {
    #[command(flatten)]
    client: partyline_cli::ClientArgs,
}

fn main() -> ExitCode {
    partyline_cli::run(Cli::parse().client)
}
