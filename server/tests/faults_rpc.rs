//! A failing, slow and stalled RPC endpoint for `provdb chain sync`, through a proxy in front
//! of a real anvil that, request by request, drops the connection without an answer (the
//! request may or may not have reached the node), answers late, or answers. Deposits sent
//! through it are paid exactly once each; sync retries and finishes with every deposit
//! credited exactly once and every epoch and batch on chain exactly once; a dead or stalled
//! endpoint ends in a clear error within the retry budget, the local ledger untouched.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::anvil::*;
use crate::common::*;

/// What the proxy does with one request.
#[derive(Clone, Copy)]
enum Fate {
    /// Forward it, then close the connection before the answer (the node did the work).
    LoseAnswer,
    /// Close the connection without forwarding.
    Drop,
    /// Forward it and answer after a delay.
    Late,
    /// Forward it and answer.
    Answer,
    /// Never answer, keep the connection open.
    Stall,
}

/// A proxy to `upstream`; `fate(n)` decides request `n`. One request per connection (it
/// forwards with `Connection: close`), so each request meets its own fate.
fn proxy(upstream: String, fate: fn(u64) -> Fate) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let counter = Arc::new(AtomicU64::new(0));
    std::thread::spawn(move || {
        for client in listener.incoming().flatten() {
            let n = counter.fetch_add(1, Ordering::SeqCst);
            let upstream = upstream.clone();
            std::thread::spawn(move || serve_one(client, &upstream, fate(n)));
        }
    });
    url
}

fn serve_one(mut client: TcpStream, upstream: &str, fate: Fate) {
    let Some(request) = read_request(&client) else {
        return;
    };
    match fate {
        Fate::Drop => return,
        Fate::Stall => {
            std::thread::sleep(Duration::from_secs(120));
            return;
        }
        Fate::Late => std::thread::sleep(Duration::from_millis(1500)),
        Fate::LoseAnswer | Fate::Answer => {}
    }
    let address = upstream.trim_start_matches("http://");
    let Ok(mut node) = TcpStream::connect(address) else {
        return;
    };
    if node.write_all(&request).is_err() {
        return;
    }
    let mut answer = Vec::new();
    let _ = node.read_to_end(&mut answer);
    if !matches!(fate, Fate::LoseAnswer) {
        let _ = client.write_all(&answer);
    }
    let _ = client.shutdown(Shutdown::Both);
}

/// One HTTP/1.1 request, re-headed with `Connection: close`.
fn read_request(client: &TcpStream) -> Option<Vec<u8>> {
    let mut reader = BufReader::new(client.try_clone().ok()?);
    let mut head = String::new();
    let mut length = 0usize;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).ok()? == 0 {
            return None;
        }
        if line == "\r\n" {
            break;
        }
        let lower = line.to_ascii_lowercase();
        if let Some(value) = lower.strip_prefix("content-length:") {
            length = value.trim().parse().ok()?;
        }
        if !lower.starts_with("connection:") {
            head.push_str(&line);
        }
    }
    head.push_str("Connection: close\r\n\r\n");
    let mut body = vec![0u8; length];
    reader.read_exact(&mut body).ok()?;
    let mut request = head.into_bytes();
    request.extend_from_slice(&body);
    Some(request)
}

/// Of every 16 requests (scrambled), one loses its answer, one is dropped, two answer late.
fn flaky(n: u64) -> Fate {
    match n.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 60 {
        0 => Fate::LoseAnswer,
        1 => Fate::Drop,
        2..=3 => Fate::Late,
        _ => Fate::Answer,
    }
}

fn stalled(_: u64) -> Fate {
    Fate::Stall
}

/// Deposits sent straight to the node by [`synced_later`] (from anvil accounts 4-6, each for
/// the next account), enough to fund its epochs.
const DIRECT_DEPOSITS: u128 = 3;
const DIRECT_DEPOSIT_WEI: u128 = 30_000;

/// A database with `epochs` closed epochs and as many ingest batches, contracts deployed, and
/// [`DIRECT_DEPOSITS`] deposits on chain that fund them, not credited yet.
fn synced_later(anvil: &Anvil, dir: &std::path::Path, epochs: u64) -> std::path::PathBuf {
    let data = dir.join("db");
    ok(provdb(&data, &["init"]));
    ok(provdb(&data, &["datanet", "create", "aero"]));
    for n in 1..=epochs {
        ingest(&data, dir, "aero", &[&format!("batch {n} text")]);
        let payments: Vec<(&str, u128)> = anvil.accounts[1..4]
            .iter()
            .enumerate()
            .map(|(i, a)| (a.as_str(), u128::from(n) * 1000 + i as u128))
            .collect();
        assert_eq!(pay_and_close(&data, &payments, n), n);
    }
    let deployed = deploy(&data, anvil);
    let distributor = deployed["distributor"].as_str().unwrap();
    for i in 0..DIRECT_DEPOSITS as usize {
        anvil.send_deposit(
            distributor,
            &anvil.accounts[4 + i],
            &anvil.accounts[5 + i],
            DIRECT_DEPOSIT_WEI,
        );
    }
    data
}

#[test]
fn sync_through_a_flaky_slow_rpc_finishes_exactly_once() {
    let anvil = Anvil::start();
    let dir = tempfile::tempdir().unwrap();
    let epochs = 5;
    let data = synced_later(&anvil, dir.path(), epochs);
    let ledger_before = json(&ok(provdb(&data, &["ledger", "verify", "--json"])));
    let flaky_url = proxy(anvil.url.clone(), flaky);
    let operator = anvil.keys[0].as_str();

    // Deposits through the proxy: each command pays exactly once, whatever answers it lost
    // (the deposit is signed before it is broadcast, and a retry sends the same bytes).
    let through_proxy = 4u64;
    let depositor = anvil.keys[8].as_str();
    for n in 0..through_proxy {
        let out = chain(
            &data,
            &anvil,
            &[
                "deposit",
                &anvil.accounts[9],
                &(1_000 + u128::from(n)).to_string(),
                "--key-file",
                &key_file(depositor),
                "--rpc",
                &flaky_url,
                "--attempts",
                "12",
                "--timeout",
                "5",
                "--json",
            ],
        );
        let deposit = json(&ok(out));
        assert_eq!(deposit["amount_wei"], (1_000 + u128::from(n)).to_string());
    }
    let on_chain = chain_deposits(&anvil, &status_distributor(&data, &anvil));
    assert_eq!(
        on_chain.len() as u64,
        DIRECT_DEPOSITS as u64 + through_proxy,
        "each deposit command paid once"
    );
    let args = [
        "sync",
        "--key-file",
        &key_file(operator),
        "--rpc",
        &flaky_url,
        "--attempts",
        "12",
        "--timeout",
        "5",
        "--json",
    ];
    // A run may still give up after its attempts; the next one takes over where it stopped.
    let mut runs = 0;
    let synced = loop {
        runs += 1;
        let out = chain(&data, &anvil, &args);
        if out.status.success() {
            break json(&out);
        }
        assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
        assert!(runs < 6, "sync never finished: {}", stderr(&out));
    };
    assert_eq!(synced["chain_last_epoch"], epochs, "{synced}");
    let status = json(&ok(chain(&data, &anvil, &["status", "--json"])));
    assert_eq!(status["pending_batches"], 0, "{status}");
    let distributor = status["distributor"].as_str().unwrap();
    let logs = anvil.event_logs(distributor, EPOCH_POSTED);
    assert_eq!(logs.len() as u64, epochs, "each epoch posted once");
    let total = last_epoch_total(&data);
    assert_eq!(
        anvil.read_u128(distributor, "lastTotal()(uint128)", &[]),
        total
    );
    // Every deposit credited once, to the account its event names.
    assert_eq!(check_credited_once(&data, &on_chain), on_chain.len());
    let deposited: u128 = on_chain.iter().map(|d| d.amount).sum();
    assert_eq!(
        anvil.balance(distributor),
        deposited,
        "paid in exactly once"
    );
    assert_eq!(status["deposits"]["uncredited_deposits"], 0, "{status}");
    let ledger_after = json(&ok(provdb(&data, &["ledger", "verify", "--json"])));
    assert_eq!(ledger_after["ok"], true, "{ledger_after}");
    assert_eq!(
        ledger_after["entries"].as_u64().unwrap(),
        ledger_before["entries"].as_u64().unwrap() + on_chain.len() as u64,
        "one credit entry per deposit, nothing else: {ledger_before} -> {ledger_after}"
    );
    eprintln!("flaky RPC: finished in {runs} run(s)");
}

/// The distributor's address, from `chain status` (straight to the node).
fn status_distributor(data: &std::path::Path, anvil: &Anvil) -> String {
    let status = json(&ok(chain(data, anvil, &["status", "--json"])));
    status["distributor"].as_str().unwrap().to_string()
}

#[test]
fn a_dead_or_stalled_rpc_ends_in_a_clear_error_and_changes_nothing() {
    let anvil = Anvil::start();
    let dir = tempfile::tempdir().unwrap();
    let data = synced_later(&anvil, dir.path(), 2);
    let ledger_before = json(&ok(provdb(&data, &["ledger", "verify", "--json"])));
    let operator = anvil.keys[0].as_str();
    let dead_port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dead_url = format!("http://127.0.0.1:{dead_port}");
    let stalled_url = proxy(anvil.url.clone(), stalled);
    for (url, cause) in [
        (&dead_url, "after 2 attempt"),
        (&stalled_url, "after 2 attempt"),
    ] {
        let started = Instant::now();
        let out = chain(
            &data,
            &anvil,
            &[
                "sync",
                "--key-file",
                &key_file(operator),
                "--rpc",
                url,
                "--attempts",
                "2",
                "--timeout",
                "2",
            ],
        );
        assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
        assert!(stderr(&out).contains(cause), "{}", stderr(&out));
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "{:?}",
            started.elapsed()
        );
    }
    let status = json(&ok(chain(&data, &anvil, &["status", "--json"])));
    assert_eq!(status["chain_last_epoch"], 0, "{status}");
    let ledger_after = json(&ok(provdb(&data, &["ledger", "verify", "--json"])));
    assert_eq!(ledger_before, ledger_after);
}
