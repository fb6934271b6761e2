//! Percentiles of latency samples. Nearest rank: every reported figure is a sample that was
//! actually observed, so a p99 of 200 samples is honestly "the second-worst one".

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Summary {
    pub n: usize,
    pub p50: f64,
    pub p95: f64,
    pub p99: f64,
    pub min: f64,
    pub max: f64,
}

/// The `p`-th percentile (0 < p ≤ 100) by nearest rank; `None` for no samples.
pub fn percentile(samples: &[f64], p: f64) -> Option<f64> {
    if samples.is_empty() {
        return None;
    }
    let mut sorted = samples.to_vec();
    sorted.sort_by(f64::total_cmp);
    let rank = ((p / 100.0) * sorted.len() as f64).ceil().max(1.0) as usize;
    Some(sorted[rank.min(sorted.len()) - 1])
}

pub fn median(samples: &[f64]) -> Option<f64> {
    percentile(samples, 50.0)
}

pub fn summary(samples: &[f64]) -> Option<Summary> {
    Some(Summary {
        n: samples.len(),
        p50: percentile(samples, 50.0)?,
        p95: percentile(samples, 95.0)?,
        p99: percentile(samples, 99.0)?,
        min: samples.iter().copied().fold(f64::INFINITY, f64::min),
        max: samples.iter().copied().fold(f64::NEG_INFINITY, f64::max),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_observed_samples_by_nearest_rank() {
        let samples: Vec<f64> = (1..=200).rev().map(f64::from).collect();
        let s = summary(&samples).unwrap();
        assert_eq!((s.p50, s.p95, s.p99, s.min, s.max), (100.0, 190.0, 198.0, 1.0, 200.0));
    }

    #[test]
    fn one_sample_is_every_percentile_and_none_is_none() {
        assert_eq!(percentile(&[7.0], 99.0), Some(7.0));
        assert_eq!(median(&[7.0]), Some(7.0));
        assert_eq!(summary(&[]), None);
    }
}
