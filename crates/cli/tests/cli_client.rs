//! The terminal client (`partyline-cli`, the same as `partyline client`)
//! as a child process against a real server over QUIC on 127.0.0.1: two
//! `--json` clients play a whole party story, bad arguments and an
//! unreachable server give their exit codes, and (on Linux) the interactive
//! prompt is driven through a pseudo-terminal.
mod support;

use base64::Engine as _;
use rustls::pki_types::CertificateDer;
use serde_json::{json, Value};
use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_partyline-cli");

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "partyline-cli-client-{name}-{}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The server's certificate as the PEM file `--cert` takes.
fn write_cert(dir: &Path, certs: &[CertificateDer<'static>]) -> PathBuf {
    let mut pem = String::new();
    for cert in certs {
        let encoded = base64::engine::general_purpose::STANDARD.encode(cert.as_ref());
        pem.push_str("-----BEGIN CERTIFICATE-----\n");
        for chunk in encoded.as_bytes().chunks(64) {
            pem.push_str(std::str::from_utf8(chunk).unwrap());
            pem.push('\n');
        }
        pem.push_str("-----END CERTIFICATE-----\n");
    }
    let path = dir.join("cert.pem");
    std::fs::write(&path, pem).unwrap();
    path
}

/// Waits for a child to exit; a guard against hangs, not a speed check.
fn wait_exit(child: &mut Child, limit: Duration) -> ExitStatus {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the client did not exit within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A `partyline client --json` child: commands in, replies and events out.
struct JsonClient {
    user: &'static str,
    child: Child,
    stdin: Option<ChildStdin>,
    lines: mpsc::Receiver<Value>,
    /// Lines read while waiting for another one, oldest first.
    unread: VecDeque<Value>,
    next_id: u64,
    /// Every line of stdout as written, before parsing.
    written: Arc<Mutex<Vec<String>>>,
}

impl JsonClient {
    fn start(addr: SocketAddr, cert: &Path, user: &'static str) -> Self {
        let mut child = Command::new(BIN)
            .args(["--json", "--server", &addr.to_string(), "--cert"])
            .arg(cert)
            .args(["--user", user, "--name", &format!("{user}-name")])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("partyline client starts");
        let stdout = child.stdout.take().unwrap();
        let stderr = child.stderr.take().unwrap();
        let (tx, lines) = mpsc::channel();
        let written = Arc::new(Mutex::new(Vec::new()));
        let log = written.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                eprintln!("{user} <- {line:?}");
                log.lock().unwrap().push(line.clone());
                // A line that is not JSON fails the test where it is awaited.
                let value = serde_json::from_str(&line)
                    .unwrap_or_else(|_| Value::String(format!("not JSON: {line}")));
                if tx.send(value).is_err() {
                    return;
                }
            }
        });
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                eprintln!("{user} stderr: {line}");
            }
        });
        JsonClient {
            user,
            stdin: child.stdin.take(),
            child,
            lines,
            unread: VecDeque::new(),
            next_id: 1,
            written,
        }
    }

    fn send_line(&mut self, line: &str) {
        eprintln!("{} -> {line}", self.user);
        let stdin = self.stdin.as_mut().expect("stdin open");
        writeln!(stdin, "{line}").unwrap();
        stdin.flush().unwrap();
    }

    /// Sends a command with a fresh id and returns the line answering it.
    fn call(&mut self, mut command: Value) -> Value {
        let id = self.next_id;
        self.next_id += 1;
        command["id"] = json!(id);
        self.send_line(&command.to_string());
        self.wait_for(|line| line["id"] == json!(id))
    }

    fn ok(&mut self, command: Value) -> Value {
        let answer = self.call(command.clone());
        assert!(
            answer.get("ok").is_some(),
            "{}: {command} answered {answer}",
            self.user
        );
        answer["ok"].clone()
    }

    fn error(&mut self, command: Value) -> Value {
        let answer = self.call(command.clone());
        assert!(
            answer.get("error").is_some(),
            "{}: {command} answered {answer}",
            self.user
        );
        answer["error"].clone()
    }

    fn wait_for(&mut self, wanted: impl Fn(&Value) -> bool) -> Value {
        if let Some(index) = self.unread.iter().position(&wanted) {
            return self.unread.remove(index).unwrap();
        }
        let deadline = Instant::now() + support::WAIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) if wanted(&line) => return line,
                Ok(line) => self.unread.push_back(line),
                Err(_) => panic!(
                    "{}: no such line within the limit; unread: {:?}",
                    self.user, self.unread
                ),
            }
        }
    }

    fn event(&mut self, name: &str, wanted: impl Fn(&Value) -> bool) -> Value {
        self.wait_for(|line| line["event"] == name && wanted(line))
    }

    /// Closes stdin (EOF) and waits for the exit.
    fn end(mut self) -> ExitStatus {
        drop(self.stdin.take());
        wait_exit(&mut self.child, support::WAIT)
    }
}

impl Drop for JsonClient {
    fn drop(&mut self) {
        // After a failed assertion: no client left running.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn id_of(party: &Value) -> String {
    party["party_id"].as_str().expect("a party id").to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_json_clients_play_a_whole_party_story() {
    let server = support::start().await;
    let dir = temp_dir("story");
    let cert = write_cert(&dir, &server.certs);
    let mut ana = JsonClient::start(server.addr, &cert, "ana");
    let mut bob = JsonClient::start(server.addr, &cert, "bob");
    let hello = ana.event("connected", |_| true);
    assert_eq!(hello["user_id"], "ana");
    assert_eq!(hello["username"], "ana-name");
    bob.event("connected", |_| true);

    // Ana creates; Bob joins by id; Ana sees him arrive.
    let created =
        ana.ok(json!({"cmd": "create_party", "open": true, "max_size": 4, "label": "story"}));
    let party = id_of(&created["party"]);
    assert_eq!(created["party"]["is_leader"], true);
    assert_eq!(created["party"]["label"], "story");
    assert_eq!(created["party"]["leader"]["user_id"], "ana");
    let joined = bob.ok(json!({"cmd": "join_party", "party_id": party}));
    assert_eq!(joined["outcome"], "joined");
    assert_eq!(joined["party"]["members"].as_array().unwrap().len(), 2);
    assert_eq!(joined["party"]["is_leader"], false);
    let arrived = ana.event("member_joined", |e| e["party_id"] == party);
    assert_eq!(arrived["member"]["user_id"], "bob");
    assert_eq!(arrived["member"]["username"], "bob-name");

    // Data both ways: text as a datagram, bytes reliably.
    ana.ok(json!({"cmd": "send_data", "party_id": party, "op_code": 7, "text": "hello bob"}));
    let data = bob.event("data", |_| true);
    assert_eq!(data["text"], "hello bob");
    assert_eq!(data["op_code"], 7);
    assert_eq!(data["reliable"], false);
    assert_eq!(data["sender"]["user_id"], "ana");
    bob.ok(json!({"cmd": "send_data_reliable", "party_id": party, "op_code": 8, "base64": "AJ//"}));
    let data = ana.event("data", |_| true);
    assert_eq!(data["base64"], "AJ//");
    assert!(data.get("text").is_none(), "not UTF-8, so no text: {data}");
    assert_eq!(data["reliable"], true);
    assert_eq!(data["sender"]["user_id"], "bob");

    // A join code: Bob leaves and comes back with it.
    let code = ana.ok(json!({"cmd": "create_join_code", "party_id": party}))["code"]
        .as_str()
        .unwrap()
        .to_string();
    bob.event("join_code_changed", |e| e["code"] == code.as_str());
    bob.ok(json!({"cmd": "leave_party", "party_id": party}));
    let left = ana.event("member_left", |e| e["member"]["user_id"] == "bob");
    assert_eq!(left["reason"], "left");
    let rejoined = bob.ok(json!({"cmd": "join_by_code", "code": code}));
    assert_eq!(rejoined["outcome"], "joined");
    assert_eq!(id_of(&rejoined["party"]), party);
    ana.event("member_joined", |e| e["member"]["user_id"] == "bob");

    // An invite seats Bob even in a closed party.
    let closed = id_of(&ana.ok(json!({"cmd": "create_party", "open": false}))["party"]);
    ana.ok(json!({"cmd": "invite", "party_id": closed, "user_id": "bob"}));
    let invited = bob.event("invited", |e| e["party_id"] == closed);
    assert_eq!(invited["inviter"]["user_id"], "ana");
    assert_eq!(invited["open"], false);
    let joined = bob.ok(json!({"cmd": "join_party", "party_id": closed}));
    assert_eq!(joined["outcome"], "joined");

    // Refusals are typed.
    let missing =
        bob.error(json!({"cmd": "join_party", "party_id": "00000000-0000-0000-0000-000000000001"}));
    assert_eq!(missing["code"], "PartyNotFound");
    assert_eq!(missing["code_number"], 2);
    assert_eq!(
        bob.error(json!({"cmd": "close_party", "party_id": party}))["code"],
        "NotLeader"
    );

    // Bad input lines are answered, and the session goes on.
    bob.send_line("this is not json");
    let answer = bob.wait_for(|line| line.get("error").is_some() && line["id"].is_null());
    assert_eq!(answer["error"]["code"], "BadInput");
    assert_eq!(bob.error(json!({"cmd": "fly"}))["code"], "BadInput");
    let wrong = bob.error(json!({"cmd": "join_party", "party_id": 5}));
    assert_eq!(wrong["code"], "BadInput");
    assert!(
        wrong["message"].as_str().unwrap().contains("party_id"),
        "{wrong}"
    );
    assert_eq!(
        bob.error(json!({"cmd": "kick", "party_id": party}))["code"],
        "BadInput"
    );
    let me = bob.ok(json!({"cmd": "whoami"}));
    assert_eq!(me["user_id"], "bob");
    assert!(me["limits"]["max_datagram_data"].as_u64().unwrap() > 0);
    assert_eq!(
        bob.ok(json!({"cmd": "parties"}))["parties"]
            .as_array()
            .unwrap()
            .len(),
        2
    );

    // Bob leaves the first party, then ends his input: exit 0, and the
    // session closed at once (his seat in the closed party goes now, not
    // after the server's grace window).
    bob.ok(json!({"cmd": "leave_party", "party_id": party}));
    ana.event("member_left", |e| {
        e["party_id"] == party && e["member"]["user_id"] == "bob"
    });
    assert_eq!(bob.end().code(), Some(0));
    let gone = ana.event("member_left", |e| e["party_id"] == closed);
    assert_eq!(gone["reason"], "session_ended");

    // `quit` ends a session too.
    assert_eq!(ana.ok(json!({"cmd": "quit"})), json!({}));
    assert_eq!(ana.end().code(), Some(0));
    let _ = std::fs::remove_dir_all(&dir);
}

/// A ready check in --json mode: started with a message and seconds,
/// answered without naming the check (the client knows the running one),
/// changed, and ended for everyone; the party shows it while it runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_clients_run_a_ready_check() {
    let server = support::start().await;
    let dir = temp_dir("ready");
    let cert = write_cert(&dir, &server.certs);
    let mut ana = JsonClient::start(server.addr, &cert, "ana");
    let mut bob = JsonClient::start(server.addr, &cert, "bob");
    ana.event("connected", |_| true);
    bob.event("connected", |_| true);
    let party = id_of(&ana.ok(json!({"cmd": "create_party", "open": true}))["party"]);
    bob.ok(json!({"cmd": "join_party", "party_id": party}));
    assert_eq!(
        bob.error(json!({"cmd": "start_ready_check", "party_id": party}))["code"],
        "NotLeader"
    );
    assert_eq!(
        ana.error(json!({"cmd": "start_ready_check", "party_id": party, "seconds": 1}))["code"],
        "InvalidArgument"
    );
    ana.ok(
        json!({"cmd": "start_ready_check", "party_id": party, "seconds": 20, "message": "pull?"}),
    );
    let started = bob.event("ready_check_started", |e| e["party_id"] == party);
    assert_eq!(started["check"]["message"], "pull?");
    assert_eq!(started["check"]["timeout_ms"], 20_000);
    assert_eq!(started["check"]["ready"][0]["user_id"], "ana");
    assert_eq!(started["check"]["no_answer"][0]["user_id"], "bob");
    let shown = bob.ok(json!({"cmd": "get_party", "party_id": party}));
    assert_eq!(
        shown["party"]["ready_check"]["check_id"],
        started["check"]["check_id"]
    );

    bob.ok(json!({"cmd": "answer_ready_check", "party_id": party, "ready": false}));
    let answered = ana.event("ready_check_answered", |_| true);
    assert_eq!(
        (
            answered["member"]["user_id"].clone(),
            answered["ready"].clone()
        ),
        (json!("bob"), json!(false))
    );
    bob.ok(json!({"cmd": "answer_ready_check", "party_id": party}));
    let ended = ana.event("ready_check_ended", |_| true);
    assert_eq!(ended["outcome"], "all_ready");
    assert_eq!(ended["ready"].as_array().unwrap().len(), 2);
    bob.event("ready_check_ended", |e| e["outcome"] == "all_ready");
    assert_eq!(
        bob.error(json!({"cmd": "answer_ready_check", "party_id": party}))["code"],
        "NoReadyCheck"
    );
    assert_eq!(
        ana.error(json!({"cmd": "cancel_ready_check", "party_id": party}))["code"],
        "NoReadyCheck"
    );
    assert_eq!(bob.end().code(), Some(0));
    assert_eq!(ana.end().code(), Some(0));
    let _ = std::fs::remove_dir_all(&dir);
}

/// Mutes and blocks through `partyline client --json`: a mute of a voice
/// range shows in the party, holds back that data alone, and is lifted; a
/// block list is set, listed and refused past its checks.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_clients_mute_and_block() {
    let server = support::start().await;
    let dir = temp_dir("quiet");
    let cert = write_cert(&dir, &server.certs);
    let mut ana = JsonClient::start(server.addr, &cert, "ana");
    let mut bob = JsonClient::start(server.addr, &cert, "bob");
    ana.event("connected", |_| true);
    bob.event("connected", |_| true);
    let party = id_of(&ana.ok(json!({"cmd": "create_party", "open": true}))["party"]);
    bob.ok(json!({"cmd": "join_party", "party_id": party}));
    ana.event("member_joined", |_| true);

    ana.ok(json!({"cmd": "mute", "party_id": party, "user_id": "bob", "from": 100, "to": 199}));
    let shown = ana.ok(json!({"cmd": "get_party", "party_id": party}));
    assert_eq!(shown["party"]["muted"][0]["user_id"], "bob");
    assert_eq!(
        shown["party"]["muted"][0]["op_codes"],
        json!({"min": 100, "max": 199})
    );
    let say = |op_code: i64| json!({"cmd": "send_data_reliable", "party_id": party, "op_code": op_code, "text": "hi"});
    bob.ok(say(150));
    bob.ok(say(2));
    assert_eq!(ana.event("data", |_| true)["op_code"], 2, "not the voice");
    ana.ok(json!({"cmd": "unmute", "party_id": party, "user_id": "bob"}));
    bob.ok(say(151));
    assert_eq!(ana.event("data", |_| true)["op_code"], 151);
    assert_eq!(
        ana.error(json!({"cmd": "mute", "party_id": party, "user_id": "ana"}))["code"],
        "InvalidArgument"
    );

    let listed = ana.ok(json!({"cmd": "block", "user_ids": ["zed", "bob"]}));
    assert_eq!(listed["blocked"], json!(["bob", "zed"]));
    let listed = ana.ok(json!({"cmd": "unblock", "user_ids": ["zed"]}));
    assert_eq!(listed["blocked"], json!(["bob"]));
    assert_eq!(
        ana.ok(json!({"cmd": "list_blocks"}))["blocked"],
        json!(["bob"])
    );
    assert_eq!(
        ana.error(json!({"cmd": "block", "user_ids": ["ana"]}))["code"],
        "InvalidArgument"
    );
    assert_eq!(bob.end().code(), Some(0));
    assert_eq!(ana.end().code(), Some(0));
    let _ = std::fs::remove_dir_all(&dir);
}

/// The leader policy in --json mode: chosen at create, changed by update,
/// shown in the party with each member's connection quality.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_clients_choose_and_show_the_leader_policy_and_connection_quality() {
    let server = support::start().await;
    let dir = temp_dir("quality");
    let cert = write_cert(&dir, &server.certs);
    let mut ana = JsonClient::start(server.addr, &cert, "ana");
    let mut bob = JsonClient::start(server.addr, &cert, "bob");
    ana.event("connected", |_| true);
    bob.event("connected", |_| true);
    assert_eq!(
        ana.error(json!({"cmd": "create_party", "leader_policy": "fastest"}))["message"]
            .as_str()
            .map(|m| m.contains("tenure or connection_quality")),
        Some(true)
    );
    let created = ana.ok(json!({"cmd": "create_party", "leader_policy": "connection_quality"}));
    assert_eq!(created["party"]["leader_policy"], "connection_quality");
    // A seat's quality is not measured yet when it is taken.
    assert_eq!(created["party"]["members"][0]["quality"], "unknown");
    let party = id_of(&created["party"]);
    bob.ok(json!({"cmd": "join_party", "party_id": party}));
    let updated =
        ana.ok(json!({"cmd": "update_party", "party_id": party, "leader_policy": "tenure"}));
    assert_eq!(updated["party"]["leader_policy"], "tenure");
    let told = bob.event("party_updated", |e| e["party"]["party_id"] == party);
    assert_eq!(told["party"]["leader_policy"], "tenure");
    assert_eq!(bob.end().code(), Some(0));
    assert_eq!(ana.end().code(), Some(0));
    let _ = std::fs::remove_dir_all(&dir);
}

/// --json output is JSON: C0 controls escaped by any JSON writer, and the
/// rest a terminal would act on (DEL, C1, bidi controls, line separators)
/// escaped too, so that the lines are safe to watch; parsed, every string
/// is exactly what the other player sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_lines_carry_hostile_strings_intact_and_escaped() {
    let hostile = "gg\n[3cc69d5d] ana op 0: forged\r\x1b]0;pwned\x07\x7f\u{85}\u{9b}2J\u{202e}\u{2066}\u{200f}\u{2028}\u{2029}";
    let server = support::start().await;
    let dir = temp_dir("json-escaped");
    let cert = write_cert(&dir, &server.certs);
    let (mallory, _events) = server.client("mallory").await;
    let party = mallory
        .create_party(partyline_client::PartySettings {
            label: hostile.into(),
            state: [("mode".to_string(), hostile.to_string())].into(),
            ..Default::default()
        })
        .await
        .unwrap();
    let mut ana = JsonClient::start(server.addr, &cert, "ana");
    let joined = ana.ok(json!({"cmd": "join_party", "party_id": party.party_id.to_string()}));
    assert_eq!(joined["party"]["label"], hostile);
    assert_eq!(joined["party"]["state"]["mode"], hostile);
    mallory
        .send_data_reliable(party.party_id, 0, hostile.as_bytes())
        .await
        .unwrap();
    assert_eq!(ana.event("data", |_| true)["text"], hostile);
    for line in ana.written.lock().unwrap().iter() {
        let raw = line
            .chars()
            .find(|c| c.is_control() || matches!(c, '\u{200e}' | '\u{200f}' | '\u{2028}'..='\u{202e}' | '\u{2066}'..='\u{2069}'));
        assert!(raw.is_none(), "{raw:?} raw in {line:?}");
    }
    assert_eq!(ana.end().code(), Some(0));
    let _ = std::fs::remove_dir_all(&dir);
}

/// Runs the binary with `args`, stdin closed: (exit code, stdout, stderr).
fn run(args: &[&str], limit: Duration) -> (Option<i32>, String, String) {
    let mut child = Command::new(BIN)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The little it prints fits in the pipes: read once it has exited.
    let status = wait_exit(&mut child, limit);
    let output = child.wait_with_output().unwrap();
    let text = |bytes: Vec<u8>| String::from_utf8(bytes).unwrap();
    (status.code(), text(output.stdout), text(output.stderr))
}

#[test]
fn bad_arguments_exit_2_and_say_which() {
    let cases: &[(&[&str], &str)] = &[
        (&["--bogus"], "--bogus"),
        (&["--server", "nowhere"], "HOST:PORT"),
        (&["--user", "ana", "--token", "t"], "--token"),
        (&["--token", "t", "--token-file", "f"], "--token-file"),
        (&["--user", "a\u{1}b"], "control characters"),
    ];
    for (args, mentioned) in cases {
        let (code, stdout, stderr) = run(args, support::WAIT);
        assert_eq!(code, Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(mentioned), "{args:?}: {stderr}");
        assert!(stdout.is_empty(), "{args:?}: {stdout}");
    }
}

#[test]
fn a_client_that_cannot_connect_exits_1_and_says_why() {
    // No certificate to trust.
    let (code, stdout, stderr) = run(
        &["--json", "--cert", "/nonexistent/cert.pem"],
        support::WAIT,
    );
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("partyline serve"), "{stderr}");
    assert!(stdout.is_empty(), "{stdout}");

    // A port where nothing answers (bound, never read): the SDK gives up
    // after its idle timeout.
    let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = silent.local_addr().unwrap().to_string();
    let dir = temp_dir("unreachable");
    let (_, cert_pem, _) = partyline::certs::generate_dev_identity().unwrap();
    let cert = dir.join("cert.pem");
    std::fs::write(&cert, cert_pem).unwrap();
    let cert = cert.to_str().unwrap();
    let (code, stdout, stderr) = run(
        &["--json", "--server", &addr, "--cert", cert],
        Duration::from_secs(60),
    );
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("cannot connect"), "{stderr}");
    assert!(stderr.contains("no answer"), "{stderr}");
    assert!(stdout.is_empty(), "{stdout}");
    // JSON lines stay for programs; at the prompt, a person is told what
    // the wait is for while it lasts.
    assert!(!stderr.contains("connecting to"), "{stderr}");
    let (code, _, stderr) = run(
        &["--server", &addr, "--cert", cert],
        Duration::from_secs(60),
    );
    assert_eq!(code, Some(1), "{stderr}");
    let connecting = stderr.find(&format!("connecting to {addr}..."));
    let failed = stderr.find("cannot connect");
    assert!(
        matches!((connecting, failed), (Some(a), Some(b)) if a < b),
        "{stderr}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// A pseudo-terminal with the client on its other side, as a person's
/// terminal would have it.
#[cfg(target_os = "linux")]
mod terminal {
    use super::BIN;
    use rustix::fs::{Mode, OFlags};
    use rustix::pty::{grantpt, openpt, ptsname, unlockpt, OpenptFlags};
    use std::fs::File;
    use std::io::{Read, Write};
    use std::process::{Child, Command, ExitStatus, Stdio};
    use std::sync::{Arc, Mutex};
    use std::time::{Duration, Instant};

    pub struct Terminal {
        master: File,
        output: Arc<Mutex<Vec<u8>>>,
        /// How much of the output `expect` has consumed.
        seen: usize,
        child: Child,
    }

    impl Terminal {
        pub fn spawn(args: &[&str], env: &[(&str, &std::ffi::OsStr)]) -> Terminal {
            let master = openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY).unwrap();
            grantpt(&master).unwrap();
            unlockpt(&master).unwrap();
            let path = ptsname(&master, Vec::new()).unwrap();
            // Wide enough that no line of the test wraps.
            let size = rustix::termios::Winsize {
                ws_row: 50,
                ws_col: 200,
                ws_xpixel: 0,
                ws_ypixel: 0,
            };
            rustix::termios::tcsetwinsize(&master, size).unwrap();
            let side = rustix::fs::open(
                path.as_c_str(),
                OFlags::RDWR | OFlags::NOCTTY | OFlags::CLOEXEC,
                Mode::empty(),
            )
            .unwrap();
            let mut command = Command::new(BIN);
            command
                .args(args)
                .env_remove("NO_COLOR")
                .env("TERM", "xterm")
                .stdin(Stdio::from(side.try_clone().unwrap()))
                .stdout(Stdio::from(side.try_clone().unwrap()))
                .stderr(Stdio::from(side));
            for (name, value) in env {
                command.env(name, value);
            }
            let child = command.spawn().unwrap();
            // Our copies of the terminal's side go, so the master reads
            // end when the client exits.
            drop(command);
            let master = File::from(master);
            let output = Arc::new(Mutex::new(Vec::new()));
            let mut reader = master.try_clone().unwrap();
            let sink = output.clone();
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                while let Ok(n @ 1..) = reader.read(&mut buf) {
                    sink.lock().unwrap().extend_from_slice(&buf[..n]);
                }
            });
            Terminal {
                master,
                output,
                seen: 0,
                child,
            }
        }

        pub fn type_keys(&mut self, keys: &str) {
            self.master.write_all(keys.as_bytes()).unwrap();
            self.master.flush().unwrap();
        }

        /// Waits until `needle` appears after what earlier calls consumed;
        /// returns the output up to and including it.
        pub fn expect(&mut self, needle: &str) -> String {
            let deadline = Instant::now() + super::support::WAIT;
            loop {
                {
                    let output = self.output.lock().unwrap();
                    let fresh = &output[self.seen..];
                    let found = fresh
                        .windows(needle.len())
                        .position(|window| window == needle.as_bytes());
                    if let Some(at) = found {
                        let end = at + needle.len();
                        let shown = String::from_utf8_lossy(&fresh[..end]).into_owned();
                        self.seen += end;
                        return shown;
                    }
                    if Instant::now() > deadline {
                        let shown = String::from_utf8_lossy(fresh);
                        panic!("{needle:?} never appeared; the terminal shows:\n{shown:?}");
                    }
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }

        /// Every byte the client wrote to the terminal so far.
        pub fn screen(&self) -> Vec<u8> {
            self.output.lock().unwrap().clone()
        }

        pub fn wait(&mut self) -> ExitStatus {
            super::wait_exit(&mut self.child, super::support::WAIT)
        }
    }

    impl Drop for Terminal {
        fn drop(&mut self) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The first party id (8-4-4-4-12 hex digits) after `marker` in `text`.
#[cfg(target_os = "linux")]
fn party_id_after(text: &str, marker: &str) -> String {
    let start = text.find(marker).expect("the marker") + marker.len();
    let id: String = text[start..].chars().take(36).collect();
    assert!(
        id.len() == 36 && id.chars().all(|c| c.is_ascii_hexdigit() || c == '-'),
        "{id:?} in {text:?}"
    );
    id
}

#[cfg(target_os = "linux")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_prompt_completes_shows_events_live_and_keeps_history() {
    use partyline_client::PartyId;

    let server = support::start().await;
    let dir = temp_dir("prompt");
    let cert = write_cert(&dir, &server.certs);
    let data_home = dir.join("data");
    let addr = server.addr.to_string();
    let mut term = terminal::Terminal::spawn(
        &[
            "--server",
            &addr,
            "--cert",
            cert.to_str().unwrap(),
            "--user",
            "ana",
        ],
        &[("XDG_DATA_HOME", data_home.as_os_str())],
    );
    term.expect("ana> ");

    term.type_keys("help\r");
    let help = term.expect("ana> ");
    assert!(help.contains("send_data_reliable PARTY"), "{help}");
    assert!(help.contains("submit_ticket min_count=N"), "{help}");

    // Tab completes a command name.
    term.type_keys("whoa\t");
    term.expect("whoami");
    term.type_keys("\r");
    let me = term.expect("ana> ");
    assert!(me.contains("you are ana, session"), "{me}");

    term.type_keys("create label=pty\r");
    let created = term.expect("ana> ");
    let party = party_id_after(&created, "party ");
    assert!(created.contains("label \"pty\""), "{created}");

    // Someone joins while the prompt waits: the event shows at once.
    let (bob, _bob_events) = server.client("bob").await;
    let party_id: PartyId = party.parse().unwrap();
    bob.join_party(party_id).await.unwrap();
    term.expect("bob-name (bob) joined");

    // Tab completes the one party id the session knows.
    term.type_keys("get_party \t");
    term.expect(&party);
    term.type_keys("\r");
    let shown = term.expect("ana> ");
    assert!(shown.contains("bob-name (bob)"), "{shown}");
    assert!(shown.contains("[leader, you]"), "{shown}");

    // Data arrives live too.
    bob.send_data_reliable(party_id, 3, b"hi ana")
        .await
        .unwrap();
    term.expect("bob-name (bob) (reliable) op 3: hi ana");

    // A refusal and a mistyped command are answered; the prompt goes on.
    term.type_keys("join 00000000-0000-0000-0000-000000000009\r");
    term.expect("PartyNotFound");
    term.type_keys("fly\r");
    term.expect("unknown command \"fly\"");
    term.expect("ana> ");
    term.type_keys("send . hello from the prompt\r");
    term.expect("ok");

    term.type_keys("quit\r");
    assert_eq!(term.wait().code(), Some(0));
    let history =
        std::fs::read_to_string(data_home.join("partyline").join("client_history")).unwrap();
    assert!(history.contains("create label=pty"), "{history}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// What a hostile player puts in every string others see: a forged line
/// (LF, then what looks like another player's message), CR, an OSC that
/// sets the terminal's title ending in BEL, a clear screen, CSI as the C1
/// control U+009B, NEL (U+0085), a bidi override and isolate, and a line
/// separator.
#[cfg(target_os = "linux")]
const HOSTILE: &str = "gg\n[3cc69d5d] ana op 0: forged\r\x1b]0;pwned\x07\x1b[2J\u{9b}31m\u{85}\u{202e}\u{2066}\u{2028}end";

/// HOSTILE as the terminal must show it: every control visible.
#[cfg(target_os = "linux")]
const HOSTILE_SHOWN: &str = r"gg\n[3cc69d5d] ana op 0: forged\r\x1b]0;pwned\x07\x1b[2J\u{9b}31m\u{85}\u{202e}\u{2066}\u{2028}end";

/// What the server lets into names and status texts (no control
/// characters): bidi controls and a line separator.
#[cfg(target_os = "linux")]
const HOSTILE_NAME: &str = "Mal\u{202e}\u{2067}lory\u{2029}";
#[cfg(target_os = "linux")]
const HOSTILE_NAME_SHOWN: &str = r"Mal\u{202e}\u{2067}lory\u{2029}";

#[cfg(target_os = "linux")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn strings_from_other_players_reach_the_terminal_escaped() {
    use partyline_client::{PartySettings, PartyUpdate};

    let server = support::start().await;
    let dir = temp_dir("escaped");
    let cert = write_cert(&dir, &server.certs);
    let (mallory, _mallory_events) = server.client_named("mallory", HOSTILE_NAME).await;
    let hostile = || HOSTILE.to_string();
    let party = mallory
        .create_party(PartySettings {
            label: hostile(),
            state: [("mode".to_string(), hostile())].into(),
            ..PartySettings::default()
        })
        .await
        .unwrap();
    let party_id = party.party_id;
    mallory
        .list_party(party_id, [("region".to_string(), hostile())].into())
        .await
        .unwrap();
    mallory.set_status(HOSTILE_NAME, true).await.unwrap();

    let addr = server.addr.to_string();
    let mut term = terminal::Terminal::spawn(
        &[
            "--server",
            &addr,
            "--cert",
            cert.to_str().unwrap(),
            "--user",
            "ana",
        ],
        &[("XDG_DATA_HOME", dir.join("data").as_os_str())],
    );
    term.expect("ana> ");
    let mallory_shown = format!("{HOSTILE_NAME_SHOWN} (mallory)");

    // A status (and a name) from a followed user.
    term.type_keys("follow mallory\r");
    term.expect(&format!("{mallory_shown} is online: {HOSTILE_NAME_SHOWN}"));
    term.expect("ana> ");

    // A listed party as a non-member sees it: label and properties.
    term.type_keys("search\r");
    term.expect(&format!("\"{HOSTILE_SHOWN}\" region={HOSTILE_SHOWN}"));
    term.expect("ana> ");

    // The party on joining: label, listing, state, the members' names.
    term.type_keys(&format!("join {party_id}\r"));
    term.expect(&format!("label \"{HOSTILE_SHOWN}\""));
    term.expect(&format!("listed: region={HOSTILE_SHOWN}"));
    term.expect(&format!("state: mode={HOSTILE_SHOWN}"));
    term.expect(&format!("- {mallory_shown} [leader]"));
    term.expect("ana> ");

    // Events: state, attributes (keys too), listing, status, label, data.
    mallory
        .set_party_state(party_id, [("mode".to_string(), hostile())].into(), &[])
        .await
        .unwrap();
    term.expect(&format!("party state: mode={HOSTILE_SHOWN}"));
    mallory
        .set_member_attributes(
            party_id,
            [("k\u{1b}[31m".to_string(), hostile())].into(),
            &[],
        )
        .await
        .unwrap();
    term.expect(&format!(
        "{mallory_shown}'s attributes: k\\x1b[31m={HOSTILE_SHOWN}"
    ));
    mallory
        .list_party(party_id, [("region".to_string(), hostile())].into())
        .await
        .unwrap();
    term.expect(&format!("listed: region={HOSTILE_SHOWN}"));
    mallory
        .set_status(&format!("{HOSTILE_NAME}!"), true)
        .await
        .unwrap();
    term.expect(&format!("{mallory_shown} status: {HOSTILE_NAME_SHOWN}!"));
    mallory
        .update_party(
            party_id,
            PartyUpdate {
                label: Some(format!("{HOSTILE}2")),
                ..PartyUpdate::default()
            },
        )
        .await
        .unwrap();
    term.expect(&format!("settings changed: party {party_id}"));
    term.expect(&format!("label \"{HOSTILE_SHOWN}2\""));
    mallory
        .send_data_reliable(party_id, 0, HOSTILE.as_bytes())
        .await
        .unwrap();
    term.expect(&format!("{mallory_shown} (reliable) op 0: {HOSTILE_SHOWN}"));

    term.type_keys("quit\r");
    assert_eq!(term.wait().code(), Some(0));

    // Nothing of the payloads reached the terminal raw. (The line editor
    // and the colours write ESC and CR of their own, so those are looked
    // for as the payloads have them.)
    let screen = term.screen();
    let text = String::from_utf8_lossy(&screen);
    for raw in [
        "gg\n",
        "gg\r\n",
        "forged\r",
        "\x1b]0;pwned",
        "pwned\x07",
        "\x1b[2J",
        "k\x1b[31m",
    ] {
        assert!(
            !text.contains(raw),
            "{raw:?} reached the terminal: {text:?}"
        );
    }
    assert!(
        !screen.contains(&0x07),
        "a BEL reached the terminal: {text:?}"
    );
    for c in [
        '\u{9b}', '\u{85}', '\u{202e}', '\u{2066}', '\u{2067}', '\u{2028}', '\u{2029}',
    ] {
        assert!(!text.contains(c), "{c:?} reached the terminal: {text:?}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
