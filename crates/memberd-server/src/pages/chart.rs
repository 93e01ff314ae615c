//! Server-rendered SVG bar charts for the admin dashboard.
//!
//! Charts are plain markup so the dashboard works without JavaScript; all
//! colours come from the server's CSS via each series' class, and every chart
//! carries a visually-hidden table so screen readers get the exact numbers.

use maud::{html, Markup};

const WIDTH: f64 = 640.0;
const HEIGHT: f64 = 240.0;
const RIGHT: f64 = WIDTH - 8.0;
/// Leaves room above the plot for the legend row.
const TOP: f64 = 30.0;
/// Leaves room below the plot for the bucket labels.
const BOTTOM: f64 = HEIGHT - 24.0;
/// Roughly what fits across the plot at font-size 11 without labels touching.
const MAX_X_LABELS: usize = 8;

/// One line of a chart: a name for the legend and one value per bucket.
pub struct Series<'a> {
    /// Shown in the legend, the table header and bar tooltips.
    pub name: &'a str,
    /// One count per bucket; missing trailing values count as 0.
    pub values: Vec<u64>,
    /// CSS class put on this series' bars and legend swatch.
    pub class: &'a str,
}

/// A chart of counts over time: `labels[i]` names bucket i (e.g. "3 Nov"),
/// every series has `labels.len()` values.
pub struct Chart<'a> {
    /// Caption of the figure; also the source of the SVG's element ids.
    pub title: &'a str,
    /// One label per bucket, oldest first.
    pub labels: Vec<String>,
    /// Drawn as grouped bars, in this order within each bucket.
    pub series: Vec<Series<'a>>,
}

impl Chart<'_> {
    /// Renders the chart as a `<figure>` holding an inline SVG and a
    /// visually-hidden data table, or a "No data yet" figure when there are
    /// no buckets.
    pub fn render(&self) -> Markup {
        let buckets = self.labels.len();
        if buckets == 0 {
            return html! {
                figure class="chart" { figcaption { (self.title) " — No data yet" } }
            };
        }
        let max = self
            .series
            .iter()
            .flat_map(|s| (0..buckets).map(move |i| value(s, i)))
            .max()
            .unwrap_or(0);
        let ticks = nice_ticks(max);
        // Scaling in f64 keeps values near u64::MAX from overflowing.
        let top_value = ticks.last().copied().unwrap_or(1).max(1) as f64;
        let tick_labels: Vec<String> = ticks.iter().map(|t| group_digits(&t.to_string())).collect();
        let widest = tick_labels.iter().map(String::len).max().unwrap_or(1);
        // Sized to the widest tick label so huge numbers are not clipped.
        let left = (widest as f64 * 6.5 + 10.0).max(36.0);
        let group_w = (RIGHT - left) / buckets as f64;
        let bar_w = group_w * 0.8 / self.series.len().max(1) as f64;
        let y_of = |v: f64| BOTTOM - v / top_value * (BOTTOM - TOP);
        let every = buckets.div_ceil(MAX_X_LABELS);
        // Approximate text widths; SVG has no flow layout to lay the legend out.
        let legend_xs: Vec<f64> = self
            .series
            .iter()
            .scan(left, |x, s| {
                let here = *x;
                *x += 30.0 + s.name.chars().count() as f64 * 6.5;
                Some(here)
            })
            .collect();
        let id = format!("chart-{}", slugify(self.title));
        let view_box = format!("0 0 {WIDTH} {HEIGHT}");
        html! {
            figure class="chart" {
                figcaption { (self.title) }
                svg viewBox=(view_box) width="100%" role="img" aria-labelledby=(id)
                    preserveAspectRatio="xMidYMid meet" {
                    title id=(id) { (self.title) }
                    @for (t, label) in ticks.iter().zip(&tick_labels) {
                        @let y = px(y_of(*t as f64));
                        line class="grid" x1=(px(left)) x2=(px(RIGHT)) y1=(y) y2=(y) {}
                        text class="tick" x=(px(left - 6.0)) y=(y) text-anchor="end"
                            dominant-baseline="middle" font-size="11" { (label) }
                    }
                    @for (i, label) in self.labels.iter().enumerate() {
                        @let group_x = left + group_w * i as f64 + group_w * 0.1;
                        @for (j, s) in self.series.iter().enumerate() {
                            @let v = value(s, i);
                            @let y = y_of(v as f64);
                            rect data-bar=(i) class=(s.class) x=(px(group_x + bar_w * j as f64))
                                y=(px(y)) width=(px(bar_w)) height=(px(BOTTOM - y)) {
                                title { (label) ": " (thousands(v)) " " (s.name) }
                            }
                        }
                        @if i % every == 0 {
                            text class="xlabel" x=(px(left + group_w * (i as f64 + 0.5)))
                                y=(px(BOTTOM + 16.0)) text-anchor="middle" font-size="11" {
                                (label)
                            }
                        }
                    }
                    line class="axis" x1=(px(left)) x2=(px(RIGHT)) y1=(px(BOTTOM)) y2=(px(BOTTOM)) {}
                    @for (s, x) in self.series.iter().zip(&legend_xs) {
                        g class="legend" {
                            rect class=(s.class) x=(px(*x)) y="6" width="10" height="10" {}
                            text x=(px(x + 14.0)) y="15" font-size="11" { (s.name) }
                        }
                    }
                }
                table class="visually-hidden" {
                    caption { (self.title) }
                    thead {
                        tr {
                            th scope="col" { "Period" }
                            @for s in &self.series { th scope="col" { (s.name) } }
                        }
                    }
                    tbody {
                        @for (i, label) in self.labels.iter().enumerate() {
                            tr {
                                th scope="row" { (label) }
                                @for s in &self.series { td { (thousands(value(s, i))) } }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// A short series counts as zero rather than panicking on a ragged query result.
fn value(series: &Series<'_>, bucket: usize) -> u64 {
    series.values.get(bucket).copied().unwrap_or(0)
}

/// One decimal place is well below a pixel and keeps the markup small.
fn px(v: f64) -> String {
    format!("{v:.1}")
}

/// Tick values from 0 in steps of 1, 2 or 5 × 10^n, giving 4–6 ticks with the
/// last at or above `max`. u128 because rounding u64::MAX up overflows u64.
fn nice_ticks(max: u64) -> Vec<u128> {
    let max = u128::from(max);
    let mut magnitude: u128 = 1;
    let step = 'found: loop {
        for m in [1, 2, 5] {
            if max.div_ceil(m * magnitude) <= 5 {
                break 'found m * magnitude;
            }
        }
        magnitude *= 10;
    };
    // Counts are whole numbers, so tiny maxima get a 0..3 axis instead of
    // fractional ticks.
    let count = max.div_ceil(step).max(3);
    (0..=count).map(|i| i * step).collect()
}

/// Formats `n` with comma thousands separators, e.g. 12345 -> "12,345".
fn thousands(n: u64) -> String {
    group_digits(&n.to_string())
}

fn group_digits(digits: &str) -> String {
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Lowercase ASCII letters and digits joined by single hyphens, so the id is
/// stable and valid; non-ASCII titles fall back to a bare "chart" id.
fn slugify(title: &str) -> String {
    let words: Vec<String> = title
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_ascii_lowercase)
        .collect();
    if words.is_empty() {
        "chart".to_string()
    } else {
        words.join("-")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chart(title: &str, buckets: usize, series: usize) -> Chart<'_> {
        Chart {
            title,
            labels: (0..buckets).map(|i| format!("d{i}")).collect(),
            series: (0..series)
                .map(|j| Series {
                    name: "sign-ups",
                    values: (0..buckets as u64).map(|v| v * (j as u64 + 1)).collect(),
                    class: "signups",
                })
                .collect(),
        }
    }

    #[test]
    fn nice_ticks_cover_max_with_round_steps() {
        let cases: [(u64, &[u128]); 7] = [
            (0, &[0, 1, 2, 3]),
            (1, &[0, 1, 2, 3]),
            (7, &[0, 2, 4, 6, 8]),
            (10, &[0, 2, 4, 6, 8, 10]),
            (99, &[0, 20, 40, 60, 80, 100]),
            (1234, &[0, 500, 1000, 1500]),
            (
                1_000_000,
                &[0, 200_000, 400_000, 600_000, 800_000, 1_000_000],
            ),
        ];
        for (max, want) in cases {
            assert_eq!(nice_ticks(max), want, "max {max}");
        }
        let huge = nice_ticks(u64::MAX);
        assert!((4..=6).contains(&huge.len()));
        assert!(*huge.last().unwrap() >= u128::from(u64::MAX));
    }

    #[test]
    fn many_buckets_label_at_most_eight_including_first() {
        for buckets in [30, 52, 90] {
            let html = chart("Daily", buckets, 2).render().into_string();
            let labels: Vec<&str> = html
                .split("class=\"xlabel\"")
                .skip(1)
                .filter_map(|rest| rest.split('>').nth(1)?.split('<').next())
                .collect();
            assert!(
                labels.len() <= 8 && labels.len() >= 2,
                "{buckets}: {labels:?}"
            );
            assert_eq!(labels[0], "d0");
        }
    }

    #[test]
    fn user_text_is_escaped() {
        let mut c = chart("<b>Title</b>", 3, 1);
        c.labels[0] = "<script>alert(1)</script>".to_string();
        c.series[0].name = "<script>";
        let html = c.render().into_string();
        assert!(!html.contains("<script>"));
        assert!(!html.contains("<b>"));
        assert!(html.contains("&lt;script&gt;"));
    }

    #[test]
    fn zero_buckets_says_no_data() {
        let html = chart("Sign-ups", 0, 2).render().into_string();
        assert!(html.contains("No data yet"));
        assert!(!html.contains("<svg"));
    }

    #[test]
    fn one_bar_per_series_per_bucket() {
        let html = chart("Sign-ups and churn", 12, 3).render().into_string();
        assert_eq!(html.matches("<rect data-bar=").count(), 12 * 3);
        assert!(html.contains("aria-labelledby=\"chart-sign-ups-and-churn\""));
        assert!(html.contains("<title id=\"chart-sign-ups-and-churn\">"));
        assert!(html.contains("<title>d4: 4 sign-ups</title>"));
    }

    #[test]
    fn short_series_zero_and_huge_values_do_not_panic() {
        let c = Chart {
            title: "Edge",
            labels: vec!["a".into(), "b".into(), "c".into()],
            series: vec![
                Series {
                    name: "big",
                    values: vec![u64::MAX],
                    class: "big",
                },
                Series {
                    name: "none",
                    values: vec![],
                    class: "none",
                },
            ],
        };
        let html = c.render().into_string();
        assert!(html.contains("<td>18,446,744,073,709,551,615</td>"));
        assert!(!html.contains("NaN"));
        let zeros = chart("Zero", 5, 0).render().into_string();
        assert!(zeros.contains("class=\"grid\""));
    }

    #[test]
    fn thousands_groups_digits() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(12345), "12,345");
        assert_eq!(thousands(1_234_567), "1,234,567");
    }
}
