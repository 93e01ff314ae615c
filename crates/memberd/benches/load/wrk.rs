//! Drives `wrk` (a load generator in its own process) with a Lua script per scenario and
//! reads back its figures from one line the script prints when done.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// One HTTP request shape to replay.
pub struct Target {
    pub method: &'static str,
    /// Path and query, such as `/v1/members?limit=50`.
    pub path: String,
    pub headers: Vec<(&'static str, String)>,
    /// For POSTs that create members: each request gets a fresh email under this prefix.
    pub unique_email_body: Option<String>,
    /// Each request appends to `path` a number drawn below this: reads spread over many rows.
    pub random_below: Option<usize>,
    /// The same body with every request.
    pub body: Option<String>,
    /// Whether responses other than 2xx are what the load is made of (failed logins), and
    /// not a failure of the run.
    pub refusals_expected: bool,
}

impl Target {
    pub fn get(path: impl Into<String>, key: &str) -> Target {
        Target {
            method: "GET",
            path: path.into(),
            headers: vec![("Authorization", format!("Bearer {key}"))],
            unique_email_body: None,
            random_below: None,
            body: None,
            refusals_expected: false,
        }
    }

    /// A request with these headers (and a fixed JSON body, for a POST).
    pub fn with_headers(
        method: &'static str,
        path: impl Into<String>,
        headers: Vec<(&'static str, String)>,
        body: Option<String>,
    ) -> Target {
        let mut headers = headers;
        if body.is_some() {
            headers.push(("Content-Type", "application/json".into()));
        }
        Target {
            method,
            path: path.into(),
            headers,
            unique_email_body: None,
            random_below: None,
            body,
            refusals_expected: false,
        }
    }

    /// A GET of `path` followed by a random number below `n`, such as a customer id's tail.
    pub fn get_random(path: impl Into<String>, n: usize, key: &str) -> Target {
        Target {
            random_below: Some(n),
            ..Target::get(path, key)
        }
    }

    pub fn create_member(key: &str, email_prefix: &str) -> Target {
        Target {
            method: "POST",
            path: "/v1/members".into(),
            headers: vec![
                ("Authorization", format!("Bearer {key}")),
                ("Content-Type", "application/json".into()),
            ],
            unique_email_body: Some(email_prefix.to_owned()),
            random_below: None,
            body: None,
            refusals_expected: false,
        }
    }
}

/// What one run measured.
#[derive(Debug, Clone, Copy)]
pub struct Figures {
    pub per_second: f64,
    pub p50: Duration,
    pub p99: Duration,
}

pub struct Load {
    pub seconds: u32,
    pub connections: u32,
    pub threads: u32,
    /// Milliseconds each connection waits, on average, after a response before its next
    /// request: a way to hold the rate below the peak, for latency at a given load.
    pub think_ms: Option<u32>,
}

pub fn check_installed() -> Result<String, String> {
    let out = Command::new("wrk").arg("--version").output().map_err(|_| {
        "wrk is not installed: the benchmark drives memberd with it (Debian: apt-get install wrk)"
            .to_string()
    })?;
    // wrk prints its version and usage, and exits non-zero, for --version.
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    Ok(text.lines().next().unwrap_or("wrk").trim().to_owned())
}

fn lua_string(s: &str) -> String {
    format!("{s:?}")
}

/// `http://HOST:PORT` as Lua's `{"HOST", "PORT"}`, for `wrk.lookup`.
fn lua_host_port(base: &str) -> Result<String, String> {
    let authority = base.strip_prefix("http://").unwrap_or(base);
    let (host, port) = authority
        .rsplit_once(':')
        .ok_or_else(|| format!("no port in {base}"))?;
    Ok(format!("{{{}, {}}}", lua_string(host), lua_string(port)))
}

/// wrk's `setup(thread)`, run once per thread before the load starts: numbers the threads
/// (to keep generated emails apart) and, with `nodes`, points thread n at node n mod their
/// count (wrk's scripts/addr.lua idea; wrk itself sends every thread to the URL's host).
fn setup_script(number_threads: bool, nodes: Option<&[String]>) -> Result<String, String> {
    if !number_threads && nodes.is_none() {
        return Ok(String::new());
    }
    let mut lua = String::from("local next_thread = 0\n");
    if let Some(nodes) = nodes {
        let list: Result<Vec<String>, String> = nodes.iter().map(|b| lua_host_port(b)).collect();
        lua.push_str(&format!("local node_names = {{{}}}\n", list?.join(", ")));
        lua.push_str("local node_addrs = nil\n");
    }
    lua.push_str("function setup(thread)\n");
    if nodes.is_some() {
        lua.push_str(
            r#"  if not node_addrs then
    node_addrs = {}
    for _, node in ipairs(node_names) do
      table.insert(node_addrs, wrk.lookup(node[1], node[2])[1])
    end
  end
  thread.addr = node_addrs[(next_thread % #node_addrs) + 1]
"#,
        );
    }
    lua.push_str("  next_thread = next_thread + 1\n");
    if number_threads {
        lua.push_str("  thread:set(\"thread_id\", next_thread)\n");
    }
    lua.push_str("end\n");
    Ok(lua)
}

fn script(
    target: &Target,
    think_ms: Option<u32>,
    nodes: Option<&[String]>,
) -> Result<String, String> {
    let mut lua = String::new();
    lua.push_str(&format!("wrk.method = {}\n", lua_string(target.method)));
    lua.push_str(&format!("wrk.path = {}\n", lua_string(&target.path)));
    for (name, value) in &target.headers {
        lua.push_str(&format!(
            "wrk.headers[{}] = {}\n",
            lua_string(name),
            lua_string(value)
        ));
    }
    if let Some(body) = &target.body {
        lua.push_str(&format!("wrk.body = {}\n", lua_string(body)));
    }
    lua.push_str(&setup_script(target.unique_email_body.is_some(), nodes)?);
    if let Some(prefix) = &target.unique_email_body {
        // Each wrk thread numbers its own requests; the thread's id keeps emails apart.
        lua.push_str(&format!(
            r#"
local counter = 0
function request()
  counter = counter + 1
  local body = '{{"email":"' .. {prefix} .. thread_id .. '-' .. counter .. '@bench.example"}}'
  return wrk.format(nil, nil, nil, body)
end
"#,
            prefix = lua_string(prefix)
        ));
    }
    if let Some(n) = target.random_below {
        lua.push_str(&format!(
            "function request()\n  return wrk.format(nil, wrk.path .. math.random(0, {}))\nend\n",
            n.saturating_sub(1)
        ));
    }
    if let Some(ms) = think_ms {
        // Random pauses (mean `ms`), so that connections do not fire together on the same tick.
        lua.push_str(&format!(
            "function delay() return math.random(0, {}) end\n",
            2 * ms
        ));
    }
    lua.push_str(
        r#"
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("WRK-FIGURES %d %d %d %d %d %d\n", summary.requests, summary.duration,
    latency:percentile(50), latency:percentile(99), e.status, e.connect + e.read + e.write + e.timeout))
end
"#,
    );
    Ok(lua)
}

/// Runs wrk against `base` (`http://127.0.0.1:PORT`). Fails when any response was not a 2xx
/// or a socket error occurred: a benchmark of error pages would mean nothing.
pub fn run(base: &str, target: &Target, load: &Load, dir: &Path) -> Result<Figures, String> {
    run_script(base, target, load, dir, None)
}

/// Like [`run`], over several servers (`http://127.0.0.1:PORT` each): wrk thread n sends all
/// its requests to node n mod their count. Give one node to send every thread to it with the
/// same script, so that one node and several are driven alike.
pub fn run_spread(
    nodes: &[String],
    target: &Target,
    load: &Load,
    dir: &Path,
) -> Result<Figures, String> {
    let first = nodes.first().ok_or("no node to send the load to")?;
    run_script(first, target, load, dir, Some(nodes))
}

fn run_script(
    base: &str,
    target: &Target,
    load: &Load,
    dir: &Path,
    nodes: Option<&[String]>,
) -> Result<Figures, String> {
    let script_path: PathBuf = dir.join("scenario.lua");
    std::fs::write(&script_path, script(target, load.think_ms, nodes)?)
        .map_err(|e| e.to_string())?;
    let out = Command::new("wrk")
        .arg(format!("-t{}", load.threads))
        .arg(format!("-c{}", load.connections))
        .arg(format!("-d{}s", load.seconds))
        .arg("--timeout")
        .arg("10s")
        .arg("-s")
        .arg(&script_path)
        .arg(format!("{base}{}", target.path))
        .output()
        .map_err(|e| format!("could not run wrk: {e}"))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout
        .lines()
        .find_map(|l| l.strip_prefix("WRK-FIGURES "))
        .ok_or_else(|| {
            format!(
                "wrk printed no figures:\n{stdout}{}",
                String::from_utf8_lossy(&out.stderr)
            )
        })?;
    let n: Vec<u64> = line
        .split_whitespace()
        .map(|x| x.parse().unwrap_or(0))
        .collect();
    let [requests, duration_us, p50, p99, status_errors, socket_errors] = n[..] else {
        return Err(format!("unexpected wrk figures: {line}"));
    };
    if (status_errors > 0 && !target.refusals_expected) || socket_errors > 0 {
        return Err(format!(
            "{} {}: {status_errors} non-2xx responses and {socket_errors} socket errors in {requests} requests",
            target.method, target.path
        ));
    }
    Ok(Figures {
        per_second: requests as f64 / (duration_us as f64 / 1e6),
        p50: Duration::from_micros(p50),
        p99: Duration::from_micros(p99),
    })
}
