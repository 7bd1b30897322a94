//! SIGKILL of `provdb serve` while clients ask cited questions (the real embedder and
//! generator): after the kill every answer the server acknowledged (200 with its `answer_id`)
//! is in the ledger with all of its entries, no answer is partial, and the hash chain
//! verifies.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use provdb::Db;
use provdb::storage::AnswerId;
use rand::Rng;
use serde_json::json;

use crate::common::*;
use crate::ledger_check::check_whole_answers;
use crate::served::*;
use crate::trials::{Report, trials};

const CLIENTS: usize = 2;

/// Asks until the server stops answering; returns the acknowledged answer ids.
fn ask_until_down(url: String, key: String, model: String, client: usize) -> Vec<String> {
    let http = reqwest::blocking::Client::new();
    let mut acknowledged = Vec::new();
    for n in 0.. {
        let question = format!("Why does the boundary layer separate? ({client}/{n})");
        let sent = http
            .post(format!("{url}/v1/chat/completions"))
            .bearer_auth(&key)
            .json(
                &json!({"model": model, "max_tokens": 6, "datanets": ["d"], "k": 2,
                "fee_wei": "1000", "messages": [{"role": "user", "content": question}]}),
            )
            .send();
        let Ok(response) = sent else { break };
        let Ok(text) = response.text() else { break };
        if let Ok(body) = serde_json::from_str::<serde_json::Value>(&text)
            && let Some(id) = body["answer_id"].as_str()
        {
            acknowledged.push(id.to_string());
        }
    }
    acknowledged
}

fn setup(data: &Path) -> String {
    ok(provdb(data, &["init"]));
    let key = make_key(data, ALICE, "curator");
    let served = Served::start(data, &[]);
    sample_datanet(&served, &key);
    assert!(served.terminate().success());
    key
}

#[test]
fn sigkill_of_the_server_keeps_every_acknowledged_answer_whole() {
    let dir = tempfile::tempdir().unwrap();
    let template = dir.path().join("template");
    let key = setup(&template);
    let mut rng = rand::rng();
    let mut report = Report::new("served_answers", trials(3));
    for trial in 0..report.trials {
        let data = dir.path().join(format!("trial-{trial}"));
        crate::common::copy_dir(&template, &data);
        let served = Served::start(&data, &[]);
        let model = base_model(&served, &key);
        let acknowledged = Arc::new(Mutex::new(Vec::new()));
        let clients: Vec<_> = (0..CLIENTS)
            .map(|client| {
                let (url, key, model) = (served.url.clone(), key.clone(), model.clone());
                let acknowledged = acknowledged.clone();
                std::thread::spawn(move || {
                    let ids = ask_until_down(url, key, model, client);
                    acknowledged.lock().unwrap().extend(ids);
                })
            })
            .collect();
        std::thread::sleep(Duration::from_millis(rng.random_range(500..6000)));
        drop(served); // SIGKILL
        for client in clients {
            client.join().unwrap();
        }
        let acknowledged = acknowledged.lock().unwrap().clone();
        let answers = check_whole_answers(&data);
        assert!(
            answers >= acknowledged.len(),
            "{answers} < {}",
            acknowledged.len()
        );
        let db = Db::open(&data).unwrap();
        for id in &acknowledged {
            let id: AnswerId = id.parse().unwrap();
            assert!(
                db.store().answer(&id).unwrap().is_some(),
                "acknowledged {id:?} lost"
            );
        }
        report.acknowledged_checked += acknowledged.len() as u64;
        report.whole_checked += answers as u64;
        report.interrupted += 1;
        eprintln!(
            "trial {trial}: {} acknowledged, {answers} stored",
            acknowledged.len()
        );
        drop(db);
        std::fs::remove_dir_all(&data).unwrap();
    }
    report.finish();
}
