//! A client who wants free service: uploads that decode to far more than their size, SQL that
//! would hold memory or a worker for ever, and more concurrent SQL or searches than the
//! server runs. Each is refused with a clear 413, 400 or 429 naming its limit; the victim's
//! records are unchanged and the victim's own requests are served meanwhile.

use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow_array::{ArrayRef, DictionaryArray, Int32Array, RecordBatch, StringArray};
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;
use serde_json::{Value, json};

use crate::common::*;
use crate::served::*;

const VICTIM: &str = "0x2222222222222222222222222222222222222222";
const ATTACKER: &str = "0x6666666666666666666666666666666666666666";

/// A database with the victim's Datanet `d` of `records` short records (ingested by the CLI,
/// not indexed yet), a curator key of the victim's and a contributor key of the attacker's.
fn setup(dir: &std::path::Path, records: usize) -> (std::path::PathBuf, String, String) {
    let data = dir.join("db");
    ok(provdb(&data, &["init"]));
    ok(provdb_without_models(&data, &["datanet", "create", "d"]));
    let input = dir.join("victim.jsonl");
    let lines: String = (0..records)
        .map(|i| {
            json!({"text": format!("boundary layer note {i}"), "contributor": VICTIM}).to_string()
                + "\n"
        })
        .collect();
    std::fs::write(&input, lines).unwrap();
    ok(provdb_without_models(
        &data,
        &["ingest", "d", input.to_str().unwrap(), "--no-index"],
    ));
    let victim = make_key(&data, VICTIM, "curator");
    let attacker = make_key(&data, ATTACKER, "contributor");
    (data, victim, attacker)
}

/// What the victim's Datanet holds (records, chunks, bytes, last sequence).
fn holdings(served: &Served, key: &str) -> Vec<Value> {
    let (status, body) = served.call("GET", "/v1/datanets/d", Some(key), None);
    assert_eq!(status, 200, "{body}");
    ["records", "chunks", "content_bytes", "last_sequence"]
        .iter()
        .map(|field| body[field].clone())
        .collect()
}

fn upload(served: &Served, key: &str, format: &str, body: Vec<u8>) -> (u16, Value) {
    read(
        served
            .request(
                "POST",
                &format!("/v1/datanets/d/records?format={format}"),
                Some(key),
            )
            .body(body)
            .send()
            .unwrap(),
    )
}

fn message(body: &Value) -> String {
    body["error"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// `header` and then 5,000 lines made by `line`.
fn lines(header: &str, line: impl Fn(usize) -> String) -> Vec<u8> {
    let body: String = (0..5_000).map(line).collect();
    format!("{header}{body}").into_bytes()
}

/// A Parquet file of `rows` rows all holding `text`, zstd-compressed.
fn parquet(rows: usize, text: &str, dictionary: bool) -> Vec<u8> {
    // A dictionary array of one value: the bomb is never built whole here.
    let keys = Int32Array::from(vec![0; rows]);
    let values = Arc::new(StringArray::from(vec![text]));
    let column: ArrayRef = Arc::new(DictionaryArray::try_new(keys, values).unwrap());
    let batch = RecordBatch::try_from_iter([("text", column)]).unwrap();
    let properties = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::default()))
        .set_dictionary_enabled(dictionary)
        .build();
    let mut bytes = Vec::new();
    let mut writer = ArrowWriter::try_new(&mut bytes, batch.schema(), Some(properties)).unwrap();
    writer.write(&batch).unwrap();
    writer.close().unwrap();
    bytes
}

#[test]
fn upload_bombs_are_refused_with_413_naming_the_limit_and_store_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (data, victim, attacker) = setup(dir.path(), 5);
    let served = Served::start_without_models(
        &data,
        &[
            "--max-upload-decoded-mb",
            "8",
            "--max-upload-rows",
            "2000",
            "--max-record-bytes",
            "65536",
        ],
    );
    let before = holdings(&served, &victim);
    let bombs: [(&str, Vec<u8>, &str); 4] = [
        // One 256 KiB value in the dictionary on 1,500 rows: 384 MiB decoded from a few KiB.
        (
            "parquet",
            parquet(1_500, &"a".repeat(256 << 10), true),
            "decodes to more than 8388608 bytes",
        ),
        // 48 plain rows of 512 KiB of one byte: 24 MiB of pages from a few KiB.
        (
            "parquet",
            parquet(48, &"b".repeat(512 << 10), false),
            "pages decompress to",
        ),
        // 5,000 rows of a few bytes each.
        (
            "csv",
            lines("text\n", |i| format!("c{i}\n")),
            "more than 2000 rows",
        ),
        (
            "jsonl",
            lines("", |i| format!("{{\"text\":\"j{i}\"}}\n")),
            "more than 2000 rows",
        ),
    ];
    for (format, bytes, names) in bombs {
        assert!(
            bytes.len() < 1 << 20,
            "a bomb is small: {} bytes",
            bytes.len()
        );
        let (status, body) = upload(&served, &attacker, format, bytes);
        assert_eq!(status, 413, "{format}: {body}");
        let message = message(&body);
        assert!(message.contains(names), "{format}: {message}");
        assert!(
            message.contains("--max-upload-decoded-mb") || message.contains("--max-upload-rows"),
            "names the setting: {message}"
        );
        assert!(
            !message.contains(&data.display().to_string()),
            "no server path: {message}"
        );
        assert_eq!(
            holdings(&served, &victim),
            before,
            "{format}: nothing stored"
        );
    }
    // A Parquet row over the row limit is an invalid row like any other: named, nothing
    // stored; with skip_invalid, listed and the rest stored.
    let one_big_row = || {
        let column: ArrayRef = Arc::new(StringArray::from(vec![
            "a fine row".to_string(),
            "y".repeat(100_000),
        ]));
        let batch = RecordBatch::try_from_iter([("text", column)]).unwrap();
        let mut bytes = Vec::new();
        let mut writer = ArrowWriter::try_new(&mut bytes, batch.schema(), None).unwrap();
        writer.write(&batch).unwrap();
        writer.close().unwrap();
        bytes
    };
    let (status, body) = upload(&served, &attacker, "parquet", one_big_row());
    assert_eq!(status, 400, "{body}");
    let text = message(&body);
    assert!(text.contains("row 2"), "{text}");
    assert!(
        text.contains("over the limit of 65536 bytes per row"),
        "{text}"
    );
    assert!(text.contains("--max-record-bytes"), "{text}");
    assert_eq!(holdings(&served, &victim), before, "nothing stored");
    let (status, body) = read(
        served
            .request(
                "POST",
                "/v1/datanets/d/records?format=parquet&skip_invalid=true",
                Some(&attacker),
            )
            .body(one_big_row())
            .send()
            .unwrap(),
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        (body["accepted"].clone(), body["rejected"].clone()),
        (json!(1), json!(1))
    );
    assert!(
        body["rejects"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("per row"),
        "{body}"
    );

    // The attacker's upload within the limits is served, and the victim's records are still
    // all there.
    let (status, body) = upload(
        &served,
        &attacker,
        "jsonl",
        b"{\"text\":\"fine\"}\n".to_vec(),
    );
    assert_eq!(status, 200, "{body}");
    let (status, body) = served.call(
        "POST",
        "/v1/sql",
        Some(&victim),
        Some(&json!({"query": format!("SELECT count(*) AS n FROM records WHERE contributor = '{VICTIM}'")})),
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["rows"][0]["n"], 5, "{body}");
}

/// `POST /v1/sql` as `key`: status, body and how long it took.
fn sql(served: &Served, key: &str, query: &str) -> (u16, Value, Duration) {
    let started = Instant::now();
    let (status, body) = served.call("POST", "/v1/sql", Some(key), Some(&json!({"query": query})));
    (status, body, started.elapsed())
}

/// A cross join of the records six times over: far more rows than any time limit allows.
fn endless() -> String {
    "SELECT count(*) FROM records a, records b, records c, records d, records e, records f \
     WHERE a.content || f.content LIKE '%zzz%'"
        .to_string()
}

/// An endless stream of numbers, filtered to nothing: little memory, no end.
fn series() -> String {
    "SELECT count(*) AS n FROM generate_series(1, 10000000000) WHERE value % 7 = 9".to_string()
}

#[test]
fn expanding_functions_and_cross_joins_fail_with_their_limit_while_others_are_served() {
    let dir = tempfile::tempdir().unwrap();
    let (data, victim, attacker) = setup(dir.path(), 40);
    let served = Arc::new(Served::start_without_models(
        &data,
        &["--sql-timeout-s", "4", "--sql-memory-mb", "64"],
    ));
    // A gigabyte from one call: refused before it is allocated, naming the memory limit.
    let (status, body, _) = sql(&served, &attacker, "SELECT repeat('x', 1000000000) AS x");
    assert_eq!(status, 400, "{body}");
    let text = message(&body);
    assert!(
        text.contains("repeat() would produce 1000000000 bytes"),
        "{text}"
    );
    assert!(text.contains("--sql-memory-mb"), "{text}");
    let (status, body, _) = sql(&served, &attacker, "SELECT lpad('x', 2000000000) AS x");
    assert_eq!(status, 400, "{body}");
    assert!(message(&body).contains("lpad() would produce"), "{body}");

    // A cross join runs into its time or memory limit, and an endless series into its time
    // limit, both at once; the victim's small queries are served meanwhile.
    let attacks: Vec<_> = [endless(), series()]
        .into_iter()
        .map(|query| {
            let served = Arc::clone(&served);
            let attacker = attacker.clone();
            std::thread::spawn(move || sql(&served, &attacker, &query))
        })
        .collect();
    let mut served_meanwhile = 0;
    while attacks.iter().any(|attack| !attack.is_finished()) {
        let (status, body, _) = sql(&served, &victim, "SELECT count(*) AS n FROM records");
        assert_eq!(
            status, 200,
            "the victim is served during the attack: {body}"
        );
        assert_eq!(body["rows"][0]["n"], 40, "{body}");
        served_meanwhile += 1;
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(
        served_meanwhile > 0,
        "the victim queried during the attacks"
    );
    let outcomes: Vec<_> = attacks.into_iter().map(|a| a.join().unwrap()).collect();
    for (status, body, took) in &outcomes {
        assert_eq!(*status, 400, "{body}");
        let text = message(body);
        let timed_out = text.contains("timed out after 4") && text.contains("--sql-timeout-s");
        let memory = text.contains("memory limit exceeded") && text.contains("--sql-memory-mb");
        assert!(timed_out || memory, "{text}");
        // Generous: on a loaded machine the answer comes late, but it comes, long before
        // either query could finish (40^6 rows; ten billion).
        assert!(*took < Duration::from_secs(120), "answered after {took:?}");
    }
    let series_text = message(&outcomes[1].1);
    assert!(series_text.contains("timed out after 4"), "{series_text}");
    // The server is still whole: the same small query, and the victim's records unchanged.
    let (status, body, _) = sql(&served, &victim, "SELECT count(*) AS n FROM records");
    assert_eq!(
        (status, body["rows"][0]["n"].clone()),
        (200, json!(40)),
        "{body}"
    );
}

#[test]
fn a_result_over_the_cap_is_refused_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let (data, _, attacker) = setup(dir.path(), 3);
    let served = Served::start_without_models(&data, &["--sql-max-result-mb", "1"]);
    // 600 rows of 4 KiB (3^6 rows to pick from): 2.4 MB, within max_rows but over 1 MiB.
    let query = "SELECT repeat('r', 4096) AS r FROM records a, records b, records c, \
                 records d, records e, records f LIMIT 600";
    let (status, body, _) = sql(&served, &attacker, query);
    assert_eq!(status, 400, "{body}");
    let text = message(&body);
    assert!(text.contains("the result is over 1048576 bytes"), "{text}");
    assert!(text.contains("--sql-max-result-mb"), "{text}");
}

#[test]
fn sql_and_searches_past_their_slots_get_429_while_the_running_ones_are_served() {
    let dir = tempfile::tempdir().unwrap();
    // Enough records that the first search spends a while catching its index up.
    let (data, victim, attacker) = setup(dir.path(), 60_000);
    let served = Arc::new(Served::start_without_models(
        &data,
        &[
            "--sql-slots",
            "1",
            "--sql-queue",
            "0",
            "--sql-timeout-s",
            "20",
            "--search-slots",
            "1",
            "--search-queue",
            "0",
            "--rate",
            "1000",
            "--burst",
            "1000",
        ],
    ));
    // The attacker holds the only SQL slot with a long query; the victim's SQL is refused
    // with 429 naming the limit, while its searches (another gate) are served.
    let attack = {
        let served = Arc::clone(&served);
        let attacker = attacker.clone();
        // Retried until it holds the slot (the victim's quick queries may hold it a moment).
        std::thread::spawn(move || {
            loop {
                let outcome = sql(&served, &attacker, &series());
                if outcome.0 != 429 {
                    break outcome;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        })
    };
    let refused = loop {
        let response = served
            .request("POST", "/v1/sql", Some(&victim))
            .json(&json!({"query": "SELECT 1 AS one"}))
            .send()
            .unwrap();
        let retry_after = response.headers().get("retry-after").cloned();
        let (status, body) = read(response);
        if status == 429 {
            assert!(retry_after.is_some(), "429 carries Retry-After");
            break body;
        }
        assert_eq!(status, 200, "{body}");
        if attack.is_finished() {
            let (status, body, _) = attack.join().unwrap();
            panic!("the long query ended before any 429: {status} {body}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let text = message(&refused);
    assert!(text.contains("too many SQL requests"), "{text}");
    assert!(text.contains("--sql-slots"), "{text}");
    let (status, body) = served.call(
        "POST",
        "/v1/search",
        Some(&victim),
        Some(&json!({"datanet": "d", "query": "boundary layer"})),
    );
    assert_eq!(status, 200, "search has its own gate: {body}");
    let (status, body, _) = attack.join().unwrap();
    assert!(status == 200 || status == 400, "{body}");
    let (status, body, _) = sql(&served, &victim, "SELECT 1 AS one");
    assert_eq!(status, 200, "the slot is free again: {body}");

    // Searches: one slot, no queue. Concurrent searches from the attacker and the victim: the
    // ones past the slot get 429 naming the limit; every other one is served.
    let mut outcomes = Vec::new();
    let workers: Vec<_> = (0..8)
        .map(|i| {
            let served = Arc::clone(&served);
            let key = if i % 2 == 0 {
                attacker.clone()
            } else {
                victim.clone()
            };
            std::thread::spawn(move || {
                (0..20)
                    .map(|j| {
                        let query =
                            json!({"datanet": "d", "query": format!("note {}", i * 20 + j)});
                        served.call("POST", "/v1/search", Some(&key), Some(&query))
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    for worker in workers {
        outcomes.extend(worker.join().unwrap());
    }
    for (status, body) in &outcomes {
        match status {
            200 => assert!(body["hits"].is_array(), "{body}"),
            429 => {
                let text = message(body);
                assert!(
                    text.contains("too many search and embedding requests"),
                    "{text}"
                );
                assert!(text.contains("--search-slots"), "{text}");
            }
            other => panic!("unexpected {other}: {body}"),
        }
    }
    assert!(
        outcomes.iter().any(|(s, _)| *s == 200),
        "searches were served"
    );
    assert!(
        outcomes.iter().any(|(s, _)| *s == 429),
        "eight clients at once past one slot met a 429"
    );
}
