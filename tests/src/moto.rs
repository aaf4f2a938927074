//! A real `moto_server` (PyPI `moto[server]==5.2.1`) on 127.0.0.1 for integration tests.
//!
//! The harness starts the server itself, through `tests/support/moto_server.py`, on a port
//! the OS picks, and never assumes one is already running. The server goes away with the test
//! process: [`Moto`]'s `Drop` kills it, and because statics (see [`Moto::shared`]) are never
//! dropped, the script also stops by itself when its standard input reaches end-of-file, which
//! happens as soon as the test process exits, however it exits (even by `SIGKILL`).
//!
//! # Talking to it from an AWS SDK client
//!
//! The harness only supplies the endpoint. Tests set the region and dummy credentials
//! explicitly on their SDK clients, so nothing depends on the developer's `~/.aws` or
//! environment; the constants [`TEST_REGION`], [`TEST_ACCESS_KEY_ID`] and
//! [`TEST_SECRET_ACCESS_KEY`] are the values to use:
//!
//! ```text
//! let moto = tierwise_tests::moto::Moto::shared()?;
//! let conf = aws_sdk_dynamodb::Config::builder()
//!     .behavior_version(aws_sdk_dynamodb::config::BehaviorVersion::latest())
//!     .region(aws_sdk_dynamodb::config::Region::new(moto::TEST_REGION))
//!     .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
//!         moto::TEST_ACCESS_KEY_ID, moto::TEST_SECRET_ACCESS_KEY, None, None, "moto"))
//!     .endpoint_url(moto.endpoint())
//!     .build();
//! let table = moto::unique_name("decisions");
//! ```
//!
//! All tests of one test binary share one server through [`Moto::shared`], so each test must
//! create its own tables and queues under names from [`unique_name`].

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::process::{Child, ChildStderr, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, OnceLock};
use std::thread;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The region to configure on SDK clients that talk to moto (moto accepts any region).
pub const TEST_REGION: &str = "us-east-1";
/// A dummy access key id for SDK clients that talk to moto (moto does not check it).
pub const TEST_ACCESS_KEY_ID: &str = "testing";
/// A dummy secret access key for SDK clients that talk to moto (moto does not check it).
pub const TEST_SECRET_ACCESS_KEY: &str = "testing";

/// How long [`Moto::start`] waits for the `READY` line (a cold `import moto` takes seconds).
pub const START_TIMEOUT: Duration = Duration::from_secs(60);

/// How to install moto, appended to every start-up error.
const INSTALL_HINT: &str =
    "install it with `python3 -m pip install -r tests/requirements.txt` (moto[server]==5.2.1)";

/// How many of the server's last stderr lines are kept for error messages.
const STDERR_TAIL_LINES: usize = 60;

/// A running `moto_server` child process and the endpoint it listens on.
#[derive(Debug)]
pub struct Moto {
    endpoint: String,
    /// Its stdin is piped and kept open: closing it (or this process dying) stops the server.
    child: Child,
    stderr_tail: Arc<Mutex<VecDeque<String>>>,
}

impl Moto {
    /// Starts a new server on a free port of 127.0.0.1 and waits (up to [`START_TIMEOUT`])
    /// until it accepts connections.
    ///
    /// # Errors
    ///
    /// A message that says what went wrong and how to fix it: `python3` missing, moto not
    /// installed, the server dying or not becoming ready in time.
    pub fn start() -> Result<Moto, String> {
        let script = script_path();
        if !script.is_file() {
            return Err(format!(
                "moto_server could not be started: the script {} is missing (it is part of the \
                 repository: restore it from git)",
                script.display()
            ));
        }
        let mut child = Command::new("python3")
            .arg(&script)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|err| {
                format!(
                    "moto_server could not be started (running `python3 {}` failed: {err}): \
                     install Python 3 so that `python3` is on PATH, then moto with \
                     `python3 -m pip install -r tests/requirements.txt` (moto[server]==5.2.1)",
                    script.display()
                )
            })?;

        let stderr_tail = Arc::new(Mutex::new(VecDeque::new()));
        if let Some(stderr) = child.stderr.take() {
            drain_stderr(stderr, Arc::clone(&stderr_tail));
        }
        let Some(stdout) = child.stdout.take() else {
            kill_and_wait(&mut child);
            return Err("moto_server could not be started: its stdout was not piped".to_owned());
        };

        // Read the first stdout line on a thread so that the wait can time out.
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || {
            let mut reader = BufReader::new(stdout);
            let mut line = String::new();
            let first = reader.read_line(&mut line).map(|n| (n > 0).then_some(line));
            // The receiver may have given up (timeout): nothing to do then.
            let _ = tx.send(first);
            // Keep the pipe open and drained for the life of the server.
            let _ = std::io::copy(&mut reader, &mut std::io::sink());
        });

        let fail = |child: &mut Child, what: String| -> String {
            kill_and_wait(child);
            // Give the stderr thread a moment to collect the last lines after the exit.
            thread::sleep(Duration::from_millis(100));
            let tail = tail_text(&stderr_tail);
            if tail.is_empty() {
                what
            } else {
                format!("{what}\n--- moto_server.py stderr (last lines) ---\n{tail}")
            }
        };

        match rx.recv_timeout(START_TIMEOUT) {
            Ok(Ok(Some(line))) => match line.trim_end().strip_prefix("READY ") {
                Some(endpoint) if endpoint.starts_with("http://127.0.0.1:") => Ok(Moto {
                    endpoint: endpoint.to_owned(),
                    child,
                    stderr_tail,
                }),
                _ => Err(fail(
                    &mut child,
                    format!(
                        "moto_server could not be started: expected `READY http://127.0.0.1:<port>` \
                         from {}, got {line:?}",
                        script.display()
                    ),
                )),
            },
            Ok(Ok(None)) => {
                // EOF before READY: the script exited. Exit status 2 means moto is missing.
                let status = wait_briefly(&mut child);
                let what = if status.and_then(|s| s.code()) == Some(2) {
                    format!(
                        "moto_server could not be started (python3 -c 'import moto.server' \
                         failed): {INSTALL_HINT}"
                    )
                } else {
                    format!(
                        "moto_server could not be started: {} exited ({}) before printing READY; \
                         check that `python3 -c 'import moto.server'` works, else {INSTALL_HINT}",
                        script.display(),
                        status.map_or_else(|| "still running".to_owned(), |s| s.to_string())
                    )
                };
                Err(fail(&mut child, what))
            }
            Ok(Err(err)) => Err(fail(
                &mut child,
                format!("moto_server could not be started: reading its stdout failed: {err}"),
            )),
            Err(_) => Err(fail(
                &mut child,
                format!(
                    "moto_server could not be started: no READY line within {} s (a slow or \
                     broken Python environment?); check that `python3 -c 'import moto.server'` \
                     works, else {INSTALL_HINT}",
                    START_TIMEOUT.as_secs()
                ),
            )),
        }
    }

    /// The server shared by every test of this test binary, started on first use.
    ///
    /// It is never dropped (statics are not): it stops when the test process exits, through
    /// the end-of-file on its stdin. Tests that use it must name their resources with
    /// [`unique_name`].
    ///
    /// # Errors
    ///
    /// The error of [`Moto::start`], the same one for every caller if the start failed.
    pub fn shared() -> Result<&'static Moto, String> {
        static SHARED: OnceLock<Result<Moto, String>> = OnceLock::new();
        SHARED
            .get_or_init(Moto::start)
            .as_ref()
            .map_err(Clone::clone)
    }

    /// The base URL of the server, `http://127.0.0.1:<port>`, for SDK clients' `endpoint_url`.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// The port the server listens on.
    pub fn port(&self) -> u16 {
        self.endpoint
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .unwrap_or_default()
    }

    /// The process id of the Python server process.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The server's last stderr lines (moto's errors and tracebacks), to add to a failing
    /// test's message.
    pub fn stderr_tail(&self) -> String {
        tail_text(&self.stderr_tail)
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        kill_and_wait(&mut self.child);
    }
}

/// The process's shared server ([`Moto::shared`]) for a test; panics with the start error,
/// which says how to install `moto[server]`, when it could not be started.
pub fn moto() -> &'static Moto {
    match Moto::shared() {
        Ok(m) => m,
        Err(e) => panic!("{e}"),
    }
}

/// A name no other call in any process makes: `<prefix>-<pid>-<nanos as hex>-<counter>`.
///
/// Made of ASCII letters, digits and `-` only, so it is a valid DynamoDB table name and SQS
/// queue name (keep `prefix` short: SQS allows 80 characters).
pub fn unique_name(prefix: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    // The low 64 bits change every nanosecond and wrap only every ~584 years.
    let nanos = nanos as u64;
    format!("{prefix}-{}-{nanos:x}-{n}", std::process::id())
}

/// `tests/support/moto_server.py` of this repository.
fn script_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("support")
        .join("moto_server.py")
}

/// Keeps reading the server's stderr (so the pipe never fills and blocks the server),
/// remembering its last lines.
fn drain_stderr(stderr: ChildStderr, tail: Arc<Mutex<VecDeque<String>>>) {
    thread::spawn(move || {
        let mut reader = BufReader::new(stderr);
        let mut buf = Vec::new();
        loop {
            buf.clear();
            match reader.by_ref().take(64 * 1024).read_until(b'\n', &mut buf) {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    let line = String::from_utf8_lossy(&buf).trim_end().to_owned();
                    let mut tail = tail.lock().unwrap_or_else(|e| e.into_inner());
                    if tail.len() == STDERR_TAIL_LINES {
                        tail.pop_front();
                    }
                    tail.push_back(line);
                }
            }
        }
    });
}

fn tail_text(tail: &Mutex<VecDeque<String>>) -> String {
    let tail = tail.lock().unwrap_or_else(|e| e.into_inner());
    tail.iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .join("\n")
}

/// Waits up to 2 s for an exiting child, returning its status if it exited.
fn wait_briefly(child: &mut Child) -> Option<std::process::ExitStatus> {
    for _ in 0..200 {
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        thread::sleep(Duration::from_millis(10));
    }
    None
}

fn kill_and_wait(child: &mut Child) {
    // Closing stdin first lets the script stop cleanly if it is quicker than the kill.
    drop(child.stdin.take());
    let _ = child.kill();
    let _ = child.wait();
}
