//! partyline: a low-latency realtime party server for games, over QUIC.
//!
//! Layers, top to bottom (arrows point down only):
//! - [`server`]: the QUIC endpoint, one task set per connection, sessions.
//! - [`party`]: the party rules and the sharded table; plain Rust, no I/O.
//! - [`protocol`]: wire types and codecs; no I/O (the `partyline-protocol`
//!   crate, shared with the client SDK, `partyline-client`).

// Nothing a peer sends may panic the server: no unwrap or expect outside
// tests (the protocol module also forbids unchecked indexing).
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

pub mod auth;
pub mod certs;
pub mod party;
pub mod precise_time;
pub use partyline_protocol as protocol;
pub mod security;
pub mod server;
pub mod wire;

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
