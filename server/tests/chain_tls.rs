//! An https RPC endpoint: anvil behind a TLS front (socat with a certificate made here by the
//! openssl command line). With the certificate trusted (`SSL_CERT_FILE`, which OpenSSL reads),
//! deploy and status reach the chain over https; with it untrusted, the call fails as a
//! network error (exit 2) naming the certificate problem, and nothing is recorded.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::anvil::{Anvil, key_file};
use crate::common::*;

struct Front(Child);

impl Drop for Front {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn deploy_and_status_reach_a_chain_over_https() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    ok(Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=DNS:localhost,IP:127.0.0.1",
            "-keyout",
        ])
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .unwrap());
    let anvil = Anvil::start();
    let anvil_port = anvil.url.rsplit(':').next().unwrap().to_string();
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let _front = Front(
        Command::new("socat")
            .arg(format!(
                "OPENSSL-LISTEN:{port},bind=127.0.0.1,reuseaddr,fork,verify=0,cert={},key={}",
                cert.display(),
                key.display()
            ))
            .arg(format!("TCP:127.0.0.1:{anvil_port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("socat (scripts/install-deps.sh installs it)"),
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "socat does not listen");
        std::thread::sleep(Duration::from_millis(20));
    }
    let https = format!("https://localhost:{port}");
    let data = dir.path().join("db");
    ok(provdb(&data, &["init"]));
    let run = |trusted: bool, args: &[&str]| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_provdb"));
        command
            .arg("--data")
            .arg(&data)
            .arg("chain")
            .args(args)
            .env_remove("PROVDB_DATA")
            .env_remove("PROVDB_RPC");
        if trusted {
            command.env("SSL_CERT_FILE", &cert);
        } else {
            command.env("SSL_CERT_FILE", dir.path().join("no-such-bundle.pem"));
        }
        command.output().unwrap()
    };
    let operator = anvil.keys[0].as_str();
    let refused = run(
        false,
        &[
            "deploy",
            "--rpc",
            &https,
            "--key-file",
            &key_file(operator),
            "--json",
        ],
    );
    assert_eq!(refused.status.code(), Some(2), "{}", stderr(&refused));
    assert!(
        stderr(&refused).to_lowercase().contains("certificate"),
        "{}",
        stderr(&refused)
    );
    assert!(
        !data.join("chain.json").exists(),
        "a failed deploy records nothing"
    );
    let deployed = json(&ok(run(
        true,
        &[
            "deploy",
            "--rpc",
            &https,
            "--key-file",
            &key_file(operator),
            "--json",
        ],
    )));
    assert!(deployed["registry"].as_str().unwrap().starts_with("0x"));
    let status = json(&ok(run(true, &["status", "--json"])));
    assert_eq!(status["rpc_url"], https.as_str());
    assert_eq!(status["chain_last_epoch"], 0);
}
