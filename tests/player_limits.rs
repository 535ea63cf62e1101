//! Limits per player, over real QUIC: twenty sessions of one user, and
//! twenty users from one address, get what one user (one address) gets,
//! not twenty times it; sessions per user and per address are capped, a
//! resume does not count twice, and loopback is left alone unless asked.
//!
//! Every client here comes from 127.0.0.1. The per-address limits leave
//! loopback alone by default (a local load generator); the tests that
//! count addresses turn `limit_loopback` on, so the server counts
//! 127.0.0.1 as it would any player's address.
mod support;

use partyline::server::PlayerBudgets;
use partyline_client::{Client, ErrorCode, Events, PartySearch, TicketRequest};
use std::collections::BTreeMap;
use std::time::Duration;
use support::*;

/// Codes no party has: 6 characters of the alphabet, distinct per try.
fn wrong_code(n: usize) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHJKMNPQRSTUVWXYZ23456789";
    (0..6)
        .map(|place| ALPHABET[(n / 31usize.pow(place)) % 31] as char)
        .collect()
}

/// Connects `sessions` clients, one per `(user)` given.
async fn connect_all(server: &TestServer, users: &[String]) -> Vec<(Client, Events)> {
    let mut clients = Vec::new();
    for user in users {
        clients.push(server.client(user).await);
    }
    clients
}

/// Every client guesses `per_client` wrong codes (within its session's
/// own budget): how many were answered `JoinCodeNotFound`, and the
/// `RateLimited` refusals' messages.
async fn guess(clients: &[(Client, Events)], per_client: usize) -> (usize, Vec<String>) {
    let mut not_found = 0;
    let mut limited = Vec::new();
    let mut n = 1000;
    for _ in 0..per_client {
        for (client, _) in clients {
            n += 1;
            match client.join_by_code(&wrong_code(n)).await {
                Err(error) if error.code() == Some(ErrorCode::JoinCodeNotFound) => not_found += 1,
                Err(error) if error.code() == Some(ErrorCode::RateLimited) => {
                    limited.push(error.to_string())
                }
                other => panic!("a wrong code answered {other:?}"),
            }
        }
    }
    (not_found, limited)
}

fn metrics_on(config: &mut partyline::server::ServerConfig) {
    config.metrics = Some("127.0.0.1:0".parse().unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_sessions_of_one_user_share_its_join_code_failure_budget() {
    let server = start_with(|c| {
        metrics_on(c);
        // Twenty guessing, and a fresh one later.
        c.max_sessions_per_user = 21;
        // Attempts unlimited per user: the failure budget alone holds.
        c.per_user.join_code_attempts = 0;
    })
    .await;
    let users = vec!["mallory".to_string(); 20];
    let sessions = connect_all(&server, &users).await;
    // 10 each, the session's own budget a minute: 200 guesses.
    let (not_found, limited) = guess(&sessions, 10).await;
    assert_eq!(not_found, 20, "the user's 20 wrong codes an hour, not 200");
    assert_eq!(limited.len(), 180);
    assert!(
        limited[0].contains("too many wrong join codes: at most 20 an hour for this user"),
        "{}",
        limited[0]
    );
    // Spent: even a real code is refused to this user now, from a fresh
    // session with its own budget untouched: the user's is spent.
    let (host, _host_events) = server.client("host").await;
    let party = host
        .create_party(settings(true, 8, ""))
        .await
        .unwrap()
        .party_id;
    let real = host.create_join_code(party).await.unwrap();
    let (fresh, _fresh_events) = server.client("mallory").await;
    let error = fresh.join_by_code(&real).await.unwrap_err();
    assert_eq!(error.code(), Some(ErrorCode::RateLimited));
    assert!(error.to_string().contains("wrong join codes"), "{error}");
    // Another user is not touched: its wrong code is an answer, its right
    // one seats it, and gives the wrong code's charge back.
    let (ana, _ana_events) = server.client("ana").await;
    assert_eq!(
        code(ana.join_by_code(&wrong_code(1)).await),
        ErrorCode::JoinCodeNotFound
    );
    ana.join_by_code(&real).await.expect("ana's code works");

    let m = scrape_metrics(&server).await;
    assert_eq!(m.count("partyline_join_code_failures_total", &[]), 21);
    assert_eq!(
        m.count("partyline_join_code_guessers", &[("key", "user")]),
        1,
        "mallory is over its budget; ana is not"
    );
    // Loopback: no address counted.
    assert_eq!(
        m.count("partyline_join_code_guessers", &[("key", "address")]),
        0
    );
    let limited_by = |key, budget| {
        m.count(
            "partyline_player_limited_total",
            &[("key", key), ("budget", budget)],
        )
    };
    assert_eq!(limited_by("user", "join_code_failures"), 181);
    assert_eq!(limited_by("address", "join_code_failures"), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_users_from_one_address_share_its_join_code_failure_budget() {
    let server = start_with(|c| {
        metrics_on(c);
        c.limit_loopback = true;
    })
    .await;
    let users: Vec<String> = (0..20).map(|n| format!("guesser-{n}")).collect();
    let sessions = connect_all(&server, &users).await;
    // 10 each: within each user's 20 an hour, 200 from the address.
    let (not_found, limited) = guess(&sessions, 10).await;
    assert_eq!(
        not_found, 100,
        "the address's 100 wrong codes an hour, not 200"
    );
    assert_eq!(limited.len(), 100);
    assert!(
        limited
            .iter()
            .all(|message| message.contains("at most 100 an hour for this address")),
        "{limited:?}"
    );
    let m = scrape_metrics(&server).await;
    assert_eq!(m.count("partyline_join_code_failures_total", &[]), 100);
    assert_eq!(
        m.count("partyline_join_code_guessers", &[("key", "address")]),
        1
    );
    assert_eq!(
        m.count("partyline_join_code_guessers", &[("key", "user")]),
        0
    );
    assert_eq!(
        m.count(
            "partyline_player_limited_total",
            &[("key", "address"), ("budget", "join_code_failures")]
        ),
        100
    );
}

/// Each client sends one of every budgeted command but join codes: how
/// many of each were not refused `RateLimited`.
async fn one_of_each(clients: &[(Client, Events)]) -> BTreeMap<&'static str, usize> {
    let mut served = BTreeMap::new();
    let mut count = |what: &'static str, refusal: Option<ErrorCode>| {
        let entry = served.entry(what).or_insert(0);
        if refusal != Some(ErrorCode::RateLimited) {
            *entry += 1;
        }
    };
    for (client, _) in clients {
        let party = client
            .create_party(settings(false, 8, ""))
            .await
            .unwrap()
            .party_id;
        count(
            "invites",
            client
                .invite(party, "friend")
                .await
                .err()
                .and_then(|e| e.code()),
        );
        count(
            "follows",
            client
                .follow(&["friend"])
                .await
                .err()
                .and_then(|e| e.code()),
        );
        let unmatchable = TicketRequest {
            min_count: 100,
            max_count: 100,
            count_multiple: 1,
            ..TicketRequest::default()
        };
        let ticket = client.submit_ticket(unmatchable).await;
        count("tickets", ticket.err().and_then(|e| e.code()));
        // A party that does not exist: refused, but the join was made.
        let join = client.join_party(partyline_client::PartyId::random()).await;
        count("joins", join.err().and_then(|e| e.code()));
        let search = client.search_parties(PartySearch::default()).await;
        count("searches", search.err().and_then(|e| e.code()));
    }
    served
}

fn five_of_each() -> PlayerBudgets {
    PlayerBudgets {
        invites: 5,
        follows: 5,
        tickets: 5,
        join_requests: 5,
        searches: 5,
        ..PlayerBudgets::UNLIMITED
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_sessions_of_one_user_share_its_budgets() {
    let server = start_with(|c| {
        c.max_sessions_per_user = 20;
        c.per_user = five_of_each();
    })
    .await;
    let sessions = connect_all(&server, &vec!["spammer".to_string(); 20]).await;
    let served = one_of_each(&sessions).await;
    for (what, count) in &served {
        assert_eq!(*count, 5, "{what}: the user's 5 a minute, not 20");
    }
    assert_eq!(served.len(), 5);
    // Its budgets are its own: another user is served.
    let others = connect_all(&server, &["other".to_string()]).await;
    assert!(one_of_each(&others).await.values().all(|count| *count == 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_users_from_one_address_share_its_budgets() {
    let server = start_with(|c| {
        c.limit_loopback = true;
        c.per_address = five_of_each();
    })
    .await;
    let users: Vec<String> = (0..20).map(|n| format!("spammer-{n}")).collect();
    let sessions = connect_all(&server, &users).await;
    let served = one_of_each(&sessions).await;
    for (what, count) in &served {
        assert_eq!(*count, 5, "{what}: the address's 5 a minute, not 20");
    }
    assert_eq!(served.len(), 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loopback_is_not_counted_per_address_unless_asked() {
    let server = start_with(|c| c.per_address = five_of_each()).await;
    let users: Vec<String> = (0..20).map(|n| format!("local-{n}")).collect();
    let sessions = connect_all(&server, &users).await;
    assert!(one_of_each(&sessions)
        .await
        .values()
        .all(|count| *count == 20));
}

/// Connects, expecting the session limit's refusal; its message.
async fn refused(server: &TestServer, user: &str) -> String {
    let error = Client::connect(server.config(user))
        .await
        .err()
        .unwrap_or_else(|| panic!("{user} was admitted"));
    assert_eq!(error.code(), Some(ErrorCode::RateLimited), "{error}");
    error.to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_gets_at_most_its_sessions_and_a_resume_does_not_count_again() {
    let server = start_with(|c| {
        metrics_on(c);
        c.max_sessions_per_user = 3;
    })
    .await;
    let mut sessions = connect_all(&server, &vec!["ana".to_string(); 3]).await;
    let message = refused(&server, "ana").await;
    assert!(
        message.contains("this user already has 3 sessions"),
        "{message}"
    );
    // Another user is admitted.
    let _bob = server.client("bob").await;
    // A resume takes its own session back (superseding its connection):
    // admitted, and still three sessions, so a new one is still refused.
    let mut config = server.config("ana");
    config.resume = Some(sessions[0].0.resume_ticket());
    let (resumed, _resumed_events) = Client::connect(config).await.expect("a resume is admitted");
    assert_eq!(server.handle.session_count(), 4);
    refused(&server, "ana").await;
    // A session that ends frees its place.
    resumed.close().await;
    sessions.remove(0);
    let deadline = tokio::time::Instant::now() + WAIT;
    while server.handle.session_count() > 3 {
        assert!(tokio::time::Instant::now() < deadline, "never ended");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let _again = server.client("ana").await;
    let m = scrape_metrics(&server).await;
    assert_eq!(
        m.count(
            "partyline_refusals_total",
            &[("cause", "sessions_per_user")]
        ),
        2
    );
    assert_eq!(
        m.count("partyline_refusals_total", &[("cause", "other_hello")]),
        0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_address_gets_at_most_its_sessions() {
    let server = start_with(|c| {
        metrics_on(c);
        c.limit_loopback = true;
        c.max_sessions_per_address = 20;
    })
    .await;
    let users: Vec<String> = (0..20).map(|n| format!("lan-{n}")).collect();
    let _sessions = connect_all(&server, &users).await;
    let message = refused(&server, "lan-20").await;
    assert!(
        message.contains("20 sessions already come from this address"),
        "{message}"
    );
    let m = scrape_metrics(&server).await;
    assert_eq!(
        m.count(
            "partyline_refusals_total",
            &[("cause", "sessions_per_address")]
        ),
        1
    );
    // The same from loopback, not counted: all admitted.
    let server = start_with(|c| c.max_sessions_per_address = 20).await;
    let users: Vec<String> = (0..25).map(|n| format!("local-{n}")).collect();
    let _sessions = connect_all(&server, &users).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn codes_that_are_found_do_not_spend_the_failure_budget() {
    let server = start_with(|c| {
        metrics_on(c);
        c.per_user.join_code_attempts = 0;
    })
    .await;
    let (host, _host_events) = server.client("host").await;
    let party = host
        .create_party(settings(true, 8, ""))
        .await
        .unwrap()
        .party_id;
    let real = host.create_join_code(party).await.unwrap();
    // 30 tries of a real code, more than the 20 wrong ones an hour: each
    // finds the party (a seat, then AlreadyMember), none is a failure.
    let players = connect_all(&server, &vec!["friend".to_string(); 3]).await;
    for _ in 0..10 {
        for (client, _) in &players {
            match client.join_by_code(&real).await {
                Ok(_) => {}
                Err(error) => assert_eq!(error.code(), Some(ErrorCode::AlreadyMember), "{error}"),
            }
        }
    }
    // And the whole budget of wrong ones is still there (from fresh
    // sessions: each session's own 10 attempts a minute are spent).
    let guessers = connect_all(&server, &vec!["friend".to_string(); 2]).await;
    let (not_found, limited) = guess(&guessers, 10).await;
    assert_eq!((not_found, limited.len()), (20, 0));
    let m = scrape_metrics(&server).await;
    assert_eq!(m.count("partyline_join_code_failures_total", &[]), 20);
}
