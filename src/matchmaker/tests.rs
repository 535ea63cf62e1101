use super::*;

fn ticket(id: u64, players: u32, min: u32, max: u32, at: Instant) -> Ticket<()> {
    Ticket {
        id: TicketId(id),
        players,
        min_count: min,
        max_count: max,
        count_multiple: 1,
        relaxed_min_count: None,
        strings: BTreeMap::new(),
        numbers: BTreeMap::new(),
        query: Query::default(),
        since: at,
        meta: (),
    }
}

fn ids(m: &Match<()>) -> Vec<u64> {
    m.tickets.iter().map(|t| t.id.0).collect()
}

#[test]
fn squads_of_two_and_three_with_solos_fill_five_versus_five() {
    let t0 = Instant::now();
    let mut pool = Pool::new(1000, None);
    let at = |s: u64| t0 + Duration::from_millis(s);
    pool.insert(ticket(1, 2, 10, 10, at(0))); // a duo
    pool.insert(ticket(2, 3, 10, 10, at(1))); // a trio
    for id in 3..=7 {
        pool.insert(ticket(id, 1, 10, 10, at(id)));
    }
    pool.insert(ticket(8, 3, 10, 10, at(8))); // another trio: 2+3+5 solos = 10 already
    let matches = pool.run_round(at(100));
    assert_eq!(matches.len(), 1);
    assert_eq!(ids(&matches[0]), vec![1, 2, 3, 4, 5, 6, 7]);
    assert_eq!(matches[0].players(), 10);
    assert_eq!(pool.len(), 1, "the second trio waits");
}

#[test]
fn a_party_fills_a_match_alone_when_its_size_fits() {
    let t0 = Instant::now();
    let mut pool = Pool::new(1000, None);
    pool.insert(ticket(1, 4, 4, 4, t0));
    let matches = pool.run_round(t0);
    assert_eq!(matches.len(), 1);
    assert_eq!(ids(&matches[0]), vec![1]);
}

#[test]
fn a_party_larger_than_its_max_is_refused_up_front() {
    let t = ticket(1, 5, 2, 4, Instant::now());
    assert_eq!(
        t.validate(),
        Err(TicketError::TooMany { players: 5, max: 4 })
    );
    assert!(ticket(1, 1, 0, 4, Instant::now()).validate().is_err());
    assert!(ticket(1, 1, 5, 4, Instant::now()).validate().is_err());
}

#[test]
fn counts_no_match_could_suit_are_refused_up_front() {
    let now = Instant::now();
    let with_multiple = |players, min, max, multiple, relaxed| Ticket {
        count_multiple: multiple,
        relaxed_min_count: relaxed,
        ..ticket(1, players, min, max, now)
    };
    // A multiple above max_count: no count at all.
    assert_eq!(
        with_multiple(1, 1, 4, 5, None).validate(),
        Err(TicketError::NoCount {
            lowest: 1,
            max: 4,
            multiple: 5
        })
    );
    // 5 to 7 holds no multiple of 4 ...
    assert!(with_multiple(1, 5, 7, 4, None).validate().is_err());
    // ... unless the relaxed minimum reaches 4.
    assert_eq!(with_multiple(1, 5, 7, 4, Some(4)).validate(), Ok(()));
    // A party of 3 needs an even count from 3 to 3: none.
    assert!(with_multiple(3, 2, 3, 2, None).validate().is_err());
    assert_eq!(with_multiple(3, 2, 4, 2, None).validate(), Ok(()));
    // Even teams of up to 10 players, and a solo duel.
    assert_eq!(with_multiple(1, 2, 10, 2, None).validate(), Ok(()));
    assert_eq!(with_multiple(1, 2, 2, 2, None).validate(), Ok(()));
    assert!(count_possible(1, 100, 100));
    assert!(!count_possible(1, 99, 100));
    assert!(!count_possible(1, 4, 0));
}

#[test]
fn queries_must_hold_both_ways() {
    let t0 = Instant::now();
    let mut pool = Pool::new(1000, None);
    let mut ranked = ticket(1, 1, 2, 2, t0);
    ranked.strings.insert("mode".into(), "ranked".into());
    ranked.query.strings.insert("mode".into(), "ranked".into());
    ranked.numbers.insert("skill".into(), 10.0);
    ranked.query.ranges.insert("skill".into(), (5.0, 15.0));
    // Has the property but does not accept ranked's skill.
    let mut picky = ranked.clone();
    picky.id = TicketId(2);
    picky.since = t0 + Duration::from_millis(1);
    picky.numbers.insert("skill".into(), 12.0);
    picky.query.ranges.insert("skill".into(), (11.0, 20.0));
    // Accepts and is accepted.
    let mut fine = ranked.clone();
    fine.id = TicketId(3);
    fine.since = t0 + Duration::from_millis(2);
    fine.numbers.insert("skill".into(), 14.0);
    pool.insert(ranked);
    pool.insert(picky);
    pool.insert(fine);
    let matches = pool.run_round(t0 + Duration::from_secs(1));
    assert_eq!(matches.len(), 1);
    assert_eq!(ids(&matches[0]), vec![1, 3]);
}

#[test]
fn the_minimum_relaxes_after_the_configured_wait() {
    let t0 = Instant::now();
    let mut pool = Pool::new(1000, Some(Duration::from_secs(30)));
    let mut a = ticket(1, 1, 4, 4, t0);
    a.relaxed_min_count = Some(2);
    let mut b = ticket(2, 1, 4, 4, t0);
    b.relaxed_min_count = Some(2);
    pool.insert(a);
    pool.insert(b);
    assert!(pool.run_round(t0 + Duration::from_secs(10)).is_empty());
    let matches = pool.run_round(t0 + Duration::from_secs(30));
    assert_eq!(matches.len(), 1);
    assert_eq!(matches[0].players(), 2);
}

#[test]
fn counts_are_multiples_when_asked() {
    let t0 = Instant::now();
    let mut pool = Pool::new(1000, None);
    for id in 1..=5 {
        let mut t = ticket(id, 1, 2, 6, t0 + Duration::from_millis(id));
        t.count_multiple = 2;
        pool.insert(t);
    }
    let matches = pool.run_round(t0 + Duration::from_secs(1));
    assert_eq!(matches.len(), 1);
    assert_eq!(matches[0].players(), 4, "the largest even count of five");
    assert_eq!(pool.len(), 1);
}

#[test]
fn a_requirement_nobody_has_matches_nothing_and_costs_nothing() {
    let t0 = Instant::now();
    let mut pool = Pool::new(1000, None);
    let mut lonely = ticket(1, 1, 2, 2, t0);
    lonely.query.strings.insert("map".into(), "atlantis".into());
    pool.insert(lonely);
    pool.insert(ticket(2, 1, 2, 2, t0 + Duration::from_millis(1)));
    pool.insert(ticket(3, 1, 2, 2, t0 + Duration::from_millis(2)));
    let matches = pool.run_round(t0 + Duration::from_secs(1));
    assert_eq!(matches.len(), 1);
    assert_eq!(ids(&matches[0]), vec![2, 3]);
    assert!(pool.get(TicketId(1)).is_some());
    assert!(pool.remove(TicketId(1)).is_some());
    assert!(pool.is_empty());
}
