//! Each model kind's rating distribution per type for one item, given what a profile already
//! told it: the Gaussians [`super::gain`] discretises.
//!
//! - Mixture: type j rates item l as `N(o + b_l + c_l + m_jl, s_l σ_j²)`, the very density its
//!   posterior multiplies in (o = μ + b_u of the profile, c_l the item's training centre,
//!   s_l = v_l / σ̄² the item's residual variance over the average one; 1 without a baseline).
//! - Low-rank mixture: `N(o + b_l + c_l + m_jl + w_jl·ẑ_j, σ_j² + w_jlᵀ S_j w_jl)`, the type's
//!   predictive with its taste ẑ_j ~ N(ẑ_j, S_j) integrated out.
//! - Gaussian pLSA: `N(μ_u + σ_u μ_lz, σ_u² σ²_lz)`, the type's Gaussian in rating units under
//!   the profile's normalisation, over the types read as a mixture ([`mixture_reading`]).
//!
//! The profile's own location (o, or μ_u and σ_u) is held at its current value: it is shared by
//! every type, so it is no type information, and one more rating moves it by a
//! 1/(λ_user + n + 1) share of that rating's residual at most.
//!
//! No web or async types here.

use super::gain;
use crate::mfa::{Latent, Mfa};
use crate::mixture::{Model, Posterior, ScoreTable};
use crate::plsa::{Folded, Plsa};
use crate::predictor::{Belief, Predictor};
use crate::simd::dispatched;

/// One profile's view of a model: the per-type Gaussians of any item.
pub(super) enum View<'a> {
    /// A mixture and its posterior: the shift and the K variances are the same for every item.
    Mixture {
        model: &'a Model,
        offset: f64,
        var: Vec<f64>,
    },
    /// A low-rank mixture and its posterior; `spread[j]` = tr S_j bounds `wᵀ S_j w / |w|²`.
    Mfa {
        model: &'a Mfa,
        latent: &'a Latent,
        spread: Vec<f64>,
    },
    /// Gaussian pLSA, a folded-in profile's normalisation, and the posterior of the mixture
    /// reading.
    Gpl {
        model: &'a Plsa,
        folded: &'a Folded,
        weights: Vec<f64>,
    },
}

impl<'a> View<'a> {
    /// The view of `belief`, the model's answer to `profile`, under `model`.
    pub(super) fn new(model: &'a Predictor, belief: &'a Belief, profile: &[(u32, f64)]) -> Self {
        match (model, belief) {
            (Predictor::Mixture(m), Belief::Mixture(p)) => Self::mixture(m, p),
            (Predictor::Mfa(m), Belief::Mfa(z)) => {
                let r = m.rank;
                let spread = (0..m.k)
                    .map(|j| (0..r).map(|a| z.covariances[j * r * r + a * r + a]).sum())
                    .collect();
                Self::Mfa {
                    model: m,
                    latent: z,
                    spread,
                }
            }
            (Predictor::Gpl(g), Belief::Gpl(f)) => Self::Gpl {
                model: g,
                folded: f,
                weights: mixture_reading(g, f, profile),
            },
            _ => panic!("a belief of one model kind given to another"),
        }
    }

    /// The type weights the gain is over: the model's own posterior, except for pLSA.
    pub(super) fn weights(&self) -> Option<&[f64]> {
        match self {
            Self::Gpl { weights, .. } => Some(weights),
            _ => None,
        }
    }

    fn mixture(model: &'a Model, post: &Posterior) -> Self {
        Self::Mixture {
            model,
            offset: post.offset,
            var: model.mixture.variances.to_vec(),
        }
    }

    /// A lower bound of `Σ_j w_j ln v_j` over the item whose variances are `var` (exact for the
    /// mixture; the noise alone for the low-rank mixture; the smallest variance for pLSA).
    pub(super) fn log_var_floor(&self, w: &[f64], var: &[f64]) -> f64 {
        match self {
            Self::Mixture { var, .. } => w.iter().zip(var).map(|(w, v)| w * v.ln()).sum(),
            Self::Mfa { model, .. } => w.iter().zip(&model.noise).map(|(w, v)| w * v.ln()).sum(),
            Self::Gpl { .. } => var.iter().copied().fold(f64::INFINITY, f64::min).ln(),
        }
    }

    /// For the mixture, the gain bound of every item under `w` ([`gain::gain_bound`]), from
    /// `table` (the model's means type-major) in one pass: the mixture's variance is `V_l = s_l Σ_j w_j σ_j² +
    /// Σ_j w_j m_jl² − (Σ_j w_j m_jl)²` (the profile's shift of every type's mean cancels),
    /// `within` = `Σ_j w_j σ_j²`, s_l the item's variance scale. Divided by s_l because the bound
    /// needs `ln V − ln s_l` (the log floor of item l is `ln s_l` above the common `floor`): one
    /// logarithm, not two. Other kinds: `None`.
    pub(super) fn mixture_bounds(
        &self,
        table: &ScoreTable,
        w: &[f64],
        within: f64,
        floor: f64,
        cap: f64,
    ) -> Option<Vec<f64>> {
        let Self::Mixture { model, .. } = self else {
            return None;
        };
        let d = model.n_items();
        let (mut m1, mut m2) = (vec![0.0; d], vec![0.0; d]);
        table.moments(w, &mut m1, &mut m2);
        match &model.baseline {
            Some(b) => spreads(&mut m1, &mut m2, &b.item_var, b.noise, within),
            None => {
                let ones = vec![1.0; d];
                spreads(&mut m1, &mut m2, &ones, 1.0, within);
            }
        }
        gain::bounds_of_spreads(&mut m1, &m2, floor, cap);
        Some(m1)
    }

    /// Whether [`Self::log_var_floor`] is the same for every item (then worked out once).
    pub(super) fn floor_is_constant(&self) -> bool {
        !matches!(self, Self::Gpl { .. })
    }

    /// Item `l`'s per-type means and variances; with `bound`, the low-rank mixture's variances
    /// may be replaced by upper bounds (`σ² + |w|² tr S`, O(K r) instead of O(K r²)).
    pub(super) fn fill(&self, l: usize, bound: bool, mean: &mut [f64], var: &mut [f64]) {
        match self {
            Self::Mixture {
                model,
                offset,
                var: v,
            } => {
                let k = model.k();
                let mu = &model.mixture.means.as_slice().expect("standard layout")[l * k..][..k];
                let shift = model
                    .baseline
                    .as_ref()
                    .map_or(0.0, |b| offset + b.item[l] + b.centre[l]);
                mean.iter_mut().zip(mu).for_each(|(o, m)| *o = shift + m);
                let s = gain_scale(model, l);
                var.iter_mut().zip(v).for_each(|(o, v)| *o = s * v);
            }
            Self::Mfa {
                model,
                latent,
                spread,
            } => mfa_fill(model, latent, spread, l, bound, mean, var),
            Self::Gpl { model, folded, .. } => {
                let k = model.k();
                let mu = &model.means.as_slice().expect("standard layout")[l * k..][..k];
                let v = &model.variances.as_slice().expect("standard layout")[l * k..][..k];
                let (centre, scale) = folded.norm;
                for z in 0..k {
                    mean[z] = centre + scale * mu[z];
                    var[z] = scale * scale * v[z];
                }
            }
        }
    }
}

/// The factor on the mixture's type variances for item l: `s_l = v_l / σ̄²` with a baseline
/// (as the posterior reads an answer), else 1.
fn gain_scale(model: &Model, l: usize) -> f64 {
    model
        .baseline
        .as_ref()
        .map_or(1.0, |b| b.var_scale(l as u32))
}

dispatched! {
    /// `m1[l] = within + (m2[l] − m1[l]²) / s_l` and `m2[l] = within + m2[l] / s_l`, with
    /// `s_l = item_var[l] / noise`: the mixture's variance and second moment over s_l.
    fn spreads, spreads_avx2, spreads_avx512 => spreads_generic(
        m1: &mut [f64], m2: &mut [f64], item_var: &[f64], noise: f64, within: f64
    )
}

#[inline(always)]
fn spreads_generic(m1: &mut [f64], m2: &mut [f64], item_var: &[f64], noise: f64, within: f64) {
    for ((a, b), v) in m1.iter_mut().zip(m2.iter_mut()).zip(item_var) {
        let s = v / noise;
        (*a, *b) = (within + (*b - *a * *a) / s, within + *b / s);
    }
}

/// pLSA's types read as a mixture: the user resembles one type z, a priori with the
/// population's share of it (mean P(z|u)), and by Bayes' rule on the profile's normalised
/// ratings `v_i`: `P(z | profile) ∝ P(z) Π_i N(v_i; μ_iz, σ²_iz)`, in log space.
fn mixture_reading(g: &Plsa, f: &Folded, profile: &[(u32, f64)]) -> Vec<f64> {
    let k = g.k();
    let (means, vars) = (
        g.means.as_slice().expect("standard layout"),
        g.variances.as_slice().expect("standard layout"),
    );
    let mut log: Vec<f64> = g.type_weights.iter().map(|w| w.max(1e-300).ln()).collect();
    for &(l, x) in profile {
        let v = (x - f.norm.0) / f.norm.1;
        let at = l as usize * k;
        for (z, a) in log.iter_mut().enumerate() {
            let (m, s2) = (means[at + z], vars[at + z]);
            *a -= 0.5 * ((v - m) * (v - m) / s2 + s2.ln());
        }
    }
    let lse = crate::mixture::log_sum_exp(&log);
    log.iter().map(|a| (a - lse).exp()).collect()
}

/// [`View::fill`] of the low-rank mixture: row `l · K + j` of θ is `(m_jl, w_jl)`.
fn mfa_fill(
    m: &Mfa,
    z: &Latent,
    spread: &[f64],
    l: usize,
    bound: bool,
    mean: &mut [f64],
    var: &mut [f64],
) {
    let (k, r) = (m.k, m.rank);
    let width = r + 1;
    let b = &m.baseline;
    let shift = z.offset + b.item[l] + b.centre[l];
    for j in 0..k {
        let t = &m.theta[(l * k + j) * width..][..width];
        let (w, taste) = (&t[1..], &z.tastes[j * r..][..r]);
        mean[j] = shift + t[0] + w.iter().zip(taste).map(|(a, b)| a * b).sum::<f64>();
        let extra = if bound {
            w.iter().map(|a| a * a).sum::<f64>() * spread[j]
        } else {
            // wᵀ S_j w
            let s = &z.covariances[j * r * r..][..r * r];
            (0..r)
                .map(|a| w[a] * (0..r).map(|c| s[a * r + c] * w[c]).sum::<f64>())
                .sum()
        };
        var[j] = m.noise[j] + extra;
    }
}
