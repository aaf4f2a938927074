//! Checks of the `moto_server` harness (`tierwise_tests::moto`): the server it starts answers
//! HTTP, and separate instances listen on separate ports.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use tierwise_tests::moto::{Moto, unique_name};

/// Sends a bare HTTP/1.1 GET and returns the whole response.
fn http_get(endpoint: &str, path: &str) -> anyhow::Result<String> {
    let addr = endpoint
        .strip_prefix("http://")
        .ok_or_else(|| anyhow::anyhow!("endpoint {endpoint} is not http://"))?;
    let mut stream = TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    Ok(response)
}

#[test]
fn shared_server_answers_http() -> anyhow::Result<()> {
    let moto = Moto::shared().map_err(anyhow::Error::msg)?;
    assert!(
        moto.endpoint().starts_with("http://127.0.0.1:"),
        "{}",
        moto.endpoint()
    );
    let response = http_get(moto.endpoint(), "/moto-api/data.json")?;
    let status_line = response.lines().next().unwrap_or_default();
    assert!(
        status_line.starts_with("HTTP/1.1 200"),
        "unexpected status line {status_line:?}; stderr:\n{}",
        moto.stderr_tail()
    );
    // moto's state dump is JSON.
    let body = response.split("\r\n\r\n").nth(1).unwrap_or_default();
    assert!(body.trim_start().starts_with('{'), "body {body:?}");
    Ok(())
}

#[test]
fn two_servers_get_different_ports() -> anyhow::Result<()> {
    let a = Moto::start().map_err(anyhow::Error::msg)?;
    let b = Moto::start().map_err(anyhow::Error::msg)?;
    assert_ne!(a.endpoint(), b.endpoint());
    assert_ne!(a.port(), b.port());
    for moto in [&a, &b] {
        let response = http_get(moto.endpoint(), "/moto-api/data.json")?;
        assert!(response.starts_with("HTTP/1.1 200"), "{response:?}");
    }
    // Dropping a server stops it: its port refuses connections afterwards.
    let endpoint = a.endpoint().to_owned();
    drop(a);
    let addr = endpoint.trim_start_matches("http://");
    assert!(
        TcpStream::connect(addr).is_err(),
        "{endpoint} still accepts connections"
    );
    Ok(())
}

#[test]
fn unique_names_differ_and_are_valid_resource_names() {
    let names: Vec<String> = (0..100).map(|_| unique_name("t")).collect();
    let mut sorted = names.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted.len(), names.len());
    for name in &names {
        assert!(name.len() <= 80, "{name}");
        assert!(
            name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'),
            "{name}"
        );
    }
}
