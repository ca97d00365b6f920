//! The exponential and the logarithm as straight-line code that the compiler runs eight lanes
//! at a time: fdlibm's polynomials (`e_exp.c`: Remez on [0, ln 2 / 2] after a Cody–Waite
//! reduction; `e_log.c`: Remez in s = f / (2 + f) on [√½, √2]), written without branches,
//! within 1 ulp of libm (a test measures both). Every dispatch level runs the same operations
//! in the same order, so the same bits whatever the CPU. Used inside the dispatched kernels: the
//! E-step's posteriors and onboarding's gains.
//!
//! No model, web or async types here.

/// Lanes an operation runs at once (one AVX-512 register of f64).
pub(crate) const LANES: usize = 8;

const LN2_HI: f64 = 6.931471803691238e-1;
const LN2_LO: f64 = 1.9082149292705877e-10;
/// 1.5 · 2^52: adding it rounds to an integer, which its low mantissa bits then hold.
const ROUND: f64 = 6_755_399_441_055_744.0;

/// e^x for x in [−708, 709] (clamped there: e^−708 is the smallest normal's order, and nothing
/// here needs more range), within 1 ulp.
#[inline(always)]
pub(crate) fn exp(x: f64) -> f64 {
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
pub(crate) fn ln(x: f64) -> f64 {
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

/// Below this, [`exp_flushed`] returns 0: e^−708 is about 3e−308, the order of the smallest
/// normal, and nothing that adds such a term to a sum of order 1 can see it.
pub(crate) const EXP_FLUSH: f64 = -708.0;

/// e^x, or exactly 0 below [`EXP_FLUSH`] (where [`exp`] would clamp): the terms of a
/// log-sum-exp after the maximum is taken out, which are at most 1.
#[inline(always)]
pub(crate) fn exp_flushed(x: f64) -> f64 {
    let y = exp(x);
    if x < EXP_FLUSH { 0.0 } else { y }
}

/// Applies `f` to every element of `x`, eight at a time, then four (K = 12 is one of each:
/// no padding), the last few padded with `pad`. A plain loop over each chunk: `array::map` is
/// not inlined into the dispatched builds, which then call a portable copy lane by lane.
///
/// A tail copied into a padded array and read back whole stalls: the copy's narrower stores
/// cannot be forwarded to the wide load (a third of the 10 M E-step's samples were outside its
/// ratings loop, much of it here and in the sums after it).
#[inline(always)]
pub(crate) fn each(x: &mut [f64], pad: f64, f: impl Fn(f64) -> f64) {
    let (chunks, tail) = x.as_chunks_mut::<LANES>();
    for c in chunks {
        for v in c.iter_mut() {
            *v = f(*v);
        }
    }
    let (quads, tail) = tail.as_chunks_mut::<{ LANES / 2 }>();
    for c in quads {
        for v in c.iter_mut() {
            *v = f(*v);
        }
    }
    if !tail.is_empty() {
        let mut c = [pad; LANES / 2];
        c[..tail.len()].copy_from_slice(tail);
        for v in c.iter_mut() {
            *v = f(*v);
        }
        tail.copy_from_slice(&c[..tail.len()]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
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
    fn exp_flushed_flushes_below_the_smallest_normal_and_is_exp_above() {
        assert_eq!(exp_flushed(-1e9), 0.0);
        assert_eq!(exp_flushed(-708.5), 0.0);
        assert_eq!(exp_flushed(f64::NEG_INFINITY), 0.0);
        for x in [-707.9, -300.0, -1.0, 0.0] {
            assert_eq!(exp_flushed(x).to_bits(), exp(x).to_bits(), "{x}");
        }
        let mut xs = [-800.0, -708.0, -1.0, 0.0, -3.5, -0.25, -707.0, -709.0, -2.0];
        let want: Vec<f64> = xs.iter().map(|&x| exp_flushed(x)).collect();
        each(&mut xs, 0.0, exp_flushed);
        assert_eq!(xs.to_vec(), want);
        // Every length through eights, a four and a padded rest: the same as one at a time.
        for len in 0..=21 {
            let mut xs: Vec<f64> = (0..len).map(|i| -0.75 * i as f64 - 0.5).collect();
            let want: Vec<f64> = xs.iter().map(|&x| exp_flushed(x)).collect();
            each(&mut xs, 0.0, exp_flushed);
            assert_eq!(xs, want, "length {len}");
        }
    }
}
