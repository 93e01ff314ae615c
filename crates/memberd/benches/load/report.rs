//! The table a run prints: every figure beside the baseline of the same run and the target
//! it is held to, in Markdown so that README can carry it as printed.

use std::time::Duration;

use crate::scale_out::{LockWaits, ScaleOutReport, Sides};
use crate::scenarios::{BackendReport, Measured, Reports};
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
    if name.starts_with("access")
        || name.starts_with("membership-status")
        || name == crate::accounts::MEMBER_READ
    {
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

pub fn print(settings: &Settings, wrk_version: &str, reports: &Reports) {
    println!();
    println!(
        "memberd benchmark: {} s per figure, {} connections from one wrk thread ({wrk_version}), {} CPUs{}",
        settings.seconds,
        settings.connections,
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        if settings.smoke { "; SMOKE RUN, figures mean nothing" } else { "" }
    );
    for report in &reports.backends {
        print_backend(settings, report);
    }
    if let Some(scale_out) = &reports.scale_out {
        print_scale_out(scale_out);
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
    let (access, logins) = &report.beside_failed_logins;
    println!(
        "| access check at about half its peak, beside 32 connections of failed logins ({}/s) | {} | {} | {} | {:.2} | p99 ≤ 5 ms | {} |",
        rate(logins.per_second),
        rate(access.per_second),
        ms(access.p50),
        ms(access.p99),
        access.per_second / base.per_second,
        verdict(access.p99 <= Duration::from_millis(5))
    );
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

fn print_scale_out(r: &ScaleOutReport) {
    println!();
    println!("### PostgreSQL, scale-out");
    println!();
    println!(
        "One `memberd serve` node with {} connections to the database, and three with {} each, \
         on one database. wrk: {} threads, {} connections in all, thread n on node n mod the \
         nodes. Each figure: {} rounds of {} s per side, alternating one node and three (rates \
         are the mean of a side's rounds); a webhook round runs with the other side stopped, on a \
         database just vacuumed and checkpointed.",
        r.database_connections.one,
        r.database_connections.three,
        r.threads,
        r.connections,
        r.rounds_per_side,
        r.round_seconds
    );
    println!();
    println!("| figure | one node | three nodes | three / one | target | |");
    println!("|---|---:|---:|---:|---|---|");
    let rounds = r.rounds_per_side;
    scale_row(
        &format!("member creates, requests/s (mean of {rounds} rounds)"),
        &r.creates,
    );
    scale_row(
        &format!("access check, requests/s (mean of {rounds} rounds)"),
        &r.access,
    );
    let w = &r.webhooks;
    scale_row(
        &format!(
            "webhooks end to end, events/s ({} and {} events, created at {} and {}/s)",
            rate(w.one.events as f64),
            rate(w.three.events as f64),
            rate(w.one.created_per_second),
            rate(w.three.created_per_second)
        ),
        &Sides {
            one: w.one.delivered_per_second,
            three: w.three.delivered_per_second,
        },
    );
    println!(
        "| duplicate webhook deliveries (by webhook-id) | {} | {} | | 0 when nothing crashes | {} |",
        w.one.duplicates,
        w.three.duplicates,
        verdict(w.one.duplicates == 0 && w.three.duplicates == 0)
    );
    let waits = &r.lock_waits;
    let cell = |w: &LockWaits, max: i64, mean: f64| {
        format!("max {max}, mean {mean:.2} ({} samples)", w.samples)
    };
    println!(
        "| connections waiting on a lock during the creates | {} | {} | | | |",
        cell(&waits.one, waits.one.lock_max, waits.one.lock_mean),
        cell(&waits.three, waits.three.lock_max, waits.three.lock_mean)
    );
    let object_max = waits.one.object_max.max(waits.three.object_max);
    println!(
        "| of them, on `object` (commits queued behind a NOTIFY), nodes' notifiers apart | {} | {} | | 0 (max over samples) | {} |",
        cell(&waits.one, waits.one.object_max, waits.one.object_mean),
        cell(&waits.three, waits.three.object_max, waits.three.object_mean),
        verdict(object_max == 0)
    );
    println!(
        "| nodes' notifiers waiting on `object` for each other (no write waits for them) | max {} | max {} | | | |",
        waits.one.notifiers_max, waits.three.notifiers_max
    );
}

/// A rate with one node and with three, held to three ≥ 0.9 × one.
fn scale_row(name: &str, per_second: &Sides<f64>) {
    let ratio = per_second.three / per_second.one;
    println!(
        "| {name} | {} | {} | {ratio:.2} | three ≥ 0.9 × one | {} |",
        rate(per_second.one),
        rate(per_second.three),
        verdict(ratio >= 0.9)
    );
}
