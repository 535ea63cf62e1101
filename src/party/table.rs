//! The sharded party table. Every party lives in one of N shards, each
//! behind its own lock, so parties on different shards never contend.
//!
//! Events are handed to the `deliver` callback *after* the shard lock is
//! released, but under the party's own ordering lock, taken while the shard
//! lock was still held. That keeps the shard free for other parties while a
//! large party is being told, and still guarantees that every recipient sees
//! one party's changes in sequence order.

use super::directory::Directory;
use super::{Effects, Party, PartyError, PartySettings, Seat};
use crate::protocol::{
    JoinOutcome, KeyValues, ListedParty, PartyId, PartySearch, PartySnapshot, Presence, SessionId,
};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant};

/// How the table reaches a session. The table keeps each session's set of
/// parties up to date (under the shard lock) so that a session that ends
/// can leave exactly the parties it is in.
pub trait Link: Clone + super::BlockList {
    fn session_id(&self) -> SessionId;
    /// The session now holds a seat or a join request in `party`.
    fn attach(&self, party: PartyId);
    /// The session's seat or request in `party` ended.
    fn detach(&self, party: PartyId);
}

struct Slot<L> {
    party: Party<L>,
    /// Held while this party's events are delivered; see the module docs.
    delivery_order: Arc<Mutex<()>>,
}

type Shard<L> = RwLock<HashMap<PartyId, Slot<L>>>;

pub struct PartyTable<L> {
    shards: Box<[Shard<L>]>,
    /// Listing and join codes. Taken only while a shard lock is held (or
    /// alone, to search), never the other way round.
    directory: Mutex<Directory>,
}

impl<L: Link> PartyTable<L> {
    /// `shards` is rounded up to at least 1.
    pub fn new(shards: usize) -> Self {
        let shards = (0..shards.max(1))
            .map(|_| RwLock::new(HashMap::new()))
            .collect();
        PartyTable {
            shards,
            directory: Mutex::new(Directory::default()),
        }
    }

    fn directory(&self) -> std::sync::MutexGuard<'_, Directory> {
        self.directory
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Listed parties now.
    pub fn listed(&self) -> usize {
        self.directory().listing.len()
    }

    /// Live join codes now.
    pub fn join_codes(&self) -> usize {
        self.directory().codes.len()
    }

    /// One page of listed parties that match `query`, and the next cursor.
    pub fn search(
        &self,
        query: &PartySearch,
        max_results: u16,
    ) -> Result<(Vec<ListedParty>, u64), PartyError> {
        self.directory().listing.search(query, max_results)
    }

    /// `search` with each party's place (see `ListingIndex::search_placed`).
    pub fn search_placed(
        &self,
        query: &PartySearch,
        max_results: u16,
    ) -> Result<(Vec<(u64, ListedParty)>, u64), PartyError> {
        self.directory().listing.search_placed(query, max_results)
    }

    /// Listing places from the clock, ending in `node_byte` (a cluster).
    pub fn use_clock_places(&self, node_byte: u8) {
        self.directory().listing.use_clock_places(node_byte);
    }

    /// The party a typed join code names.
    pub fn party_of_code(&self, typed: &str) -> Result<PartyId, PartyError> {
        // `lookup` normalizes what the player typed.
        self.directory()
            .codes
            .lookup(typed)
            .ok_or(PartyError::JoinCodeNotFound)
    }

    fn shard(&self, id: PartyId) -> &Shard<L> {
        // Party ids are random v4 UUIDs: their low bytes are already uniform.
        let low = id.0.as_u64_pair().1;
        &self.shards[(low % self.shards.len() as u64) as usize]
    }

    /// How many parties exist now.
    pub fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.read().unwrap_or_else(PoisonError::into_inner).len())
            .sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn create(
        &self,
        id: PartyId,
        leader: Seat<L>,
        settings: PartySettings,
        state: KeyValues,
    ) -> Result<PartySnapshot, PartyError> {
        let link = leader.link.clone();
        let party = Party::create(id, leader, settings, state)?;
        let snapshot = party.snapshot();
        let mut shard = self
            .shard(id)
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        link.attach(id);
        shard.insert(
            id,
            Slot {
                party,
                delivery_order: Arc::new(Mutex::new(())),
            },
        );
        Ok(snapshot)
    }

    /// Up to `limit` of what `pick` takes from the parties, shard by shard
    /// (each under its read lock alone), in no particular order.
    pub fn collect<R>(&self, limit: usize, mut pick: impl FnMut(&Party<L>) -> Option<R>) -> Vec<R> {
        let mut found = Vec::new();
        for shard in self.shards.iter() {
            let shard = shard.read().unwrap_or_else(PoisonError::into_inner);
            for slot in shard.values() {
                if found.len() >= limit {
                    return found;
                }
                if let Some(item) = pick(&slot.party) {
                    found.push(item);
                }
            }
        }
        found
    }

    /// Read-only access, for get, list and the data path.
    pub fn read<R>(
        &self,
        id: PartyId,
        f: impl FnOnce(&Party<L>) -> Result<R, PartyError>,
    ) -> Result<R, PartyError> {
        let shard = self
            .shard(id)
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        let slot = shard.get(&id).ok_or(PartyError::PartyNotFound)?;
        f(&slot.party)
    }

    /// Runs one rule on one party, keeps the session links and the
    /// directory up to date, drops the party if it became empty, then calls
    /// `deliver` with the result and the effects (events and invite
    /// notices), outside the shard lock. `deliver` must not block and must
    /// not touch the table.
    pub fn apply<R>(
        &self,
        id: PartyId,
        op: impl FnOnce(&mut Party<L>) -> Result<(R, Effects<L>), PartyError>,
        deliver: impl FnOnce(&R, Effects<L>),
    ) -> Result<R, PartyError> {
        let mut shard = self
            .shard(id)
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        let slot = shard.get_mut(&id).ok_or(PartyError::PartyNotFound)?;
        let was_listed = slot.party.is_listed();
        let (result, mut effects) = op(&mut slot.party)?;
        for link in effects.released.drain(..) {
            link.detach(id);
        }
        let order = Arc::clone(&slot.delivery_order);
        if slot.party.is_empty() {
            effects.ended = Some(id);
            if let Some(gone) = shard.remove(&id) {
                let mut directory = self.directory();
                directory.listing.remove(id);
                if let Some(code) = gone.party.join_code() {
                    directory.codes.release(code, id);
                }
            }
        } else if let Some(entry) = slot.party.listed_entry() {
            self.directory().listing.upsert(entry);
        } else if was_listed {
            self.directory().listing.remove(id);
        }
        let order_guard = order.lock().unwrap_or_else(PoisonError::into_inner);
        drop(shard);
        deliver(&result, effects);
        drop(order_guard);
        Ok(result)
    }

    /// Gives session `session`'s seat or request in party `id` the link
    /// `link` (`Party::relink`); the session sets of both links follow
    /// (`note` is told: old link, new link), nobody else is told. The old
    /// link, or `None` when the session holds nothing there.
    pub fn relink(
        &self,
        id: PartyId,
        session: SessionId,
        link: L,
        note: impl FnOnce(&L, &L),
    ) -> Option<L> {
        let mut shard = self
            .shard(id)
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        let slot = shard.get_mut(&id)?;
        let old = slot.party.relink(session, link.clone())?;
        note(&old, &link);
        Some(old)
    }

    /// Changes a party's own bookkeeping (not its members, settings or
    /// listing: nothing anyone is told of) under its shard lock alone,
    /// without the delivery-order lock `apply` takes. For callers that hold
    /// a lock of their own that delivery may also take (the matchmaking
    /// pool), where `apply` could deadlock.
    pub fn with_party_mut<R>(
        &self,
        id: PartyId,
        op: impl FnOnce(&mut Party<L>) -> Result<R, PartyError>,
    ) -> Result<R, PartyError> {
        let mut shard = self
            .shard(id)
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        let slot = shard.get_mut(&id).ok_or(PartyError::PartyNotFound)?;
        op(&mut slot.party)
    }

    /// Leader only: gives the party a fresh join code (the old one, if
    /// any, stops working) and tells the members.
    pub fn new_join_code(
        &self,
        id: PartyId,
        caller: SessionId,
        deliver: impl FnOnce(&String, Effects<L>),
    ) -> Result<String, PartyError> {
        self.apply(
            id,
            |party| {
                party.check_leader(caller)?;
                let code = self.directory().codes.claim(id);
                let (old, effects) = party.set_join_code(caller, Some(code.clone()))?;
                if let Some(old) = old {
                    self.directory().codes.release(&old, id);
                }
                Ok((code, effects))
            },
            deliver,
        )
    }

    /// Leader only: removes the party's join code and tells the members.
    pub fn clear_join_code(
        &self,
        id: PartyId,
        caller: SessionId,
        deliver: impl FnOnce(&(), Effects<L>),
    ) -> Result<(), PartyError> {
        self.apply(
            id,
            |party| {
                let (old, effects) = party.set_join_code(caller, None)?;
                if let Some(old) = old {
                    self.directory().codes.release(&old, id);
                }
                Ok(((), effects))
            },
            deliver,
        )
    }

    pub fn join(
        &self,
        id: PartyId,
        presence: Presence,
        link: L,
        now: Instant,
        request_ttl: Duration,
        deliver: impl FnOnce(&JoinOutcome, Effects<L>),
    ) -> Result<JoinOutcome, PartyError> {
        self.apply(
            id,
            |party| {
                let outcome = party.join(presence, link.clone(), now, request_ttl)?;
                link.attach(id);
                Ok(outcome)
            },
            deliver,
        )
    }

    /// Expires every join request, invite and ban whose time is up, on
    /// every shard.
    pub fn expire(&self, now: Instant, mut deliver: impl FnMut(Effects<L>)) {
        for shard in self.shards.iter() {
            let due: Vec<PartyId> = shard
                .read()
                .unwrap_or_else(PoisonError::into_inner)
                .iter()
                .filter(|(_, slot)| slot.party.next_expiry().is_some_and(|at| at <= now))
                .map(|(id, _)| *id)
                .collect();
            for id in due {
                // The party may have gone in between: nothing to expire then.
                let _ = self.apply(
                    id,
                    |party| Ok(((), party.expire(now))),
                    |_, effects| deliver(effects),
                );
            }
        }
    }
}
