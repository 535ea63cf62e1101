//! Real browsers in the same parties as native players: Debian's headless
//! Chromium (started here through clients/web/browser/driver.mjs, with
//! playwright-core from clients/web's npm lock; nothing is downloaded)
//! loads the dev page of an in-process server and plays with the
//! TypeScript client beside a native SDK client: datagrams and reliable
//! data both ways, a browser member kicked and promoted, a ready check
//! started by a browser leader and answered from both transports (the
//! TypeScript client speaks protocol version 3), a browser whose
//! network is cut (a relay drops its packets) resuming its session, and a
//! browser leader whose leaving hands the lead to a native member (the
//! party's leader policy and each member's connection quality read from
//! the browser's roster, a native leader's change of the policy heard by
//! the browser). It also measures a browser-to-native datagram round trip
//! against native-to-native in the same run (median of 5).
//!
//! Without Chromium, node or clients/web/node_modules the test says so
//! loudly and passes; with PARTYLINE_REQUIRE_BROWSER set (CI, after
//! .ci/run installed them) it fails instead.

mod support;

use partyline::certs::{dev_cert_names, BrowserCertificates};
use partyline::server::Server;
use partyline_client::{
    Event as SdkEvent, LeaderPolicy, LeaveReason, PartyUpdate, ReadyCheckOutcome,
};
use serde_json::{json, Value};
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::relay::Relay;
use support::{next, next_data, TestServer, WAIT};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

struct Browser {
    child: Child,
    stdin: ChildStdin,
    stdout: Lines<BufReader<ChildStdout>>,
}

/// Chromium, node and the package's node_modules, or why not.
fn tools() -> Result<(PathBuf, PathBuf), String> {
    let web = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("clients/web");
    let chromium =
        PathBuf::from(std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into()));
    if !chromium.exists() {
        return Err(format!(
            "no Chromium at {} (apt-get install chromium)",
            chromium.display()
        ));
    }
    let node = std::process::Command::new("node").arg("--version").output();
    if !node.is_ok_and(|out| out.status.success()) {
        return Err("no node".into());
    }
    if !web.join("node_modules/playwright-core").exists() {
        return Err("no clients/web/node_modules (npm ci in clients/web)".into());
    }
    Ok((chromium, web))
}

impl Browser {
    async fn start(page: &str) -> Option<Browser> {
        let (chromium, web) = match tools() {
            Ok(tools) => tools,
            Err(missing) if std::env::var_os("PARTYLINE_REQUIRE_BROWSER").is_some() => {
                panic!("the browser test must run here: {missing}")
            }
            Err(missing) => {
                eprintln!("\n!!!!! SKIPPED: the browser test did not run: {missing} !!!!!\n");
                return None;
            }
        };
        let mut child = Command::new("node")
            .arg(web.join("browser/driver.mjs"))
            .env("PAGE", page)
            .env("CHROMIUM", chromium)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("node starts");
        let stdin = child.stdin.take().unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap()).lines();
        Some(Browser {
            child,
            stdin,
            stdout,
        })
    }

    async fn step(&mut self, step: Value) -> Result<Value, String> {
        let line = step.to_string() + "\n";
        self.stdin.write_all(line.as_bytes()).await.unwrap();
        let answer = tokio::time::timeout(Duration::from_secs(60), self.stdout.next_line())
            .await
            .unwrap_or_else(|_| panic!("no answer from the driver to {step}"))
            .unwrap()
            .expect("the driver is running");
        let answer: Value = serde_json::from_str(&answer).unwrap();
        match answer.get("error") {
            Some(error) => Err(error.to_string()),
            None => Ok(answer["ok"].clone()),
        }
    }

    async fn open(&mut self, tab: &str) {
        self.step(json!({"op": "open", "tab": tab}))
            .await
            .expect("the tab opens the dev page");
    }

    /// Runs `js` (an async function body) in `tab`; panics on an error.
    async fn eval(&mut self, tab: &str, js: &str) -> Value {
        match self.step(json!({"op": "eval", "tab": tab, "js": js})).await {
            Ok(value) => value,
            Err(error) => panic!("in tab {tab}: {js}\n{error}"),
        }
    }

    async fn quit(mut self) {
        // No answer: the driver closes the browser and exits.
        let _ = self.stdin.write_all(b"{\"op\":\"quit\"}\n").await;
        let _ = tokio::time::timeout(Duration::from_secs(10), self.child.wait()).await;
    }
}

/// A dev server: the browser certificates, the dev page on loopback, and
/// fast loss detection (a silent connection is lost in about a second).
async fn dev_server() -> (TestServer, std::net::SocketAddr) {
    let certificates = BrowserCertificates::new(dev_cert_names(&[]), std::time::SystemTime::now())
        .expect("browser certificates");
    let certificates = Arc::new(certificates);
    let mut dev_http = None;
    let server = support::start_built(
        |config| {
            support::fast_loss_detection(config);
            config.grace = Duration::from_secs(60);
            let web = config.webtransport.as_mut().unwrap();
            web.browser_certificates = Some(certificates.clone());
            web.dev_http = Some("127.0.0.1:0".parse().unwrap());
            web.dev_page = true;
        },
        |config| {
            let server = Server::bind(config)?;
            dev_http = server.dev_http_addr();
            Ok(server)
        },
    )
    .await;
    (server, dev_http.expect("dev HTTP"))
}

fn text(value: &Value) -> String {
    value.as_str().map(str::to_string).unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browsers_and_native_players_share_parties() {
    let (server, dev_http) = dev_server().await;
    let Some(mut browser) = Browser::start(&format!("http://{dev_http}/")).await else {
        return;
    };
    // Tab a reaches the server through a relay that can cut its network.
    let relay = Relay::start(server.addr).await;
    let through_relay = format!("https://127.0.0.1:{}/partyline", relay.addr.port());
    browser.open("a").await;
    browser.open("b").await;
    let ana = browser
        .eval(
            "a",
            &format!(
                "return await t.connect('a', 'ana', {{ url: '{through_relay}', idleTimeout: 1500, connectTimeout: 3000 }})"
            ),
        )
        .await;
    assert_eq!(ana["userId"], "ana");
    let party = browser
        .eval(
            "a",
            "return (await t.clients.a.createParty({ maxSize: 6, label: 'mixed' })).partyId",
        )
        .await;
    let party_id: partyline_client::PartyId = text(&party).parse().expect("a party id");

    // A native player joins the browser's party.
    let (bob, mut bob_events) = server.client("bob").await;
    bob.join_party(party_id).await.expect("bob joins");
    let joined = browser
        .eval("a", "return await t.take('a', 'MemberJoined')")
        .await;
    assert_eq!(joined["member"]["userId"], "bob");

    datagrams_and_reliable_data_both_ways(&mut browser, &bob, &mut bob_events, &party).await;
    kicked_and_promoted(&mut browser, &bob, &mut bob_events, &party).await;
    ready_checks_across_transports(&mut browser, &bob, &mut bob_events, &party).await;
    cut_and_resumed(&mut browser, &relay, &bob, &mut bob_events, &party).await;
    leader_leaves_to_a_native_member(&mut browser, &server).await;
    round_trips(&mut browser, &server, &bob, &party).await;
    browser.quit().await;
}

async fn datagrams_and_reliable_data_both_ways(
    browser: &mut Browser,
    bob: &partyline_client::Client,
    bob_events: &mut partyline_client::Events,
    party: &Value,
) {
    let party_id: partyline_client::PartyId = text(party).parse().unwrap();
    browser
        .eval(
            "a",
            &format!(
                "t.clients.a.sendData('{}', 7, t.text('dgram from chromium'))",
                text(party)
            ),
        )
        .await;
    let data = next_data(bob_events).await;
    assert_eq!(
        (&data.data[..], data.op_code, data.reliable),
        (&b"dgram from chromium"[..], 7, false)
    );
    assert_eq!(data.sender.user_id, "ana");
    browser
        .eval(
            "a",
            &format!(
                "await t.clients.a.sendDataReliable('{}', 8, t.text('reliable from chromium'))",
                text(party)
            ),
        )
        .await;
    let data = loop {
        let data = next_data(bob_events).await;
        if data.reliable {
            break data;
        }
    };
    assert_eq!(&data.data[..], &b"reliable from chromium"[..]);

    bob.send_data_reliable(party_id, 10, b"reliable from native")
        .await
        .unwrap();
    browser.eval("a", "await t.data('a', 1)").await;
    let deadline = Instant::now() + WAIT;
    let received = loop {
        bob.send_data(party_id, 9, b"dgram from native").unwrap();
        let received = browser
            .eval(
                "a",
                "await new Promise((r) => setTimeout(r, 100)); return await t.data('a', 0)",
            )
            .await;
        if received.as_array().unwrap().len() >= 2 || Instant::now() > deadline {
            break received;
        }
    };
    let mut got: Vec<(String, bool, String)> = received
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                text(&d["data"]),
                d["reliable"].as_bool().unwrap(),
                text(&d["sender"]["userId"]),
            )
        })
        .collect();
    got.sort();
    got.dedup();
    assert_eq!(
        got,
        vec![
            ("dgram from native".into(), false, "bob".into()),
            ("reliable from native".into(), true, "bob".into()),
        ]
    );
}

async fn kicked_and_promoted(
    browser: &mut Browser,
    bob: &partyline_client::Client,
    bob_events: &mut partyline_client::Events,
    party: &Value,
) {
    let p = text(party);
    browser.eval("b", "await t.connect('b', 'cleo')").await;
    browser
        .eval("b", &format!("await t.clients.b.joinParty('{p}')"))
        .await;
    expect_member_joined(bob_events, "cleo").await;
    // Kicked by the browser leader: cleo hears it, bob sees her go.
    browser
        .eval("a", &format!("await t.clients.a.kick('{p}', 'cleo')"))
        .await;
    browser.eval("b", "await t.take('b', 'Kicked')").await;
    assert_eq!(
        browser
            .eval("b", &format!("return t.clients.b.party('{p}') ?? null"))
            .await,
        Value::Null,
        "gone from her roster"
    );
    loop {
        match next(bob_events).await {
            SdkEvent::MemberLeft { member, reason, .. } if member.user_id == "cleo" => {
                assert_eq!(reason, LeaveReason::Kicked);
                break;
            }
            _ => {}
        }
    }
    // Back, and promoted: every roster shows the new leader.
    browser
        .eval("b", &format!("await t.clients.b.joinParty('{p}')"))
        .await;
    expect_member_joined(bob_events, "cleo").await;
    browser
        .eval("a", &format!("await t.clients.a.promote('{p}', 'cleo')"))
        .await;
    let changed = browser
        .eval("b", "return await t.take('b', 'LeaderChanged')")
        .await;
    assert_eq!(changed["leader"]["userId"], "cleo");
    assert_eq!(
        browser
            .eval("b", &format!("return t.clients.b.party('{p}').isLeader"))
            .await,
        true
    );
    loop {
        if let SdkEvent::LeaderChanged { leader, .. } = next(bob_events).await {
            assert_eq!(leader.user_id, "cleo");
            break;
        }
    }
    let party_id: partyline_client::PartyId = p.parse().unwrap();
    assert_eq!(bob.party(party_id).unwrap().leader.user_id, "cleo");
}

/// Cleo (a browser tab) leads ana (a browser tab) and bob (native): her
/// ready check reaches both transports, each roster shows it running with
/// the answers so far, the last answer ends it `AllReady`; a second check
/// she cancels ends `Cancelled`.
async fn ready_checks_across_transports(
    browser: &mut Browser,
    bob: &partyline_client::Client,
    bob_events: &mut partyline_client::Events,
    party: &Value,
) {
    let p = text(party);
    let party_id: partyline_client::PartyId = p.parse().unwrap();
    browser
        .eval(
            "b",
            &format!("await t.clients.b.startReadyCheck('{p}', 'go?', 30000)"),
        )
        .await;
    let check_id = loop {
        if let SdkEvent::ReadyCheckStarted { check, .. } = next(bob_events).await {
            assert_eq!(check.message, "go?");
            assert_eq!(check.started_by.user_id, "cleo");
            break check.check_id;
        }
    };
    let started = browser
        .eval("a", "return await t.take('a', 'ReadyCheckStarted')")
        .await;
    assert_eq!(started["check"]["checkId"], check_id.to_string());
    let asked = |list: &Value| -> Vec<String> {
        let mut users: Vec<String> = list
            .as_array()
            .unwrap()
            .iter()
            .map(|p| text(&p["userId"]))
            .collect();
        users.sort();
        users
    };
    assert_eq!(asked(&started["check"]["ready"]), ["cleo"]);
    assert_eq!(asked(&started["check"]["noAnswer"]), ["ana", "bob"]);
    // The browser answers; bob's roster and ana's own show it.
    browser
        .eval(
            "a",
            &format!("await t.clients.a.answerReadyCheck('{p}', {check_id}n, true)"),
        )
        .await;
    loop {
        if let SdkEvent::ReadyCheckAnswered { member, ready, .. } = next(bob_events).await {
            assert_eq!((member.user_id.as_str(), ready), ("ana", true));
            break;
        }
    }
    let running = bob.party(party_id).unwrap().ready_check.expect("running");
    assert_eq!(running.no_answer.len(), 1);
    browser
        .eval("a", "await t.take('a', 'ReadyCheckAnswered')")
        .await;
    let roster = browser
        .eval("a", &format!("return t.clients.a.party('{p}').readyCheck"))
        .await;
    assert_eq!(asked(&roster["ready"]), ["ana", "cleo"]);
    assert_eq!(asked(&roster["noAnswer"]), ["bob"]);
    // The native member's answer is the last: all ready, in every roster.
    bob.answer_ready_check(party_id, check_id, true)
        .await
        .unwrap();
    for tab in ["a", "b"] {
        let ended = browser
            .eval(
                tab,
                &format!("return await t.take('{tab}', 'ReadyCheckEnded')"),
            )
            .await;
        assert_eq!(ended["outcome"], "AllReady");
        assert_eq!(asked(&ended["ready"]), ["ana", "bob", "cleo"]);
        let roster = browser
            .eval(
                tab,
                &format!("return t.clients.{tab}.party('{p}').readyCheck"),
            )
            .await;
        assert_eq!(roster, Value::Null, "no check runs now");
    }
    // A second check, cancelled by the browser leader.
    browser
        .eval(
            "b",
            &format!("await t.clients.b.startReadyCheck('{p}', '', 60000)"),
        )
        .await;
    browser
        .eval("a", "await t.take('a', 'ReadyCheckStarted')")
        .await;
    browser
        .eval("b", &format!("await t.clients.b.cancelReadyCheck('{p}')"))
        .await;
    let ended = browser
        .eval("a", "return await t.take('a', 'ReadyCheckEnded')")
        .await;
    assert_eq!(ended["outcome"], "Cancelled");
    loop {
        if let SdkEvent::ReadyCheckEnded { outcome, .. } = next(bob_events).await {
            if outcome == ReadyCheckOutcome::Cancelled {
                break;
            }
        }
    }
}

async fn expect_member_joined(events: &mut partyline_client::Events, user: &str) {
    loop {
        if let SdkEvent::MemberJoined { member, .. } = next(events).await {
            assert_eq!(member.user_id, user);
            return;
        }
    }
}

async fn cut_and_resumed(
    browser: &mut Browser,
    relay: &Relay,
    bob: &partyline_client::Client,
    bob_events: &mut partyline_client::Events,
    party: &Value,
) {
    let p = text(party);
    relay.blackhole(true);
    // The server loses ana's connection (its seat is held), and so does
    // her page, which starts resuming.
    loop {
        match next(bob_events).await {
            SdkEvent::MemberConnectionChanged {
                member, connected, ..
            } if member.user_id == "ana" => {
                assert!(!connected);
                break;
            }
            _ => {}
        }
    }
    browser.eval("a", "await t.take('a', 'Reconnecting')").await;
    relay.blackhole(false);
    browser
        .eval("a", "await t.take('a', 'Resumed', 20000)")
        .await;
    loop {
        match next(bob_events).await {
            SdkEvent::MemberConnectionChanged {
                member, connected, ..
            } if member.user_id == "ana" => {
                assert!(connected);
                break;
            }
            _ => {}
        }
    }
    // The same session: its seat, and data both ways again.
    assert_eq!(
        browser
            .eval(
                "a",
                &format!("return t.clients.a.party('{p}').members.length")
            )
            .await,
        3
    );
    browser
        .eval(
            "a",
            &format!(
                "t.stop = false; (async () => {{ while (!t.stop) {{ t.clients.a.sendData('{p}', 11, t.text('after the cut')); await new Promise((r) => setTimeout(r, 100)); }} }})()"
            ),
        )
        .await;
    let data = next_data(bob_events).await;
    browser.eval("a", "t.stop = true").await;
    assert_eq!(&data.data[..], b"after the cut");
    let party_id: partyline_client::PartyId = p.parse().unwrap();
    bob.send_data_reliable(party_id, 12, b"welcome back")
        .await
        .unwrap();
    browser
        .eval(
            "a",
            "const end = Date.now() + 10000;
             while (!t.received.a.some((d) => d.reliable && new TextDecoder().decode(d.data) === 'welcome back')) {
               if (Date.now() > end) throw new Error('no reliable data after the resume');
               await new Promise((r) => setTimeout(r, 20));
             }",
        )
        .await;
}

/// Cleo (a browser tab) creates a party where the best connection leads
/// next; dan (native) joins, and his roster shows the policy. Her roster,
/// refreshed by `getParty` (no event says a connection changed), shows
/// both connections measured: `Good` on loopback, her WebTransport one
/// too. She leaves and dan leads. Back in his party, she hears his change
/// of the policy in `PartyUpdated`.
async fn leader_leaves_to_a_native_member(browser: &mut Browser, server: &TestServer) {
    let party = browser
        .eval(
            "b",
            "return (await t.clients.b.createParty({ maxSize: 3, leaderPolicy: 'ConnectionQuality' })).partyId",
        )
        .await;
    let p = text(&party);
    let party_id: partyline_client::PartyId = p.parse().unwrap();
    let (dan, mut dan_events) = server.client("dan").await;
    dan.join_party(party_id).await.unwrap();
    assert_eq!(
        dan.party(party_id).unwrap().leader_policy,
        LeaderPolicy::ConnectionQuality
    );
    let measured = browser
        .eval(
            "b",
            &format!(
                "const end = Date.now() + 10000;
                 for (;;) {{
                   const party = await t.clients.b.getParty('{p}');
                   const quality = party.members.map((m) => m.quality);
                   if (!quality.includes('Unknown') || Date.now() > end) {{
                     return {{ policy: party.leaderPolicy, quality }};
                   }}
                   await new Promise((r) => setTimeout(r, 100));
                 }}"
            ),
        )
        .await;
    assert_eq!(measured["policy"], "ConnectionQuality");
    assert_eq!(measured["quality"], json!(["Good", "Good"]), "{measured}");
    browser
        .eval("b", &format!("await t.clients.b.leaveParty('{p}')"))
        .await;
    loop {
        if let SdkEvent::LeaderChanged { leader, .. } = next(&mut dan_events).await {
            assert_eq!(leader.user_id, "dan");
            break;
        }
    }
    assert!(dan.party(party_id).unwrap().is_leader());

    browser
        .eval("b", &format!("await t.clients.b.joinParty('{p}')"))
        .await;
    let change = PartyUpdate {
        leader_policy: Some(LeaderPolicy::Tenure),
        ..PartyUpdate::default()
    };
    dan.update_party(party_id, change).await.unwrap();
    let updated = browser
        .eval(
            "b",
            &format!(
                "const e = await t.take('b', 'PartyUpdated');
                 return [e.party.partyId, e.party.leaderPolicy, t.clients.b.party('{p}').leaderPolicy]"
            ),
        )
        .await;
    assert_eq!(updated, json!([p, "Tenure", "Tenure"]));
}

/// Datagram round trips on loopback, median of 5: a browser's through
/// the server to a native echo and back, and a native client's the same
/// way, in the same run.
async fn round_trips(
    browser: &mut Browser,
    server: &TestServer,
    bob: &partyline_client::Client,
    party: &Value,
) {
    let p = text(party);
    let party_id: partyline_client::PartyId = p.parse().unwrap();
    // Bob echoes every datagram with op code 100 as op code 101.
    let (echo, mut echo_events) = server.client("echo").await;
    echo.join_party(party_id).await.unwrap();
    let echoing = tokio::spawn(async move {
        while let Some(event) = echo_events.next().await {
            if let SdkEvent::Data(data) = event {
                if data.op_code == 100 && !data.reliable {
                    let _ = echo.send_data(party_id, 101, &data.data);
                }
            }
        }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    // A datagram may be lost, even here: one not echoed within 500 ms is
    // sent again (and counted), never waited for.
    let measured = browser
        .eval(
            "a",
            &format!(
                "const c = t.clients.a; const times = []; let resent = 0; let waiter = null;
                 // Woken by the echo itself, not by polling: a page's
                 // timers are clamped to 4 ms.
                 c.onEvent((e) => {{ if (e.kind === 'Data' && e.data.opCode === 101 && waiter) waiter(new TextDecoder().decode(e.data.data)); }});
                 for (let i = 0; times.length < 5; i++) {{
                   const tag = 'ping ' + i;
                   const echoed = new Promise((r) => {{ waiter = (text) => {{ if (text === tag) r(true); }}; }});
                   const start = performance.now();
                   c.sendData('{p}', 100, t.text(tag));
                   const ok = await Promise.race([echoed, new Promise((r) => setTimeout(() => r(false), 500))]);
                   if (ok) times.push(performance.now() - start); else resent++;
                   await new Promise((r) => setTimeout(r, 50));
                 }}
                 times.sort((x, y) => x - y);
                 return {{ times, resent }};"
            ),
        )
        .await;
    let browser_ms = &measured["times"];
    let browser_resent = measured["resent"].as_u64().unwrap();
    let browser_median = browser_ms[2].as_f64().unwrap();
    let (carol, mut carol_events) = server.client("carol").await;
    carol.join_party(party_id).await.unwrap();
    let mut native_ms = Vec::new();
    let mut native_resent = 0;
    let mut i = 0;
    while native_ms.len() < 5 {
        i += 1;
        let tag = format!("ping {i}");
        let start = Instant::now();
        carol.send_data(party_id, 100, tag.as_bytes()).unwrap();
        let echoed = async {
            loop {
                match carol_events.next().await {
                    Some(SdkEvent::Data(d)) if d.op_code == 101 && d.data == tag.as_bytes() => {
                        return;
                    }
                    Some(_) => {}
                    None => panic!("carol's session ended"),
                }
            }
        };
        match tokio::time::timeout(Duration::from_millis(500), echoed).await {
            Ok(()) => native_ms.push(start.elapsed().as_secs_f64() * 1000.0),
            Err(_) => native_resent += 1,
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    native_ms.sort_by(f64::total_cmp);
    println!(
        "datagram round trip on loopback, median of 5 (through the server to a native echo and back): \
         browser {browser_median:.2} ms, native {:.2} ms (browser all: {browser_ms}, native all: {native_ms:.2?}; \
         sent again after 500 ms without an echo: browser {browser_resent}, native {native_resent})",
        native_ms[2]
    );
    echoing.abort();
    let _ = bob;
}

/// What one browser session costs the server in memory, next to a native
/// one: a `partyline serve` process of its own, its resident memory read
/// before and after 50 sessions of each kind (each in a party of its own,
/// idle). Run by hand (`cargo test --test browser -- --ignored
/// --nocapture`); BENCHMARKS.md has the figures.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore]
async fn what_a_browser_session_costs_the_server() {
    use std::io::BufRead;
    const SESSIONS: usize = 50;
    let dir = std::env::temp_dir().join(format!("partyline-memory-{}", std::process::id()));
    let mut server = std::process::Command::new(env!("CARGO_BIN_EXE_partyline"))
        .args(["serve", "--listen", "127.0.0.1:0", "--dev-page"])
        .args(["--dev-http", "127.0.0.1:0", "--cert-dir"])
        .arg(&dir)
        .env("NO_COLOR", "1")
        .stderr(Stdio::piped())
        .spawn()
        .expect("partyline serve starts");
    let mut stderr = std::io::BufReader::new(server.stderr.take().unwrap()).lines();
    let (mut quic, mut http) = (None, None);
    for line in stderr.by_ref().map_while(Result::ok) {
        let field = |name: &str| {
            line.split(&format!("{name}="))
                .nth(1)
                .and_then(|rest| rest.split_whitespace().next())
                .and_then(|addr| addr.parse::<std::net::SocketAddr>().ok())
        };
        quic = quic.or(field("addr"));
        http = http.or(field("dev_http"));
        if quic.is_some() && http.is_some() {
            break;
        }
    }
    let (quic, http) = (quic.unwrap(), http.unwrap());
    // Its logs are read to the end: a closed pipe would fail its writes.
    std::thread::spawn(move || stderr.for_each(drop));
    let pid = server.id();
    let rss = || -> f64 {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
        let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
        line.split_whitespace()
            .nth(1)
            .unwrap()
            .parse::<f64>()
            .unwrap()
    };
    // Stopped however the test ends.
    struct Stop(std::process::Child);
    impl Drop for Stop {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let _server = Stop(server);
    let Some(mut browser) = Browser::start(&format!("http://{http}/")).await else {
        return;
    };
    browser.open("m").await;
    // Warm up: one of each, so what is allocated once is not counted.
    browser.eval("m", "await t.connect('w', 'warm')").await;
    let certs = partyline_client::load_certificates(dir.join("cert.pem")).unwrap();
    let config = |user: &str| partyline_client::ClientConfig::dev(quic, certs.clone(), user, user);
    let warm = partyline_client::Client::connect(config("warm-native"))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let before = rss();
    browser
        .eval(
            "m",
            &format!(
                "for (let i = 0; i < {SESSIONS}; i++) {{ await t.connect('c' + i, 'web' + i); await t.clients['c' + i].createParty({{}}); }}"
            ),
        )
        .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let with_browsers = rss();
    let mut natives = Vec::new();
    for i in 0..SESSIONS {
        let (client, events) = partyline_client::Client::connect(config(&format!("native{i}")))
            .await
            .unwrap();
        client
            .create_party(partyline_client::PartySettings::default())
            .await
            .unwrap();
        natives.push((client, events));
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let with_natives = rss();
    println!(
        "server resident memory: {before:.0} KiB, +{SESSIONS} browser sessions {with_browsers:.0} KiB \
         ({:.1} KiB each), +{SESSIONS} native sessions {with_natives:.0} KiB ({:.1} KiB each)",
        (with_browsers - before) / SESSIONS as f64,
        (with_natives - with_browsers) / SESSIONS as f64,
    );
    drop((warm, natives));
    browser.quit().await;
    let _ = std::fs::remove_dir_all(&dir);
}
