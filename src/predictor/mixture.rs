//! A mixture model ([`crate::mixture::Model`]) encodes itself: its scale, weights, variances,
//! item-major means and, when it has one, its baseline (also the low-rank mixture's, `mfa.rs`).
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
            encode_baseline(b, &mut named);
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
            Some(decode_baseline(layout, arrays)?)
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

/// A baseline's arrays: μ, the item offsets, λ_user and the item centres of the residuals.
pub(super) fn encode_baseline(b: &Baseline, named: &mut Vec<(&str, Vec<f64>)>) {
    named.push(("baseline_global", vec![b.global]));
    named.push(("baseline_item", b.item.clone()));
    named.push(("baseline_lambda_user", vec![b.lambda_user]));
    named.push(("baseline_centre", b.centre.clone()));
}

/// The baseline [`encode_baseline`] wrote. Files from before the ridge was tuned have neither
/// λ_user (it was 15) nor the centres (the residuals were not centred).
pub(super) fn decode_baseline(
    layout: &Layout,
    arrays: &mut Arrays,
) -> Result<Baseline, DecodeError> {
    let d = layout.n_items;
    let global = arrays.take("baseline_global", 1)?[0];
    let item = arrays.take("baseline_item", d)?;
    let tuned = layout.arrays.iter().any(|a| a.0 == "baseline_lambda_user");
    let (lambda_user, centre) = if tuned {
        let lambda = arrays.take("baseline_lambda_user", 1)?[0];
        (lambda, arrays.take("baseline_centre", d)?)
    } else {
        (15.0, vec![0.0; d])
    };
    Ok(Baseline {
        global,
        item,
        lambda_user,
        centre,
    })
}
