//! One column of a Parquet row group, decoded a batch at a time: its type checked once
//! ([`Kind::of`]), then each row's cell read as an id, a number or a timestamp.
//!
//! Must not import: anything above `src/data`; the other readers.

use parquet::basic::{ConvertedType, LogicalType, TimeUnit, Type as Physical};
use parquet::column::reader::ColumnReader;
use parquet::data_type::{ByteArray, FixedLenByteArray, Int96};
use parquet::errors::ParquetError;
use parquet::schema::types::ColumnDescriptor;

use crate::data::Problem;

/// What a column is read as.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Role {
    /// A user or item id: integers or UTF-8 text.
    Id,
    /// A rating: integers, floats or decimals.
    Rating,
    /// A timestamp: integers or timestamps, in seconds.
    Stamp,
}

/// How a column's cells become values: checked from its schema before any row is read.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Kind {
    /// Integer ids, written in decimal.
    IntId,
    /// Text ids.
    TextId,
    /// A number: `cell / divisor` (10^scale for decimals, units per second for timestamps).
    Number { divisor: f64 },
    /// A decimal stored as big-endian two's complement bytes, `cell / divisor`.
    BigDecimal { divisor: f64 },
    /// A legacy INT96 timestamp (Impala, older Spark).
    Int96,
}

impl Kind {
    /// The kind of `column` in its `role`, or what is wrong with it.
    pub(super) fn of(column: &ColumnDescriptor, role: Role) -> Result<Self, Problem> {
        let (physical, converted) = (column.physical_type(), column.converted_type());
        let decimal = converted == ConvertedType::DECIMAL;
        let scale = 10f64.powi(column.type_scale().max(0));
        let int = matches!(physical, Physical::INT32 | Physical::INT64);
        let kind = match role {
            Role::Id if int && !decimal => Some(Self::IntId),
            Role::Id if physical == Physical::BYTE_ARRAY && !decimal => Some(Self::TextId),
            Role::Rating if int && (decimal || !is_time(column)) => {
                Some(Self::Number { divisor: scale })
            }
            Role::Rating if matches!(physical, Physical::FLOAT | Physical::DOUBLE) => {
                Some(Self::Number { divisor: 1.0 })
            }
            Role::Rating if decimal => Some(Self::BigDecimal { divisor: scale }),
            Role::Stamp if int => Some(Self::Number {
                divisor: per_second(column),
            }),
            Role::Stamp if physical == Physical::INT96 => Some(Self::Int96),
            _ => None,
        };
        if column.max_rep_level() > 0 {
            return Err(type_problem(column, role, "a repeated (list) column"));
        }
        kind.ok_or_else(|| type_problem(column, role, &describe(column)))
    }
}

/// Whether an integer column holds dates or times (not a rating).
fn is_time(column: &ColumnDescriptor) -> bool {
    matches!(
        column.logical_type_ref(),
        Some(LogicalType::Date | LogicalType::Time(_) | LogicalType::Timestamp(_))
    ) || matches!(
        column.converted_type(),
        ConvertedType::DATE | ConvertedType::TIMESTAMP_MILLIS | ConvertedType::TIMESTAMP_MICROS
    )
}

/// Units per second of an integer timestamp column; 1 for plain integers (taken as seconds;
/// only their order matters), 1/86400 for dates.
fn per_second(column: &ColumnDescriptor) -> f64 {
    match (column.logical_type_ref(), column.converted_type()) {
        (Some(LogicalType::Timestamp(t)), _) => match t.unit {
            TimeUnit::MILLIS => 1e3,
            TimeUnit::MICROS => 1e6,
            TimeUnit::NANOS => 1e9,
        },
        (Some(LogicalType::Date), _) | (_, ConvertedType::DATE) => 1.0 / 86_400.0,
        (_, ConvertedType::TIMESTAMP_MILLIS) => 1e3,
        (_, ConvertedType::TIMESTAMP_MICROS) => 1e6,
        _ => 1.0,
    }
}

/// The column's type as the error shows it: physical, then logical type.
fn describe(column: &ColumnDescriptor) -> String {
    match column.logical_type_ref() {
        Some(logical) => format!("{} ({logical:?})", column.physical_type()),
        None if column.converted_type() != ConvertedType::NONE => {
            format!("{} ({})", column.physical_type(), column.converted_type())
        }
        None => column.physical_type().to_string(),
    }
}

fn type_problem(column: &ColumnDescriptor, role: Role, found: &str) -> Problem {
    let expected = match role {
        Role::Id => "an integer or string column",
        Role::Rating => "an integer, float or decimal column",
        Role::Stamp => "an integer or timestamp column",
    };
    Problem::ColumnType {
        column: column.name().to_owned(),
        found: found.to_owned(),
        expected,
    }
}

/// One row's cell.
pub(super) enum Cell<'a> {
    Int(i64),
    Float(f64),
    Bytes(&'a [u8]),
    Int96(&'a Int96),
}

/// The decoded values of one batch, by physical type.
enum Values {
    I32(Vec<i32>),
    I64(Vec<i64>),
    I96(Vec<Int96>),
    F32(Vec<f32>),
    F64(Vec<f64>),
    Bytes(Vec<ByteArray>),
    Fixed(Vec<FixedLenByteArray>),
    Bool(Vec<bool>),
}

/// One column of a row group, read a batch at a time; cells are taken in row order.
pub(super) struct Cursor {
    /// The column's name, for errors.
    pub(super) name: String,
    pub(super) kind: Kind,
    reader: ColumnReader,
    values: Values,
    /// Definition levels of the batch: below `max_def`, the row is NULL.
    defs: Vec<i16>,
    max_def: i16,
    /// The next value of `values` (NULL rows have none).
    next: usize,
}

impl Cursor {
    /// A cursor over `reader`, a column already checked to be of `kind`.
    pub(super) fn new(name: String, kind: Kind, max_def: i16, reader: ColumnReader) -> Self {
        let values = match &reader {
            ColumnReader::BoolColumnReader(_) => Values::Bool(Vec::new()),
            ColumnReader::Int32ColumnReader(_) => Values::I32(Vec::new()),
            ColumnReader::Int64ColumnReader(_) => Values::I64(Vec::new()),
            ColumnReader::Int96ColumnReader(_) => Values::I96(Vec::new()),
            ColumnReader::FloatColumnReader(_) => Values::F32(Vec::new()),
            ColumnReader::DoubleColumnReader(_) => Values::F64(Vec::new()),
            ColumnReader::ByteArrayColumnReader(_) => Values::Bytes(Vec::new()),
            ColumnReader::FixedLenByteArrayColumnReader(_) => Values::Fixed(Vec::new()),
        };
        Self {
            name,
            kind,
            reader,
            values,
            defs: Vec::new(),
            max_def,
            next: 0,
        }
    }

    /// Decodes the next `n` rows at most; returns how many.
    pub(super) fn fill(&mut self, n: usize) -> Result<usize, ParquetError> {
        use ColumnReader as R;
        self.defs.clear();
        self.next = 0;
        let defs = Some(&mut self.defs);
        let (rows, _, _) = match (&mut self.reader, &mut self.values) {
            (R::BoolColumnReader(r), Values::Bool(v)) => read(r, n, defs, v)?,
            (R::Int32ColumnReader(r), Values::I32(v)) => read(r, n, defs, v)?,
            (R::Int64ColumnReader(r), Values::I64(v)) => read(r, n, defs, v)?,
            (R::Int96ColumnReader(r), Values::I96(v)) => read(r, n, defs, v)?,
            (R::FloatColumnReader(r), Values::F32(v)) => read(r, n, defs, v)?,
            (R::DoubleColumnReader(r), Values::F64(v)) => read(r, n, defs, v)?,
            (R::ByteArrayColumnReader(r), Values::Bytes(v)) => read(r, n, defs, v)?,
            (R::FixedLenByteArrayColumnReader(r), Values::Fixed(v)) => read(r, n, defs, v)?,
            _ => unreachable!("the values are made for the reader"),
        };
        Ok(rows)
    }

    /// Whether row `k` of the batch is NULL.
    pub(super) fn is_null(&self, k: usize) -> bool {
        self.max_def > 0 && self.defs[k] < self.max_def
    }

    /// The cell of row `k` of the batch; `None`: NULL. Called for every row, in order.
    pub(super) fn cell(&mut self, k: usize) -> Option<Cell<'_>> {
        if self.is_null(k) {
            return None;
        }
        let i = self.next;
        self.next += 1;
        Some(match &self.values {
            Values::Bool(v) => Cell::Int(i64::from(v[i])),
            Values::I32(v) => Cell::Int(v[i].into()),
            Values::I64(v) => Cell::Int(v[i]),
            Values::I96(v) => Cell::Int96(&v[i]),
            Values::F32(v) => Cell::Float(v[i].into()),
            Values::F64(v) => Cell::Float(v[i]),
            Values::Bytes(v) => Cell::Bytes(v[i].data()),
            Values::Fixed(v) => Cell::Bytes(v[i].data()),
        })
    }
}

/// Clears `values` and reads up to `n` rows into it.
fn read<T: parquet::data_type::DataType>(
    r: &mut parquet::column::reader::ColumnReaderImpl<T>,
    n: usize,
    defs: Option<&mut Vec<i16>>,
    values: &mut Vec<T::T>,
) -> Result<(usize, usize, usize), ParquetError> {
    values.clear();
    r.read_records(n, defs, None, values)
}

/// A number cell of a column of `kind` (rating or timestamp) as `f64`.
pub(super) fn number(cell: Cell<'_>, kind: Kind) -> Result<f64, Problem> {
    Ok(match (cell, kind) {
        (Cell::Int(i), Kind::Number { divisor }) => i as f64 / divisor,
        (Cell::Float(x), _) => x,
        (Cell::Bytes(b), Kind::BigDecimal { divisor }) => big_endian(b)? as f64 / divisor,
        (Cell::Int96(t), _) => t.to_seconds() as f64,
        _ => unreachable!("the kind is checked against the column"),
    })
}

/// A big-endian two's complement integer of up to 16 bytes.
fn big_endian(b: &[u8]) -> Result<i128, Problem> {
    if b.is_empty() || b.len() > 16 {
        let reason = format!("a decimal of {} bytes (1 to 16 are read)", b.len());
        return Err(Problem::Malformed { reason });
    }
    let fill = if b[0] & 0x80 != 0 { 0xff } else { 0 };
    let mut full = [fill; 16];
    full[16 - b.len()..].copy_from_slice(b);
    Ok(i128::from_be_bytes(full))
}

/// An id cell as text: integers written into `buf`, text checked to be UTF-8.
pub(super) fn id<'a>(cell: Cell<'a>, buf: &'a mut String) -> Result<&'a str, Problem> {
    match cell {
        Cell::Bytes(b) => std::str::from_utf8(b).map_err(|_| Problem::NotUtf8),
        Cell::Int(i) => {
            use std::fmt::Write;
            buf.clear();
            write!(buf, "{i}").expect("a String takes any write");
            Ok(buf)
        }
        _ => unreachable!("the kind is checked against the column"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn big_endian_decimals_keep_their_sign() {
        assert_eq!(big_endian(&[0x01, 0x00]), Ok(256));
        assert_eq!(big_endian(&[0xff, 0x38]), Ok(-200));
        assert!(big_endian(&[]).is_err());
    }
}
