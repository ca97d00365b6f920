//! Batch output of a trained model: a completed matrix, predictions for given `user,item`
//! pairs, and every user's top-n. Everything streams: users are answered a block at a time
//! (in parallel, written in order), and no n × d array exists.
//!
//! Imports nothing of the CLI's other files.

use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::Path;

use anyhow::{Context, bail};
use rayon::prelude::*;

use crate::data::{self, Format, Snapshot};
use crate::predictor::{Belief, Predictor};

/// Users answered per parallel block.
const BLOCK: usize = 512;

/// Writes the snapshot's matrix with every missing entry predicted (matrix snapshots only).
pub fn matrix(snapshot: &Snapshot, model: &Predictor, out: &Path) -> anyhow::Result<()> {
    if snapshot.format != Format::Matrix {
        bail!(
            "{}: without --pairs, complete writes a matrix and needs a matrix snapshot; for \
             triples, predict given pairs with `complete --pairs PAIRS.csv` or write every \
             user's top items with `recommend`",
            snapshot.path.display()
        );
    }
    let file = create(out)?;
    let ratings = &snapshot.ratings;
    data::write_matrix(file, ratings.n_users(), ratings.n_items(), |u, row| {
        let (items, values) = ratings.row(u);
        model
            .complete_row(items, values, row)
            .expect("snapshot items are in the model");
    })
    .with_context(|| format!("cannot write {}", out.display()))
}

/// Writes `user,item,rank,rating,spread` for each user's `n` best unrated items, users in
/// snapshot order.
pub fn recommend(
    snapshot: &Snapshot,
    model: &Predictor,
    n: usize,
    out: &Path,
) -> anyhow::Result<()> {
    let mut w = BufWriter::new(create(out)?);
    let write_err = || format!("cannot write {}", out.display());
    writeln!(w, "user,item,rank,rating,spread").with_context(write_err)?;
    let r = &snapshot.ratings;
    let prepared = model.prepare();
    for start in (0..r.n_users()).step_by(BLOCK) {
        let block: Vec<String> = (start..(start + BLOCK).min(r.n_users()))
            .into_par_iter()
            .map(|u| {
                let (items, values) = r.row(u);
                let belief = model
                    .posterior(&profile(items, values))
                    .expect("known items");
                let name = snapshot.users.name(u);
                let user = csv_field(&name);
                let mut lines = String::new();
                let best = model.recommend_prepared(&prepared, &belief, n, items);
                for (rank, p) in best.iter().enumerate() {
                    let name = snapshot.items.name(p.item as usize);
                    let item = csv_field(&name);
                    lines += &format!("{user},{item},{},{},{}\n", rank + 1, p.rating, p.spread);
                }
                lines
            })
            .collect();
        block
            .iter()
            .try_for_each(|s| w.write_all(s.as_bytes()))
            .with_context(write_err)?;
    }
    w.flush().with_context(write_err)
}

/// Reads `user,item` pairs from `pairs` (CSV, header optional) and writes
/// `user,item,rating,spread` for each, in the same order. A user the snapshot does not know is
/// answered as a new user (from no ratings); an unknown item is an error naming the line.
pub fn pairs(
    snapshot: &Snapshot,
    model: &Predictor,
    pairs: &Path,
    out: &Path,
) -> anyhow::Result<()> {
    let input = File::open(pairs).with_context(|| format!("cannot open {}", pairs.display()))?;
    let mut w = BufWriter::new(create(out)?);
    let write_err = || format!("cannot write {}", out.display());
    writeln!(w, "user,item,rating,spread").with_context(write_err)?;
    let r = &snapshot.ratings;
    let mut last: Option<(String, Belief)> = None;
    for (i, line) in BufReader::new(input).lines().enumerate() {
        let at = || format!("{}:{}", pairs.display(), i + 1);
        let line = line.with_context(at)?;
        let line = line.trim_end_matches('\r');
        if line.trim().is_empty() {
            continue;
        }
        let Some((user, item)) = line.split_once(',') else {
            bail!("{}: expected user,item", at());
        };
        let (user, item) = (
            user.trim(),
            item.trim().split(',').next().unwrap_or("").trim(),
        );
        if i == 0
            && matches!(
                user.to_ascii_lowercase().as_str(),
                "user" | "user_id" | "userid"
            )
        {
            continue;
        }
        let Some(l) = snapshot.items.index(item) else {
            bail!("{}: item {item:?} is not in the snapshot", at());
        };
        if last.as_ref().is_none_or(|(u, _)| u != user) {
            let rated = match snapshot.users.index(user) {
                Some(u) => profile(r.row(u).0, r.row(u).1),
                None => Vec::new(),
            };
            last = Some((
                user.to_owned(),
                model.posterior(&rated).expect("known items"),
            ));
        }
        let belief = &last.as_ref().expect("set above").1;
        let p = model.predict(belief, l as u32);
        writeln!(
            w,
            "{},{},{},{}",
            csv_field(user),
            csv_field(item),
            p.rating,
            p.spread
        )
        .with_context(write_err)?;
    }
    w.flush().with_context(write_err)
}

fn profile(items: &[u32], values: &[f32]) -> Vec<(u32, f64)> {
    items
        .iter()
        .zip(values)
        .map(|(&l, &x)| (l, f64::from(x)))
        .collect()
}

fn create(path: &Path) -> anyhow::Result<File> {
    File::create(path).with_context(|| format!("cannot create {}", path.display()))
}

/// An id as a CSV field: quoted (quotes doubled) when it holds a comma, a quote or a newline.
fn csv_field(id: &str) -> std::borrow::Cow<'_, str> {
    if id.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", id.replace('"', "\"\"")).into()
    } else {
        id.into()
    }
}
