//! The low-rank mixture ([`crate::mfa::Mfa`]) encodes itself: its scale, weights, noise
//! variances, rank, item-major (mean, loadings) rows and its baseline.
//!
//! Must not import: the other kinds' codecs but the baseline's, the service, the stores.

use super::codec::{Arrays, Codec, DecodeError, Encoded, Layout};
use super::kind::ModelKind;
use super::mixture::{decode_baseline, encode_baseline};
use crate::mfa::Mfa;
use crate::mixture::Algorithm;

/// The largest rank a model file may declare (the search tries up to 40).
const MAX_RANK: f64 = 256.0;

impl Codec for Mfa {
    fn encode(&self) -> Encoded {
        let mut named = vec![
            ("scale", vec![self.scale.min, self.scale.max]),
            ("weights", self.weights.clone()),
            ("noise", self.noise.clone()),
            ("rank", vec![self.rank as f64]),
            ("theta", self.theta.clone()),
        ];
        encode_baseline(&self.baseline, &mut named);
        let kind = (ModelKind::Mfa, Algorithm::Em, true);
        Encoded::new(kind, (self.k, self.n_items()), named)
    }

    fn decode(layout: &Layout, arrays: &mut Arrays) -> Result<Self, DecodeError> {
        let (k, d) = (layout.k, layout.n_items);
        let scale = arrays.scale()?;
        let weights = arrays.take("weights", k)?;
        let noise = arrays.take("noise", k)?;
        let rank = arrays.take("rank", 1)?[0];
        let shape = DecodeError::Shape { k, n_items: d };
        if !((0.0..=MAX_RANK).contains(&rank) && rank.fract() == 0.0) {
            return Err(shape);
        }
        let rank = rank as usize;
        let len = d
            .checked_mul(k)
            .and_then(|n| n.checked_mul(rank + 1))
            .ok_or(shape)?;
        let theta = arrays.take("theta", len)?;
        let baseline = decode_baseline(layout, arrays)?;
        if !noise.iter().all(|&v| v > 0.0) {
            return Err(DecodeError::NotFinite);
        }
        Ok(Mfa {
            k,
            rank,
            theta,
            noise,
            weights,
            baseline,
            scale,
        })
    }
}
