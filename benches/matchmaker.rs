//! One matchmaking round over 10,000 and 100,000 waiting tickets: 5-versus-5
//! (10 players), 80% solos and 20% parties of 2 or 3, two modes and eight
//! regions required by every ticket, half with a skill window. Reports the
//! time of a whole round; tickets matched per second follow from it (the
//! round matches nearly every ticket: the count is printed once).
use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use partyline::matchmaker::{Pool, Query, Ticket, TicketId};
use std::collections::BTreeMap;
use std::hint::black_box;
use std::time::{Duration, Instant};

const REGIONS: [&str; 8] = ["eu-w", "eu-e", "us-e", "us-w", "sa", "asia", "oce", "me"];

/// A small deterministic generator, so every run measures the same pool.
fn next(seed: &mut u64) -> u64 {
    *seed ^= *seed << 13;
    *seed ^= *seed >> 7;
    *seed ^= *seed << 17;
    *seed
}

fn tickets(count: usize, start: Instant) -> Vec<Ticket<()>> {
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    (0..count)
        .map(|i| {
            let roll = next(&mut seed);
            let players = match roll % 10 {
                0 => 2,
                1 => 3,
                _ => 1,
            };
            let mode = if roll.is_multiple_of(3) {
                "casual"
            } else {
                "ranked"
            };
            let region = REGIONS[(roll >> 8) as usize % REGIONS.len()];
            let skill = (roll >> 16) % 100;
            let mut query = Query::default();
            query.strings.insert("mode".into(), mode.into());
            query.strings.insert("region".into(), region.into());
            if (roll >> 32).is_multiple_of(2) {
                let skill = skill as f64;
                query
                    .ranges
                    .insert("skill".into(), (skill - 30.0, skill + 30.0));
            }
            Ticket {
                id: TicketId(i as u64),
                players,
                min_count: 10,
                max_count: 10,
                count_multiple: 1,
                relaxed_min_count: None,
                strings: BTreeMap::from([
                    ("mode".to_string(), mode.to_string()),
                    ("region".to_string(), region.to_string()),
                ]),
                numbers: BTreeMap::from([("skill".to_string(), skill as f64)]),
                query,
                since: start + Duration::from_micros(i as u64),
                meta: (),
            }
        })
        .collect()
}

fn pool_of(tickets: &[Ticket<()>]) -> Pool<()> {
    let mut pool = Pool::new(1000, None);
    for ticket in tickets {
        pool.insert(ticket.clone());
    }
    pool
}

fn round(c: &mut Criterion) {
    let start = Instant::now();
    let now = start + Duration::from_secs(60);
    let mut group = c.benchmark_group("matchmaker_round");
    group.sample_size(10);
    for count in [10_000usize, 100_000] {
        let all = tickets(count, start);
        let mut once = pool_of(&all);
        let matched: usize = once.run_round(now).iter().map(|m| m.tickets.len()).sum();
        println!(
            "{count} waiting: one round matches {matched} tickets ({} left)",
            once.len()
        );
        group.bench_function(format!("{count}_waiting"), |b| {
            b.iter_batched(
                || pool_of(&all),
                |mut pool| black_box(pool.run_round(now).len()),
                BatchSize::LargeInput,
            )
        });
    }
    group.finish();
}

criterion_group!(benches, round);
criterion_main!(benches);
