//! A `provdb serve` child process on a free loopback port, and a blocking HTTP client for it.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use reqwest::blocking::{Client, RequestBuilder, Response};
use serde_json::{Value, json};

use crate::common::*;

/// A running server; killed when dropped.
pub(crate) struct Served {
    child: Child,
    pub(crate) url: String,
    client: Client,
}

/// `provdb --data DATA serve` on any free loopback port, with `extra` flags.
fn serve_command(data: &Path, extra: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_provdb"));
    command
        .arg("--data")
        .arg(data)
        .args(["serve", "--addr", "127.0.0.1:0"])
        .args(extra);
    command
}

impl Served {
    /// Starts `provdb serve` over `data` with `extra` flags and waits for its address.
    pub(crate) fn start(data: &Path, extra: &[&str]) -> Self {
        Self::spawn(serve_command(data, extra), Stdio::inherit())
    }

    /// [`Served::start`] without models (BM25 search only; chat, embeddings and fine-tuning
    /// answer as they do when no model is there).
    #[allow(
        dead_code,
        reason = "the adversarial binary uses it, the binary binary not yet"
    )]
    pub(crate) fn start_without_models(data: &Path, extra: &[&str]) -> Self {
        let mut command = serve_command(data, extra);
        command.env("PROVDB_MODELS", "/nonexistent/provdb-models");
        Self::spawn(command, Stdio::inherit())
    }

    /// [`Served::start`] with the server's log (its stderr) written to `log`.
    pub(crate) fn start_logging_to(data: &Path, extra: &[&str], log: &Path) -> Self {
        let log = std::fs::File::create(log).unwrap();
        Self::spawn(serve_command(data, extra), log.into())
    }

    /// Starts `provdb serve` over `data` without models (BM25 search only), with every file it
    /// writes limited to `limit_kib` KiB (`RLIMIT_FSIZE`: a write past it fails as on a full
    /// disk).
    pub(crate) fn start_limited(data: &Path, limit_kib: u64) -> Self {
        let mut command = Command::new("bash");
        command
            .arg("-c")
            .arg(format!(
                "trap '' XFSZ; ulimit -f {limit_kib}; exec \"$0\" --data \"$1\" serve --addr 127.0.0.1:0"
            ))
            .arg(env!("CARGO_BIN_EXE_provdb"))
            .arg(data)
            .env("PROVDB_MODELS", "/nonexistent/provdb-models");
        Self::spawn(command, Stdio::inherit())
    }

    fn spawn(mut command: Command, stderr: Stdio) -> Self {
        let mut child = command
            .env_remove("PROVDB_DATA")
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("start provdb serve");
        let stdout = child.stdout.take().unwrap();
        let mut lines = BufReader::new(stdout).lines();
        let url = loop {
            let line = lines
                .next()
                .expect("provdb serve exited before listening")
                .unwrap();
            if let Some(url) = line.strip_prefix("provdb serve: listening on ") {
                break url.trim().to_string();
            }
        };
        // Keep draining stdout so the server never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        let client = Client::builder()
            .timeout(Duration::from_secs(600))
            .build()
            .unwrap();
        Self { child, url, client }
    }

    /// A request to `path`, with `key` as the bearer token when given.
    pub(crate) fn request(&self, method: &str, path: &str, key: Option<&str>) -> RequestBuilder {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let builder = self.client.request(method, format!("{}{path}", self.url));
        match key {
            Some(key) => builder.bearer_auth(key),
            None => builder,
        }
    }

    /// `method path` with an optional JSON body: (status, JSON or text).
    pub(crate) fn call(
        &self,
        method: &str,
        path: &str,
        key: Option<&str>,
        body: Option<&Value>,
    ) -> (u16, Value) {
        let mut request = self.request(method, path, key);
        if let Some(body) = body {
            request = request.json(body);
        }
        read(request.send().unwrap())
    }

    /// Sends SIGTERM and waits for the exit.
    pub(crate) fn terminate(mut self) -> std::process::ExitStatus {
        ok(Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .output()
            .unwrap());
        let status = self.child.wait().unwrap();
        std::mem::forget(self);
        status
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Status and body (JSON when it parses, else the text as a JSON string).
pub(crate) fn read(response: Response) -> (u16, Value) {
    let status = response.status().as_u16();
    let text = response.text().unwrap();
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, body)
}

/// Makes a key with `role` for `address` through the CLI; returns the key.
pub(crate) fn make_key(data: &Path, address: &str, role: &str) -> String {
    let out = json(&ok(provdb(
        data,
        &[
            "key",
            "create",
            "--address",
            address,
            "--role",
            role,
            "--json",
        ],
    )));
    out["key"].as_str().unwrap().to_string()
}

/// Makes the Datanet `d` of three aerodynamics sentences through the API, as `key`'s owner.
pub(crate) fn sample_datanet(served: &Served, key: &str) {
    let (status, body) = served.call(
        "POST",
        "/v1/datanets",
        Some(key),
        Some(&json!({"name": "d"})),
    );
    assert_eq!(status, 201, "{body}");
    let records = [
        "The boundary layer separates behind the shock when the pressure rises.",
        "Transition to turbulence moves upstream as the Reynolds number grows.",
        "Heat transfer to the plate peaks where the boundary layer reattaches.",
    ]
    .map(|t| json!({"text": t}).to_string())
    .join("\n");
    let (status, body) = read(
        served
            .request("POST", "/v1/datanets/d/records?format=jsonl", Some(key))
            .body(records)
            .send()
            .unwrap(),
    );
    assert_eq!(status, 200, "{body}");
}

/// The name of the base model the server generates with.
pub(crate) fn base_model(served: &Served, key: &str) -> String {
    served.call("GET", "/v1/models", Some(key), None).1["data"][0]["id"]
        .as_str()
        .unwrap()
        .to_string()
}

/// Sets Datanet `name`'s price per answer through the API, as its owner's `key`.
pub(crate) fn price_datanet(served: &Served, key: &str, name: &str, wei: u128) {
    let body = json!({"per_answer_wei": wei.to_string()});
    let path = format!("/v1/prices/datanets/{name}");
    let (status, answer) = served.call("PUT", &path, Some(key), Some(&body));
    assert_eq!(status, 200, "{answer}");
}

/// Credits `address` with `wei` through the API, as the admin's `key`.
pub(crate) fn credit(served: &Served, admin: &str, address: &str, wei: u128) {
    let body = json!({"amount_wei": wei.to_string(), "reason": "test funds"});
    let path = format!("/v1/accounts/{address}/credits");
    let (status, answer) = served.call("POST", &path, Some(admin), Some(&body));
    assert_eq!(status, 200, "{answer}");
}
