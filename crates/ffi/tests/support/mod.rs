//! Shared by the sample tests: a real partyline server on 127.0.0.1:0 (in
//! this process), its certificate in a PEM file, the built C library, and
//! running a compiled sample against the server.
#![allow(dead_code)]

use partyline::certs::generate_dev_identity;
use partyline::server::{Server, ServerConfig, ServerHandle};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

pub struct TestServer {
    pub addr: SocketAddr,
    pub cert_pem: PathBuf,
    pub dir: PathBuf,
    _handle: ServerHandle,
}

impl Drop for TestServer {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A server with a fresh dev certificate, and a scratch folder for the
/// sample's build output.
pub async fn start(name: &str) -> TestServer {
    let (tls, cert_pem, _) = generate_dev_identity().expect("dev certificate");
    let server =
        Server::bind(ServerConfig::new("127.0.0.1:0".parse().unwrap(), tls)).expect("server binds");
    let addr = server.local_addr().expect("local addr");
    let dir = std::env::temp_dir().join(format!("partyline-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("scratch folder");
    let cert = dir.join("cert.pem");
    std::fs::write(&cert, cert_pem).expect("certificate written");
    TestServer {
        addr,
        cert_pem: cert,
        dir,
        _handle: server.spawn(),
    }
}

/// Where cargo put this build's libraries (target/<profile>/), found from
/// the test executable (target/<profile>/deps/<test>).
pub fn library_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable");
    exe.parent()
        .and_then(Path::parent)
        .expect("target/<profile>/")
        .to_path_buf()
}

/// Builds the C library (static and shared) into [`library_dir`] and
/// returns that folder. `cargo test` builds only the Rust form of a library
/// for its tests, so the samples' test asks cargo for the C forms itself,
/// with the same profile and target folder (a no-op when they are current).
pub fn c_library() -> PathBuf {
    static BUILT: std::sync::OnceLock<Result<(), String>> = std::sync::OnceLock::new();
    let dir = library_dir();
    let built = BUILT.get_or_init(|| {
        let profile = dir.file_name().and_then(|n| n.to_str()).unwrap_or("debug");
        let target = dir.parent().expect("target folder");
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut build = Command::new(cargo);
        build
            .args(["build", "--offline", "--lib", "-p", "partyline-ffi"])
            .env("CARGO_TARGET_DIR", target)
            .current_dir(ffi_dir());
        if profile == "release" {
            build.arg("--release");
        }
        match build.output() {
            Ok(out) if out.status.success() => Ok(()),
            Ok(out) => Err(String::from_utf8_lossy(&out.stderr).into_owned()),
            Err(e) => Err(e.to_string()),
        }
    });
    if let Err(error) = built {
        panic!("building libpartyline_ffi failed:\n{error}");
    }
    dir
}

/// crates/ffi/, where the header, samples and wrappers live.
pub fn ffi_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Runs a build or sample command, failing the test with its output.
pub fn run(command: &mut Command, what: &str) -> Output {
    let output = command
        .output()
        .unwrap_or_else(|e| panic!("{what}: could not start {command:?}: {e}"));
    if !output.status.success() {
        panic!(
            "{what} failed ({}):\n--- stdout\n{}\n--- stderr\n{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    output
}

/// Runs a compiled sample against the server off the async threads, so
/// the in-process server keeps serving it; bounded so a hang fails.
pub async fn run_sample(mut command: Command, what: &'static str) -> String {
    let sample = tokio::task::spawn_blocking(move || run(&mut command, what));
    let output = tokio::time::timeout(Duration::from_secs(120), sample)
        .await
        .unwrap_or_else(|_| panic!("{what} did not finish within 120 s"))
        .expect("sample thread");
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Whether a tool is on PATH (CI installs them; a developer may not have).
pub fn have(tool: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}
