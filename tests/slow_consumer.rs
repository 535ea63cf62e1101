//! A member that stops reading its control stream fills its bounded outbox
//! and is cut off as a slow consumer (its grace window applies, as for any
//! loss), while the party and everyone else go on undisturbed.
mod support;

use partyline_client::{Client, Event};
use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_that_stops_reading_is_cut_and_the_others_lose_nothing() {
    let server = start_with(|c| c.outbox_capacity = 16).await;
    let (bob, mut bob_events) = server.client("bob").await;
    let (cyd, mut cyd_events) = server.client("cyd").await;
    // Ana's application never polls: her SDK buffers one event, then stops
    // reading the stream, and flow control backs up to the server.
    let mut slow = server.config("ana");
    slow.event_capacity = 1;
    slow.auto_reconnect = false;
    let (ana, _never_polled) = Client::connect(slow).await.unwrap();

    let party = bob
        .create_party(settings(true, 4, ""))
        .await
        .unwrap()
        .party_id;
    ana.join_party(party).await.unwrap();
    cyd.join_party(party).await.unwrap();
    for _ in 0..2 {
        next_event(&mut bob_events).await;
    }

    const MESSAGES: u32 = 300;
    let sender = tokio::spawn(async move {
        for i in 0..MESSAGES {
            let mut payload = vec![0u8; 16 * 1024];
            payload[..4].copy_from_slice(&i.to_le_bytes());
            bob.send_data_reliable(party, 1, &payload).await.unwrap();
        }
        bob
    });

    let mut received = 0u32;
    let mut ana_cut = false;
    while received < MESSAGES || !ana_cut {
        match next(&mut cyd_events).await {
            Event::Data(data) => {
                let mut index = [0u8; 4];
                index.copy_from_slice(&data.data[..4]);
                assert_eq!(
                    u32::from_le_bytes(index),
                    received,
                    "in order, none missing"
                );
                received += 1;
            }
            Event::MemberConnectionChanged {
                member,
                connected: false,
                ..
            } => {
                assert_eq!(member.user_id, "ana");
                ana_cut = true;
            }
            event @ (Event::Reconnecting { .. }
            | Event::Resumed
            | Event::SessionLost { .. }
            | Event::Disconnected { .. }
            | Event::ProtocolError { .. }) => panic!("unexpected {event:?}"),
            _ => {}
        }
    }
    let bob = sender.await.unwrap();
    // The party is intact for everyone else, Ana's seat held for her grace window.
    let snapshot = bob.get_party(party).await.unwrap();
    assert_eq!(snapshot.members.len(), 3);
    let away: Vec<_> = snapshot
        .members
        .iter()
        .filter(|m| !m.connected)
        .map(|m| m.presence.session_id)
        .collect();
    assert_eq!(away, vec![ana.session_id()]);
}
