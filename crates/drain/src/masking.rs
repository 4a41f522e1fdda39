//! Masks: regular expressions whose matches are replaced by a placeholder
//! before tokenizing, so variable parts (addresses, ids, numbers) do not
//! split one template into many.
//!
//! [`BUILTIN_MASKS`] is the default for users who will not tune per system.
//! Each mask replaces its match with a named placeholder (`<IP>`, `<NUM>`...)
//! rather than `<*>`: identical placeholders count as matching tokens, which
//! groups lines better than wildcards and reads better in a template.

use std::borrow::Cow;

use regex::{NoExpand, Regex};
use serde::{Deserialize, Serialize};

/// One mask: matches of `pattern` become `<mask>` (`mask: "*"` gives `<*>`).
/// A capture group named `keep` is kept in front of the placeholder.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MaskRule {
    pub pattern: String,
    pub mask: String,
}

impl MaskRule {
    pub fn new(pattern: impl Into<String>, mask: impl Into<String>) -> Self {
        MaskRule {
            pattern: pattern.into(),
            mask: mask.into(),
        }
    }
}

/// A mask whose pattern does not compile.
#[derive(Debug, thiserror::Error)]
#[error("mask {index} ({pattern:?}) is not a valid regular expression: {source}")]
pub struct MaskError {
    pub index: usize,
    pub pattern: String,
    #[source]
    pub source: regex::Error,
}

/// The built-in masks, applied in this order (earlier, more specific ones
/// first, so e.g. an IP is not eaten by the number mask).
pub const BUILTIN_MASKS: &[(&str, &str)] = &[
    // Timestamps and dates.
    (
        r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(?:[.,]\d+)?(?:Z|[+-]\d{2}:?\d{2})?",
        "TS",
    ),
    (r"\b\d{1,2}:\d{2}:\d{2}(?:[.,]\d+)?\b", "TIME"),
    // UUIDs before hex.
    (
        r"\b[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\b",
        "UUID",
    ),
    // IPv6 (full or compressed, several groups), optionally [..]:port.
    (
        r"\[?\b[0-9a-fA-F]{1,4}(?::[0-9a-fA-F]{0,4}){2,7}\b\]?(?::\d{1,5})?",
        "IP",
    ),
    // IPv4 with optional port, possibly after a slash (/10.0.0.1:80).
    (r"(?:\b|/)(?:\d{1,3}\.){3}\d{1,3}(?::\d{1,5})?\b", "IP"),
    // Paths (two or more segments), before numbers so a path stays whole.
    (r"(?:/[\w.~-]+){2,}/?", "PATH"),
    // Hex: 0x-prefixed; other hex values (8+ hex characters, or shorter
    // tokens mixing digits and hex letters) are numbers: whether a value
    // happens to contain a letter must not split a template.
    (r"\b0x[0-9a-fA-F]+\b", "HEX"),
    (r"(?:(?P<keep>_)|\b|-)[0-9a-fA-F]{8,}\b", "NUM"),
    (
        r"\b(?:[0-9a-f]*\d[0-9a-f]*[a-f][0-9a-f]*|[0-9a-f]*[a-f][0-9a-f]*\d[0-9a-f]*)\b",
        "NUM",
    ),
    // Numbers with an optional sign, decimals and unit (12, -3.5, 64MB, 250ms).
    // An underscore before a number is kept (`blk_123` → `blk_<NUM>`).
    (
        r"(?:(?P<keep>_)|\b|[-+])\d+(?:\.\d+)?(?:[kKMGT]i?B|[kmµun]?s|%|[KMGT])?\b",
        "NUM",
    ),
];

/// An ordered set of masks.
#[derive(Debug, Clone)]
pub struct Masker {
    rules: Vec<(Regex, Replacement)>,
}

#[derive(Debug, Clone)]
enum Replacement {
    Literal(String),
    /// `${keep}<MASK>`.
    Expand(String),
}

impl Masker {
    /// No masks.
    pub fn none() -> Self {
        Masker { rules: Vec::new() }
    }

    pub fn new(rules: &[MaskRule]) -> Result<Self, MaskError> {
        let rules = rules
            .iter()
            .enumerate()
            .map(|(index, rule)| {
                let regex = Regex::new(&rule.pattern).map_err(|source| MaskError {
                    index,
                    pattern: rule.pattern.clone(),
                    source,
                })?;
                let keeps = regex.capture_names().any(|name| name == Some("keep"));
                let placeholder = format!("<{}>", rule.mask);
                let replacement = if keeps {
                    // `$` in the placeholder must stay literal in the expansion.
                    Replacement::Expand(format!("${{keep}}{}", placeholder.replace('$', "$$")))
                } else {
                    Replacement::Literal(placeholder)
                };
                Ok((regex, replacement))
            })
            .collect::<Result<_, _>>()?;
        Ok(Masker { rules })
    }

    /// [`BUILTIN_MASKS`].
    pub fn builtin() -> Self {
        let rules: Vec<MaskRule> = BUILTIN_MASKS
            .iter()
            .map(|(p, m)| MaskRule::new(*p, *m))
            .collect();
        Masker::new(&rules).expect("built-in masks compile (tested)")
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// The line with every mask applied in order.
    pub fn mask<'a>(&self, line: &'a str) -> Cow<'a, str> {
        let mut out = Cow::Borrowed(line);
        for (regex, replacement) in &self.rules {
            let replaced = match replacement {
                Replacement::Literal(text) => regex.replace_all(&out, NoExpand(text)),
                Replacement::Expand(template) => regex.replace_all(&out, template.as_str()),
            };
            if let Cow::Owned(replaced) = replaced {
                out = Cow::Owned(replaced);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_masks_common_variables() {
        let masker = Masker::builtin();
        let cases = [
            ("connect to 10.0.0.12:5432 failed", "connect to <IP> failed"),
            ("from /10.250.19.102:54106 closed", "from <IP> closed"),
            ("peer [2001:db8::1]:443 reset", "peer <IP> reset"),
            (
                "req 3f2504e0-4f89-11d3-9a0c-0305e82c3301 done",
                "req <UUID> done",
            ),
            ("took 250ms and 64MB", "took <NUM> and <NUM>"),
            ("at 2024-05-01T12:00:01.123Z start", "at <TS> start"),
            ("read /var/lib/data/file.db", "read <PATH>"),
            ("object 0xdeadbeef freed", "object <HEX> freed"),
            ("block blk_-12345 missing", "block blk_<NUM> missing"),
            ("block blk_12345 missing", "block blk_<NUM> missing"),
            (
                "delete /data/current/blk_-1781953582842324563 now",
                "delete <PATH> now",
            ),
            ("iar 00381960 dear 003a90fc", "iar <NUM> dear <NUM>"),
            ("retry 3 of 5", "retry <NUM> of <NUM>"),
            ("commit a1b2c3d4e5 pushed", "commit <NUM> pushed"),
        ];
        for (line, expected) in cases {
            assert_eq!(masker.mask(line), expected, "{line}");
        }
        // Words are not masked.
        assert_eq!(
            masker.mask("cache added fade beef"),
            "cache added fade beef"
        );
    }

    #[test]
    fn bad_pattern_names_the_mask() {
        let err =
            Masker::new(&[MaskRule::new("ok", "A"), MaskRule::new("(unclosed", "B")]).unwrap_err();
        assert_eq!(err.index, 1);
        assert!(err.to_string().contains("(unclosed"), "{err}");
    }

    #[test]
    fn replacement_is_literal() {
        let masker = Masker::new(&[MaskRule::new(r"\d+", "$1")]).unwrap();
        assert_eq!(masker.mask("a 12 b"), "a <$1> b");
    }
}
