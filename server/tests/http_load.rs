//! A bounded load test: 32 concurrent clients mix search, SQL and cited chat against
//! `provdb serve` on loopback (real SmolLM2 and MiniLM) for 60 s (`PROVDB_LOAD_SECONDS`).
//! No response may be a 5xx (429s are the gate doing its job); latency p50/p99 per route is
//! printed; afterwards the ledger holds exactly the fees of the answers that succeeded (the
//! Datanet's price, charged to each reader's prepaid account), and its hash chain verifies.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::json;

use crate::common::*;
use crate::served::*;

const CLIENTS: usize = 32;
const FEE_WEI: u128 = 1_000;

#[derive(Default)]
struct Tally {
    latency_ms: BTreeMap<&'static str, Vec<f64>>,
    statuses: BTreeMap<(&'static str, u16), usize>,
    fees_of_answers: u128,
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

#[test]
fn thirty_two_clients_get_no_5xx_and_the_ledger_holds_every_answered_fee() {
    let seconds: u64 = std::env::var("PROVDB_LOAD_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60);
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("db");
    ok(provdb(&data, &["init"]));
    let curator = make_key(&data, ALICE, "curator");
    let admin = make_key(&data, "0xaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "admin");
    let reader_address = |i: usize| format!("0x{:040x}", 0x1000 + i);
    let readers: Vec<String> = (0..CLIENTS)
        .map(|i| make_key(&data, &reader_address(i), "reader"))
        .collect();
    let served = Arc::new(Served::start(&data, &["--rate", "1000", "--burst", "1000"]));
    for i in 0..CLIENTS {
        credit(&served, &admin, &reader_address(i), 1 << 40);
    }
    assert_eq!(
        served
            .call(
                "POST",
                "/v1/datanets",
                Some(&curator),
                Some(&json!({"name": "loadnet"}))
            )
            .0,
        201
    );
    let topics = [
        "boundary layer",
        "shock wave",
        "heat transfer",
        "wing lift",
        "jet noise",
    ];
    let rows: String = (0..200)
        .map(|i| {
            let t = topics[i % topics.len()];
            json!({"text": format!("Record {i}: measurements of the {t} on model {i} in the tunnel.")})
                .to_string()
                + "\n"
        })
        .collect();
    let (status, body) = read(
        served
            .request(
                "POST",
                "/v1/datanets/loadnet/records?format=jsonl",
                Some(&curator),
            )
            .body(rows)
            .send()
            .unwrap(),
    );
    assert_eq!(status, 200, "{body}");
    price_datanet(&served, &curator, "loadnet", FEE_WEI);
    // Index before the clock starts (the first search would do it otherwise).
    assert_eq!(
        served
            .call(
                "POST",
                "/v1/search",
                Some(&curator),
                Some(&json!({"datanet": "loadnet", "query": "wing"}))
            )
            .0,
        200
    );
    let model = served.call("GET", "/v1/models", Some(&curator), None).1["data"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();

    let tally = Arc::new(Mutex::new(Tally::default()));
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let threads: Vec<_> = readers
        .into_iter()
        .enumerate()
        .map(|(client, key)| {
            let served = Arc::clone(&served);
            let tally = Arc::clone(&tally);
            let model = model.clone();
            std::thread::spawn(move || {
                let mut turn = client;
                while Instant::now() < deadline {
                    let topic = topics[turn % topics.len()];
                    let (route, path, body) = match turn % 3 {
                        0 => ("search", "/v1/search", json!({"datanet": "loadnet", "query": topic, "k": 5})),
                        1 => ("sql", "/v1/sql", json!({"query": "SELECT contributor, count(*) AS n, avg(length(text)) AS len FROM records GROUP BY contributor"})),
                        _ => ("chat", "/v1/chat/completions", json!({
                            "model": model, "max_tokens": 8, "datanets": ["loadnet"], "k": 2,
                            "messages": [{"role": "user", "content": format!("What was measured about the {topic}?")}]})),
                    };
                    turn += 1;
                    let started = Instant::now();
                    let (status, answer) = served.call("POST", path, Some(&key), Some(&body));
                    let ms = started.elapsed().as_secs_f64() * 1e3;
                    assert!(status < 500, "{route}: {status} {answer}");
                    let mut tally = tally.lock().unwrap();
                    *tally.statuses.entry((route, status)).or_default() += 1;
                    if status == 200 {
                        tally.latency_ms.entry(route).or_default().push(ms);
                        if route == "chat" {
                            let split: u128 = answer["split"].as_array().unwrap().iter()
                                .map(|p| p["amount_wei"].as_str().unwrap().parse::<u128>().unwrap())
                                .sum();
                            assert_eq!(split, FEE_WEI);
                            tally.fees_of_answers += FEE_WEI;
                        }
                    }
                    if status == 429 {
                        std::thread::sleep(Duration::from_millis(200));
                    }
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
    let tally = tally.lock().unwrap();
    eprintln!("load test: {CLIENTS} clients, {seconds} s");
    for (route, latencies) in &tally.latency_ms {
        let mut sorted = latencies.clone();
        sorted.sort_by(f64::total_cmp);
        eprintln!(
            "  {route:6} ok {:5}  p50 {:8.1} ms  p99 {:8.1} ms",
            sorted.len(),
            percentile(&sorted, 0.5),
            percentile(&sorted, 0.99)
        );
    }
    eprintln!("  statuses: {:?}", tally.statuses);
    for route in ["search", "sql", "chat"] {
        assert!(
            tally.latency_ms.get(route).is_some_and(|l| !l.is_empty()),
            "no {route} succeeded"
        );
    }
    let (status, total) = served.call("POST", "/v1/sql", Some(&admin),
        Some(&json!({"query": "SELECT CAST(coalesce(sum(amount_wei), 0) AS VARCHAR) AS total, count(DISTINCT answer_id) AS answers FROM attributions WHERE role NOT IN ('credit', 'charge')"})));
    assert_eq!(status, 200, "{total}");
    let recorded: u128 = total["rows"][0]["total"].as_str().unwrap().parse().unwrap();
    assert_eq!(
        recorded, tally.fees_of_answers,
        "ledger total vs fees of answered requests"
    );
    let (status, charged) = served.call(
        "POST",
        "/v1/sql",
        Some(&admin),
        Some(
            &json!({"query": "SELECT CAST(sum(charged_wei) AS VARCHAR) AS charged FROM accounts"}),
        ),
    );
    assert_eq!(status, 200, "{charged}");
    assert_eq!(
        charged["rows"][0]["charged"].as_str().unwrap(),
        tally.fees_of_answers.to_string(),
        "the readers' accounts were charged exactly the fees of the answered requests"
    );
    let (_, verify) = served.call("GET", "/v1/ledger/verify", Some(&admin), None);
    assert_eq!(verify["ok"], true, "{verify}");
}
