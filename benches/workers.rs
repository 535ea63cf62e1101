//! What a party datagram costs when its sender and its recipient sit on
//! different workers of one process (`serve --workers 2`), against one
//! worker: three parties, one sender (A) and one recipient each, over real
//! QUIC on loopback, coalescing off, 16-byte payloads. One iteration is one
//! datagram from A's client to the recipient's client, sent once the
//! previous one arrived (a ping-pong of one-way deliveries: latency, not
//! throughput).
//!
//! - `same_worker`: A and B on worker 0, the party homed there: no hop.
//! - `cross_worker`: A on worker 0, C on worker 1, the party homed on
//!   A's: one hop, worker 0 to worker 1.
//! - `via_home`: A and B on worker 0, the party homed on worker 1 (made
//!   there by C, who left it): A's datagram goes to the home and comes
//!   back, two hops.
//!
//! The clients run on this thread, the workers on theirs: on a 2-core
//! machine they share the cores. Run: `cargo bench --bench workers`.

use criterion::{criterion_group, criterion_main, Criterion};
use partyline::certs::generate_dev_identity;
use partyline::server::{ServerConfig, Workers, WorkersConfig, WorkersHandle};
use partyline_client::{Client, ClientConfig, Event, Events, PartyId, PartySettings};
use rustls::pki_types::CertificateDer;
use std::time::{Duration, Instant};
use tokio::runtime::Runtime;

/// A client and its events.
struct Player {
    client: Client,
    events: Events,
}

/// One measured path: who sends, to which party, and who receives.
struct Path {
    party: PartyId,
    receiver: usize,
}

struct Setup {
    players: Vec<Player>,
    same_worker: Path,
    cross_worker: Path,
    via_home: Path,
}

const A: usize = 0;
const B: usize = 1;
const C: usize = 2;

fn start() -> (WorkersHandle, Vec<CertificateDer<'static>>) {
    let (tls, _, _) = generate_dev_identity().expect("dev certificate");
    let certs = tls.chain.clone();
    let mut config = ServerConfig::new("127.0.0.1:0".parse().expect("address"), tls);
    // Each datagram on its own: the window would dwarf the hop.
    config.coalesce = Duration::ZERO;
    config.data_rate = 0.0;
    let handle = Workers::start(config, WorkersConfig::new(2), None).expect("workers start");
    (handle, certs)
}

/// Connects clients until two sit on worker 0 and one on worker 1 (the
/// kernel places each by its random first id), and forms the parties.
async fn setup(handle: &WorkersHandle, certs: &[CertificateDer<'static>]) -> Setup {
    let mut on = [Vec::new(), Vec::new()];
    for n in 0..64 {
        if on[0].len() >= 2 && !on[1].is_empty() {
            break;
        }
        let user = format!("bench-{n}");
        let config = ClientConfig::dev(handle.local_addr(), certs.to_vec(), &user, &user);
        let (client, events) = Client::connect(config).await.expect("connects");
        let id = client.session_id();
        let sessions = handle.api().sessions().await;
        let node = sessions
            .iter()
            .find(|info| info.session_id == id)
            .map(|info| info.node.clone())
            .expect("the session is listed");
        let worker = usize::from(node == "w1");
        on[worker].push(Player { client, events });
    }
    let [mut zero, mut one] = on;
    assert!(
        zero.len() >= 2 && !one.is_empty(),
        "clients on both workers"
    );
    let players = vec![zero.remove(0), zero.remove(0), one.remove(0)];
    let settings = PartySettings {
        open: true,
        max_size: 4,
        ..PartySettings::default()
    };
    let create = |who: usize| players[who].client.create_party(settings.clone());
    let same = create(A).await.expect("party").party_id;
    players[B].client.join_party(same).await.expect("joins");
    let cross = create(A).await.expect("party").party_id;
    players[C].client.join_party(cross).await.expect("joins");
    let far = create(C).await.expect("party").party_id;
    players[A].client.join_party(far).await.expect("joins");
    players[B].client.join_party(far).await.expect("joins");
    players[C].client.leave_party(far).await.expect("leaves");
    let mut setup = Setup {
        players,
        same_worker: Path {
            party: same,
            receiver: B,
        },
        cross_worker: Path {
            party: cross,
            receiver: C,
        },
        via_home: Path {
            party: far,
            receiver: B,
        },
    };
    // The events of forming the parties, out of the way.
    tokio::time::sleep(Duration::from_millis(200)).await;
    for player in &mut setup.players {
        while player.events.try_next().is_some() {}
    }
    setup
}

/// `iters` deliveries on `path`, one after the other; their total time.
async fn deliveries(players: &mut [Player], path: &Path, iters: u64) -> Duration {
    let started = Instant::now();
    for _ in 0..iters {
        loop {
            players[A]
                .client
                .send_data(path.party, 1, &[7u8; 16])
                .expect("sent");
            // A datagram may be lost: sent again after a while.
            let wait = tokio::time::timeout(Duration::from_millis(200), async {
                loop {
                    match players[path.receiver].events.next().await {
                        Some(Event::Data(data)) if data.party_id == path.party => return,
                        Some(_) => continue,
                        None => panic!("the receiver's events ended"),
                    }
                }
            });
            if wait.await.is_ok() {
                break;
            }
        }
    }
    started.elapsed()
}

fn delivery(c: &mut Criterion) {
    let runtime: Runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let (handle, certs) = start();
    let mut setup = runtime.block_on(setup(&handle, &certs));
    let mut group = c.benchmark_group("worker_delivery");
    for (name, path) in [
        ("same_worker", &setup.same_worker),
        ("cross_worker", &setup.cross_worker),
        ("via_home", &setup.via_home),
    ] {
        let players = &mut setup.players;
        group.bench_function(name, |b| {
            b.iter_custom(|iters| runtime.block_on(deliveries(players, path, iters)))
        });
    }
    group.finish();
    runtime.block_on(handle.shutdown());
}

criterion_group!(benches, delivery);
criterion_main!(benches);
