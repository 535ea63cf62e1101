//! A node dies and a load balancer moves its clients' flows to a live node.
//! With one `--reset-key-file` for both, the live node answers the dead
//! node's packets with a stateless reset the client accepts, and the SDK
//! reconnects at once instead of waiting out its idle timeout (issue 24).
//! Both servers are real `partyline serve` processes; the node dies by
//! SIGKILL, so it sends nothing on its way out. Nodes of any `--workers`
//! recognise each other's connection ids: a worker's ids are plain hashed
//! ids that also name the worker.
mod support;

use partyline_client::{Client, ClientConfig, DisconnectReason, Event, PartySettings};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::process::{Child, Command};
use std::time::{Duration, Instant};
use support::relay::Relay;

#[path = "support/child.rs"]
mod child;
use child::{serve, BIN};

fn private_file(path: &Path, bytes: &[u8]) {
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .unwrap();
    file.write_all(bytes).unwrap();
}

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn a_live_node_resets_a_dead_nodes_clients_and_they_reconnect_at_once() {
    reset_after_death("single", &[], &[]).await;
}

#[tokio::test]
async fn a_live_node_of_two_workers_resets_a_dead_single_nodes_clients() {
    reset_after_death("to-workers", &[], &["--workers", "2"]).await;
}

#[tokio::test]
async fn a_live_single_node_resets_the_clients_of_a_dead_nodes_workers() {
    reset_after_death("from-workers", &["--workers", "3"], &[]).await;
}

/// A node started with `dying_flags` dies; its client's flow moves to a
/// node started with `live_flags`, which resets it.
async fn reset_after_death(name: &str, dying_flags: &[&str], live_flags: &[&str]) {
    let dir = std::env::temp_dir().join(format!("partyline-reset-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let key = dir.join("reset-key");
    private_file(&key, &[7u8; 32]);
    let key_flag = ["--reset-key-file", key.to_str().unwrap()];
    let (dying, dying_addr) = serve(&dir, &[&key_flag[..], dying_flags].concat());
    let mut dying = Killed(dying);
    let (live, live_addr) = serve(&dir, &[&key_flag[..], live_flags].concat());
    let _live = Killed(live);

    let relay = Relay::start(dying_addr).await;
    let certs = partyline_client::load_certificates(dir.join("cert.pem")).unwrap();
    let mut config = ClientConfig::dev(relay.addr, certs, "ana", "Ana");
    // Far beyond the test: only a reset can end the connection in time.
    config.idle_timeout = Duration::from_secs(60);
    config.keep_alive = Duration::from_secs(30);
    let (client, mut events) = Client::connect(config).await.unwrap();
    let client = std::sync::Arc::new(client);
    let party = client.create_party(PartySettings::default()).await.unwrap();

    // A party in play: 20 Hz of party data, as a game sends it.
    let sender = {
        let client = client.clone();
        tokio::spawn(async move {
            loop {
                let _ = client.send_data(party.party_id, 1, b"tick");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
    };

    let died = Instant::now();
    dying.0.kill().unwrap();
    let _ = dying.0.wait();
    // The load balancer's health check takes a second to move the flow.
    tokio::time::sleep(Duration::from_secs(1)).await;
    relay.move_to(live_addr).await;

    let reason = match tokio::time::timeout(Duration::from_secs(20), support::next(&mut events))
        .await
        .expect("the client notices the dead node")
    {
        Event::Reconnecting { reason } => reason,
        other => panic!("expected Reconnecting, got {other:?}"),
    };
    let noticed = died.elapsed();
    eprintln!(
        "node death to reconnect attempt: {} ms",
        noticed.as_millis()
    );
    match &reason {
        DisconnectReason::ConnectionLost(why) => assert!(
            why.contains("reset"),
            "ended by a stateless reset, not by its idle timeout: {why}"
        ),
        other => panic!("expected a lost connection, got {other:?}"),
    }
    // The live node does not know the session (no cluster here): the SDK
    // starts a new one there and says so.
    match support::next(&mut events).await {
        Event::SessionLost { lost_parties, .. } => {
            assert_eq!(lost_parties, vec![party.party_id])
        }
        other => panic!("expected SessionLost, got {other:?}"),
    }
    assert!(client.create_party(PartySettings::default()).await.is_ok());
    sender.abort();
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_short_or_unreadable_reset_key_is_refused_at_start() {
    let dir = std::env::temp_dir().join(format!("partyline-reset-short-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let key = dir.join("reset-key");
    private_file(&key, &[7u8; 31]);
    let output = Command::new(BIN)
        .args(["serve", "--listen", "127.0.0.1:0", "--cert-dir"])
        .arg(&dir)
        .args(["--reset-key-file", key.to_str().unwrap()])
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "a 31-byte key is refused");
    assert!(
        stderr.contains("31 bytes") && stderr.contains("head -c 32 /dev/urandom"),
        "says why and how to make one: {stderr}"
    );

    std::fs::set_permissions(&key, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
    let output = Command::new(BIN)
        .args(["serve", "--listen", "127.0.0.1:0", "--cert-dir"])
        .arg(&dir)
        .args(["--reset-key-file", key.to_str().unwrap()])
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    assert!(!output.status.success(), "a key others can read is refused");
    let _ = std::fs::remove_dir_all(&dir);
}
