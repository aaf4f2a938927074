//! The official OpenAI Python SDK (`openai`, pinned in `tests/requirements.txt`) against the
//! router as `tests/local.sh` runs it: the built `router` binary behind cargo-lambda's Lambda
//! emulator (`cargo lambda watch`, PyPI `cargo-lambda`), reached through the emulator's
//! function URL `/lambda-url/router/v1`, with `TIERWISE_AUTH=keys` and Bearer API keys made in
//! DynamoDB. AWS is a `moto_server` the test starts; the LLM provider is the local
//! OpenAI-compatible fake of `tierwise_tests::fake_upstream`, named by a pool file
//! (`TIERWISE_POOL_PATH`).
//!
//! The emulator runs with `--only-lambda-apis` and the test starts the binary that cargo built
//! for it (`CARGO_BIN_EXE_router`): a full `cargo lambda watch` builds the router again with
//! the package's own feature set, which differs from the workspace's (serde_json, the AWS SDK
//! crates, reqwest, tokenizers... compiled a second time), minutes on a CI machine. Everything
//! between the HTTP request and the binary (the function URL event, the Runtime API) is the
//! emulator's, as in a local run.
//!
//! `tests/support/openai_sdk_check.py` makes each case's calls with the SDK and prints what it
//! got back; this test asserts on that and on the calls the provider received, once with the
//! router answering buffered (as `tests/local.sh` and the API Gateway deployment run it) and
//! once through Lambda response streaming (as the template's function URL runs it). Cases: a
//! routed chat (`model="auto"`: text, usage, the routed model), a stream with
//! `stream_options.include_usage` (chunks joined, the final usage chunk), a tool call (routed
//! to a model whose pool `capabilities` include `tools`, parsed by the SDK), JSON mode (to a
//! `json_mode` model), and errors as the SDK's own exceptions: context too long
//! (`BadRequestError`, `context_length_exceeded`), an unknown model (`NotFoundError`), a key
//! over its budget (`RateLimitError`), a wrong key (`AuthenticationError`), and provider
//! refusals in the provider's own shapes (a numeric `code`, `{"error": "text"}`, plain text)
//! reaching the SDK in the OpenAI shape with the provider's text in the message.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "helpers outside #[test] functions panic on bad fixtures too: that is what a test wants"
)]

use std::collections::BTreeMap;
use std::fs::File;
use std::io::ErrorKind;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;
use tierwise::access::admin::{KeyRequest, create_key};
use tierwise::access::key::{Budget, KeyLimits, Period};
use tierwise::aws::keys::DynamoKeyStore;
use tierwise::aws::{dynamodb_client, sdk_config_at, setup, sqs_client};
use tierwise::ledger::money::{Timestamp, Usd};
use tierwise::serve::settings::AwsCallSettings;
use tierwise_tests::fake_upstream::{Behaviour, FakeUpstream};
use tierwise_tests::moto::{Moto, unique_name};

const REPO: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");
const SCRIPT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../tests/support/openai_sdk_check.py"
);
/// The provider key the router reads at init (`api_key_ref = "env:FAKE_PROVIDER_KEY"`).
const PROVIDER_KEY: &str = "fake-provider-key-7f3a";
const QUESTION: &str = "What is the capital of France?";
/// How `tests/run.sh` installs the Python tools (`openai`, `cargo-lambda`).
const INSTALL: &str = "install the Python tools of the tests with `tests/run.sh` (or \
    `python3 -m pip install -r tests/requirements.txt` and \
    `python3 -m pip install --no-deps -r tests/requirements-nodeps.txt`) and put their bin \
    directory (.venv-ci/bin) on PATH";

/// Every model of the pool: per tier, a plain model first, then one with `tools`, then one
/// with `json_mode`, so that only the capabilities can take a request past the plain one.
const TIERS: [&str; 3] = ["t1", "t2", "t3"];
/// Pool models (tier3) whose provider refuses every call in its own error shape.
const REFUSES_NUMERIC: &str = "fake/refuses-numeric-code";
const REFUSES_STRING: &str = "fake/refuses-error-string";
const REFUSES_TEXT: &str = "fake/refuses-plain-text";
const NUMERIC_BODY: &str = r#"{"error":{"message":"Provider returned error: temperature must be at most 2","code":400,"metadata":{"provider_name":"FakeCloud"}}}"#;
const STRING_BODY: &str = r#"{"error":"logit_bias is not accepted by this model"}"#;
const TEXT_BODY: &str = "Bad Request: the field `seed` must be an integer";

fn model(tier: &str, kind: &str) -> String {
    format!("fake/{tier}-{kind}")
}

/// The pool: three tiers of the fake provider, small context windows (8,192 tokens), a
/// $0.05 cap per request (what a key's budget must cover).
fn pool_toml(base_url: &str) -> String {
    let mut toml = format!(
        r#"pricing_version = "test-2026-11-30"
baseline_model = "fake/t3-plain"
max_request_cost_usd = 0.05

[providers.fake]
base_url = "{base_url}"
api_key_ref = "env:FAKE_PROVIDER_KEY"
"#
    );
    for tier in TIERS {
        toml.push_str(&format!("\n[[tiers]]\nname = \"tier{}\"\n", &tier[1..]));
        let mut models = vec![
            (model(tier, "plain"), "\"streaming\""),
            (model(tier, "tools"), "\"streaming\", \"tools\""),
            (model(tier, "json"), "\"streaming\", \"json_mode\""),
        ];
        if tier == "t3" {
            for m in [REFUSES_NUMERIC, REFUSES_STRING, REFUSES_TEXT] {
                models.push((m.to_string(), "\"streaming\""));
            }
        }
        for (id, caps) in models {
            toml.push_str(&format!(
                r#"
[[tiers.models]]
id = "{id}"
capabilities = [{caps}]
input_usd_per_m = 0.5
output_usd_per_m = 1.5
context_window = 8192
max_output_tokens = 1024
provider = "fake"
"#
            ));
        }
    }
    toml
}

/// A child process killed (and reaped) when dropped; its output goes to `log`.
struct Proc {
    name: &'static str,
    child: Child,
    log: PathBuf,
}

impl Proc {
    /// The last lines of its output, for failure messages.
    fn tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        let from = lines.len().saturating_sub(40);
        format!(
            "--- {} output (last lines, {}) ---\n{}",
            self.name,
            self.log.display(),
            lines[from..].join("\n")
        )
    }

    /// Panics with its output when it has exited.
    fn check_running(&mut self) {
        if let Ok(Some(status)) = self.child.try_wait() {
            panic!("{} exited ({status})\n{}", self.name, self.tail());
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn spawn(name: &'static str, mut cmd: Command, log: PathBuf, missing: &str) -> Proc {
    let out = File::create(&log).unwrap();
    cmd.stdin(Stdio::null())
        .stdout(out.try_clone().unwrap())
        .stderr(out);
    match cmd.spawn() {
        Ok(child) => Proc { name, child, log },
        Err(e) if e.kind() == ErrorKind::NotFound => {
            panic!("{name} could not be started ({e}): {missing}")
        }
        Err(e) => panic!("{name} could not be started: {e}"),
    }
}

/// A port of 127.0.0.1 free a moment ago.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Waits until `until` holds, the process still running, for at most `limit`.
fn wait_for(p: &mut Proc, what: &str, limit: Duration, mut until: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !until() {
        p.check_running();
        assert!(
            Instant::now() < deadline,
            "{what}: not within {limit:?}\n{}",
            p.tail()
        );
        thread::sleep(Duration::from_millis(50));
    }
}

/// cargo-lambda's emulator on a free port: the function URL (`/lambda-url/<name>/...`) and
/// the Runtime API (`/.rt/<name>/...`), the function left to the caller. The port is free a
/// moment before the emulator binds it; when another process took it meanwhile the emulator
/// exits at once, and another port is tried.
fn start_emulator(dir: &Path) -> (Proc, u16) {
    let missing = format!("cargo-lambda (PyPI cargo-lambda==1.9.2) is not on PATH: {INSTALL}");
    let mut attempt = 0;
    loop {
        attempt += 1;
        let port = free_port();
        let mut cmd = Command::new("cargo-lambda");
        // `cargo lambda watch` is cargo running `cargo-lambda lambda watch`; run it directly
        // so that the process killed at the end is the emulator itself. It reads the
        // workspace's metadata, so it runs at the root.
        cmd.args(["lambda", "watch", "--only-lambda-apis", "--quiet"])
            .args(["--invoke-address", "127.0.0.1", "--invoke-port"])
            .arg(port.to_string())
            .current_dir(REPO);
        let log = dir.join(format!("emulator-{attempt}.log"));
        let mut p = spawn("cargo lambda watch", cmd, log, &missing);
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let deadline = Instant::now() + Duration::from_secs(60);
        let exited = loop {
            if let Ok(Some(_)) = p.child.try_wait() {
                break true;
            }
            if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                // A failed bind ends the emulator within milliseconds.
                thread::sleep(Duration::from_millis(200));
                break matches!(p.child.try_wait(), Ok(Some(_)));
            }
            assert!(
                Instant::now() < deadline,
                "the emulator is not listening on {addr} after 60 s\n{}",
                p.tail()
            );
            thread::sleep(Duration::from_millis(50));
        };
        if !exited {
            return (p, port);
        }
        assert!(attempt < 3, "the emulator did not start\n{}", p.tail());
    }
}

/// The built router binary, polling the emulator's Runtime API as function `router`,
/// configured as `tests/local.sh` configures it plus keys and the test's pool.
fn start_router(port: u16, dir: &Path, env: &[(&str, String)]) -> Proc {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_router"));
    // Nothing of the caller's environment decides the settings (an unknown TIERWISE_* is an
    // error) or the AWS endpoint and credentials.
    for (k, _) in std::env::vars_os() {
        let k = k.to_string_lossy();
        if k.starts_with("TIERWISE_") || k.starts_with("AWS_") {
            cmd.env_remove(k.as_ref());
        }
    }
    cmd.env(
        "AWS_LAMBDA_RUNTIME_API",
        format!("http://127.0.0.1:{port}/.rt/router"),
    )
    .env("AWS_LAMBDA_FUNCTION_NAME", "router")
    .env("AWS_LAMBDA_FUNCTION_VERSION", "1")
    .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "1024");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut p = spawn("router", cmd, dir.join("router.log"), "build it with cargo");
    let log = p.log.clone();
    wait_for(&mut p, "the router's init", Duration::from_secs(60), || {
        std::fs::read_to_string(&log).is_ok_and(|t| t.contains("router ready"))
    });
    p
}

/// Runs the SDK script; what it saw, by case.
fn run_sdk(base_url: &str, key: &str, poor_key: &str) -> BTreeMap<String, Value> {
    let out = Command::new("python3")
        .arg(SCRIPT)
        .args(["--base-url", base_url, "--key", key, "--poor-key", poor_key])
        .output()
        .unwrap_or_else(|e| panic!("python3 could not be started ({e}): {INSTALL}"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    match out.status.code() {
        Some(0) => {}
        Some(3) => panic!("{stderr}\n{INSTALL}"),
        _ => panic!(
            "openai_sdk_check.py failed ({})\nstdout: {stdout}\nstderr: {stderr}",
            out.status
        ),
    }
    stdout
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"));
            (v["case"].as_str().unwrap().to_string(), v)
        })
        .collect()
}

/// AWS (moto), the keys, the fake provider, the emulator and the router; dropped in reverse.
struct Stack {
    fake: FakeUpstream,
    base_url: String,
    key: String,
    poor_key: String,
    // Field order is drop order: the router before the emulator it polls, moto last.
    router: Proc,
    emulator: Proc,
    dir: PathBuf,
    _moto: Moto,
}

impl Stack {
    /// With `streaming`, the router answers through Lambda response streaming
    /// (`TIERWISE_RESPONSE_STREAMING=true`, as the template's function URL runs it); else
    /// buffered, as `tests/local.sh` and the API Gateway deployment run it.
    fn start(streaming: bool) -> Stack {
        let moto = Moto::start().unwrap_or_else(|e| panic!("{e}"));
        let dir = std::env::temp_dir().join(unique_name("openai-sdk"));
        std::fs::create_dir_all(&dir).unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let (resources, key, poor_key) = rt.block_on(async {
            let sdk = sdk_config_at(&AwsCallSettings::default(), moto.endpoint()).await;
            let (ddb, sqs) = (dynamodb_client(&sdk), sqs_client(&sdk));
            // What `tierwise setup-local` creates, then two keys as `tierwise keys create
            // --tenant T --budget-usd N --period day` makes them.
            let r = setup::create_router_resources(
                &ddb,
                &sqs,
                &unique_name("costs"),
                &unique_name("q"),
            )
            .await
            .unwrap();
            let store = DynamoKeyStore::new(ddb, &r.table);
            let key = |tenant: &str, usd: f64| {
                let req = KeyRequest {
                    tenant: tenant.into(),
                    limits: KeyLimits {
                        budget: Some(Budget {
                            usd: Usd::from_f64(usd),
                            period: Period::Day,
                        }),
                        ..KeyLimits::default()
                    },
                    ..KeyRequest::default()
                };
                let store = &store;
                async move {
                    create_key(store, &req, Timestamp::now())
                        .await
                        .unwrap()
                        .0
                        .text
                }
            };
            // $0.01 a day cannot cover one call's worst case (the pool's $0.05 cap).
            (
                r.clone(),
                key("acme", 100.0).await,
                key("frugal", 0.01).await,
            )
        });

        let fake = FakeUpstream::start().unwrap();
        for tier in TIERS {
            fake.set_default(
                &model(tier, "tools"),
                Behaviour::tool_call("get_weather", r#"{"city": "Paris"}"#),
            );
            fake.set_default(
                &model(tier, "json"),
                Behaviour::content(r#"{"capital": "Paris", "country": "France"}"#),
            );
        }
        for (m, status, body) in [
            (REFUSES_NUMERIC, 400, NUMERIC_BODY),
            (REFUSES_STRING, 422, STRING_BODY),
            (REFUSES_TEXT, 400, TEXT_BODY),
        ] {
            fake.set_default(
                m,
                Behaviour::Status {
                    status,
                    retry_after: None,
                    body: body.into(),
                },
            );
        }
        let pool = dir.join("pool.toml");
        std::fs::write(&pool, pool_toml(&fake.base_url())).unwrap();

        let (mut emulator, port) = start_emulator(&dir);
        let mut env = vec![
            ("AWS_ENDPOINT_URL", moto.endpoint().to_string()),
            ("AWS_REGION", "us-east-1".into()),
            ("AWS_ACCESS_KEY_ID", "local".into()),
            ("AWS_SECRET_ACCESS_KEY", "local".into()),
            ("TIERWISE_TABLE", resources.table.clone()),
            (
                "TIERWISE_SHADOW_QUEUE_URL",
                resources.shadow_queue_url.clone(),
            ),
            (
                "TIERWISE_FALLBACK_QUEUE_URL",
                resources.fallback_queue_url.clone(),
            ),
            ("TIERWISE_SHADOW_RATE", "0".into()),
            ("TIERWISE_AUTH", "keys".into()),
            ("TIERWISE_POOL_PATH", pool.display().to_string()),
            ("FAKE_PROVIDER_KEY", PROVIDER_KEY.into()),
        ];
        if streaming {
            env.push(("TIERWISE_RESPONSE_STREAMING", "true".into()));
        }
        let router = start_router(port, &dir, &env);
        emulator.check_running();
        Stack {
            fake,
            base_url: format!("http://127.0.0.1:{port}/lambda-url/router/v1"),
            key,
            poor_key,
            router,
            emulator,
            dir,
            _moto: moto,
        }
    }

    /// The provider's calls whose body contains `text`.
    fn calls_with(&self, text: &str) -> Vec<tierwise_tests::fake_upstream::Call> {
        self.fake
            .calls()
            .into_iter()
            .filter(|c| c.body.contains(text))
            .collect()
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        if !thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

fn is_model(id: &str, kind: &str) -> bool {
    TIERS.iter().any(|t| id == model(t, kind))
}

/// The answer the fake gives by default: `answer from <model>: <last user message>`.
fn default_answer(model: &str) -> String {
    format!("answer from {model}: {QUESTION}")
}

fn check_models(seen: &Value, _: &Stack) {
    let ids: Vec<&str> = seen["ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(ids.first(), Some(&"auto"), "{seen}");
    assert!(
        ids.contains(&"fake/t2-tools") && ids.contains(&REFUSES_TEXT),
        "{seen}"
    );
}

fn check_chat_auto(seen: &Value, st: &Stack) {
    let routed = seen["routed_model"].as_str().unwrap();
    assert!(
        is_model(routed, "plain"),
        "a plain request goes to its tier's first model: {seen}"
    );
    assert_eq!(seen["model"], routed, "{seen}");
    assert_eq!(seen["object"], "chat.completion");
    assert_eq!(seen["content"], default_answer(routed), "{seen}");
    assert_eq!(seen["finish_reason"], "stop");
    // The fake counts words: 6 in the question, those of the answer.
    let usage = &seen["usage"];
    assert_eq!(usage["prompt_tokens"], 6, "{seen}");
    assert_eq!(
        usage["completion_tokens"].as_u64().unwrap(),
        default_answer(routed).split_whitespace().count() as u64
    );
    assert_eq!(
        usage["total_tokens"].as_u64().unwrap(),
        usage["prompt_tokens"].as_u64().unwrap() + usage["completion_tokens"].as_u64().unwrap()
    );
    let calls: Vec<_> = st
        .calls_with(QUESTION)
        .into_iter()
        .filter(|c| !c.stream && c.model == routed)
        .collect();
    assert_eq!(calls.len(), 1, "{calls:?}");
    // The provider gets the provider's key, never the caller's tierwise key.
    assert_eq!(
        calls[0].authorization.as_deref(),
        Some(format!("Bearer {PROVIDER_KEY}").as_str())
    );
}

fn check_stream(seen: &Value, st: &Stack) {
    let models = seen["models"].as_array().unwrap();
    assert_eq!(models.len(), 1, "{seen}");
    let m = models[0].as_str().unwrap();
    assert!(is_model(m, "plain"), "{seen}");
    assert_eq!(seen["text"], default_answer(m), "chunks joined: {seen}");
    assert!(seen["chunks"].as_u64().unwrap() >= 4, "{seen}");
    assert_eq!(
        seen["finish_reasons"],
        serde_json::json!(["stop"]),
        "{seen}"
    );
    // The last chunk carries the usage and no choices; no other chunk has usage.
    assert_eq!(seen["usage_chunks"], 1, "{seen}");
    assert_eq!(seen["last_chunk_choices"], 0, "{seen}");
    let usage = &seen["last_usage"];
    assert_eq!(usage["prompt_tokens"], 6, "{seen}");
    assert_eq!(
        usage["completion_tokens"].as_u64().unwrap(),
        default_answer(m).split_whitespace().count() as u64,
        "{seen}"
    );
    let calls: Vec<_> = st.fake.calls().into_iter().filter(|c| c.stream).collect();
    assert_eq!(calls.len(), 1, "{calls:?}");
    assert_eq!(calls[0].model, m);
}

fn check_tool_call(seen: &Value, st: &Stack) {
    let routed = seen["routed_model"].as_str().unwrap();
    assert!(
        is_model(routed, "tools"),
        "a request with tools goes to a model whose capabilities include tools: {seen}"
    );
    assert_eq!(seen["model"], routed);
    assert_eq!(seen["finish_reason"], "tool_calls", "{seen}");
    assert!(seen["content"].is_null(), "{seen}");
    assert_eq!(
        seen["tool_calls"],
        serde_json::json!([{"id": "call_fake0", "type": "function", "name": "get_weather",
            "arguments": {"city": "Paris"}}]),
        "the SDK parsed the provider's tool_calls: {seen}"
    );
    let calls = st.calls_with("weather in Paris");
    assert_eq!(calls.len(), 1, "{calls:?}");
    assert_eq!(calls[0].model, routed);
    let body: Value = serde_json::from_str(&calls[0].body).unwrap();
    assert_eq!(
        body["tools"][0]["function"]["name"], "get_weather",
        "{body}"
    );
}

fn check_json_mode(seen: &Value, st: &Stack) {
    let routed = seen["routed_model"].as_str().unwrap();
    assert!(is_model(routed, "json"), "to a json_mode model: {seen}");
    assert_eq!(
        seen["parsed"],
        serde_json::json!({"capital": "Paris", "country": "France"}),
        "{seen}"
    );
    let calls = st.calls_with("Answer as JSON.");
    assert_eq!(calls.len(), 1, "{calls:?}");
    let body: Value = serde_json::from_str(&calls[0].body).unwrap();
    assert_eq!(body["response_format"]["type"], "json_object", "{body}");
}

/// An SDK exception of this class, status and code.
fn assert_raised(seen: &Value, class: &str, status: u16, code: Option<&str>) {
    assert_eq!(seen["raised"], class, "{seen}");
    assert_eq!(seen["status_code"], status, "{seen}");
    assert_eq!(seen["code"].as_str(), code, "{seen}");
}

fn check_context_too_long(seen: &Value, st: &Stack) {
    assert_raised(
        seen,
        "BadRequestError",
        400,
        Some("context_length_exceeded"),
    );
    assert_eq!(seen["type"], "invalid_request_error", "{seen}");
    assert!(st.calls_with("lorem ipsum").is_empty(), "no provider call");
}

fn check_unknown_model(seen: &Value, st: &Stack) {
    assert_raised(seen, "NotFoundError", 404, Some("model_not_found"));
    assert!(
        seen["message"].as_str().unwrap().contains("no-such/model"),
        "{seen}"
    );
    assert_eq!(st.fake.calls_for("no-such/model"), 0);
}

fn check_over_budget(seen: &Value, _: &Stack) {
    assert_raised(seen, "RateLimitError", 429, Some("insufficient_quota"));
    assert!(
        seen["message"].as_str().unwrap().contains("budget"),
        "{seen}"
    );
}

fn check_bad_key(seen: &Value, _: &Stack) {
    assert_raised(seen, "AuthenticationError", 401, Some("invalid_api_key"));
}

/// A provider refusal: the SDK's class for the status, the OpenAI error shape in `e.body`,
/// the provider's text in `e.message`.
fn check_refusal(seen: &Value, class: &str, status: u16, code: Option<&str>, text: &str) {
    assert_raised(seen, class, status, code);
    assert_eq!(seen["type"], "invalid_request_error", "{seen}");
    let message = seen["message"].as_str().unwrap();
    assert!(message.contains(text), "provider text kept: {seen}");
    let body = &seen["body"];
    assert!(body.is_object(), "the OpenAI error object: {seen}");
    assert!(body["message"].as_str().unwrap().contains(text), "{seen}");
}

fn check_provider_numeric_code(seen: &Value, st: &Stack) {
    check_refusal(
        seen,
        "BadRequestError",
        400,
        Some("400"),
        "temperature must be at most 2",
    );
    assert_eq!(seen["body"]["metadata"]["provider_name"], "FakeCloud");
    assert_eq!(st.fake.calls_for(REFUSES_NUMERIC), 1, "never retried");
}

fn check_provider_error_string(seen: &Value, st: &Stack) {
    check_refusal(
        seen,
        "UnprocessableEntityError",
        422,
        None,
        "logit_bias is not accepted by this model",
    );
    assert_eq!(st.fake.calls_for(REFUSES_STRING), 1, "never retried");
}

fn check_provider_plain_text(seen: &Value, st: &Stack) {
    check_refusal(seen, "BadRequestError", 400, None, TEXT_BODY);
    assert_eq!(st.fake.calls_for(REFUSES_TEXT), 1, "never retried");
}

type Check = fn(&Value, &Stack);

#[test]
fn the_openai_sdk_against_the_buffered_router() {
    sdk_cases(false);
}

#[test]
fn the_openai_sdk_against_the_streaming_router() {
    sdk_cases(true);
}

/// Starts a stack, runs every case of the script, checks each, and fails naming every case
/// that failed.
fn sdk_cases(streaming: bool) {
    let started = Instant::now();
    let mut st = Stack::start(streaming);
    let ready = started.elapsed();
    let seen = run_sdk(&st.base_url, &st.key, &st.poor_key);
    let checks: [(&str, Check); 12] = [
        ("models", check_models),
        ("chat_auto", check_chat_auto),
        ("stream", check_stream),
        ("tool_call", check_tool_call),
        ("json_mode", check_json_mode),
        ("context_too_long", check_context_too_long),
        ("unknown_model", check_unknown_model),
        ("over_budget", check_over_budget),
        ("bad_key", check_bad_key),
        ("provider_numeric_code", check_provider_numeric_code),
        ("provider_error_string", check_provider_error_string),
        ("provider_plain_text", check_provider_plain_text),
    ];
    let mut failed = Vec::new();
    for (case, check) in checks {
        let Some(v) = seen.get(case) else {
            failed.push(format!("{case}: not reported"));
            continue;
        };
        if let Some(e) = v.get("unexpected") {
            failed.push(format!(
                "{case}: the SDK call raised {e}\n{}",
                v["traceback"]
            ));
            continue;
        }
        // Each check's assertion message is printed by the panic hook; collected here so
        // that every case is reported.
        if catch_unwind(AssertUnwindSafe(|| check(v, &st))).is_err() {
            failed.push(format!("{case}: {v}"));
        }
    }
    // Answered: chat, stream, tool call, JSON mode, and the three refusals; the errors the
    // router raises itself never reach the provider.
    let calls = st.fake.calls();
    if calls.len() != 7 {
        failed.push(format!(
            "the provider got {} calls, not 7: {:?}",
            calls.len(),
            st.fake.models_called()
        ));
    }
    // The router's access log of keyed traffic: the key's id and tenant, never the key.
    let log = std::fs::read_to_string(&st.router.log).unwrap_or_default();
    let key_id = tierwise::access::key::key_id_of(&st.key).unwrap_or_default();
    let admitted = log
        .lines()
        .filter(|l| l.contains("key admitted") && l.contains("acme"))
        .count();
    if admitted == 0 || key_id.is_empty() || !log.contains(key_id) {
        failed.push(format!(
            "no `key admitted` line with the key id {key_id} and tenant acme in the router log"
        ));
    }
    if log.contains(&st.key) || log.contains(&st.poor_key) {
        failed.push("the router log contains a caller's key".into());
    }
    st.router.check_running();
    st.emulator.check_running();
    eprintln!(
        "openai_sdk (streaming: {streaming}): stack ready in {:.1} s, {} cases in {:.1} s in all",
        ready.as_secs_f64(),
        seen.len(),
        started.elapsed().as_secs_f64()
    );
    assert!(
        failed.is_empty(),
        "{} case(s) failed (streaming: {streaming}):\n{}\n{}\n{}",
        failed.len(),
        failed.join("\n"),
        st.router.tail(),
        st.emulator.tail()
    );
}
