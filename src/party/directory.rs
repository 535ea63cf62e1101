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
//! A search is a join of one sorted stream of places per filter: one per
//! property pair (its set), and one for `open_only` / `min_free_seats`
//! (the k-way merge, in place order, of the seat buckets they admit). A
//! pair no party has, or no admitted bucket, answers at once. A query
//! with no filter reads the entries in place order.
//!
//! The join is a leapfrog: the narrowest stream proposes a place; every
//! other stream skips forward to its first place at or after it; a stream
//! that lands beyond the proposal makes that the next proposal, and the
//! narrowest skips to it. A place every stream lands on matches, and only
//! then is its entry read. Skipping takes a few steps along the set (the
//! gaps are usually short and the steps are cheap and sequential), then a
//! fresh descent from the root when the gap is longer. No entry of a
//! candidate that fails is ever read: the streams are plain `u64` sets.
//!
//! Costs, with `n` listed parties, `p <= 16` properties per party, `f` the
//! filter streams of a query (its pairs, plus one for seats) and `b` the
//! seat buckets it admits (at most 2 x 257, about nine in practice):
//!
//! - `upsert` of a new party, and `remove`: `O((p + 1) log n)`;
//! - `upsert` of a listed party: `O(log n + p)` to find it and compare its
//!   properties, plus `O(log n)` when its open flag or free seats changed
//!   (a join, a leave), plus `O(log n)` per property pair that changed.
//!   An entry whose indexed fields did not change (a new label) is only
//!   replaced.
//! - `search`: `O((f + b) log n)` to place every stream at the cursor;
//!   then each round of the join moves the proposal past at least one
//!   place of the narrowest stream, and costs at most `O(log n)` per
//!   stream (the seat stream: `O(log n + log b)` per bucket it moves);
//!   then `O(log n)` and a clone per result. The join ends after `limit + 1`
//!   matches (the extra one decides whether a next page exists), or as
//!   soon as any stream runs out: no further match can exist.
//!
//! So a search takes at most as many rounds as the narrowest filter has
//! places after the cursor, never a walk over every listed party. Filters
//! that agree often end it after about `limit + 1` rounds. The worst case
//! is filters that each hold many parties but rarely the same ones:
//! `mode = ranked` with `region = sa-east` when South-American parties
//! are almost never ranked takes about one round per South-American
//! party, though it reads no entry (benches/directory.rs measures this
//! case). The last page of a search pays the same to learn that no further
//! match exists.

use super::PartyError;
use crate::protocol::{
    ListedParty, PartyId, PartySearch, JOIN_CODE_ALPHABET, JOIN_CODE_LEN, MAX_NAME_BYTES,
    MAX_PROPERTY_BYTES, MAX_PROPERTY_ENTRIES,
};
use std::cmp::Reverse;
use std::collections::{btree_set, BTreeMap, BTreeSet, BinaryHeap, HashMap};

/// Refuses a search no answer could serve: a `limit` of 0, or property
/// filters beyond what a listing may hold (`ListParty`'s own limits: at
/// most `MAX_PROPERTY_ENTRIES` pairs, keys of 1 to `MAX_NAME_BYTES`, at
/// most `MAX_PROPERTY_BYTES` of keys and values). Such filters could never
/// match a party, and checking them would cost the search for nothing.
pub fn check_search(query: &PartySearch) -> Result<(), PartyError> {
    let invalid = |message: String| Err(PartyError::InvalidArgument(message));
    if query.limit == 0 {
        return invalid("limit must be at least 1".into());
    }
    let filters = &query.properties;
    if filters.len() > MAX_PROPERTY_ENTRIES {
        return invalid(format!(
            "a search filters on at most {MAX_PROPERTY_ENTRIES} properties, got {}",
            filters.len()
        ));
    }
    if let Some(key) = filters
        .keys()
        .find(|key| key.is_empty() || key.len() > MAX_NAME_BYTES)
    {
        return invalid(format!(
            "property filter keys must be 1 to {MAX_NAME_BYTES} bytes, got {}",
            key.len()
        ));
    }
    let bytes: usize = filters.iter().map(|(k, v)| k.len() + v.len()).sum();
    if bytes > MAX_PROPERTY_BYTES {
        return invalid(format!(
            "property filters hold at most {MAX_PROPERTY_BYTES} bytes of keys and values, got {bytes}"
        ));
    }
    Ok(())
}

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
    /// In a cluster: places from the clock (microseconds, then this
    /// node's byte), so that the nodes' listings merge into one order.
    clock_places: Option<u8>,
    place_of: HashMap<PartyId, u64>,
    by_place: BTreeMap<u64, ListedParty>,
    by_property: PropertyIndex,
    by_seats: SeatIndex,
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
            self.last_place = self.next_place();
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

    /// Draws places from the clock from now on, ending in `node_byte`: in
    /// a cluster, every node's places then sort together in listing time
    /// (two nodes collide only with the same byte in the same microsecond).
    pub fn use_clock_places(&mut self, node_byte: u8) {
        self.clock_places = Some(node_byte);
    }

    fn next_place(&self) -> u64 {
        match self.clock_places {
            None => self.last_place + 1,
            Some(node_byte) => {
                let micros = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX >> 8));
                let base = (self.last_place >> 8).saturating_add(1).max(micros);
                (base << 8) | u64::from(node_byte)
            }
        }
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
        let (page, next) = self.search_placed(query, max_results)?;
        Ok((page.into_iter().map(|(_, entry)| entry).collect(), next))
    }

    /// `search`, with each party's place (for merging the pages of the
    /// nodes of a cluster).
    pub fn search_placed(
        &self,
        query: &PartySearch,
        max_results: u16,
    ) -> Result<(Vec<(u64, ListedParty)>, u64), PartyError> {
        check_search(query)?;
        let limit = usize::from(query.limit.min(max_results));
        let after = query.cursor.saturating_add(1);
        let Some(filters) = self.filter_streams(query, after) else {
            return Ok((Vec::new(), 0));
        };
        let page = if filters.is_empty() {
            collect_page(
                self.by_place
                    .range(after..)
                    .map(|(&place, entry)| (place, entry)),
                query,
                limit,
            )
        } else {
            let matching = MatchingPlaces {
                filters,
                proposal: Some(after),
            };
            collect_page(
                matching.filter_map(|place| self.by_place.get(&place).map(|entry| (place, entry))),
                query,
                limit,
            )
        };
        Ok(page)
    }

    /// One stream of places per filter of `query`, from `after` on, the
    /// narrowest first; `None` when a filter holds no party at all.
    fn filter_streams(&self, query: &PartySearch, after: u64) -> Option<Vec<FilterStream<'_>>> {
        let mut filters = Vec::with_capacity(query.properties.len() + 1);
        for (key, value) in &query.properties {
            let places = self.by_property.get(key.as_str())?.get(value.as_str())?;
            filters.push(FilterStream::Pair(PlaceCursor::new(places, after)));
        }
        if query.open_only || query.min_free_seats > 0 {
            // Empty buckets are dropped, so no bucket means no party.
            let buckets: Vec<_> = self.seat_buckets(query).collect();
            if buckets.is_empty() {
                return None;
            }
            filters.push(FilterStream::Seats(MergedCursor::new(buckets, after)));
        }
        filters.sort_by_key(FilterStream::len);
        Some(filters)
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

/// The page from `matching` (in place order): the first `limit`, and the
/// place of the last of them if one more follows, else 0.
fn collect_page<'a>(
    matching: impl Iterator<Item = (u64, &'a ListedParty)>,
    query: &PartySearch,
    limit: usize,
) -> (Vec<(u64, ListedParty)>, u64) {
    let mut found = Vec::with_capacity(limit.min(32));
    let mut last = 0;
    for (place, entry) in matching {
        debug_assert!(matches(entry, query), "the index disagrees with {entry:?}");
        if found.len() == limit {
            return (found, last);
        }
        found.push((place, entry.clone()));
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

/// How many places a cursor steps along its set before it descends from
/// the root instead: stepping is sequential and cheap, a descent costs
/// `O(log n)` scattered reads. Tests, with their small listings, take 2
/// so that both ways are exercised.
const STEPS_BEFORE_SEEK: usize = if cfg!(test) { 2 } else { 8 };

/// A position in one set of places that only moves forward.
struct PlaceCursor<'a> {
    set: &'a BTreeSet<u64>,
    rest: btree_set::Range<'a, u64>,
    head: Option<u64>,
}

impl<'a> PlaceCursor<'a> {
    fn new(set: &'a BTreeSet<u64>, from: u64) -> Self {
        let mut rest = set.range(from..);
        let head = rest.next().copied();
        PlaceCursor { set, rest, head }
    }

    /// Moves to the first place at or after `target`.
    fn advance_to(&mut self, target: u64) -> Option<u64> {
        for _ in 0..STEPS_BEFORE_SEEK {
            match self.head {
                Some(place) if place < target => self.head = self.rest.next().copied(),
                _ => return self.head,
            }
        }
        if self.head.is_some_and(|place| place < target) {
            *self = PlaceCursor::new(self.set, target);
        }
        self.head
    }
}

/// Several disjoint sets of places as one, in ascending order: a k-way
/// merge on a min-heap of each set's next place.
struct MergedCursor<'a> {
    heads: BinaryHeap<Reverse<(u64, usize)>>,
    sets: Vec<PlaceCursor<'a>>,
    len: usize,
}

impl<'a> MergedCursor<'a> {
    fn new(sets: Vec<&'a BTreeSet<u64>>, from: u64) -> Self {
        let len = sets.iter().map(|set| set.len()).sum();
        let sets: Vec<_> = sets
            .into_iter()
            .map(|set| PlaceCursor::new(set, from))
            .collect();
        let heads = sets
            .iter()
            .enumerate()
            .filter_map(|(which, set)| set.head.map(|place| Reverse((place, which))))
            .collect();
        MergedCursor { heads, sets, len }
    }

    /// Moves to the first place at or after `target`, in any of the sets.
    fn advance_to(&mut self, target: u64) -> Option<u64> {
        loop {
            let &Reverse((place, which)) = self.heads.peek()?;
            if place >= target {
                return Some(place);
            }
            self.heads.pop();
            if let Some(next) = self
                .sets
                .get_mut(which)
                .and_then(|set| set.advance_to(target))
            {
                self.heads.push(Reverse((next, which)));
            }
        }
    }
}

/// The places one filter of a search admits.
enum FilterStream<'a> {
    /// The parties listed with one property pair.
    Pair(PlaceCursor<'a>),
    /// The parties in the seat buckets the query admits.
    Seats(MergedCursor<'a>),
}

impl FilterStream<'_> {
    /// Places in the whole stream, cursor or not: what ranks the narrowest.
    fn len(&self) -> usize {
        match self {
            FilterStream::Pair(cursor) => cursor.set.len(),
            FilterStream::Seats(merged) => merged.len,
        }
    }

    fn advance_to(&mut self, target: u64) -> Option<u64> {
        match self {
            FilterStream::Pair(cursor) => cursor.advance_to(target),
            FilterStream::Seats(merged) => merged.advance_to(target),
        }
    }
}

/// The places every filter admits, ascending: the leapfrog join of the
/// module docs. `filters` is narrowest first and not empty.
struct MatchingPlaces<'a> {
    filters: Vec<FilterStream<'a>>,
    /// The next place to try (every place before it has been answered);
    /// `None` once past the last possible place.
    proposal: Option<u64>,
}

impl Iterator for MatchingPlaces<'_> {
    type Item = u64;

    fn next(&mut self) -> Option<u64> {
        let (narrowest, others) = self.filters.split_first_mut()?;
        'propose: loop {
            let place = narrowest.advance_to(self.proposal?)?;
            for other in others.iter_mut() {
                // A stream that runs out ends every further match.
                let landed = other.advance_to(place)?;
                if landed > place {
                    self.proposal = Some(landed);
                    continue 'propose;
                }
            }
            self.proposal = place.checked_add(1);
            return Some(place);
        }
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
