//! The CPU a node spends on a control message between nodes (presence,
//! follows), for the capacity plan of docs/CLUSTER.md: the sender's work
//! (the change, the message encoded behind its header, queued on the
//! receiver's lane) and the receiver's (header and message decoded, the
//! incarnations checked, the message acted on, what it passes on sent),
//! on three nodes of one process on the in-memory hub, driven by hand
//! (`partyline::server::bench_support`). The transport (NATS, its clients'
//! syscalls) is not in it. Each step says how many messages it is; the
//! throughput line is messages per second.
//! Run: `cargo bench --bench control -- --warm-up-time 1 --measurement-time 5`.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use partyline::server::bench_support::ControlPath;
use std::hint::black_box;

/// Bytes per message of each step (headers included), printed once.
fn sizes(path: &mut ControlPath) {
    type Step = fn(&mut ControlPath) -> usize;
    let steps: [(&str, Step); 3] = [
        (
            "status_change_to_owner",
            ControlPath::status_change_unfollowed,
        ),
        (
            "status_change_to_owner_and_follower",
            ControlPath::status_change_followed,
        ),
        (
            "follow_asked_and_answered",
            ControlPath::follow_asked_and_answered,
        ),
    ];
    for (name, step) in steps {
        let before = path.bytes_sent();
        let messages = step(path);
        let bytes = path.bytes_sent() - before;
        println!("control/{name}: {messages} message(s), {bytes} bytes");
    }
}

fn control(c: &mut Criterion) {
    let mut path = ControlPath::new().expect("three nodes on the hub");
    sizes(&mut path);
    let mut group = c.benchmark_group("control");
    // A status change of a user nobody follows: `Presence` to its owner.
    group.throughput(Throughput::Elements(1));
    group.bench_function("status_change_to_owner", |b| {
        b.iter(|| black_box(path.status_change_unfollowed()))
    });
    // Of a followed user: `Presence` to the owner, `Told` on to the
    // follower's node, whose follower gets `StatusChanged`.
    group.throughput(Throughput::Elements(2));
    group.bench_function("status_change_to_owner_and_follower", |b| {
        b.iter(|| black_box(path.status_change_followed()))
    });
    // A follow asked of the owner and answered: `Ask Follow`, `Answer`.
    group.throughput(Throughput::Elements(2));
    group.bench_function("follow_asked_and_answered", |b| {
        b.iter(|| black_box(path.follow_asked_and_answered()))
    });
    group.finish();
}

criterion_group!(benches, control);
criterion_main!(benches);
