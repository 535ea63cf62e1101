//! Starting a server (partyline or the bare reference) as a child process of
//! the load generator, so its CPU and memory are its own to measure.

use rustls::pki_types::CertificateDer;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

pub struct Spawned {
    child: Child,
    dir: PathBuf,
    pub addr: SocketAddr,
    pub certs: Vec<CertificateDer<'static>>,
}

impl Spawned {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Spawned {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The `partyline` server binary: `given`, or the one beside this
/// executable (cargo builds every binary of the workspace into one folder).
pub fn server_binary(given: Option<&Path>) -> PathBuf {
    if let Some(path) = given {
        return path.to_path_buf();
    }
    let beside = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(|dir| dir.join("partyline")));
    match beside {
        Some(path) if path.exists() => path,
        // From a test binary (target/*/deps/), the binaries are one level up.
        _ => std::env::current_exe()
            .ok()
            .and_then(|exe| Some(exe.parent()?.parent()?.join("partyline")))
            .unwrap_or_else(|| PathBuf::from("partyline")),
    }
}

/// This executable, to start its own `bare-relay` subcommand.
pub fn own_binary() -> PathBuf {
    std::env::current_exe().unwrap_or_else(|_| PathBuf::from("partyline-loadtest"))
}

/// Runs `<program> <subcommand> --listen 127.0.0.1:0 --cert-dir <tmp> <extra>`
/// and waits for its "listening" log line to learn the address. With
/// `pin`, the child runs under `taskset -c <pin>` (util-linux), so every
/// thread it starts stays on that CPU.
pub fn spawn(
    program: &Path,
    subcommand: &str,
    extra: &[String],
    pin: Option<usize>,
) -> Result<Spawned, String> {
    let exe = program;
    let dir = std::env::temp_dir().join(format!("partyline-{subcommand}-{}", std::process::id()));
    let mut command = match pin {
        Some(cpu) => {
            let mut taskset = Command::new("taskset");
            taskset.arg("-c").arg(cpu.to_string()).arg(exe);
            taskset
        }
        None => Command::new(exe),
    };
    let mut child = command
        .arg(subcommand)
        .args(["--listen", "127.0.0.1:0", "--cert-dir"])
        .arg(&dir)
        // Only the listening line: per-session logs would cost server CPU.
        .args([
            "--log-level",
            "warn,partyline=info,partyline_loadtest=info,partyline::server=warn",
        ])
        .args(extra)
        .env("NO_COLOR", "1")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("starting {} {subcommand}: {e}", exe.display()))?;
    // Logs are on stderr: read the address there, and pass the rest on.
    let stderr = child.stderr.take().ok_or("no stderr")?;
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        // Keep draining so the child never blocks on a full pipe.
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            eprintln!("{line}");
            if let Some(rest) = line.split("addr=").nth(1) {
                let _ = tx.send(
                    rest.split_whitespace()
                        .next()
                        .unwrap_or_default()
                        .to_string(),
                );
            }
        }
    });
    let spawned_dir = dir.clone();
    let fail = |child: &mut Child, message: String| {
        let _ = child.kill();
        let _ = std::fs::remove_dir_all(&spawned_dir);
        Err(message)
    };
    let addr = match rx.recv_timeout(Duration::from_secs(15)) {
        Ok(addr) => addr,
        Err(_) => {
            return fail(
                &mut child,
                format!("{subcommand} did not report its address"),
            )
        }
    };
    let addr: SocketAddr = match addr.parse() {
        Ok(addr) => addr,
        Err(e) => return fail(&mut child, format!("{subcommand} reported {addr}: {e}")),
    };
    let certs = match partyline_client::load_certificates(dir.join(partyline::certs::DEV_CERT_FILE))
    {
        Ok(certs) => certs,
        Err(e) => return fail(&mut child, e.to_string()),
    };
    Ok(Spawned {
        child,
        dir,
        addr,
        certs,
    })
}
