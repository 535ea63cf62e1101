//! Party data: datagrams by default, reliable on request.
mod support;

use partyline_client::{ErrorCode, Event};
use support::*;

#[tokio::test]
async fn data_reaches_every_member_but_the_sender_by_datagram_and_reliably() {
    let server = start().await;
    let (ana, mut ana_events) = server.client("ana").await;
    let (bob, mut bob_events) = server.client("bob").await;
    let (cyd, mut cyd_events) = server.client("cyd").await;
    let party = ana
        .create_party(settings(true, 4, ""))
        .await
        .unwrap()
        .party_id;
    bob.join_party(party).await.unwrap();
    cyd.join_party(party).await.unwrap();
    for _ in 0..2 {
        next_event(&mut ana_events).await;
    }
    next_event(&mut bob_events).await;

    ana.send_data(party, 7, b"pos:1,2").unwrap();
    for events in [&mut bob_events, &mut cyd_events] {
        let data = next_data(events).await;
        assert_eq!(data.party_id, party);
        assert_eq!(data.sender.session_id, ana.session_id());
        assert_eq!(data.op_code, 7);
        assert_eq!(&data.data[..], b"pos:1,2");
        assert!(!data.reliable);
    }

    ana.send_data_reliable(party, -3, b"chat: gg")
        .await
        .unwrap();
    for events in [&mut bob_events, &mut cyd_events] {
        let data = next_data(events).await;
        assert_eq!(
            (data.op_code, &data.data[..], data.reliable),
            (-3, &b"chat: gg"[..], true)
        );
        assert_eq!(data.sender.session_id, ana.session_id());
    }
    // Reliable messages of one sender arrive in the order sent.
    for i in 0..50u8 {
        bob.send_data_reliable(party, 1, &[i]).await.unwrap();
    }
    for events in [&mut ana_events, &mut cyd_events] {
        for i in 0..50u8 {
            assert_eq!(&next_data(events).await.data[..], &[i]);
        }
    }
    // The others have received everything; a round trip later, the sender
    // still has nothing of its own.
    ana.get_party(party).await.unwrap();
    assert_no_pending(&mut ana_events);
    bob.get_party(party).await.unwrap();
    assert_no_pending(&mut bob_events);
}

#[tokio::test]
async fn non_members_cannot_send_and_oversize_data_is_refused_not_cut() {
    let server = start().await;
    let (ana, mut ana_events) = server.client("ana").await;
    let (eve, mut eve_events) = server.client("eve").await;
    let party = ana
        .create_party(settings(true, 4, ""))
        .await
        .unwrap()
        .party_id;

    eve.send_data(party, 1, b"let me in").unwrap();
    match next_event(&mut eve_events).await {
        Event::DataRefused {
            party_id,
            op_code,
            error,
        } => {
            assert_eq!(
                (party_id, op_code, error.code),
                (party, 1, ErrorCode::NotMember)
            );
        }
        other => panic!("unexpected {other:?}"),
    }

    let limit = ana.welcome().limits.max_datagram_data as usize;
    let error = ana.send_data(party, 1, &vec![0; limit + 1]).unwrap_err();
    assert_eq!(error.code(), Some(ErrorCode::PayloadTooLarge));
    ana.send_data(party, 1, &vec![0; limit]).unwrap();

    let reliable_limit = ana.welcome().limits.max_reliable_data as usize;
    let error = ana
        .send_data_reliable(party, 1, &vec![0; reliable_limit + 1])
        .await
        .unwrap_err();
    assert_eq!(error.code(), Some(ErrorCode::PayloadTooLarge));

    // The big-but-legal reliable message arrives whole.
    let (bob, mut bob_events) = server.client("bob").await;
    bob.join_party(party).await.unwrap();
    next_event(&mut ana_events).await;
    ana.send_data_reliable(party, 2, &vec![9; reliable_limit])
        .await
        .unwrap();
    let data = next_data(&mut bob_events).await;
    assert_eq!(data.data.len(), reliable_limit);
}
