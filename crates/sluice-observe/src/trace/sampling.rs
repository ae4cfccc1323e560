//! Whether a trace is recorded: the client's decision when it sent one (parent-based, so a
//! trace is recorded whole or not at all), else Envoy's `random_sampling` percentage.

/// `random_sampling`, kept in parts per million (a percentage with four decimals).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sampling {
    per_million: u32,
}

const MILLION: u32 = 1_000_000;

impl Sampling {
    /// `percent` from 0 to 100 (clamped).
    pub fn percent(percent: f64) -> Sampling {
        let ppm = (percent.clamp(0.0, 100.0) * 10_000.0).round();
        Sampling {
            // In range after the clamp.
            per_million: if ppm >= f64::from(MILLION) {
                MILLION
            } else {
                ppm as u32
            },
        }
    }

    pub fn per_million(self) -> u32 {
        self.per_million
    }

    /// The decision for one request: the client's, else a random draw.
    pub fn decide(self, incoming: Option<bool>) -> bool {
        match incoming {
            Some(decision) => decision,
            None => match self.per_million {
                0 => false,
                MILLION => true,
                p => fastrand::u32(..MILLION) < p,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn follows_the_client_then_the_rate() {
        let never = Sampling::percent(0.0);
        let always = Sampling::percent(100.0);
        assert!(never.decide(Some(true)));
        assert!(!always.decide(Some(false)));
        assert!(!never.decide(None));
        assert!(always.decide(None));
        assert_eq!(Sampling::percent(0.01).per_million(), 100);
        assert_eq!(Sampling::percent(250.0).per_million(), 1_000_000);
        let some = Sampling::percent(10.0);
        let hits = (0..100_000).filter(|_| some.decide(None)).count();
        assert!((5_000..15_000).contains(&hits), "{hits}");
    }
}
