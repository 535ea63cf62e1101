//! Safe by default off loopback (issue 15), against the real binary as a
//! child process: every refusal and start-up warning, and a server on
//! 0.0.0.0 with a secret file, reached over 127.0.0.1 only.
mod support;

use partyline::auth::mint_token_for;
use partyline::protocol::ErrorCode;
use partyline_client::{Client, ClientConfig, ClientError};
use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_partyline");

/// Token secrets of 32 bytes or more: a server refuses shorter ones.
const SECRET: &str = "a-token-secret-of-32-bytes-or-so";
const NEW_SECRET: &str = "the-new-token-secret-of-32-bytes";
const OLD_SECRET: &str = "the-old-token-secret-of-32-bytes";

/// A fresh directory of this test's own.
fn temp_dir(name: &str) -> PathBuf {
    let dir =
        std::env::temp_dir().join(format!("partyline-security-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn write_secret(dir: &Path, name: &str, secret: &str, mode: u32) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, format!("{secret}\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
    path
}

/// `partyline serve <args> --cert-dir <dir>/certs` with `env` and no other
/// security setting from the environment; its log lines on a channel.
fn spawn(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> (Child, mpsc::Receiver<String>) {
    let mut command = Command::new(BIN);
    command
        .arg("serve")
        .args(args)
        .arg("--cert-dir")
        .arg(dir.join("certs"))
        .env("NO_COLOR", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for var in [
        "PARTYLINE_LISTEN",
        "PARTYLINE_METRICS",
        "PARTYLINE_TOKEN_SECRET",
        "PARTYLINE_TOKEN_SECRET_FILE",
        "PARTYLINE_TOKEN_SECRET_PREVIOUS_FILE",
        "PARTYLINE_ALLOW_DEV_IDENTITIES",
        "PARTYLINE_ALLOW_PUBLIC_METRICS",
        "PARTYLINE_MATCH_SECRET_FILE",
    ] {
        command.env_remove(var);
    }
    command.envs(env.iter().copied());
    let mut child = command.spawn().expect("partyline starts");
    let (tx, rx) = mpsc::channel();
    let stdout: Box<dyn Read + Send> = Box::new(child.stdout.take().unwrap());
    let stderr: Box<dyn Read + Send> = Box::new(child.stderr.take().unwrap());
    for stream in [stdout, stderr] {
        let tx = tx.clone();
        // Keeps draining after the receiver is gone, so the child never
        // blocks on a full pipe.
        std::thread::spawn(move || {
            for line in BufReader::new(stream).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
    }
    (child, rx)
}

/// Runs a server that must refuse to start: its exit status and output.
fn refused(dir: &Path, args: &[&str]) -> String {
    let (mut child, lines) = spawn(dir, args, &[]);
    let status = wait_exit(&mut child);
    assert!(!status.success(), "expected a refusal, got {status}");
    let output: Vec<String> = lines.try_iter().collect();
    assert!(
        !output.iter().any(|line| line.contains("listening")),
        "a refused server must not listen: {output:#?}"
    );
    output.join("\n")
}

fn wait_exit(child: &mut Child) -> ExitStatus {
    let deadline = Instant::now() + support::WAIT;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            // Let the reader threads hand over the last lines.
            std::thread::sleep(Duration::from_millis(100));
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the server did not exit");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A server that started: killed on drop.
struct Running {
    child: Child,
    /// Every line up to the listening line (and the metrics line, if any).
    log: Vec<String>,
    addr: SocketAddr,
    metrics: Option<SocketAddr>,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Running {
    fn warnings(&self) -> Vec<&String> {
        self.log
            .iter()
            .filter(|line| line.contains("WARN"))
            .collect()
    }

    fn assert_warns(&self, text: &str) {
        assert!(
            self.warnings().iter().any(|line| line.contains(text)),
            "no warning with {text:?} in {:#?}",
            self.log
        );
    }
}

fn field(line: &str, name: &str) -> Option<SocketAddr> {
    line.split(&format!(" {name}="))
        .nth(1)?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

fn start(dir: &Path, args: &[&str]) -> Running {
    start_with_env(dir, args, &[])
}

fn start_with_env(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Running {
    let (child, lines) = spawn(dir, args, env);
    let wants_metrics = args.contains(&"--metrics");
    let mut running = Running {
        child,
        log: Vec::new(),
        addr: SocketAddr::from(([0, 0, 0, 0], 0)),
        metrics: None,
    };
    let mut listening = false;
    while !listening || (wants_metrics && running.metrics.is_none()) {
        let line = lines
            .recv_timeout(support::WAIT)
            .unwrap_or_else(|_| panic!("server did not start: {:#?}", running.log));
        if line.contains("partyline listening") {
            running.addr = field(&line, "addr").expect("listening address");
            listening = true;
        }
        if let Some(metrics) = field(&line, "metrics") {
            running.metrics = Some(metrics);
        }
        running.log.push(line);
    }
    running
}

/// `/metrics` of a server this test started, parsed and checked.
fn scrape(addr: SocketAddr) -> support::exposition::Exposition {
    assert!(addr.ip().is_loopback(), "tests only talk to loopback");
    support::scrape_addr(addr)
}

/// The same port on 127.0.0.1, whatever address the server bound.
fn loopback(port_of: SocketAddr) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port_of.port()))
}

#[test]
fn dev_identities_off_loopback_are_refused_before_anything_starts() {
    let dir = temp_dir("dev-refused");
    for listen in ["0.0.0.0:0", "[::]:0"] {
        let output = refused(&dir, &["--listen", listen]);
        assert!(
            output.contains(&format!(
                "refusing to serve dev identities on {listen}: anyone on the network could claim any user id. \
                 Pass --token-secret-file PATH, or --allow-dev-identities to accept that risk."
            )),
            "{output}"
        );
    }
    assert!(
        !dir.join("certs").exists(),
        "refused before writing a certificate"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn allowed_dev_identities_off_loopback_warn_at_start_and_show_in_metrics() {
    let dir = temp_dir("dev-allowed");
    let server = start(
        &dir,
        &[
            "--listen",
            "0.0.0.0:0",
            "--allow-dev-identities",
            "--metrics",
            "127.0.0.1:0",
        ],
    );
    server.assert_warns(
        "serving dev identities on 0.0.0.0:0 (--allow-dev-identities): anyone on the network can claim any user id",
    );
    let metrics = scrape(server.metrics.unwrap());
    assert_eq!(metrics.count("partyline_dev_identities_allowed", &[]), 1);
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn dev_mode_on_loopback_starts_without_security_warnings() {
    let dir = temp_dir("dev-loopback");
    let server = start(&dir, &["--listen", "127.0.0.1:0"]);
    assert!(server.warnings().is_empty(), "{:#?}", server.log);
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn secret_files_open_to_others_or_empty_are_refused() {
    let dir = temp_dir("secret-files");
    let open = write_secret(&dir, "open", SECRET, 0o644);
    let group = write_secret(&dir, "group", SECRET, 0o640);
    let private = write_secret(&dir, "private", SECRET, 0o600);
    let empty = write_secret(&dir, "empty", "", 0o600);
    let path = |p: &PathBuf| p.to_str().unwrap().to_string();

    for (flag, file) in [
        ("--token-secret-file", &open),
        ("--token-secret-file", &group),
        ("--token-secret-previous-file", &open),
    ] {
        let mut args = vec!["--listen", "127.0.0.1:0"];
        let file = path(file);
        let current = path(&private);
        if flag == "--token-secret-previous-file" {
            args.extend(["--token-secret-file", &current]);
        }
        args.extend([flag, &file]);
        let output = refused(&dir, &args);
        assert!(
            output.contains("group or others can access it")
                && output.contains(&format!("chmod 600 {file}")),
            "{flag} {file}: {output}"
        );
    }

    let output = refused(&dir, &["--token-secret-file", &path(&empty)]);
    assert!(output.contains("the file is empty"), "{output}");
    let output = refused(&dir, &["--token-secret-file", &path(&dir.join("missing"))]);
    assert!(
        output.contains("could not read the token secret"),
        "{output}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_previous_secret_without_a_current_one_is_refused() {
    let dir = temp_dir("previous-alone");
    let previous = write_secret(&dir, "previous", OLD_SECRET, 0o600);
    let output = refused(
        &dir,
        &[
            "--listen",
            "127.0.0.1:0",
            "--token-secret-previous-file",
            previous.to_str().unwrap(),
        ],
    );
    assert!(
        output.contains("pass the current secret too, with --token-secret-file PATH"),
        "{output}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_dev_certificate_off_loopback_warns_and_a_real_one_does_not() {
    let dir = temp_dir("dev-cert");
    let secret = write_secret(&dir, "secret", SECRET, 0o600);
    let secret = secret.to_str().unwrap();
    let server = start(
        &dir,
        &["--listen", "0.0.0.0:0", "--token-secret-file", secret],
    );
    server.assert_warns(
        "serving the self-signed development certificate on 0.0.0.0:0: it names only localhost, \
         127.0.0.1 and ::1, and every client must be given it to trust. \
         Pass a real certificate with --cert PATH --key PATH.",
    );
    drop(server);

    // Any certificate the operator passes counts as theirs.
    let cert = dir.join("certs").join("cert.pem");
    let key = dir.join("certs").join("key.pem");
    let server = start(
        &dir,
        &[
            "--listen",
            "0.0.0.0:0",
            "--token-secret-file",
            secret,
            "--cert",
            cert.to_str().unwrap(),
            "--key",
            key.to_str().unwrap(),
        ],
    );
    assert!(server.warnings().is_empty(), "{:#?}", server.log);
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn public_metrics_are_refused_unless_the_risk_is_named() {
    let dir = temp_dir("public-metrics");
    let output = refused(&dir, &["--listen", "127.0.0.1:0", "--metrics", "0.0.0.0:0"]);
    assert!(
        output.contains(
            "refusing to serve metrics on 0.0.0.0:0: anyone who can reach it could read the \
             server's load and traffic. Bind --metrics to a loopback address (e.g. \
             127.0.0.1:9350), or pass --allow-public-metrics to accept that risk."
        ),
        "{output}"
    );

    let server = start(
        &dir,
        &[
            "--listen",
            "127.0.0.1:0",
            "--metrics",
            "0.0.0.0:0",
            "--allow-public-metrics",
        ],
    );
    server.assert_warns("serving metrics on 0.0.0.0:0 (--allow-public-metrics)");
    let metrics = scrape(loopback(server.metrics.unwrap()));
    assert_eq!(metrics.count("partyline_sessions", &[]), 0);
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_secret_on_the_command_line_warns_and_one_from_the_environment_does_not() {
    let dir = temp_dir("secret-argv");
    let server = start(&dir, &["--listen", "127.0.0.1:0", "--token-secret", SECRET]);
    server.assert_warns(
        "the token secret was given on the command line, where any user of this machine can read it",
    );
    drop(server);

    let server = start_with_env(
        &dir,
        &["--listen", "127.0.0.1:0"],
        &[("PARTYLINE_TOKEN_SECRET", SECRET)],
    );
    assert!(server.log.iter().any(|line| line.contains("signed tokens")));
    assert!(server.warnings().is_empty(), "{:#?}", server.log);
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Connects over loopback; `Ok` if the server welcomed the session.
async fn connect(config: ClientConfig) -> Result<(), ErrorCode> {
    assert!(config.server_addr.ip().is_loopback());
    match Client::connect(config).await {
        Ok(_) => Ok(()),
        Err(ClientError::Refused(body)) => Err(body.code),
        Err(other) => panic!("expected a welcome or a refusal, got {other}"),
    }
}

#[tokio::test]
async fn a_server_on_0_0_0_0_with_a_secret_file_accepts_minted_tokens_and_refuses_dev_identities() {
    let dir = temp_dir("public-tokens");
    let current = write_secret(&dir, "current", NEW_SECRET, 0o600);
    let previous = write_secret(&dir, "previous", OLD_SECRET, 0o600);
    let server = start(
        &dir,
        &[
            "--listen",
            "0.0.0.0:0",
            "--token-secret-file",
            current.to_str().unwrap(),
            "--token-secret-previous-file",
            previous.to_str().unwrap(),
            "--metrics",
            "127.0.0.1:0",
        ],
    );
    assert_eq!(server.addr.ip().to_string(), "0.0.0.0");
    assert!(
        !server
            .warnings()
            .iter()
            .any(|line| line.contains("dev identities")),
        "{:#?}",
        server.log
    );
    let addr = loopback(server.addr);
    let certs = partyline_client::load_certificates(dir.join("certs").join("cert.pem")).unwrap();
    let ttl = Duration::from_secs(60);
    let token = |secret: &[u8], user: &str| mint_token_for(secret, user, "Ana", ttl);

    // The file's trailing newline is not part of the secret.
    let fresh = token(NEW_SECRET.as_bytes(), "p-1");
    assert_eq!(
        connect(ClientConfig::with_token(addr, certs.clone(), &fresh)).await,
        Ok(())
    );
    // Minted before the rotation: still valid until it expires.
    let old = token(OLD_SECRET.as_bytes(), "p-2");
    assert_eq!(
        connect(ClientConfig::with_token(addr, certs.clone(), &old)).await,
        Ok(())
    );
    let forged = token(b"guessed-but-not-the-secret-32-bytes", "p-3");
    assert_eq!(
        connect(ClientConfig::with_token(addr, certs.clone(), &forged)).await,
        Err(ErrorCode::Unauthenticated)
    );
    assert_eq!(
        connect(ClientConfig::dev(addr, certs, "p-1", "Mallory")).await,
        Err(ErrorCode::Unauthenticated)
    );

    let metrics = scrape(server.metrics.unwrap());
    assert_eq!(metrics.count("partyline_dev_identities_allowed", &[]), 0);
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}

/// How `serve` says a short secret is refused: how long it is, how to make
/// one, and never the secret itself.
fn assert_says_too_short(output: &str, role: &str, length: usize, secret: &str) {
    assert!(
        output.contains(&format!(
            "refusing the {role}: it is {length} bytes, and must be at least 32"
        )),
        "{output}"
    );
    assert!(
        output.contains("`(umask 077; head -c 32 /dev/urandom | base64 > secret)`")
            && output.contains("mode 600"),
        "{output}"
    );
    assert!(
        !output.contains(secret),
        "the secret is not shown: {output}"
    );
}

#[test]
fn a_secret_under_32_bytes_is_refused_before_anything_starts() {
    let dir = temp_dir("short-secrets");
    let short = "thirty-one-bytes-of-token-secre";
    assert_eq!(short.len(), 31);
    let short_file = write_secret(&dir, "short", short, 0o600);
    let short_file = short_file.to_str().unwrap();
    let strong = write_secret(&dir, "strong", SECRET, 0o600);
    let strong = strong.to_str().unwrap();

    // As text: a bad flag value, exit code 2, from argv or the environment.
    for (args, env) in [
        (vec!["--token-secret", short], vec![]),
        (vec![], vec![("PARTYLINE_TOKEN_SECRET", short)]),
    ] {
        let (mut child, lines) = spawn(&dir, &args, &env);
        assert_eq!(wait_exit(&mut child).code(), Some(2));
        let output: Vec<String> = lines.try_iter().collect();
        let output = output.join("\n");
        assert!(output.contains("--token-secret"), "{output}");
        assert!(output.contains("--token-secret-file"), "{output}");
        assert_says_too_short(&output, "token secret", 31, short);
    }
    // In a file: the current, the previous and the match secret.
    for (args, role) in [
        (vec!["--token-secret-file", short_file], "token secret"),
        (
            vec![
                "--token-secret-file",
                strong,
                "--token-secret-previous-file",
                short_file,
            ],
            "previous token secret",
        ),
        (
            vec![
                "--token-secret-file",
                strong,
                "--match-secret-file",
                short_file,
            ],
            "match secret",
        ),
        // A dev server's own match secret too.
        (vec!["--match-secret-file", short_file], "match secret"),
    ] {
        let mut with_listen = vec!["--listen", "127.0.0.1:0"];
        with_listen.extend(args);
        let output = refused(&dir, &with_listen);
        assert_says_too_short(&output, role, 31, short);
    }
    // 32 bytes are enough.
    let server = start(
        &dir,
        &[
            "--listen",
            "127.0.0.1:0",
            "--token-secret",
            &format!("{short}t"),
        ],
    );
    drop(server);
    assert!(
        dir.join("certs").exists(),
        "the one server that started wrote its certificate"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_match_secret_that_is_the_token_secret_is_refused() {
    let dir = temp_dir("match-is-token");
    let token = write_secret(&dir, "token", SECRET, 0o600);
    let previous = write_secret(&dir, "previous", OLD_SECRET, 0o600);
    // The same secret in another file.
    let copy = write_secret(&dir, "copy", OLD_SECRET, 0o600);
    let path = |p: &PathBuf| p.to_str().unwrap().to_string();
    for match_file in [&token, &copy] {
        let output = refused(
            &dir,
            &[
                "--listen",
                "127.0.0.1:0",
                "--token-secret-file",
                &path(&token),
                "--token-secret-previous-file",
                &path(&previous),
                "--match-secret-file",
                &path(match_file),
            ],
        );
        assert!(
            output.contains("refusing the match secret: it is the")
                && output.contains("could mint identity tokens"),
            "{output}"
        );
    }
    assert!(
        !dir.join("certs").exists(),
        "refused before writing a certificate"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
