//! Writing a snapshot as Parquet (`mixrec convert --to parquet`): `user_id` and `item_id` as
//! UTF-8 strings, `rating` as FLOAT (the `f32` a rating is held in, so it reads back exactly),
//! zstd-compressed, [`ROWS_PER_GROUP`] rows per row group, rows in user order.
//!
//! Must not import: anything above `src/data`; the readers.

use std::io::{self, Write};
use std::sync::Arc;

use parquet::basic::{Compression, ZstdLevel};
use parquet::data_type::{ByteArray, ByteArrayType, FloatType};
use parquet::errors::ParquetError;
use parquet::file::properties::WriterProperties;
use parquet::file::writer::SerializedFileWriter;
use parquet::schema::parser::parse_message_type;

use super::ROWS_PER_GROUP;
use crate::data::Snapshot;

/// The schema written: what `snapshot.columns` names by default.
const SCHEMA: &str = "message ratings {
    required binary user_id (UTF8);
    required binary item_id (UTF8);
    required float rating;
}";

/// Writes the observed ratings of `snapshot` as a Parquet file.
pub fn write_parquet<W: Write + Send>(out: W, snapshot: &Snapshot) -> io::Result<()> {
    write(out, snapshot).map_err(|e| match e {
        ParquetError::External(e) => match e.downcast::<io::Error>() {
            Ok(e) => *e,
            Err(e) => io::Error::other(e),
        },
        e => io::Error::other(e),
    })
}

fn write<W: Write + Send>(out: W, snapshot: &Snapshot) -> Result<(), ParquetError> {
    let schema = Arc::new(parse_message_type(SCHEMA)?);
    let properties = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::default()))
        .set_max_row_group_row_count(Some(ROWS_PER_GROUP))
        .build();
    let mut writer = SerializedFileWriter::new(out, schema, Arc::new(properties))?;
    let (users, items) = (&snapshot.users, &snapshot.items);
    let mut group = Group::default();
    for (u, i, x) in snapshot.ratings.iter() {
        group.users.push(ByteArray::from(users.name(u).as_ref()));
        group
            .items
            .push(ByteArray::from(items.name(i as usize).as_ref()));
        group.ratings.push(x);
        if group.ratings.len() == ROWS_PER_GROUP {
            group.write(&mut writer)?;
        }
    }
    if !group.ratings.is_empty() {
        group.write(&mut writer)?;
    }
    writer.close()?;
    Ok(())
}

/// The columns of one row group, gathered before it is written.
#[derive(Default)]
struct Group {
    users: Vec<ByteArray>,
    items: Vec<ByteArray>,
    ratings: Vec<f32>,
}

impl Group {
    /// Writes the group as one row group and empties it.
    fn write<W: Write + Send>(
        &mut self,
        writer: &mut SerializedFileWriter<W>,
    ) -> Result<(), ParquetError> {
        let mut group = writer.next_row_group()?;
        for ids in [&self.users, &self.items] {
            let mut column = group.next_column()?.expect("three columns");
            column
                .typed::<ByteArrayType>()
                .write_batch(ids, None, None)?;
            column.close()?;
        }
        let mut column = group.next_column()?.expect("three columns");
        column
            .typed::<FloatType>()
            .write_batch(&self.ratings, None, None)?;
        column.close()?;
        group.close()?;
        self.users.clear();
        self.items.clear();
        self.ratings.clear();
        Ok(())
    }
}
