//! The column types a PostgreSQL ratings query may give, checked from the prepared
//! statement, and the decoding of one field of each from PostgreSQL's binary form: ids as text
//! or big-endian integers, ratings as integers, floats or `numeric` (its base-10000 digits),
//! timestamps as microseconds or days since 2000-01-01.
//!
//! Must not import: the other sources, anything above `src/data`.

use postgres::types::Type;

use super::error::PostgresError;
use crate::data::Problem;

/// 2000-01-01 in Unix seconds: PostgreSQL's epoch for dates and timestamps.
const PG_EPOCH: f64 = 946_684_800.0;

/// How an id column is encoded (integers of any width: [`integer`] reads the width off the
/// field).
#[derive(Clone, Copy)]
pub(super) enum Id {
    Text,
    Int,
}

/// How a number column is encoded.
#[derive(Clone, Copy)]
pub(super) enum Number {
    Int,
    Float4,
    Float8,
    Numeric,
}

/// How the timestamp column is encoded.
#[derive(Clone, Copy)]
pub(super) enum Stamp {
    /// Microseconds since 2000-01-01 (`timestamp`, `timestamptz`).
    Micros,
    /// Days since 2000-01-01.
    Date,
    /// A number, as it is (a Unix time, a version).
    Number(Number),
}

/// The checked types of the result's columns.
pub(super) struct Columns {
    pub(super) user: Id,
    pub(super) item: Id,
    pub(super) rating: Number,
    pub(super) stamp: Option<Stamp>,
}

const ID_TYPES: &str = "text, varchar, char, name, int2, int4 or int8";
const NUMBER_TYPES: &str = "int2, int4, int8, float4, float8 or numeric";
const STAMP_TYPES: &str = "timestamp, timestamptz, date or a number";

impl Columns {
    pub(super) fn of(columns: &[postgres::Column]) -> Result<Self, PostgresError> {
        if !(3..=4).contains(&columns.len()) {
            return Err(PostgresError::ColumnCount {
                found: columns.len(),
            });
        }
        let wrong = |c: usize, expected| PostgresError::ColumnType {
            column: c + 1,
            name: columns[c].name().to_owned(),
            found: columns[c].type_().name().to_owned(),
            expected,
        };
        let id = |c: usize| id_type(columns[c].type_()).ok_or_else(|| wrong(c, ID_TYPES));
        let rating = number_type(columns[2].type_()).ok_or_else(|| wrong(2, NUMBER_TYPES))?;
        let stamp = match columns.get(3).map(postgres::Column::type_) {
            None => None,
            Some(t) if *t == Type::TIMESTAMP || *t == Type::TIMESTAMPTZ => Some(Stamp::Micros),
            Some(t) if *t == Type::DATE => Some(Stamp::Date),
            Some(t) => Some(Stamp::Number(
                number_type(t).ok_or_else(|| wrong(3, STAMP_TYPES))?,
            )),
        };
        Ok(Self {
            user: id(0)?,
            item: id(1)?,
            rating,
            stamp,
        })
    }

    pub(super) fn len(&self) -> usize {
        3 + usize::from(self.stamp.is_some())
    }
}

fn id_type(t: &Type) -> Option<Id> {
    match t {
        t if [Type::TEXT, Type::VARCHAR, Type::BPCHAR, Type::NAME].contains(t) => Some(Id::Text),
        t => match number_type(t)? {
            Number::Int => Some(Id::Int),
            _ => None,
        },
    }
}

fn number_type(t: &Type) -> Option<Number> {
    Some(match t {
        t if [Type::INT2, Type::INT4, Type::INT8].contains(t) => Number::Int,
        t if *t == Type::FLOAT4 => Number::Float4,
        t if *t == Type::FLOAT8 => Number::Float8,
        t if *t == Type::NUMERIC => Number::Numeric,
        _ => return None,
    })
}

/// A field's bytes as `N` bytes, or what is wrong.
fn fixed<const N: usize>(b: &[u8]) -> Result<[u8; N], Problem> {
    b.try_into().map_err(|_| Problem::Malformed {
        reason: format!("{} bytes where {N} were expected", b.len()),
    })
}

/// An id field as text.
pub(super) fn id(b: &[u8], kind: Id) -> Result<std::borrow::Cow<'_, str>, Problem> {
    match kind {
        Id::Text => std::str::from_utf8(b)
            .map(std::borrow::Cow::Borrowed)
            .map_err(|_| Problem::NotUtf8),
        Id::Int => Ok(std::borrow::Cow::Owned(integer(b)?.to_string())),
    }
}

/// A big-endian `int2`, `int4` or `int8`.
fn integer(b: &[u8]) -> Result<i64, Problem> {
    Ok(match b.len() {
        2 => i16::from_be_bytes(fixed(b)?).into(),
        4 => i32::from_be_bytes(fixed(b)?).into(),
        _ => i64::from_be_bytes(fixed(b)?),
    })
}

/// A number field.
pub(super) fn number(b: &[u8], kind: Number) -> Result<f64, Problem> {
    match kind {
        Number::Int => Ok(integer(b)? as f64),
        Number::Float4 => Ok(f32::from_be_bytes(fixed(b)?).into()),
        Number::Float8 => Ok(f64::from_be_bytes(fixed(b)?)),
        Number::Numeric => numeric(b),
    }
}

/// A timestamp field, in Unix seconds.
pub(super) fn seconds(b: &[u8], kind: Stamp) -> Result<f64, Problem> {
    match kind {
        Stamp::Micros => Ok(PG_EPOCH + i64::from_be_bytes(fixed(b)?) as f64 / 1e6),
        Stamp::Date => Ok(PG_EPOCH + f64::from(i32::from_be_bytes(fixed(b)?)) * 86_400.0),
        Stamp::Number(n) => number(b, n),
    }
}

/// `numeric` in its binary form: digit count, weight, sign, display scale (each 16 bits),
/// then base-10000 digits, most significant first:
/// value = ± Σ_i digit_i · 10000^(weight − i). NaN and the infinities come back as such (and
/// are refused as not finite).
fn numeric(b: &[u8]) -> Result<f64, Problem> {
    let word = |i: usize| -> Result<u16, Problem> {
        b.get(2 * i..2 * i + 2)
            .map(|w| u16::from_be_bytes([w[0], w[1]]))
            .ok_or_else(|| Problem::Malformed {
                reason: format!("numeric of {} bytes is cut short", b.len()),
            })
    };
    let (ndigits, weight, sign) = (word(0)?, word(1)? as i16, word(2)?);
    match sign {
        0x0000 | 0x4000 => {}
        0xC000 => return Ok(f64::NAN),
        0xD000 => return Ok(f64::INFINITY),
        0xF000 => return Ok(f64::NEG_INFINITY),
        s => {
            let reason = format!("numeric with sign word {s:#06x}");
            return Err(Problem::Malformed { reason });
        }
    }
    let mut value = 0.0;
    for i in 0..usize::from(ndigits) {
        let digit = f64::from(word(4 + i)?);
        value += digit * 10_000f64.powi(i32::from(weight) - i as i32);
    }
    Ok(if sign == 0x4000 { -value } else { value })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The binary form of a numeric: (ndigits, weight, sign, dscale, digits...).
    fn numeric_bytes(words: &[u16]) -> Vec<u8> {
        words.iter().flat_map(|w| w.to_be_bytes()).collect()
    }

    #[test]
    fn numerics_decode_from_their_base_10000_digits() {
        // 4.5 = 4 · 10000^0 + 5000 · 10000^-1; -12345.6 = -(1·10000 + 2345 + 6000/10000).
        assert_eq!(numeric(&numeric_bytes(&[2, 0, 0, 1, 4, 5000])), Ok(4.5));
        let x = numeric(&numeric_bytes(&[3, 1, 0x4000, 1, 1, 2345, 6000])).unwrap();
        assert!((x + 12345.6).abs() < 1e-9, "{x}");
        assert_eq!(numeric(&numeric_bytes(&[0, 0, 0, 0])), Ok(0.0));
        assert!(
            numeric(&numeric_bytes(&[0, 0, 0xC000, 0]))
                .unwrap()
                .is_nan()
        );
        assert!(numeric(&numeric_bytes(&[2, 0, 0])).is_err());
    }

    #[test]
    fn timestamps_are_unix_seconds() {
        // 2000-01-02 00:00:01 UTC is 86401 s after PostgreSQL's epoch.
        let micros = 86_401_000_000i64.to_be_bytes();
        assert_eq!(seconds(&micros, Stamp::Micros), Ok(PG_EPOCH + 86_401.0));
        assert_eq!(
            seconds(&1i32.to_be_bytes(), Stamp::Date),
            Ok(PG_EPOCH + 86_400.0)
        );
    }
}
