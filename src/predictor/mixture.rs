//! A mixture model ([`crate::mixture::Model`]) encodes itself: its scale, weights, variances,
//! item-major means and, when it has one, its baseline.
//!
//! Must not import: pLSA's codec, the service, the stores.

use ndarray::Array1;

use super::codec::{Arrays, Codec, DecodeError, Encoded, Layout};
use super::kind::ModelKind;
use crate::mixture::{Baseline, Mixture, Model};

impl Codec for Model {
    fn encode(&self) -> Encoded {
        let x = &self.mixture;
        let mut named = vec![
            ("scale", vec![self.scale.min, self.scale.max]),
            ("weights", x.weights.to_vec()),
            ("variances", x.variances.to_vec()),
            ("means", x.means.iter().copied().collect()),
        ];
        if let Some(b) = &self.baseline {
            named.push(("baseline_global", vec![b.global]));
            named.push(("baseline_item", b.item.clone()));
        }
        let kind = (ModelKind::Mixture, self.algorithm, self.clip);
        Encoded::new(kind, (self.k(), self.n_items()), named)
    }

    fn decode(layout: &Layout, arrays: &mut Arrays) -> Result<Self, DecodeError> {
        let (k, d) = (layout.k, layout.n_items);
        let scale = arrays.scale()?;
        let weights = Array1::from(arrays.take("weights", k)?);
        let variances = Array1::from(arrays.take("variances", k)?);
        let means = arrays.table("means", (d, k))?;
        let has_baseline = layout.arrays.iter().any(|a| a.0 == "baseline_global");
        let baseline = if has_baseline {
            let global = arrays.take("baseline_global", 1)?[0];
            let item = arrays.take("baseline_item", d)?;
            Some(Baseline { global, item })
        } else {
            None
        };
        Ok(Model {
            mixture: Mixture {
                means,
                variances,
                weights,
            },
            algorithm: layout.algorithm,
            scale,
            clip: layout.clip,
            baseline,
        })
    }
}
