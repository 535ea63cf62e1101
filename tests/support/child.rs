//! `partyline serve` as a child process, for the tests of the binary
//! itself (included with `#[path]` by those alone: the load generator's
//! tests share `tests/support` but have no `partyline` binary).
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;

pub const BIN: &str = env!("CARGO_BIN_EXE_partyline");

/// Starts `partyline serve` (with `extra` flags) on a free port and returns
/// it with its address, read from its own "listening" log line.
pub fn serve(cert_dir: &Path, extra: &[&str]) -> (Child, SocketAddr) {
    let (child, addr, _log) = serve_logged(cert_dir, extra);
    (child, addr)
}

/// As [`serve`], and every line it logs (on stderr), from its first on.
pub fn serve_logged(
    cert_dir: &Path,
    extra: &[&str],
) -> (Child, SocketAddr, mpsc::Receiver<String>) {
    let mut child = Command::new(BIN)
        .args(["serve", "--listen", "127.0.0.1:0", "--cert-dir"])
        .arg(cert_dir)
        .args(extra)
        .env("NO_COLOR", "1")
        .env_remove("PARTYLINE_TOKEN_SECRET")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("partyline starts");
    // Logs go to stderr; stdout stays empty.
    let stderr = child.stderr.take().expect("stderr");
    let (tx, rx) = mpsc::channel();
    let (log_tx, log) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            eprintln!("{line}");
            if let Some(rest) = line.split("addr=").nth(1) {
                let addr = rest.split_whitespace().next().unwrap_or_default();
                let _ = tx.send(addr.to_string());
            }
            let _ = log_tx.send(line);
        }
    });
    let addr = rx
        .recv_timeout(super::support::WAIT)
        .expect("a listening line");
    (child, addr.parse().expect("an address"), log)
}
