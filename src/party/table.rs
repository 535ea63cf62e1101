//! The sharded party table. Every party lives in one of N shards, each
//! behind its own lock, so parties on different shards never contend.
//!
//! Events are handed to the `deliver` callback *after* the shard lock is
//! released, but under the party's own ordering lock, taken while the shard
//! lock was still held. That keeps the shard free for other parties while a
//! large party is being told, and still guarantees that every recipient sees
//! one party's changes in sequence order.

use super::{Delivery, Effects, Party, PartyError, PartySettings, Seat};
use crate::protocol::{JoinOutcome, PartyId, PartySnapshot, Presence, SessionId};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant};

/// How the table reaches a session. The table keeps each session's set of
/// parties up to date (under the shard lock) so that a session that ends
/// can leave exactly the parties it is in.
pub trait Link: Clone {
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
}

impl<L: Link> PartyTable<L> {
    /// `shards` is rounded up to at least 1.
    pub fn new(shards: usize) -> Self {
        let shards = (0..shards.max(1))
            .map(|_| RwLock::new(HashMap::new()))
            .collect();
        PartyTable { shards }
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
    ) -> Result<PartySnapshot, PartyError> {
        let link = leader.link.clone();
        let party = Party::create(id, leader, settings)?;
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

    /// Runs one rule on one party, keeps the session links up to date, drops
    /// the party if it became empty, then calls `deliver` with the result
    /// and the events, outside the shard lock. `deliver` must not block and
    /// must not touch the table.
    pub fn apply<R>(
        &self,
        id: PartyId,
        op: impl FnOnce(&mut Party<L>) -> Result<(R, Effects<L>), PartyError>,
        deliver: impl FnOnce(&R, Vec<Delivery<L>>),
    ) -> Result<R, PartyError> {
        let mut shard = self
            .shard(id)
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        let slot = shard.get_mut(&id).ok_or(PartyError::PartyNotFound)?;
        let (result, effects) = op(&mut slot.party)?;
        for link in &effects.released {
            link.detach(id);
        }
        let order = Arc::clone(&slot.delivery_order);
        if slot.party.is_empty() {
            shard.remove(&id);
        }
        let order_guard = order.lock().unwrap_or_else(PoisonError::into_inner);
        drop(shard);
        deliver(&result, effects.deliveries);
        drop(order_guard);
        Ok(result)
    }

    pub fn join(
        &self,
        id: PartyId,
        presence: Presence,
        link: L,
        now: Instant,
        request_ttl: Duration,
        deliver: impl FnOnce(&JoinOutcome, Vec<Delivery<L>>),
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

    /// Expires every join request whose time is up, on every shard.
    pub fn expire_requests(&self, now: Instant, mut deliver: impl FnMut(Vec<Delivery<L>>)) {
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
                    |party| Ok(((), party.expire_requests(now))),
                    |_, deliveries| deliver(deliveries),
                );
            }
        }
    }
}
