//! The card population: each card's profile and daily rhythm, drawn once from the seed, and its legitimate
//! spending (usual categories and merchants, trips, big purchases, shopping sessions).

use std::cmp::Reverse;

use rand::Rng;
use rand_chacha::ChaCha8Rng;

use super::encode::Draft;
use super::fraud::Burst;
use super::merchants::{
    cents, online_probability, random_merchant, regular_merchant, ATM, CATS, ENTERTAINMENT, FUEL,
    GROCERY, NCAT, REGULARS, RESTAURANT, SEEN_WORDS, TRAVEL, UTILITIES,
};
use super::sampling::{exponential, lognormal, normal, pick_weighted};
use super::{day_of_week, FraudGenerator, DAY_MS, HOUR_MS, VELOCITY_CAP};

/// Probability, per legitimate event not in a session, that the card goes on to one to three more purchases.
pub(super) const SESSION_START: f64 = 0.12;
/// Mean time between the purchases of a shopping session.
pub(super) const SESSION_GAP_MS: f64 = 900_000.0;
/// Probability, per legitimate event of a card at home, that it leaves on a trip.
const TRIP_START: f64 = 0.004;

/// One simulated card: its profile, drawn once, and its state as the simulation runs.
pub(super) struct Card {
    pub(super) typical: f64,
    pub(super) running_avg: f64,
    pub(super) cat_weights: [f64; NCAT],
    pub(super) online_pref: f64,
    pub(super) local_km: f64,
    pub(super) age_at_start_days: f64,
    pub(super) trip_until: i64,
    pub(super) trip_km: f64,
    pub(super) trip_abroad: bool,
    pub(super) burst: Option<Burst>,
    /// Legitimate events still to come in the current shopping session.
    pub(super) session: u8,
    /// The latest event times, a ring ending before `recent_head`.
    pub(super) recent: [i64; VELOCITY_CAP],
    pub(super) recent_head: u8,
    pub(super) recent_len: u8,
}

/// The simulated cards and when they transact.
pub(super) struct Population {
    pub(super) cards: Vec<Card>,
    pub(super) ids: Vec<String>,
    /// For each hour of the day, the cumulative weights of the cards transacting then (`cards` entries each).
    pub(super) hour_cum: Vec<f64>,
    /// Population events per millisecond, by hour of the day.
    pub(super) hour_rate: [f64; 24],
    /// Merchants each card has used, `SEEN_WORDS` words per card.
    pub(super) seen: Vec<u64>,
}

impl Population {
    /// Draws `n` cards (at least one) from `rng`, their regular merchants given by `salt`. The draws come
    /// from `rng` in a fixed order: reordering them changes every event of every seed.
    pub(super) fn draw(
        rng: &mut ChaCha8Rng,
        n: usize,
        events_per_card_per_day: f64,
        salt: u64,
    ) -> Self {
        let width = n.saturating_sub(1).to_string().len().max(6);
        let ids = (0..n).map(|i| format!("c{i:0width$}")).collect();

        let mut cards = Vec::with_capacity(n);
        let mut activity = Vec::with_capacity(n);
        let mut rhythm = Vec::with_capacity(n);
        for _ in 0..n {
            let mut cat_weights = [0.0; NCAT];
            for (w, c) in cat_weights.iter_mut().zip(&CATS) {
                *w = c.share * lognormal(rng, 1.0, 0.8);
            }
            let age_at_start_days = if rng.random::<f64>() < 0.08 {
                1.0 + 89.0 * rng.random::<f64>()
            } else {
                lognormal(rng, 900.0, 0.8).min(7300.0)
            };
            cards.push(Card {
                typical: lognormal(rng, 45.0, 0.6),
                running_avg: 0.0,
                cat_weights,
                online_pref: lognormal(rng, 1.0, 0.5),
                local_km: lognormal(rng, 6.0, 0.6),
                age_at_start_days,
                trip_until: i64::MIN,
                trip_km: 0.0,
                trip_abroad: false,
                burst: None,
                session: 0,
                recent: [0; VELOCITY_CAP],
                recent_head: 0,
                recent_len: 0,
            });
            activity.push(lognormal(rng, 1.0, 0.7));
            let u = rng.random::<f64>();
            let (peak, spread) = if u < 0.85 {
                (13.5 + 2.5 * normal(rng), 2.5 + 2.0 * rng.random::<f64>())
            } else if u < 0.95 {
                (19.5 + 1.5 * normal(rng), 2.0 + 1.5 * rng.random::<f64>())
            } else {
                (23.5 + 1.5 * normal(rng), 2.0 + 1.5 * rng.random::<f64>())
            };
            rhythm.push((peak, spread));
        }
        for card in &mut cards {
            card.running_avg = card.typical;
        }
        let mean_activity = activity.iter().sum::<f64>() / n as f64;

        let mut hour_cum = vec![0.0; 24 * n];
        let mut hour_total = [0.0; 24];
        for (i, (&act, &(peak, spread))) in activity.iter().zip(&rhythm).enumerate() {
            let mut affinity = [0.0; 24];
            for (h, a) in affinity.iter_mut().enumerate() {
                let d = (h as f64 + 0.5 - peak).rem_euclid(24.0);
                let d = d.min(24.0 - d) / spread;
                *a = 0.02 + (-0.5 * d * d).exp();
            }
            let sum: f64 = affinity.iter().sum();
            for (h, a) in affinity.iter().enumerate() {
                hour_total[h] += act / mean_activity * a / sum;
                hour_cum[h * n + i] = hour_total[h];
            }
        }
        let mut hour_rate = [0.0; 24];
        for (rate, total) in hour_rate.iter_mut().zip(hour_total) {
            *rate = total * events_per_card_per_day / HOUR_MS as f64;
        }

        // The cards' history before the simulation: every card has used its regular merchants.
        let mut seen = vec![0; n * SEEN_WORDS];
        for card in 0..n {
            for cat in 0..NCAT {
                for slot in 0..REGULARS {
                    let m = regular_merchant(salt, card, cat, slot) as usize;
                    seen[card * SEEN_WORDS + m / 64] |= 1 << (m % 64);
                }
            }
        }

        Self {
            cards,
            ids,
            hour_cum,
            hour_rate,
            seen,
        }
    }
}

impl FraudGenerator {
    /// The next legitimate event of the shopping session on `card`, scheduling the one after.
    pub(super) fn session(&mut self, card: usize, ts: i64) -> Draft {
        let c = &mut self.cards[card];
        c.session -= 1;
        if c.session > 0 {
            let due = ts.saturating_add(exponential(&mut self.rng, SESSION_GAP_MS) as i64);
            self.pending.push(Reverse((due, card as u32, false)));
        }
        self.legit(card, ts)
    }

    /// A legitimate event of `card`.
    pub(super) fn legit(&mut self, card: usize, ts: i64) -> Draft {
        let rng = &mut self.rng;
        let c = &mut self.cards[card];
        if c.trip_until <= ts && rng.random::<f64>() < TRIP_START {
            c.trip_until =
                ts.saturating_add((DAY_MS as f64 * (2.0 + 8.0 * rng.random::<f64>())) as i64);
            c.trip_abroad = rng.random::<f64>() < 0.35;
            c.trip_km = 60.0 + lognormal(rng, 450.0, 0.9) + if c.trip_abroad { 300.0 } else { 0.0 };
        }
        let on_trip = c.trip_until > ts;

        let mut weights = c.cat_weights;
        if day_of_week(ts) >= 5 {
            weights[RESTAURANT] *= 1.3;
            weights[ENTERTAINMENT] *= 1.5;
            weights[UTILITIES] *= 0.3;
        }
        if on_trip {
            weights[TRAVEL] *= 4.0;
            weights[RESTAURANT] *= 2.0;
            weights[FUEL] *= 1.5;
            weights[ATM] *= 2.0;
            weights[GROCERY] *= 0.5;
            weights[UTILITIES] *= 0.1;
        }
        let cat = pick_weighted(rng, &weights);
        let online = rng.random::<f64>() < online_probability(cat, c.online_pref);
        let present = !online && rng.random::<f64>() >= 0.03;

        let regular = if on_trip {
            0.25
        } else if online {
            0.75
        } else {
            0.85
        };
        let merchant = if rng.random::<f64>() < regular {
            regular_merchant(self.salt, card, cat, rng.random_range(0..REGULARS))
        } else {
            random_merchant(rng, cat)
        };

        let mut amount = c.typical * lognormal(rng, CATS[cat].amount, CATS[cat].spread);
        if on_trip {
            amount *= 1.3;
        }
        if rng.random::<f64>() < 0.015 {
            amount *= 3.0 + 5.0 * rng.random::<f64>();
        }

        let (km, mismatch) = if on_trip {
            (
                c.trip_km * lognormal(rng, 1.0, 0.05) + exponential(rng, c.local_km),
                c.trip_abroad,
            )
        } else if online {
            if rng.random::<f64>() < 0.04 {
                (
                    100.0 + 3900.0 * rng.random::<f64>(),
                    rng.random::<f64>() < 0.5,
                )
            } else {
                (exponential(rng, c.local_km), rng.random::<f64>() < 0.04)
            }
        } else if rng.random::<f64>() < 0.03 {
            (exponential(rng, 80.0), false)
        } else {
            (exponential(rng, c.local_km), false)
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
            fraud: false,
        }
    }
}
