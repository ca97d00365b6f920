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
    named.push(("baseline_item_var", b.item_var.clone()));
    named.push(("baseline_noise", vec![b.noise]));
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
    // Files from before the per-item variances: every item weighs the same (v_l = σ̄² = 1).
    let weighted = layout.arrays.iter().any(|a| a.0 == "baseline_item_var");
    let (item_var, noise) = if weighted {
        let v = arrays.take("baseline_item_var", d)?;
        (v, arrays.take("baseline_noise", 1)?[0])
    } else {
        (vec![1.0; d], 1.0)
    };
    Ok(Baseline {
        global,
        item,
        lambda_user,
        centre,
        item_var,
        noise,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::RatingScale;
    use crate::mixture::Algorithm;
    use crate::predictor::Predictor;

    fn model() -> Model {
        Model {
            mixture: Mixture {
                means: ndarray::array![[0.5, -0.5], [-0.2, 0.2], [0.0, 0.1]],
                variances: ndarray::array![0.6, 0.8],
                weights: ndarray::array![0.4, 0.6],
            },
            algorithm: Algorithm::Em,
            scale: RatingScale { min: 1.0, max: 5.0 },
            clip: true,
            baseline: Some(Baseline {
                global: 3.5,
                item: vec![0.1, -0.3, 0.2],
                lambda_user: 4.0,
                centre: vec![0.01, -0.02, 0.0],
                item_var: vec![2.0, 0.5, 0.7],
                noise: 0.75,
            }),
        }
    }

    #[test]
    fn the_item_variances_round_trip_and_older_files_weigh_every_item_alike() {
        let m = model();
        let e = m.encode();
        let named = |e: &Encoded| -> Vec<(String, Vec<f64>)> {
            e.layout
                .arrays
                .iter()
                .map(|a| a.0.clone())
                .zip(e.arrays.clone())
                .collect()
        };
        let Predictor::Mixture(back) = Predictor::decode(&e.layout, named(&e)).unwrap() else {
            panic!("not a mixture")
        };
        assert_eq!(back.baseline, m.baseline);
        // A file written before the variances: the same layout without their two arrays.
        let mut old = e.clone();
        let keep: Vec<bool> = old
            .layout
            .arrays
            .iter()
            .map(|a| !matches!(a.0.as_str(), "baseline_item_var" | "baseline_noise"))
            .collect();
        let mut it = keep.iter();
        old.layout.arrays.retain(|_| *it.next().unwrap());
        let mut it = keep.iter();
        old.arrays.retain(|_| *it.next().unwrap());
        let Predictor::Mixture(back) = Predictor::decode(&old.layout, named(&old)).unwrap() else {
            panic!("not a mixture")
        };
        let b = back.baseline.unwrap();
        assert_eq!((b.item_var, b.noise), (vec![1.0; 3], 1.0));
    }
}
