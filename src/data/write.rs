//! Writing snapshots back out: dense matrix text (the seed's format) and triples CSV.
//!
//! Must not import: anything above `src/data`; the readers.

use std::io::{self, Write};

use super::Snapshot;

/// Writes `n_rows` rows of `n_cols` numbers in the seed's matrix format, one row per line.
/// `fill(u, row)` fills row `u`; a zero is written as `0` and means missing. Numbers are
/// written in the shortest form that reads back to the same `f64`.
pub fn write_matrix<W: Write>(
    out: W,
    n_rows: usize,
    n_cols: usize,
    mut fill: impl FnMut(usize, &mut [f64]),
) -> io::Result<()> {
    let mut out = io::BufWriter::with_capacity(1 << 20, out);
    let mut row = vec![0.0; n_cols];
    for u in 0..n_rows {
        row.iter_mut().for_each(|x| *x = 0.0);
        fill(u, &mut row);
        for (l, x) in row.iter().enumerate() {
            if l > 0 {
                out.write_all(b" ")?;
            }
            write!(out, "{x}")?;
        }
        out.write_all(b"\n")?;
    }
    out.flush()
}

/// Writes the observed ratings of `snapshot` as `user,item,rating` CSV with a header.
pub fn write_triples<W: Write>(out: W, snapshot: &Snapshot) -> io::Result<()> {
    let mut out = io::BufWriter::with_capacity(1 << 20, out);
    writeln!(out, "user,item,rating")?;
    for (u, i, x) in snapshot.ratings.iter() {
        let (user, item) = (snapshot.users.name(u), snapshot.items.name(i as usize));
        writeln!(out, "{user},{item},{x}")?;
    }
    out.flush()
}
