//! Parquet snapshots: files written here with `parquet`'s own writer (integer ids, doubles,
//! timestamps, NULLs, other codecs) and by `mixrec convert --to parquet`, read through the
//! same collector as text, with errors naming the file, the column and the row.

use std::path::Path;
use std::sync::Arc;

use mixrec::data::{
    self, Columns, DataError, Duplicates, Fingerprint, Format, Guard, LoadOptions, Problem, Source,
};
use parquet::basic::{Compression, ZstdLevel};
use parquet::data_type::{ByteArray, ByteArrayType, DoubleType, Int32Type, Int64Type};
use parquet::file::properties::WriterProperties;
use parquet::file::reader::{FileReader, SerializedFileReader};
use parquet::file::writer::SerializedFileWriter;
use parquet::schema::parser::parse_message_type;

use crate::loaders::by_id;
use crate::support::mixrec_ok;

/// One column's values in a row group; `defs`: definition levels of an optional column.
enum Col {
    I32(Vec<i32>),
    I64(Vec<i64>),
    F64(Vec<f64>, Option<Vec<i16>>),
    Text(Vec<&'static str>),
}

/// Writes `groups` (each a row group, one `Col` per schema column) to `path`.
fn write(path: &Path, schema: &str, compression: Compression, groups: Vec<Vec<Col>>) {
    let schema = Arc::new(parse_message_type(schema).unwrap());
    let props = Arc::new(
        WriterProperties::builder()
            .set_compression(compression)
            .build(),
    );
    let file = std::fs::File::create(path).unwrap();
    let mut w = SerializedFileWriter::new(file, schema, props).unwrap();
    for group in groups {
        let mut g = w.next_row_group().unwrap();
        for col in group {
            let mut c = g.next_column().unwrap().unwrap();
            match col {
                Col::I32(v) => c.typed::<Int32Type>().write_batch(&v, None, None),
                Col::I64(v) => c.typed::<Int64Type>().write_batch(&v, None, None),
                Col::F64(v, d) => c.typed::<DoubleType>().write_batch(&v, d.as_deref(), None),
                Col::Text(v) => {
                    let v: Vec<ByteArray> = v.into_iter().map(ByteArray::from).collect();
                    c.typed::<ByteArrayType>().write_batch(&v, None, None)
                }
            }
            .unwrap();
            c.close().unwrap();
        }
        g.close().unwrap();
    }
    w.close().unwrap();
}

fn options(duplicates: Duplicates, columns: &str) -> LoadOptions {
    LoadOptions {
        duplicates,
        columns: columns.parse().unwrap(),
        ..Default::default()
    }
}

/// The rating of (`user`, `item`) by id.
fn rating(s: &data::Snapshot, user: &str, item: &str) -> Option<f32> {
    let (u, i) = (s.users.index(user)?, s.items.index(item)?);
    s.ratings.get(u, i as u32)
}

const STAMPED: &str = "message m {
    required int64 user;
    required int32 item;
    required double score;
    required int64 at (TIMESTAMP(MILLIS,true));
}";

/// Two row groups; user 1 rates item 10 at t = 2 s (row 1), then again at t = 1 s (row 4,
/// in the second group): the earlier row is the latest.
fn stamped(path: &Path) {
    let group = |u: Vec<i64>, i: Vec<i32>, x: Vec<f64>, t: Vec<i64>| {
        vec![Col::I64(u), Col::I32(i), Col::F64(x, None), Col::I64(t)]
    };
    let groups = vec![
        group(
            vec![1, 2, 2],
            vec![10, 10, 11],
            vec![4.5, 3.0, 1.25],
            vec![2000, 10, 10],
        ),
        group(vec![1, 3], vec![10, 11], vec![2.0, 5.0], vec![1000, 10]),
    ];
    write(path, STAMPED, Compression::SNAPPY, groups);
}

#[test]
fn integer_ids_doubles_and_timestamps_under_both_re_rating_policies() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ratings.parquet");
    stamped(&path);
    let err = data::load(&path, options(Duplicates::Error, "user,item,score,at")).unwrap_err();
    match &err {
        DataError::Row {
            row: 4,
            problem:
                Problem::DuplicateRow {
                    user,
                    item,
                    first_row: 1,
                },
            ..
        } => assert_eq!((user.as_str(), item.as_str()), ("1", "10")),
        other => panic!("expected the duplicate on row 4, got {other:?}"),
    }
    assert!(
        err.to_string()
            .starts_with(&format!("{}: row 4: ", path.display())),
        "{err}"
    );

    let s = data::load(&path, options(Duplicates::Latest, "user,item,score,at")).unwrap();
    assert_eq!(s.format, Format::Parquet);
    assert_eq!(s.replaced, 1);
    assert_eq!(s.ratings.nnz(), 4);
    assert_eq!(rating(&s, "1", "10"), Some(4.5), "the later timestamp wins");
    assert_eq!(rating(&s, "2", "11"), Some(1.25));
    assert_eq!(rating(&s, "3", "11"), Some(5.0));
    // Without the timestamp column the row read last wins.
    let s = data::load(&path, options(Duplicates::Latest, "user,item,score")).unwrap();
    assert_eq!(rating(&s, "1", "10"), Some(2.0));
}

#[test]
fn a_null_rating_names_file_column_and_row() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ratings.parquet");
    let schema = "message m { required binary user_id (UTF8); required binary item_id (UTF8);
        optional double rating; }";
    let group = vec![
        Col::Text(vec!["u1", "u2", "u3"]),
        Col::Text(vec!["m1", "m1", "m2"]),
        // Rows 1 and 3 hold a value, row 2 is NULL.
        Col::F64(vec![4.0, 3.0], Some(vec![1, 0, 1])),
    ];
    write(&path, schema, Compression::UNCOMPRESSED, vec![group]);
    let err = data::load(&path, LoadOptions::default()).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("{}: row 2: rating is NULL", path.display())
    );
}

#[test]
fn a_string_rating_column_names_file_column_and_type() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ratings.parquet");
    let schema = "message m { required binary user_id (UTF8); required binary item_id (UTF8);
        required binary rating (UTF8); }";
    let group = vec![
        Col::Text(vec!["u1"]),
        Col::Text(vec!["m1"]),
        Col::Text(vec!["4.5"]),
    ];
    write(&path, schema, Compression::UNCOMPRESSED, vec![group]);
    let err = data::load(&path, LoadOptions::default()).unwrap_err();
    let text = err.to_string();
    assert!(
        matches!(&err, DataError::Row { row: 1, problem: Problem::ColumnType { column, .. }, .. } if column == "rating"),
        "{err:?}"
    );
    assert!(
        text.starts_with(&format!("{}: row 1: column rating", path.display())),
        "{text}"
    );
    assert!(
        text.contains("BYTE_ARRAY") && text.contains("expected an integer, float or decimal"),
        "{text}"
    );
}

#[test]
fn a_missing_column_is_named_with_those_the_file_has() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ratings.parquet");
    stamped(&path);
    let err = data::load(&path, LoadOptions::default())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("no column named \"user_id\"") && err.contains("user, item, score, at"),
        "{err}"
    );
}

#[test]
fn snappy_and_zstd_files_read_the_same() {
    let dir = tempfile::tempdir().unwrap();
    let schema = "message m { required binary user_id (UTF8); required int64 item_id;
        required double rating; }";
    let group = || {
        vec![
            Col::Text(vec!["a", "b", "a"]),
            Col::I64(vec![7, 7, 9]),
            Col::F64(vec![1.0, 2.5, 5.0], None),
        ]
    };
    let mut loaded = Vec::new();
    for (name, codec) in [
        ("snappy", Compression::SNAPPY),
        ("zstd", Compression::ZSTD(ZstdLevel::try_new(3).unwrap())),
    ] {
        let path = dir.path().join(format!("{name}.parquet"));
        write(&path, schema, codec, vec![group()]);
        let reader = SerializedFileReader::new(std::fs::File::open(&path).unwrap()).unwrap();
        // The file really is in that codec (the file records the codec, not the zstd level).
        let written = reader.metadata().row_group(0).column(2).compression();
        assert_eq!(
            std::mem::discriminant(&written),
            std::mem::discriminant(&codec)
        );
        loaded.push(by_id(&data::load(&path, LoadOptions::default()).unwrap()));
    }
    assert_eq!(loaded[0], loaded[1]);
    let want: Vec<(String, String, f32)> = [("a", "7", 1.0), ("a", "9", 5.0), ("b", "7", 2.5)]
        .map(|(u, i, x)| (u.to_owned(), i.to_owned(), x))
        .into();
    assert_eq!(loaded[0], want);
}

#[test]
fn the_stop_flag_is_asked_and_the_fingerprint_is_the_whole_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ratings.parquet");
    stamped(&path);
    let stop = || true;
    let guard = Guard {
        stop: &stop,
        budget: None,
    };
    let err = data::load_until(&path, options(Duplicates::Latest, "user,item,score"), guard);
    assert!(matches!(err, Err(DataError::Cancelled { .. })), "{err:?}");
    // The footer's row count (5) is checked against the budget before a row is read.
    let budget = data::Budget {
        max_bytes: 4 * 100,
        bytes_per_rating: 100,
    };
    let guard = Guard {
        stop: data::NEVER,
        budget: Some(budget),
    };
    let err = data::load_until(&path, options(Duplicates::Latest, "user,item,score"), guard);
    assert!(
        matches!(err, Err(DataError::TooLarge { ratings: 5, .. })),
        "{err:?}"
    );

    let source = Source::File {
        path: path.clone(),
        format: Format::Auto,
        titles: None,
        duplicates: Duplicates::Latest,
        columns: "user,item,score,at".parse::<Columns>().unwrap(),
    };
    let loaded = source.load().unwrap();
    let bytes = std::fs::read(&path).unwrap();
    assert_eq!(loaded.fingerprint, Fingerprint::sha256(&bytes));
    assert_eq!(loaded.snapshot.format, Format::Parquet);
}

#[test]
fn convert_to_parquet_round_trips_a_csv_and_auto_detects_it() {
    let dir = tempfile::tempdir().unwrap();
    let p = |name: &str| dir.path().join(name).to_str().unwrap().to_owned();
    let (csv, pq) = (p("r.csv"), p("r.parquet"));
    mixrec_ok(&[
        "synth",
        "--users",
        "300",
        "--items",
        "40",
        "--ratings",
        "4000",
        "--types",
        "3",
        "--seed",
        "7",
        "--out",
        &csv,
    ]);
    mixrec_ok(&["convert", "--data", &csv, "--out", &pq, "--to", "parquet"]);
    let text = data::load(Path::new(&csv), LoadOptions::default()).unwrap();
    let auto = data::load(Path::new(&pq), LoadOptions::default()).unwrap();
    assert_eq!(auto.format, Format::Parquet);
    assert_eq!(by_id(&auto), by_id(&text));
    assert_eq!(
        (auto.scale, auto.ratings.n_users()),
        (text.scale, text.ratings.n_users())
    );
    // Users come back in the same order (rows are written user by user).
    assert!((0..text.ratings.n_users()).all(|u| auto.users.name(u) == text.users.name(u)));
    // Named explicitly, the same; the file holds zstd column chunks.
    let explicit = LoadOptions {
        format: Format::Parquet,
        ..Default::default()
    };
    assert_eq!(
        by_id(&data::load(Path::new(&pq), explicit).unwrap()),
        by_id(&text)
    );
    let reader = SerializedFileReader::new(std::fs::File::open(&pq).unwrap()).unwrap();
    assert!(matches!(
        reader.metadata().row_group(0).column(0).compression(),
        Compression::ZSTD(_)
    ));
    // And the CLI reads it back: parquet -> CSV gives the ratings of the first CSV.
    let back = p("back.csv");
    mixrec_ok(&["convert", "--data", &pq, "--out", &back, "--to", "triples"]);
    assert_eq!(
        by_id(&data::load(Path::new(&back), LoadOptions::default()).unwrap()),
        by_id(&text)
    );
}

#[test]
fn decimal_ratings_and_date_stamps_are_read() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ratings.parquet");
    let schema = "message m { required binary user_id (UTF8); required binary item_id (UTF8);
        required int32 rating (DECIMAL(3,1)); required int32 timestamp (DATE); }";
    let group = vec![
        Col::Text(vec!["u1", "u1", "u2"]),
        Col::Text(vec!["m1", "m1", "m1"]),
        // 4.5, then 2.5 a day earlier (so 4.5 stays), then 3.0.
        Col::I32(vec![45, 25, 30]),
        Col::I32(vec![20_000, 19_999, 20_000]),
    ];
    write(&path, schema, Compression::SNAPPY, vec![group]);
    let s = data::load(
        &path,
        options(Duplicates::Latest, "user_id,item_id,rating,timestamp"),
    )
    .unwrap();
    assert_eq!(
        (rating(&s, "u1", "m1"), rating(&s, "u2", "m1")),
        (Some(4.5), Some(3.0))
    );
    assert_eq!(s.replaced, 1);
}
