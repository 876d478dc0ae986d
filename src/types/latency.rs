//! Latency accounting: one HdrHistogram per stage, owned by the thread that runs the stage (no sharing on the hot
//! path). Histograms are allocated at start (1 ns to 60 s, 3 significant digits) and recorded with saturation, so
//! recording never allocates or fails. Reports merge the per-thread copies at the end or at intervals.

use hdrhistogram::Histogram;

/// Highest value tracked (ns); larger values saturate.
pub(crate) const MAX_TRACKED_NS: u64 = 60_000_000_000;

/// A named stage histogram.
#[derive(Clone)]
pub struct Stage {
    /// Stage name as printed.
    pub name: &'static str,
    /// Values in ns.
    pub hist: Histogram<u64>,
}

impl Stage {
    /// A new empty stage.
    pub fn new(name: &'static str) -> Self {
        // Bounds are constants within the histogram's limits, so construction cannot fail.
        let hist = Histogram::new_with_bounds(1, MAX_TRACKED_NS, 3).unwrap_or_else(|_| Histogram::new(3).unwrap());
        Stage { name, hist }
    }

    /// Records a duration in ns (saturating at the tracked range).
    #[inline]
    pub fn record(&mut self, ns: u64) {
        self.hist.saturating_record(ns.max(1));
    }
}

/// Percentiles of one stage.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Summary {
    /// Samples.
    pub count: u64,
    /// Median.
    pub p50: u64,
    /// 90th percentile.
    pub p90: u64,
    /// 99th percentile.
    pub p99: u64,
    /// 99.9th percentile.
    pub p999: u64,
    /// Maximum.
    pub max: u64,
}

impl Summary {
    /// Summary of a histogram.
    pub fn of(h: &Histogram<u64>) -> Self {
        if h.is_empty() {
            return Summary::default();
        }
        Summary {
            count: h.len(),
            p50: h.value_at_quantile(0.50),
            p90: h.value_at_quantile(0.90),
            p99: h.value_at_quantile(0.99),
            p999: h.value_at_quantile(0.999),
            max: h.max(),
        }
    }
}

/// One latency stage as the metrics endpoint shows it: its percentiles and the sum of its samples.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct StageFigures {
    /// Stage name as in the latency table.
    pub name: &'static str,
    /// Percentiles since start, ns.
    pub summary: Summary,
    /// Sum of the samples since start, ns (the histogram's mean times its count: 3 significant digits).
    pub sum_ns: f64,
}

impl StageFigures {
    /// The figures of `h` under `name` (allocates nothing).
    pub(crate) fn of(name: &'static str, h: &Histogram<u64>) -> Self {
        StageFigures { name, summary: Summary::of(h), sum_ns: h.mean() * h.len() as f64 }
    }
}

/// Formats ns for a table (ns, µs or ms with 3 significant digits).
pub(crate) fn fmt_ns(ns: u64) -> String {
    if ns < 10_000 {
        format!("{ns} ns")
    } else if ns < 10_000_000 {
        format!("{:.1} µs", ns as f64 / 1e3)
    } else {
        format!("{:.1} ms", ns as f64 / 1e6)
    }
}

/// A latency table: one line per stage with p50/p90/p99/p99.9/max.
pub(crate) fn table(stages: &[(&str, Summary)]) -> String {
    let mut s = format!(
        "{:<18} {:>10} {:>10} {:>10} {:>10} {:>10} {:>10}\n",
        "stage", "count", "p50", "p90", "p99", "p99.9", "max"
    );
    for (name, m) in stages {
        s.push_str(&format!(
            "{:<18} {:>10} {:>10} {:>10} {:>10} {:>10} {:>10}\n",
            name,
            m.count,
            fmt_ns(m.p50),
            fmt_ns(m.p90),
            fmt_ns(m.p99),
            fmt_ns(m.p999),
            fmt_ns(m.max)
        ));
    }
    s
}
