//! partyline: a low-latency realtime party server for games, over QUIC.
//!
//! Layers, top to bottom (arrows point down only):
//! - [`server`]: the QUIC endpoint, sessions, commands, and the routing seam
//!   to other nodes; inside, its own layers import downward only
//!   (docs/ARCHITECTURE.md, checked by `scripts/layers.py` in CI):
//!   transports (`connection`, `nodes`) over commands (one file per family
//!   and a table) over the state over the routing seam (`route`, the only
//!   place that looks at where a member is) over `peers` (alone, in-memory
//!   hub, NATS) and the session.
//! - [`matchmaker`]: the ticket pool's rules; plain Rust, no I/O.
//! - [`party`]: the party rules and the sharded table; plain Rust, no I/O.
//! - [`protocol`]: wire types and codecs; no I/O (the `partyline-protocol`
//!   crate, shared with the client SDK, `partyline-client`).
//! - Beside them: [`auth`] (identity tokens), [`certs`] (dev certificates),
//!   [`security`] (refused and warned configurations), [`wire`] (framing on
//!   a QUIC stream), [`precise_time`] (sub-millisecond timers).

// Nothing a peer sends may panic the server: no unwrap or expect outside
// tests (the protocol module also forbids unchecked indexing).
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

pub mod auth;
pub mod certs;
pub mod matchmaker;
pub mod party;
pub mod precise_time;
pub use partyline_protocol as protocol;
pub mod security;
pub mod server;
pub mod wire;

/// A command-line number that must be finite and >= 0 (durations, rates):
/// NaN, infinity and negative values are refused, never read as "off".
/// Shared by `partyline serve` and the load generator.
pub fn parse_non_negative(text: &str) -> Result<f64, String> {
    match text.trim().parse::<f64>() {
        Ok(value) if value.is_finite() && value >= 0.0 => Ok(value),
        Ok(value) => Err(format!("must be a finite number >= 0, got {value}")),
        Err(error) => Err(format!("not a number: {error}")),
    }
}

/// How `partyline serve` (and the tools beside it) write logs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines; coloured only on a terminal (and never with
    /// `NO_COLOR` set).
    Text,
    /// One JSON object per line, for log collectors.
    Json,
}

/// Logs to stderr with `filter` (already checked to parse), in `format`.
/// Stdout stays free for a program's own output.
pub fn init_logging(filter: &str, format: LogFormat) {
    use std::io::IsTerminal;
    let filter = tracing_subscriber::EnvFilter::try_new(filter)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let colour = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.with_ansi(colour).init(),
        LogFormat::Json => builder.json().with_ansi(false).init(),
    }
}

/// A tokio runtime with `threads` workers: 0 one per core, 1 single-threaded
/// (what `--threads` means for the server and the load generator alike).
/// `None`, with the reason printed, when the runtime cannot start.
pub fn runtime_with(threads: usize) -> Option<tokio::runtime::Runtime> {
    let built = match threads {
        1 => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build(),
        0 => tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build(),
        n => tokio::runtime::Builder::new_multi_thread()
            .worker_threads(n)
            .enable_all()
            .build(),
    };
    match built {
        Ok(runtime) => Some(runtime),
        Err(error) => {
            eprintln!("error: could not start the runtime: {error}");
            None
        }
    }
}
