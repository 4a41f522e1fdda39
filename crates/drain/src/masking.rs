//! Masks: variable parts of a line (addresses, ids, numbers) replaced by a
//! placeholder before tokenizing, so they do not split one template into
//! many.
//!
//! [`Masker::builtin`] is the default for users who will not tune per
//! system: a single pass over each token (see `classify`), not a chain of
//! regular expressions over the line. User rules are regular expressions
//! ([`MaskRule`]), applied after it. Placeholders are named (`<IP>`,
//! `<NUM>`...) rather than `<*>`: identical placeholders count as matching
//! tokens, which groups lines better than wildcards and reads better in a
//! template.

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

/// The token classifier (when built in), then regular-expression rules in
/// order.
#[derive(Debug, Clone)]
pub struct Masker {
    builtin: bool,
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
        Masker {
            builtin: false,
            rules: Vec::new(),
        }
    }

    /// The built-in token classifier, then `rules`.
    pub fn with_builtin(rules: &[MaskRule]) -> Result<Self, MaskError> {
        Ok(Masker {
            builtin: true,
            ..Masker::new(rules)?
        })
    }

    /// Regular-expression rules only, in order.
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
        Ok(Masker {
            builtin: false,
            rules,
        })
    }

    /// The built-in token classifier alone.
    pub fn builtin() -> Self {
        Masker {
            builtin: true,
            rules: Vec::new(),
        }
    }

    pub fn is_empty(&self) -> bool {
        !self.builtin && self.rules.is_empty()
    }

    /// The line with every mask applied in order.
    /// Appends the masked `line` to `out` (with only the built-in masks,
    /// without an allocation of its own).
    pub fn mask_into(&self, line: &str, out: &mut String) {
        if !self.rules.is_empty() {
            out.push_str(&self.mask(line));
        } else if !(self.builtin && crate::classify::mask_append(line, out)) {
            out.push_str(line);
        }
    }

    pub fn mask<'a>(&self, line: &'a str) -> Cow<'a, str> {
        let mut out = if self.builtin {
            crate::classify::mask_line(line)
        } else {
            Cow::Borrowed(line)
        };
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
    fn builtin_classifier_then_rules() {
        let masker = Masker::with_builtin(&[MaskRule::new("cyrus|root", "USER")]).unwrap();
        assert_eq!(
            masker.mask("user root from 10.0.0.1"),
            "user <USER> from <IP>"
        );
        assert!(!masker.is_empty());
        assert!(Masker::none().is_empty());
        assert!(!Masker::builtin().is_empty());
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
