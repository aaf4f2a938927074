//! A scripted HTTP/1.1 server on loopback: answers each request with the next response of a
//! script (or hangs, or writes a chunked body with pauses), and records what it was sent. Used
//! to put real faults on the wire — throttling, 5xx, timeouts, stalled streams — where moto
//! cannot make them.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

/// One scripted answer.
#[derive(Debug, Clone)]
pub enum Reply {
    /// A full response.
    Respond {
        status: u16,
        headers: Vec<(String, String)>,
        body: String,
    },
    /// A chunked body written step by step (one write a chunk, pauses between), then ended.
    Chunked {
        status: u16,
        content_type: String,
        steps: Vec<Step>,
    },
    /// Read the request, then say nothing for this long (a hung server).
    Hang(Duration),
}

/// One step of a [`Reply::Chunked`] body.
#[derive(Debug, Clone)]
pub enum Step {
    /// Write one chunk of the chunked body.
    Chunk(String),
    Sleep(Duration),
}

impl Reply {
    /// A JSON response.
    pub fn json(status: u16, content_type: &str, body: &str) -> Self {
        Reply::Respond {
            status,
            headers: vec![("content-type".into(), content_type.into())],
            body: body.into(),
        }
    }
}

/// A request as received.
#[derive(Debug, Clone)]
pub struct Received {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Received {
    /// A header's value (case-insensitive name).
    pub fn header(&self, name: &str) -> Option<&str> {
        header(&self.headers, name)
    }
}

/// The value of header `name` (case-insensitive) among `headers`.
pub fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// The server; it stops answering when dropped (its thread ends with the process).
pub struct ScriptedServer {
    url: String,
    received: Arc<Mutex<Vec<Received>>>,
}

impl ScriptedServer {
    /// Starts a server answering with `script` in order; once the script is used up, every
    /// further request gets `then`.
    pub fn start(script: Vec<Reply>, then: Reply) -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let url = format!("http://{}", listener.local_addr()?);
        let received = Arc::new(Mutex::new(Vec::new()));
        let script = Arc::new(Mutex::new(script.into_iter()));
        let log = Arc::clone(&received);
        thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let script = Arc::clone(&script);
                let log = Arc::clone(&log);
                let then = then.clone();
                thread::spawn(move || serve(stream, &script, &log, &then));
            }
        });
        Ok(Self { url, received })
    }

    /// Base URL, `http://127.0.0.1:PORT`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The requests received so far.
    pub fn received(&self) -> Vec<Received> {
        self.received.lock().map(|r| r.clone()).unwrap_or_default()
    }
}

type Script = Mutex<std::vec::IntoIter<Reply>>;

fn serve(stream: TcpStream, script: &Script, log: &Mutex<Vec<Received>>, then: &Reply) {
    let Ok(read_half) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(read_half);
    let mut out = stream;
    let _ = out.set_nodelay(true);
    // Keep-alive: one connection may carry several requests.
    while let Some(req) = read_request(&mut reader) {
        if let Ok(mut l) = log.lock() {
            l.push(req);
        }
        let reply = script
            .lock()
            .ok()
            .and_then(|mut s| s.next())
            .unwrap_or_else(|| then.clone());
        match reply {
            Reply::Hang(d) => {
                thread::sleep(d);
                return;
            }
            Reply::Respond {
                status,
                headers,
                body,
            } => {
                let mut head = format!("HTTP/1.1 {status} X\r\ncontent-length: {}\r\n", body.len());
                for (k, v) in headers {
                    head.push_str(&format!("{k}: {v}\r\n"));
                }
                head.push_str("\r\n");
                if out.write_all(head.as_bytes()).is_err()
                    || out.write_all(body.as_bytes()).is_err()
                {
                    return;
                }
                let _ = out.flush();
            }
            Reply::Chunked {
                status,
                content_type,
                steps,
            } => {
                if !write_chunked(&mut out, status, &content_type, steps) {
                    return;
                }
            }
        }
    }
}

/// Writes a chunked response step by step; false when the peer has gone.
fn write_chunked(out: &mut TcpStream, status: u16, content_type: &str, steps: Vec<Step>) -> bool {
    let head = format!(
        "HTTP/1.1 {status} X\r\ncontent-type: {content_type}\r\ntransfer-encoding: chunked\r\n\r\n"
    );
    if out.write_all(head.as_bytes()).is_err() {
        return false;
    }
    let _ = out.flush();
    for step in steps {
        match step {
            Step::Sleep(d) => thread::sleep(d),
            Step::Chunk(c) => {
                let framed = format!("{:x}\r\n{c}\r\n", c.len());
                if out.write_all(framed.as_bytes()).is_err() {
                    return false;
                }
                let _ = out.flush();
            }
        }
    }
    out.write_all(b"0\r\n\r\n").is_ok() && out.flush().is_ok()
}

fn read_request(reader: &mut BufReader<TcpStream>) -> Option<Received> {
    let mut line = String::new();
    if reader.read_line(&mut line).ok()? == 0 {
        return None;
    }
    let mut parts = line.split_whitespace();
    let method = parts.next()?.to_string();
    let path = parts.next()?.to_string();
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).ok()? == 0 {
            return None;
        }
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.push((k.trim().to_string(), v.trim().to_string()));
        }
    }
    let len = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse::<usize>().ok())
        .unwrap_or(0);
    let mut body = vec![0; len];
    reader.read_exact(&mut body).ok()?;
    Some(Received {
        method,
        path,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    })
}
