//! The built-in masks as one pass over each token: shapes that are variable
//! whatever the system (numbers, addresses, times, ids, paths, the value of
//! a `key=value`), recognised by what their characters are, not by a list
//! of expressions for known systems.
//!
//! A token is a run of non-whitespace. Brackets and quotes around it, and
//! trailing sentence punctuation, are kept as they are; the core between
//! them is classified:
//!
//! - `key=value` with an identifier key: the value becomes `<*>`-like
//!   `<VAL>` (empty values stay empty);
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

/// The line with each token's variable part replaced by its placeholder.
pub(crate) fn mask_line(line: &str) -> Cow<'_, str> {
    let bytes = line.as_bytes();
    let mut out: Option<String> = None;
    // Where the last copied part of `line` ended.
    let mut copied = 0;
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i].is_ascii_whitespace() {
            i += 1;
            continue;
        }
        let start = i;
        while i < bytes.len() && !bytes[i].is_ascii_whitespace() {
            i += 1;
        }
        let token = &line[start..i];
        if let Some((lead, placeholder, keep_prefix, trail)) = classify(token) {
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
    let bytes = token.as_bytes();
    if token == "<*>" {
        return None;
    }
    let mut lead = 0;
    while lead < bytes.len() && is_opening(bytes[lead]) {
        lead += 1;
    }
    let mut end = bytes.len();
    while end > lead && is_closing(bytes[end - 1]) {
        end -= 1;
    }
    let core = &bytes[lead..end];
    if core.is_empty() {
        return None;
    }
    let trail = bytes.len() - end;
    // `key=value`: an identifier key keeps its name, the value goes.
    if let Some(eq) = core.iter().position(|&b| b == b'=')
        && eq > 0
        && core[..eq]
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
        && core[..eq].iter().any(u8::is_ascii_alphabetic)
    {
        return (eq + 1 < core.len()).then_some((lead, "<VAL>", eq + 1, trail));
    }
    if is_path(core) {
        return Some((lead, "<PATH>", 0, trail));
    }
    if !core.iter().any(u8::is_ascii_digit) {
        return None;
    }
    // A type prefix: letters and an underscore before the first digit.
    if let Some(underscore) = core.iter().position(|&b| b == b'_')
        && underscore > 0
        && core[..underscore].iter().all(u8::is_ascii_alphabetic)
    {
        return Some((lead, "<NUM>", underscore + 1, trail));
    }
    Some((lead, shape(core), 0, trail))
}

/// `/a/b...` (two segments or more) or `scheme://...`.
fn is_path(core: &[u8]) -> bool {
    let slashes = core.iter().filter(|&&b| b == b'/').count();
    (core[0] == b'/' && slashes >= 2 && core.len() > 2)
        || core
            .windows(3)
            .position(|w| w == b"://")
            .is_some_and(|at| at > 0 && core[..at].iter().all(u8::is_ascii_alphabetic))
}

/// The placeholder of a core holding a digit.
fn shape(core: &[u8]) -> &'static str {
    let digits_then = |at: usize, n: usize, sep: u8| {
        core.len() > at + n
            && core[at..at + n].iter().all(u8::is_ascii_digit)
            && core[at + n] == sep
    };
    if digits_then(0, 4, b'-') && digits_then(5, 2, b'-') {
        return "<TS>";
    }
    if core.len() >= 7 && core[..core.len().min(3)].contains(&b':') && is_time(core) {
        return "<TIME>";
    }
    if is_ipv4(core) || is_ipv6(core) {
        return "<IP>";
    }
    if is_uuid(core) {
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
                "user=root uid=0 logname= tty=ssh",
                "user=<VAL> uid=<VAL> logname= tty=<VAL>",
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
