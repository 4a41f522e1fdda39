//! The built-in masks as one pass over each token: shapes that are variable
//! whatever the system (numbers, addresses, times, ids, paths, the value of
//! a `key=value`), recognised by what their characters are, not by a list
//! of expressions for known systems.
//!
//! A token is a run of non-whitespace. Brackets and quotes around it, and
//! trailing sentence punctuation, are kept as they are; the core between
//! them is classified:
//!
//! - `key=value` with an identifier key: the key is kept and the value is
//!   judged as a token (so `uid=<NUM>`, but `user=root` and `state=up`
//!   stay: a word names an event there as it does elsewhere);
//! - a month or weekday name (`Jun`, `FRI`, `Sunday`): `<DATE>`, the words
//!   of a written date;
//! - a path or URL (`/a/b`, `scheme://...`): `<PATH>`;
//! - anything holding a digit is a variable: `<TS>` (a date), `<TIME>`
//!   (`hh:mm:ss`), `<IP>` (IPv4 with optional port, or IPv6), `<UUID>`,
//!   `<HEX>` (`0x...`), and otherwise `<NUM>`; an identifier with a type
//!   prefix (`blk_123`, `rdd_2_3`, `attempt_1445_0020_m_0`) keeps the
//!   prefix (`blk_<NUM>`);
//! - anything else is kept.
//!
//! Whitespace between tokens is kept, so a line without variables is
//! returned as it is, without copying.

use std::borrow::Cow;

/// Byte classes, so one table lookup per byte both finds token ends and
/// tells a plain word (most tokens) from one worth classifying.
const SPACE: u8 = 1;
const DIGIT: u8 = 2;
/// `=`, `/`, `_`, `:`: what `key=value`, paths, URLs and type prefixes need.
const SPECIAL: u8 = 4;
const ALPHA: u8 = 8;
/// May be part of a `key=value`'s key: letters, digits, `_`, `.`, `-`.
const KEY: u8 = 16;
/// `.`, `-`: counted for the shapes.
const COUNTED: u8 = 32;

const CLASSES: [u8; 256] = {
    let mut classes = [0u8; 256];
    let mut b = 0;
    while b < 256 {
        classes[b] = match b as u8 {
            b' ' | b'\t' | b'\n' | 0x0c | b'\r' => SPACE,
            b'0'..=b'9' => DIGIT | KEY,
            b'a'..=b'z' | b'A'..=b'Z' => ALPHA | KEY,
            b'_' => SPECIAL | KEY,
            b'=' | b'/' | b':' => SPECIAL,
            b'.' | b'-' => COUNTED | KEY,
            _ => 0,
        };
        b += 1;
    }
    classes
};

/// The line with each token's variable part replaced by its placeholder.
pub(crate) fn mask_line(line: &str) -> Cow<'_, str> {
    let bytes = line.as_bytes();
    let mut out: Option<String> = None;
    // Where the last copied part of `line` ended.
    let mut copied = 0;
    let mut i = 0;
    while i < bytes.len() {
        if CLASSES[bytes[i] as usize] & SPACE != 0 {
            i += 1;
            continue;
        }
        let start = i;
        let mut seen = 0;
        while i < bytes.len() {
            let class = CLASSES[bytes[i] as usize];
            if class & SPACE != 0 {
                break;
            }
            seen |= class;
            i += 1;
        }
        let token = &line[start..i];
        // No digit and none of `=/_:`: a word, nothing to classify but a
        // calendar name.
        let classified = if seen & (DIGIT | SPECIAL) == 0 {
            calendar(token)
        } else if seen & (SPECIAL | COUNTED) == 0 {
            // Digits among letters and brackets only (most numbers and
            // ids): no shape but `<HEX>` or `<NUM>` is possible, so the
            // full pass is skipped.
            number(token)
        } else {
            classify(token)
        };
        if let Some((lead, placeholder, keep_prefix, trail)) = classified {
            let out = out.get_or_insert_with(|| String::with_capacity(line.len()));
            out.push_str(&line[copied..start]);
            out.push_str(&token[..lead + keep_prefix]);
            out.push_str(placeholder);
            out.push_str(&token[token.len() - trail..]);
            copied = i;
        }
    }
    match out {
        None => Cow::Borrowed(line),
        Some(mut out) => {
            out.push_str(&line[copied..]);
            Cow::Owned(out)
        }
    }
}

/// Month and weekday names, abbreviated or not, capitalised or upper case:
/// the words of a written date (`Fri Jun 17 07:07:00 2005`), as variable as
/// its numbers.
const CALENDAR: [&str; 38] = [
    "Jan",
    "Feb",
    "Mar",
    "Apr",
    "May",
    "Jun",
    "Jul",
    "Aug",
    "Sep",
    "Sept",
    "Oct",
    "Nov",
    "Dec",
    "January",
    "February",
    "March",
    "April",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
    "Mon",
    "Tue",
    "Wed",
    "Thu",
    "Fri",
    "Sat",
    "Sun",
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
    "Sunday",
];

/// A word that is a month or weekday name becomes `<DATE>`.
fn calendar(token: &str) -> Option<(usize, &'static str, usize, usize)> {
    let bytes = token.as_bytes();
    // Cheap rejections first: most words are not 3-9 letters starting with
    // a capital.
    if bytes.len() < 3 || bytes.len() > 12 || !bytes.iter().any(u8::is_ascii_uppercase) {
        return None;
    }
    let (lead, end) = core_bounds(bytes);
    let core = &bytes[lead..end];
    if !(3..=9).contains(&core.len()) || !core[0].is_ascii_uppercase() {
        return None;
    }
    let upper = core[1..].iter().all(u8::is_ascii_uppercase);
    let capitalised = core[1..].iter().all(u8::is_ascii_lowercase);
    if !(upper || capitalised) {
        return None;
    }
    CALENDAR
        .iter()
        .any(|name| name.as_bytes().eq_ignore_ascii_case(core))
        .then_some((lead, "<DATE>", 0, bytes.len() - end))
}

/// [`classify`] for a token holding a digit and none of `=/_:.-`.
fn number(token: &str) -> Option<(usize, &'static str, usize, usize)> {
    let bytes = token.as_bytes();
    let (lead, end) = core_bounds(bytes);
    let core = &bytes[lead..end];
    if core.is_empty() {
        return None;
    }
    let placeholder = if core.len() > 2 && core[0] == b'0' && matches!(core[1], b'x' | b'X') {
        "<HEX>"
    } else {
        "<NUM>"
    };
    Some((lead, placeholder, 0, bytes.len() - end))
}

/// Where a token's core starts and ends: after its opening brackets and
/// quotes, before its closing ones and trailing punctuation.
fn core_bounds(bytes: &[u8]) -> (usize, usize) {
    let mut lead = 0;
    while lead < bytes.len() && is_opening(bytes[lead]) {
        lead += 1;
    }
    let mut end = bytes.len();
    while end > lead && is_closing(bytes[end - 1]) {
        end -= 1;
    }
    (lead, end)
}

/// Opening brackets and quotes kept in front of a token's core.
fn is_opening(b: u8) -> bool {
    matches!(b, b'(' | b'[' | b'{' | b'<' | b'"' | b'\'')
}

/// Closing brackets, quotes and punctuation kept after a token's core.
fn is_closing(b: u8) -> bool {
    matches!(
        b,
        b')' | b']' | b'}' | b'>' | b'"' | b'\'' | b',' | b';' | b':' | b'.' | b'!' | b'?'
    )
}

/// How to mask `token`: bytes kept in front (`lead`), the placeholder, bytes
/// of the core kept before it (a key or type prefix), bytes kept after
/// (`trail`). `None`: the token stays as it is.
fn classify(token: &str) -> Option<(usize, &'static str, usize, usize)> {
    classify_core(token, true)
}

/// [`classify`] for the value of a `key=value`, where no further key is
/// looked for (so nesting costs no recursion).
fn classify_value(value: &str) -> Option<(usize, &'static str, usize, usize)> {
    classify_core(value, false)
}

fn classify_core(token: &str, keyed: bool) -> Option<(usize, &'static str, usize, usize)> {
    let bytes = token.as_bytes();
    if token == "<*>" {
        return None;
    }
    let (lead, end) = core_bounds(bytes);
    let core = &bytes[lead..end];
    if core.is_empty() {
        return None;
    }
    let trail = bytes.len() - end;
    // One pass over the core for everything the rules below ask.
    let mut eq = None; // first '=': `key=value` when the key is an identifier
    let mut key_chars = true;
    let mut key_alpha = false;
    let mut alpha_so_far = true; // every byte so far a letter
    let mut prefix = None; // a type prefix: letters then the first '_'
    let mut scheme = false; // letters then "://"
    let mut slashes = 0usize;
    let mut digit = false;
    let (mut dots, mut colons, mut dashes) = (0usize, 0usize, 0usize);
    for (i, &b) in core.iter().enumerate() {
        let class = CLASSES[b as usize];
        if eq.is_none() && b != b'=' {
            key_chars &= class & KEY != 0;
            key_alpha |= class & ALPHA != 0;
        }
        digit |= class & DIGIT != 0;
        if class & (SPECIAL | COUNTED) != 0 {
            match b {
                b'=' if eq.is_none() => eq = Some(i),
                b'/' => slashes += 1,
                b'.' => dots += 1,
                b'-' => dashes += 1,
                b'_' if prefix.is_none() && alpha_so_far && i > 0 => prefix = Some(i),
                b':' => {
                    colons += 1;
                    scheme |= alpha_so_far && i > 0 && core[i + 1..].starts_with(b"//");
                }
                _ => {}
            }
        }
        alpha_so_far &= class & ALPHA != 0;
    }
    if keyed
        && let Some(eq) = eq
        && eq > 0
        && key_chars
        && key_alpha
    {
        // The value is judged as a token of its own (without a further
        // `key=`): a value holding a digit is a variable, a word is kept
        // (`state=up`, `user=root` name an event, as a word elsewhere does).
        let value = &token[lead + eq + 1..token.len() - trail];
        return classify_value(value).map(|(at, placeholder, keep, after)| {
            (lead, placeholder, eq + 1 + at + keep, trail + after)
        });
    }
    if scheme || (core[0] == b'/' && slashes >= 2 && core.len() > 2) {
        return Some((lead, "<PATH>", 0, trail));
    }
    if !digit {
        return None;
    }
    if let Some(underscore) = prefix {
        return Some((lead, "<NUM>", underscore + 1, trail));
    }
    Some((lead, shape(core, dots, colons, dashes), 0, trail))
}

/// The placeholder of a core holding a digit, with its counts of `.`, `:`
/// and `-` (so each check below runs only where it can match).
fn shape(core: &[u8], dots: usize, colons: usize, dashes: usize) -> &'static str {
    let digits_then = |at: usize, n: usize, sep: u8| {
        core.len() > at + n
            && core[at..at + n].iter().all(u8::is_ascii_digit)
            && core[at + n] == sep
    };
    if dashes >= 2 && digits_then(0, 4, b'-') && digits_then(5, 2, b'-') {
        return "<TS>";
    }
    if colons >= 2 && core.len() >= 7 && core[..3].contains(&b':') && is_time(core) {
        return "<TIME>";
    }
    if (dots == 3 && colons <= 1 && is_ipv4(core)) || (colons >= 2 && is_ipv6(core)) {
        return "<IP>";
    }
    if dashes == 4 && is_uuid(core) {
        return "<UUID>";
    }
    if core.len() > 2 && core[0] == b'0' && matches!(core[1], b'x' | b'X') {
        return "<HEX>";
    }
    "<NUM>"
}

/// `h:mm:ss` or `hh:mm:ss`, with optional fractions.
fn is_time(core: &[u8]) -> bool {
    let mut parts = core.splitn(3, |&b| b == b':');
    let (Some(h), Some(m), Some(s)) = (parts.next(), parts.next(), parts.next()) else {
        return false;
    };
    let digits = |p: &[u8]| !p.is_empty() && p.iter().all(u8::is_ascii_digit);
    let seconds = s
        .split(|&b| b == b'.' || b == b',')
        .next()
        .unwrap_or_default();
    (1..=2).contains(&h.len())
        && digits(h)
        && m.len() == 2
        && digits(m)
        && seconds.len() == 2
        && digits(seconds)
}

/// `a.b.c.d` with an optional `:port` (and an optional leading `/`).
fn is_ipv4(core: &[u8]) -> bool {
    let core = core.strip_prefix(b"/").unwrap_or(core);
    let address = core.split(|&b| b == b':').next().unwrap_or_default();
    let port_ok = core.get(address.len() + 1..).is_none_or(|port| {
        !port.is_empty() && port.len() <= 5 && port.iter().all(u8::is_ascii_digit)
    });
    let mut groups = 0;
    for group in address.split(|&b| b == b'.') {
        if group.is_empty() || group.len() > 3 || !group.iter().all(u8::is_ascii_digit) {
            return false;
        }
        groups += 1;
    }
    groups == 4 && port_ok
}

/// Hex groups separated by colons, at least three groups (`::` allowed),
/// possibly in brackets with a port (`[2001:db8::1]:443`).
fn is_ipv6(core: &[u8]) -> bool {
    let address = match core.iter().position(|&b| b == b']') {
        Some(close) => &core[..close],
        None => core,
    };
    let colons = address.iter().filter(|&&b| b == b':').count();
    colons >= 2 && address.iter().all(|&b| b.is_ascii_hexdigit() || b == b':')
}

/// 8-4-4-4-12 hex digits.
fn is_uuid(core: &[u8]) -> bool {
    core.len() == 36
        && core.iter().enumerate().all(|(i, &b)| match i {
            8 | 13 | 18 | 23 => b == b'-',
            _ => b.is_ascii_hexdigit(),
        })
}

#[cfg(test)]
mod tests {
    use super::mask_line;

    #[test]
    fn shapes() {
        let cases = [
            ("connect to 10.0.0.12:5432 failed", "connect to <IP> failed"),
            ("from /10.250.19.102:54106 closed", "from <IP> closed"),
            ("peer [2001:db8::1]:443 reset", "peer [<IP> reset"),
            (
                "req 3f2504e0-4f89-11d3-9a0c-0305e82c3301 done",
                "req <UUID> done",
            ),
            ("took 250ms and 64MB", "took <NUM> and <NUM>"),
            ("at 2024-05-01T12:00:01.123Z start", "at <TS> start"),
            ("at 06:55:19 start", "at <TIME> start"),
            ("read /var/lib/data/file.db", "read <PATH>"),
            ("get https://example.com/a?b=1 ok", "get <PATH> ok"),
            ("object 0xdeadbeef freed", "object <HEX> freed"),
            ("block blk_-12345 missing", "block blk_<NUM> missing"),
            ("block rdd_2_3 found", "block rdd_<NUM> found"),
            ("iar 00381960 dear 003a90fc", "iar <NUM> dear <NUM>"),
            ("retry 3 of 5.", "retry <NUM> of <NUM>."),
            ("commit a1b2c3d4e5 pushed", "commit <NUM> pushed"),
            ("(TID 5). done", "(TID <NUM>). done"),
            (
                "user=root uid=0 logname= tty=ssh host=10.0.0.1:80",
                "user=root uid=<NUM> logname= tty=ssh host=<IP>",
            ),
            ("(uid=0) x=/a/b (k=a=1)", "(uid=<NUM>) x=<PATH> (k=<NUM>)"),
            (
                "at Fri Jun 17 07:07:00 2005 [MAY] may Sunday, Junk",
                "at <DATE> <DATE> <NUM> <TIME> <NUM> [<DATE>] may <DATE>, Junk",
            ),
            ("a  b\tc", "a  b\tc"),
            ("<*> stays", "<*> stays"),
        ];
        for (line, expected) in cases {
            assert_eq!(mask_line(line), expected, "{line}");
        }
        // Words are not masked, and nothing is copied then.
        assert!(matches!(
            mask_line("cache added fade beef"),
            std::borrow::Cow::Borrowed(_)
        ));
    }

    #[test]
    fn any_bytes_are_safe() {
        for line in [
            "",
            " ",
            "=",
            "a=",
            "=b",
            "/",
            "//",
            "[",
            "]",
            "0x",
            "é1 ü=2 /ñ/ø",
            "::",
            "1:2:3",
        ] {
            let _ = mask_line(line);
        }
    }
}
