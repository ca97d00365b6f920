//! A Gaussian pLSA model ([`crate::plsa::Plsa`]) encodes itself: its scale, the normalisation's
//! prior, the per-type population weights and the item-major means and variances.
//!
//! Must not import: the mixture's codec, the service, the stores.

use super::codec::{Arrays, Codec, DecodeError, Encoded, Layout};
use super::kind::ModelKind;
use crate::mixture::Algorithm;
use crate::plsa::Plsa;

impl Codec for Plsa {
    fn encode(&self) -> Encoded {
        let named = vec![
            ("scale", vec![self.scale.min, self.scale.max]),
            ("global", vec![self.global.0, self.global.1]),
            ("q", vec![self.q]),
            ("type_weights", self.type_weights.clone()),
            ("means", self.means.iter().copied().collect()),
            ("variances", self.variances.iter().copied().collect()),
        ];
        let kind = (ModelKind::Gpl, Algorithm::Em, true);
        Encoded::new(kind, (self.k(), self.n_items()), named)
    }

    fn decode(layout: &Layout, arrays: &mut Arrays) -> Result<Self, DecodeError> {
        let shape = (layout.n_items, layout.k);
        let scale = arrays.scale()?;
        let global = arrays.take("global", 2)?;
        let q = arrays.take("q", 1)?[0];
        let type_weights = arrays.take("type_weights", layout.k)?;
        let means = arrays.table("means", shape)?;
        let variances = arrays.table("variances", shape)?;
        Ok(Plsa::from_parts(
            means,
            variances,
            (global[0], global[1]),
            q,
            scale,
            type_weights,
        ))
    }
}
