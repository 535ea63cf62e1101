//! What spans parties: the listing searched by `SearchParties`, and the
//! join codes. Plain data, kept by the table under one lock and updated
//! while the changed party's shard lock is held, so it never disagrees
//! with the parties for longer than one operation.
//!
//! # The listing index
//!
//! Every listed party has a *place*: a number drawn from a counter when it
//! is listed, kept while it stays listed. Listing order is place order, and
//! a search cursor is a place, so paging neither repeats nor skips a party
//! that stayed listed. Beside the entries (by place), two kinds of index
//! hold ordered sets of places:
//!
//! - by property: `key -> value -> places` of the parties listed with that
//!   pair (one set per distinct pair, dropped when it empties, so values
//!   that clients made up do not stay behind);
//! - by seats: for closed and for open parties, `free seats -> places`.
//!   Free seats are `max_size - members`, 0 to 256, so at most 2 x 257
//!   buckets.
//!
//! A search takes the narrowest *source* of candidates: the set of one of
//! its property pairs, or the k-way merge (in place order) of the seat
//! buckets its `open_only` / `min_free_seats` admit, or every entry when it
//! has no filter. The sizes are known, so the choice costs one lookup per
//! property pair and one per bucket. The source is walked from the cursor
//! on; each candidate's entry is checked against every filter (the source
//! already holds one of them). A missing pair answers at once: no party
//! has it.
//!
//! Costs, with `n` listed parties, `p <= 16` properties per party, `q`
//! pairs in the query and `b <= 514` seat buckets (nine or so in practice):
//!
//! - `upsert` of a new party, and `remove`: `O((p + 1) log n)`;
//! - `upsert` of a listed party: `O(log n + p)` to find it and compare its
//!   properties, plus `O(log n)` when its open flag or free seats changed
//!   (a join, a leave), plus `O(log n)` per property pair that changed.
//!   An entry whose indexed fields did not change (a new label) is only
//!   replaced.
//! - `search`: `O(q + b)` to choose, plus `O(b log n)` to start a seat
//!   merge, plus `O(log n + q log p)` per candidate walked. The walk ends
//!   after `limit + 1` matches (the extra one decides whether a next page
//!   exists) or at the end of the source.
//!
//! So the number of candidates walked is at most the size of the narrowest
//! index (after the cursor), never the number of listed parties unless no
//! filter narrows anything (and then every candidate matches). When the
//! other filters pass a fraction `s` of the source's candidates, a page
//! walks about `(limit + 1) / s` of them. The worst case is a combination
//! that most of the source's candidates fail: `region = eu` with
//! `mode = ranked` when European parties are almost all casual walks every
//! European party; so does the last page of any search, which walks to the
//! end of its source to learn that no further match exists. That is
//! bounded by the narrowest filter's size, not by `n`.

use super::PartyError;
use crate::protocol::{ListedParty, PartyId, PartySearch, JOIN_CODE_ALPHABET, JOIN_CODE_LEN};
use std::cmp::Reverse;
use std::collections::{btree_set, BTreeMap, BTreeSet, BinaryHeap, HashMap};

/// Places of the parties listed with each property pair: `key -> value ->
/// places`. Nested so that a search looks pairs up by `&str` without
/// allocating. std's `HashMap` hashes with random keys: clients choose
/// these strings, so they must not be able to aim at one hash bucket.
type PropertyIndex = HashMap<String, HashMap<String, BTreeSet<u64>>>;

/// Places by free seats, one map for closed parties (index 0) and one for
/// open ones (index 1).
type SeatIndex = [BTreeMap<u16, BTreeSet<u64>>; 2];

/// Listed parties in listing order, indexed for `SearchParties`. See the
/// module docs for the design and its costs.
#[derive(Debug, Default)]
pub struct ListingIndex {
    /// The last place given; places start at 1, so cursor 0 means "from
    /// the start".
    last_place: u64,
    place_of: HashMap<PartyId, u64>,
    by_place: BTreeMap<u64, ListedParty>,
    by_property: PropertyIndex,
    by_seats: SeatIndex,
}

/// Where a search draws its candidates from: the narrowest index.
enum Source<'a> {
    /// Every listed party: the query has no filter that narrows.
    Everything,
    /// The places of one property pair.
    Places(&'a BTreeSet<u64>),
    /// The seat buckets the query admits, merged in place order.
    SeatBuckets(Vec<&'a BTreeSet<u64>>),
    /// Some filter no listed party passes.
    Nothing,
}

impl ListingIndex {
    pub fn len(&self) -> usize {
        self.by_place.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_place.is_empty()
    }

    /// Lists a party, or replaces its entry in place. Called after every
    /// operation on a listed party, so it touches only the indexes whose
    /// fields changed: a join or leave moves the party between two seat
    /// buckets, a new label touches no index.
    pub fn upsert(&mut self, entry: ListedParty) {
        let Some(&place) = self.place_of.get(&entry.party_id) else {
            self.last_place += 1;
            let place = self.last_place;
            self.place_of.insert(entry.party_id, place);
            index_entry(&mut self.by_property, &mut self.by_seats, place, &entry);
            self.by_place.insert(place, entry);
            return;
        };
        let Some(old) = self.by_place.get_mut(&place) else {
            // place_of and by_place change together; should they ever
            // disagree, list the party afresh at the same place.
            index_entry(&mut self.by_property, &mut self.by_seats, place, &entry);
            self.by_place.insert(place, entry);
            return;
        };
        let (old_seats, new_seats) = (seat_bucket(old), seat_bucket(&entry));
        if old_seats != new_seats {
            remove_seats(&mut self.by_seats, old_seats, place);
            add_seats(&mut self.by_seats, new_seats, place);
        }
        if old.properties != entry.properties {
            reindex_properties(&mut self.by_property, place, old, &entry);
        }
        *old = entry;
    }

    pub fn remove(&mut self, party_id: PartyId) {
        let Some(place) = self.place_of.remove(&party_id) else {
            return;
        };
        if let Some(entry) = self.by_place.remove(&place) {
            remove_seats(&mut self.by_seats, seat_bucket(&entry), place);
            for (key, value) in &entry.properties {
                remove_property(&mut self.by_property, key, value, place);
            }
        }
    }

    /// One page of the parties that match `query`, in listing order after
    /// place `query.cursor`, at most `min(query.limit, max_results)` of
    /// them; and the cursor of the next page: the place of the last party
    /// returned when a further party matches, 0 exactly when none does.
    /// `max_results` is the server's limit (at least 1).
    pub fn search(
        &self,
        query: &PartySearch,
        max_results: u16,
    ) -> Result<(Vec<ListedParty>, u64), PartyError> {
        if query.limit == 0 {
            return Err(PartyError::InvalidArgument(
                "limit must be at least 1".into(),
            ));
        }
        let limit = usize::from(query.limit.min(max_results));
        let after = query.cursor.saturating_add(1);
        let page = match self.narrowest_source(query) {
            Source::Nothing => (Vec::new(), 0),
            Source::Everything => collect_page(
                self.by_place
                    .range(after..)
                    .map(|(&place, entry)| (place, entry)),
                query,
                limit,
            ),
            Source::Places(places) => collect_page(
                self.entries_at(places.range(after..).copied()),
                query,
                limit,
            ),
            Source::SeatBuckets(buckets) => collect_page(
                self.entries_at(MergedPlaces::new(&buckets, after)),
                query,
                limit,
            ),
        };
        Ok(page)
    }

    /// The index with the fewest candidates for `query`; ties go to the
    /// cheaper walk (everything, then one set, then a merge).
    fn narrowest_source(&self, query: &PartySearch) -> Source<'_> {
        let mut narrowest = Source::Everything;
        let mut narrowest_len = self.by_place.len();
        for (key, value) in &query.properties {
            let places = self
                .by_property
                .get(key.as_str())
                .and_then(|values| values.get(value.as_str()));
            match places {
                None => return Source::Nothing,
                Some(places) if places.len() < narrowest_len => {
                    narrowest_len = places.len();
                    narrowest = Source::Places(places);
                }
                Some(_) => {}
            }
        }
        if query.open_only || query.min_free_seats > 0 {
            let seats_len: usize = self.seat_buckets(query).map(BTreeSet::len).sum();
            if seats_len == 0 {
                return Source::Nothing;
            }
            if seats_len < narrowest_len {
                narrowest = Source::SeatBuckets(self.seat_buckets(query).collect());
            }
        }
        narrowest
    }

    /// The seat buckets whose parties pass `open_only` and `min_free_seats`.
    fn seat_buckets<'a>(
        &'a self,
        query: &PartySearch,
    ) -> impl Iterator<Item = &'a BTreeSet<u64>> + 'a {
        let open_flags: &'static [usize] = if query.open_only { &[1] } else { &[0, 1] };
        let min_free_seats = query.min_free_seats;
        open_flags
            .iter()
            .flat_map(move |&open| self.by_seats[open].range(min_free_seats..))
            .map(|(_, places)| places)
    }

    fn entries_at<'a>(
        &'a self,
        places: impl Iterator<Item = u64> + 'a,
    ) -> impl Iterator<Item = (u64, &'a ListedParty)> + 'a {
        places.filter_map(|place| self.by_place.get(&place).map(|entry| (place, entry)))
    }

    /// Checks that every index agrees with the entries, and that no empty
    /// set is kept. Tests call it after every step.
    #[cfg(test)]
    fn assert_consistent(&self) {
        assert_eq!(self.place_of.len(), self.by_place.len());
        for (party, place) in &self.place_of {
            assert_eq!(self.by_place[place].party_id, *party);
            assert!(*place <= self.last_place);
        }
        let mut expected_properties = PropertyIndex::new();
        let mut expected_seats = SeatIndex::default();
        for (&place, entry) in &self.by_place {
            index_entry(&mut expected_properties, &mut expected_seats, place, entry);
        }
        assert_eq!(self.by_property, expected_properties);
        assert_eq!(self.by_seats, expected_seats);
    }
}

/// The page from `candidates` (in place order): the first `limit` that
/// match, and the place of the last of them if one more matches, else 0.
fn collect_page<'a>(
    candidates: impl Iterator<Item = (u64, &'a ListedParty)>,
    query: &PartySearch,
    limit: usize,
) -> (Vec<ListedParty>, u64) {
    let mut found = Vec::with_capacity(limit.min(32));
    let mut last = 0;
    for (place, entry) in candidates.filter(|(_, entry)| matches(entry, query)) {
        if found.len() == limit {
            return (found, last);
        }
        found.push(entry.clone());
        last = place;
    }
    (found, 0)
}

fn matches(entry: &ListedParty, query: &PartySearch) -> bool {
    (!query.open_only || entry.open)
        && free_seats(entry) >= query.min_free_seats
        && query
            .properties
            .iter()
            .all(|(k, v)| entry.properties.get(k) == Some(v))
}

fn free_seats(entry: &ListedParty) -> u16 {
    entry.max_size.saturating_sub(entry.members)
}

/// The seat index bucket of an entry: (open flag as an index, free seats).
fn seat_bucket(entry: &ListedParty) -> (usize, u16) {
    (usize::from(entry.open), free_seats(entry))
}

fn index_entry(
    properties: &mut PropertyIndex,
    seats: &mut SeatIndex,
    place: u64,
    entry: &ListedParty,
) {
    add_seats(seats, seat_bucket(entry), place);
    for (key, value) in &entry.properties {
        add_property(properties, key, value, place);
    }
}

fn add_seats(seats: &mut SeatIndex, (open, free): (usize, u16), place: u64) {
    seats[open].entry(free).or_default().insert(place);
}

fn remove_seats(seats: &mut SeatIndex, (open, free): (usize, u16), place: u64) {
    if let Some(places) = seats[open].get_mut(&free) {
        places.remove(&place);
        if places.is_empty() {
            seats[open].remove(&free);
        }
    }
}

fn add_property(properties: &mut PropertyIndex, key: &str, value: &str, place: u64) {
    // Look up by &str first: the key and value strings are copied only
    // when the pair is new to the index.
    if !properties.contains_key(key) {
        properties.insert(key.to_owned(), HashMap::new());
    }
    let Some(values) = properties.get_mut(key) else {
        return;
    };
    if !values.contains_key(value) {
        values.insert(value.to_owned(), BTreeSet::new());
    }
    if let Some(places) = values.get_mut(value) {
        places.insert(place);
    }
}

fn remove_property(properties: &mut PropertyIndex, key: &str, value: &str, place: u64) {
    let Some(values) = properties.get_mut(key) else {
        return;
    };
    if let Some(places) = values.get_mut(value) {
        places.remove(&place);
        if places.is_empty() {
            values.remove(value);
        }
    }
    if values.is_empty() {
        properties.remove(key);
    }
}

/// Moves `place` from the pairs only `old` has to the pairs only `new`
/// has; shared pairs are not touched. At most 16 pairs each, so looking
/// each up in the other map is as quick as a merge and plainer.
fn reindex_properties(
    properties: &mut PropertyIndex,
    place: u64,
    old: &ListedParty,
    new: &ListedParty,
) {
    for (key, value) in &old.properties {
        if new.properties.get(key) != Some(value) {
            remove_property(properties, key, value, place);
        }
    }
    for (key, value) in &new.properties {
        if old.properties.get(key) != Some(value) {
            add_property(properties, key, value, place);
        }
    }
}

/// The places of several disjoint sets from `after` on, in ascending
/// order: a k-way merge on a min-heap of each set's next place.
struct MergedPlaces<'a> {
    next_of_each: BinaryHeap<Reverse<(u64, usize)>>,
    rest_of_each: Vec<btree_set::Range<'a, u64>>,
}

impl<'a> MergedPlaces<'a> {
    fn new(sets: &[&'a BTreeSet<u64>], after: u64) -> Self {
        let mut rest_of_each: Vec<_> = sets.iter().map(|set| set.range(after..)).collect();
        let next_of_each = rest_of_each
            .iter_mut()
            .enumerate()
            .filter_map(|(which, rest)| rest.next().map(|&place| Reverse((place, which))))
            .collect();
        MergedPlaces {
            next_of_each,
            rest_of_each,
        }
    }
}

impl Iterator for MergedPlaces<'_> {
    type Item = u64;

    fn next(&mut self) -> Option<u64> {
        let Reverse((place, which)) = self.next_of_each.pop()?;
        if let Some(&following) = self.rest_of_each.get_mut(which).and_then(Iterator::next) {
            self.next_of_each.push(Reverse((following, which)));
        }
        Some(place)
    }
}

/// Live join codes: each names one party.
#[derive(Debug, Default)]
pub struct JoinCodes {
    by_code: HashMap<String, PartyId>,
}

impl JoinCodes {
    pub fn len(&self) -> usize {
        self.by_code.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_code.is_empty()
    }

    /// A fresh code for `party`, unique among live codes. Drawn from the
    /// system's secure random source: codes must not be predictable.
    pub fn claim(&mut self, party: PartyId) -> String {
        loop {
            let code = random_code();
            if let std::collections::hash_map::Entry::Vacant(slot) = self.by_code.entry(code) {
                let code = slot.key().clone();
                slot.insert(party);
                return code;
            }
        }
    }

    /// Frees `code` if it still names `party`.
    pub fn release(&mut self, code: &str, party: PartyId) {
        if self.by_code.get(code) == Some(&party) {
            self.by_code.remove(code);
        }
    }

    /// The party of a code as a player typed it.
    pub fn lookup(&self, typed: &str) -> Option<PartyId> {
        self.by_code.get(&normalize_code(typed)?).copied()
    }
}

/// Upper case, without spaces and dashes; `None` unless the result is
/// `JOIN_CODE_LEN` characters of the alphabet.
pub fn normalize_code(typed: &str) -> Option<String> {
    let code: String = typed
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .map(|c| c.to_ascii_uppercase())
        .collect();
    let valid =
        code.len() == JOIN_CODE_LEN && code.bytes().all(|b| JOIN_CODE_ALPHABET.contains(&b));
    valid.then_some(code)
}

fn random_code() -> String {
    use ring::rand::SecureRandom;
    let rng = ring::rand::SystemRandom::new();
    let mut code = String::with_capacity(JOIN_CODE_LEN);
    let mut bytes = [0u8; 16];
    while code.len() < JOIN_CODE_LEN {
        if rng.fill(&mut bytes).is_err() {
            // The OS random source failing is not recoverable by us; fall
            // back to a v4 UUID's bytes (also from the OS, via getrandom).
            bytes = *uuid::Uuid::new_v4().as_bytes();
        }
        push_code_letters(&mut code, &bytes);
    }
    code
}

/// Appends one letter per usable random byte until the code is full.
/// Rejection sampling: bytes at or above the largest multiple of the
/// alphabet's size are skipped, as they would favour its first letters.
fn push_code_letters(code: &mut String, random_bytes: &[u8]) {
    let alphabet = JOIN_CODE_ALPHABET.len();
    let unbiased = 256 - 256 % alphabet;
    for &byte in random_bytes {
        if code.len() == JOIN_CODE_LEN {
            break;
        }
        if usize::from(byte) < unbiased {
            code.push(char::from(JOIN_CODE_ALPHABET[usize::from(byte) % alphabet]));
        }
    }
}

/// Both, behind the table's one directory lock.
#[derive(Debug, Default)]
pub struct Directory {
    pub listing: ListingIndex,
    pub codes: JoinCodes,
}

#[cfg(test)]
mod tests;
