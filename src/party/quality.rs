//! Connection quality as the party rules see it: a member's score (what
//! its node measured, PROTOCOL.md "Leader by connection quality"), the
//! bucket members are shown, and who leads next under each
//! [`LeaderPolicy`]. Plain functions of their inputs: the same
//! measurements choose the same leader, on any node, every time.

use crate::protocol::{ConnectionQuality, LeaderPolicy};

/// Score points one per mille of packets lost adds to the round-trip time
/// in milliseconds: 1% loss weighs as much as 50 ms.
pub const LOSS_WEIGHT: u32 = 5;

/// Scores are capped here (a path this bad is simply bad; the cap keeps
/// the arithmetic in range).
pub const MAX_SCORE: u32 = 10_000;

/// Scores are compared in steps of this many points: members within one
/// step are as good as each other, and tenure decides between them.
pub const SCORE_STEP: u32 = 10;

/// Below this score a connection is `Good` ...
pub const GOOD_BELOW: u32 = 80;
/// ... below this, `Fair`; from here on, `Poor`.
pub const FAIR_BELOW: u32 = 200;

/// The score of a connection with `rtt_ms` smoothed round-trip time and
/// `loss_per_mille` of its packets lost: lower is better.
pub fn score(rtt_ms: u32, loss_per_mille: u32) -> u32 {
    let loss = LOSS_WEIGHT.saturating_mul(loss_per_mille.min(1000));
    rtt_ms.saturating_add(loss).min(MAX_SCORE)
}

/// The bucket a score shows as; `None` (not measured) is `Unknown`.
pub fn bucket(score: Option<u32>) -> ConnectionQuality {
    match score {
        None => ConnectionQuality::Unknown,
        Some(s) if s < GOOD_BELOW => ConnectionQuality::Good,
        Some(s) if s < FAIR_BELOW => ConnectionQuality::Fair,
        Some(_) => ConnectionQuality::Poor,
    }
}

/// One seat as the choice of a leader sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Candidate {
    /// Whether its connection is up (only a connected member may lead).
    pub connected: bool,
    /// Its score as its node last reported it; `None`: not measured.
    pub score: Option<u32>,
}

/// Who leads next, as an index into `seats` (in seat order: index 0 has
/// been seated longest); `None` when nobody is connected.
///
/// - `Tenure`: the first connected seat.
/// - `ConnectionQuality`: the connected seat whose score is in the lowest
///   step ([`SCORE_STEP`]); a measured seat before any unmeasured one;
///   among equals, the first (tenure).
pub fn choose_leader(policy: LeaderPolicy, seats: &[Candidate]) -> Option<usize> {
    let connected = seats.iter().enumerate().filter(|(_, seat)| seat.connected);
    match policy {
        LeaderPolicy::Tenure => connected.map(|(index, _)| index).next(),
        // `min_by_key` keeps the first of equal keys: the longest seated.
        LeaderPolicy::ConnectionQuality => connected
            .min_by_key(|(_, seat)| rank(seat.score))
            .map(|(index, _)| index),
    }
}

/// What `ConnectionQuality` compares: the score's step, the unmeasured
/// after every measured one.
fn rank(score: Option<u32>) -> u32 {
    match score {
        Some(score) => score.min(MAX_SCORE) / SCORE_STEP,
        None => u32::MAX,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seat(connected: bool, score: Option<u32>) -> Candidate {
        Candidate { connected, score }
    }

    #[test]
    fn loss_weighs_on_the_score() {
        assert_eq!(score(30, 0), 30);
        assert_eq!(score(30, 10), 80, "1% loss is 50 points");
        assert_eq!(score(u32::MAX, 1000), MAX_SCORE);
        assert_eq!(bucket(Some(79)), ConnectionQuality::Good);
        assert_eq!(bucket(Some(80)), ConnectionQuality::Fair);
        assert_eq!(bucket(Some(200)), ConnectionQuality::Poor);
        assert_eq!(bucket(None), ConnectionQuality::Unknown);
    }

    #[test]
    fn each_policy_picks_its_leader() {
        let seats = [
            seat(false, Some(5)),
            seat(true, Some(250)),
            seat(true, None),
            seat(true, Some(41)),
            seat(true, Some(45)),
        ];
        assert_eq!(choose_leader(LeaderPolicy::Tenure, &seats), Some(1));
        assert_eq!(
            choose_leader(LeaderPolicy::ConnectionQuality, &seats),
            Some(3),
            "41 and 45 are one step: the longer seated"
        );
        let unmeasured = [seat(true, None), seat(true, None)];
        assert_eq!(
            choose_leader(LeaderPolicy::ConnectionQuality, &unmeasured),
            Some(0)
        );
        let away = [seat(false, Some(1))];
        assert_eq!(choose_leader(LeaderPolicy::ConnectionQuality, &away), None);
        assert_eq!(choose_leader(LeaderPolicy::Tenure, &away), None);
    }
}
