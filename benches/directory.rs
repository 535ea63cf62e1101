//! The party listing with 100,000 listed parties: search latency per kind
//! of query, and the cost of keeping the index current.
//! Run: `cargo bench --bench directory -- --warm-up-time 1 --measurement-time 3`.
//!
//! The mix: 70% open; max_size 2 to 8 with 1 to max_size members; every
//! party has a `mode` (ranked, casual, custom) and a `region` (one of 8);
//! one in five also a `map` (one of 25). South-American parties are never
//! ranked, which makes the worst case below. Drawn from a fixed seed, so
//! every run measures the same listing.

use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use partyline::party::directory::ListingIndex;
use partyline::protocol::{KeyValues, ListedParty, PartyId, PartySearch};
use std::collections::BTreeMap;
use std::hint::black_box;

const LISTED: usize = 100_000;
const MODES: [&str; 3] = ["ranked", "casual", "custom"];
const REGIONS: [&str; 8] = [
    "eu-west", "eu-east", "us-east", "us-west", "sa-east", "ap-south", "ap-east", "oceania",
];
const MAPS: usize = 25;
/// The server's `max_search_results`.
const MAX_RESULTS: u16 = 100;

/// splitmix64: a fixed, dependency-free stream of numbers for the listing.
struct Numbers(u64);

impl Numbers {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, bound: usize) -> usize {
        (self.next() % bound as u64) as usize
    }
}

fn party(numbers: &mut Numbers, n: usize) -> ListedParty {
    let max_size = 2 + numbers.below(7) as u16;
    let members = 1 + numbers.below(usize::from(max_size)) as u16;
    let region = REGIONS[numbers.below(REGIONS.len())];
    let mode = match region {
        "sa-east" => MODES[1 + numbers.below(2)],
        _ => MODES[numbers.below(MODES.len())],
    };
    let mut properties = KeyValues::new();
    properties.insert("mode".into(), mode.into());
    properties.insert("region".into(), region.into());
    if numbers.below(5) == 0 {
        properties.insert("map".into(), format!("map-{}", numbers.below(MAPS)));
    }
    ListedParty {
        party_id: PartyId::from_u128(n as u128 + 1),
        members,
        max_size,
        open: numbers.below(10) < 7,
        label: format!("party {n}"),
        properties,
    }
}

fn listing() -> (ListingIndex, Vec<ListedParty>) {
    let mut numbers = Numbers(0x5EED);
    let parties: Vec<ListedParty> = (0..LISTED).map(|n| party(&mut numbers, n)).collect();
    let mut index = ListingIndex::default();
    for entry in &parties {
        index.upsert(entry.clone());
    }
    (index, parties)
}

fn query(pairs: &[(&str, &str)]) -> PartySearch {
    PartySearch {
        properties: pairs
            .iter()
            .map(|(key, value)| (key.to_string(), value.to_string()))
            .collect(),
        limit: 20,
        ..PartySearch::default()
    }
}

/// The cursor after the first `skipped` matches of `query`, paged the way
/// a client pages.
fn cursor_after(index: &ListingIndex, query: &PartySearch, skipped: usize) -> u64 {
    let mut paging = PartySearch {
        limit: MAX_RESULTS,
        ..query.clone()
    };
    let mut seen = 0;
    while seen < skipped {
        let (page, next) = index.search(&paging, MAX_RESULTS).expect("limit is 100");
        seen += page.len();
        assert_ne!(next, 0, "the query has more than {skipped} matches");
        paging.cursor = next;
    }
    paging.cursor
}

/// The search before the index, for reference: every listed party in
/// listing order, filtered one by one.
fn linear_scan(listing: &BTreeMap<u64, ListedParty>, query: &PartySearch) -> Vec<ListedParty> {
    listing
        .range(query.cursor + 1..)
        .map(|(_, entry)| entry)
        .filter(|entry| matches(entry, query))
        .take(usize::from(query.limit) + 1)
        .cloned()
        .collect()
}

fn matches(entry: &ListedParty, query: &PartySearch) -> bool {
    (!query.open_only || entry.open)
        && entry.max_size.saturating_sub(entry.members) >= query.min_free_seats
        && query
            .properties
            .iter()
            .all(|(key, value)| entry.properties.get(key) == Some(value))
}

fn searches(c: &mut Criterion) {
    let (index, parties) = listing();
    let open_with_room = PartySearch {
        open_only: true,
        min_free_seats: 2,
        ..query(&[])
    };
    let cases = [
        ("first_page_no_filter", query(&[])),
        ("open_with_2_free_seats", open_with_room.clone()),
        ("one_property_region", query(&[("region", "eu-west")])),
        (
            "two_properties_mode_region",
            query(&[("mode", "ranked"), ("region", "eu-west")]),
        ),
        // 1 in 5 has a map, 1 in 25 of those map-7, 1 in 8 in eu-west: ~0.1%.
        (
            "selective_0.1pct_map_region",
            query(&[("map", "map-7"), ("region", "eu-west")]),
        ),
        (
            "deep_page_open_with_2_free_seats_after_20000",
            PartySearch {
                cursor: cursor_after(&index, &open_with_room, 20_000),
                ..open_with_room.clone()
            },
        ),
        // No party is both: the walk covers every sa-east party (12.5%).
        (
            "worst_case_disjoint_pairs_ranked_sa_east",
            query(&[("mode", "ranked"), ("region", "sa-east")]),
        ),
    ];
    let by_place: BTreeMap<u64, ListedParty> = (1..).zip(parties).collect();
    let mut group = c.benchmark_group("directory_search_100k");
    for (name, query) in &cases {
        let (page, _) = index.search(query, MAX_RESULTS).expect("limit is 20");
        let matching = by_place
            .values()
            .filter(|entry| matches(entry, query))
            .count();
        println!(
            "{name}: {} results on the page, {matching} of {LISTED} parties match",
            page.len()
        );
        group.bench_function(*name, |b| {
            b.iter(|| index.search(black_box(query), MAX_RESULTS))
        });
    }
    // The reference on the cases where filters exclude the most.
    for (name, query) in &cases[4..] {
        group.bench_function(format!("reference_linear_scan_{name}"), |b| {
            b.iter(|| linear_scan(&by_place, black_box(query)))
        });
    }
    group.finish();
}

fn updates(c: &mut Criterion) {
    let (mut index, mut current) = listing();
    let mut group = c.benchmark_group("directory_update_100k");
    // Each iteration takes the next party in a fixed stride (7919 is prime
    // to 100,000, so every party comes up once per 100,000 iterations),
    // changes `current` and upserts a copy made outside the timing.
    let mut turn = 0usize;
    let mut next_party = move || {
        turn += 1;
        turn * 7919 % LISTED
    };
    // A join or a leave: members change, so the party moves between seat
    // buckets.
    group.bench_function("upsert_members_change", |b| {
        b.iter_batched(
            || {
                let entry = &mut current[next_party()];
                entry.members = if entry.members == 1 { 2 } else { 1 };
                entry.clone()
            },
            |entry| index.upsert(entry),
            BatchSize::SmallInput,
        )
    });
    // Nothing indexed changed (a new label): the entry is only replaced.
    group.bench_function("upsert_label_change", |b| {
        b.iter_batched(
            || {
                let entry = &mut current[next_party()];
                entry.label = if entry.label.starts_with('p') {
                    entry.label.to_uppercase()
                } else {
                    entry.label.to_lowercase()
                };
                entry.clone()
            },
            |entry| index.upsert(entry),
            BatchSize::SmallInput,
        )
    });
    // Unlisted and listed again: out of every index, back in at the end.
    group.bench_function("remove_and_relist", |b| {
        b.iter_batched(
            || current[next_party()].clone(),
            |entry| {
                index.remove(entry.party_id);
                index.upsert(entry)
            },
            BatchSize::SmallInput,
        )
    });
    group.finish();
    assert_eq!(index.len(), LISTED);
}

criterion_group!(benches, searches, updates);
criterion_main!(benches);
