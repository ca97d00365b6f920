//! The exponential, the logarithm and Φ over whole slices, eight lanes at a time: the gain's
//! transcendental functions, where libm's one-at-a-time calls were most of an exact gain's
//! time (K (levels − 1) exponentials and K levels logarithms an item).
//!
//! The polynomials are fdlibm's (`e_exp.c`: Remez on [0, ln 2 / 2] after a Cody–Waite
//! reduction; `e_log.c`: Remez in s = f / (2 + f) on [√½, √2]), written without branches so
//! that the compiler keeps all eight lanes in vector registers; within 1 ulp of libm (a test
//! measures both). Every dispatch level runs the same operations in the same order: the same
//! bits whatever the CPU, like the engine's kernels.
//!
//! No web or async types here.

use crate::simd::dispatched;

/// Lanes an operation runs at once (one AVX-512 register of f64).
const LANES: usize = 8;

const LN2_HI: f64 = 6.931471803691238e-1;
const LN2_LO: f64 = 1.9082149292705877e-10;
/// 1.5 · 2^52: adding it rounds to an integer, which its low mantissa bits then hold.
const ROUND: f64 = 6_755_399_441_055_744.0;

/// e^x for x in [−708, 709] (clamped there: e^−708 is the smallest normal's order, and nothing
/// here needs more range), within 1 ulp.
#[inline(always)]
fn exp(x: f64) -> f64 {
    const P: [f64; 5] = [
        1.6666666666666602e-1,
        -2.7777777777015593e-3,
        6.613756321437934e-5,
        -1.6533902205465252e-6,
        4.1381367970572385e-8,
    ];
    let x = if x < -708.0 { -708.0 } else { x };
    let x = if x > 709.0 { 709.0 } else { x };
    // x = n ln 2 + r, |r| ≤ ln 2 / 2, n held in the low bits of `t`.
    let t = x * std::f64::consts::LOG2_E + ROUND;
    let n = t - ROUND;
    let hi = x - n * LN2_HI;
    let lo = n * LN2_LO;
    let r = hi - lo;
    let rr = r * r;
    let c = r - rr * (P[0] + rr * (P[1] + rr * (P[2] + rr * (P[3] + rr * P[4]))));
    let y = 1.0 - ((lo - (r * c) / (2.0 - c)) - hi);
    let n = (t.to_bits() as i64).wrapping_sub(ROUND.to_bits() as i64);
    y * f64::from_bits(((n + 1023) as u64) << 52)
}

/// ln x for a positive normal x, within 1 ulp.
#[inline(always)]
fn ln(x: f64) -> f64 {
    const LG: [f64; 7] = [
        6.666666666666735e-1,
        3.999999999940942e-1,
        2.857142874366239e-1,
        2.2222198432149784e-1,
        1.818357216161805e-1,
        1.5313837699209373e-1,
        1.4798198605116586e-1,
    ];
    const MANTISSA: u64 = (1 << 52) - 1;
    let bits = x.to_bits();
    // x = 2^e m, m in [1, 2), then in [√½, √2).
    let m = f64::from_bits((bits & MANTISSA) | 1.0f64.to_bits());
    let big = m > std::f64::consts::SQRT_2;
    let m = if big { 0.5 * m } else { m };
    let e = ((bits >> 52) as i64) - 1023 + i64::from(big);
    // e as a float without an integer conversion (AVX2 has none for 64-bit lanes).
    let k = f64::from_bits(ROUND.to_bits().wrapping_add(e as u64)) - ROUND;
    let f = m - 1.0;
    let s = f / (2.0 + f);
    let z = s * s;
    let w = z * z;
    let t1 = w * (LG[1] + w * (LG[3] + w * LG[5]));
    let t2 = z * (LG[0] + w * (LG[2] + w * (LG[4] + w * LG[6])));
    let hfsq = 0.5 * f * f;
    k * LN2_HI - ((hfsq - (s * (hfsq + t1 + t2) + k * LN2_LO)) - f)
}

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

/// Applies `f` to every element of `x`, eight at a time (the tail padded with `pad`). A plain
/// loop over each chunk: `array::map` is not inlined into the dispatched builds, which then
/// call a portable copy lane by lane.
#[inline(always)]
fn each(x: &mut [f64], pad: f64, f: impl Fn(f64) -> f64) {
    let (chunks, tail) = x.as_chunks_mut::<LANES>();
    for c in chunks {
        for v in c.iter_mut() {
            *v = f(*v);
        }
    }
    if !tail.is_empty() {
        let mut c = [pad; LANES];
        c[..tail.len()].copy_from_slice(tail);
        for v in c.iter_mut() {
            *v = f(*v);
        }
        tail.copy_from_slice(&c[..tail.len()]);
    }
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

    /// |a − b| in units of b's last place.
    fn ulps(a: f64, b: f64) -> f64 {
        (a - b).abs() / (b.abs() * f64::EPSILON).max(f64::MIN_POSITIVE)
    }

    #[test]
    fn exp_and_ln_are_within_an_ulp_of_libm() {
        let mut rng = Pcg64Mcg::seed_from_u64(7);
        let mut worst = (0.0f64, 0.0f64);
        for i in 0..200_000 {
            let x: f64 = if i % 2 == 0 {
                rng.random_range(-708.0..709.0)
            } else {
                rng.random_range(-5.0..5.0)
            };
            worst.0 = worst.0.max(ulps(exp(x), x.exp()));
            let y: f64 = if i % 2 == 0 {
                10f64.powf(rng.random_range(-307.0..307.0))
            } else {
                rng.random_range(0.5..2.0)
            };
            // Near 1, ln's value is small: measure its error against its argument's scale.
            let err = (ln(y) - y.ln()).abs() / (y.ln().abs().max(1e-300) * f64::EPSILON);
            worst.1 = worst.1.max(err);
        }
        // Each is within 1 ulp of the true value, as libm is: at most 2 apart.
        assert!(worst.0 <= 2.0, "exp is {} ulps off", worst.0);
        assert!(worst.1 <= 2.0, "ln is {} ulps off", worst.1);
        // The ends: 1, a power of two, and the clamp.
        assert_eq!(ln(1.0), 0.0);
        assert!((ln(0.25) + 2.0 * std::f64::consts::LN_2).abs() <= 2.0 * f64::EPSILON);
        assert_eq!(exp(0.0), 1.0);
        assert!(exp(-1e9) > 0.0 && exp(-1e9) < 1e-300);
    }

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
