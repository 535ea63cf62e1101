//! Limits per player: budgets per user and per source address, beside each
//! session's own, and the count of sessions per user and per address. A
//! user with twenty sessions, or twenty users behind one address, share
//! one budget: opening sessions buys nothing. Pure: time comes in as an
//! argument; the server keeps one behind a mutex (`state::Shared`).
//!
//! Memory is bounded. A table of budgets holds at most `capacity` keys: a
//! key whose buckets are all full again knows nothing worth keeping and
//! goes first, then the keys touched longest ago, so an attacker cycling
//! through fresh keys cannot grow it (each fresh key it brings has a fresh
//! budget anyway: forgetting an old one gives it nothing a new one would
//! not). The session counts are exact and live only as long as sessions.

use super::config::{PlayerBudgets, ServerConfig};
use std::borrow::Borrow;
use std::collections::HashMap;
use std::fmt;
use std::hash::Hash;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::{Duration, Instant};

/// Where a connection comes from, as the per-address limits count it: an
/// IPv4 address, or the /64 network of an IPv6 address (one subscriber's
/// network, where a host may pick any of 2^64 addresses at will).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum AddressKey {
    V4(Ipv4Addr),
    /// The first 64 bits of the address.
    V6Net(u64),
}

impl AddressKey {
    /// The key of `ip`: an IPv4-mapped IPv6 address (a dual-stack socket's
    /// view of an IPv4 client) counts as its IPv4 address.
    pub(crate) fn of(ip: IpAddr) -> AddressKey {
        match ip {
            IpAddr::V4(v4) => AddressKey::V4(v4),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => AddressKey::V4(v4),
                None => AddressKey::V6Net((u128::from(v6) >> 64) as u64),
            },
        }
    }

    /// The key the per-address limits count `ip` under, or `None` for a
    /// source they leave alone: loopback, unless `limit_loopback`.
    pub(crate) fn counted(ip: IpAddr, limit_loopback: bool) -> Option<AddressKey> {
        let loopback = match ip {
            IpAddr::V4(v4) => v4.is_loopback(),
            IpAddr::V6(v6) => {
                v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
            }
        };
        (limit_loopback || !loopback).then(|| AddressKey::of(ip))
    }
}

impl fmt::Display for AddressKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AddressKey::V4(v4) => write!(f, "{v4}"),
            AddressKey::V6Net(net) => write!(f, "{}/64", Ipv6Addr::from(u128::from(*net) << 64)),
        }
    }
}

/// What a budget counts. The order is the index of its bucket.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Budget {
    Invites,
    Follows,
    Tickets,
    JoinRequests,
    Searches,
    JoinCodeAttempts,
    /// Join-code attempts that named no live party: taken when the
    /// attempt is made, given back when the code was found.
    JoinCodeFailures,
}

impl Budget {
    pub(crate) const ALL: [Budget; 7] = [
        Budget::Invites,
        Budget::Follows,
        Budget::Tickets,
        Budget::JoinRequests,
        Budget::Searches,
        Budget::JoinCodeAttempts,
        Budget::JoinCodeFailures,
    ];

    /// Its name in metrics (`budget="..."`).
    pub(crate) fn label(self) -> &'static str {
        match self {
            Budget::Invites => "invites",
            Budget::Follows => "follows",
            Budget::Tickets => "tickets",
            Budget::JoinRequests => "join_requests",
            Budget::Searches => "searches",
            Budget::JoinCodeAttempts => "join_code_attempts",
            Budget::JoinCodeFailures => "join_code_failures",
        }
    }

    /// What it counts, in a refusal's words.
    fn counts(self) -> &'static str {
        match self {
            Budget::Invites => "invites",
            Budget::Follows => "follows",
            Budget::Tickets => "matchmaking tickets",
            Budget::JoinRequests => "joins",
            Budget::Searches => "searches",
            Budget::JoinCodeAttempts => "join-code attempts",
            Budget::JoinCodeFailures => "wrong join codes",
        }
    }

    fn index(self) -> usize {
        self as usize
    }

    /// Its allowance in `budgets`.
    fn allowance(self, budgets: &PlayerBudgets) -> Allowance {
        let (count, per) = match self {
            Budget::Invites => (budgets.invites, MINUTE),
            Budget::Follows => (budgets.follows, MINUTE),
            Budget::Tickets => (budgets.tickets, MINUTE),
            Budget::JoinRequests => (budgets.join_requests, MINUTE),
            Budget::Searches => (budgets.searches, MINUTE),
            Budget::JoinCodeAttempts => (budgets.join_code_attempts, MINUTE),
            Budget::JoinCodeFailures => (budgets.join_code_failures, HOUR),
        };
        Allowance { count, per }
    }
}

const MINUTE: Duration = Duration::from_secs(60);
const HOUR: Duration = Duration::from_secs(3600);
const BUDGETS: usize = Budget::ALL.len();

/// `count` per `per`, all of them at once if wanted: a bucket of `count`
/// that refills at `count / per`. A count of 0 never limits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Allowance {
    pub(crate) count: u32,
    pub(crate) per: Duration,
}

impl Allowance {
    fn unlimited(self) -> bool {
        self.count == 0
    }

    fn burst(self) -> f64 {
        f64::from(self.count)
    }

    fn per_second(self) -> f64 {
        f64::from(self.count) / self.per.as_secs_f64()
    }
}

impl Allowance {
    fn per_words(self) -> &'static str {
        if self.per == HOUR {
            "an hour"
        } else {
            "a minute"
        }
    }
}

#[derive(Clone, Copy, Debug)]
struct Bucket {
    tokens: f64,
    last: Instant,
}

impl Bucket {
    /// Its tokens at `now` (never before its last change).
    fn level(&self, allowance: Allowance, now: Instant) -> f64 {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        (self.tokens + elapsed * allowance.per_second()).min(allowance.burst())
    }

    fn add(&mut self, allowance: Allowance, now: Instant, tokens: f64) {
        let level = self.level(allowance, now);
        self.tokens = (level + tokens).min(allowance.burst());
        self.last = now.max(self.last);
    }
}

#[derive(Debug)]
struct Entry {
    buckets: [Bucket; BUDGETS],
    touched: Instant,
}

/// Budgets by key (a user id, an address), at most `capacity` keys.
#[derive(Debug)]
pub(crate) struct KeyedBudgets<K> {
    allowances: [Allowance; BUDGETS],
    entries: HashMap<K, Entry>,
    capacity: usize,
}

impl<K: Hash + Eq> KeyedBudgets<K> {
    pub(crate) fn new(budgets: &PlayerBudgets, capacity: usize) -> Self {
        KeyedBudgets {
            allowances: Budget::ALL.map(|budget| budget.allowance(budgets)),
            entries: HashMap::new(),
            capacity: capacity.max(1),
        }
    }

    pub(crate) fn allowance(&self, budget: Budget) -> Allowance {
        self.allowances[budget.index()]
    }

    /// The first of `budgets` that `key` has less than one token of.
    fn short<Q>(&self, key: &Q, budgets: &[Budget], now: Instant) -> Option<Budget>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let entry = self.entries.get(key)?;
        budgets.iter().copied().find(|budget| {
            let allowance = self.allowance(*budget);
            !allowance.unlimited() && entry.buckets[budget.index()].level(allowance, now) < 1.0
        })
    }

    /// Takes one of each of `budgets` (that `short` found none short of).
    fn take<Q>(&mut self, key: &Q, budgets: &[Budget], now: Instant)
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ToOwned + ?Sized,
        Q::Owned: Into<K>,
    {
        let allowances = self.allowances;
        let limited = |budget: &&Budget| !allowances[budget.index()].unlimited();
        if !budgets.iter().any(|budget| limited(&budget)) {
            return;
        }
        if !self.entries.contains_key(key) {
            if self.entries.len() >= self.capacity {
                self.make_room(now);
            }
            let full = self.allowances.map(|allowance| Bucket {
                tokens: allowance.burst(),
                last: now,
            });
            self.entries.insert(
                key.to_owned().into(),
                Entry {
                    buckets: full,
                    touched: now,
                },
            );
        }
        if let Some(entry) = self.entries.get_mut(key) {
            entry.touched = entry.touched.max(now);
            for budget in budgets.iter().filter(limited) {
                entry.buckets[budget.index()].add(allowances[budget.index()], now, -1.0);
            }
        }
    }

    /// Gives back one of `budget` taken for something that turned out not
    /// to count (a join code that was found).
    fn give_back<Q>(&mut self, key: &Q, budget: Budget, now: Instant)
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let allowance = self.allowance(budget);
        if let Some(entry) = self.entries.get_mut(key) {
            entry.buckets[budget.index()].add(allowance, now, 1.0);
        }
    }

    /// Keys with less than one token of `budget` at `now`: those over it.
    pub(crate) fn spent(&self, budget: Budget, now: Instant) -> usize {
        let allowance = self.allowance(budget);
        if allowance.unlimited() {
            return 0;
        }
        self.entries
            .values()
            .filter(|entry| entry.buckets[budget.index()].level(allowance, now) < 1.0)
            .count()
    }

    /// Keys tracked now.
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    /// Drops every key whose buckets are all full at `now` (it would start
    /// over the same); if that frees less than an eighth of the table, the
    /// keys touched longest ago too, down to seven eighths. Each call is
    /// linear, and it frees an eighth of the table, so inserts pay for it
    /// in constant time each on average.
    fn make_room(&mut self, now: Instant) {
        let allowances = self.allowances;
        self.entries.retain(|_, entry| {
            !entry
                .buckets
                .iter()
                .zip(allowances)
                .all(|(bucket, allowance)| bucket.level(allowance, now) >= allowance.burst())
        });
        let keep = self.capacity - self.capacity.div_ceil(8);
        if self.entries.len() <= keep {
            return;
        }
        let mut touched: Vec<Instant> = self.entries.values().map(|entry| entry.touched).collect();
        let cut = touched.len() - keep;
        // The `cut`-th oldest: everything touched before it goes, and of
        // those touched exactly then, as many as still must.
        let (_, threshold, _) = touched.select_nth_unstable(cut - 1);
        let threshold = *threshold;
        let mut remaining = cut;
        self.entries.retain(|_, entry| {
            if remaining > 0 && entry.touched <= threshold {
                remaining -= 1;
                false
            } else {
                true
            }
        });
    }
}

/// Whose limit refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Whose {
    User,
    Address,
}

impl Whose {
    pub(crate) const ALL: [Whose; 2] = [Whose::User, Whose::Address];

    /// Its name in metrics (`key="..."`).
    pub(crate) fn label(self) -> &'static str {
        match self {
            Whose::User => "user",
            Whose::Address => "address",
        }
    }
}

/// A command refused by a per-user or per-address budget.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Refusal {
    pub(crate) whose: Whose,
    pub(crate) budget: Budget,
    pub(crate) allowance: Allowance,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let whose = match self.whose {
            Whose::User => "this user, over all its sessions",
            Whose::Address => "this address, over all its sessions",
        };
        let Refusal {
            budget, allowance, ..
        } = self;
        let (count, per) = (allowance.count, allowance.per_words());
        match budget {
            Budget::JoinCodeFailures => write!(
                f,
                "too many wrong join codes: at most {count} {per} for {whose}; try again later"
            ),
            _ => write!(f, "at most {count} {} {per} for {whose}", budget.counts()),
        }
    }
}

/// A new session refused: its user or its address has the most sessions
/// allowed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct SessionLimit {
    pub(crate) whose: Whose,
    pub(crate) max: usize,
}

/// Who is asking: a user, from an address (`None`: not counted).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Player<'a> {
    pub(crate) user: &'a str,
    pub(crate) address: Option<AddressKey>,
}

/// Every limit per user and per address of one node.
#[derive(Debug)]
pub(crate) struct PlayerLimits {
    users: KeyedBudgets<Box<str>>,
    addresses: KeyedBudgets<AddressKey>,
    sessions_of_user: HashMap<Box<str>, usize>,
    sessions_at_address: HashMap<AddressKey, usize>,
    max_per_user: usize,
    max_per_address: usize,
}

/// Keys a table of budgets keeps at least room for: every live session
/// has one user and one address, so `max_sessions` keys serve them all.
const MIN_CAPACITY: usize = 1024;

impl PlayerLimits {
    pub(crate) fn new(config: &ServerConfig) -> Self {
        let capacity = config.max_sessions.max(MIN_CAPACITY);
        Self::with_capacity(config, capacity)
    }

    pub(crate) fn with_capacity(config: &ServerConfig, capacity: usize) -> Self {
        PlayerLimits {
            users: KeyedBudgets::new(&config.per_user, capacity),
            addresses: KeyedBudgets::new(&config.per_address, capacity),
            sessions_of_user: HashMap::new(),
            sessions_at_address: HashMap::new(),
            max_per_user: config.max_sessions_per_user,
            max_per_address: config.max_sessions_per_address,
        }
    }

    /// Counts a new session of `player`, unless its user or its address
    /// has the most allowed already.
    pub(crate) fn admit(&mut self, player: Player) -> Result<(), SessionLimit> {
        let of_user = self.sessions_of_user.get(player.user).copied().unwrap_or(0);
        if self.max_per_user > 0 && of_user >= self.max_per_user {
            return Err(SessionLimit {
                whose: Whose::User,
                max: self.max_per_user,
            });
        }
        if let Some(address) = player.address {
            let at_address = self.sessions_at_address.get(&address).copied().unwrap_or(0);
            if self.max_per_address > 0 && at_address >= self.max_per_address {
                return Err(SessionLimit {
                    whose: Whose::Address,
                    max: self.max_per_address,
                });
            }
            *self.sessions_at_address.entry(address).or_default() += 1;
        }
        *self.sessions_of_user.entry(player.user.into()).or_default() += 1;
        Ok(())
    }

    /// A session `admit` counted has ended.
    pub(crate) fn release(&mut self, player: Player) {
        fn decrement<Q, K>(counts: &mut HashMap<K, usize>, key: &Q)
        where
            K: Borrow<Q> + Hash + Eq,
            Q: Hash + Eq + ?Sized,
        {
            if let Some(count) = counts.get_mut(key) {
                *count = count.saturating_sub(1);
                if *count == 0 {
                    counts.remove(key);
                }
            }
        }
        decrement(&mut self.sessions_of_user, player.user);
        if let Some(address) = player.address {
            decrement(&mut self.sessions_at_address, &address);
        }
    }

    /// Sessions counted now: of `user`, and from `address`.
    #[cfg(test)]
    pub(crate) fn sessions(&self, user: &str, address: Option<AddressKey>) -> (usize, usize) {
        let at = |address| self.sessions_at_address.get(&address).copied();
        (
            self.sessions_of_user.get(user).copied().unwrap_or(0),
            address.and_then(at).unwrap_or(0),
        )
    }

    /// Takes one of each of `budgets` from the player's user and address,
    /// or none of them when one is short (then the refusal names it).
    pub(crate) fn take(
        &mut self,
        player: Player,
        budgets: &[Budget],
        now: Instant,
    ) -> Result<(), Refusal> {
        if let Some(budget) = self.users.short(player.user, budgets, now) {
            return Err(Refusal {
                whose: Whose::User,
                budget,
                allowance: self.users.allowance(budget),
            });
        }
        if let Some(address) = player.address {
            if let Some(budget) = self.addresses.short(&address, budgets, now) {
                return Err(Refusal {
                    whose: Whose::Address,
                    budget,
                    allowance: self.addresses.allowance(budget),
                });
            }
            self.addresses.take(&address, budgets, now);
        }
        self.users.take(player.user, budgets, now);
        Ok(())
    }

    /// Gives back one of `budget` to the player's user and address.
    pub(crate) fn give_back(&mut self, player: Player, budget: Budget, now: Instant) {
        self.users.give_back(player.user, budget, now);
        if let Some(address) = player.address {
            self.addresses.give_back(&address, budget, now);
        }
    }

    /// Users and addresses over `budget` at `now` (the guessing alarm, for
    /// join-code failures).
    pub(crate) fn spent(&self, budget: Budget, now: Instant) -> [(Whose, usize); 2] {
        [
            (Whose::User, self.users.spent(budget, now)),
            (Whose::Address, self.addresses.spent(budget, now)),
        ]
    }

    /// Users and addresses whose budgets are tracked now.
    pub(crate) fn tracked(&self) -> [(Whose, usize); 2] {
        [
            (Whose::User, self.users.len()),
            (Whose::Address, self.addresses.len()),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn config(tweak: impl FnOnce(&mut ServerConfig)) -> ServerConfig {
        static TLS: std::sync::OnceLock<crate::certs::TlsIdentity> = std::sync::OnceLock::new();
        let tls = TLS.get_or_init(|| crate::certs::generate_dev_identity().unwrap().0);
        let mut config = ServerConfig::new("127.0.0.1:0".parse().unwrap(), tls.clone());
        tweak(&mut config);
        config
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    fn player(user: &str, address: &str) -> Player<'static> {
        Player {
            user: Box::leak(user.to_string().into_boxed_str()),
            address: Some(AddressKey::of(ip(address))),
        }
    }

    #[test]
    fn ipv6_counts_per_64_and_ipv4_per_address() {
        let a = AddressKey::of(ip("2001:db8:1:2::1"));
        let b = AddressKey::of(ip("2001:db8:1:2:ffff:ffff:ffff:ffff"));
        let other = AddressKey::of(ip("2001:db8:1:3::1"));
        assert_eq!(a, b, "one /64");
        assert_ne!(a, other);
        assert_eq!(a.to_string(), "2001:db8:1:2::/64");
        assert_ne!(
            AddressKey::of(ip("203.0.113.7")),
            AddressKey::of(ip("203.0.113.8"))
        );
        // A dual-stack socket's view of an IPv4 client is that client.
        assert_eq!(
            AddressKey::of(ip("::ffff:203.0.113.7")),
            AddressKey::of(ip("203.0.113.7"))
        );
    }

    #[test]
    fn loopback_is_left_alone_unless_asked() {
        for source in ["127.0.0.1", "127.1.2.3", "::1", "::ffff:127.0.0.1"] {
            assert_eq!(AddressKey::counted(ip(source), false), None, "{source}");
            assert!(AddressKey::counted(ip(source), true).is_some(), "{source}");
        }
        assert!(AddressKey::counted(ip("10.0.0.1"), false).is_some());
    }

    #[test]
    fn sessions_are_counted_per_user_and_per_address() {
        let config = config(|c| {
            c.max_sessions_per_user = 2;
            c.max_sessions_per_address = 3;
        });
        let mut limits = PlayerLimits::new(&config);
        let ana = player("ana", "198.51.100.1");
        assert_eq!(limits.admit(ana), Ok(()));
        assert_eq!(limits.admit(ana), Ok(()));
        assert_eq!(
            limits.admit(ana),
            Err(SessionLimit {
                whose: Whose::User,
                max: 2
            })
        );
        // The refused one counted nowhere: the address has two.
        assert_eq!(limits.sessions("ana", ana.address), (2, 2));
        assert_eq!(limits.admit(player("bob", "198.51.100.1")), Ok(()));
        assert_eq!(
            limits.admit(player("cyd", "198.51.100.1")),
            Err(SessionLimit {
                whose: Whose::Address,
                max: 3
            })
        );
        limits.release(ana);
        assert_eq!(limits.admit(player("cyd", "198.51.100.1")), Ok(()));
        // Not counted per address: only its user's limit holds.
        let local = Player {
            user: "dan",
            address: None,
        };
        for _ in 0..2 {
            assert_eq!(limits.admit(local), Ok(()));
        }
        for who in ["ana", "bob", "cyd", "dan", "dan"] {
            limits.release(player(who, "198.51.100.1"));
        }
        assert!(limits.sessions_of_user.is_empty() && limits.sessions_at_address.is_empty());
    }

    /// Twenty sessions of one user take from one bucket: the user's 20
    /// wrong codes an hour, however the attempts are spread; then one
    /// every three minutes.
    #[test]
    fn the_failure_budget_is_the_users_and_refills_at_its_rate() {
        let config = config(|_| {});
        let mut limits = PlayerLimits::new(&config);
        let start = Instant::now();
        let guesser = player("mallory", "198.51.100.9");
        let budgets = [Budget::JoinCodeFailures];
        let allowed = (0..200)
            .filter(|_| limits.take(guesser, &budgets, start).is_ok())
            .count();
        assert_eq!(allowed, 20);
        let refusal = limits.take(guesser, &budgets, start).unwrap_err();
        assert_eq!(refusal.whose, Whose::User);
        assert_eq!(
            refusal.to_string(),
            "too many wrong join codes: at most 20 an hour for this user, over all its sessions; try again later"
        );
        assert_eq!(
            limits.spent(Budget::JoinCodeFailures, start)[0],
            (Whose::User, 1)
        );
        let later = start + Duration::from_secs(180);
        assert!(limits.take(guesser, &budgets, later).is_ok());
        assert!(limits.take(guesser, &budgets, later).is_err());
        // A found code gives its token back.
        limits.give_back(guesser, Budget::JoinCodeFailures, later);
        assert!(limits.take(guesser, &budgets, later).is_ok());
        // Another user from elsewhere is untouched.
        assert!(limits
            .take(player("ana", "203.0.113.1"), &budgets, later)
            .is_ok());
    }

    /// Twenty users behind one address share the address's 100 wrong codes
    /// an hour, though each has 20 of its own.
    #[test]
    fn users_behind_one_address_share_its_budget() {
        let config = config(|_| {});
        let mut limits = PlayerLimits::new(&config);
        let now = Instant::now();
        let budgets = [Budget::JoinCodeAttempts, Budget::JoinCodeFailures];
        let users: Vec<String> = (0..20).map(|n| format!("user-{n}")).collect();
        let mut allowed = 0;
        let mut refusals = Vec::new();
        for round in 0..10 {
            for user in &users {
                let who = player(user, "198.51.100.20");
                match limits.take(who, &budgets, now + Duration::from_millis(round)) {
                    Ok(()) => allowed += 1,
                    Err(refusal) => refusals.push(refusal),
                }
            }
        }
        assert_eq!(allowed, 100);
        assert!(refusals
            .iter()
            .all(|r| r.whose == Whose::Address && r.budget == Budget::JoinCodeFailures));
        // A refusal spent nothing: no user's bucket went below the
        // address's share of it.
        assert_eq!(
            limits.spent(Budget::JoinCodeFailures, now)[0],
            (Whose::User, 0)
        );
    }

    #[test]
    fn a_refusal_by_one_budget_takes_from_none() {
        let config = config(|c| {
            c.per_user.invites = 2;
            c.per_address.invites = 3;
        });
        let mut limits = PlayerLimits::new(&config);
        let now = Instant::now();
        let ana = player("ana", "198.51.100.1");
        let bob = player("bob", "198.51.100.1");
        let invites = [Budget::Invites];
        assert!(limits.take(ana, &invites, now).is_ok());
        assert!(limits.take(ana, &invites, now).is_ok());
        assert_eq!(
            limits.take(ana, &invites, now).unwrap_err().whose,
            Whose::User
        );
        // ana's refusal did not spend the address's third invite.
        assert!(limits.take(bob, &invites, now).is_ok());
        assert_eq!(
            limits.take(bob, &invites, now).unwrap_err().whose,
            Whose::Address
        );
        assert_eq!(
            limits.take(bob, &invites, now).unwrap_err().to_string(),
            "at most 3 invites a minute for this address, over all its sessions"
        );
    }

    #[test]
    fn zero_means_unlimited_and_tracks_nothing() {
        let config = config(|c| {
            c.per_user = PlayerBudgets::UNLIMITED;
            c.per_address = PlayerBudgets::UNLIMITED;
            c.max_sessions_per_user = 0;
            c.max_sessions_per_address = 0;
        });
        let mut limits = PlayerLimits::new(&config);
        let now = Instant::now();
        let ana = player("ana", "198.51.100.1");
        for _ in 0..10_000 {
            assert!(limits.take(ana, &Budget::ALL, now).is_ok());
            assert!(limits.admit(ana).is_ok());
        }
        assert_eq!(limits.tracked(), [(Whose::User, 0), (Whose::Address, 0)]);
    }

    #[test]
    fn a_table_at_capacity_drops_the_idle_first_then_the_oldest() {
        let config = config(|_| {});
        let mut table: KeyedBudgets<u32> = KeyedBudgets::new(&config.per_user, 8);
        let start = Instant::now();
        let search = [Budget::Searches];
        for key in 0..8 {
            table.take(&key, &search, start + Duration::from_secs(u64::from(key)));
        }
        assert_eq!(table.len(), 8);
        // A minute on, every bucket is full again: all of them may go.
        let later = start + Duration::from_secs(120);
        table.take(&100, &search, later);
        assert_eq!(table.len(), 1);
        // Spent keys are kept as long as room allows, the oldest go first.
        for key in 0..8 {
            table.take(
                &key,
                &search,
                later + Duration::from_millis(u64::from(key) + 1),
            );
        }
        assert!(table.len() <= 8);
        assert!(table.entries.contains_key(&7), "the newest stays");
        assert!(!table.entries.contains_key(&100), "the oldest went");
    }

    proptest! {
        /// However many keys come and go, a table never holds more than its
        /// capacity, and a key's allowance is never passed within a window
        /// it stays in the table.
        #[test]
        fn a_table_stays_within_its_capacity(
            capacity in 1usize..40,
            steps in proptest::collection::vec((0u32..200, 0u64..5_000), 1..400),
        ) {
            let config = config(|c| c.per_user.invites = 3);
            let mut table: KeyedBudgets<u32> = KeyedBudgets::new(&config.per_user, capacity);
            let start = Instant::now();
            let mut now = start;
            for (key, advance_ms) in steps {
                now += Duration::from_millis(advance_ms);
                if table.short(&key, &[Budget::Invites], now).is_none() {
                    table.take(&key, &[Budget::Invites], now);
                }
                prop_assert!(table.len() <= capacity);
                if let Some(entry) = table.entries.get(&key) {
                    let level = entry.buckets[Budget::Invites.index()].level(table.allowance(Budget::Invites), now);
                    prop_assert!((0.0..=3.0).contains(&level));
                }
            }
        }

        /// Within one instant, a user takes exactly its allowance, however
        /// many sessions (calls) ask.
        #[test]
        fn one_instant_gives_exactly_the_allowance(count in 1u32..50, asks in 1usize..300) {
            let config = config(|c| c.per_user.searches = count);
            let mut limits = PlayerLimits::new(&config);
            let now = Instant::now();
            let who = Player { user: "u", address: None };
            let allowed = (0..asks).filter(|_| limits.take(who, &[Budget::Searches], now).is_ok()).count();
            prop_assert_eq!(allowed, asks.min(count as usize));
        }
    }
}
