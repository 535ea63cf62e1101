//! The listing index against a naive model (a `Vec` in listing order,
//! filtered linearly), with its indexes checked against its entries after
//! every step; and the parts that need the module's insides.

use super::*;
use crate::protocol::KeyValues;
use proptest::prelude::*;

/// Few parties, keys and values, so that searches often match, parties are
/// often replaced and re-listed, and filters combine.
const PARTIES: u128 = 12;
const KEYS: [&str; 3] = ["mode", "region", "extra"];
const VALUES: [&str; 3] = ["a", "b", "c"];

fn party(n: u128) -> PartyId {
    PartyId::from_u128(n + 1)
}

fn key_values(most: usize) -> impl Strategy<Value = KeyValues> {
    proptest::collection::btree_map(0..KEYS.len(), 0..VALUES.len(), 0..=most).prop_map(|pairs| {
        pairs
            .into_iter()
            .map(|(key, value)| (KEYS[key].to_owned(), VALUES[value].to_owned()))
            .collect()
    })
}

fn listed_party() -> impl Strategy<Value = ListedParty> {
    (
        0..PARTIES,
        0u16..=10,
        // Now and then a party far larger than its members, and members
        // above max_size (no free seats, not a negative number of them).
        prop_oneof![4 => 1u16..=10, 1 => Just(256u16)],
        any::<bool>(),
        key_values(3),
        "[a-z]{0,3}",
    )
        .prop_map(
            |(n, members, max_size, open, properties, label)| ListedParty {
                party_id: party(n),
                members,
                max_size,
                open,
                label,
                properties,
            },
        )
}

fn search() -> impl Strategy<Value = PartySearch> {
    (
        any::<bool>(),
        prop_oneof![2 => Just(0u16), 3 => 0u16..=6, 1 => Just(200u16)],
        key_values(2),
        0u16..=5,
    )
        .prop_map(
            |(open_only, min_free_seats, properties, limit)| PartySearch {
                open_only,
                min_free_seats,
                properties,
                limit,
                cursor: 0,
            },
        )
}

#[derive(Clone, Debug)]
enum Step {
    Upsert(ListedParty),
    Remove(u128),
    /// One page, starting after the `start_after`-th listed party (modulo
    /// how many are listed).
    Search {
        query: PartySearch,
        max_results: u16,
        start_after: usize,
    },
    /// Every page, following the cursors.
    PageThrough {
        query: PartySearch,
        max_results: u16,
    },
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        5 => listed_party().prop_map(Step::Upsert),
        1 => (0..PARTIES).prop_map(Step::Remove),
        2 => (search(), 1u16..=6, 0usize..PARTIES as usize).prop_map(
            |(query, max_results, start_after)| Step::Search { query, max_results, start_after }
        ),
        2 => (search(), 1u16..=6).prop_map(|(mut query, max_results)| {
            query.limit = query.limit.max(1);
            Step::PageThrough { query, max_results }
        }),
    ]
}

/// The specification, as plainly as it can be written.
#[derive(Default)]
struct Model {
    in_listing_order: Vec<ListedParty>,
}

impl Model {
    fn upsert(&mut self, entry: ListedParty) {
        match self
            .in_listing_order
            .iter_mut()
            .find(|listed| listed.party_id == entry.party_id)
        {
            Some(listed) => *listed = entry,
            None => self.in_listing_order.push(entry),
        }
    }

    fn remove(&mut self, party_id: PartyId) {
        self.in_listing_order
            .retain(|listed| listed.party_id != party_id);
    }

    fn matches_after(&self, query: &PartySearch, skipped: usize) -> Vec<ListedParty> {
        self.in_listing_order
            .iter()
            .skip(skipped)
            .filter(|listed| {
                // More members than seats (max_size lowered) is no free seat.
                let free_seats = (i32::from(listed.max_size) - i32::from(listed.members)).max(0);
                (listed.open || !query.open_only)
                    && free_seats >= i32::from(query.min_free_seats)
                    && query
                        .properties
                        .iter()
                        .all(|(key, value)| listed.properties.get(key) == Some(value))
            })
            .cloned()
            .collect()
    }
}

/// The cursor that starts after the `skipped`-th listed party, asked of
/// the index itself (places are its business): the next cursor of an
/// unfiltered page of `skipped` parties.
fn cursor_after(index: &ListingIndex, skipped: usize) -> u64 {
    if skipped == 0 {
        return 0;
    }
    let everything = PartySearch {
        limit: u16::try_from(skipped).unwrap(),
        ..PartySearch::default()
    };
    let (page, next) = index.search(&everything, u16::MAX).unwrap();
    assert_eq!(page.len(), skipped);
    assert_ne!(next, 0, "a party follows the {skipped}th");
    next
}

fn check_one_page(
    index: &ListingIndex,
    model: &Model,
    query: &PartySearch,
    max_results: u16,
    start_after: usize,
) {
    let skipped = match model.in_listing_order.len() {
        0 => 0,
        listed => start_after % listed,
    };
    let query = PartySearch {
        cursor: cursor_after(index, skipped),
        ..query.clone()
    };
    let result = index.search(&query, max_results);
    if query.limit == 0 {
        assert!(matches!(result, Err(PartyError::InvalidArgument(_))));
        return;
    }
    let (page, next) = result.unwrap();
    let expected = model.matches_after(&query, skipped);
    let limit = usize::from(query.limit.min(max_results));
    assert_eq!(page, expected[..expected.len().min(limit)]);
    assert_eq!(next != 0, expected.len() > limit, "next cursor {next}");
}

fn check_all_pages(index: &ListingIndex, model: &Model, query: &PartySearch, max_results: u16) {
    let expected = model.matches_after(query, 0);
    let limit = usize::from(query.limit.min(max_results));
    let mut seen = Vec::new();
    let mut query = query.clone();
    for _ in 0..=expected.len() {
        let (page, next) = index.search(&query, max_results).unwrap();
        seen.extend(page.iter().cloned());
        if next == 0 {
            break;
        }
        assert_eq!(page.len(), limit, "a page before the last is full");
        query.cursor = next;
    }
    assert_eq!(seen, expected);
}

proptest! {
    #[test]
    fn listing_index_agrees_with_a_linear_scan(steps in proptest::collection::vec(step(), 1..60)) {
        let mut index = ListingIndex::default();
        let mut model = Model::default();
        for step in steps {
            match step {
                Step::Upsert(entry) => {
                    index.upsert(entry.clone());
                    model.upsert(entry);
                }
                Step::Remove(n) => {
                    index.remove(party(n));
                    model.remove(party(n));
                }
                Step::Search { query, max_results, start_after } => {
                    check_one_page(&index, &model, &query, max_results, start_after);
                }
                Step::PageThrough { query, max_results } => {
                    check_all_pages(&index, &model, &query, max_results);
                }
            }
            index.assert_consistent();
            prop_assert_eq!(index.len(), model.in_listing_order.len());
        }
    }
}

fn entry(n: u128, members: u16, max_size: u16, open: bool, pairs: &[(&str, &str)]) -> ListedParty {
    ListedParty {
        party_id: party(n),
        members,
        max_size,
        open,
        label: format!("party {n}"),
        properties: pairs
            .iter()
            .map(|(key, value)| (key.to_string(), value.to_string()))
            .collect(),
    }
}

fn filter(pairs: &[(&str, &str)]) -> PartySearch {
    PartySearch {
        properties: pairs
            .iter()
            .map(|(key, value)| (key.to_string(), value.to_string()))
            .collect(),
        limit: 10,
        ..PartySearch::default()
    }
}

#[test]
fn no_empty_set_stays_behind() {
    let mut index = ListingIndex::default();
    index.upsert(entry(1, 1, 4, true, &[("mode", "x")]));
    index.upsert(entry(1, 2, 4, true, &[("mode", "y"), ("made-up", "z")]));
    index.upsert(entry(1, 3, 4, false, &[("mode", "y")]));
    index.assert_consistent();
    index.remove(party(1));
    index.assert_consistent();
    assert!(index.by_property.is_empty());
    assert!(index.by_seats.iter().all(BTreeMap::is_empty));
}

#[test]
fn the_narrowest_filter_leads_the_join() {
    let mut index = ListingIndex::default();
    for n in 0..100 {
        let pairs: &[(&str, &str)] = if n % 50 == 0 {
            &[("region", "eu"), ("mode", "rare")]
        } else {
            &[("region", "eu"), ("mode", "casual")]
        };
        // Every tenth party has 5 free seats, the rest 1.
        let max_size = if n % 10 == 0 { 6 } else { 2 };
        index.upsert(entry(n, 1, max_size, n % 2 == 0, pairs));
    }
    let stream_lens = |query: &PartySearch| {
        index
            .filter_streams(query, 1)
            .map(|streams| streams.iter().map(FilterStream::len).collect::<Vec<_>>())
    };
    let rare_in_eu = PartySearch {
        open_only: true,
        ..filter(&[("region", "eu"), ("mode", "rare")])
    };
    assert_eq!(stream_lens(&rare_in_eu), Some(vec![2, 50, 100]));
    let roomy = PartySearch {
        min_free_seats: 5,
        ..filter(&[("region", "eu")])
    };
    assert_eq!(stream_lens(&roomy), Some(vec![10, 100]));
    assert_eq!(stream_lens(&filter(&[("region", "mars")])), None);
    let too_roomy = PartySearch {
        min_free_seats: 6,
        ..filter(&[])
    };
    assert_eq!(stream_lens(&too_roomy), None);
    assert_eq!(stream_lens(&filter(&[])), Some(vec![]));
}

fn set(places: impl IntoIterator<Item = u64>) -> BTreeSet<u64> {
    places.into_iter().collect()
}

#[test]
fn a_place_cursor_steps_then_seeks() {
    let places = set(1..=1000);
    let mut cursor = PlaceCursor::new(&places, 10);
    assert_eq!(cursor.advance_to(0), Some(10), "never moves back");
    assert_eq!(cursor.advance_to(12), Some(12));
    assert_eq!(cursor.advance_to(900), Some(900), "past the steps: a seek");
    assert_eq!(cursor.advance_to(901), Some(901));
    assert_eq!(cursor.advance_to(1001), None);
    assert_eq!(
        cursor.advance_to(5),
        None,
        "a cursor that ran out stays out"
    );
}

#[test]
fn merged_seat_buckets_come_in_place_order() {
    let buckets = [set([1, 4, 9, 40]), set([2, 3, 10]), set([]), set([5])];
    let merged = |from| MergedCursor::new(buckets.iter().collect(), from);
    let all_from = |from| {
        let mut cursor = merged(from);
        let mut places = Vec::new();
        let mut target = 0;
        while let Some(place) = cursor.advance_to(target) {
            places.push(place);
            target = place + 1;
        }
        places
    };
    assert_eq!(all_from(0), [1, 2, 3, 4, 5, 9, 10, 40]);
    assert_eq!(all_from(4), [4, 5, 9, 10, 40]);
    assert_eq!(all_from(41), Vec::<u64>::new());
    let mut cursor = merged(0);
    assert_eq!(cursor.advance_to(6), Some(9));
    assert_eq!(cursor.advance_to(11), Some(40));
    assert_eq!(merged(0).len, 8);
}

#[test]
fn the_join_yields_the_places_every_filter_admits() {
    let odd = set((1..=300).filter(|n| n % 2 == 1));
    let threes = set((1..=300).filter(|n| n % 3 == 0));
    let fives_in_buckets = [
        set((1..=300).filter(|n| n % 10 == 5)),
        set((1..=300).filter(|n| n % 10 == 0)),
    ];
    let join = |from| MatchingPlaces {
        filters: vec![
            FilterStream::Pair(PlaceCursor::new(&threes, from)),
            FilterStream::Pair(PlaceCursor::new(&odd, from)),
            FilterStream::Seats(MergedCursor::new(fives_in_buckets.iter().collect(), from)),
        ],
        proposal: Some(from),
    };
    let expected: Vec<u64> = (1..=300)
        .filter(|n| n % 2 == 1 && n % 3 == 0 && n % 5 == 0)
        .collect();
    assert_eq!(join(1).collect::<Vec<_>>(), expected);
    assert_eq!(
        join(46).collect::<Vec<_>>(),
        [75, 105, 135, 165, 195, 225, 255, 285]
    );
    let nothing_above = set([1, 2]);
    let mut join = MatchingPlaces {
        filters: vec![
            FilterStream::Pair(PlaceCursor::new(&nothing_above, 1)),
            FilterStream::Pair(PlaceCursor::new(&odd, 1)),
        ],
        proposal: Some(1),
    };
    assert_eq!(
        (join.next(), join.next(), join.next()),
        (Some(1), None, None)
    );
}

#[test]
fn code_letters_skip_the_biased_bytes() {
    let alphabet = JOIN_CODE_ALPHABET.len();
    let unbiased = 256 - 256 % alphabet;
    let mut code = String::new();
    let biased: Vec<u8> = (unbiased..256).map(|b| u8::try_from(b).unwrap()).collect();
    push_code_letters(&mut code, &biased);
    assert!(code.is_empty(), "bytes from {unbiased} on are skipped");

    // Every byte below the cut, once: each letter comes out equally often.
    let mut letter_counts = HashMap::new();
    for chunk in (0..unbiased).collect::<Vec<_>>().chunks(JOIN_CODE_LEN) {
        let bytes: Vec<u8> = chunk.iter().map(|&b| u8::try_from(b).unwrap()).collect();
        let mut code = String::new();
        push_code_letters(&mut code, &bytes);
        assert_eq!(code.len(), bytes.len());
        for letter in code.chars() {
            *letter_counts.entry(letter).or_insert(0) += 1;
        }
    }
    assert_eq!(letter_counts.len(), alphabet);
    assert!(letter_counts
        .values()
        .all(|&count| count == unbiased / alphabet));
}

#[test]
fn code_letters_stop_at_the_code_length() {
    let mut code = String::new();
    push_code_letters(&mut code, &[0; 16]);
    assert_eq!(code, "A".repeat(JOIN_CODE_LEN));
}
