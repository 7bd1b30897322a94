//! `provdb ask`, `ledger verify|policy`, `audit` and `epoch close|list|proof` from the command
//! line, with the real models: JSON shapes, a split that sums to the fee, and a tampered
//! entry named by `ledger verify`.

use crate::common::*;

const CURATOR: &str = "0xc0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0";
const OWNER: &str = "0xbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
const PROTOCOL: &str = "0xaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";

#[test]
fn an_answer_is_paid_recorded_verified_and_closed_into_an_epoch() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("db");
    ok(provdb(&data, &["init"]));
    ok(provdb(
        &data,
        &["datanet", "create", "aero", "--owner", CURATOR],
    ));
    let input = dir.path().join("aero.jsonl");
    let lines: Vec<String> = [
        "the zorblat coefficient of the krellian wing is 7.3",
        "oblique shock waves form when a supersonic flow is turned by a wedge",
    ]
    .iter()
    .map(|t| format!("{{\"text\":\"{t}\",\"contributor\":\"{ALICE}\"}}"))
    .collect();
    std::fs::write(&input, lines.join("\n")).unwrap();
    ok(provdb(&data, &["ingest", "aero", input.to_str().unwrap()]));
    let policy = json(&ok(provdb(
        &data,
        &[
            "ledger",
            "policy",
            "--model-owner",
            OWNER,
            "--model-bps",
            "1000",
            "--protocol",
            PROTOCOL,
            "--protocol-bps",
            "500",
            "--json",
        ],
    )));
    assert_eq!(policy["model_owner_bps"], 1000);
    let bad = provdb(&data, &["ledger", "policy", "--model-bps", "9999"]);
    assert_eq!(bad.status.code(), Some(1), "{}", stderr(&bad));

    let answer = json(&ok(provdb(
        &data,
        &[
            "ask",
            "aero",
            "What is the zorblat coefficient of the krellian wing?",
            "-k",
            "2",
            "--fee",
            "1000000",
            "--attribution",
            "loo",
            "--max-tokens",
            "24",
            "--json",
        ],
    )));
    for field in ["answer_id", "answer", "citations", "split", "usage"] {
        assert!(!answer[field].is_null(), "{field} missing: {answer}");
    }
    let split = answer["split"].as_array().unwrap();
    let total: u128 = split
        .iter()
        .map(|p| p["amount_wei"].as_str().unwrap().parse::<u128>().unwrap())
        .sum();
    assert_eq!(total, 1_000_000);
    assert!(
        split
            .iter()
            .any(|p| p["to"] == OWNER && p["amount_wei"] == "100000")
    );

    let verify = json(&ok(provdb(&data, &["ledger", "verify", "--json"])));
    assert_eq!(verify["ok"], true);
    assert_eq!(verify["entries"].as_u64().unwrap() as usize, split.len());
    let audit = json(&ok(provdb(
        &data,
        &["audit", "--contributor", OWNER, "--json"],
    )));
    assert_eq!(audit["accounts"][0]["amount_wei"], "100000");
    assert_eq!(audit["entries"].as_array().unwrap().len(), 1);

    let epoch = json(&ok(provdb(&data, &["epoch", "close", "--json"])));
    assert_eq!(epoch["epoch"], 1);
    assert_eq!(epoch["total_wei"], "1000000");
    let again = provdb(&data, &["epoch", "close"]);
    assert_eq!(again.status.code(), Some(1), "nothing new to close");
    let proof = json(&ok(provdb(&data, &["epoch", "proof", OWNER, "--json"])));
    assert_eq!(proof["cumulative_wei"], "100000");
    assert_eq!(proof["root"], epoch["root"]);
    let stranger = provdb(
        &data,
        &[
            "epoch",
            "proof",
            "0x0000000000000000000000000000000000000001",
        ],
    );
    assert_eq!(stranger.status.code(), Some(1));

    // Change one byte of entry 2 behind provdb's back: verify names it and exits 1.
    {
        let store = provdb::storage::Store::open(
            data.join("storage"),
            provdb::storage::StoreOptions::default(),
        )
        .unwrap();
        let db = store.raw_db();
        let cf = db.cf_handle("ledger").unwrap();
        let key = 2u64.to_be_bytes();
        let mut value = db.get_cf(cf, key).unwrap().unwrap();
        let last = value.len() - 1;
        value[last] ^= 0x40;
        db.put_cf(cf, key, &value).unwrap();
    }
    let broken = provdb(&data, &["ledger", "verify", "--json"]);
    assert_eq!(broken.status.code(), Some(1));
    let report = json(&broken);
    assert_eq!(report["ok"], false);
    assert_eq!(report["broken"]["seq"], 2, "{report}");
    assert!(stderr(&broken).contains("entry 2"), "{}", stderr(&broken));
}

#[test]
fn bad_ask_requests_exit_1() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("db");
    ok(provdb(&data, &["init"]));
    ok(provdb(&data, &["datanet", "create", "aero"]));
    for args in [
        vec!["ask", "nothing", "a question"],
        vec!["ask", "aero", "a question", "--fee", "-5"],
        vec!["ask", "aero", "a question", "--attribution", "magic"],
        vec!["ask", "aero", "a question", "--as", "not-an-address"],
    ] {
        let out = provdb(&data, &args);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {}", stderr(&out));
    }
    let verify = json(&ok(provdb(&data, &["ledger", "verify", "--json"])));
    assert_eq!(verify["entries"], 0);
}
