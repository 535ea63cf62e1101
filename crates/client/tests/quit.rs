//! Quitting ends the session at once, however a Rust game quits: the others
//! see `MemberLeft` (not a lost connection) within 1 s, and a leader's quit
//! hands the lead over at once. Each quitter runs on a runtime of its own,
//! as a game's would, which the game may end right after quitting.
mod support;

use partyline_client::{
    shared_endpoint, Client, ClientConfig, Event, Events, LeaveReason, PartyId, PartySettings,
};
use std::time::{Duration, Instant};
use support::*;
use tokio::runtime::Runtime;

const ROUNDS: usize = 20;
/// What "at once" means to the players who stay.
const AT_ONCE: Duration = Duration::from_secs(1);

#[derive(Clone, Copy, Debug, PartialEq)]
enum Quit {
    /// Dropped inside the game's runtime, which goes on running.
    DropWhileRunning,
    /// Dropped on the game's own thread, outside the runtime, which the
    /// game then ends at once.
    DropThenStop,
    /// `close().await`, then the game ends its runtime at once; half the
    /// rounds on an endpoint shared with other sessions.
    CloseThenStop,
}

fn runtime(workers: usize) -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_all()
        .build()
        .expect("a runtime")
}

async fn connect(config: ClientConfig, shared: bool) -> (Client, Events) {
    let connected = if shared {
        let endpoint = shared_endpoint(&config, None).expect("an endpoint");
        Client::connect_on(&endpoint, config).await
    } else {
        Client::connect(config).await
    };
    connected.expect("the quitter connects")
}

/// A party of `stay` and the quitter, led by the quitter when `quitter_leads`.
async fn party_of_two(
    stay: &Client,
    stay_events: &mut Events,
    quitter: &Client,
    quitter_leads: bool,
) -> PartyId {
    let (leader, member) = if quitter_leads {
        (quitter, stay)
    } else {
        (stay, quitter)
    };
    let party = leader
        .create_party(PartySettings::default())
        .await
        .expect("party created")
        .party_id;
    member.join_party(party).await.expect("joined");
    if !quitter_leads {
        // Seen before the quit, so it cannot be mistaken for what follows.
        loop {
            if let Event::MemberJoined { party_id, .. } = next(stay_events).await {
                if party_id == party {
                    break;
                }
            }
        }
    }
    party
}

/// Waits (at most [`AT_ONCE`]) until `stay` has seen `user` leave `party`,
/// and, when `user` led it, the lead come to `stay`. A lost connection
/// instead (the session kept in its grace window) fails.
async fn expect_left_at_once(stay_events: &mut Events, party: PartyId, user: &str, led: bool) {
    let deadline = Instant::now() + AT_ONCE;
    let (mut left, mut lead_handed) = (false, !led);
    while !(left && lead_handed) {
        let remaining = deadline.saturating_duration_since(Instant::now());
        let event = tokio::time::timeout(remaining, stay_events.next())
            .await
            .unwrap_or_else(|_| {
                panic!(
                    "{user} quit, but within {AT_ONCE:?}: left {left}, lead handed {lead_handed}"
                )
            })
            .expect("events open");
        match event {
            Event::MemberLeft {
                party_id,
                member,
                reason,
            } if party_id == party && member.user_id == user => {
                assert_eq!(reason, LeaveReason::SessionEnded);
                left = true;
            }
            Event::LeaderChanged { party_id, leader } if party_id == party => {
                assert_eq!(leader.user_id, "stay", "the lead goes to who stays");
                lead_handed = true;
            }
            Event::MemberConnectionChanged { member, .. } if member.user_id == user => panic!(
                "{user} quit, but the server saw a lost connection (a ghost in the grace window)"
            ),
            _ => {}
        }
    }
}

fn quits_end_the_session_at_once(how: Quit) {
    let observers = runtime(2);
    let server = observers.block_on(start());
    let (stay, mut stay_events) = observers.block_on(server.client("stay"));
    for round in 0..ROUNDS {
        let user = format!("quitter-{round}");
        let own = runtime(1);
        let shared = how == Quit::CloseThenStop && round % 4 >= 2;
        let (quitter, quitter_events) = own.block_on(connect(server.config(&user), shared));
        let quitter_leads = round % 2 == 0;
        let party = observers.block_on(party_of_two(
            &stay,
            &mut stay_events,
            &quitter,
            quitter_leads,
        ));
        let still_running = match how {
            Quit::DropWhileRunning => {
                own.block_on(async move { drop((quitter, quitter_events)) });
                Some(own)
            }
            Quit::DropThenStop => {
                drop((quitter, quitter_events));
                drop(own);
                None
            }
            Quit::CloseThenStop => {
                own.block_on(quitter.close());
                drop(quitter_events);
                drop(own);
                None
            }
        };
        observers.block_on(expect_left_at_once(
            &mut stay_events,
            party,
            &user,
            quitter_leads,
        ));
        observers
            .block_on(stay.leave_party(party))
            .expect("stay leaves");
        drop(still_running);
    }
}

#[test]
fn dropping_the_client_in_a_running_runtime_ends_the_session_at_once() {
    quits_end_the_session_at_once(Quit::DropWhileRunning);
}

#[test]
fn dropping_the_client_then_ending_the_runtime_ends_the_session_at_once() {
    quits_end_the_session_at_once(Quit::DropThenStop);
}

#[test]
fn closing_the_client_then_ending_the_runtime_ends_the_session_at_once() {
    quits_end_the_session_at_once(Quit::CloseThenStop);
}
