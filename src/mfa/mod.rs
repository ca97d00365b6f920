//! A mixture of low-rank user types: K types as in the mixture, each with a mean profile *and*
//! r directions along which its users vary (a mixture of factor analysers with isotropic noise,
//! Tipping and Bishop's mixture of probabilistic PCA, fitted to the observed entries only).
//!
//! Over the baseline's centred residuals `r_u` (see [`crate::mixture::Biases::residuals`]),
//! a user of type j with latent taste `z ~ N(0, I_r)` rates
//!
//! ```text
//! r_ul = m_jl + w_jl · z + ε,   ε ~ N(0, σ_j²)       ⇒   r_uO ~ N(m_jO, W_jO W_jOᵀ + σ_j² I)
//! ```
//!
//! so a type is a taste profile (its means, as in the mixture) plus a low-rank spread around it
//! (matrix factorisation inside the type). With r = 0 this is the mixture; with K = 1 it is
//! probabilistic PCA, a Bayesian matrix factorisation. A profile is answered by the same exact
//! E-step as in training ([`Mfa::infer`]): per type, an r × r system gives the likelihood of
//! the profile and its posterior taste `ẑ_j`; the types' posterior weights `γ_j` mix the
//! predictions
//!
//! ```text
//! pred_l = baseline_l + Σ_j γ_j (m_jl + w_jl · ẑ_j)
//! ```
//!
//! Cost per profile: K (n r² + r³) for the posterior, d K (r + 1) for every prediction; well
//! under a millisecond at K = 12, r = 5 for a catalogue of thousands.
//!
//! No web or async types here.

mod fit;

pub use fit::{MfaFit, MfaParams, fit};

use std::f64::consts::PI;

use crate::data::RatingScale;
use crate::linalg;
use crate::mixture::{Baseline, Prediction, ProfileError};
use crate::simd::dispatched;

/// A trained mixture of low-rank types.
#[derive(Debug, Clone, PartialEq)]
pub struct Mfa {
    /// Types K.
    pub k: usize,
    /// Rank r of each type's variation.
    pub rank: usize,
    /// (m_jl, w_jl) per item and type, item-major: row `l · K + j` holds r + 1 numbers.
    /// (n_items · k · (rank + 1))
    pub theta: Vec<f64>,
    /// σ_j². (k,)
    pub noise: Vec<f64>,
    /// π_j. (k,)
    pub weights: Vec<f64>,
    /// The baseline the residuals are measured from.
    pub baseline: Baseline,
    /// Valid ratings.
    pub scale: RatingScale,
}

/// What a profile tells the model.
#[derive(Debug, Clone, PartialEq)]
pub struct Latent {
    /// γ_j = P(type j | profile). (k,)
    pub weights: Vec<f64>,
    /// μ + b_u of the profile.
    pub offset: f64,
    /// ẑ_j, the posterior mean taste within each type. (k · rank)
    pub tastes: Vec<f64>,
    /// S_j, the posterior covariance of the taste within each type, full r × r. (k · rank²)
    pub covariances: Vec<f64>,
    /// ln p(profile).
    pub log_likelihood: f64,
}

/// Per-type buffers of one inference, reused across users.
pub(crate) struct Scratch {
    /// W_Oᵀ W_O (+ σ² I, then its factor), per type. (k · r²)
    gram: Vec<f64>,
    /// W_Oᵀ e, then ẑ, per type. (k · r)
    proj: Vec<f64>,
    /// eᵀ e per type. (k,)
    sq: Vec<f64>,
}

impl Scratch {
    pub(crate) fn new(k: usize, rank: usize) -> Self {
        Self {
            gram: vec![0.0; k * rank * rank],
            proj: vec![0.0; k * rank],
            sq: vec![0.0; k],
        }
    }
}

impl Mfa {
    /// Number of items.
    pub fn n_items(&self) -> usize {
        self.baseline.item.len()
    }

    /// Row (m_jl, w_jl).
    #[inline]
    fn row(&self, l: usize, j: usize) -> &[f64] {
        let w = self.rank + 1;
        &self.theta[(l * self.k + j) * w..][..w]
    }

    /// The posterior of a profile of (item, rating) pairs.
    pub fn posterior(&self, profile: &[(u32, f64)]) -> Result<Latent, ProfileError> {
        for &(l, x) in profile {
            if l as usize >= self.n_items() {
                return Err(ProfileError::UnknownItem(l));
            }
            if !x.is_finite() {
                return Err(ProfileError::NotFinite(l));
            }
        }
        let offset = self.baseline.offset(profile);
        let residuals: Vec<(u32, f64)> = profile
            .iter()
            .map(|&(l, x)| (l, self.baseline.residual(offset, l, x)))
            .collect();
        let (k, r) = (self.k, self.rank);
        let mut latent = Latent {
            weights: vec![0.0; k],
            offset,
            tastes: vec![0.0; k * r],
            covariances: vec![0.0; k * r * r],
            log_likelihood: 0.0,
        };
        let mut scratch = Scratch::new(k, r);
        latent.log_likelihood = self.infer(
            &residuals,
            &mut scratch,
            &mut latent.weights,
            &mut latent.tastes,
            &mut latent.covariances,
        );
        Ok(latent)
    }

    /// The exact E-step for one user's residuals, shared by training and profiles: fills γ
    /// (k), ẑ (k · r) and S (k · r²) and returns ln p(residuals).
    pub(crate) fn infer(
        &self,
        residuals: &[(u32, f64)],
        s: &mut Scratch,
        gamma: &mut [f64],
        tastes: &mut [f64],
        covs: &mut [f64],
    ) -> f64 {
        let (k, r) = (self.k, self.rank);
        gather(
            &self.theta,
            k,
            r,
            residuals,
            &mut s.gram,
            &mut s.proj,
            &mut s.sq,
        );
        let n = residuals.len() as f64;
        for j in 0..k {
            let var = self.noise[j];
            let (g, p) = (&mut s.gram[j * r * r..][..r * r], &mut s.proj[j * r..][..r]);
            // M = W_Oᵀ W_O + σ² I; ẑ = M⁻¹ W_Oᵀ e; S = σ² M⁻¹
            for a in 0..r {
                g[a * r + a] += var;
            }
            linalg::cholesky(g, r).expect("σ² > 0 makes M positive definite");
            let we = p.to_vec();
            linalg::solve(g, r, p);
            let quad = (s.sq[j] - we.iter().zip(p.iter()).map(|(a, b)| a * b).sum::<f64>()) / var;
            // ln N(e; 0, W Wᵀ + σ² I) = −½ [n ln 2π + (n − r) ln σ² + ln det M + quad]
            let log_det = linalg::log_det(g, r);
            gamma[j] = self.weights[j].ln()
                - 0.5 * (n * (2.0 * PI).ln() + (n - r as f64) * var.ln() + log_det + quad);
            tastes[j * r..][..r].copy_from_slice(p);
            let cov = &mut covs[j * r * r..][..r * r];
            linalg::inverse(g, r, cov);
            cov.iter_mut().for_each(|c| *c *= var);
        }
        let lse = crate::mixture::log_sum_exp(gamma);
        gamma.iter_mut().for_each(|g| *g = (*g - lse).exp());
        lse
    }

    /// Prediction and spread of item `l` for `latent`.
    pub fn predict(&self, latent: &Latent, l: u32) -> Prediction {
        let (k, r) = (self.k, self.rank);
        let (mut mean, mut second) = (0.0, 0.0);
        for j in 0..k {
            let t = self.row(l as usize, j);
            let (z, cov) = (
                &latent.tastes[j * r..][..r],
                &latent.covariances[j * r * r..][..r * r],
            );
            let w = &t[1..];
            let mu = t[0] + w.iter().zip(z).map(|(a, b)| a * b).sum::<f64>();
            // wᵀ S w: the taste's own uncertainty on this item
            let mut wsw = 0.0;
            for a in 0..r {
                for b in 0..r {
                    wsw += w[a] * cov[a * r + b] * w[b];
                }
            }
            let g = latent.weights[j];
            mean += g * mu;
            second += g * (self.noise[j] + wsw + mu * mu);
        }
        let base = latent.offset + self.baseline.item[l as usize];
        Prediction {
            item: l,
            rating: self.scale.clip(base + mean),
            spread: (second - mean * mean).max(0.0).sqrt(),
        }
    }

    /// The `n` items with the highest predicted rating outside `skip`, best first (ties: lower
    /// item index first). Ranking needs only the means (d K (r + 1)); spreads are worked out
    /// for the `n` kept.
    pub fn recommend(&self, latent: &Latent, n: usize, skip: &[u32]) -> Vec<Prediction> {
        let (k, r) = (self.k, self.rank);
        let scored = crate::mixture::unskipped(self.n_items(), skip).map(|l| {
            let mut mean = 0.0;
            for j in 0..k {
                let t = self.row(l as usize, j);
                let z = &latent.tastes[j * r..][..r];
                let mu = t[0] + t[1..].iter().zip(z).map(|(a, b)| a * b).sum::<f64>();
                mean += latent.weights[j] * mu;
            }
            (latent.offset + self.baseline.item[l as usize] + mean, l)
        });
        crate::mixture::best_scores(scored, n)
            .into_iter()
            .map(|(_, l)| self.predict(latent, l))
            .collect()
    }

    /// Type j's mean rating of item l for a user of average offset and average taste.
    pub fn type_mean(&self, l: usize, j: usize) -> f64 {
        self.baseline.global + self.baseline.item[l] + self.row(l, j)[0]
    }

    /// Type j's variance: its noise plus its average spread over items, `σ² + mean_l |w_jl|²`.
    pub fn type_variance(&self, j: usize) -> f64 {
        let d = self.n_items().max(1) as f64;
        let spread: f64 = (0..self.n_items())
            .map(|l| self.row(l, j)[1..].iter().map(|w| w * w).sum::<f64>())
            .sum();
        self.noise[j] + spread / d
    }

    /// Whether every parameter is a finite number.
    pub fn is_finite(&self) -> bool {
        self.theta
            .iter()
            .chain(&self.noise)
            .chain(&self.weights)
            .all(|v| v.is_finite())
    }
}

dispatched! {
    /// Per type j, over one user's residuals: `gram_j = W_Oᵀ W_O` (full r × r), `proj_j =
    /// W_Oᵀ e` and `sq_j = eᵀ e`, with `e = r − m_jO`.
    fn gather, gather_avx2, gather_avx512 => gather_generic(
        theta: &[f64], k: usize, r: usize, residuals: &[(u32, f64)], gram: &mut [f64], proj: &mut [f64], sq: &mut [f64]
    )
}

#[inline(always)]
fn gather_generic(
    theta: &[f64],
    k: usize,
    r: usize,
    residuals: &[(u32, f64)],
    gram: &mut [f64],
    proj: &mut [f64],
    sq: &mut [f64],
) {
    gram.fill(0.0);
    proj.fill(0.0);
    sq.fill(0.0);
    let w = r + 1;
    for &(l, x) in residuals {
        let rows = &theta[l as usize * k * w..][..k * w];
        for j in 0..k {
            let t = &rows[j * w..][..w];
            let (m, load) = (t[0], &t[1..]);
            let e = x - m;
            sq[j] += e * e;
            let p = &mut proj[j * r..][..r];
            p.iter_mut().zip(load).for_each(|(p, &v)| *p += e * v);
            // The full square, row by row: contiguous, so it vectorises.
            let g = &mut gram[j * r * r..][..r * r];
            for (row, &va) in g.chunks_exact_mut(r.max(1)).zip(load) {
                row.iter_mut().zip(load).for_each(|(g, &vb)| *g += va * vb);
            }
        }
    }
}
