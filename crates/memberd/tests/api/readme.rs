//! README's curl walkthrough, run as it stands against a real `memberd serve`.

use std::process::Command;

use super::cli::{temp_db, Served};

/// The code block that follows a `<!-- marker` comment in README.md.
pub fn block_after(marker: &str) -> String {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md"))
        .expect("README.md at the repository root");
    let (_, after) = readme
        .split_once(&format!("<!-- {marker}"))
        .expect("README marks the block");
    let (_, block) = after.split_once("```").expect("a code block follows");
    let (_, block) = block.split_once('\n').expect("the block has lines");
    let (script, _) = block.split_once("```").expect("the block ends");
    // A block inside a list item is indented.
    script
        .lines()
        .map(|line| line.strip_prefix("  ").unwrap_or(line))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Runs a README block with bash against a real `memberd serve`, and returns what it printed.
fn run_block(marker: &str) -> String {
    let (dir, url) = temp_db();
    let served = Served::start(&url);
    let key = served
        .secret("sk_sb_")
        .expect("memberd prints a sandbox key");
    // The only change: the port, which the test picks at random instead of 8080.
    let script = block_after(marker).replace("http://127.0.0.1:8080", &served.base);
    let output = Command::new("bash")
        .args(["-euo", "pipefail", "-c", &script])
        .env("MEMBERD_KEY", &key)
        .output()
        .expect("bash runs");
    let out = String::from_utf8_lossy(&output.stdout).into_owned();
    served.stop();
    let _ = std::fs::remove_dir_all(dir);
    assert!(
        output.status.success(),
        "{out}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    out
}

#[test]
fn the_readme_walkthrough_works_word_for_word() {
    let out = run_block("walkthrough");
    assert!(out.contains("plan: pln_"), "{out}");
    assert!(out.contains("member: mem_"), "{out}");
    assert!(out.contains("\"status\":\"ACTIVE\""), "{out}");
    assert!(
        out.contains("\"allowed\":true,\"reason\":\"plan_connection\""),
        "{out}"
    );
    assert!(out.contains("\"type\":\"member.plan.created\""), "{out}");
}

#[test]
fn the_readme_test_clock_year_works_word_for_word() {
    let out = run_block("test clocks");
    assert!(
        out.contains("\"frozenTime\":\"2026-12-31T00:00:00.000Z\""),
        "{out}"
    );
    assert_eq!(out.lines().last().map(str::trim), Some("12"), "{out}");
}

#[test]
fn the_readme_email_walkthrough_works_word_for_word() {
    let out = run_block("emails");
    assert!(
        out.contains("an email with a code to reset its password is on its way"),
        "{out}"
    );
    let code = out
        .lines()
        .find_map(|l| l.strip_prefix("code: "))
        .unwrap_or_default();
    assert!(
        code.len() == 6 && code.bytes().all(|b| b.is_ascii_digit()),
        "{out}"
    );
    assert!(out.contains("{\"data\":{\"success\":true}}"), "{out}");
    assert_eq!(out.lines().last(), Some("\"accessToken\""), "{out}");
}

#[test]
fn the_readme_email_template_works_word_for_word() {
    let out = run_block("email template");
    assert!(out.contains("\"custom\":true"), "{out}");
    assert!(out.contains("\"kind\":\"password_reset\""), "{out}");
}
