//! The matchmaker's rules: which waiting tickets go into a match together.
//! Plain data in, matches out: no async, no I/O, time as an argument, so
//! the rules are property-tested and benchmarked alone. The server keeps
//! the tickets, runs [`Pool::run_round`] on its interval, and tells players.
//!
//! A ticket is a solo player or a whole party: it is never split, so a
//! party is always in the same match. A match is a set of tickets whose
//! player count suits every one of them (within its min and max, and a
//! multiple of its count multiple) and whose queries all hold, both ways.
//!
//! One round serves the longest-waiting tickets first: each unmatched
//! ticket, oldest first, seeds a group, and the tickets after it in waiting
//! order join while they fit; the group becomes a match at its largest
//! size that suits everyone. Candidates come from the most selective index
//! the seed's query allows (tickets that have one of its required string
//! properties), and each seed looks at no more than a bounded number of
//! them, so a round costs O(tickets × that bound) at worst.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

mod token;
pub use token::{
    derive_match_key, mint_match_token, verify_match_token, MatchClaims, MatchPlayer,
    MatchTokenError, MATCH_KEY_BYTES, MATCH_KEY_INFO,
};

/// Names a ticket inside one pool.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TicketId(pub u64);

/// What a ticket requires of every other ticket in its match.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Query {
    /// The other ticket's string property `key` must equal this value.
    pub strings: BTreeMap<String, String>,
    /// The other ticket's numeric property `key` must lie in [min, max].
    pub ranges: BTreeMap<String, (f64, f64)>,
}

/// A ticket as the rules see it.
#[derive(Clone, Debug, PartialEq)]
pub struct Ticket<M> {
    pub id: TicketId,
    /// Players it brings: 1 for a solo ticket, the party's size for a
    /// party's.
    pub players: u32,
    pub min_count: u32,
    pub max_count: u32,
    pub count_multiple: u32,
    /// The minimum after `Pool::relax_after` of waiting, if lower.
    pub relaxed_min_count: Option<u32>,
    pub strings: BTreeMap<String, String>,
    pub numbers: BTreeMap<String, f64>,
    pub query: Query,
    pub since: Instant,
    /// The caller's own data (who is in it, which party): untouched here.
    pub meta: M,
}

/// Why a ticket is refused before it waits.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TicketError {
    #[error("min_count {min} and max_count {max}: need 1 <= min <= max")]
    Counts { min: u32, max: u32 },
    #[error("count_multiple must be at least 1")]
    Multiple,
    #[error("the ticket brings {players} players, more than its max_count {max}")]
    TooMany { players: u32, max: u32 },
    #[error("a numeric range of the query has min above max, or is not a number")]
    Range,
    #[error("no player count from {lowest} to {max} is a multiple of count_multiple {multiple}: the ticket could never be matched")]
    NoCount {
        lowest: u32,
        max: u32,
        multiple: u32,
    },
}

/// Whether some count from `lowest` to `max` is a multiple of `multiple`
/// (at least 1): without one, no match can ever suit the ticket.
pub fn count_possible(lowest: u32, max: u32, multiple: u32) -> bool {
    multiple > 0 && (max / multiple) * multiple >= lowest.max(1)
}

/// The lowest minimum a ticket can reach: `min_count`, or its relaxed
/// minimum once that applies (never below 1, never above `min_count`).
pub fn lowest_minimum(min_count: u32, relaxed_min_count: Option<u32>) -> u32 {
    match relaxed_min_count {
        Some(relaxed) => relaxed.clamp(1, min_count.max(1)),
        None => min_count,
    }
}

impl<M> Ticket<M> {
    /// Checks the counts and query of a ticket about to wait.
    pub fn validate(&self) -> Result<(), TicketError> {
        if self.min_count == 0 || self.min_count > self.max_count {
            return Err(TicketError::Counts {
                min: self.min_count,
                max: self.max_count,
            });
        }
        if self.count_multiple == 0 {
            return Err(TicketError::Multiple);
        }
        if self.players > self.max_count {
            return Err(TicketError::TooMany {
                players: self.players,
                max: self.max_count,
            });
        }
        // A match holds at least this ticket's own players.
        let lowest = lowest_minimum(self.min_count, self.relaxed_min_count).max(self.players);
        if !count_possible(lowest, self.max_count, self.count_multiple) {
            return Err(TicketError::NoCount {
                lowest,
                max: self.max_count,
                multiple: self.count_multiple,
            });
        }
        let bad_range = |(min, max): &(f64, f64)| min.is_nan() || max.is_nan() || min > max;
        if self.query.ranges.values().any(bad_range) || self.numbers.values().any(|n| n.is_nan()) {
            return Err(TicketError::Range);
        }
        Ok(())
    }

    fn min_at(&self, now: Instant, relax_after: Option<Duration>) -> u32 {
        match (self.relaxed_min_count, relax_after) {
            (Some(relaxed), Some(after)) if now.saturating_duration_since(self.since) >= after => {
                relaxed.clamp(1, self.min_count)
            }
            _ => self.min_count,
        }
    }

    /// Whether this ticket's query holds for `other`'s properties.
    pub fn accepts<N>(&self, other: &Ticket<N>) -> bool {
        self.query
            .strings
            .iter()
            .all(|(key, value)| other.strings.get(key) == Some(value))
            && self.query.ranges.iter().all(|(key, (min, max))| {
                other
                    .numbers
                    .get(key)
                    .is_some_and(|n| *min <= *n && *n <= *max)
            })
    }
}

/// Both queries hold.
pub fn compatible<M, N>(a: &Ticket<M>, b: &Ticket<N>) -> bool {
    a.accepts(b) && b.accepts(a)
}

/// A match made in a round: its tickets, oldest first.
#[derive(Clone, Debug, PartialEq)]
pub struct Match<M> {
    pub tickets: Vec<Ticket<M>>,
}

impl<M> Match<M> {
    pub fn players(&self) -> u32 {
        self.tickets.iter().map(|t| t.players).sum()
    }
}

/// Whether `players` suits every ticket of a group at `now`.
pub fn count_suits<M>(
    tickets: &[&Ticket<M>],
    players: u32,
    now: Instant,
    relax_after: Option<Duration>,
) -> bool {
    tickets.iter().all(|t| {
        t.min_at(now, relax_after) <= players
            && players <= t.max_count
            && players.is_multiple_of(t.count_multiple)
    })
}

/// The waiting tickets, in waiting order, with an index of who has which
/// string property.
pub struct Pool<M> {
    /// Waiting order: (since, id), so equal times keep submission order.
    waiting: BTreeMap<(Instant, TicketId), Ticket<M>>,
    key_of: HashMap<TicketId, (Instant, TicketId)>,
    /// (key, value) -> tickets with that string property, in waiting order.
    with_string: HashMap<(String, String), BTreeMap<(Instant, TicketId), ()>>,
    /// Candidates one seed may look at in a round (bounds the cost).
    pub scan_limit: usize,
    /// After this long waiting, a ticket's `relaxed_min_count` applies.
    pub relax_after: Option<Duration>,
}

impl<M: Clone> Pool<M> {
    pub fn new(scan_limit: usize, relax_after: Option<Duration>) -> Self {
        Pool {
            waiting: BTreeMap::new(),
            key_of: HashMap::new(),
            with_string: HashMap::new(),
            scan_limit: scan_limit.max(1),
            relax_after,
        }
    }

    pub fn len(&self) -> usize {
        self.waiting.len()
    }

    pub fn is_empty(&self) -> bool {
        self.waiting.is_empty()
    }

    pub fn get(&self, id: TicketId) -> Option<&Ticket<M>> {
        self.key_of.get(&id).and_then(|key| self.waiting.get(key))
    }

    /// Adds a valid ticket (the caller validated it and keeps ids unique).
    pub fn insert(&mut self, ticket: Ticket<M>) {
        let key = (ticket.since, ticket.id);
        for (k, v) in &ticket.strings {
            self.with_string
                .entry((k.clone(), v.clone()))
                .or_default()
                .insert(key, ());
        }
        self.key_of.insert(ticket.id, key);
        self.waiting.insert(key, ticket);
    }

    /// Takes a ticket out (cancelled, or matched).
    pub fn remove(&mut self, id: TicketId) -> Option<Ticket<M>> {
        let key = self.key_of.remove(&id)?;
        let ticket = self.waiting.remove(&key)?;
        for (k, v) in &ticket.strings {
            let index = (k.clone(), v.clone());
            if let Some(list) = self.with_string.get_mut(&index) {
                list.remove(&key);
                if list.is_empty() {
                    self.with_string.remove(&index);
                }
            }
        }
        Some(ticket)
    }

    /// The tickets after `seed` (in waiting order) that a match with it
    /// could hold: those with the rarest string property its query requires,
    /// or every later ticket when it requires none.
    fn candidates(&self, seed: &Ticket<M>) -> Vec<(Instant, TicketId)> {
        let from = (seed.since, seed.id);
        let rarest = seed
            .query
            .strings
            .iter()
            .map(|(k, v)| self.with_string.get(&(k.clone(), v.clone())))
            .min_by_key(|list| list.map_or(0, |l| l.len()));
        let after = (std::ops::Bound::Excluded(from), std::ops::Bound::Unbounded);
        match rarest {
            // It requires a property nobody has: nothing can join it.
            Some(None) => Vec::new(),
            Some(Some(list)) => list
                .range(after)
                .take(self.scan_limit)
                .map(|(key, ())| *key)
                .collect(),
            None => self
                .waiting
                .range(after)
                .take(self.scan_limit)
                .map(|(key, _)| *key)
                .collect(),
        }
    }

    /// One round: the matches it makes, oldest seed first. Matched tickets
    /// leave the pool; the rest wait on.
    pub fn run_round(&mut self, now: Instant) -> Vec<Match<M>> {
        let mut matches = Vec::new();
        let seeds: Vec<(Instant, TicketId)> = self.waiting.keys().copied().collect();
        for seed_key in seeds {
            // Matched earlier in this round.
            let Some(seed) = self.waiting.get(&seed_key) else {
                continue;
            };
            let mut group: Vec<&Ticket<M>> = vec![seed];
            let mut players = seed.players;
            let mut best = count_suits(&group, players, now, self.relax_after).then_some(1);
            // The largest size every member allows, and the smallest size
            // every member needs: a candidate that would make the group
            // unable to satisfy both is passed over, not let in to block.
            let mut room = seed.max_count;
            let mut need = seed.min_at(now, self.relax_after);
            for key in self.candidates(seed) {
                if players == room {
                    break;
                }
                let Some(candidate) = self.waiting.get(&key) else {
                    continue;
                };
                let new_room = room.min(candidate.max_count);
                let new_need = need.max(candidate.min_at(now, self.relax_after));
                let fits = players + candidate.players <= new_room
                    && new_need <= new_room
                    && group.iter().all(|member| compatible(*member, candidate));
                if !fits {
                    continue;
                }
                group.push(candidate);
                players += candidate.players;
                room = new_room;
                need = new_need;
                if count_suits(&group, players, now, self.relax_after) {
                    best = Some(group.len());
                }
            }
            let Some(size) = best else {
                continue;
            };
            let ids: Vec<TicketId> = group[..size].iter().map(|t| t.id).collect();
            let tickets = ids.into_iter().filter_map(|id| self.remove(id)).collect();
            matches.push(Match { tickets });
        }
        matches
    }
}

#[cfg(test)]
mod tests;
