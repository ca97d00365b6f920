//! One field of a snapshot line: a rating parsed and checked (finite, representable as the
//! `f32` it is stored in, inside a declared scale). Shared by the matrix, triples and
//! database readers.
//!
//! Imports nothing of the readers: they import it.

use super::{Problem, RatingScale};

/// Parses one rating field; `field` is 1-based, for messages.
pub(super) fn parse_value(text: &str, field: usize) -> Result<f64, Problem> {
    let x = parse_number(text).ok_or_else(|| Problem::NotANumber {
        field,
        text: shorten(text),
    })?;
    check_value(x, field, || shorten(text))?;
    Ok(x)
}

/// Checks a rating read as a number (`text` shows it in errors): finite, and representable
/// as the `f32` it is stored in.
pub(super) fn check_value(x: f64, field: usize, text: impl Fn() -> String) -> Result<(), Problem> {
    if !x.is_finite() {
        return Err(Problem::NotFinite {
            field,
            text: text(),
        });
    }
    // Ratings are stored as f32: 1e50 would become infinite and 1e-50 zero (in a matrix,
    // "missing"), so a snapshot with either would load broken. Refuse them here.
    let size = x.abs();
    if x != 0.0 && !(f64::from(f32::MIN_POSITIVE)..=f64::from(f32::MAX)).contains(&size) {
        return Err(Problem::Unrepresentable {
            field,
            text: text(),
        });
    }
    Ok(())
}

/// A decimal number; plain digits (the common case by far) skip the general parser.
#[inline]
pub(super) fn parse_number(text: &str) -> Option<f64> {
    small_integer(text.as_bytes()).or_else(|| text.parse::<f64>().ok())
}

/// Up to 9 ASCII digits as a number: exact, and far cheaper than the float parser.
#[inline]
pub(super) fn small_integer(b: &[u8]) -> Option<f64> {
    if b.is_empty() || b.len() > 9 || !b.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(
        b.iter()
            .fold(0u32, |acc, &c| acc * 10 + u32::from(c - b'0'))
            .into(),
    )
}

fn shorten(text: &str) -> String {
    text.chars().take(40).collect()
}

pub(super) fn check_scale(x: f64, field: usize, scale: Option<RatingScale>) -> Result<(), Problem> {
    match scale {
        Some(s) if !s.contains(x) => Err(Problem::OutOfScale {
            field,
            value: x,
            min: s.min,
            max: s.max,
        }),
        _ => Ok(()),
    }
}
