//! Time, injected. The scheduler and retention ask a [`Clock`] for the wall-clock time and wait
//! with tokio's timers (the monotonic clock). In tests [`SimulatedClock`] derives wall time from
//! tokio's clock, so under a paused runtime the two advance together and slot arithmetic is
//! proven without sleeping; [`SimulatedClock::jump`] steps the wall clock like NTP would.

use std::sync::Mutex;

use chrono::{DateTime, Utc};

pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> DateTime<Utc>;
}

/// The real wall clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// Wall time = a start time + tokio's elapsed time (+ any jumps).
pub struct SimulatedClock {
    base: Mutex<(DateTime<Utc>, tokio::time::Instant)>,
}

impl SimulatedClock {
    pub fn new(start: DateTime<Utc>) -> SimulatedClock {
        SimulatedClock {
            base: Mutex::new((start, tokio::time::Instant::now())),
        }
    }

    /// Step the wall clock by `by` (negative: backwards) without moving the monotonic clock.
    pub fn jump(&self, by: chrono::Duration) {
        let mut b = self.base.lock().expect("clock lock");
        b.0 += by;
    }
}

impl Clock for SimulatedClock {
    fn now(&self) -> DateTime<Utc> {
        let b = self.base.lock().expect("clock lock");
        let elapsed = tokio::time::Instant::now().duration_since(b.1);
        b.0 + chrono::Duration::from_std(elapsed).expect("elapsed fits")
    }
}
