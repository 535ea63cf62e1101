//! Heap bytes per event in a session's replay log (BENCHMARKS.md, "Replay
//! log: bytes per event"), measured on a real server over real QUIC.
//!
//! ```text
//! cargo run --release --example replay_log_bytes [EVENTS] [REPLAY_EVENTS] [REPLAY_BYTES]
//! ```
//!
//! Two sessions, `steady-0-0` and `steady-0-1` as in the soak, share a
//! party; the first sends reliable data (64-byte payloads, op code 2, as
//! the soak's steady members do) and the second, connected and reading,
//! receives and logs each as one event. A counting allocator follows the
//! process's live heap bytes; the difference between two quiet moments,
//! after `WARM_UP` events and after `EVENTS` more, divided by how many more
//! events the log then holds, is what one logged event costs. The server,
//! both clients and their connections are in this process, so what else
//! grows between the two moments counts too: the same run with no log
//! (`--replay-events 0`) first shows how much that is, and is taken away.
//! The log holds `min(REPLAY_EVENTS, REPLAY_BYTES / frame)` events at the
//! end (defaults: the server's, 1,024 events and 16 KiB).

use partyline::certs::generate_dev_identity;
use partyline::protocol::{encode_frame, Presence, ServerFrame};
use partyline::server::{Server, ServerConfig, DEFAULT_REPLAY_BYTES};
use partyline_client::{Client, ClientConfig, Event, PartySettings};
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// The system allocator, counting the bytes live (asked for, not what the
/// allocator rounds them up to).
struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(
            new_size as isize - layout.size() as isize,
            Ordering::Relaxed,
        );
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Events logged before the first reading: every buffer on the way has
/// been used once.
const WARM_UP: usize = 16;
const PAYLOAD: [u8; 64] = [7; 64];

/// The replay log's two bounds.
#[derive(Clone, Copy)]
struct Bounds {
    events: usize,
    bytes: usize,
}

fn main() {
    let mut args = std::env::args().skip(1);
    let mut number = |default: usize, what: &str| {
        args.next()
            .map_or(default, |a| a.parse().unwrap_or_else(|_| panic!("{what}")))
    };
    let events = number(2048, "EVENTS");
    let bounds = Bounds {
        events: number(1024, "REPLAY_EVENTS"),
        bytes: number(DEFAULT_REPLAY_BYTES, "REPLAY_BYTES"),
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    // The same run without a log first: what grows besides it.
    let no_log = Bounds {
        events: 0,
        bytes: 0,
    };
    let (control, _) = runtime.block_on(measure(events, no_log));
    let (grown, frame) = runtime.block_on(measure(events, bounds));
    let held = |sent: usize| sent.min(bounds.events).min(bounds.bytes / frame);
    let (held_before, held_after) = (held(WARM_UP), held(WARM_UP + events));
    println!("events sent: {WARM_UP}, then {events} more; each event's frame: {frame} bytes");
    println!(
        "--replay-events {} --replay-bytes {}: the log holds {held_before}, then {held_after} events",
        bounds.events, bounds.bytes
    );
    println!("live heap grew by {grown} bytes; with no log, by {control}");
    if held_after > held_before {
        let per_event = |bytes: isize| bytes as f64 / (held_after - held_before) as f64;
        println!(
            "bytes per logged event: {:.1} ({:.1} before taking away what grew without a log)",
            per_event(grown - control),
            per_event(grown),
        );
    }
}

/// How many bytes the live heap grew by while `events` were logged, and
/// the size of the last one's frame.
async fn measure(events: usize, bounds: Bounds) -> (isize, usize) {
    let (tls, _, _) = generate_dev_identity().expect("dev certificate");
    let certs = tls.chain.clone();
    let mut config = ServerConfig::new("127.0.0.1:0".parse().unwrap(), tls);
    config.replay_events = bounds.events;
    config.replay_bytes = bounds.bytes;
    // The sender is not what is measured: no need to wait out its budget.
    config.command_rate = 0.0;
    config.data_rate = 0.0;
    let server = Server::bind(config).expect("server binds");
    let addr = server.local_addr().expect("address");
    let handle = server.spawn();
    let connect = |user: &str| Client::connect(ClientConfig::dev(addr, certs.clone(), user, user));
    let (sender, _sender_events) = connect("steady-0-0").await.expect("sender connects");
    let (receiver, mut receiver_events) = connect("steady-0-1").await.expect("receiver connects");
    let party = sender
        .create_party(PartySettings {
            open: true,
            max_size: 4,
            label: "soak-steady".to_string(),
            ..PartySettings::default()
        })
        .await
        .expect("party")
        .party_id;
    receiver.join_party(party).await.expect("joined");
    let received = Arc::new(AtomicUsize::new(0));
    let counted = received.clone();
    tokio::spawn(async move {
        while let Some(event) = receiver_events.next().await {
            if let Event::Data(_) = event {
                counted.fetch_add(1, Ordering::Relaxed);
            }
        }
    });
    let send = |count: usize| {
        let (sender, received) = (&sender, &received);
        async move {
            let target = received.load(Ordering::Relaxed) + count;
            for _ in 0..count {
                sender
                    .send_data_reliable(party, 2, &PAYLOAD)
                    .await
                    .expect("sent");
            }
            while received.load(Ordering::Relaxed) < target {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            // Acknowledgements land, buffers drain.
            tokio::time::sleep(Duration::from_millis(500)).await;
            LIVE.load(Ordering::Relaxed)
        }
    };
    let before = send(WARM_UP).await;
    let after = send(events).await;
    // The last event's frame, as the server encodes it.
    let event = partyline::protocol::Event::Data {
        party_id: party,
        sender: Presence {
            user_id: "steady-0-0".into(),
            username: "steady-0-0".into(),
            session_id: sender.session_id(),
        },
        op_code: 2,
        data: PAYLOAD.to_vec().into(),
    };
    let seq = receiver_seq(WARM_UP + events);
    let mut frame = Vec::new();
    encode_frame(&ServerFrame::Event { seq, event }, &mut frame).expect("a frame");
    drop((sender, receiver));
    handle.shutdown().await;
    (after - before, frame.len())
}

/// The receiver's session number of its `n`th data event: its join's reply
/// is no event, so its events are the data alone.
fn receiver_seq(n: usize) -> u64 {
    n as u64
}
