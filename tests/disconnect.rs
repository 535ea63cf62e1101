//! A session the server ends on purpose (the admin API's DELETE, the
//! backend's `disconnect`) is gone at once: its party hears `MemberLeft`,
//! never a lost connection first, no grace window starts, and the log
//! says the server disconnected it, never "seats held".
//!
//! The runtime has two workers, so the API call and the session's own
//! connection task run on different threads, as in `partyline serve`:
//! the race between them is what this file is about.
mod support;

use partyline::party::PartySettings;
use partyline::protocol::{InvitePolicy, KeyValues};
use partyline_client::{Event, LeaveReason};
use std::io::Write;
use std::sync::{Arc, Mutex};
use support::*;

/// Everything the server logs, as text (one test per process installs it).
#[derive(Clone, Default)]
struct LogLines(Arc<Mutex<Vec<u8>>>);

impl Write for LogLines {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl LogLines {
    fn text(&self) -> String {
        let bytes = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        String::from_utf8_lossy(&bytes).into_owned()
    }
}

const ROUNDS: usize = 100;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_the_server_disconnects_leaves_at_once_and_is_logged_as_such() {
    let logs = LogLines::default();
    let sink = logs.clone();
    tracing_subscriber::fmt()
        .with_env_filter("partyline=info")
        .with_ansi(false)
        .with_writer(move || sink.clone())
        .init();

    let server = start().await;
    let api = server.handle.api();
    let (bob, mut bob_events) = server.client("bob").await;
    let settings = PartySettings {
        open: true,
        max_size: 4,
        label: String::new(),
        invite_policy: InvitePolicy::default(),
        leader_policy: Default::default(),
    };
    let party = api
        .create_party(&[bob.session_id()], settings, KeyValues::new())
        .await
        .expect("party formed");
    assert!(matches!(
        next(&mut bob_events).await,
        Event::PartyJoined { .. }
    ));

    for round in 0..ROUNDS {
        let user = format!("ana{round}");
        let (ana, _ana_events) = server.client(&user).await;
        ana.join_party(party.party_id).await.expect("ana joins");
        assert!(matches!(
            next(&mut bob_events).await,
            Event::MemberJoined { .. }
        ));

        api.disconnect(ana.session_id(), "maintenance")
            .await
            .expect("ana's session is live");
        match next(&mut bob_events).await {
            Event::MemberLeft { member, reason, .. } => {
                assert_eq!(member.user_id, user);
                assert_eq!(reason, LeaveReason::SessionEnded);
            }
            other => panic!("round {round}: expected {user} gone at once, got {other:?}"),
        }
        // Its connection task has finished with it too.
        while server.handle.session_count() > 1 {
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
    }
    // Let the last connection task log whatever it logs.
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let text = logs.text();
    assert!(
        !text.contains("seats held") && !text.contains("grace"),
        "a disconnected session logged a grace window:\n{text}"
    );
    assert_eq!(
        text.matches("session disconnected by the server").count(),
        ROUNDS,
        "each disconnect logged once as the server's:\n{text}"
    );
}
