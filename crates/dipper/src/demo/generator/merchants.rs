//! The merchant catalogue: the categories, how legitimate cards use each, and which merchants a card picks.
//!
//! Merchants are numbered across the categories (each category a contiguous range, popular merchants first);
//! a card's *regular merchants* are a fixed function of the generator's salt and the card, so they need no
//! storage and count as used before the simulation starts.

use rand::Rng;
use rand_chacha::ChaCha8Rng;

/// A merchant category and how legitimate cards use it.
pub(super) struct Category {
    pub(super) name: &'static str,
    /// Share of legitimate transactions for a typical card.
    pub(super) share: f64,
    /// Typical amount relative to the card's typical amount.
    pub(super) amount: f64,
    /// Log-normal spread of the amount.
    pub(super) spread: f64,
    /// Probability that a legitimate purchase is online, for a card with average online preference.
    pub(super) online: f64,
    /// Number of merchants in the category.
    pub(super) merchants: u32,
}

pub(super) const fn cat(
    name: &'static str,
    share: f64,
    amount: f64,
    spread: f64,
    online: f64,
    merchants: u32,
) -> Category {
    Category {
        name,
        share,
        amount,
        spread,
        online,
        merchants,
    }
}

pub(super) const CATS: [Category; 12] = [
    cat("grocery", 0.24, 1.0, 0.5, 0.04, 300),
    cat("fuel", 0.12, 1.0, 0.35, 0.0, 150),
    cat("restaurant", 0.18, 0.7, 0.5, 0.08, 600),
    cat("online_retail", 0.12, 1.1, 0.8, 1.0, 400),
    cat("electronics", 0.03, 4.0, 0.8, 0.45, 120),
    cat("travel", 0.02, 6.0, 0.7, 0.6, 200),
    cat("atm", 0.06, 2.5, 0.5, 0.0, 300),
    cat("gambling", 0.015, 1.5, 0.9, 0.85, 60),
    cat("jewelry", 0.006, 5.0, 0.8, 0.15, 80),
    cat("pharmacy", 0.06, 0.6, 0.5, 0.1, 150),
    cat("entertainment", 0.07, 0.8, 0.6, 0.5, 200),
    cat("utilities", 0.05, 2.0, 0.4, 0.9, 50),
];
pub(super) const NCAT: usize = CATS.len();

pub(super) const GROCERY: usize = 0;
pub(super) const FUEL: usize = 1;
pub(super) const RESTAURANT: usize = 2;
pub(super) const ONLINE_RETAIL: usize = 3;
pub(super) const ELECTRONICS: usize = 4;
pub(super) const TRAVEL: usize = 5;
pub(super) const ATM: usize = 6;
pub(super) const GAMBLING: usize = 7;
pub(super) const JEWELRY: usize = 8;
pub(super) const ENTERTAINMENT: usize = 10;
pub(super) const UTILITIES: usize = 11;

/// The first merchant index of each category; the last entry is the number of merchants.
pub(super) const MERCHANT_START: [u32; NCAT + 1] = {
    let mut start = [0; NCAT + 1];
    let mut i = 0;
    while i < NCAT {
        start[i + 1] = start[i] + CATS[i].merchants;
        i += 1;
    }
    start
};
/// Words of the bitmap of the merchants a card has used.
pub(super) const SEEN_WORDS: usize = (MERCHANT_START[NCAT] as usize).div_ceil(64);

/// Regular merchants a card has per category.
pub(super) const REGULARS: u64 = 3;

pub(super) fn online_probability(cat: usize, preference: f64) -> f64 {
    match CATS[cat].online {
        p if p <= 0.0 || p >= 1.0 => p,
        p => (p * preference).min(0.95),
    }
}

/// Whole cents, at least one dollar (test charges excepted), ATM withdrawals in multiples of 20.
pub(super) fn cents(cat: usize, amount: f64) -> u64 {
    let amount = if amount.is_finite() {
        amount.clamp(0.5, 1e6)
    } else {
        1.0
    };
    if cat == ATM {
        ((amount / 20.0).round().max(1.0) * 2000.0) as u64
    } else {
        (amount * 100.0).round() as u64
    }
}

/// One of the card's regular merchants in the category (a fixed function of the card).
pub(super) fn regular_merchant(salt: u64, card: usize, cat: usize, slot: u64) -> u32 {
    let h = splitmix64(salt ^ ((card as u64) << 16) ^ ((cat as u64) << 8) ^ slot);
    skewed_merchant(cat, (h >> 11) as f64 / (1u64 << 53) as f64)
}

pub(super) fn random_merchant(rng: &mut ChaCha8Rng, cat: usize) -> u32 {
    skewed_merchant(cat, rng.random::<f64>())
}

/// A merchant of the category, popular ones (low indices) more likely.
fn skewed_merchant(cat: usize, u: f64) -> u32 {
    let count = CATS[cat].merchants;
    MERCHANT_START[cat] + ((u * u * f64::from(count)) as u32).min(count - 1)
}

fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}
