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
    handle: Option<ServerHandle>,
}

impl TestServer {
    /// Sessions the server holds now (seats in a grace window included).
    pub fn session_count(&self) -> usize {
        self.handle.as_ref().map_or(0, ServerHandle::session_count)
    }

    /// Stops the server as Ctrl-C would: every session is told it ended.
    pub async fn shutdown(&mut self) {
        if let Some(handle) = self.handle.take() {
            handle.shutdown().await;
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A server with a fresh dev certificate, and a scratch folder for the
/// sample's build output.
pub async fn start(name: &str) -> TestServer {
    start_with(name, |_| {}).await
}

/// [`start`], with the server's configuration changed first.
pub async fn start_with(name: &str, configure: impl FnOnce(&mut ServerConfig)) -> TestServer {
    let (tls, cert_pem, _) = generate_dev_identity().expect("dev certificate");
    let mut config = ServerConfig::new("127.0.0.1:0".parse().unwrap(), tls);
    configure(&mut config);
    let server = Server::bind(config).expect("server binds");
    let addr = server.local_addr().expect("local addr");
    let dir = std::env::temp_dir().join(format!("partyline-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("scratch folder");
    let cert = dir.join("cert.pem");
    std::fs::write(&cert, cert_pem).expect("certificate written");
    TestServer {
        addr,
        cert_pem: cert,
        dir,
        handle: Some(server.spawn()),
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

/// A server whose matchmaker runs a round every 50 ms (not every second),
/// so that the matchmaking samples do not wait.
pub async fn start_matchmaking(name: &str) -> TestServer {
    start_with(name, |config| {
        config.matchmaker_interval = Duration::from_millis(50);
    })
    .await
}

/// Checks the match token a sample printed as "match MATCH_ID token TOKEN
/// expires UNIX_SECONDS" the way a game server would (the dev server signs
/// with the key derived from `DEV_MATCH_SECRET`): it must verify, name that match and expiry,
/// hold `players` players, and name the duo's party (printed as "duo party
/// PARTY_ID") as its only party.
pub fn verify_printed_match(stdout: &str, players: usize) {
    let field = |prefix: &str| -> Vec<String> {
        stdout
            .lines()
            .find_map(|line| line.strip_prefix(prefix))
            .unwrap_or_else(|| panic!("no line starting {prefix:?} in:\n{stdout}"))
            .split_whitespace()
            .map(str::to_string)
            .collect()
    };
    let matched = field("match ");
    let [match_id, token_word, token, expires_word, expires] = matched.as_slice() else {
        panic!("expected \"match ID token TOKEN expires SECONDS\", got {matched:?}");
    };
    assert_eq!(
        (token_word.as_str(), expires_word.as_str()),
        ("token", "expires")
    );
    let duo = field("duo party ");
    let claims = partyline::matchmaker::verify_match_token(
        &partyline::matchmaker::derive_match_key(partyline::server::DEV_MATCH_SECRET),
        token,
        partyline::auth::unix_now(),
    )
    .unwrap_or_else(|e| panic!("the printed token does not verify: {e:?}"));
    assert_eq!(&claims.match_id.to_string(), match_id, "the token's match");
    assert_eq!(
        &claims.expires_at.to_string(),
        expires,
        "the token's expiry"
    );
    assert_eq!(claims.players.len(), players, "the token's players");
    let parties: Vec<String> = claims.parties().iter().map(|p| p.to_string()).collect();
    assert_eq!(parties, duo, "the token's one party: the duo's");
}

/// Whether a tool is on PATH (CI installs them; a developer may not have).
pub fn have(tool: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

/// Compiles a C (`.c`, C11) or C++ (`.cpp`, C++17) program against the
/// committed header and the static library, warnings as errors, into the
/// server's scratch folder.
pub fn compile_native(server: &TestServer, source: &Path, binary: &str) -> PathBuf {
    let ffi = ffi_dir();
    let out = server.dir.join(binary);
    let cpp = source.extension().is_some_and(|e| e == "cpp");
    let (compiler, flags): (&str, &[&str]) = if cpp {
        (
            "g++",
            &["-std=c++17", "-Wall", "-Wextra", "-Werror", "-pedantic"],
        )
    } else {
        ("cc", &["-std=c11", "-Wall", "-Wextra", "-Werror"])
    };
    run(
        Command::new(compiler)
            .args(flags)
            .arg("-I")
            .arg(ffi.join("include"))
            .arg(source)
            .arg(c_library().join("libpartyline_ffi.a"))
            .args(["-lpthread", "-ldl", "-lm", "-o"])
            .arg(&out),
        &format!("compiling {}", source.display()),
    );
    out
}

/// Whether mono is here; panics when it is missing and skipping was not
/// asked for (PARTYLINE_SKIP_MONO=1).
pub fn have_mono() -> bool {
    let missing: Vec<&str> = ["mcs", "mono"]
        .into_iter()
        .filter(|tool| !have(tool))
        .collect();
    if missing.is_empty() {
        return true;
    }
    if std::env::var("PARTYLINE_SKIP_MONO").as_deref() == Ok("1") {
        println!(
            "note: PARTYLINE_SKIP_MONO=1 and {} not installed: the C# test did not run",
            missing.join(" and ")
        );
        return false;
    }
    panic!(
        "{} not found: install mono (apt-get install mono-mcs mono-runtime) \
         to test the C# wrapper, or set PARTYLINE_SKIP_MONO=1 to skip it",
        missing.join(" and ")
    );
}

/// Compiles C# `sources` together with the wrapper into `<name>.exe`
/// (mono's mcs, warnings as errors).
pub fn compile_csharp(server: &TestServer, sources: &[PathBuf], name: &str) -> PathBuf {
    let exe = server.dir.join(format!("{name}.exe"));
    run(
        Command::new("mcs")
            .args(["-warn:4", "-warnaserror"])
            .arg(format!("-out:{}", exe.display()))
            .arg(ffi_dir().join("csharp/Partyline.cs"))
            .args(sources),
        &format!("compiling {name} with mcs"),
    );
    exe
}

/// A mono command for `exe`, finding the shared library.
pub fn mono(exe: &Path) -> Command {
    let library = c_library();
    assert!(
        library.join("libpartyline_ffi.so").exists(),
        "no libpartyline_ffi.so in {}",
        library.display()
    );
    let mut command = Command::new("mono");
    command.arg(exe).env("LD_LIBRARY_PATH", &library);
    command
}
