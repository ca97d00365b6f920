//! Φ, the entropy terms and the logarithm over whole slices, eight lanes at a time: the gain's
//! transcendental functions, where libm's one-at-a-time calls were most of an exact gain's
//! time (K (levels − 1) exponentials and K levels logarithms an item). The exponential and the
//! logarithm themselves are `simd::math`'s (fdlibm's polynomials, within 1 ulp of libm). Every
//! dispatch level runs the same operations in the same order: the same bits whatever the CPU,
//! like the engine's kernels.
//!
//! No web or async types here.

use crate::simd::dispatched;
use crate::simd::math::{each, exp, ln};

/// The standard normal CDF, Φ(x) = ½ erfc(−x/√2), with erfc from Numerical Recipes' Chebyshev
/// fit (`erfcc`, relative error below 1.2e-7 everywhere): one exponential.
#[inline(always)]
pub(super) fn phi_one(x: f64) -> f64 {
    let z = -x * std::f64::consts::FRAC_1_SQRT_2;
    let a = z.abs();
    let t = 1.0 / (1.0 + 0.5 * a);
    let poly = -1.265_512_23
        + t * (1.000_023_68
            + t * (0.374_091_96
                + t * (0.096_784_18
                    + t * (-0.186_288_06
                        + t * (0.278_868_07
                            + t * (-1.135_203_98
                                + t * (1.488_515_87 + t * (-0.822_152_23 + t * 0.170_872_77))))))));
    let erfc = t * exp(-a * a + poly);
    let erfc = if z >= 0.0 { erfc } else { 2.0 - erfc };
    0.5 * erfc
}

/// `x ln x`, 0 for x below the smallest normal (where it is below 2e-305 in size).
#[inline(always)]
fn x_ln_x(x: f64) -> f64 {
    let tiny = x < f64::MIN_POSITIVE;
    let l = ln(if tiny { 1.0 } else { x });
    if tiny { 0.0 } else { x * l }
}

#[inline(always)]
fn phi_generic(x: &mut [f64]) {
    each(x, 0.0, phi_one);
}

#[inline(always)]
fn x_ln_x_generic(x: &mut [f64]) {
    each(x, 1.0, x_ln_x);
}

#[inline(always)]
fn ln_generic(x: &mut [f64]) {
    each(x, 1.0, ln);
}

dispatched! {
    fn phi_all, phi_avx2, phi_avx512 => phi_generic(x: &mut [f64])
}

dispatched! {
    fn x_ln_x_all, x_ln_x_avx2, x_ln_x_avx512 => x_ln_x_generic(x: &mut [f64])
}

dispatched! {
    fn ln_all, ln_avx2, ln_avx512 => ln_generic(x: &mut [f64])
}

/// `x[i] = Φ(x[i])`.
pub(super) fn phi_each(x: &mut [f64]) {
    phi_all(x);
}

/// `x[i] = x[i] ln x[i]` (0 below the smallest normal, as for 0): the terms of an entropy.
pub(super) fn x_ln_x_each(x: &mut [f64]) {
    x_ln_x_all(x);
}

/// `x[i] = ln x[i]` for positive normal x.
pub(super) fn ln_each(x: &mut [f64]) {
    ln_all(x);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::simd::{self, Level};
    use rand::{RngExt, SeedableRng};
    use rand_pcg::Pcg64Mcg;

    #[test]
    fn phi_agrees_with_the_scalar_one_and_every_level_gives_the_same_bits() {
        let mut rng = Pcg64Mcg::seed_from_u64(3);
        // 61 values: seven full chunks and a tail.
        let xs: Vec<f64> = (0..61).map(|_| rng.random_range(-40.0..40.0)).collect();
        let mut want = xs.clone();
        phi_generic(&mut want);
        // Φ's values are checked against tables in `gain`'s tests; here, that a whole slice
        // gives each value's bits.
        let one: Vec<f64> = xs.iter().map(|&x| phi_one(x)).collect();
        assert_eq!(want, one);
        let mut terms: Vec<f64> = want.iter().map(|p| p * 0.5).chain([0.0, 1e-310]).collect();
        let terms0 = terms.clone();
        x_ln_x_generic(&mut terms);
        assert_eq!(&terms[61..], &[0.0, 0.0]);
        for (t, p) in terms.iter().zip(&terms0).take(61) {
            if *p < f64::MIN_POSITIVE {
                assert_eq!(*t, 0.0);
                continue;
            }
            assert!((t - p * p.ln()).abs() <= 4.0 * f64::EPSILON * (p * p.ln()).abs());
        }
        for level in [Level::Portable, Level::Avx2, Level::Avx512] {
            if level > simd::detected() {
                continue;
            }
            simd::cap(level);
            let mut got = xs.clone();
            phi_each(&mut got);
            let mut got_terms = terms0.clone();
            x_ln_x_each(&mut got_terms);
            let mut logs: Vec<f64> = xs.iter().map(|x| x.abs() + 0.5).collect();
            let args = logs.clone();
            ln_each(&mut logs);
            simd::cap(Level::Avx512);
            assert_eq!(got, want, "{level:?}");
            assert_eq!(got_terms, terms, "{level:?}");
            let scalar: Vec<f64> = args.iter().map(|&p| ln(p)).collect();
            assert_eq!(logs, scalar, "{level:?}");
        }
    }
}
