//! Fraud: when bursts start (by rate, more readily at night), which cards they compromise, and the events of
//! the four burst kinds (card testing, cloned card, account takeover, quiet).

use std::cmp::Reverse;

use rand::Rng;

use super::encode::Draft;
use super::merchants::{
    cents, online_probability, random_merchant, regular_merchant, ATM, CATS, ELECTRONICS,
    ENTERTAINMENT, FUEL, GAMBLING, GROCERY, JEWELRY, ONLINE_RETAIL, REGULARS, TRAVEL,
};
use super::sampling::{exponential, lognormal, pick, pick_weighted};
use super::{FraudGenerator, DAY_MS};

/// Relative readiness to start a fraud burst, by hour of the day.
pub(super) const BURST_START: [f64; 24] = [
    1.0, 1.0, 1.0, 1.0, 1.0, 0.9, 0.6, 0.4, 0.3, 0.3, 0.3, 0.3, 0.3, 0.3, 0.3, 0.3, 0.3, 0.3, 0.3,
    0.3, 0.4, 0.5, 0.7, 0.85,
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BurstKind {
    Testing,
    Cloned,
    Takeover,
    Quiet,
}

impl BurstKind {
    /// Mean time between the events of a burst.
    fn gap_ms(self) -> f64 {
        match self {
            BurstKind::Testing => 100_000.0,
            BurstKind::Cloned => 360_000.0,
            BurstKind::Takeover => 2_100_000.0,
            BurstKind::Quiet => 7_200_000.0,
        }
    }
}

/// A fraud burst under way on a card.
#[derive(Debug, Clone, Copy)]
pub(super) struct Burst {
    kind: BurstKind,
    /// Events still to come, test charges included.
    remaining: u8,
    /// Test charges still to come (card testing).
    tests: u8,
    /// Where the fraudster is, from the card's home.
    km: f64,
    abroad: bool,
}

impl FraudGenerator {
    /// Compromises a card, if one not already under attack turns up, and schedules its first fraud event.
    pub(super) fn start_burst(&mut self, ts: i64) {
        let n = self.cards.len();
        let elapsed_days = self
            .epoch
            .map_or(0.0, |e| ts.saturating_sub(e) as f64 / DAY_MS as f64);
        let mut chosen = None;
        for _ in 0..16 {
            let i = self.rng.random_range(0..n);
            let card = &self.cards[i];
            let young = card.age_at_start_days + elapsed_days < 90.0;
            if card.burst.is_none() && self.rng.random::<f64>() < if young { 1.0 } else { 0.35 } {
                chosen = Some(i);
                break;
            }
        }
        let Some(card) = chosen else { return };
        let rng = &mut self.rng;
        let u = rng.random::<f64>();
        let kind = if u < 0.37 {
            BurstKind::Testing
        } else if u < 0.60 {
            BurstKind::Cloned
        } else if u < 0.80 {
            BurstKind::Takeover
        } else {
            BurstKind::Quiet
        };
        let (tests, events) = match kind {
            BurstKind::Testing => {
                let tests =
                    1 + u8::from(rng.random::<f64>() < 0.5) + u8::from(rng.random::<f64>() < 0.2);
                (tests, tests + rng.random_range(1..=5))
            }
            BurstKind::Cloned => (0, rng.random_range(2..=6)),
            BurstKind::Takeover => (0, rng.random_range(1..=3)),
            BurstKind::Quiet => (0, rng.random_range(1..=2)),
        };
        let (km, abroad) = match kind {
            BurstKind::Testing | BurstKind::Takeover if rng.random::<f64>() < 0.3 => {
                (exponential(rng, 20.0), false)
            }
            BurstKind::Testing | BurstKind::Takeover => {
                let abroad = rng.random::<f64>() < 0.6;
                let km = lognormal(rng, 900.0, 1.0).min(15_000.0);
                (if abroad { km + 300.0 } else { km }, abroad)
            }
            BurstKind::Cloned => {
                let abroad = rng.random::<f64>() < 0.3;
                let km = lognormal(rng, 120.0, 1.0);
                (if abroad { km + 300.0 } else { km }, abroad)
            }
            BurstKind::Quiet => (0.0, false),
        };
        self.cards[card].burst = Some(Burst {
            kind,
            remaining: events,
            tests,
            km,
            abroad,
        });
        self.fraud_credit -= f64::from(events);
        let due = ts.saturating_add(exponential(rng, 60_000.0) as i64);
        self.pending.push(Reverse((due, card as u32, true)));
    }

    /// The next event of the burst on `card`, scheduling the one after.
    pub(super) fn fraud(&mut self, card: usize, ts: i64) -> Draft {
        let rng = &mut self.rng;
        let c = &mut self.cards[card];
        let Some(mut burst) = c.burst else {
            unreachable!("a pending fraud event for a card without a burst");
        };
        let testing = burst.tests > 0;
        burst.tests = burst.tests.saturating_sub(1);
        burst.remaining -= 1;
        if burst.remaining > 0 {
            c.burst = Some(burst);
            let due = ts.saturating_add(exponential(rng, burst.kind.gap_ms()) as i64);
            self.pending.push(Reverse((due, card as u32, true)));
        } else {
            c.burst = None;
        }

        let far = burst.km * lognormal(rng, 1.0, 0.1);
        let (cat, online, present, amount, km, mismatch) = match burst.kind {
            BurstKind::Testing if testing => {
                let cat = pick(
                    rng,
                    &[
                        (ONLINE_RETAIL, 0.5),
                        (ENTERTAINMENT, 0.25),
                        (GAMBLING, 0.25),
                    ],
                );
                (
                    cat,
                    true,
                    false,
                    0.5 + 4.5 * rng.random::<f64>(),
                    far,
                    burst.abroad,
                )
            }
            BurstKind::Testing | BurstKind::Takeover => {
                let cat = if burst.kind == BurstKind::Testing {
                    pick(
                        rng,
                        &[
                            (ELECTRONICS, 0.3),
                            (ONLINE_RETAIL, 0.3),
                            (JEWELRY, 0.12),
                            (GAMBLING, 0.15),
                            (TRAVEL, 0.13),
                        ],
                    )
                } else {
                    pick(
                        rng,
                        &[
                            (ONLINE_RETAIL, 0.45),
                            (ELECTRONICS, 0.25),
                            (TRAVEL, 0.2),
                            (GAMBLING, 0.1),
                        ],
                    )
                };
                let online = rng.random::<f64>() < 0.9;
                let median = if burst.kind == BurstKind::Testing {
                    250.0
                } else {
                    400.0
                };
                (
                    cat,
                    online,
                    false,
                    lognormal(rng, median, 0.9),
                    far,
                    burst.abroad,
                )
            }
            BurstKind::Cloned => {
                let cat = pick(
                    rng,
                    &[
                        (ATM, 0.5),
                        (ELECTRONICS, 0.2),
                        (JEWELRY, 0.15),
                        (FUEL, 0.1),
                        (GROCERY, 0.05),
                    ],
                );
                let amount = match cat {
                    ATM => 100.0 + 700.0 * rng.random::<f64>(),
                    FUEL => lognormal(rng, 60.0, 0.5),
                    _ => lognormal(rng, 200.0, 0.8),
                };
                (cat, false, true, amount, far, burst.abroad)
            }
            BurstKind::Quiet => {
                let cat = pick_weighted(rng, &c.cat_weights);
                let online = rng.random::<f64>() < online_probability(cat, c.online_pref);
                let amount = c.typical * CATS[cat].amount * lognormal(rng, 1.5, CATS[cat].spread);
                (
                    cat,
                    online,
                    !online,
                    amount,
                    exponential(rng, c.local_km),
                    false,
                )
            }
        };
        let merchant = if burst.kind == BurstKind::Quiet && rng.random::<f64>() < 0.4 {
            regular_merchant(self.salt, card, cat, rng.random_range(0..REGULARS))
        } else {
            random_merchant(rng, cat)
        };
        Draft {
            card,
            cat,
            merchant,
            cents: cents(cat, amount),
            online,
            present,
            km,
            mismatch,
            fraud: true,
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    use crate::demo::generator::test_support::{generate, parse};
    use crate::demo::generator::GeneratorConfig;

    /// Rank AUC of `score` for the positives, ties counted half.
    fn auc(scored: &mut [(f64, bool)]) -> f64 {
        scored.sort_by(|a, b| a.0.total_cmp(&b.0));
        let (mut rank_sum, mut pos, mut i) = (0.0, 0.0, 0);
        while i < scored.len() {
            let mut j = i;
            while j < scored.len() && scored[j].0 == scored[i].0 {
                j += 1;
            }
            let mid_rank = (i + j + 1) as f64 / 2.0;
            for s in &scored[i..j] {
                if s.1 {
                    rank_sum += mid_rank;
                    pos += 1.0;
                }
            }
            i = j;
        }
        let neg = scored.len() as f64 - pos;
        (rank_sum - pos * (pos + 1.0) / 2.0) / (pos * neg)
    }

    #[test]
    fn generator_honours_the_fraud_rate() {
        for (rate, n) in [(0.02, 200_000), (0.005, 100_000), (0.1, 100_000)] {
            let config = GeneratorConfig {
                fraud_rate: rate,
                ..GeneratorConfig::default()
            };
            let events = generate(3, config, n);
            let share = events.iter().filter(|e| e.is_fraud).count() as f64 / events.len() as f64;
            println!("fraud share {share:.4} for rate {rate}");
            assert!(
                (share - rate).abs() < 0.1 * rate,
                "fraud share {share} for rate {rate}"
            );
        }
        let none = GeneratorConfig {
            fraud_rate: 0.0,
            ..GeneratorConfig::default()
        };
        assert!(generate(3, none, 20_000).iter().all(|e| !e.is_fraud));
    }

    #[test]
    fn generator_fraud_is_informative_but_not_separable() {
        let events = generate(11, GeneratorConfig::default(), 200_000);
        let rows: Vec<_> = events.iter().map(|e| (parse(e), e.is_fraud)).collect();
        let value = |v: &Value| match v {
            Value::Bool(b) => f64::from(u8::from(*b)),
            v => v.as_f64().unwrap(),
        };
        let mut report = Vec::new();
        for field in [
            "amount",
            "amount_vs_avg",
            "card_velocity_1h",
            "distance_from_home_km",
            "country_mismatch",
            "new_merchant",
            "is_online",
            "account_age_days",
            "hour",
        ] {
            let mut scored: Vec<_> = rows.iter().map(|(m, y)| (value(&m[field]), *y)).collect();
            let a = auc(&mut scored);
            report.push(format!("{field}={a:.3}"));
            let a = a.max(1.0 - a);
            assert!(
                a < 0.95,
                "{field} alone separates fraud: AUC {a}; {report:?}"
            );
        }
        for field in [
            "amount_vs_avg",
            "card_velocity_1h",
            "distance_from_home_km",
            "country_mismatch",
        ] {
            let mut scored: Vec<_> = rows.iter().map(|(m, y)| (value(&m[field]), *y)).collect();
            let a = auc(&mut scored);
            assert!(a > 0.55, "{field} is not informative: AUC {a}; {report:?}");
        }
        println!("single-feature AUCs: {report:?}");
    }
}
