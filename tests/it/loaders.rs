//! Snapshot loading: what is accepted, what is refused (with file, line and problem), and
//! round trips through the writers.

use std::io::Write;

use mixrec::data::{
    self, DataError, Format, LoadOptions, Problem, RatingScale, load_str, write_triples,
};

fn opts(format: Format) -> LoadOptions {
    LoadOptions {
        format,
        scale: None,
        ..Default::default()
    }
}

fn parse_error(text: &str, format: Format) -> (usize, Problem) {
    match load_str(text, opts(format)) {
        Err(DataError::Parse { line, problem, .. }) => (line, problem),
        other => panic!("expected a parse error for {text:?}, got {other:?}"),
    }
}

#[test]
fn matrix_rows_are_users_and_zero_is_missing() {
    let s = load_str("1 0 3\n0 0 0\n5 4.5 0\n", opts(Format::Auto)).unwrap();
    assert_eq!(s.format, Format::Matrix);
    assert_eq!(
        (s.ratings.n_users(), s.ratings.n_items(), s.ratings.nnz()),
        (3, 3, 4)
    );
    assert_eq!(s.ratings.get(2, 1), Some(4.5));
    assert_eq!(s.users.index("2"), Some(2));
    assert_eq!(s.scale, RatingScale { min: 1.0, max: 5.0 });
}

#[test]
fn matrix_errors_name_the_line_and_problem() {
    assert_eq!(parse_error("1 2 3\n1 2\n", Format::Matrix).0, 2);
    assert!(matches!(
        parse_error("1 2 3\n1 2\n", Format::Matrix).1,
        Problem::Ragged {
            expected: 3,
            found: 2
        }
    ));
    assert!(matches!(
        parse_error("1 2\n1 x\n", Format::Matrix),
        (2, Problem::NotANumber { field: 2, .. })
    ));
    assert!(matches!(
        parse_error("1 nan\n", Format::Matrix),
        (1, Problem::NotFinite { field: 2, .. })
    ));
    assert!(matches!(
        parse_error("1 2\ninf 2\n", Format::Matrix),
        (2, Problem::NotFinite { field: 1, .. })
    ));
    assert!(matches!(
        parse_error("1 2\n\n3 4\n", Format::Matrix),
        (2, Problem::BlankLine)
    ));
    // Finite as f64, but infinite or zero as the f32 a rating is stored in (found by
    // cargo-fuzz: such a snapshot loaded with an infinite rating).
    for (text, field) in [("1 2\n1e39 2\n", 1), ("1 2\n1 -1e-50\n", 2)] {
        assert!(
            matches!(
                parse_error(text, Format::Matrix),
                (2, Problem::Unrepresentable { field: f, .. }) if f == field
            ),
            "{text:?}"
        );
    }
    assert!(matches!(
        parse_error(
            "a,x,1\nb,y,99999999999999999999999999999999999999999\n",
            Format::Triples
        ),
        (2, Problem::Unrepresentable { field: 3, .. })
    ));
    assert_eq!(
        load_str("1 3.4e38\n", LoadOptions::default())
            .unwrap()
            .ratings
            .nnz(),
        2
    );
    let scale = LoadOptions {
        format: Format::Matrix,
        scale: Some("1:5".parse().unwrap()),
        ..Default::default()
    };
    let err = load_str("1 2\n6 2\n", scale).unwrap_err();
    assert_eq!(
        err.to_string(),
        "<memory>:2: rating 6 in field 1 is outside the scale 1..=5"
    );
}

#[test]
fn empty_snapshots_are_refused() {
    for text in ["", "\n\n", "0 0\n0 0\n", "user,item,rating\n"] {
        assert!(
            matches!(
                load_str(text, opts(Format::Auto)),
                Err(DataError::Empty { .. })
            ),
            "{text:?}"
        );
    }
}

#[test]
fn triples_in_movielens_shapes() {
    let csv =
        "userId,movieId,rating,timestamp\n1,31,2.5,1260759144\n1,1029,3.0,1260759179\n7,31,4,1\n";
    let s = load_str(csv, opts(Format::Auto)).unwrap();
    assert_eq!(s.format, Format::Triples);
    assert_eq!(
        (s.ratings.n_users(), s.ratings.n_items(), s.ratings.nnz()),
        (2, 2, 3)
    );
    let (u7, m31) = (s.users.index("7").unwrap(), s.items.index("31").unwrap());
    assert_eq!(s.ratings.get(u7, m31 as u32), Some(4.0));
    // u.data: tab-separated, no header
    let tsv = "196\t242\t3\t881250949\n186\t302\t3\t891717742\n";
    let s = load_str(tsv, opts(Format::Auto)).unwrap();
    assert_eq!((s.format, s.ratings.nnz()), (Format::Triples, 2));
    // ratings.dat: `::`
    let s = load_str("1::1193::5::978300760\n", opts(Format::Auto)).unwrap();
    assert_eq!(s.items.name(0), "1193");
}

#[test]
fn triples_errors_name_the_line_and_problem() {
    let dup = "u,i,r\na,x,1\nb,x,2\na,x,3\n";
    let (line, problem) = parse_error(dup, Format::Triples);
    assert_eq!(line, 4);
    assert_eq!(
        problem,
        Problem::Duplicate {
            user: "a".into(),
            item: "x".into(),
            first_line: 2
        }
    );
    assert!(matches!(
        parse_error("a,x,1\nb,y\n", Format::Triples),
        (2, Problem::FieldCount { found: 2, .. })
    ));
    assert!(matches!(
        parse_error("a,x,1\n,y,2\n", Format::Triples),
        (2, Problem::EmptyId { what: "user" })
    ));
    assert!(matches!(
        parse_error("a,x,1\nb,y,NaN\n", Format::Triples),
        (2, Problem::NotFinite { .. })
    ));
    assert!(matches!(
        parse_error("a,x,1\nb,y,five\n", Format::Triples),
        (2, Problem::NotANumber { .. })
    ));
}

#[test]
fn errors_from_files_name_the_file() {
    let mut f = tempfile::NamedTempFile::new().unwrap();
    writeln!(f, "1 2 3\n4 5").unwrap();
    let err = data::load(f.path(), opts(Format::Auto)).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "{}:2: row has 2 columns, expected 3 like the first row",
            f.path().display()
        )
    );
    let missing = data::load(
        std::path::Path::new("/nonexistent/ratings.csv"),
        opts(Format::Auto),
    )
    .unwrap_err();
    assert!(
        missing
            .to_string()
            .starts_with("/nonexistent/ratings.csv: "),
        "{missing}"
    );
}

#[test]
fn duplicate_lines_are_found_in_files_too() {
    let mut f = tempfile::NamedTempFile::new().unwrap();
    write!(f, "a\tx\t1\nb\tx\t2\n\na\tx\t3\n").unwrap();
    let err = data::load(f.path(), opts(Format::Triples))
        .unwrap_err()
        .to_string();
    assert!(
        err.ends_with(":4: duplicate rating of item \"x\" by user \"a\" (first on line 1)"),
        "{err}"
    );
}

#[test]
fn triples_round_trip_through_the_writer() {
    let s = load_str("u1,i1,4\nu2,i2,3.5\nu1,i3,1\n", opts(Format::Auto)).unwrap();
    let mut out = Vec::new();
    write_triples(&mut out, &s).unwrap();
    let back = load_str(std::str::from_utf8(&out).unwrap(), opts(Format::Auto)).unwrap();
    assert_eq!(by_id(&back), by_id(&s));
}

/// The ratings as sorted (user id, item id, rating): indices may be renumbered, ids may not.
pub fn by_id(s: &data::Snapshot) -> Vec<(String, String, f32)> {
    let mut v: Vec<_> = s
        .ratings
        .iter()
        .map(|(u, i, x)| {
            (
                s.users.name(u).into_owned(),
                s.items.name(i as usize).into_owned(),
                x,
            )
        })
        .collect();
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v
}

/// The one-pass fingerprint is the SHA-256 of every byte of the file, for each format, on a
/// file larger than the hashing thread's chunk, and the snapshot is the one `load` reads.
#[test]
fn the_one_pass_fingerprint_is_the_files_sha256_in_every_format() {
    let dir = tempfile::tempdir().unwrap();
    // About 3 MB of triples: three chunks and a remainder, a trailing blank line included.
    let mut text = String::from("user,item,rating\n");
    for i in 0..200_000u32 {
        text += &format!("u{},m{},{}\n", i % 5_000, i / 5_000, 1 + i % 5);
    }
    text += "\n";
    let csv = dir.path().join("r.csv");
    std::fs::write(&csv, &text).unwrap();
    let snap = data::load(&csv, opts(Format::Auto)).unwrap();
    let bin = dir.path().join("r.bin");
    data::write_binary(std::fs::File::create(&bin).unwrap(), &snap).unwrap();
    let matrix = dir.path().join("r.txt");
    std::fs::write(&matrix, "1 0 3\n0 2 0\n5 4 0\n").unwrap();
    for path in [&csv, &bin, &matrix] {
        let bytes = std::fs::read(path).unwrap();
        let (loaded, hasher) =
            data::load_hashed(path, opts(Format::Auto), data::Guard::NONE).unwrap();
        let want = data::Fingerprint::sha256(&bytes);
        assert_eq!(data::Fingerprint::from(hasher), want, "{}", path.display());
        let plain = data::load(path, opts(Format::Auto)).unwrap();
        assert_eq!(loaded.ratings, plain.ratings, "{}", path.display());
    }
}
