//! The Prometheus endpoint counts what happens, over real HTTP, read with a
//! parser (tests/support/exposition.rs) rather than by matching strings.
mod support;

use partyline::server::{ClusterConfig, Hooks};
use partyline_client::{Event, PartyId};
use std::collections::BTreeMap;
use support::exposition::Exposition;
use support::nats::Nats;
use support::*;

/// Every family /metrics shows (with hooks and a cluster link), as
/// dashboards know it: name, type, help, and its series' labels (a
/// histogram's bucket bounds). A metric renamed, retyped, relabelled or
/// gone fails here; a new one is added here on purpose.
#[rustfmt::skip]
const FAMILIES: &[(&str, &str, &str, &[&str])] = &[
    ("partyline_sessions", "gauge", "Sessions alive, connected or in their grace window.", &[""]),
    ("partyline_parties", "gauge", "Parties alive.", &[""]),
    ("partyline_parties_listed", "gauge", "Parties listed for search.", &[""]),
    ("partyline_matchmaking_tickets", "gauge", "Matchmaking tickets waiting.", &[""]),
    ("partyline_join_codes", "gauge", "Live join codes.", &[""]),
    ("partyline_handshakes_in_progress", "gauge", "QUIC handshakes in progress.", &[""]),
    ("partyline_dev_identities_allowed", "gauge", "1 when clients may name themselves (dev identities, no token secret): nothing proves who they are.", &[""]),
    ("partyline_sessions_total", "counter", "Sessions started, and taken back by resume.", &["kind=\"new\"", "kind=\"resumed\""]),
    ("partyline_commands_total", "counter", "Control commands received.", &[""]),
    ("partyline_data_total", "counter", "Party data messages in and out.", &["direction=\"in\",path=\"datagram\"", "direction=\"in\",path=\"reliable\"", "direction=\"out\",path=\"datagram\""]),
    ("partyline_dropped_total", "counter", "Messages not forwarded or refused, by cause.", &["cause=\"not_member\"", "cause=\"oversize\"", "cause=\"rate_limit\""]),
    ("partyline_data_withheld_total", "counter", "Party data not forwarded to a member because it muted the sender or shares a block with it (one per member left out).", &[""]),
    ("partyline_mutes_total", "counter", "Mutes set and lifted, by action (mute: a member muted another, or changed the op codes; unmute).", &["action=\"mute\"", "action=\"unmute\""]),
    ("partyline_block_lists_set_total", "counter", "Block lists changed, by whom: the session's own Block or Unblock, or the game's server (its API or hook).", &["by=\"server\"", "by=\"session\""]),
    ("partyline_joins_blocked_total", "counter", "Joins answered as a party that does not exist because its leader blocks the joiner.", &[""]),
    ("partyline_coalesce_dropped_total", "counter", "Outgoing datagrams dropped, oldest first, from a recipient's full coalescing buffer (--coalesce-us).", &[""]),
    ("partyline_coalesce_batches_total", "counter", "Per-recipient datagram batches sent by the coalescing flusher; datagrams out per batch is the coalescing achieved.", &[""]),
    ("partyline_disconnects_total", "counter", "Sessions cut off by the server, by cause.", &["cause=\"rate_limit\"", "cause=\"slow_consumer\""]),
    ("partyline_hook_failures_total", "counter", "Hook calls that panicked, ran out of time or answered with another kind of command.", &[""]),
    ("partyline_hook_after_events_dropped_total", "counter", "After-hook events dropped because the after-hook queue was full.", &[""]),
    ("partyline_cluster_link_up", "gauge", "1 while this node's NATS link is up.", &[""]),
    ("partyline_cluster_peers", "gauge", "Other nodes this node hears now.", &[""]),
    ("partyline_cluster_remote_members", "gauge", "Members on other nodes of parties homed here.", &[""]),
    ("partyline_cluster_control_messages_out_total", "counter", "Control messages (commands, replies, event batches, membership) queued for other nodes.", &[""]),
    ("partyline_cluster_control_messages_in_total", "counter", "Control messages received from other nodes.", &[""]),
    ("partyline_cluster_datagram_messages_out_total", "counter", "Party data messages queued for other nodes (one per datagram per node).", &[""]),
    ("partyline_cluster_datagram_messages_in_total", "counter", "Party data messages received from other nodes.", &[""]),
    ("partyline_cluster_bytes_out_total", "counter", "Bytes of cluster messages queued for NATS.", &[""]),
    ("partyline_cluster_bytes_in_total", "counter", "Bytes of cluster messages received from NATS.", &[""]),
    ("partyline_cluster_control_dropped_total", "counter", "Control messages dropped because the publish queue was full (NATS down or far behind).", &[""]),
    ("partyline_cluster_datagrams_dropped_total", "counter", "Party data messages dropped because the publish queue was full.", &[""]),
    ("partyline_cluster_commands_forwarded_total", "counter", "Commands forwarded to the party's home node.", &[""]),
    ("partyline_cluster_unavailable_total", "counter", "Forwarded commands answered Unavailable (link down, or no answer in time).", &[""]),
    ("partyline_cluster_nodes_lost_total", "counter", "Nodes judged lost (silent, restarted, or left).", &[""]),
    ("partyline_cluster_undecodable_total", "counter", "Cluster messages dropped undecoded (another build?).", &[""]),
    ("partyline_cluster_stale_dropped_total", "counter", "Control messages of (or for) a node incarnation no longer current, dropped: late ones of a node judged lost, or meant for one.", &[""]),
    ("partyline_cluster_rejoins_total", "counter", "Times this node learned that the others judged it lost, dropped its ties to them and joined again as a new incarnation.", &[""]),
    ("partyline_refusals_total", "counter", "Connections refused or challenged at admission, by cause: a Hello refused (unauthenticated, version_mismatch, resume_refused, malformed_hello, no_hello, other_hello), the server full, a user or an address with the most sessions allowed (sessions_per_user, sessions_per_address), too many handshakes, a Retry asked for, or a browser session refused before Hello (webtransport: a path or origin not allowed).", &["cause=\"handshake_cap\"", "cause=\"malformed_hello\"", "cause=\"no_hello\"", "cause=\"other_hello\"", "cause=\"resume_refused\"", "cause=\"retry\"", "cause=\"server_full\"", "cause=\"sessions_per_address\"", "cause=\"sessions_per_user\"", "cause=\"unauthenticated\"", "cause=\"version_mismatch\"", "cause=\"webtransport\""]),
    ("partyline_join_code_failures_total", "counter", "Join-code attempts that named no live party (guesses, and typos).", &[""]),
    ("partyline_player_limited_total", "counter", "Commands refused by a budget of their user or of their address, by key and budget.", &["budget=\"follows\",key=\"address\"", "budget=\"follows\",key=\"user\"", "budget=\"invites\",key=\"address\"", "budget=\"invites\",key=\"user\"", "budget=\"join_code_attempts\",key=\"address\"", "budget=\"join_code_attempts\",key=\"user\"", "budget=\"join_code_failures\",key=\"address\"", "budget=\"join_code_failures\",key=\"user\"", "budget=\"join_requests\",key=\"address\"", "budget=\"join_requests\",key=\"user\"", "budget=\"searches\",key=\"address\"", "budget=\"searches\",key=\"user\"", "budget=\"tickets\",key=\"address\"", "budget=\"tickets\",key=\"user\""]),
    ("partyline_join_code_guessers", "gauge", "Users and addresses whose join-code failure budget is spent now: the guessing alarm.", &["key=\"address\"", "key=\"user\""]),
    ("partyline_limit_keys", "gauge", "Users and addresses whose budgets are tracked now (at most --max-sessions of each, and at least 1024; idle ones go first).", &["key=\"address\"", "key=\"user\""]),
    ("partyline_transport_connections", "gauge", "QUIC connections carrying an admitted session (sessions in their grace window have none).", &[""]),
    ("partyline_transport_udp_datagrams_total", "counter", "UDP datagrams of admitted QUIC connections, by direction.", &["direction=\"in\"", "direction=\"out\""]),
    ("partyline_transport_packets_sent_total", "counter", "QUIC packets sent to admitted connections.", &[""]),
    ("partyline_transport_packets_lost_total", "counter", "QUIC packets sent to admitted connections and declared lost.", &[""]),
    ("partyline_transport_bytes_lost_total", "counter", "Bytes of QUIC packets declared lost.", &[""]),
    ("partyline_transport_congestion_events_total", "counter", "Congestion events (the window cut) on admitted connections.", &[""]),
    ("partyline_transport_datagrams_handed_total", "counter", "Party datagrams handed to quinn to send (after coalescing).", &[""]),
    ("partyline_transport_datagram_frames_sent_total", "counter", "DATAGRAM frames sent, the server's keep-alives (empty datagrams) included. Above transport_datagrams_handed_total by the keep-alives, below it by what waits in quinn's queue and by what it dropped when that queue overflowed.", &[""]),
    ("partyline_quality_reports_total", "counter", "Connection quality scores told to the parties of their sessions: a connection's first, one after a new seat, and one that moved by a quarter (a message to each other node that homes one of its parties).", &[""]),
    ("partyline_command_seconds", "histogram", "Time to handle one control command: decoded to answered, its events queued.", &["1e-05", "2.5e-05", "5e-05", "0.0001", "0.00025", "0.0005", "0.001", "0.005", "0.01", "0.05", "+Inf"]),
    ("partyline_datagram_fan_out", "histogram", "Recipients of one party datagram.", &["1", "2", "3", "4", "8", "16", "32", "64", "128", "256", "+Inf"]),
    ("process_cpu_seconds_total", "counter", "User and system CPU time.", &[""]),
    ("process_resident_memory_bytes", "gauge", "Resident memory.", &[""]),
    ("process_threads", "gauge", "OS threads.", &[""]),
    ("process_start_time_seconds", "gauge", "Start time, Unix seconds.", &[""]),
    ("process_open_fds", "gauge", "Open file descriptors.", &[""]),
];

/// The families a process of two workers adds (it shows no
/// `partyline_cluster_*`: its workers are no cluster).
#[rustfmt::skip]
const WORKER_FAMILIES: &[(&str, &str, &str, &[&str])] = &[
    ("partyline_workers", "gauge", "Workers serving (--workers): threads, each with its own runtime and socket.", &[""]),
    ("partyline_worker_sessions", "gauge", "Sessions alive on each worker.", &["worker=\"0\"", "worker=\"1\""]),
    ("partyline_worker_unknown_connection_packets_total", "counter", "Packets that reached a worker for a connection it does not know, by the worker their connection id names: this one (a connection that ended, or a node's that died) or another (steered wrong: never, while steering works).", &["named=\"another_worker\",worker=\"0\"", "named=\"another_worker\",worker=\"1\"", "named=\"this_worker\",worker=\"0\"", "named=\"this_worker\",worker=\"1\""]),
    ("partyline_worker_messages_total", "counter", "Messages a worker sent to the others, by lane: control (commands, replies, events, membership) and data (one per party datagram per worker with recipients).", &["lane=\"control\",worker=\"0\"", "lane=\"control\",worker=\"1\"", "lane=\"data\",worker=\"0\"", "lane=\"data\",worker=\"1\""]),
    ("partyline_worker_messages_dropped_total", "counter", "Messages between workers dropped because the receiving worker's lane was full.", &["lane=\"control\",worker=\"0\"", "lane=\"control\",worker=\"1\"", "lane=\"data\",worker=\"0\"", "lane=\"data\",worker=\"1\""]),
];

/// Labels as the exposition writes them, sorted: `a="1",b="2"`.
fn label_text(labels: &support::exposition::Labels) -> String {
    labels
        .iter()
        .map(|(name, value)| format!("{name}=\"{value}\""))
        .collect::<Vec<_>>()
        .join(",")
}

/// A family's series as `FAMILIES` lists them.
fn series_of(name: &str, family: &support::exposition::Family) -> Vec<String> {
    if family.kind == "histogram" {
        let mut bounds: Vec<(f64, String)> = family
            .series
            .keys()
            .filter(|(sample, _)| *sample == format!("{name}_bucket"))
            .filter_map(|(_, labels)| labels.get("le").cloned())
            .map(|le| (le.parse().unwrap_or(f64::INFINITY), le))
            .collect();
        bounds.sort_by(|a, b| a.0.total_cmp(&b.0));
        return bounds.into_iter().map(|(_, le)| le).collect();
    }
    let mut series: Vec<String> = family
        .series
        .keys()
        .map(|(_, labels)| label_text(labels))
        .collect();
    series.sort();
    series
}

struct NoHooks;
impl Hooks for NoHooks {}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_metric_keeps_its_name_type_help_and_series() {
    let nats = Nats::start();
    let server = start_with_hooks(NoHooks, |c| {
        c.metrics = Some("127.0.0.1:0".parse().unwrap());
        c.cluster = Some(ClusterConfig::new(nats.url(), "node-a"));
    })
    .await;
    let metrics = scrape_metrics(&server).await;
    expect_families(&metrics, FAMILIES.iter().collect());
}

#[tokio::test]
async fn workers_show_the_same_families_and_their_own_but_no_cluster() {
    use partyline::server::{ServerConfig, Workers, WorkersConfig};
    let (tls, _, _) = partyline::certs::generate_dev_identity().unwrap();
    let mut config = ServerConfig::new("127.0.0.1:0".parse().unwrap(), tls);
    config.metrics = Some("127.0.0.1:0".parse().unwrap());
    let hooks: std::sync::Arc<dyn Hooks> = std::sync::Arc::new(NoHooks);
    let workers = Workers::start(config, WorkersConfig::new(2), Some(hooks)).unwrap();
    let addr = workers.metrics_addr().unwrap();
    let metrics = tokio::task::spawn_blocking(move || scrape_addr(addr))
        .await
        .unwrap();
    let expected = FAMILIES
        .iter()
        .filter(|(name, ..)| !name.starts_with("partyline_cluster_"))
        .chain(WORKER_FAMILIES)
        .collect();
    expect_families(&metrics, expected);
    workers.shutdown().await;
}

/// `metrics` shows exactly the `expected` families, each as listed.
fn expect_families(metrics: &Exposition, expected: Vec<&(&str, &str, &str, &[&str])>) {
    let exposed: BTreeMap<&str, (&str, &str, Vec<String>)> = metrics
        .families
        .iter()
        .map(|(name, family)| {
            let series = series_of(name, family);
            (
                name.as_str(),
                (family.kind.as_str(), family.help.as_str(), series),
            )
        })
        .collect();
    let expected: BTreeMap<&str, (&str, &str, Vec<String>)> = expected
        .into_iter()
        .map(|(name, kind, help, series)| {
            let series = series.iter().map(|s| s.to_string()).collect();
            (*name, (*kind, *help, series))
        })
        .collect();
    for (name, want) in &expected {
        assert_eq!(exposed.get(name), Some(want), "family {name}");
    }
    let extra: Vec<&&str> = exposed
        .keys()
        .filter(|name| !expected.contains_key(*name))
        .collect();
    assert!(extra.is_empty(), "families not in FAMILIES: {extra:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_metrics_endpoint_counts_sessions_parties_commands_and_data() {
    let server = start_with(|c| c.metrics = Some("127.0.0.1:0".parse().unwrap())).await;
    let (ana, mut ana_events) = server.client("ana").await;
    let (bob, mut bob_events) = server.client("bob").await;
    let party = ana
        .create_party(settings(true, 4, ""))
        .await
        .unwrap()
        .party_id;
    bob.join_party(party).await.unwrap();
    next_event(&mut ana_events).await;
    ana.send_data(party, 1, b"hello").unwrap();
    assert!(matches!(next(&mut bob_events).await, Event::Data(_)));
    // A datagram for a party it is not in: dropped, counted as not_member.
    bob.send_data(PartyId::random(), 1, b"x").unwrap();
    next_event(&mut bob_events).await;

    let m = scrape_metrics(&server).await;
    assert_eq!(m.count("partyline_sessions", &[]), 2);
    assert_eq!(m.count("partyline_parties", &[]), 1);
    assert_eq!(m.count("partyline_parties_listed", &[]), 0);
    assert_eq!(m.count("partyline_join_codes", &[]), 0);
    assert_eq!(m.count("partyline_sessions_total", &[("kind", "new")]), 2);
    assert!(m.count("partyline_commands_total", &[]) >= 2);
    let data = |direction, path| {
        m.count(
            "partyline_data_total",
            &[("direction", direction), ("path", path)],
        )
    };
    assert_eq!(data("in", "datagram"), 2);
    assert_eq!(data("out", "datagram"), 1);
    assert_eq!(
        m.count("partyline_dropped_total", &[("cause", "not_member")]),
        1
    );
    assert_eq!(m.kind("partyline_refusals_total"), "counter");
    // Coalescing is on by default: the one datagram relayed left in one
    // batch (counted before bob could read it), and nothing was dropped.
    assert_eq!(m.count("partyline_coalesce_dropped_total", &[]), 0);
    assert_eq!(m.count("partyline_coalesce_batches_total", &[]), 1);
    // One datagram relayed, to one recipient.
    assert_eq!(m.kind("partyline_datagram_fan_out"), "histogram");
    assert_eq!(
        m.count("partyline_datagram_fan_out_bucket", &[("le", "1")]),
        1
    );
    assert_eq!(m.count("partyline_datagram_fan_out_count", &[]), 1);
    assert_eq!(m.get("partyline_datagram_fan_out_sum", &[]), Some(1.0));
    // Every command handled was timed.
    assert_eq!(
        m.count("partyline_command_seconds_count", &[]),
        m.count("partyline_commands_total", &[])
    );
    let rss = m.get("process_resident_memory_bytes", &[]).expect("rss");
    assert!(rss > 1e6, "{rss}");
    assert!(m.count("process_open_fds", &[]) > 2);
    assert_eq!(m.kind("process_cpu_seconds_total"), "counter");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutes_blocks_and_what_they_hold_back_are_counted() {
    let server = start_with(|c| c.metrics = Some("127.0.0.1:0".parse().unwrap())).await;
    let (ana, mut ana_events) = server.client("ana").await;
    let (bob, mut bob_events) = server.client("bob").await;
    let (cy, mut cy_events) = server.client("cy").await;
    let party = ana
        .create_party(settings(true, 4, ""))
        .await
        .unwrap()
        .party_id;
    bob.join_party(party).await.unwrap();
    cy.join_party(party).await.unwrap();
    next_event(&mut ana_events).await;
    next_event(&mut ana_events).await;
    next_event(&mut bob_events).await;
    // Ana mutes Bob, Cy blocks him: his data goes to nobody (withheld
    // from both, as a datagram and reliably).
    ana.mute(party, "bob", None).await.unwrap();
    ana.unmute(party, "bob").await.unwrap();
    ana.mute(party, "bob", None).await.unwrap();
    cy.block(&["bob"]).await.unwrap();
    bob.send_data(party, 1, b"x").unwrap();
    bob.send_data_reliable(party, 1, b"x").await.unwrap();
    // The API's list for Bob; Ana's block keeps Bob out of her new party.
    server
        .handle
        .api()
        .set_blocks("bob", &["eve".into()])
        .await
        .unwrap();
    assert!(matches!(
        next_event(&mut bob_events).await,
        Event::BlocksChanged { .. }
    ));
    ana.block(&["bob"]).await.unwrap();
    let hers = ana.create_party(settings(true, 4, "")).await.unwrap();
    assert!(bob.join_party(hers.party_id).await.is_err());
    cy.send_data_reliable(party, 2, b"mark").await.unwrap();
    assert!(matches!(next(&mut ana_events).await, Event::Data(data) if data.op_code == 2));
    assert!(cy_events.try_next().is_none());

    let m = scrape_metrics(&server).await;
    assert_eq!(m.count("partyline_mutes_total", &[("action", "mute")]), 2);
    assert_eq!(m.count("partyline_mutes_total", &[("action", "unmute")]), 1);
    let lists = |by| m.count("partyline_block_lists_set_total", &[("by", by)]);
    assert_eq!((lists("session"), lists("server")), (2, 1));
    // Bob's two messages from Ana and Cy, and Cy's mark from Bob.
    assert_eq!(m.count("partyline_data_withheld_total", &[]), 5);
    assert_eq!(m.count("partyline_joins_blocked_total", &[]), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_are_counted_by_cause_and_unknown_paths_are_404() {
    let server = start_with(|c| {
        c.metrics = Some("127.0.0.1:0".parse().unwrap());
        c.auth = partyline::server::AuthMode::Token {
            secret: [7; 32].to_vec(),
            previous: None,
        };
    })
    .await;
    // A dev identity, refused by a token-mode server: unauthenticated.
    assert!(partyline_client::Client::connect(server.config("dev"))
        .await
        .is_err());
    let m = scrape_metrics(&server).await;
    let refusals = |cause| m.count("partyline_refusals_total", &[("cause", cause)]);
    assert_eq!(refusals("unauthenticated"), 1);
    assert_eq!(refusals("version_mismatch"), 0);
    assert_eq!(refusals("other_hello"), 0);
    let addr = server.metrics.expect("metrics address");
    let missing = tokio::task::spawn_blocking(move || http_get(addr, "/nope"))
        .await
        .unwrap();
    assert!(missing.starts_with("HTTP/1.1 404"), "{missing}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transport_counters_sum_live_connections_and_keep_those_that_ended() {
    let server = start_with(|c| c.metrics = Some("127.0.0.1:0".parse().unwrap())).await;
    let (ana, _ana_events) = server.client("ana").await;
    let (bob, mut bob_events) = server.client("bob").await;
    let party = ana
        .create_party(settings(true, 4, ""))
        .await
        .unwrap()
        .party_id;
    bob.join_party(party).await.unwrap();
    for _ in 0..3 {
        ana.send_data(party, 1, b"hello").unwrap();
        assert!(matches!(next(&mut bob_events).await, Event::Data(_)));
    }
    let before = scrape_metrics(&server).await;
    let frames = before.count("partyline_transport_datagram_frames_sent_total", &[]);
    assert_eq!(
        frames,
        before.count("partyline_transport_datagrams_handed_total", &[]),
        "every datagram handed to quinn went out as a DATAGRAM frame"
    );
    assert_eq!(frames, 3);
    assert_eq!(
        before.count("partyline_transport_packets_lost_total", &[]),
        0
    );
    assert_eq!(before.count("partyline_transport_connections", &[]), 2);
    let sent_before = before.count("partyline_transport_packets_sent_total", &[]);
    // Handshakes, replies and three datagrams: well over one packet each way.
    assert!(sent_before >= 6, "{sent_before}");
    let udp_in = before.count(
        "partyline_transport_udp_datagrams_total",
        &[("direction", "in")],
    );
    assert!(udp_in >= 6, "{udp_in}");

    bob.close().await;
    let after = loop {
        let metrics = scrape_metrics(&server).await;
        if metrics.count("partyline_transport_connections", &[]) == 1 {
            break metrics;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    };
    // Bob's connection is gone from the live set; its figures stayed.
    assert_eq!(
        after.count("partyline_transport_datagram_frames_sent_total", &[]),
        3
    );
    assert!(after.count("partyline_transport_packets_sent_total", &[]) >= sent_before);
}

/// Keep-alives are DATAGRAM frames but not party datagrams: on an idle
/// server the frames sent pass the datagrams handed, as the help says.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keep_alives_count_as_datagram_frames_sent_but_not_as_datagrams_handed() {
    let server = start_with(|c| {
        c.metrics = Some("127.0.0.1:0".parse().unwrap());
        fast_loss_detection(c);
    })
    .await;
    let (_ana, _ana_events) = server.client("ana").await;
    // Keep-alives every 200 ms: two of them well within the limit.
    let metrics = tokio::time::timeout(WAIT, async {
        loop {
            let metrics = scrape_metrics(&server).await;
            if metrics.count("partyline_transport_datagram_frames_sent_total", &[]) >= 2 {
                break metrics;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("keep-alives go out as DATAGRAM frames");
    assert_eq!(
        metrics.count("partyline_transport_datagrams_handed_total", &[]),
        0,
        "no party data was sent"
    );
}

/// The checks are not vacuous: what Prometheus would misread fails them.
#[test]
#[should_panic(expected = "does not parse")]
fn a_malformed_line_fails_the_parser() {
    Exposition::parse("# HELP x_total X.\n# TYPE x_total counter\nx_total{a=\"1\" 1\n");
}

#[test]
#[should_panic(expected = "lacks _total")]
fn openmetrics_names_are_not_the_prometheus_text_format() {
    // The OpenMetrics encoder names a counter's family without `_total`.
    Exposition::parse("# HELP x X.\n# TYPE x counter\nx_total 1\n");
}

#[test]
#[should_panic(expected = "+Inf is the count")]
fn a_histogram_must_end_at_its_count() {
    Exposition::parse(
        "# HELP h H.\n# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_bucket{le=\"+Inf\"} 2\nh_sum 3\nh_count 3\n",
    );
}
