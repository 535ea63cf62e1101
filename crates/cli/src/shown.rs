//! Text from the network as a terminal may show it. Every string another
//! player or the server chose (names, labels, data, state, attributes,
//! listing properties, statuses, codes, tokens, reasons, error messages)
//! goes through [`shown`] or [`quoted`] before the prompt prints it: raw, a
//! newline forges a line that looks like another player's message, an ESC
//! or C1 sequence rewrites the screen or sets the window title, and a bidi
//! override reorders what follows it.
//!
//! Times from the server are shown here too: as UTC and relative to now,
//! never as raw Unix numbers.

use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

/// Whether `c` must not reach a terminal as itself: C0 controls (CR, LF,
/// TAB, BEL, ESC...), DEL and C1 controls (U+0080 to U+009F, CSI among
/// them), the bidi controls (marks, embeddings, overrides, isolates), and
/// the line and paragraph separators.
pub fn needs_escape(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{061c}'
                | '\u{200e}'
                | '\u{200f}'
                | '\u{2028}'..='\u{202e}'
                | '\u{2066}'..='\u{2069}'
        )
}

/// `text` with every character of [`needs_escape`] made visible (`\n`,
/// `\x1b`, `\u{202e}`) and backslashes doubled, so that a shown `\n` was
/// never typed as one. Everything else, any script or emoji, as it is.
pub fn shown(text: &str) -> Shown<'_> {
    Shown { text, quote: false }
}

/// `text` in double quotes, shown as by [`shown`], with its own quotes
/// escaped: where it ends is never in doubt (labels).
pub fn quoted(text: &str) -> Shown<'_> {
    Shown { text, quote: true }
}

/// A string on its way to a terminal: see [`shown`] and [`quoted`].
#[derive(Clone, Copy)]
pub struct Shown<'a> {
    text: &'a str,
    quote: bool,
}

impl fmt::Display for Shown<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use fmt::Write as _;
        if self.quote {
            f.write_char('"')?;
        }
        let mut plain = 0;
        for (at, c) in self.text.char_indices() {
            let special = needs_escape(c) || c == '\\' || (self.quote && c == '"');
            if !special {
                continue;
            }
            f.write_str(&self.text[plain..at])?;
            plain = at + c.len_utf8();
            match c {
                '\n' => f.write_str("\\n")?,
                '\r' => f.write_str("\\r")?,
                '\t' => f.write_str("\\t")?,
                '\\' => f.write_str("\\\\")?,
                '"' => f.write_str("\\\"")?,
                c if u32::from(c) < 0x80 => write!(f, "\\x{:02x}", u32::from(c))?,
                c => write!(f, "\\u{{{:x}}}", u32::from(c))?,
            }
        }
        f.write_str(&self.text[plain..])?;
        if self.quote {
            f.write_char('"')?;
        }
        Ok(())
    }
}

/// Milliseconds since the Unix epoch, now (0 if the clock is before it).
pub fn unix_now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| {
            u64::try_from(since.as_millis()).unwrap_or(u64::MAX)
        })
}

/// A moment the server gave in Unix milliseconds, for a person:
/// `2026-11-27 16:22:19 UTC (in 4m 59s)`, or `(12s ago)`.
pub fn time_ms(at_ms: u64, now_ms: u64) -> String {
    let relative = if at_ms >= now_ms {
        format!("in {}", span((at_ms - now_ms) / 1000))
    } else {
        format!("{} ago", span((now_ms - at_ms) / 1000))
    };
    format!("{} ({relative})", utc(at_ms / 1000))
}

/// A moment in Unix seconds, as [`time_ms`] shows it.
pub fn time_s(at_s: u64, now_ms: u64) -> String {
    time_ms(at_s.saturating_mul(1000), now_ms)
}

/// `4m 59s`: the two largest units, enough to act on.
fn span(seconds: u64) -> String {
    let units = [(86_400, "d"), (3_600, "h"), (60, "m"), (1, "s")];
    let Some(first) = units.iter().position(|(size, _)| seconds >= *size) else {
        return "0s".into();
    };
    let (size, unit) = units[first];
    let mut text = format!("{}{unit}", seconds / size);
    if let Some((next, next_unit)) = units.get(first + 1) {
        let rest = (seconds % size) / next;
        if rest > 0 {
            text.push_str(&format!(" {rest}{next_unit}"));
        }
    }
    text
}

/// `2026-11-27 16:22:19 UTC` (the proleptic Gregorian calendar; days to
/// a date as in Howard Hinnant's `civil_from_days`). i128 throughout: any
/// u64 a server sends is a date, however far.
fn utc(unix_seconds: u64) -> String {
    let seconds = i128::from(unix_seconds);
    let (days, of_day) = (seconds / 86_400, seconds % 86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1_460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let shifted_month = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * shifted_month + 2) / 5 + 1;
    let month = if shifted_month < 10 {
        shifted_month + 3
    } else {
        shifted_month - 9
    };
    let year = year_of_era + era * 400 + i128::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} UTC",
        of_day / 3_600,
        of_day % 3_600 / 60,
        of_day % 60
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn controls_bidi_and_separators_become_visible_and_the_rest_stays() {
        let hostile = "gg\n[3cc69d5d] ana op 0: x\r\t\x07\x1b]0;t\x7f\u{80}\u{9b}\u{9f}\
                       \u{61c}\u{200e}\u{200f}\u{202a}\u{202e}\u{2066}\u{2069}\u{2028}\u{2029}\\";
        assert_eq!(
            shown(hostile).to_string(),
            r"gg\n[3cc69d5d] ana op 0: x\r\t\x07\x1b]0;t\x7f\u{80}\u{9b}\u{9f}\u{61c}\u{200e}\u{200f}\u{202a}\u{202e}\u{2066}\u{2069}\u{2028}\u{2029}\\"
        );
        for c in hostile.chars() {
            assert!(
                !shown(&c.to_string()).to_string().chars().any(needs_escape),
                "{c:?}"
            );
        }
        // Any script, emoji (joiners included) and quotes stay as typed.
        let plain = "Zoë 名前 عربى 👩‍👩‍👧 \"hi\" a=b";
        assert_eq!(shown(plain).to_string(), plain);
        assert_eq!(quoted("say \"hi\"\n").to_string(), r#""say \"hi\"\n""#);
        assert_eq!(quoted("").to_string(), r#""""#);
    }

    #[test]
    fn times_are_utc_dates_and_how_long_from_now() {
        assert_eq!(utc(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(utc(951_782_400), "2000-02-29 00:00:00 UTC");
        assert_eq!(utc(1_795_796_539), "2026-11-27 16:22:19 UTC");
        assert_eq!(utc(4_102_444_799), "2099-12-31 23:59:59 UTC");
        // Whatever a server sends is shown, not a panic.
        assert!(utc(u64::MAX).ends_with(" UTC"));
        let now = 1_795_796_240_000;
        assert_eq!(
            time_ms(1_795_796_539_000, now),
            "2026-11-27 16:22:19 UTC (in 4m 59s)"
        );
        assert_eq!(
            time_ms(now - 12_000, now),
            "2026-11-27 16:17:08 UTC (12s ago)"
        );
        assert_eq!(
            time_s(1_795_796_240 + 2 * 86_400 + 3_600, now),
            "2026-11-29 17:17:20 UTC (in 2d 1h)"
        );
        assert_eq!(span(0), "0s");
        assert_eq!(span(3_600), "1h");
        assert!(time_s(u64::MAX, now).contains("UTC (in "));
    }
}
