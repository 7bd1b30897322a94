//! SIGKILL of `provdb serve` while clients ask cited questions (the real embedder and
//! generator): after the kill every answer the server acknowledged (200 with its `answer_id`)
//! is in the ledger with all of its entries, no answer is partial, and the hash chain
//! verifies. A trial counts as killed mid-work when a request was sent before the kill and
//! never answered: a generation was in flight when the server died.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use provdb::Db;
use provdb::storage::AnswerId;
use rand::Rng;
use serde_json::json;

use crate::common::*;
use crate::ledger_check::check_whole_answers;
use crate::served::*;
use crate::trials::{Minimum, Report, trials};

const CLIENTS: usize = 2;

/// What one client saw: the answers acknowledged, and when the request the server never
/// answered was sent.
struct Asked {
    acknowledged: Vec<String>,
    unanswered_sent_at: Option<Instant>,
}

/// Asks until the server stops answering; counts each acknowledged answer in `answered` as it
/// comes.
fn ask_until_down(
    url: String,
    key: String,
    model: String,
    client: usize,
    answered: Arc<AtomicUsize>,
) -> Asked {
    let http = reqwest::blocking::Client::new();
    let mut acknowledged = Vec::new();
    let mut unanswered_sent_at = None;
    for n in 0.. {
        let question = format!("Why does the boundary layer separate? ({client}/{n})");
        let sent_at = Instant::now();
        let sent = http
            .post(format!("{url}/v1/chat/completions"))
            .bearer_auth(&key)
            .json(
                &json!({"model": model, "max_tokens": 6, "datanets": ["d"], "k": 2,
                "messages": [{"role": "user", "content": question}]}),
            )
            .send();
        let Some(text) = sent.and_then(|response| response.text()).ok() else {
            unanswered_sent_at = Some(sent_at);
            break;
        };
        if let Ok(body) = serde_json::from_str::<serde_json::Value>(&text)
            && let Some(id) = body["answer_id"].as_str()
        {
            acknowledged.push(id.to_string());
            answered.fetch_add(1, Ordering::SeqCst);
        }
    }
    Asked {
        acknowledged,
        unanswered_sent_at,
    }
}

/// Waits until the clients have had an answer acknowledged (the server loaded its models and
/// committed one), for at most five minutes.
fn wait_for_an_answer(answered: &AtomicUsize) {
    let deadline = Instant::now() + Duration::from_secs(300);
    while answered.load(Ordering::SeqCst) == 0 {
        assert!(Instant::now() < deadline, "no answer in five minutes");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn setup(data: &Path) -> String {
    ok(provdb(data, &["init"]));
    let key = make_key(data, ALICE, "curator");
    ok(provdb(
        data,
        &["account", "credit", ALICE, CREDIT, "--reason", "test funds"],
    ));
    let served = Served::start(data, &[]);
    sample_datanet(&served, &key);
    price_datanet(&served, &key, "d", PRICE_WEI);
    assert!(served.terminate().success());
    key
}

/// The asker's credit, and the Datanet's price per answer.
const CREDIT: &str = "1000000000000";
const PRICE_WEI: u128 = 1000;

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
        let answered = Arc::new(AtomicUsize::new(0));
        let clients: Vec<_> = (0..CLIENTS)
            .map(|client| {
                let (url, key, model) = (served.url.clone(), key.clone(), model.clone());
                let answered = Arc::clone(&answered);
                std::thread::spawn(move || ask_until_down(url, key, model, client, answered))
            })
            .collect();
        // Every third trial is killed only after an answer was acknowledged, so that the
        // check of acknowledged answers never runs empty.
        if trial % 3 == 2 {
            wait_for_an_answer(&answered);
            std::thread::sleep(Duration::from_millis(rng.random_range(0..1500)));
        } else {
            std::thread::sleep(Duration::from_millis(rng.random_range(500..6000)));
        }
        let killed_at = Instant::now();
        drop(served); // SIGKILL
        let asked: Vec<Asked> = clients.into_iter().map(|c| c.join().unwrap()).collect();
        // Sent before the kill and never answered: the server died with it in flight.
        let in_flight = asked
            .iter()
            .filter(|a| a.unanswered_sent_at.is_some_and(|sent| sent < killed_at))
            .count();
        let acknowledged: Vec<String> = asked.into_iter().flat_map(|a| a.acknowledged).collect();
        let answers = check_whole_answers(&data);
        assert!(
            answers >= acknowledged.len(),
            "{answers} < {}",
            acknowledged.len()
        );
        let db = Db::open(&data).unwrap();
        // Every answer that survived was charged once, and nothing else was.
        let (account, _) = db.account(&ALICE.parse().unwrap()).unwrap();
        assert_eq!(account.charged_wei, PRICE_WEI * answers as u128);
        assert_eq!(
            account.balance_wei + account.charged_wei,
            account.credited_wei
        );
        for id in &acknowledged {
            let id: AnswerId = id.parse().unwrap();
            assert!(
                db.store().answer(&id).unwrap().is_some(),
                "acknowledged {id:?} lost"
            );
        }
        report.acknowledged_checked += acknowledged.len() as u64;
        report.whole_checked += answers as u64;
        report.interrupted += usize::from(in_flight > 0);
        eprintln!(
            "trial {trial}: {} acknowledged, {answers} stored, {in_flight} requests in flight at \
             the kill",
            acknowledged.len()
        );
        drop(db);
        std::fs::remove_dir_all(&data).unwrap();
    }
    let trials = report.trials;
    report.finish(Minimum {
        interrupted: trials.div_ceil(2),
        acknowledged_checked: u64::from(trials >= 3),
    });
}
