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
//! - a path or URL (`/a/b`, `scheme://...`, `C:\a`, `\\host\share`,
//!   `a\b\c`): `<PATH>`;
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
/// tells which rules can apply to a token: a plain word (most tokens) is
/// left at once, and the rules below run only where their bytes occur.
type Class = u16;
const SPACE: Class = 1;
const DIGIT: Class = 2;
const ALPHA: Class = 4;
/// May be part of a `key=value`'s key: letters, digits, `_`, `.`, `-`.
const KEY: Class = 8;
/// Upper-case letters: only a word holding one can be a calendar name.
const UPPER: Class = 16;
const EQUALS: Class = 32;
const SLASH: Class = 64;
const UNDERSCORE: Class = 128;
const COLON: Class = 256;
const DOT: Class = 512;
const DASH: Class = 1024;
const BACKSLASH: Class = 2048;
/// What `key=value`, paths, URLs and type prefixes need.
const SPECIAL: Class = EQUALS | SLASH | UNDERSCORE | COLON | BACKSLASH;

const CLASSES: [Class; 256] = {
    let mut classes = [0; 256];
    let mut b = 0;
    while b < 256 {
        classes[b] = match b as u8 {
            b' ' | b'\t' | b'\n' | 0x0c | b'\r' => SPACE,
            b'0'..=b'9' => DIGIT | KEY,
            b'a'..=b'z' => ALPHA | KEY,
            b'A'..=b'Z' => ALPHA | KEY | UPPER,
            b'_' => UNDERSCORE | KEY,
            b'=' => EQUALS,
            b'/' => SLASH,
            b'\\' => BACKSLASH,
            b':' => COLON,
            b'.' => DOT | KEY,
            b'-' => DASH | KEY,
            _ => 0,
        };
        b += 1;
    }
    classes
};

/// The classes of the bytes of `text`, together.
fn classes_of(text: &[u8]) -> Class {
    text.iter().fold(0, |seen, &b| seen | CLASSES[b as usize])
}

/// The line with each token's variable part replaced by its placeholder.
pub(crate) fn mask_line(line: &str) -> Cow<'_, str> {
    // `String::new` allocates nothing until a variable is found.
    let mut out = String::new();
    if mask_append(line, &mut out) {
        Cow::Owned(out)
    } else {
        Cow::Borrowed(line)
    }
}

/// Appends the masked line to `out` if it holds a variable (`true`);
/// otherwise leaves `out` as it is (`false`).
pub(crate) fn mask_append(line: &str, out: &mut String) -> bool {
    let bytes = line.as_bytes();
    let mut changed = false;
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
            if seen & UPPER != 0 && (3..=12).contains(&token.len()) {
                calendar(token)
            } else {
                None
            }
        } else if seen & (SPECIAL | DOT | DASH) == 0 {
            // Digits among letters and brackets only (most numbers and
            // ids): no shape but `<HEX>` or `<NUM>` is possible.
            number(token, seen)
        } else {
            classify(token, seen, true)
        };
        if let Some((lead, placeholder, keep_prefix, trail)) = classified {
            if !changed {
                out.reserve(line.len() + 8);
                changed = true;
            }
            out.push_str(&line[copied..start]);
            out.push_str(&token[..lead + keep_prefix]);
            out.push_str(placeholder);
            out.push_str(&token[token.len() - trail..]);
            copied = i;
        }
    }
    if changed {
        out.push_str(&line[copied..]);
    }
    changed
}

/// Month and weekday names, abbreviated or not (in lower case here; the
/// token must be capitalised or upper case): the words of a written date
/// (`Fri Jun 17 07:07:00 2005`), as variable as its numbers.
fn is_calendar_name(lower: &[u8]) -> bool {
    matches!(
        lower,
        b"jan"
            | b"feb"
            | b"mar"
            | b"apr"
            | b"may"
            | b"jun"
            | b"jul"
            | b"aug"
            | b"sep"
            | b"sept"
            | b"oct"
            | b"nov"
            | b"dec"
            | b"january"
            | b"february"
            | b"march"
            | b"april"
            | b"june"
            | b"july"
            | b"august"
            | b"september"
            | b"october"
            | b"november"
            | b"december"
            | b"mon"
            | b"tue"
            | b"wed"
            | b"thu"
            | b"fri"
            | b"sat"
            | b"sun"
            | b"monday"
            | b"tuesday"
            | b"wednesday"
            | b"thursday"
            | b"friday"
            | b"saturday"
            | b"sunday"
    )
}

/// A word holding an upper-case letter that is a month or weekday name
/// becomes `<DATE>`.
fn calendar(token: &str) -> Option<(usize, &'static str, usize, usize)> {
    let bytes = token.as_bytes();
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
    let mut lower = [0u8; 9];
    for (to, from) in lower.iter_mut().zip(core) {
        *to = from.to_ascii_lowercase();
    }
    is_calendar_name(&lower[..core.len()]).then_some((lead, "<DATE>", 0, bytes.len() - end))
}

/// [`classify`] for a token holding a digit and none of `=/_:.-\\`: only
/// [`shape`]'s last two cases can apply.
fn number(token: &str, seen: Class) -> Option<(usize, &'static str, usize, usize)> {
    let bytes = token.as_bytes();
    let (lead, end) = core_bounds(bytes);
    let core = &bytes[lead..end];
    (!core.is_empty()).then(|| (lead, shape(core, seen), 0, bytes.len() - end))
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

/// How to mask `token`, whose bytes' classes are `seen`: bytes kept in
/// front (`lead`), the placeholder, bytes of the core kept before it (a key
/// or type prefix), bytes kept after (`trail`). `None`: the token stays as
/// it is. `keyed`: a `key=value` is looked for (not inside a value, so
/// nesting costs no recursion).
fn classify(token: &str, seen: Class, keyed: bool) -> Option<(usize, &'static str, usize, usize)> {
    let bytes = token.as_bytes();
    let (lead, end) = core_bounds(bytes);
    let core = &bytes[lead..end];
    if core.is_empty() {
        return None;
    }
    let trail = bytes.len() - end;
    if keyed
        && seen & EQUALS != 0
        && let Some(eq) = core.iter().position(|&b| b == b'=')
        && eq > 0
        && core[..eq].iter().all(|&b| CLASSES[b as usize] & KEY != 0)
        && classes_of(&core[..eq]) & ALPHA != 0
    {
        // The value is judged as a token of its own: a value holding a
        // digit is a variable, a word is kept (`state=up`, `user=root` name
        // an event, as a word elsewhere does).
        let value = &token[lead + eq + 1..token.len() - trail];
        return classify(value, classes_of(value.as_bytes()), false).map(
            |(at, placeholder, keep, after)| (lead, placeholder, eq + 1 + at + keep, trail + after),
        );
    }
    // Letters from the start: a URL's scheme or an id's type prefix.
    let letters = core.iter().take_while(|b| b.is_ascii_alphabetic()).count();
    if seen & SLASH != 0 {
        let url = letters > 0 && core[letters..].starts_with(b"://");
        let path = core[0] == b'/' && core.len() > 2 && core[1..].contains(&b'/');
        if url || path {
            return Some((lead, "<PATH>", 0, trail));
        }
    }
    // A Windows path: a drive (`C:\...`), a share (`\\host\...`), or at
    // least two separators (`dir\sub\file`).
    if seen & BACKSLASH != 0 {
        let drive = letters == 1 && core[1..].starts_with(b":\\");
        let separators = core.iter().filter(|&&b| b == b'\\').count();
        if drive || separators >= 2 {
            return Some((lead, "<PATH>", 0, trail));
        }
    }
    if seen & DIGIT == 0 {
        return None;
    }
    if seen & UNDERSCORE != 0 && letters > 0 && core.get(letters) == Some(&b'_') {
        return Some((lead, "<NUM>", letters + 1, trail));
    }
    Some((lead, shape(core, seen), 0, trail))
}

/// The placeholder of a core holding a digit (each check runs only where
/// the bytes it needs occur).
fn shape(core: &[u8], seen: Class) -> &'static str {
    let digits_then = |at: usize, n: usize, sep: u8| {
        core.len() > at + n
            && core[at..at + n].iter().all(u8::is_ascii_digit)
            && core[at + n] == sep
    };
    if seen & DASH != 0 && digits_then(0, 4, b'-') && digits_then(5, 2, b'-') {
        return "<TS>";
    }
    if seen & COLON != 0 && core.len() >= 7 && core[..3].contains(&b':') && is_time(core) {
        return "<TIME>";
    }
    if (seen & DOT != 0 && is_ipv4(core)) || (seen & COLON != 0 && is_ipv6(core)) {
        return "<IP>";
    }
    if core.len() == 36 && is_uuid(core) {
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
            (
                r"load C:\Windows\winsxs\x86 and \\srv\share\dir (a\b) ok",
                "load <PATH> and <PATH> (a\\b) ok",
            ),
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
