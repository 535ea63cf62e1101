//! The listing and the join codes through their public API: paging
//! rules, places kept and lost, filters, code normalization, claims and
//! releases. The property test against a linear scan lives beside the
//! index (src/party/directory/tests.rs), where it can check its insides.

use partyline::party::directory::{normalize_code, JoinCodes, ListingIndex};
use partyline::party::PartyError;
use partyline::protocol::{ListedParty, PartyId, PartySearch, JOIN_CODE_ALPHABET, JOIN_CODE_LEN};
use std::collections::HashSet;

fn party(n: u128) -> PartyId {
    PartyId::from_u128(n)
}

fn listed(n: u128, pairs: &[(&str, &str)]) -> ListedParty {
    ListedParty {
        party_id: party(n),
        members: 1,
        max_size: 4,
        open: true,
        label: format!("party {n}"),
        properties: pairs
            .iter()
            .map(|(key, value)| (key.to_string(), value.to_string()))
            .collect(),
    }
}

fn first_page(limit: u16) -> PartySearch {
    PartySearch {
        limit,
        ..PartySearch::default()
    }
}

fn ids(page: &[ListedParty]) -> Vec<u128> {
    page.iter()
        .map(|entry| entry.party_id.0.as_u128())
        .collect()
}

/// Every party that matches, following the cursors to the end.
fn all_pages(index: &ListingIndex, mut query: PartySearch) -> Vec<u128> {
    let mut found = Vec::new();
    loop {
        let (page, next) = index.search(&query, 100).unwrap();
        found.extend(ids(&page));
        if next == 0 {
            return found;
        }
        query.cursor = next;
    }
}

fn index_of(parties: impl IntoIterator<Item = u128>) -> ListingIndex {
    let mut index = ListingIndex::default();
    for n in parties {
        index.upsert(listed(n, &[]));
    }
    index
}

#[test]
fn limit_zero_is_refused() {
    let index = index_of(1..=3);
    let refused = index.search(&first_page(0), 100);
    assert!(matches!(refused, Err(PartyError::InvalidArgument(_))));
}

#[test]
fn limit_is_clamped_to_max_results() {
    let index = index_of(1..=10);
    let (page, next) = index.search(&first_page(50), 3).unwrap();
    assert_eq!(ids(&page), [1, 2, 3]);
    assert_ne!(next, 0);
}

#[test]
fn next_cursor_is_zero_exactly_when_no_further_party_matches() {
    let index = index_of(1..=4);
    let (page, next) = index.search(&first_page(4), 100).unwrap();
    assert_eq!(page.len(), 4);
    assert_eq!(next, 0, "a full last page says there is no next one");
    let (page, next) = index.search(&first_page(3), 100).unwrap();
    assert_eq!(ids(&page), [1, 2, 3]);
    let (rest, last) = index
        .search(
            &PartySearch {
                cursor: next,
                ..first_page(3)
            },
            100,
        )
        .unwrap();
    assert_eq!((ids(&rest), last), (vec![4], 0));
}

#[test]
fn a_party_keeps_its_place_when_its_entry_changes() {
    let mut index = index_of(1..=3);
    let mut changed = listed(1, &[("mode", "ranked")]);
    changed.members = 3;
    changed.open = false;
    changed.label = "renamed".into();
    index.upsert(changed.clone());
    assert_eq!(index.len(), 3);
    let (page, _) = index.search(&first_page(10), 100).unwrap();
    assert_eq!(ids(&page), [1, 2, 3]);
    assert_eq!(page[0], changed);
}

#[test]
fn a_cursor_stays_valid_while_parties_change_and_leave() {
    let mut index = index_of(1..=6);
    let (page, next) = index.search(&first_page(3), 100).unwrap();
    assert_eq!(ids(&page), [1, 2, 3]);
    // The last party returned leaves, another changes: the next page
    // still starts right after party 3's place.
    index.remove(party(3));
    let mut fuller = listed(5, &[]);
    fuller.members = 2;
    index.upsert(fuller);
    let rest = all_pages(
        &index,
        PartySearch {
            cursor: next,
            ..first_page(3)
        },
    );
    assert_eq!(rest, [4, 5, 6]);
}

#[test]
fn a_party_listed_again_goes_to_the_end() {
    let mut index = index_of(1..=3);
    index.remove(party(1));
    assert_eq!(index.len(), 2);
    index.upsert(listed(1, &[]));
    assert_eq!(all_pages(&index, first_page(2)), [2, 3, 1]);
}

#[test]
fn every_filter_must_hold() {
    let mut index = ListingIndex::default();
    let mut closed = listed(1, &[("mode", "ranked"), ("region", "eu")]);
    closed.open = false;
    index.upsert(closed);
    let mut full = listed(2, &[("mode", "ranked"), ("region", "eu")]);
    full.members = 4;
    index.upsert(full);
    // max_size lowered below the members: no free seat, not a negative number.
    let mut overfull = listed(3, &[("mode", "ranked"), ("region", "eu")]);
    overfull.members = 6;
    index.upsert(overfull);
    index.upsert(listed(4, &[("mode", "casual"), ("region", "eu")]));
    index.upsert(listed(
        5,
        &[("mode", "ranked"), ("region", "eu"), ("map", "dust")],
    ));
    index.upsert(listed(6, &[("mode", "ranked")]));

    let ranked_in_eu = PartySearch {
        properties: [("mode", "ranked"), ("region", "eu")]
            .map(|(key, value)| (key.to_string(), value.to_string()))
            .into(),
        ..first_page(10)
    };
    assert_eq!(all_pages(&index, ranked_in_eu.clone()), [1, 2, 3, 5]);
    let open = PartySearch {
        open_only: true,
        ..ranked_in_eu.clone()
    };
    assert_eq!(all_pages(&index, open), [2, 3, 5]);
    let with_a_seat = PartySearch {
        min_free_seats: 1,
        ..ranked_in_eu.clone()
    };
    assert_eq!(all_pages(&index, with_a_seat), [1, 5]);
    let unknown_value = PartySearch {
        properties: [("region".to_string(), "mars".to_string())].into(),
        ..first_page(10)
    };
    assert_eq!(all_pages(&index, unknown_value), Vec::<u128>::new());
}

#[test]
fn changed_properties_are_found_by_their_new_values_only() {
    let mut index = ListingIndex::default();
    index.upsert(listed(1, &[("mode", "ranked"), ("region", "eu")]));
    index.upsert(listed(1, &[("mode", "casual"), ("region", "eu")]));
    let by = |key: &str, value: &str| PartySearch {
        properties: [(key.to_string(), value.to_string())].into(),
        ..first_page(10)
    };
    assert_eq!(all_pages(&index, by("mode", "ranked")), Vec::<u128>::new());
    assert_eq!(all_pages(&index, by("mode", "casual")), [1]);
    assert_eq!(all_pages(&index, by("region", "eu")), [1]);
}

#[test]
fn codes_are_normalized_from_what_players_type() {
    assert_eq!(normalize_code("abc234").as_deref(), Some("ABC234"));
    assert_eq!(normalize_code(" AbC-234 ").as_deref(), Some("ABC234"));
    assert_eq!(normalize_code("a b c - 2 3 4").as_deref(), Some("ABC234"));
    assert_eq!(
        normalize_code("\tXYZ\u{a0}789\n").as_deref(),
        Some("XYZ789")
    );
}

#[test]
fn look_alike_characters_are_refused() {
    // I, L, O, 0 and 1 are not in the alphabet: read aloud or off a
    // screen they are confused with each other.
    for look_alike in ["I", "L", "O", "0", "1", "i", "l", "o"] {
        let typed = format!("ABC23{look_alike}");
        assert_eq!(normalize_code(&typed), None, "{typed}");
    }
}

#[test]
fn codes_of_the_wrong_length_or_alphabet_are_refused() {
    for typed in [
        "", "ABC23", "ABC2345", "------", "ABC 23", "ABC23É", "ABC23_", "ÅBC234",
    ] {
        assert_eq!(normalize_code(typed), None, "{typed:?}");
    }
}

#[test]
fn claimed_codes_are_unique_and_from_the_alphabet() {
    let mut codes = JoinCodes::default();
    let mut seen = HashSet::new();
    for n in 0..2000 {
        let code = codes.claim(party(n));
        assert_eq!(code.len(), JOIN_CODE_LEN);
        assert!(
            code.bytes().all(|b| JOIN_CODE_ALPHABET.contains(&b)),
            "{code}"
        );
        assert!(seen.insert(code.clone()), "{code} claimed twice");
        assert_eq!(codes.lookup(&code), Some(party(n)));
        assert_eq!(normalize_code(&code).as_deref(), Some(code.as_str()));
    }
    assert_eq!(codes.len(), 2000);
}

#[test]
fn a_code_is_found_as_players_type_it() {
    let mut codes = JoinCodes::default();
    let code = codes.claim(party(1));
    let typed = format!(" {}-{} ", &code[..3], &code[3..]).to_lowercase();
    assert_eq!(codes.lookup(&typed), Some(party(1)));
    assert_eq!(codes.lookup("not a code"), None);
}

#[test]
fn release_frees_a_code_only_while_it_names_that_party() {
    let mut codes = JoinCodes::default();
    let code = codes.claim(party(1));
    codes.release(&code, party(2));
    assert_eq!(
        codes.lookup(&code),
        Some(party(1)),
        "another party's release"
    );
    codes.release(&code, party(1));
    assert_eq!(codes.lookup(&code), None);
    assert!(codes.is_empty());
    codes.release(&code, party(1));
    assert!(codes.is_empty(), "releasing twice is harmless");
}
