//! Every close the server makes reaches the client with its code, even
//! while the client's replies fill the connection: an admin disconnect
//! (9) and a shutdown (2), each with a burst of commands in flight. (The
//! rate cut's code 8 after a burst: tests/rate_limits.rs.)
mod support;

use partyline::protocol::{CloseCode, Command, PartyId};
use partyline_client::{Client, DisconnectReason, Event, Events};
use std::sync::Arc;
use std::time::Duration;
use support::*;

/// A client with `burst` GetParty requests in flight (their replies
/// filling its connection).
async fn busy_client(server: &TestServer, user: &str, burst: usize) -> (Arc<Client>, Events) {
    let mut config = server.config(user);
    config.auto_reconnect = false;
    let (client, events) = Client::connect(config).await.unwrap();
    let client = Arc::new(client);
    for _ in 0..burst {
        let client = client.clone();
        let command = Command::GetParty {
            party_id: PartyId::random(),
        };
        tokio::spawn(async move { client.request(command).await });
    }
    (client, events)
}

/// Why the client was disconnected, heard within a second.
async fn heard_close(events: &mut Events) -> DisconnectReason {
    let reason = tokio::time::timeout(Duration::from_secs(1), async {
        loop {
            if let Some(Event::Disconnected { reason }) = events.next().await {
                return reason;
            }
        }
    })
    .await
    .expect("the client hears the close within 1 s");
    reason
}

#[tokio::test]
async fn an_admin_disconnect_reaches_a_busy_client_with_its_code() {
    // A command rate that lets the whole burst through.
    let server = start_with(|config| config.command_rate = 100_000.0).await;
    for round in 0..10 {
        let (client, mut events) = busy_client(&server, &format!("busy-{round}"), 2000).await;
        tokio::time::sleep(Duration::from_millis(20)).await;
        let session = client.session_id();
        server
            .handle
            .api()
            .disconnect(session, "bye")
            .await
            .unwrap();
        match heard_close(&mut events).await {
            DisconnectReason::ClosedByServer { code, .. } => {
                assert_eq!(code, CloseCode::Disconnected as u64, "round {round}")
            }
            other => panic!("round {round}: expected code 9, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn a_shutdown_reaches_a_busy_client_with_its_code() {
    for round in 0..5 {
        let server = start_with(|config| config.command_rate = 100_000.0).await;
        let (_client, mut events) = busy_client(&server, "busy", 2000).await;
        tokio::time::sleep(Duration::from_millis(20)).await;
        let stopping = tokio::spawn(server.handle.shutdown());
        let reason = heard_close(&mut events).await;
        assert_eq!(reason, DisconnectReason::ServerShutdown, "round {round}");
        stopping.await.unwrap();
    }
}
