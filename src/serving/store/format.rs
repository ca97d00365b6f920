//! The bytes of a stored model, the same in every store: a model written whole and checked
//! on the way back in (a cut or a flipped bit is refused, never half-read).
//!
//! ```text
//! mixrec-model 1\n                      format line
//! {"version":7,...}\n                   the manifest: one line of JSON
//! <payload>                             the parameters: little-endian f64 arrays, in the
//!                                       order and lengths the manifest's layout lists
//! sha256 <64 hex digits>\n              over every byte before this line
//! ```
//!
//! What the arrays mean is the model kind's business (`src/predictor/codec.rs`).
//!
//! A published catalogue (what a replica serves a model with: ids, titles, the users' ratings)
//! is checked the same way:
//!
//! ```text
//! mixrec-catalogue 1\n                  format line
//! {"titles":{...},"attributes":{...}}\n  display titles (and other columns) by item id: one line of JSON
//! <binary snapshot>                     `src/data/binary.rs`, with its own CRC-32
//! sha256 <64 hex digits>\n              over every byte before this line
//! ```
//!
//! Must not import: any store (they import it), the registry, web or async types.

use std::time::SystemTime;

use super::{Manifest, StoreFault};
use crate::config::TrainingSettings;
use crate::data::{
    Fingerprint, Format, LoadOptions, Snapshot, Source, Titles, load_bytes, write_binary,
};
use crate::predictor::Predictor;
use crate::serving::info::ModelInfo;

/// The first line of every model.
const FORMAT_LINE: &[u8] = b"mixrec-model 1\n";
/// The first line of every published catalogue.
const CATALOGUE_LINE: &[u8] = b"mixrec-catalogue 1\n";
/// `sha256 ` + 64 hex digits + `\n`.
const TRAILER_LEN: usize = 7 + 64 + 1;

/// The bytes of `model`, trained on `source` with `training`, as version `info.version`.
pub fn encode(
    source: &Source,
    training: &TrainingSettings,
    info: &ModelInfo,
    model: &Predictor,
) -> Result<Vec<u8>, StoreFault> {
    let encoded = model.encode();
    let manifest = Manifest {
        version: info.version,
        created: humantime::format_rfc3339_millis(SystemTime::now()).to_string(),
        source: source.clone(),
        training: training.clone(),
        info: info.clone(),
        layout: encoded.layout,
    };
    let mut out = FORMAT_LINE.to_vec();
    serde_json::to_writer(&mut out, &manifest).map_err(StoreFault::ManifestOut)?;
    out.push(b'\n');
    for values in &encoded.arrays {
        for v in values {
            out.extend_from_slice(&v.to_le_bytes());
        }
    }
    let digest = Fingerprint::sha256(&out);
    out.extend_from_slice(format!("sha256 {digest}\n").as_bytes());
    Ok(out)
}

/// The manifest and model in `bytes`: format line, manifest, exact length, checksum and
/// parameters all checked.
pub fn decode(bytes: &[u8]) -> Result<(Manifest, Predictor), StoreFault> {
    let body = checked_body(bytes)?;
    let rest = &body[FORMAT_LINE.len()..];
    let line_end = rest
        .iter()
        .position(|&b| b == b'\n')
        .ok_or(StoreFault::NoManifest)?;
    let manifest: Manifest =
        serde_json::from_slice(&rest[..line_end]).map_err(StoreFault::Manifest)?;
    let arrays = arrays(&manifest, &rest[line_end + 1..])?;
    let model = Predictor::decode(&manifest.layout, arrays)?;
    Ok((manifest, model))
}

/// The titles line of a published catalogue.
#[derive(serde::Serialize, serde::Deserialize)]
struct CatalogueHead {
    /// `titles`, and `attributes` when there are any (older catalogues have none).
    #[serde(flatten)]
    titles: Titles,
}

/// The bytes of a published catalogue: `snapshot` (ids and ratings) and its `titles`.
pub fn encode_catalogue(snapshot: &Snapshot, titles: &Titles) -> Result<Vec<u8>, StoreFault> {
    let mut out = CATALOGUE_LINE.to_vec();
    let head = CatalogueHead {
        titles: titles.clone(),
    };
    serde_json::to_writer(&mut out, &head).map_err(StoreFault::ManifestOut)?;
    out.push(b'\n');
    write_binary(&mut out, snapshot).map_err(|source| StoreFault::Io {
        action: "encode the catalogue",
        source,
    })?;
    let digest = Fingerprint::sha256(&out);
    out.extend_from_slice(format!("sha256 {digest}\n").as_bytes());
    Ok(out)
}

/// The snapshot and titles in the bytes of a published catalogue, every part checked.
pub fn decode_catalogue(bytes: &[u8]) -> Result<(Snapshot, Titles), StoreFault> {
    let body = checked(bytes, CATALOGUE_LINE)?;
    let rest = &body[CATALOGUE_LINE.len()..];
    let line_end = rest
        .iter()
        .position(|&b| b == b'\n')
        .ok_or(StoreFault::NoManifest)?;
    let head: CatalogueHead =
        serde_json::from_slice(&rest[..line_end]).map_err(StoreFault::Manifest)?;
    let options = LoadOptions {
        format: Format::Binary,
        scale: None,
        ..Default::default()
    };
    let snapshot = load_bytes(&rest[line_end + 1..], options)
        .map_err(|e| StoreFault::Catalogue(e.to_string()))?;
    Ok((snapshot, head.titles))
}

/// Everything before the checksum line, once the format line and the checksum are right.
fn checked_body(bytes: &[u8]) -> Result<&[u8], StoreFault> {
    checked(bytes, FORMAT_LINE)
}

/// Everything before the checksum line of bytes that start with `first`.
fn checked<'a>(bytes: &'a [u8], first: &[u8]) -> Result<&'a [u8], StoreFault> {
    if !bytes.starts_with(first) {
        return Err(StoreFault::NotAModel);
    }
    if bytes.len() < first.len() + TRAILER_LEN {
        return Err(StoreFault::CutShort(bytes.len()));
    }
    let (body, trailer) = bytes.split_at(bytes.len() - TRAILER_LEN);
    let expected = trailer
        .strip_prefix(b"sha256 ")
        .and_then(|t| t.strip_suffix(b"\n"))
        .ok_or(StoreFault::NoChecksum)?;
    if Fingerprint::sha256(body).as_str().as_bytes() != expected {
        return Err(StoreFault::Checksum);
    }
    Ok(body)
}

/// The payload's arrays, each with its name from the layout; the lengths must add up exactly.
fn arrays(manifest: &Manifest, payload: &[u8]) -> Result<Vec<(String, Vec<f64>)>, StoreFault> {
    let lengths = &manifest.layout.arrays;
    let values = lengths.iter().try_fold(0usize, |n, a| n.checked_add(a.1));
    let too_long = StoreFault::Payload {
        bytes: payload.len(),
        values: values.unwrap_or(usize::MAX),
    };
    if values.and_then(|v| v.checked_mul(8)) != Some(payload.len()) {
        return Err(too_long);
    }
    let mut at = 0;
    let mut arrays = Vec::with_capacity(lengths.len());
    for (name, len) in lengths {
        let values: Vec<f64> = payload[at..at + len * 8]
            .chunks_exact(8)
            .map(|c| f64::from_le_bytes(c.try_into().expect("8 bytes")))
            .collect();
        at += len * 8;
        arrays.push((name.clone(), values));
    }
    Ok(arrays)
}
