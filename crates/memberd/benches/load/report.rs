//! The table a run prints: every figure beside the baseline of the same run and the target
//! it is held to, in Markdown so that README can carry it as printed.

use std::time::Duration;

use crate::scenarios::{BackendReport, Measured};
use crate::Settings;

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

fn rate(per_second: f64) -> String {
    thousands(per_second.round() as u64)
}

/// `1234567` as `1,234,567`.
pub fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / 1_048_576.0)
}

fn verdict(met: bool) -> &'static str {
    if met {
        "met"
    } else {
        "**missed**"
    }
}

/// The target a scenario is held to, by its name, and whether the figures meet it.
fn target(report: &BackendReport, row: &Measured) -> (String, Option<bool>) {
    let ratio = row.figures.per_second / report.baseline.per_second;
    let name = row.name.as_str();
    if name.starts_with("access") || name.starts_with("membership-status") {
        ("≥ 0.5 × baseline".to_string(), Some(ratio >= 0.5))
    } else if name.starts_with("member retrieve") {
        ("≥ 0.3 × baseline".into(), Some(ratio >= 0.3))
    } else if name.starts_with("member create") {
        ("≥ 1,200/s".into(), Some(row.figures.per_second >= 1200.0))
    } else if name.starts_with("list, deep page of") {
        let first_name = name.replace("deep page", "first page");
        let first = report
            .measured
            .iter()
            .find(|m| m.name == first_name)
            .map_or(f64::NAN, |m| m.figures.per_second);
        let cost = first / row.figures.per_second;
        let absolute = row.figures.per_second >= 2200.0;
        (
            format!("≥ 2,200/s; cost ≤ 1.5 × first page (is {cost:.2})"),
            Some(absolute && cost <= 1.5),
        )
    } else if name.starts_with("list") {
        ("≥ 2,200/s".into(), Some(row.figures.per_second >= 2200.0))
    } else {
        (String::new(), None)
    }
}

pub fn print(settings: &Settings, wrk_version: &str, reports: &[BackendReport]) {
    println!();
    println!(
        "memberd benchmark: {} s per figure, {} connections from one wrk thread ({wrk_version}), {} CPUs{}",
        settings.seconds,
        settings.connections,
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        if settings.smoke { "; SMOKE RUN, figures mean nothing" } else { "" }
    );
    for report in reports {
        print_backend(settings, report);
    }
}

fn print_backend(settings: &Settings, report: &BackendReport) {
    let b = report.backend;
    println!();
    println!("### {b}");
    println!();
    println!("| figure | requests/s | p50 | p99 | × baseline | target | |");
    println!("|---|---:|---:|---:|---:|---|---|");
    let base = &report.baseline;
    println!(
        "| baseline: bare axum handler, fixed JSON | {} | {} | {} | 1.00 | | |",
        rate(base.per_second),
        ms(base.p50),
        ms(base.p99)
    );
    for row in &report.measured {
        let (goal, met) = target(report, row);
        println!(
            "| {} | {} | {} | {} | {:.2} | {goal} | {} |",
            row.name,
            rate(row.figures.per_second),
            ms(row.figures.p50),
            ms(row.figures.p99),
            row.figures.per_second / base.per_second,
            met.map_or("", verdict)
        );
    }
    for row in &report.at_half_peak {
        println!(
            "| {} at about half its peak | {} | {} | {} | {:.2} | p99 ≤ 2 ms | {} |",
            row.name,
            rate(row.figures.per_second),
            ms(row.figures.p50),
            ms(row.figures.p99),
            row.figures.per_second / base.per_second,
            verdict(row.figures.p99 <= Duration::from_millis(2))
        );
    }
    let imported = report.import_took.as_secs_f64();
    let (import_goal, import_met) = if b == "SQLite" {
        ("≤ 10 s".to_string(), Some(imported <= 10.0))
    } else {
        (String::new(), None)
    };
    println!(
        "| `memberd import` of {} members | {} members/s | | | | {import_goal} (took {imported:.1} s) | {} |",
        rate(settings.big as f64),
        rate(settings.big as f64 / imported),
        import_met.map_or("", verdict)
    );
    let w = &report.webhooks;
    // The target is for PostgreSQL; "on SQLite, more" than that.
    let (hook_goal, hook_met) = if b == "PostgreSQL" {
        ("≥ 850/s".to_string(), Some(w.delivered_per_second >= 850.0))
    } else {
        ("> 850/s".to_string(), Some(w.delivered_per_second > 850.0))
    };
    println!(
        "| webhooks end to end: {} events created through the API ({}/s), delivered | {} events/s | | | | {hook_goal} | {} |",
        rate(w.events as f64),
        rate(w.created_per_second),
        rate(w.delivered_per_second),
        hook_met.map_or("", verdict)
    );
    println!(
        "| memberd resident memory, idle with {} members | {} | | | | ≤ 40 MB | {} |",
        rate(settings.big as f64),
        mib(report.idle.resident),
        verdict(report.idle.resident <= 40 * 1_048_576)
    );
    println!(
        "| memberd peak resident memory, whole run | {} | | | | | |",
        mib(report.peak.peak)
    );
}
