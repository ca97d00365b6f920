//! Reading a Parquet snapshot from its bytes: the named columns found and type-checked from
//! the footer, then each row group's column chunks decoded a batch at a time into the shared
//! row collector (`collect.rs`), so every check and the re-rating policy are those of a text
//! file or a database.
//!
//! Must not import: anything above `src/data`; the other readers.

use std::path::Path;

use bytes::Bytes;
use parquet::errors::ParquetError;
use parquet::file::reader::{FileReader, RowGroupReader, SerializedFileReader};
use parquet::schema::types::SchemaDescriptor;

use super::cells::{self, Cursor, Kind, Role};
use super::{BATCH, Columns};
use crate::data::collect::Collector;
use crate::data::fields::{check_scale, check_value};
use crate::data::{DataError, Format, Guard, Problem, RatingScale, Snapshot};

/// The columns to read: (index in the schema, kind), for user, item, rating and timestamp.
struct Layout {
    user: (usize, Kind),
    item: (usize, Kind),
    rating: (usize, Kind),
    stamp: Option<(usize, Kind)>,
}

/// Reads the Parquet file whose bytes are `bytes`; `path` names it in errors.
pub(crate) fn read_parquet(
    bytes: Bytes,
    path: &Path,
    columns: &Columns,
    scale: Option<RatingScale>,
    duplicates: crate::data::Duplicates,
    guard: Guard<'_>,
) -> Result<Snapshot, DataError> {
    let corrupt = |e: ParquetError| DataError::Corrupt {
        path: path.to_owned(),
        reason: format!("not a readable Parquet file: {e}"),
    };
    let file = SerializedFileReader::new(bytes).map_err(corrupt)?;
    let meta = file.metadata().file_metadata();
    if let Some(budget) = guard.budget {
        // The footer says how many rows there are: the bound is checked before any is read.
        budget.check(u64::try_from(meta.num_rows()).unwrap_or(0), path)?;
    }
    let mut got = Collector::new(duplicates);
    let layout = Layout::find(meta.schema_descr(), columns, got.wants_stamps(), path)?;
    let mut read = Read {
        path,
        scale,
        got: &mut got,
        row: 0,
        observed: None,
        buf: [String::new(), String::new()],
    };
    for g in 0..file.num_row_groups() {
        let group = file.get_row_group(g).map_err(corrupt)?;
        let mut cursors = layout.cursors(&*group).map_err(corrupt)?;
        read.group(&mut cursors, guard)?;
    }
    let observed = read.observed;
    finish(got, observed, path, scale)
}

/// The snapshot of every row read; `observed`: their min and max rating.
fn finish(
    got: Collector,
    observed: Option<(f64, f64)>,
    path: &Path,
    scale: Option<RatingScale>,
) -> Result<Snapshot, DataError> {
    let collected = got.finish().map_err(|d| DataError::Row {
        path: path.to_owned(),
        row: d.second as u64 + 1,
        problem: Problem::DuplicateRow {
            user: d.user,
            item: d.item,
            first_row: d.first as u64 + 1,
        },
    })?;
    let Some((min, max)) = observed else {
        return Err(DataError::Empty {
            path: path.to_owned(),
        });
    };
    Ok(Snapshot {
        ratings: collected.ratings,
        users: collected.users,
        items: collected.items,
        scale: scale.unwrap_or(RatingScale { min, max }),
        format: Format::Parquet,
        path: path.to_owned(),
        replaced: collected.replaced,
    })
}

impl Layout {
    /// The named columns of `schema`, each checked for its role; the timestamp only when
    /// `stamps` are wanted and the file has the column.
    fn find(
        schema: &SchemaDescriptor,
        columns: &Columns,
        stamps: bool,
        path: &Path,
    ) -> Result<Self, DataError> {
        let find = |name: &str, role: Role| -> Result<Option<(usize, Kind)>, DataError> {
            let Some(i) = (0..schema.num_columns()).find(|&i| schema.column(i).name() == name)
            else {
                return Ok(None);
            };
            let kind = Kind::of(&schema.column(i), role).map_err(|problem| DataError::Row {
                path: path.to_owned(),
                row: 1,
                problem,
            })?;
            Ok(Some((i, kind)))
        };
        let required =
            |name: &str, role: Role| find(name, role)?.ok_or_else(|| missing(schema, name, path));
        let stamp = match &columns.stamp {
            Some(name) if stamps => find(name, Role::Stamp)?,
            _ => None,
        };
        Ok(Self {
            user: required(&columns.user, Role::Id)?,
            item: required(&columns.item, Role::Id)?,
            rating: required(&columns.rating, Role::Rating)?,
            stamp,
        })
    }

    /// A cursor over each column of `group`: user, item, rating, then the timestamp if any.
    fn cursors(&self, group: &dyn RowGroupReader) -> Result<Vec<Cursor>, ParquetError> {
        let cols = [
            Some(self.user),
            Some(self.item),
            Some(self.rating),
            self.stamp,
        ];
        cols.into_iter()
            .flatten()
            .map(|(i, kind)| {
                let descr = group.metadata().column(i).column_descr();
                let (name, max_def) = (descr.name().to_owned(), descr.max_def_level());
                Ok(Cursor::new(
                    name,
                    kind,
                    max_def,
                    group.get_column_reader(i)?,
                ))
            })
            .collect()
    }
}

/// The error for a column the file does not have, listing those it has.
fn missing(schema: &SchemaDescriptor, name: &str, path: &Path) -> DataError {
    let names: Vec<&str> = schema.columns().iter().map(|c| c.name()).collect();
    DataError::Unsupported {
        path: path.to_owned(),
        reason: format!(
            "no column named {name:?} (the file has {}); name the columns with snapshot.columns",
            names.join(", ")
        ),
    }
}

/// The state of one file's read.
struct Read<'r> {
    path: &'r Path,
    scale: Option<RatingScale>,
    got: &'r mut Collector,
    /// Rows read so far (the 1-based number of the last one).
    row: u64,
    observed: Option<(f64, f64)>,
    /// The user and item ids of integer columns, written out.
    buf: [String; 2],
}

impl Read<'_> {
    /// Every row of one row group, a batch at a time.
    fn group(&mut self, cursors: &mut [Cursor], guard: Guard<'_>) -> Result<(), DataError> {
        loop {
            if (guard.stop)() {
                let path = self.path.to_owned();
                return Err(DataError::Cancelled { path });
            }
            let n = self.fill(cursors)?;
            if n == 0 {
                return Ok(());
            }
            for k in 0..n {
                self.row += 1;
                self.collect(cursors, k).map_err(|problem| DataError::Row {
                    path: self.path.to_owned(),
                    row: self.row,
                    problem,
                })?;
            }
        }
    }

    /// The next batch of every column; they must agree on its length.
    fn fill(&self, cursors: &mut [Cursor]) -> Result<usize, DataError> {
        let mut n = None;
        for c in cursors.iter_mut() {
            let got = c.fill(BATCH).map_err(|e| DataError::Corrupt {
                path: self.path.to_owned(),
                reason: format!("column {}: {e}", c.name),
            })?;
            if n.is_some_and(|n| n != got) {
                let reason = format!("column {} has a different number of rows", c.name);
                let path = self.path.to_owned();
                return Err(DataError::Corrupt { path, reason });
            }
            n = Some(got);
        }
        Ok(n.unwrap_or(0))
    }

    /// Row `k` of the batch, checked, into the collector.
    fn collect(&mut self, cursors: &mut [Cursor], k: usize) -> Result<(), Problem> {
        let [user, item, rating, stamp @ ..] = cursors else {
            unreachable!("a layout has user, item and rating columns")
        };
        let [user_buf, item_buf] = &mut self.buf;
        let user = cells::id(cell(user, k)?, user_buf)?;
        let item = cells::id(cell(item, k)?, item_buf)?;
        let kind = rating.kind;
        let x = cells::number(cell(rating, k)?, kind)?;
        check_value(x, 3, || x.to_string())?;
        check_scale(x, 3, self.scale)?;
        let stamp = match stamp.first_mut() {
            Some(c) => {
                let kind = c.kind;
                c.cell(k).map(|t| cells::number(t, kind)).transpose()?
            }
            None => None,
        };
        let (lo, hi) = self.observed.unwrap_or((x, x));
        self.observed = Some((lo.min(x), hi.max(x)));
        self.got.push(user, item, x, stamp)
    }
}

/// The cell of row `k`, or the NULL problem naming the column.
fn cell(c: &mut Cursor, k: usize) -> Result<cells::Cell<'_>, Problem> {
    if c.is_null(k) {
        let column = c.name.clone();
        return Err(Problem::NullIn { column });
    }
    Ok(c.cell(k).expect("not NULL"))
}
