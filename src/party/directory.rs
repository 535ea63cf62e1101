//! What spans parties: the listing searched by `SearchParties`, and the
//! join codes. Plain data, kept by the table under one lock and updated
//! while the changed party's shard lock is held, so it never disagrees
//! with the parties for longer than one operation.

use super::PartyError;
use crate::protocol::{ListedParty, PartyId, PartySearch, JOIN_CODE_ALPHABET, JOIN_CODE_LEN};
use std::collections::{BTreeMap, HashMap};

/// Listed parties in listing order: a party keeps its place while it stays
/// listed, so a cursor (the place of the last result) pages without
/// repeating or skipping a party that did not change.
#[derive(Debug, Default)]
pub struct ListingIndex {
    next_place: u64,
    place_of: HashMap<PartyId, u64>,
    by_place: BTreeMap<u64, ListedParty>,
}

impl ListingIndex {
    pub fn len(&self) -> usize {
        self.by_place.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_place.is_empty()
    }

    /// Lists a party, or replaces its entry in place.
    pub fn upsert(&mut self, entry: ListedParty) {
        let place = match self.place_of.get(&entry.party_id) {
            Some(place) => *place,
            None => {
                self.next_place += 1;
                self.place_of.insert(entry.party_id, self.next_place);
                self.next_place
            }
        };
        self.by_place.insert(place, entry);
    }

    pub fn remove(&mut self, party_id: PartyId) {
        if let Some(place) = self.place_of.remove(&party_id) {
            self.by_place.remove(&place);
        }
    }

    /// One page of the parties that match, in listing order, and the
    /// cursor of the next page (0: none).
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
        let mut found = Vec::new();
        let mut last = 0;
        for (place, entry) in self.by_place.range(query.cursor.saturating_add(1)..) {
            if !matches(entry, query) {
                continue;
            }
            if found.len() == limit {
                return Ok((found, last));
            }
            found.push(entry.clone());
            last = *place;
        }
        Ok((found, 0))
    }
}

fn matches(entry: &ListedParty, query: &PartySearch) -> bool {
    (!query.open_only || entry.open)
        && entry.max_size.saturating_sub(entry.members) >= query.min_free_seats
        && query
            .properties
            .iter()
            .all(|(k, v)| entry.properties.get(k) == Some(v))
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
    let alphabet = JOIN_CODE_ALPHABET.len();
    // Rejection sampling: bytes at or above the largest multiple of the
    // alphabet's size would favour its first letters.
    let unbiased = 256 - 256 % alphabet;
    let mut code = String::with_capacity(JOIN_CODE_LEN);
    let mut bytes = [0u8; 16];
    while code.len() < JOIN_CODE_LEN {
        if rng.fill(&mut bytes).is_err() {
            // The OS random source failing is not recoverable by us; fall
            // back to a v4 UUID's bytes (also from the OS, via getrandom).
            bytes = *uuid::Uuid::new_v4().as_bytes();
        }
        for byte in bytes {
            if usize::from(byte) < unbiased && code.len() < JOIN_CODE_LEN {
                code.push(char::from(JOIN_CODE_ALPHABET[usize::from(byte) % alphabet]));
            }
        }
    }
    code
}

/// Both, behind the table's one directory lock.
#[derive(Debug, Default)]
pub struct Directory {
    pub listing: ListingIndex,
    pub codes: JoinCodes,
}
