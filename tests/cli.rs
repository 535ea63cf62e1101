//! The `partyline` binary as a child process: first-run certificate, a real
//! client against it, Ctrl-C (SIGINT) as a clean close, `token` and
//! `match-key` (the token secret from a file or argv), and `client` (the
//! terminal client, crates/cli).
mod support;

use partyline_client::{Client, ClientConfig, DisconnectReason, Event, PartySettings};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;

#[path = "support/child.rs"]
mod child;
use child::{serve, BIN};

fn interrupt(child: &Child) {
    signal(child, "-INT");
}

fn signal(child: &Child, which: &str) {
    let status = Command::new("kill")
        .args([which, &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success());
}

#[tokio::test]
async fn serve_makes_a_dev_certificate_serves_and_stops_cleanly_on_ctrl_c() {
    let dir = std::env::temp_dir().join(format!("partyline-cli-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);

    let (mut child, addr) = serve(&dir, &[]);
    let cert_pem = std::fs::read(dir.join("cert.pem")).expect("cert written on first run");
    assert!(dir.join("key.pem").exists());
    let certs = partyline_client::load_certificates(dir.join("cert.pem")).unwrap();
    let (client, mut events) =
        Client::connect(ClientConfig::dev(addr, certs.clone(), "ana", "Ana"))
            .await
            .expect("a client connects to the binary");
    client.create_party(PartySettings::default()).await.unwrap();

    interrupt(&child);
    match support::next(&mut events).await {
        Event::Disconnected { reason } => assert_eq!(reason, DisconnectReason::ServerShutdown),
        other => panic!("unexpected {other:?}"),
    }
    assert!(
        child.wait().unwrap().success(),
        "exits with success after Ctrl-C"
    );

    // Second run: the same certificate is reused, so the same trust works;
    // and SIGTERM (what orchestrators send) drains like Ctrl-C, here with
    // the coalescing flusher running too.
    let (mut child, addr) = serve(&dir, &["--coalesce-us", "250"]);
    assert_eq!(std::fs::read(dir.join("cert.pem")).unwrap(), cert_pem);
    let (_client, mut events) = Client::connect(ClientConfig::dev(addr, certs, "bob", "Bob"))
        .await
        .unwrap();
    signal(&child, "-TERM");
    match support::next(&mut events).await {
        Event::Disconnected { reason } => assert_eq!(reason, DisconnectReason::ServerShutdown),
        other => panic!("unexpected {other:?}"),
    }
    assert!(child.wait().unwrap().success());
    let _ = std::fs::remove_dir_all(&dir);
}

/// A token secret of 32 bytes (the fewest accepted) and one byte short.
const SECRET: &str = "a-token-secret-of-32-bytes-or-so";
const SHORT_SECRET: &str = "a-token-secret-of-31-bytes-shor";

/// `partyline <args>` with no secret from the environment.
fn run(args: &[&str]) -> std::process::Output {
    Command::new(BIN)
        .args(args)
        .env_remove("PARTYLINE_TOKEN_SECRET")
        .env_remove("PARTYLINE_TOKEN_SECRET_FILE")
        .output()
        .unwrap()
}

/// A secret file of this test's own, only its owner may read.
fn secret_file(name: &str, secret: &str) -> std::path::PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let dir = std::env::temp_dir().join(format!("partyline-cli-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("secret");
    std::fs::write(&path, format!("{secret}\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    path
}

const MINT: [&str; 7] = [
    "token",
    "--user-id",
    "p-1",
    "--username",
    "Ana",
    "--ttl",
    "60",
];

fn minted_for(output: &std::process::Output, secret: &str) -> partyline::auth::Claims {
    assert!(output.status.success(), "{output:?}");
    let token = String::from_utf8(output.stdout.clone()).unwrap();
    partyline::auth::verify_token(secret.as_bytes(), token.trim(), partyline::auth::unix_now())
        .unwrap()
}

#[test]
fn token_command_mints_a_token_the_server_accepts() {
    let output = run(&[&MINT[..], &["--secret", SECRET]].concat());
    let claims = minted_for(&output, SECRET);
    assert_eq!(
        (claims.user_id.as_str(), claims.username.as_str()),
        ("p-1", "Ana")
    );

    let refused = run(&[
        "token",
        "--user-id",
        "",
        "--username",
        "Ana",
        "--secret",
        SECRET,
    ]);
    // A bad value, like any other flag's: exit code 2.
    assert_eq!(refused.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("user id"));
}

#[test]
fn token_reads_its_secret_from_a_file_and_warns_about_one_in_argv() {
    // From a file: no warning, the file's trailing newline is not part of
    // the secret.
    let file = secret_file("token-file", SECRET);
    let output = run(&[&MINT[..], &["--secret-file", file.to_str().unwrap()]].concat());
    minted_for(&output, SECRET);
    assert!(output.stderr.is_empty(), "{output:?}");
    // From the environment, as `serve` reads it: no warning either.
    let output = Command::new(BIN)
        .args(MINT)
        .env_remove("PARTYLINE_TOKEN_SECRET")
        .env("PARTYLINE_TOKEN_SECRET_FILE", &file)
        .output()
        .unwrap();
    minted_for(&output, SECRET);
    assert!(output.stderr.is_empty(), "{output:?}");

    // In argv: minted, and warned about on stderr as `serve` does.
    let output = run(&[&MINT[..], &["--secret", SECRET]].concat());
    minted_for(&output, SECRET);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(
            "warning: the token secret was given on the command line, where any user of this \
             machine can read it (ps, /proc). Put it in a file only you can read and pass \
             --secret-file PATH."
        ),
        "{stderr}"
    );
    // The help says so too.
    let help = String::from_utf8(run(&["token", "--help"]).stdout).unwrap();
    assert!(help.contains("--secret-file <PATH>"), "{help}");
    assert!(help.contains("prefer --secret-file"), "{help}");

    // Both, or neither: a usage error.
    let both = run(&[
        &MINT[..],
        &["--secret", SECRET, "--secret-file", file.to_str().unwrap()],
    ]
    .concat());
    assert_eq!(both.status.code(), Some(2), "{both:?}");
    let neither = run(&MINT);
    assert_eq!(neither.status.code(), Some(2), "{neither:?}");
    let _ = std::fs::remove_dir_all(file.parent().unwrap());
}

#[test]
fn token_and_match_key_refuse_a_secret_under_32_bytes() {
    assert_eq!(SHORT_SECRET.len(), 31);
    let file = secret_file("short", SHORT_SECRET);
    let file = file.to_str().unwrap();
    for command in [&MINT[..], &["match-key"][..]] {
        // In argv: a bad value, exit code 2; in a file: exit code 1.
        for (secret, code) in [
            (["--secret", SHORT_SECRET], 2),
            (["--secret-file", file], 1),
        ] {
            let output = run(&[command, &secret[..]].concat());
            assert_eq!(output.status.code(), Some(code), "{secret:?}: {output:?}");
            assert!(output.stdout.is_empty(), "nothing minted: {output:?}");
            let stderr = String::from_utf8_lossy(&output.stderr);
            assert!(
                stderr
                    .contains("refusing the token secret: it is 31 bytes, and must be at least 32")
                    && stderr.contains("head -c 32 /dev/urandom"),
                "{secret:?}: {stderr}"
            );
            assert!(
                !stderr.contains(SHORT_SECRET),
                "the secret is not shown: {stderr}"
            );
        }
    }
    let _ = std::fs::remove_dir_all(std::path::Path::new(file).parent().unwrap());
}

#[test]
fn match_key_prints_the_key_derived_from_the_token_secret() {
    let file = secret_file("match-key", SECRET);
    let output = run(&["match-key", "--secret-file", file.to_str().unwrap()]);
    assert!(output.status.success(), "{output:?}");
    assert!(output.stderr.is_empty(), "{output:?}");
    let printed = String::from_utf8(output.stdout).unwrap();
    let expected: String = partyline::matchmaker::derive_match_key(SECRET.as_bytes())
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect();
    assert_eq!(printed, format!("{expected}\n"));
    // PROTOCOL.md's worked example, printed by the command.
    let output = run(&["match-key", "--secret", "example-token-secret-of-32-bytes"]);
    assert_eq!(
        String::from_utf8(output.stdout).unwrap(),
        "3609d6ea32760b6991128ea68e84db63414a4882c684fec0b6bee01206a48b05\n"
    );
    let _ = std::fs::remove_dir_all(file.parent().unwrap());
}

#[test]
fn bad_flag_values_are_refused_with_a_clear_message_and_exit_code_2() {
    let cases: &[(&[&str], &str)] = &[
        (&["--grace", "-1"], "--grace"),
        (&["--command-rate", "nan"], "--command-rate"),
        (&["--data-rate", "inf"], "--data-rate"),
        (&["--max-sessions", "0"], "--max-sessions"),
        (&["--shards", "0"], "--shards"),
        (&["--log-level", "info,=["], "--log-level"),
        (
            &["--max-parties-per-session", "25"],
            "--max-parties-per-session",
        ),
        (&["--invite-ttl", "-5"], "--invite-ttl"),
        // These exited 1 (after logging began), or were refused by the
        // parser as "unexpected argument" without naming the flag.
        (
            &["--idle-timeout", "5", "--keep-alive", "5"],
            "--idle-timeout",
        ),
        (&["--idle-timeout", "0"], "--idle-timeout"),
        (&["--node-timeout", "0.2"], "--node-timeout"),
        (&["--node-timeout", "nan"], "--node-timeout"),
        (&["--node-timeout", "-1"], "--node-timeout"),
        (&["--grace", "1e300"], "--grace"),
        (&["--match-token-ttl", "1e12"], "--match-token-ttl"),
        (&["--threads", "100000"], "--threads"),
        (&["--token-secret="], "--token-secret"),
        // Seconds: fractions, yes; anything else, no.
        (&["--join-request-ttl", "2.5s"], "--join-request-ttl"),
        (&["--join-request-ttl", "-1"], "--join-request-ttl"),
        (&["--join-request-ttl", "1e30"], "--join-request-ttl"),
        (&["--matchmaker-interval", "inf"], "--matchmaker-interval"),
        // Counts out of their range.
        (&["--shards", "10000000"], "--shards"),
        (&["--max-datagram-data", "0"], "--max-datagram-data"),
        (&["--max-datagram-data", "70000"], "--max-datagram-data"),
        (&["--coalesce-us", "5000000"], "--coalesce-us"),
        (&["--tickets-per-minute", "-1"], "--tickets-per-minute"),
        (&["--max-follows", "99999999999"], "--max-follows"),
        (&["--replay-events", "-3"], "--replay-events"),
        (&["--replay-bytes", "-1"], "--replay-bytes"),
        (&["--replay-bytes", "64KiB"], "--replay-bytes"),
        (&["--webtransport", "maybe"], "--webtransport"),
        (&["--allowed-origin", "game.example"], "--allowed-origin"),
        (
            &["--allowed-origin", "https://game.example/page"],
            "--allowed-origin",
        ),
        (
            &["--cluster", "nats://127.0.0.1:1", "--node", "eu west"],
            "--node",
        ),
    ];
    let dir = std::env::temp_dir().join(format!("partyline-cli-flags-{}", std::process::id()));
    // Every case is tried, and every one that fails is named.
    let mut wrong = Vec::new();
    for (args, flag) in cases {
        let (code, stderr) = serve_refused(&dir, args);
        if code != Some(2) || !stderr.contains(flag) {
            wrong.push(format!(
                "{args:?}: exit {code:?}, expected 2 and a message naming {flag}: {stderr}"
            ));
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// Runs `partyline serve` with `args`, expecting it to refuse them: its
/// exit code and stderr. One that starts serving instead is stopped (exit
/// code `None`), so a value wrongly accepted fails the test, never hangs it.
fn serve_refused(cert_dir: &Path, args: &[&str]) -> (Option<i32>, String) {
    let mut child = Command::new(BIN)
        .args(["serve", "--listen", "127.0.0.1:0", "--cert-dir"])
        .arg(cert_dir)
        .args(args)
        .env("NO_COLOR", "1")
        .env_remove("PARTYLINE_TOKEN_SECRET")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("partyline runs");
    let deadline = std::time::Instant::now() + support::WAIT;
    let code = loop {
        match child.try_wait().expect("partyline can be waited for") {
            Some(status) => break status.code(),
            None if std::time::Instant::now() > deadline => {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            None => std::thread::sleep(std::time::Duration::from_millis(20)),
        }
    };
    let mut stderr = String::new();
    if let Some(mut pipe) = child.stderr.take() {
        let _ = std::io::Read::read_to_string(&mut pipe, &mut stderr);
    }
    (code, stderr)
}

#[tokio::test]
async fn every_flag_in_seconds_takes_fractions() {
    let dir = std::env::temp_dir().join(format!("partyline-cli-fractions-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let (mut child, addr) = serve(
        &dir,
        &[
            "--join-request-ttl",
            "2.5",
            "--keep-alive",
            "0.5",
            "--idle-timeout",
            "2.5",
            "--grace",
            "1.5",
            "--leader-grace",
            "0.25",
            "--drain-timeout",
            "0.5",
            "--invite-ttl",
            "1.5",
            "--matchmaker-interval",
            "0.5",
            "--matchmaker-relax-after",
            "2.5",
            "--match-token-ttl",
            "30.5",
            "--node-timeout",
            "0.75",
        ],
    );
    let certs = partyline_client::load_certificates(dir.join("cert.pem")).unwrap();
    let (client, _events) = Client::connect(ClientConfig::dev(addr, certs, "ana", "Ana"))
        .await
        .expect("a client connects");
    // What the server announces is what it was told, to the millisecond.
    let limits = client.limits();
    assert_eq!(limits.join_request_ttl_ms, 2500);
    assert_eq!(limits.invite_ttl_ms, 1500);
    assert_eq!(limits.matchmaker_interval_ms, 500);
    assert_eq!(limits.matchmaker_relax_after_ms, 2500);
    interrupt(&child);
    assert!(child.wait().unwrap().success());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn json_logs_go_to_stderr_one_object_per_line_and_stdout_stays_empty() {
    let dir = std::env::temp_dir().join(format!("partyline-json-logs-{}", std::process::id()));
    let mut child = Command::new(BIN)
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--log-format",
            "json",
            "--cert-dir",
        ])
        .arg(&dir)
        .env_remove("PARTYLINE_TOKEN_SECRET")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("partyline starts");
    let stderr = child.stderr.take().expect("stderr");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let listening = loop {
        let line = rx.recv_timeout(support::WAIT).expect("a log line");
        let object: serde_json::Value =
            serde_json::from_str(&line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        let message = object["fields"]["message"].as_str().unwrap_or_default();
        if message.contains("listening") {
            break object;
        }
    };
    assert!(listening["fields"]["addr"].is_string(), "{listening}");
    assert_eq!(listening["level"], "INFO");
    interrupt(&child);
    let output = child.wait_with_output().expect("it exits");
    assert!(
        output.stdout.is_empty(),
        "stdout: {:?}",
        String::from_utf8_lossy(&output.stdout)
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn cert_name_makes_a_dev_certificate_a_lan_client_can_trust_by_that_name() {
    let dir = std::env::temp_dir().join(format!("partyline-cli-lan-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let (mut child, addr) = serve(&dir, &["--cert-name", "game.lan,192.0.2.10"]);
    let certs = partyline_client::load_certificates(dir.join("cert.pem")).unwrap();
    let mut config = ClientConfig::dev(addr, certs.clone(), "ana", "Ana");
    // What a client on another machine does: trust the copied cert.pem and
    // name the server as the certificate does.
    config.server_name = "game.lan".into();
    let (client, _events) = Client::connect(config).await.expect("trusted as game.lan");
    client.disconnect();
    // A name the certificate lacks is refused by TLS.
    let mut config = ClientConfig::dev(addr, certs, "bob", "Bob");
    config.server_name = "other.lan".into();
    assert!(
        Client::connect(config).await.is_err(),
        "not valid for other.lan"
    );
    interrupt(&child);
    child.wait().unwrap();
    let first = std::fs::read(dir.join("cert.pem")).unwrap();

    // The same names again (or fewer): the certificate is kept.
    let (mut child, _) = serve(&dir, &["--cert-name", "game.lan"]);
    interrupt(&child);
    child.wait().unwrap();
    assert_eq!(std::fs::read(dir.join("cert.pem")).unwrap(), first);
    // A new name: a new certificate.
    let (mut child, _) = serve(&dir, &["--cert-name", "arena.lan"]);
    interrupt(&child);
    child.wait().unwrap();
    assert_ne!(std::fs::read(dir.join("cert.pem")).unwrap(), first);
    let names = std::fs::read_to_string(dir.join("cert-names.txt")).unwrap();
    assert!(names.lines().any(|n| n == "arena.lan"), "{names}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[cfg(unix)]
#[test]
fn admin_needs_a_token_exit_2_and_a_public_admin_address_needs_allow_public_admin() {
    use std::os::unix::fs::PermissionsExt;
    let dir = std::env::temp_dir().join(format!("partyline-cli-admin-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let run = |args: &[&str]| {
        Command::new(BIN)
            .args(["serve", "--listen", "127.0.0.1:0", "--cert-dir"])
            .arg(dir.join("certs"))
            .args(args)
            .env("NO_COLOR", "1")
            .env_remove("PARTYLINE_TOKEN_SECRET")
            .env_remove("PARTYLINE_ADMIN_TOKEN")
            .env_remove("PARTYLINE_ADMIN_TOKEN_FILE")
            .output()
            .expect("partyline runs")
    };

    let output = run(&["--admin", "127.0.0.1:0"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("--admin needs a bearer token") && stderr.contains("--admin-token-file"),
        "{stderr}"
    );

    // With a token, off loopback: refused before anything is written.
    let token = dir.join("admin-token");
    std::fs::write(&token, "admin-token-0123456789abcdef\n").unwrap();
    std::fs::set_permissions(&token, std::fs::Permissions::from_mode(0o600)).unwrap();
    let token = token.to_str().expect("a UTF-8 path");
    let output = run(&["--admin", "0.0.0.0:0", "--admin-token-file", token]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("--allow-public-admin"), "{stderr}");
    assert!(!dir.join("certs").exists(), "nothing written");
    let _ = std::fs::remove_dir_all(&dir);
}

/// `partyline client` is the terminal client of crates/cli (tested there in
/// full): the subcommand is wired, with the same flags, exit codes and
/// JSON lines.
#[cfg(feature = "cli")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partyline_client_runs_the_terminal_client() {
    use std::io::Write;

    let bad = Command::new(BIN)
        .args(["client", "--server", "127.0.0.1:7350", "--bogus"])
        .output()
        .expect("partyline runs");
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert_eq!(bad.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("'--bogus'"), "{stderr}");
    assert!(stderr.contains("Usage: partyline client"), "{stderr}");

    let (tls, cert_pem, _) = partyline::certs::generate_dev_identity().unwrap();
    let config = partyline::server::ServerConfig::new("127.0.0.1:0".parse().unwrap(), tls);
    let server = partyline::server::Server::bind(config).unwrap();
    let addr = server.local_addr().unwrap();
    let _server = server.spawn();
    let dir = std::env::temp_dir().join(format!("partyline-cli-client-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let cert = dir.join("cert.pem");
    std::fs::write(&cert, cert_pem).unwrap();
    let mut child = Command::new(BIN)
        .args(["client", "--json", "--user", "ana", "--server"])
        .arg(addr.to_string())
        .arg("--cert")
        .arg(&cert)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("partyline client starts");
    let mut stdin = child.stdin.take().expect("stdin");
    writeln!(stdin, r#"{{"id": 1, "cmd": "whoami"}}"#).unwrap();
    drop(stdin);
    let output = child.wait_with_output().expect("it exits");
    assert_eq!(output.status.code(), Some(0));
    let lines: Vec<serde_json::Value> = String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).expect("a JSON line"))
        .collect();
    assert_eq!(lines[0]["event"], "connected");
    assert_eq!(lines[0]["user_id"], "ana");
    assert_eq!(lines[1]["id"], 1);
    assert_eq!(lines[1]["ok"]["user_id"], "ana");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_dev_server_logs_its_browser_certificate_hashes_at_start() {
    let dir = std::env::temp_dir().join(format!("partyline-cli-web-{}", std::process::id()));
    let mut child = Command::new(BIN)
        .args(["serve", "--listen", "127.0.0.1:0", "--cert-dir"])
        .arg(&dir)
        .env("NO_COLOR", "1")
        .stderr(Stdio::piped())
        .spawn()
        .expect("partyline starts");
    let stderr = BufReader::new(child.stderr.take().unwrap());
    let line = stderr
        .lines()
        .map_while(Result::ok)
        .find(|line| line.contains("browser dev certificate"))
        .expect("the hashes are logged");
    let hash = |name: &str| {
        line.split(&format!(" {name}="))
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .unwrap_or_default()
            .to_string()
    };
    for name in ["sha256", "next"] {
        let value = hash(name);
        assert!(
            value.len() == 64 && value.bytes().all(|b| b.is_ascii_hexdigit()),
            "{name} is a SHA-256 in hex: {line}"
        );
    }
    let _ = child.kill();
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(&dir);
}
