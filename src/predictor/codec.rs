//! How a model kind writes its parameters and reads them back: as named arrays of `f64` in a
//! fixed order, described by a [`Layout`] (which a model file's manifest records). Each kind
//! implements [`Codec`] in a file of its own (`mixture.rs`, `gpl.rs`); a store writes and reads
//! the arrays without knowing what they mean.
//!
//! Must not import: the service, the store, configuration, web or async types.

use serde::{Deserialize, Serialize};

use super::kind::ModelKind;
use crate::data::RatingScale;
use crate::mixture::Algorithm;

/// The shape of a model's stored parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Layout {
    /// Mixture or Gaussian pLSA.
    pub kind: ModelKind,
    /// EM or k-means (mixtures).
    pub algorithm: Algorithm,
    /// Whether predictions are clipped into the scale (mixtures).
    pub clip: bool,
    /// Number of types.
    pub k: usize,
    /// Number of items.
    pub n_items: usize,
    /// The arrays in order: (name, number of f64 values).
    pub arrays: Vec<(String, usize)>,
}

/// A model's parameters, ready to be written: their layout and the arrays it lists.
#[derive(Debug, Clone, PartialEq)]
pub struct Encoded {
    /// What the arrays are.
    pub layout: Layout,
    /// The values, in layout order.
    pub arrays: Vec<Vec<f64>>,
}

impl Encoded {
    /// The parameters of a model of `kind` with K = `k` over `n_items` items, from its named
    /// arrays in order.
    pub fn new(
        (kind, algorithm, clip): (ModelKind, Algorithm, bool),
        (k, n_items): (usize, usize),
        named: Vec<(&str, Vec<f64>)>,
    ) -> Self {
        let arrays = named
            .iter()
            .map(|(n, v)| ((*n).to_owned(), v.len()))
            .collect();
        Self {
            layout: Layout {
                kind,
                algorithm,
                clip,
                k,
                n_items,
                arrays,
            },
            arrays: named.into_iter().map(|(_, v)| v).collect(),
        }
    }
}

/// A model kind that encodes its own parameters and decodes them again.
pub trait Codec: Sized {
    /// The parameters as named arrays.
    fn encode(&self) -> Encoded;
    /// The model `layout` describes, taking its arrays from `arrays` in order.
    fn decode(layout: &Layout, arrays: &mut Arrays) -> Result<Self, DecodeError>;
}

/// Stored parameters that do not make a model.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DecodeError {
    /// No types, no items, or more parameters than memory can index.
    #[error("a model of K = {k} types over {n_items} items")]
    Shape {
        /// K.
        k: usize,
        /// Items.
        n_items: usize,
    },
    /// The next array is not the one the model kind reads next.
    #[error("expected array {name} of {len} values, found {found} of {found_len}")]
    Unexpected {
        /// The array expected.
        name: &'static str,
        /// Its length.
        len: usize,
        /// The array found.
        found: String,
        /// Its length.
        found_len: usize,
    },
    /// An array the model kind needs is not there.
    #[error("array {0} is missing")]
    Missing(&'static str),
    /// Arrays left over after the model was read.
    #[error("unexpected array {0}")]
    LeftOver(String),
    /// The rating scale is not a finite, non-empty interval.
    #[error("an invalid rating scale")]
    Scale,
    /// The parameters are not all finite numbers.
    #[error("the parameters are not all finite numbers")]
    NotFinite,
}

/// The stored arrays of one model, read in order.
#[derive(Debug)]
pub struct Arrays {
    arrays: std::vec::IntoIter<(String, Vec<f64>)>,
}

impl Arrays {
    /// The arrays as read, each with its name from the layout.
    pub fn new(arrays: Vec<(String, Vec<f64>)>) -> Self {
        Self {
            arrays: arrays.into_iter(),
        }
    }

    /// The next array, which must be `name` of `len` values.
    pub fn take(&mut self, name: &'static str, len: usize) -> Result<Vec<f64>, DecodeError> {
        match self.arrays.next() {
            Some((n, v)) if n == name && v.len() == len => Ok(v),
            Some((found, v)) => Err(DecodeError::Unexpected {
                name,
                len,
                found,
                found_len: v.len(),
            }),
            None => Err(DecodeError::Missing(name)),
        }
    }

    /// The next array as an (n_items, k) table, item-major.
    pub fn table(
        &mut self,
        name: &'static str,
        (d, k): (usize, usize),
    ) -> Result<ndarray::Array2<f64>, DecodeError> {
        let shape = DecodeError::Shape { k, n_items: d };
        let len = d.checked_mul(k).ok_or(shape.clone())?;
        let values = self.take(name, len)?;
        ndarray::Array2::from_shape_vec((d, k), values).map_err(|_| shape)
    }

    /// The `scale` array, which every kind stores first: `[min, max]`, a finite interval.
    pub fn scale(&mut self) -> Result<RatingScale, DecodeError> {
        let v = self.take("scale", 2)?;
        let (min, max) = (v[0], v[1]);
        if !(min.is_finite() && max.is_finite() && min < max) {
            return Err(DecodeError::Scale);
        }
        Ok(RatingScale { min, max })
    }

    /// Fails when arrays are left that no model kind read.
    pub fn finish(mut self) -> Result<(), DecodeError> {
        match self.arrays.next() {
            Some((name, _)) => Err(DecodeError::LeftOver(name)),
            None => Ok(()),
        }
    }
}
