//! numpy's legacy `RandomState(seed).choice(n, k, replace=False)`, bit for bit, so the
//! seed-compatible configuration starts from the rows the seed's `init(X, K, seed)` picks.
//!
//! That call is `permutation(n)[:k]`: an in-place Fisher–Yates shuffle of `0..n` drawing
//! `j` in `0..=i` for `i = n-1 .. 1` by masked rejection sampling on 32-bit MT19937 outputs,
//! with the generator seeded by `init_genrand(seed)`.

/// The 32-bit Mersenne Twister (MT19937) as numpy's legacy `RandomState` runs it.
struct Mt19937 {
    state: [u32; 624],
    pos: usize,
}

impl Mt19937 {
    /// `init_genrand(seed)`.
    fn new(seed: u32) -> Self {
        let mut state = [0u32; 624];
        state[0] = seed;
        for i in 1..624 {
            let prev = state[i - 1];
            state[i] = 1_812_433_253u32
                .wrapping_mul(prev ^ (prev >> 30))
                .wrapping_add(i as u32);
        }
        Self { state, pos: 624 }
    }

    fn twist(&mut self) {
        const UPPER: u32 = 0x8000_0000;
        const LOWER: u32 = 0x7fff_ffff;
        const MATRIX_A: u32 = 0x9908_b0df;
        for i in 0..624 {
            let y = (self.state[i] & UPPER) | (self.state[(i + 1) % 624] & LOWER);
            let mag = if y & 1 == 1 { MATRIX_A } else { 0 };
            self.state[i] = self.state[(i + 397) % 624] ^ (y >> 1) ^ mag;
        }
        self.pos = 0;
    }

    fn next_u32(&mut self) -> u32 {
        if self.pos >= 624 {
            self.twist();
        }
        let mut y = self.state[self.pos];
        self.pos += 1;
        y ^= y >> 11;
        y ^= (y << 7) & 0x9d2c_5680;
        y ^= (y << 15) & 0xefc6_0000;
        y ^ (y >> 18)
    }

    /// A uniform integer in `0..=max` (numpy's `random_interval`, 32-bit branch).
    fn interval(&mut self, max: u32) -> u32 {
        if max == 0 {
            return 0;
        }
        let mask = u32::MAX >> max.leading_zeros();
        loop {
            let v = self.next_u32() & mask;
            if v <= max {
                return v;
            }
        }
    }
}

/// The first `k` entries of numpy's legacy `RandomState(seed).permutation(n)`, which is what
/// `choice(n, k, replace=False)` returns. `n` must fit in 32 bits (it always does for users).
pub fn legacy_choice_without_replacement(seed: u32, n: usize, k: usize) -> Vec<usize> {
    assert!(k <= n && u32::try_from(n).is_ok(), "k ≤ n < 2^32");
    let mut rng = Mt19937::new(seed);
    let mut perm: Vec<usize> = (0..n).collect();
    for i in (1..n).rev() {
        let j = rng.interval(i as u32) as usize;
        perm.swap(i, j);
    }
    perm.truncate(k);
    perm
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mt19937_matches_the_reference_output() {
        // The reference implementation's first output for init_genrand(5489).
        assert_eq!(Mt19937::new(5489).next_u32(), 3_499_211_612);
    }

    #[test]
    fn choice_matches_numpy_for_the_seed_cases() {
        // seed-figures.json: init_rows of the 20 × 5 example and of toy_data (250 rows).
        assert_eq!(
            legacy_choice_without_replacement(0, 20, 4),
            vec![18, 1, 19, 8]
        );
        assert_eq!(
            legacy_choice_without_replacement(4, 250, 4),
            vec![33, 213, 39, 6]
        );
    }
}
