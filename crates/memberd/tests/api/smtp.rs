//! A real SMTP server for the email tests: Python's aiosmtpd (tests/smtp/smtp_server.py) on a
//! random port, read back and steered (stall, reject) over its HTTP control API.

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde::{Deserialize, Deserializer};
use serde_json::{json, Value};

/// One message the server accepted, as aiosmtpd got it and the `email` package parsed it.
#[derive(Debug, Clone, Deserialize)]
pub struct Message {
    pub mail_from: String,
    pub rcpt_tos: Vec<String>,
    /// Headers, decoded; empty when the message has none.
    #[serde(deserialize_with = "or_empty")]
    pub subject: String,
    #[serde(deserialize_with = "or_empty")]
    pub from: String,
    #[serde(deserialize_with = "or_empty")]
    pub to: String,
    #[serde(deserialize_with = "or_empty")]
    pub message_id: String,
    /// The text/plain and text/html bodies, decoded, with `\n` line ends.
    pub text: Option<String>,
    pub html: Option<String>,
    /// The login the client authenticated with.
    pub auth_user: Option<String>,
    /// Unix seconds.
    pub received_at: f64,
}

fn or_empty<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    Ok(Option::<String>::deserialize(d)?.unwrap_or_default())
}

pub struct SmtpServer {
    pub port: u16,
    control: String,
    http: reqwest::Client,
    /// Killed when dropped. Its stdin is held open here: the script exits when it closes, so
    /// it dies with the test process even when that is killed.
    child: Child,
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn workspace() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
}

fn has_aiosmtpd(python: &Path) -> bool {
    Command::new(python)
        .args(["-c", "import aiosmtpd"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// A Python with aiosmtpd: MEMBERD_TEST_SMTP_PYTHON, else the venv `.ci/run` makes. CI sets
/// MEMBERD_REQUIRE_SDK_TESTS so that a missing install fails instead of skipping.
fn python() -> Option<PathBuf> {
    let candidates = std::env::var_os("MEMBERD_TEST_SMTP_PYTHON")
        .map(PathBuf::from)
        .into_iter()
        .chain([workspace().join("target/smtp-venv/bin/python")]);
    for candidate in candidates {
        if has_aiosmtpd(&candidate) {
            return Some(candidate);
        }
    }
    let install = "python3 -m venv target/smtp-venv && target/smtp-venv/bin/pip install -r tests/smtp/requirements.txt";
    assert!(
        std::env::var_os("MEMBERD_REQUIRE_SDK_TESTS").is_none(),
        "the SMTP tests are required but aiosmtpd is not installed: {install}"
    );
    eprintln!("aiosmtpd is not installed ({install}): the SMTP tests are skipped");
    None
}

impl SmtpServer {
    /// A server on a free port; `None` (having said why) when aiosmtpd is not installed.
    pub async fn start() -> Option<SmtpServer> {
        SmtpServer::start_on(0, None).await
    }

    /// A server on `port` (0: a free one) that wants `auth` (user, password) before MAIL.
    pub async fn start_on(port: u16, auth: Option<(&str, &str)>) -> Option<SmtpServer> {
        let python = python()?;
        let mut command = Command::new(python);
        command
            .arg(workspace().join("tests/smtp/smtp_server.py"))
            .args(["--port", &port.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        if let Some((user, password)) = auth {
            command.args(["--auth", &format!("{user}:{password}")]);
        }
        let mut child = command.spawn().expect("the SMTP server's Python runs");
        let stdout = child.stdout.take().unwrap();
        let (line, child) = tokio::task::spawn_blocking(move || {
            let mut line = String::new();
            let read = std::io::BufReader::new(stdout).read_line(&mut line);
            if !matches!(read, Ok(n) if n > 0) {
                let status = child.wait();
                panic!("the SMTP server did not start on port {port} ({status:?}); its stderr is above");
            }
            (line, child)
        })
        .await
        .unwrap();
        let ports: Value = serde_json::from_str(&line)
            .unwrap_or_else(|_| panic!("the SMTP server's first line is not its ports: {line:?}"));
        let port = |key: &str| {
            ports[key]
                .as_u64()
                .and_then(|p| u16::try_from(p).ok())
                .unwrap_or_else(|| panic!("no {key} in {line:?}"))
        };
        Some(SmtpServer {
            port: port("smtp_port"),
            control: format!("http://127.0.0.1:{}", port("control_port")),
            http: reqwest::Client::builder().no_proxy().build().unwrap(),
            child,
        })
    }

    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    /// The control API's base URL, for the suites in other languages that read codes from it.
    pub fn control_url(&self) -> String {
        self.control.clone()
    }

    /// Everything accepted so far, oldest first.
    pub async fn messages(&self) -> Vec<Message> {
        let response = self
            .http
            .get(format!("{}/messages", self.control))
            .send()
            .await
            .expect("the SMTP server's control API answers");
        assert!(response.status().is_success(), "{}", response.status());
        response.json().await.expect("messages in JSON")
    }

    /// Waits until at least `count` messages have arrived, up to 30 s; all of them.
    pub async fn wait_for(&self, count: usize) -> Vec<Message> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let messages = self.messages().await;
            if messages.len() >= count {
                return messages;
            }
            assert!(
                Instant::now() < deadline,
                "{count} messages expected within 30 s; {} arrived: {messages:#?}",
                messages.len()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn post(&self, path: &str, body: Value) {
        let response = self
            .http
            .post(format!("{}{path}", self.control))
            .json(&body)
            .send()
            .await
            .expect("the SMTP server's control API answers");
        assert!(
            response.status().is_success(),
            "POST {path} {body}: {}",
            response.status()
        );
    }

    /// Forgets the messages received so far.
    pub async fn reset(&self) {
        self.post("/reset", json!({})).await;
    }

    /// While on, DATA waits unanswered; then it is accepted, unless the client went away.
    pub async fn stall(&self, on: bool) {
        self.post("/stall", json!({ "on": on })).await;
    }

    /// How many DATA commands the stall holds now.
    pub async fn stalled(&self) -> usize {
        let response = self
            .http
            .get(format!("{}/stalled", self.control))
            .send()
            .await
            .expect("the SMTP server's control API answers");
        let body: Value = response.json().await.expect("JSON");
        body["waiting"].as_u64().expect("a count") as usize
    }

    /// Waits until the stall holds exactly `count` DATA commands, up to 30 s: a sender is
    /// mid-send, or (0) the server has seen the ones that hung up go.
    pub async fn wait_stalled(&self, count: usize) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let held = self.stalled().await;
            if held == count {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the stall was to hold {count} DATA commands within 30 s; it holds {held}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// While set, DATA is answered with this code (451: try later; 550: mailbox unavailable).
    pub async fn reject(&self, code: Option<u16>) {
        self.post("/reject", json!({ "code": code })).await;
    }

    /// Kills the server and waits for it to be gone.
    pub async fn stop(self) {
        tokio::task::spawn_blocking(move || drop(self))
            .await
            .unwrap();
    }
}

/// The first run of exactly six ASCII digits (not part of a longer run).
pub fn code_in(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut start = 0;
    while start < bytes.len() {
        if !bytes[start].is_ascii_digit() {
            start += 1;
            continue;
        }
        let end = bytes[start..]
            .iter()
            .position(|b| !b.is_ascii_digit())
            .map_or(bytes.len(), |n| start + n);
        if end - start == 6 {
            return Some(text[start..end].to_owned());
        }
        start = end;
    }
    None
}

/// A client that speaks SMTP line by line, as a test needs it to.
struct Conversation {
    read: tokio::io::BufReader<tokio::net::tcp::OwnedReadHalf>,
    write: tokio::net::tcp::OwnedWriteHalf,
}

impl Conversation {
    /// Connects and reads the greeting.
    async fn open(port: u16) -> Conversation {
        let stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .unwrap();
        let (read, write) = stream.into_split();
        let mut conversation = Conversation {
            read: tokio::io::BufReader::new(read),
            write,
        };
        let greeting = conversation.reply().await;
        assert!(greeting.starts_with("220"), "{greeting}");
        conversation
    }

    /// The last line of the next reply (a multi-line reply's lines have `-` after the code).
    async fn reply(&mut self) -> String {
        use tokio::io::AsyncBufReadExt;
        loop {
            let mut line = String::new();
            let n = self.read.read_line(&mut line).await.unwrap();
            assert!(n > 0, "the SMTP server hung up");
            if line.as_bytes().get(3) != Some(&b'-') {
                return line.trim_end().to_owned();
            }
        }
    }

    async fn send(&mut self, text: &str) {
        use tokio::io::AsyncWriteExt;
        self.write.write_all(text.as_bytes()).await.unwrap();
    }

    /// Sends `command` (a line without its CRLF); the reply's last line.
    async fn say(&mut self, command: &str) -> String {
        self.send(&format!("{command}\r\n")).await;
        self.reply().await
    }

    /// EHLO, MAIL FROM, RCPT TO, DATA; each answered as expected.
    async fn envelope(&mut self, to: &str) {
        for (command, code) in [
            ("EHLO test.example".to_owned(), "250"),
            ("MAIL FROM:<sender@memberd.test>".to_owned(), "250"),
            (format!("RCPT TO:<{to}>"), "250"),
            ("DATA".to_owned(), "354"),
        ] {
            let reply = self.say(&command).await;
            assert!(reply.starts_with(code), "{command} -> {reply}");
        }
    }
}

/// A message with a text and an HTML part, its lines ended with CRLF, and the final dot.
fn multipart(to: &str) -> String {
    [
        "Subject: Your code",
        "From: Example Club <sender@memberd.test>",
        &format!("To: {to}"),
        "Message-ID: <eml_test@memberd.test>",
        "MIME-Version: 1.0",
        "Content-Type: multipart/alternative; boundary=\"b1\"",
        "",
        "--b1",
        "Content-Type: text/plain; charset=utf-8",
        "",
        "Your code is 123456 (not 1234567).",
        "--b1",
        "Content-Type: text/html; charset=utf-8",
        "",
        "<p>Your code is <b>123456</b>.</p>",
        "--b1--",
        ".",
        "",
    ]
    .join("\r\n")
}

/// The harness itself, without memberd: a message sent by hand arrives parsed; a refused one
/// and one whose client hung up during a stall are not kept.
#[tokio::test]
async fn the_smtp_server_keeps_what_it_accepts_and_nothing_else() {
    let Some(smtp) = SmtpServer::start().await else {
        return;
    };

    let mut client = Conversation::open(smtp.port).await;
    client.envelope("member@example.com").await;
    client.send(&multipart("member@example.com")).await;
    let accepted = client.reply().await;
    assert!(accepted.starts_with("250"), "{accepted}");
    assert!(client.say("QUIT").await.starts_with("221"));
    let messages = smtp.wait_for(1).await;
    let message = &messages[0];
    assert_eq!(message.mail_from, "sender@memberd.test");
    assert_eq!(message.rcpt_tos, ["member@example.com"]);
    assert_eq!(message.subject, "Your code");
    assert_eq!(message.from, "Example Club <sender@memberd.test>");
    assert_eq!(message.to, "member@example.com");
    assert_eq!(message.message_id, "<eml_test@memberd.test>");
    assert_eq!(message.auth_user, None);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    assert!(
        (now - 60.0..=now).contains(&message.received_at),
        "{message:?}"
    );
    let text = message.text.as_deref().expect("a text part");
    // The CRLF before a boundary belongs to the boundary.
    assert_eq!(text, "Your code is 123456 (not 1234567).");
    assert_eq!(code_in(text).as_deref(), Some("123456"));
    let html = message.html.as_deref().expect("an HTML part");
    assert!(html.contains("<b>123456</b>"), "{html}");
    assert_eq!(
        code_in("1234567 or 12345 then 654321"),
        Some("654321".into())
    );
    assert_eq!(code_in("no code 12345"), None);

    smtp.reject(Some(550)).await;
    let mut client = Conversation::open(smtp.port).await;
    client.envelope("refused@example.com").await;
    client.send(&multipart("refused@example.com")).await;
    let refused = client.reply().await;
    assert!(refused.starts_with("550"), "{refused}");
    smtp.reject(None).await;

    // A client that hangs up while its DATA is held leaves nothing; one that waits is
    // accepted once the stall ends.
    smtp.stall(true).await;
    let mut gone = Conversation::open(smtp.port).await;
    gone.envelope("gone@example.com").await;
    gone.send(&multipart("gone@example.com")).await;
    smtp.wait_stalled(1).await;
    drop(gone);
    smtp.wait_stalled(0).await;
    let mut patient = Conversation::open(smtp.port).await;
    patient.envelope("patient@example.com").await;
    patient.send(&multipart("patient@example.com")).await;
    smtp.wait_stalled(1).await;
    smtp.stall(false).await;
    let accepted = patient.reply().await;
    assert!(accepted.starts_with("250"), "{accepted}");
    let rcpts: Vec<Vec<String>> = smtp
        .messages()
        .await
        .into_iter()
        .map(|m| m.rcpt_tos)
        .collect();
    assert_eq!(rcpts, [["member@example.com"], ["patient@example.com"]]);

    smtp.reset().await;
    assert!(smtp.messages().await.is_empty());
    smtp.stop().await;
}
