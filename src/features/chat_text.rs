//! How a message's text and time are shown: links found in plain text, and
//! clock times and day names. Pure; both builds (the server renders the
//! same text the browser hydrates).
//!
//! Times are rendered in UTC on the server (it does not know the reader's
//! zone) and switch to the browser's zone right after hydration: the
//! caller passes the zone's offset, and everything here is arithmetic on
//! shifted milliseconds.

/// A piece of a message's text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Segment<'a> {
    Text(&'a str),
    /// An `http:` or `https:` address, shown and followed as written.
    Link(&'a str),
}

/// Splits `body` into text and links. Only `http://` and `https://`
/// addresses become links (never `javascript:` or any other scheme); an
/// address ends at whitespace, and trailing punctuation (`.`, `,`, `)`
/// without a matching `(`, quotes, …) stays text. Callers render every
/// segment as a text node, never as HTML.
pub fn segments(body: &str) -> Vec<Segment<'_>> {
    let mut out = Vec::new();
    let mut text_from = 0;
    let mut i = 0;
    let bytes = body.as_bytes();
    while i < body.len() {
        let at_word_start =
            i == 0 || bytes[i - 1].is_ascii_whitespace() || b"(<[\"'".contains(&bytes[i - 1]);
        let scheme = ["https://", "http://"].into_iter().find(|s| {
            body[i..]
                .get(..s.len())
                .is_some_and(|p| p.eq_ignore_ascii_case(s))
        });
        if let (true, Some(scheme)) = (at_word_start, scheme) {
            let end = body[i..]
                .find(char::is_whitespace)
                .map_or(body.len(), |n| i + n);
            let url = trim_trailing(&body[i..end]);
            if url.len() > scheme.len() {
                if text_from < i {
                    out.push(Segment::Text(&body[text_from..i]));
                }
                out.push(Segment::Link(url));
                i += url.len();
                text_from = i;
                continue;
            }
        }
        i += body[i..].chars().next().map_or(1, char::len_utf8);
    }
    if text_from < body.len() {
        out.push(Segment::Text(&body[text_from..]));
    }
    out
}

/// An address without the punctuation that ends the sentence around it.
fn trim_trailing(url: &str) -> &str {
    let mut url = url;
    loop {
        let Some(last) = url.chars().last() else {
            return url;
        };
        let strip = match last {
            '.' | ',' | ';' | ':' | '!' | '?' | '"' | '\'' | '>' | ']' | '}' => true,
            ')' => url.matches('(').count() < url.matches(')').count(),
            _ => false,
        };
        if !strip {
            return url;
        }
        url = &url[..url.len() - last.len_utf8()];
    }
}

const DAY_MS: i64 = 86_400_000;

/// The day number (days since 1970-01-01) of a time, in a zone `offset_ms`
/// ahead of UTC.
pub fn day_of(ms: i64, offset_ms: i64) -> i64 {
    (ms + offset_ms).div_euclid(DAY_MS)
}

/// `HH:MM` of a time, in a zone `offset_ms` ahead of UTC.
pub fn clock(ms: i64, offset_ms: i64) -> String {
    let minutes = (ms + offset_ms).div_euclid(60_000);
    format!(
        "{:02}:{:02}",
        minutes.div_euclid(60).rem_euclid(24),
        minutes.rem_euclid(60)
    )
}

/// A day's heading: "Today", "Yesterday", or e.g. "Friday 27 November 2026".
pub fn day_label(day: i64, today: i64) -> String {
    match today - day {
        0 => "Today".into(),
        1 => "Yesterday".into(),
        _ => {
            const WEEKDAYS: [&str; 7] = [
                "Thursday",
                "Friday",
                "Saturday",
                "Sunday",
                "Monday",
                "Tuesday",
                "Wednesday",
            ];
            const MONTHS: [&str; 12] = [
                "January",
                "February",
                "March",
                "April",
                "May",
                "June",
                "July",
                "August",
                "September",
                "October",
                "November",
                "December",
            ];
            let (y, m, d) = civil(day);
            let weekday = WEEKDAYS[day.rem_euclid(7) as usize];
            format!("{weekday} {d} {} {y}", MONTHS[(m - 1) as usize])
        }
    }
}

/// The full date and time, for a tooltip: `2026-11-27 13:07`.
pub fn full(ms: i64, offset_ms: i64) -> String {
    let (y, m, d) = civil(day_of(ms, offset_ms));
    format!("{y}-{m:02}-{d:02} {}", clock(ms, offset_ms))
}

/// The UTC time for a `<time datetime>`: `2026-11-27T13:07Z`.
pub fn iso_utc(ms: i64) -> String {
    full(ms, 0).replace(' ', "T") + "Z"
}

/// (year, month 1–12, day 1–31) of a day number (Howard Hinnant's
/// `civil_from_days`).
fn civil(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// Consecutive messages of one author within this long are shown as a group.
pub const GROUP_MS: i64 = 5 * 60_000;

#[cfg(test)]
mod tests {
    use super::*;
    use Segment::{Link, Text};

    #[test]
    fn links_are_http_and_https_only_and_end_before_punctuation() {
        assert_eq!(
            segments("see https://example.com/a?b=1. ok"),
            [
                Text("see "),
                Link("https://example.com/a?b=1"),
                Text(". ok")
            ]
        );
        assert_eq!(
            segments("(http://x.org/wiki/A_(b)) and"),
            [Text("("), Link("http://x.org/wiki/A_(b)"), Text(") and")]
        );
        assert_eq!(
            segments("javascript:alert(1) data:text/html,x ftp://a"),
            [Text("javascript:alert(1) data:text/html,x ftp://a")]
        );
        assert_eq!(segments("https:// alone"), [Text("https:// alone")]);
        assert_eq!(
            segments("xhttps://not-a-word-start"),
            [Text("xhttps://not-a-word-start")]
        );
        assert_eq!(
            segments("HTTPS://A.B\nnext"),
            [Link("HTTPS://A.B"), Text("\nnext")]
        );
        assert_eq!(
            segments("día https://é.com"),
            [Text("día "), Link("https://é.com")]
        );
        assert_eq!(segments(""), []);
    }

    #[test]
    fn clock_and_days_in_a_zone() {
        assert_eq!(clock(0, 0), "00:00");
        assert_eq!(clock(((13 * 60 + 7) * 60 + 59) * 1000, 0), "13:07");
        assert_eq!(clock(86_400_000 + 60_000, 0), "00:01");
        // 23:30 UTC is 01:30 the next day two hours east, 18:30 five hours west.
        let t = (23 * 60 + 30) * 60_000;
        assert_eq!(clock(t, 2 * 3_600_000), "01:30");
        assert_eq!(day_of(t, 2 * 3_600_000), 1);
        assert_eq!(clock(t, -5 * 3_600_000), "18:30");
        assert_eq!(day_of(-1, 0), -1);
    }

    #[test]
    fn day_labels() {
        // 2026-11-27 is day 20_784, a Friday.
        assert_eq!(civil(20_784), (2026, 11, 27));
        assert_eq!(day_label(20_784, 20_784), "Today");
        assert_eq!(day_label(20_783, 20_784), "Yesterday");
        assert_eq!(day_label(20_784, 20_795), "Friday 27 November 2026");
        assert_eq!(day_label(0, 5), "Thursday 1 January 1970");
        assert_eq!(civil(11_016), (2000, 2, 29));
        assert_eq!(full(0, 0), "1970-01-01 00:00");
        assert_eq!(iso_utc(61_000), "1970-01-01T00:01Z");
    }
}
