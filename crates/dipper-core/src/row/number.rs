//! Numbers of the fast path: JSON's number grammar, and the conversion to the nearest f64, exactly.
//!
//! Digits are read eight at a time (SWAR) into a u64 mantissa. A number of at most 19 significant digits with a
//! power of ten `10^k`, `|k| <= 22`, is converted by exact arithmetic: a mantissa that fits in 53 bits with one
//! IEEE multiplication or division by `10^k` (Clinger's fast path: exact operands, one rounding); a wider one
//! by 128-bit integer arithmetic, `mant * 5^k` or the quotient by `5^k` (through a reciprocal, corrected by the
//! remainder) rounded once with a sticky bit, then scaled by `2^k`. Anything else (more digits, larger powers)
//! goes to `str::parse::<f64>`, correctly rounded too. serde_json reads numbers the same (correctly rounded)
//! with its `float_roundtrip` feature, which this crate enables.

/// A JSON number's value as `(-1)^neg * mant * 10^exp10`; `mant` is exact only when `digits <= 19`.
pub(super) struct Num {
    neg: bool,
    mant: u64,
    /// Digits of the integer and fraction parts; leading zeros count only while there are at most 19 in all.
    digits: usize,
    exp10: i64,
}

/// Scans a number with JSON's grammar: `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`.
#[inline(always)]
pub(super) fn scan(b: &[u8], mut i: usize) -> Option<(Num, usize)> {
    let neg = b.get(i) == Some(&b'-');
    if neg {
        i += 1;
    }
    let mut mant = 0u64;
    let int_start = i;
    match *b.get(i)? {
        b'0' => {
            i += 1;
            if let Some(b'0'..=b'9') = b.get(i) {
                return None;
            }
        }
        b'1'..=b'9' => i = digit_run(b, i, &mut mant),
        _ => return None,
    }
    let mut digits = i - int_start;
    let mut exp10 = 0i64;
    if b.get(i) == Some(&b'.') {
        let frac_start = i + 1;
        i = digit_run(b, frac_start, &mut mant);
        if i == frac_start {
            return None;
        }
        digits += i - frac_start;
        exp10 = -((i - frac_start) as i64);
    }
    if digits > 19 {
        // Leading zeros (as in 0.000123) do not count: the mantissa may still be exact.
        let zeros = b[int_start..i]
            .iter()
            .take_while(|&&c| c == b'0' || c == b'.')
            .filter(|&&c| c == b'0')
            .count();
        digits -= zeros;
    }
    if let Some(b'e' | b'E') = b.get(i) {
        i += 1;
        let neg_exp = match b.get(i) {
            Some(b'-') => {
                i += 1;
                true
            }
            Some(b'+') => {
                i += 1;
                false
            }
            _ => false,
        };
        let exp_start = i;
        let mut e = 0i64;
        while let Some(&d @ b'0'..=b'9') = b.get(i) {
            e = (e * 10 + i64::from(d - b'0')).min(1 << 40);
            i += 1;
        }
        if i == exp_start {
            return None;
        }
        exp10 += if neg_exp { -e } else { e };
    }
    Some((
        Num {
            neg,
            mant,
            digits,
            exp10,
        },
        i,
    ))
}

/// Reads the number at `b[i..]`, correctly rounded, and the index after it; `None` when it is not a JSON number
/// or out of f64's range (an error for serde_json).
#[inline(always)]
pub(super) fn read(b: &[u8], i: usize) -> Option<(f64, usize)> {
    let (n, end) = scan(b, i)?;
    let v = match exact(&n) {
        Some(v) => v,
        None => parse_slow(&b[i..end])?,
    };
    // The magnitude with the sign bit set for negatives: -0 stays -0.
    Some((f64::from_bits(v.to_bits() | u64::from(n.neg) << 63), end))
}

/// Consumes the digits from `b[i..]` into `mant` (wrapping past 19 digits), eight at a time where it can, and
/// returns the index after them.
#[inline(always)]
fn digit_run(b: &[u8], mut i: usize, mant: &mut u64) -> usize {
    while let Some(chunk) = b.get(i..i + 8) {
        let v = u64::from_le_bytes(chunk.try_into().expect("8 bytes"));
        if (v.wrapping_add(0x4646_4646_4646_4646) | v.wrapping_sub(0x3030_3030_3030_3030))
            & 0x8080_8080_8080_8080
            != 0
        {
            break;
        }
        *mant = mant
            .wrapping_mul(100_000_000)
            .wrapping_add(parse_8_digits(v - 0x3030_3030_3030_3030));
        i += 8;
    }
    while let Some(&d @ b'0'..=b'9') = b.get(i) {
        *mant = mant.wrapping_mul(10).wrapping_add(u64::from(d - b'0'));
        i += 1;
    }
    i
}

/// The value of 8 digits (byte values 0..=9, the first digit in the low byte).
#[inline(always)]
fn parse_8_digits(v: u64) -> u64 {
    const MASK: u64 = 0x0000_00ff_0000_00ff;
    const MUL1: u64 = 100 + (1_000_000 << 32);
    const MUL2: u64 = 1 + (10_000 << 32);
    let v = v * 10 + (v >> 8);
    let v1 = (v & MASK).wrapping_mul(MUL1);
    let v2 = ((v >> 16) & MASK).wrapping_mul(MUL2);
    u64::from(v1.wrapping_add(v2).wrapping_shr(32) as u32)
}

/// The largest power of ten [`exact`] takes.
const MAX_EXP10: usize = 22;

/// `5^k`, and `floor(2^128 / 5^k)` to divide by it with multiplications.
const POW5: [(u64, u128); MAX_EXP10 + 1] = {
    let mut t = [(1u64, 0u128); MAX_EXP10 + 1];
    let mut k = 1;
    while k <= MAX_EXP10 {
        let p = t[k - 1].0 * 5;
        // 5^k does not divide 2^128, so floor((2^128 - 1) / 5^k) = floor(2^128 / 5^k).
        t[k] = (p, u128::MAX / p as u128);
        k += 1;
    }
    t
};

const POW10F: [f64; 23] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16,
    1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
];

/// `2^e` for a normal exponent.
#[inline(always)]
fn pow2(e: i32) -> f64 {
    f64::from_bits(((1023 + e) as u64) << 52)
}

/// `q` plus a fraction in (0, 1) when `inexact` (else nothing), correctly rounded, times `2^e`; the result must be
/// a normal number.
#[inline(always)]
fn round_scaled(q: u128, inexact: bool, e: i32) -> f64 {
    let lz = q.leading_zeros();
    let norm = q << lz;
    // The top 64 bits keep q's leading 1 in bit 63, so the bit deciding the rounding to 53 bits is bit 10; every
    // lower bit of q, and the fraction, only matter as "something below": folded into bit 0 (a sticky bit), the
    // one conversion rounds as it would the exact value.
    let top = (norm >> 64) as u64 | u64::from((norm as u64 != 0) | inexact);
    top as f64 * pow2(64 - lz as i32 + e)
}

/// The magnitude `mant * 10^exp10`, correctly rounded, by exact integer arithmetic, when the mantissa is exact
/// (at most 19 significant digits) and `|exp10| <= 22`; `None` otherwise.
#[inline(always)]
fn exact(n: &Num) -> Option<f64> {
    if n.digits > 19 || n.exp10.unsigned_abs() > MAX_EXP10 as u64 {
        return None;
    }
    if n.mant == 0 {
        return Some(0.0);
    }
    let k = n.exp10.unsigned_abs() as usize;
    if n.mant <= 1 << 53 {
        let m = n.mant as f64;
        return Some(if n.exp10 < 0 {
            m / POW10F[k]
        } else {
            m * POW10F[k]
        });
    }
    let (p, inv) = POW5[k];
    if n.exp10 >= 0 {
        // mant * 10^k = (mant * 5^k) * 2^k, the product exact in 128 bits (< 2^64 * 5^22 < 2^116).
        return Some(round_scaled(
            u128::from(n.mant) * u128::from(p),
            false,
            k as i32,
        ));
    }
    // mant * 10^-k = m * 2^-(lz + k) / 5^k with m = mant << lz (bit 63 set), and m / 5^k = (q + r / 5^k) * 2^-64
    // with q = floor(m * 2^64 / 5^k) (at least 2^75) and r the remainder. Multiplying by inv = 2^128 / 5^k - d
    // (0 < d < 1) gives m * 2^64 / 5^k - m * d / 2^64, less than 1 below the quotient: q or q - 1, which the
    // remainder corrects.
    let lz = n.mant.leading_zeros();
    let m = n.mant << lz;
    let (inv_hi, inv_lo) = ((inv >> 64) as u64, inv as u64);
    let mut q = u128::from(m) * u128::from(inv_hi) + ((u128::from(m) * u128::from(inv_lo)) >> 64);
    let mut r = (u128::from(m) << 64) - q * u128::from(p);
    let low = r >= u128::from(p);
    q += u128::from(low);
    r -= u128::from(low) * u128::from(p);
    debug_assert!(r < u128::from(p));
    Some(round_scaled(q, r != 0, -64 - lz as i32 - k as i32))
}

/// The magnitude of a number `str::parse` reads (it is correctly rounded); `None` when out of range.
#[cold]
fn parse_slow(text: &[u8]) -> Option<f64> {
    let text = text.strip_prefix(b"-").unwrap_or(text);
    let v = std::str::from_utf8(text).ok()?.parse::<f64>().ok()?;
    v.is_finite().then_some(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exact_of(text: &str) -> Option<f64> {
        exact(&scan(text.as_bytes(), 0).unwrap().0)
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(
            crate::row::equivalence::cases(20_000)
        ))]

        /// The exact path against `str::parse`, on every mantissa size and power of ten it takes.
        #[test]
        fn exact_path_is_correctly_rounded(
            mant in proptest::prop_oneof![0u64..1 << 53, (1u64 << 53)..10_000_000_000_000_000_000],
            k in -22i64..=22,
            fraction in proptest::bool::ANY,
        ) {
            // Either 123e-5 or 0.123e-2: a leading zero the digit count must not count.
            let digits = mant.to_string();
            let text = if fraction {
                format!("0.{digits}e{}", k + digits.len() as i64)
            } else {
                format!("{digits}e{k}")
            };
            let v = exact_of(&text);
            proptest::prop_assert!(v.is_some(), "{}", text);
            proptest::prop_assert_eq!(v.unwrap().to_bits(), text.parse::<f64>().unwrap().to_bits(), "{}", text);
        }

        /// Exact halfway cases (ties go to even), from both sides: an odd 54-bit integer `m` times `2^s`
        /// (written as `mant * 10^k`, `k >= 0`) or divided by `2^j` (written as `mant * 10^-k`, `j <= k`).
        #[test]
        fn ties_round_to_even(half in (1u64 << 52)..(1u64 << 53), k in 0u32..=19, s in 0u32..12, j in 0u32..=4) {
            let five_k = 5u128.pow(k);
            // Positive exponent: m = 5^k * c, c odd; value m * 2^s = (c * 2^(s-k)) * 10^k when s >= k.
            let c = ((2 * u128::from(half) + 1) / five_k) | 1;
            let m = c * five_k;
            if s >= k && m > 1 << 53 && m < 1 << 54 {
                let mant = c << (s - k);
                if mant < 1 << 63 {
                    let text = format!("{mant}e{k}");
                    let want = text.parse::<f64>().unwrap();
                    proptest::prop_assert_eq!(exact_of(&text).map(f64::to_bits), Some(want.to_bits()), "{}", text);
                }
            }
            // Negative exponent: value m / 2^j = (m * 5^k * 2^(k-j)) * 10^-k when j <= k.
            let m = 2 * u128::from(half) + 1;
            if j <= k {
                let mant = (m * five_k) << (k - j);
                if mant < u128::from(u64::MAX) && mant.to_string().len() <= 19 {
                    let text = format!("{mant}e-{k}");
                    let want = text.parse::<f64>().unwrap();
                    if let Some(got) = exact_of(&text) {
                        proptest::prop_assert_eq!(got.to_bits(), want.to_bits(), "{}", text);
                    }
                }
            }
        }
    }

    /// Quotients whose integer part is exactly halfway between two doubles but with a nonzero remainder: only
    /// the remainder's sticky bit makes them round up instead of to even. Built as `m * 2^64 = (c * 5^22 + s) *
    /// 2^22` with `c` (54 bits, ending in binary 01) the halfway pattern and `0 < s * 2^22 < 5^22`.
    #[test]
    fn the_remainder_breaks_ties() {
        let (k, j) = (22u32, 22u32);
        let shift = 64 - j;
        let p5 = 5u128.pow(k);
        let modulus = 1u128 << shift;
        // The inverse of 5^22 modulo 2^128 by Newton's iteration (each step doubles the correct low bits).
        let mut inv = p5;
        for _ in 0..7 {
            inv = inv.wrapping_mul(2u128.wrapping_sub(p5.wrapping_mul(inv)));
        }
        assert_eq!(p5.wrapping_mul(inv), 1);
        let mut tested = 0;
        for s in 1..(p5 >> j) {
            // c * 5^22 + s divisible by 2^42.
            let c0 = (modulus - s.wrapping_mul(inv) % modulus) % modulus;
            if c0 % 4 != 1 {
                continue;
            }
            let mut c = c0 + (1u128 << 53) / modulus * modulus;
            while c < 1 << 54 {
                let m = (c * p5 + s) >> shift;
                if c >= 1 << 53 && (1 << 63..10_000_000_000_000_000_000).contains(&m) {
                    let text = format!("{m}e-{k}");
                    let want = text.parse::<f64>().unwrap();
                    assert_eq!(
                        exact_of(&text).map(f64::to_bits),
                        Some(want.to_bits()),
                        "{text}"
                    );
                    tested += 1;
                }
                c += modulus;
            }
            if tested > 2000 {
                break;
            }
        }
        assert!(tested > 2000);
    }

    #[test]
    fn clinger_fast_path_bounds() {
        let number = |text: &str| read(text.as_bytes(), 0).map(|(v, _)| v);
        assert_eq!(number("9007199254740993"), Some(9007199254740992.0));
        assert_eq!(number("-0.0").map(f64::to_bits), Some((-0.0f64).to_bits()));
        assert_eq!(number("1e23"), Some(1e23));
        // Exact by one operation at the fast path's bounds, or by `str::parse` past them.
        for text in [
            "1e22",
            "9007199254740992e22",
            "9007199254740992e-22",
            "9007199254740993e-22",
            "1e23",
            "1e-23",
            "0e999999999999999999",
            "4.9e-324",
            "2.2250738585072011e-308",
            "123456789012345678.9e-3",
            "0.000000000000000000000000000001234567890123456789",
        ] {
            let got = number(text).unwrap();
            assert_eq!(
                got.to_bits(),
                text.parse::<f64>().unwrap().to_bits(),
                "{text}"
            );
        }
        for out_of_range in ["1e309", "-1.8e308", "1e99999999999999999999"] {
            assert_eq!(number(out_of_range), None, "{out_of_range}");
        }
    }
}
