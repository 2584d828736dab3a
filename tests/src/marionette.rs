//! A small client for Firefox's Marionette protocol (what geckodriver
//! speaks to Firefox): messages are `length:json`, commands
//! `[0, id, name, params]`, answers `[1, id, error, result]`.

use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

pub struct Marionette {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
    next_id: u64,
}

/// A command's failure as Marionette reports it.
#[derive(Debug, Clone)]
pub struct MarionetteError {
    pub error: String,
    pub message: String,
}

impl std::fmt::Display for MarionetteError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.error, self.message)
    }
}

impl Marionette {
    /// Connect to `127.0.0.1:port`, retrying until Firefox listens.
    pub fn connect(port: u16, wait: Duration) -> std::io::Result<Self> {
        let start = Instant::now();
        let stream = loop {
            match TcpStream::connect(("127.0.0.1", port)) {
                Ok(s) => break s,
                Err(e) if start.elapsed() > wait => return Err(e),
                Err(_) => std::thread::sleep(Duration::from_millis(200)),
            }
        };
        stream.set_read_timeout(Some(Duration::from_secs(120)))?;
        let writer = stream.try_clone()?;
        let mut m = Self {
            reader: BufReader::new(stream),
            writer,
            next_id: 1,
        };
        // The greeting: {"applicationType":"gecko","marionetteProtocol":3}.
        let hello = m.read_message()?;
        if hello["applicationType"] != "gecko" {
            return Err(std::io::Error::other(format!("not Marionette: {hello}")));
        }
        Ok(m)
    }

    fn read_message(&mut self) -> std::io::Result<Value> {
        let mut len = Vec::new();
        self.reader.read_until(b':', &mut len)?;
        len.pop();
        let n: usize = std::str::from_utf8(&len)
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .ok_or_else(|| std::io::Error::other("bad Marionette frame length"))?;
        if n > 64 << 20 {
            return Err(std::io::Error::other("Marionette frame too long"));
        }
        let mut body = vec![0; n];
        self.reader.read_exact(&mut body)?;
        serde_json::from_slice(&body).map_err(std::io::Error::other)
    }

    /// Send a command and wait for its answer.
    pub fn cmd(&mut self, name: &str, params: Value) -> Result<Value, MarionetteError> {
        let id = self.next_id;
        self.next_id += 1;
        let body = json!([0, id, name, params]).to_string();
        let io = |e: std::io::Error| MarionetteError {
            error: "io".into(),
            message: e.to_string(),
        };
        self.writer
            .write_all(format!("{}:{body}", body.len()).as_bytes())
            .map_err(io)?;
        loop {
            let m = self.read_message().map_err(io)?;
            if m[0] != 1 || m[1] != id {
                continue;
            }
            if !m[2].is_null() {
                return Err(MarionetteError {
                    error: m[2]["error"].as_str().unwrap_or("?").into(),
                    message: m[2]["message"].as_str().unwrap_or("").into(),
                });
            }
            return Ok(m[3].clone());
        }
    }
}
