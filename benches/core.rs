//! Micro-benchmarks of the pieces on the hot path: codecs, the party rules,
//! and the sharded table against a single lock under contention.
//! Run: `cargo bench --bench core`.

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use partyline::party::{BlockList, Link, Party, PartySettings, PartyTable, Seat};
use partyline::protocol::{
    decode_body, decode_client_datagram, encode_client_datagram, encode_frame,
    encode_server_datagram, Event, LeaveReason, PartyId, Presence, ServerFrame, SessionId,
};
use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Clone)]
struct NoLink(SessionId);

impl BlockList for NoLink {
    fn blocks(&self, _: &str) -> bool {
        false
    }
}

impl Link for NoLink {
    fn session_id(&self) -> SessionId {
        self.0
    }
    fn attach(&self, _: PartyId) {}
    fn detach(&self, _: PartyId) {}
}

fn presence(i: u128) -> Presence {
    Presence {
        user_id: format!("user-{i}"),
        username: format!("Player {i}"),
        session_id: SessionId::from_u128(i + 1),
    }
}

fn codecs(c: &mut Criterion) {
    let mut group = c.benchmark_group("codec");
    let party = PartyId::from_u128(7);
    let payload = [0u8; 64];
    group.throughput(Throughput::Elements(1));
    group.bench_function("client_datagram_decode_64B", |b| {
        let datagram = encode_client_datagram(party, 1, &payload);
        b.iter(|| decode_client_datagram(black_box(datagram.clone())))
    });
    group.bench_function("server_datagram_encode_64B", |b| {
        b.iter(|| encode_server_datagram(party, SessionId::from_u128(1), 1, black_box(&payload)))
    });
    let frame = ServerFrame::Event {
        seq: 42,
        event: Event::MemberJoined {
            party_id: party,
            seq: 3,
            presence: presence(1),
        },
    };
    group.bench_function("event_frame_encode", |b| {
        let mut buf = Vec::with_capacity(256);
        b.iter(|| {
            buf.clear();
            encode_frame(black_box(&frame), &mut buf)
        })
    });
    let mut encoded = Vec::new();
    encode_frame(&frame, &mut encoded).unwrap();
    group.bench_function("event_frame_decode", |b| {
        b.iter(|| decode_body::<ServerFrame>(black_box(&encoded[4..])))
    });
    group.finish();
}

fn party_rules(c: &mut Criterion) {
    let mut group = c.benchmark_group("party_rules");
    let now = Instant::now();
    let ttl = Duration::from_secs(300);
    group.bench_function("create_join3_promote_leave4", |b| {
        b.iter(|| {
            let settings = PartySettings {
                open: true,
                max_size: 4,
                label: String::new(),
                invite_policy: Default::default(),
                leader_policy: Default::default(),
            };
            let leader = Seat::new(presence(0), 0u32);
            let mut party =
                Party::create(PartyId::from_u128(1), leader, settings, Default::default()).unwrap();
            for i in 1..4u32 {
                party.join(presence(i.into()), i, now, ttl).unwrap();
            }
            party.promote(SessionId::from_u128(1), "user-2").unwrap();
            for i in 0..4u128 {
                party
                    .leave(SessionId::from_u128(i + 1), LeaveReason::Left)
                    .unwrap();
            }
            black_box(party.is_empty())
        })
    });
    group.finish();
}

/// 1,024 open four-seat parties, each with its leader, on `shards` shards.
fn table_of_parties(shards: usize) -> (PartyTable<NoLink>, Vec<PartyId>) {
    let table = PartyTable::<NoLink>::new(shards);
    let parties = (0..1024u128)
        .map(|i| {
            // Spread over the shards the way random v4 ids would be.
            let id = PartyId::from_u128((i << 64) | (i * 2_654_435_761));
            let leader = Seat::new(
                presence(1_000_000 + i),
                NoLink(SessionId::from_u128(1_000_000 + i)),
            );
            let settings = PartySettings {
                open: true,
                max_size: 4,
                label: String::new(),
                invite_policy: Default::default(),
                leader_policy: Default::default(),
            };
            table
                .create(id, leader, settings, Default::default())
                .unwrap();
            id
        })
        .collect();
    (table, parties)
}

/// join+leave pairs on a table of 1,024 four-seat parties from several
/// threads: the sharded table against the same table with one shard.
fn table_contention(c: &mut Criterion) {
    let mut group = c.benchmark_group("table_join_leave");
    let threads = 2usize;
    let pairs_per_thread = 20_000u64;
    group.throughput(Throughput::Elements(threads as u64 * pairs_per_thread));
    group.sample_size(20);
    for shards in [1usize, 64] {
        let (table, parties) = table_of_parties(shards);
        let (table, parties) = (Arc::new(table), Arc::new(parties));
        group.bench_with_input(
            BenchmarkId::from_parameter(format!("{shards}_shards")),
            &shards,
            |b, _| {
                b.iter(|| {
                    std::thread::scope(|scope| {
                        for t in 0..threads {
                            let table = table.clone();
                            let parties = parties.clone();
                            scope.spawn(move || {
                                let now = Instant::now();
                                for n in 0..pairs_per_thread {
                                    let id = parties[((n as usize) * 7 + t * 13) % parties.len()];
                                    let who = presence(t as u128);
                                    let session = who.session_id;
                                    let link = NoLink(session);
                                    let _ = table.join(
                                        id,
                                        who,
                                        link,
                                        now,
                                        Duration::from_secs(60),
                                        |_, _| {},
                                    );
                                    let _ = table.apply(
                                        id,
                                        |p| p.leave(session, LeaveReason::Left).map(|e| ((), e)),
                                        |_, _| {},
                                    );
                                }
                            });
                        }
                    });
                })
            },
        );
    }
    group.finish();
}

/// The cost of telling one more member: cloning one shared datagram buffer.
fn fan_out(c: &mut Criterion) {
    let mut group = c.benchmark_group("fan_out");
    let datagram: Bytes =
        encode_server_datagram(PartyId::from_u128(1), SessionId::from_u128(2), 1, &[0; 64]);
    for members in [4usize, 64, 256] {
        group.throughput(Throughput::Elements(members as u64 - 1));
        let settings = PartySettings {
            open: true,
            max_size: 256,
            label: String::new(),
            invite_policy: Default::default(),
            leader_policy: Default::default(),
        };
        let mut party = Party::create(
            PartyId::from_u128(1),
            Seat::new(presence(0), 0usize),
            settings,
            Default::default(),
        )
        .unwrap();
        for i in 1..members {
            party
                .join(
                    presence(i as u128),
                    i,
                    Instant::now(),
                    Duration::from_secs(60),
                )
                .unwrap();
        }
        let mut recipients = Vec::with_capacity(members);
        group.bench_with_input(BenchmarkId::from_parameter(members), &members, |b, _| {
            b.iter(|| {
                party
                    .data_recipients(SessionId::from_u128(1), 0, &mut recipients)
                    .unwrap();
                let mut bytes = 0;
                for _ in recipients.drain(..) {
                    bytes += black_box(datagram.clone()).len();
                }
                bytes
            })
        });
    }
    group.finish();
}

/// join+leave pairs on one thread (one core): the table's own speed.
fn table_single_core(c: &mut Criterion) {
    let mut group = c.benchmark_group("table_join_leave_one_core");
    group.throughput(Throughput::Elements(1));
    let (table, parties) = table_of_parties(64);
    let who = presence(7);
    let session = who.session_id;
    let now = Instant::now();
    let mut n = 0usize;
    group.bench_function("pair", |b| {
        b.iter(|| {
            n = n.wrapping_add(7);
            let id = parties[n % parties.len()];
            let _ = table.join(
                id,
                who.clone(),
                NoLink(session),
                now,
                Duration::from_secs(60),
                |_, _| {},
            );
            table.apply(
                id,
                |p| p.leave(session, LeaveReason::Left).map(|e| ((), e)),
                |_, _| {},
            )
        })
    });
    group.finish();
}

criterion_group!(
    benches,
    codecs,
    party_rules,
    table_contention,
    table_single_core,
    fan_out
);
criterion_main!(benches);
