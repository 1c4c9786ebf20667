//! A deterministic simulator of card transactions with a labelled, bursty fraud minority.
//!
//! # The simulation
//!
//! [`FraudGenerator::new`] draws a population of [`GeneratorConfig::cards`] cards from the seed. Each card has
//! - a typical purchase amount (log-normal, median about 45),
//! - its own mix of merchant categories (the population mix, reweighted per card) and a few *regular merchants*
//!   per category that it keeps going back to,
//! - a daily rhythm: most cards peak around midday, some in the evening, a few at night,
//! - an activity level (how many transactions it makes per day, relative to the others),
//! - an account age, a local radius (urban cards stay close to home, rural ones drive further) and a
//!   preference for shopping online.
//!
//! Events come in time order: [`FraudGenerator::next_event`] is given the event time and decides which card
//! transacts then. Legitimate events pick a card in proportion to how active it is at that hour of the day;
//! the card buys from its usual categories (with weekend and travel adjustments), mostly at its regular
//! merchants, near home, for amounts around its typical amount. Legitimate activity is deliberately not
//! always tidy: cards go on trips for days (far from home, sometimes abroad, many new merchants, travel and
//! restaurant spending), make occasional big purchases, shop at foreign web sites or through VPNs, and go on
//! shopping sessions (a purchase followed by one to three more, minutes apart, which raises the velocity).
//!
//! Fraud is scheduled by *rate*, not by a coin flip per event: every event adds
//! [`GeneratorConfig::fraud_rate`] to a credit, and whenever the credit is positive a new burst may start
//! (more readily at night), paid for up front with its planned number of events. So in the long run the
//! share of fraud events is the configured rate (up to the events of bursts still under way), whatever the
//! spacing of the event times. A burst compromises one card (new accounts more often) and plays out over
//! minutes to hours in one of four ways:
//! - **card testing** (37 %): one to three small online "test" charges, then one to five large online
//!   purchases (electronics, jewelry, gambling, travel) minutes apart, usually from far away, often abroad;
//! - **cloned card** (23 %): card-present ATM cash-outs and in-store electronics/jewelry in another city;
//! - **account takeover** (20 %): one to three large online purchases tens of minutes apart;
//! - **quiet** (20 %): one or two purchases that look like the card's own habits, near home (the kind of
//!   fraud only the cardholder can tell apart).
//!
//! About three card-not-present fraudsters in ten hide behind a local proxy (short distance, no country
//! mismatch), fraud amounts are set by the fraudster rather than by the card (so they look ordinary on cards
//! that spend a lot), and the card's legitimate activity goes on during the burst. The features are
//! informative, but no single one separates the classes, and a good model ends up near, not at, perfect: on
//! 300 000 events from the default settings and [`FraudGenerator::next_arrival`] times, `dipper train
//! --algorithm gbm --holdout 0.3` (ids and `ts` excluded) reaches a holdout AUC of about 0.97, `glm` about 0.95.
//!
//! # Timing
//!
//! The caller supplies the event times, so the velocity and time-of-day features are only realistic when
//! the times are. [`FraudGenerator::next_arrival`] gives the next event time of the simulated population
//! transacting at its natural daily rhythm ([`GeneratorConfig::events_per_card_per_day`]), which makes a
//! simulated clock that can be run at any speed. Times that go backwards are treated as the latest time seen.
//!
//! # Event fields
//!
//! [`Event::json`] is one JSON object with these fields, always in this order ([`FIELDS`]):
//!
//! | field | type | meaning |
//! |---|---|---|
//! | `event_id` | string | `e` and a counter, unique within one generator |
//! | `card_id` | string | `c` and the card's zero-padded index, e.g. `c000123` (also [`Event::key`]) |
//! | `merchant_id` | string | `m` and the merchant's zero-padded index |
//! | `ts` | integer | event time, milliseconds since the epoch |
//! | `amount` | number | amount, two decimals |
//! | `merchant_category` | string | one of [`CATEGORIES`] |
//! | `hour` | integer | hour of the day of `ts`, 0–23 (UTC) |
//! | `day_of_week` | integer | day of the week of `ts`, 0 = Monday … 6 = Sunday (UTC) |
//! | `distance_from_home_km` | number | distance of the merchant (card present) or of the device (online) from the card's home, one decimal |
//! | `card_velocity_1h` | integer | number of earlier events of this card with `ts` in the hour before this one (`ts - 3_600_000 < t <= ts`), counting at most [`VELOCITY_CAP`] |
//! | `amount_vs_avg` | number | `amount` divided by the card's running average amount before this event (exponentially weighted, α = 0.1, over all its earlier events, starting from its typical amount), three decimals |
//! | `is_online` | bool | an online (e-commerce) transaction |
//! | `card_present` | bool | the physical card was used (false online and for keyed-in phone/mail orders) |
//! | `new_merchant` | bool | the first event of this card at this `merchant_id` (its regular merchants count as used before the simulation) |
//! | `country_mismatch` | bool | the merchant or device is in another country than the card's |
//! | `account_age_days` | integer | whole days since the account was opened |
//!
//! [`Event::labelled_json`] appends `"is_fraud": 0 or 1` ([`LABEL`]) for training data.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::f64::consts::TAU;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// The fields of every event, in the order they are written.
pub const FIELDS: [&str; 16] = [
    "event_id",
    "card_id",
    "merchant_id",
    "ts",
    "amount",
    "merchant_category",
    "hour",
    "day_of_week",
    "distance_from_home_km",
    "card_velocity_1h",
    "amount_vs_avg",
    "is_online",
    "card_present",
    "new_merchant",
    "country_mismatch",
    "account_age_days",
];

/// The label field [`Event::labelled_json`] appends.
pub const LABEL: &str = "is_fraud";

/// `card_velocity_1h` counts at most this many earlier events.
pub const VELOCITY_CAP: usize = 32;

const HOUR_MS: i64 = 3_600_000;
const DAY_MS: i64 = 24 * HOUR_MS;

/// Settings of a [`FraudGenerator`].
#[derive(Debug, Clone, PartialEq)]
pub struct GeneratorConfig {
    /// Number of simulated cards (at least 1).
    pub cards: usize,
    /// Share of events that are fraudulent, in the long run (clamped to 0–0.5).
    pub fraud_rate: f64,
    /// Average number of transactions a card makes per day; only [`FraudGenerator::next_arrival`] uses it.
    pub events_per_card_per_day: f64,
}

impl Default for GeneratorConfig {
    fn default() -> Self {
        Self {
            cards: 5000,
            fraud_rate: 0.02,
            events_per_card_per_day: 4.0,
        }
    }
}

/// One generated transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// The card id, the natural Kafka key (all events of a card in one partition, in order).
    pub key: String,
    /// The event as a JSON object, without the label (see the module documentation for the fields).
    pub json: Vec<u8>,
    /// Whether the event is fraudulent.
    pub is_fraud: bool,
    /// The event time (`ts`), milliseconds since the epoch.
    pub timestamp_ms: i64,
}

impl Event {
    /// The event with `"is_fraud": 0 or 1` appended, for training history.
    pub fn labelled_json(&self) -> Vec<u8> {
        let label: &[u8] = if self.is_fraud {
            b"\"is_fraud\":1}"
        } else {
            b"\"is_fraud\":0}"
        };
        let mut body = self.json.as_slice();
        while let Some((&last, rest)) = body.split_last() {
            body = rest;
            if last == b'}' {
                break;
            }
        }
        let mut out = Vec::with_capacity(body.len() + label.len() + 1);
        out.extend_from_slice(body);
        if !matches!(body.trim_ascii_end().last(), Some(b'{') | None) {
            out.push(b',');
        }
        out.extend_from_slice(label);
        out
    }
}

/// A merchant category and how legitimate cards use it.
struct Category {
    name: &'static str,
    /// Share of legitimate transactions for a typical card.
    share: f64,
    /// Typical amount relative to the card's typical amount.
    amount: f64,
    /// Log-normal spread of the amount.
    spread: f64,
    /// Probability that a legitimate purchase is online, for a card with average online preference.
    online: f64,
    /// Number of merchants in the category.
    merchants: u32,
}

const fn cat(
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

const CATS: [Category; 12] = [
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
const NCAT: usize = CATS.len();

const GROCERY: usize = 0;
const FUEL: usize = 1;
const RESTAURANT: usize = 2;
const ONLINE_RETAIL: usize = 3;
const ELECTRONICS: usize = 4;
const TRAVEL: usize = 5;
const ATM: usize = 6;
const GAMBLING: usize = 7;
const JEWELRY: usize = 8;
const ENTERTAINMENT: usize = 10;
const UTILITIES: usize = 11;

/// The merchant categories, as they appear in `merchant_category`.
pub const CATEGORIES: [&str; NCAT] = {
    let mut names = [""; NCAT];
    let mut i = 0;
    while i < NCAT {
        names[i] = CATS[i].name;
        i += 1;
    }
    names
};

/// The first merchant index of each category; the last entry is the number of merchants.
const MERCHANT_START: [u32; NCAT + 1] = {
    let mut start = [0; NCAT + 1];
    let mut i = 0;
    while i < NCAT {
        start[i + 1] = start[i] + CATS[i].merchants;
        i += 1;
    }
    start
};
const SEEN_WORDS: usize = (MERCHANT_START[NCAT] as usize).div_ceil(64);

/// Regular merchants a card has per category.
const REGULARS: u64 = 3;
/// Probability, per legitimate event not in a session, that the card goes on to one to three more purchases.
const SESSION_START: f64 = 0.12;
/// Mean time between the purchases of a shopping session.
const SESSION_GAP_MS: f64 = 900_000.0;
/// Probability, per legitimate event of a card at home, that it leaves on a trip.
const TRIP_START: f64 = 0.004;
/// Relative readiness to start a fraud burst, by hour of the day.
const BURST_START: [f64; 24] = [
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
struct Burst {
    kind: BurstKind,
    /// Events still to come, test charges included.
    remaining: u8,
    /// Test charges still to come (card testing).
    tests: u8,
    /// Where the fraudster is, from the card's home.
    km: f64,
    abroad: bool,
}

struct Card {
    typical: f64,
    running_avg: f64,
    cat_weights: [f64; NCAT],
    online_pref: f64,
    local_km: f64,
    age_at_start_days: f64,
    trip_until: i64,
    trip_km: f64,
    trip_abroad: bool,
    burst: Option<Burst>,
    /// Legitimate events still to come in the current shopping session.
    session: u8,
    /// The latest event times, a ring ending before `recent_head`.
    recent: [i64; VELOCITY_CAP],
    recent_head: u8,
    recent_len: u8,
}

/// What an event is about, before the card's history turns it into features.
struct Draft {
    card: usize,
    cat: usize,
    merchant: u32,
    cents: u64,
    online: bool,
    present: bool,
    km: f64,
    mismatch: bool,
    fraud: bool,
}

/// Simulates card transactions with fraud; see the module documentation.
pub struct FraudGenerator {
    config: GeneratorConfig,
    rng: ChaCha8Rng,
    salt: u64,
    cards: Vec<Card>,
    ids: Vec<String>,
    /// For each hour of the day, the cumulative weights of the cards transacting then (`cards` entries each).
    hour_cum: Vec<f64>,
    /// Population events per millisecond, by hour of the day.
    hour_rate: [f64; 24],
    /// Merchants each card has used, `SEEN_WORDS` words per card.
    seen: Vec<u64>,
    /// The next event of every fraud burst and shopping session under way: (due time, card, is fraud).
    pending: BinaryHeap<Reverse<(i64, u32, bool)>>,
    fraud_credit: f64,
    last_ts: i64,
    epoch: Option<i64>,
    counter: u64,
}

impl FraudGenerator {
    /// A generator whose population and events are determined by `seed` (and the event times given).
    pub fn new(seed: u64, config: GeneratorConfig) -> Self {
        let config = GeneratorConfig {
            cards: config.cards.max(1),
            fraud_rate: if config.fraud_rate.is_finite() {
                config.fraud_rate.clamp(0.0, 0.5)
            } else {
                0.0
            },
            events_per_card_per_day: if config.events_per_card_per_day.is_finite() {
                config.events_per_card_per_day.max(1e-6)
            } else {
                4.0
            },
        };
        let n = config.cards;
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let salt = rng.random::<u64>();
        let width = n.saturating_sub(1).to_string().len().max(6);
        let ids = (0..n).map(|i| format!("c{i:0width$}")).collect();

        let mut cards = Vec::with_capacity(n);
        let mut activity = Vec::with_capacity(n);
        let mut rhythm = Vec::with_capacity(n);
        for _ in 0..n {
            let mut cat_weights = [0.0; NCAT];
            for (w, c) in cat_weights.iter_mut().zip(&CATS) {
                *w = c.share * lognormal(&mut rng, 1.0, 0.8);
            }
            let age_at_start_days = if rng.random::<f64>() < 0.08 {
                1.0 + 89.0 * rng.random::<f64>()
            } else {
                lognormal(&mut rng, 900.0, 0.8).min(7300.0)
            };
            cards.push(Card {
                typical: lognormal(&mut rng, 45.0, 0.6),
                running_avg: 0.0,
                cat_weights,
                online_pref: lognormal(&mut rng, 1.0, 0.5),
                local_km: lognormal(&mut rng, 6.0, 0.6),
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
            activity.push(lognormal(&mut rng, 1.0, 0.7));
            let u = rng.random::<f64>();
            let (peak, spread) = if u < 0.85 {
                (
                    13.5 + 2.5 * normal(&mut rng),
                    2.5 + 2.0 * rng.random::<f64>(),
                )
            } else if u < 0.95 {
                (
                    19.5 + 1.5 * normal(&mut rng),
                    2.0 + 1.5 * rng.random::<f64>(),
                )
            } else {
                (
                    23.5 + 1.5 * normal(&mut rng),
                    2.0 + 1.5 * rng.random::<f64>(),
                )
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
            *rate = total * config.events_per_card_per_day / HOUR_MS as f64;
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
            seen,
            config,
            rng,
            salt,
            cards,
            ids,
            hour_cum,
            hour_rate,
            pending: BinaryHeap::new(),
            fraud_credit: 0.0,
            last_ts: i64::MIN,
            epoch: None,
            counter: 0,
        }
    }

    /// The settings in use (after clamping).
    pub fn config(&self) -> &GeneratorConfig {
        &self.config
    }

    /// The time of the next event after `after_ms` if the population transacts at its natural daily rhythm
    /// (exponential gaps at the rate of the hour of `after_ms`): a simulated clock for [`Self::next_event`].
    pub fn next_arrival(&mut self, after_ms: i64) -> i64 {
        let rate = self.hour_rate[hour_of(after_ms)];
        after_ms.saturating_add(exponential(&mut self.rng, 1.0 / rate).round() as i64)
    }

    /// The next event, at `now_ms` (or at the latest time seen, if `now_ms` is earlier).
    pub fn next_event(&mut self, now_ms: i64) -> Event {
        let ts = now_ms.max(self.last_ts);
        self.last_ts = ts;
        let epoch = *self.epoch.get_or_insert(ts);
        let hour = hour_of(ts);

        self.fraud_credit += self.config.fraud_rate;
        if self.fraud_credit > 0.0 && self.rng.random::<f64>() < BURST_START[hour] {
            self.start_burst(ts);
        }
        let draft = match self.pending.peek() {
            Some(&Reverse((due, card, fraud))) if due <= ts => {
                self.pending.pop();
                if fraud {
                    self.fraud(card as usize, ts)
                } else {
                    self.session(card as usize, ts)
                }
            }
            _ => {
                let n = self.cards.len();
                let table = &self.hour_cum[hour * n..(hour + 1) * n];
                let x = self.rng.random::<f64>() * table[n - 1];
                let card = table.partition_point(|&c| c <= x).min(n - 1);
                let c = &mut self.cards[card];
                if c.session == 0 && self.rng.random::<f64>() < SESSION_START {
                    c.session = self.rng.random_range(1..=3);
                    let due = ts.saturating_add(exponential(&mut self.rng, SESSION_GAP_MS) as i64);
                    self.pending.push(Reverse((due, card as u32, false)));
                }
                self.legit(card, ts)
            }
        };
        self.finish(draft, ts, epoch)
    }

    /// Compromises a card, if one not already under attack turns up, and schedules its first fraud event.
    fn start_burst(&mut self, ts: i64) {
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

    /// The next legitimate event of the shopping session on `card`, scheduling the one after.
    fn session(&mut self, card: usize, ts: i64) -> Draft {
        let c = &mut self.cards[card];
        c.session -= 1;
        if c.session > 0 {
            let due = ts.saturating_add(exponential(&mut self.rng, SESSION_GAP_MS) as i64);
            self.pending.push(Reverse((due, card as u32, false)));
        }
        self.legit(card, ts)
    }

    /// The next event of the burst on `card`, scheduling the one after.
    fn fraud(&mut self, card: usize, ts: i64) -> Draft {
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

    /// A legitimate event of `card`.
    fn legit(&mut self, card: usize, ts: i64) -> Draft {
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

    /// Turns a draft into an event against the card's history, and records it there.
    fn finish(&mut self, d: Draft, ts: i64, epoch: i64) -> Event {
        let c = &mut self.cards[d.card];

        let mut velocity = 0;
        for back in 1..=usize::from(c.recent_len) {
            let slot = (usize::from(c.recent_head) + VELOCITY_CAP - back) % VELOCITY_CAP;
            if c.recent[slot] <= ts.saturating_sub(HOUR_MS) {
                break;
            }
            velocity += 1;
        }
        c.recent[usize::from(c.recent_head)] = ts;
        c.recent_head = ((usize::from(c.recent_head) + 1) % VELOCITY_CAP) as u8;
        c.recent_len = (usize::from(c.recent_len) + 1).min(VELOCITY_CAP) as u8;

        let word = &mut self.seen[d.card * SEEN_WORDS + d.merchant as usize / 64];
        let bit = 1u64 << (d.merchant % 64);
        let new_merchant = *word & bit == 0;
        *word |= bit;

        let amount = d.cents as f64 / 100.0;
        let vs_avg = amount / c.running_avg;
        c.running_avg += 0.1 * (amount - c.running_avg);
        let age_days =
            (c.age_at_start_days + ts.saturating_sub(epoch) as f64 / DAY_MS as f64).floor();

        let id = &self.ids[d.card];
        let mut json = Vec::with_capacity(448);
        json.extend_from_slice(b"{\"event_id\":\"e");
        push_u64(&mut json, self.counter);
        self.counter += 1;
        json.extend_from_slice(b"\",\"card_id\":");
        push_str(&mut json, id);
        json.extend_from_slice(b",\"merchant_id\":\"m");
        push_padded(&mut json, u64::from(d.merchant), 5);
        json.extend_from_slice(b"\",\"ts\":");
        push_i64(&mut json, ts);
        json.extend_from_slice(b",\"amount\":");
        push_fixed(&mut json, amount, 2);
        json.extend_from_slice(b",\"merchant_category\":");
        push_str(&mut json, CATS[d.cat].name);
        json.extend_from_slice(b",\"hour\":");
        push_u64(&mut json, hour_of(ts) as u64);
        json.extend_from_slice(b",\"day_of_week\":");
        push_u64(&mut json, day_of_week(ts) as u64);
        json.extend_from_slice(b",\"distance_from_home_km\":");
        push_fixed(&mut json, d.km, 1);
        json.extend_from_slice(b",\"card_velocity_1h\":");
        push_u64(&mut json, velocity);
        json.extend_from_slice(b",\"amount_vs_avg\":");
        push_fixed(&mut json, vs_avg, 3);
        json.extend_from_slice(b",\"is_online\":");
        push_bool(&mut json, d.online);
        json.extend_from_slice(b",\"card_present\":");
        push_bool(&mut json, d.present);
        json.extend_from_slice(b",\"new_merchant\":");
        push_bool(&mut json, new_merchant);
        json.extend_from_slice(b",\"country_mismatch\":");
        push_bool(&mut json, d.mismatch);
        json.extend_from_slice(b",\"account_age_days\":");
        push_fixed(&mut json, age_days, 0);
        json.push(b'}');

        Event {
            key: id.clone(),
            json,
            is_fraud: d.fraud,
            timestamp_ms: ts,
        }
    }
}

fn hour_of(ts: i64) -> usize {
    ts.div_euclid(HOUR_MS).rem_euclid(24) as usize
}

/// 0 = Monday (1970-01-01 was a Thursday).
fn day_of_week(ts: i64) -> usize {
    (ts.div_euclid(DAY_MS) + 3).rem_euclid(7) as usize
}

fn online_probability(cat: usize, preference: f64) -> f64 {
    match CATS[cat].online {
        p if p <= 0.0 || p >= 1.0 => p,
        p => (p * preference).min(0.95),
    }
}

/// Whole cents, at least one dollar (test charges excepted), ATM withdrawals in multiples of 20.
fn cents(cat: usize, amount: f64) -> u64 {
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
fn regular_merchant(salt: u64, card: usize, cat: usize, slot: u64) -> u32 {
    let h = splitmix64(salt ^ ((card as u64) << 16) ^ ((cat as u64) << 8) ^ slot);
    skewed_merchant(cat, (h >> 11) as f64 / (1u64 << 53) as f64)
}

fn random_merchant(rng: &mut ChaCha8Rng, cat: usize) -> u32 {
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

fn pick(rng: &mut ChaCha8Rng, choices: &[(usize, f64)]) -> usize {
    let total: f64 = choices.iter().map(|c| c.1).sum();
    let mut x = rng.random::<f64>() * total;
    for &(item, w) in choices {
        if x < w {
            return item;
        }
        x -= w;
    }
    choices[choices.len() - 1].0
}

fn pick_weighted(rng: &mut ChaCha8Rng, weights: &[f64; NCAT]) -> usize {
    let total: f64 = weights.iter().sum();
    let mut x = rng.random::<f64>() * total;
    for (i, &w) in weights.iter().enumerate() {
        if x < w {
            return i;
        }
        x -= w;
    }
    NCAT - 1
}

fn normal(rng: &mut ChaCha8Rng) -> f64 {
    let u1 = 1.0 - rng.random::<f64>();
    let u2 = rng.random::<f64>();
    (-2.0 * u1.ln()).sqrt() * (TAU * u2).cos()
}

fn lognormal(rng: &mut ChaCha8Rng, median: f64, sigma: f64) -> f64 {
    median * (sigma * normal(rng)).exp()
}

fn exponential(rng: &mut ChaCha8Rng, mean: f64) -> f64 {
    -mean * (1.0 - rng.random::<f64>()).ln()
}

fn push_u64(out: &mut Vec<u8>, mut v: u64) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    out.extend_from_slice(&buf[i..]);
}

fn push_padded(out: &mut Vec<u8>, v: u64, width: usize) {
    let mut digits = 1;
    let mut rest = v / 10;
    while rest > 0 {
        digits += 1;
        rest /= 10;
    }
    out.resize(out.len() + width.saturating_sub(digits), b'0');
    push_u64(out, v);
}

fn push_i64(out: &mut Vec<u8>, v: i64) {
    if v < 0 {
        out.push(b'-');
    }
    push_u64(out, v.unsigned_abs());
}

/// `v` rounded to `decimals` places in plain decimal notation (a JSON number; not finite becomes 0).
fn push_fixed(out: &mut Vec<u8>, v: f64, decimals: u32) {
    let scale = 10u64.pow(decimals);
    let scaled = if v.is_finite() {
        (v.abs() * scale as f64).round().min(1e18) as u64
    } else {
        0
    };
    if v < 0.0 && scaled != 0 {
        out.push(b'-');
    }
    push_u64(out, scaled / scale);
    if decimals > 0 {
        out.push(b'.');
        push_padded(out, scaled % scale, decimals as usize);
    }
}

fn push_bool(out: &mut Vec<u8>, v: bool) {
    out.extend_from_slice(if v { b"true" } else { b"false" });
}

/// A JSON string, escaped.
fn push_str(out: &mut Vec<u8>, s: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push(b'"');
    for &b in s.as_bytes() {
        match b {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            0..=0x1f => out.extend_from_slice(&[
                b'\\',
                b'u',
                b'0',
                b'0',
                HEX[usize::from(b >> 4)],
                HEX[usize::from(b & 15)],
            ]),
            _ => out.push(b),
        }
    }
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    use std::collections::{HashMap, HashSet, VecDeque};

    use serde_json::Value;

    use super::*;

    /// 2023-11-14T22:13:20Z.
    const START: i64 = 1_700_000_000_000;

    fn generate(seed: u64, config: GeneratorConfig, n: usize) -> Vec<Event> {
        let mut g = FraudGenerator::new(seed, config);
        let mut ts = START;
        (0..n)
            .map(|_| {
                ts = g.next_arrival(ts);
                g.next_event(ts)
            })
            .collect()
    }

    fn parse(e: &Event) -> serde_json::Map<String, Value> {
        match serde_json::from_slice(&e.json) {
            Ok(Value::Object(m)) => m,
            other => panic!(
                "not a JSON object: {other:?} from {}",
                String::from_utf8_lossy(&e.json)
            ),
        }
    }

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
    fn generator_is_deterministic_for_a_seed() {
        let a = generate(7, GeneratorConfig::default(), 20_000);
        let b = generate(7, GeneratorConfig::default(), 20_000);
        assert_eq!(a, b);
        let c = generate(8, GeneratorConfig::default(), 20_000);
        assert_ne!(a, c);
    }

    /// FNV-1a over every field of every event, a fingerprint of the output that does not depend on the
    /// standard library's hasher.
    fn fingerprint(events: &[Event]) -> u64 {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        let mut eat = |bytes: &[u8]| {
            for &b in bytes {
                h = (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
            }
        };
        for e in events {
            eat(e.key.as_bytes());
            eat(&e.json);
            eat(&[u8::from(e.is_fraud)]);
            eat(&e.timestamp_ms.to_le_bytes());
        }
        h
    }

    /// The output for a fixed seed is pinned: a refactoring must not change a single byte of it (a deliberate
    /// change to the simulation updates the constant).
    #[test]
    fn generator_output_for_a_fixed_seed_is_pinned() {
        let events = generate(42, GeneratorConfig::default(), 10_000);
        assert_eq!(fingerprint(&events), 0x312c_136d_ad7e_85a1);
    }

    #[test]
    fn generator_events_are_json_with_every_field() {
        let events = generate(1, GeneratorConfig::default(), 50_000);
        let mut ids = HashSet::new();
        let mut last = i64::MIN;
        let mut categories = HashSet::new();
        for e in &events {
            let m = parse(e);
            let keys: Vec<&str> = m.keys().map(String::as_str).collect();
            let mut expected = FIELDS.to_vec();
            expected.sort_unstable();
            let mut sorted = keys.clone();
            sorted.sort_unstable();
            assert_eq!(sorted, expected);
            for s in ["event_id", "card_id", "merchant_id", "merchant_category"] {
                assert!(m[s].is_string(), "{s} in {m:?}");
            }
            for b in [
                "is_online",
                "card_present",
                "new_merchant",
                "country_mismatch",
            ] {
                assert!(m[b].is_boolean(), "{b} in {m:?}");
            }
            for i in [
                "ts",
                "hour",
                "day_of_week",
                "card_velocity_1h",
                "account_age_days",
            ] {
                assert!(m[i].is_i64(), "{i} in {m:?}");
            }
            for f in ["amount", "distance_from_home_km", "amount_vs_avg"] {
                let v = m[f].as_f64().unwrap_or_else(|| panic!("{f} in {m:?}"));
                assert!(v.is_finite() && v >= 0.0, "{f} in {m:?}");
            }
            assert!(ids.insert(m["event_id"].as_str().unwrap().to_owned()));
            assert_eq!(m["card_id"].as_str(), Some(e.key.as_str()));
            let ts = m["ts"].as_i64().unwrap();
            assert_eq!(ts, e.timestamp_ms);
            assert!(ts >= last);
            last = ts;
            assert_eq!(m["hour"].as_i64(), Some((ts / HOUR_MS) % 24));
            assert_eq!(m["day_of_week"].as_i64(), Some((ts / DAY_MS + 3) % 7));
            let amount = m["amount"].as_f64().unwrap();
            assert!(amount >= 0.5);
            assert!((amount * 100.0 - (amount * 100.0).round()).abs() < 1e-6);
            let category = m["merchant_category"].as_str().unwrap().to_owned();
            assert!(CATEGORIES.contains(&category.as_str()));
            categories.insert(category);
            assert!(m["account_age_days"].as_i64().unwrap() >= 1);
            if m["is_online"] == Value::Bool(true) {
                assert_eq!(m["card_present"], Value::Bool(false));
            }
        }
        assert_eq!(categories.len(), NCAT);
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
    fn generator_history_features_match_the_timeline() {
        let events = generate(5, GeneratorConfig::default(), 100_000);
        let salt = FraudGenerator::new(5, GeneratorConfig::default()).salt;
        let mut recent: HashMap<String, VecDeque<i64>> = HashMap::new();
        let mut used = HashSet::new();
        let mut busy = 0;
        for e in &events {
            let m = parse(e);
            let ts = e.timestamp_ms;
            let times = recent.entry(e.key.clone()).or_default();
            while times.front().is_some_and(|&t| t <= ts - HOUR_MS) {
                times.pop_front();
            }
            let expected = times.len().min(VELOCITY_CAP) as u64;
            assert_eq!(m["card_velocity_1h"].as_u64(), Some(expected), "{m:?}");
            busy += usize::from(expected > 0);
            times.push_back(ts);

            let merchant = m["merchant_id"].as_str().unwrap().to_owned();
            let index: u32 = merchant[1..].parse().unwrap();
            let card: usize = e.key[1..].parse().unwrap();
            let regular = (0..NCAT)
                .any(|cat| (0..REGULARS).any(|s| regular_merchant(salt, card, cat, s) == index));
            let new = used.insert((e.key.clone(), merchant)) && !regular;
            assert_eq!(m["new_merchant"].as_bool(), Some(new), "{m:?}");
        }
        assert!(busy > 1000, "only {busy} events with velocity");
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

    #[test]
    fn generator_labelled_json_is_json_plus_the_label() {
        for e in generate(2, GeneratorConfig::default(), 5_000) {
            let mut m = parse(&e);
            let labelled: Value = serde_json::from_slice(&e.labelled_json()).unwrap();
            m.insert(LABEL.to_owned(), Value::from(u8::from(e.is_fraud)));
            assert_eq!(labelled, Value::Object(m));
            assert!(e.labelled_json().starts_with(&e.json[..e.json.len() - 1]));
        }
        let empty = Event {
            key: String::new(),
            json: b"{}".to_vec(),
            is_fraud: true,
            timestamp_ms: 0,
        };
        assert_eq!(empty.labelled_json(), b"{\"is_fraud\":1}");
    }

    #[test]
    fn generator_writes_json_numbers_and_strings() {
        let mut out = Vec::new();
        push_fixed(&mut out, 12.345, 2);
        out.push(b' ');
        push_fixed(&mut out, 0.004, 2);
        out.push(b' ');
        push_fixed(&mut out, 7.0, 0);
        out.push(b' ');
        push_fixed(&mut out, f64::NAN, 1);
        out.push(b' ');
        push_fixed(&mut out, -1.05, 1);
        out.push(b' ');
        push_i64(&mut out, i64::MIN);
        out.push(b' ');
        push_str(&mut out, "a\"b\\c\n\u{1}é");
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "12.35 0.00 7 0.0 -1.1 -9223372036854775808 \"a\\\"b\\\\c\\n\\u0001é\""
        );
    }

    #[test]
    fn generator_time_never_goes_backwards() {
        let mut g = FraudGenerator::new(1, GeneratorConfig::default());
        assert_eq!(g.next_event(START).timestamp_ms, START);
        assert_eq!(g.next_event(START - 1000).timestamp_ms, START);
        assert_eq!(g.next_event(START + 5).timestamp_ms, START + 5);
        let one = GeneratorConfig {
            cards: 0,
            fraud_rate: 0.3,
            ..GeneratorConfig::default()
        };
        let events = generate(1, one, 1000);
        assert!(events.iter().all(|e| e.key == "c000000"));
        assert!(events.iter().any(|e| e.is_fraud));
    }

    /// `cargo test --release -p dipper generator_throughput -- --ignored --nocapture`
    #[test]
    #[ignore]
    fn generator_throughput() {
        let mut g = FraudGenerator::new(1, GeneratorConfig::default());
        let n = 1_000_000;
        let mut ts = START;
        let mut bytes = 0;
        let start = std::time::Instant::now();
        for _ in 0..n {
            ts = g.next_arrival(ts);
            bytes += g.next_event(ts).json.len();
        }
        let secs = start.elapsed().as_secs_f64();
        println!(
            "{n} events in {secs:.3} s: {:.0} events/s, {:.0} bytes/event",
            n as f64 / secs,
            bytes as f64 / n as f64
        );
    }
}
