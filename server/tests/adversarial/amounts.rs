//! A caller who wants to be owed more than any fee could pay, or to break the audit for
//! everyone with one huge amount: a reader or contributor key asks with a fee of 10^31 wei and
//! of `u128::MAX` wei (over HTTP and the CLI), and a ledger holding amounts near `u128::MAX`
//! (as an old or forged ledger could) is read through every audit view. Fees above the cap
//! are refused with a 400 / exit 1 naming it and write nothing; a sum that would wrap is
//! refused; the audit tables and views read every stored amount.

use std::path::{Path, PathBuf};

use provdb::Db;
use provdb::storage::Address;
use serde_json::{Value, json};

use crate::common::*;
use crate::ledger_check::{payment, synthetic_answer};
use crate::served::*;

const VICTIM: &str = "0x2222222222222222222222222222222222222222";
const ATTACKER: &str = "0x6666666666666666666666666666666666666666";
const READER: &str = "0x7777777777777777777777777777777777777777";
const ADMIN: &str = "0xadadadadadadadadadadadadadadadadadadadad";
const TEN_POW_31: &str = "10000000000000000000000000000000";
const DEFAULT_CAP: &str = "1000000000000000000000000000000";

fn address(text: &str) -> Address {
    text.parse().unwrap()
}

/// The attacker's Datanet `d` of two records (CLI, not indexed), the victim already paid
/// 1000 wei in a closed epoch, and keys: the attacker's contributor key, a reader's, an
/// admin's.
fn setup(dir: &Path) -> (PathBuf, [String; 3]) {
    let data = dir.join("db");
    ok(provdb(&data, &["init"]));
    ok(provdb_without_models(&data, &["datanet", "create", "d"]));
    let input = dir.join("attacker.jsonl");
    let lines: String = (0..2)
        .map(|i| json!({"text": format!("wing spar note {i}"), "contributor": ATTACKER}))
        .map(|line| line.to_string() + "\n")
        .collect();
    std::fs::write(&input, lines).unwrap();
    ok(provdb_without_models(
        &data,
        &["ingest", "d", input.to_str().unwrap(), "--no-index"],
    ));
    {
        let db = Db::open(&data).unwrap();
        let paid = synthetic_answer("victim", 1, vec![payment(address(VICTIM), 1000, 0)]);
        db.store().append_answers(vec![paid]).unwrap();
        db.close_epoch().unwrap();
    }
    let keys = [
        make_key(&data, ATTACKER, "contributor"),
        make_key(&data, READER, "reader"),
        make_key(&data, ADMIN, "admin"),
    ];
    (data, keys)
}

fn sql(served: &Served, key: &str, query: &str) -> (u16, Value) {
    served.call(
        "POST",
        "/v1/sql",
        Some(key),
        Some(&json!({ "query": query })),
    )
}

/// Everything the ledger holds, as the audit tables and views show it; each must read.
fn audit(served: &Served, key: &str) -> Vec<Value> {
    let mut seen = Vec::new();
    for query in [
        "SELECT seq, contributor, role, CAST(amount_wei AS VARCHAR) AS amount FROM attributions \
         ORDER BY seq",
        "SELECT CAST(coalesce(sum(amount_wei), 0) AS VARCHAR) AS paid FROM attributions",
        "SELECT epoch, CAST(total_wei AS VARCHAR) AS total FROM epochs ORDER BY epoch",
        "SELECT epoch, account, CAST(cumulative_wei AS VARCHAR) AS owed FROM balances \
         ORDER BY epoch, account",
        "SELECT count(*) AS n FROM citations",
    ] {
        let (status, body) = sql(served, key, query);
        assert_eq!(status, 200, "{query}: {body}");
        seen.push(body["rows"].clone());
    }
    for path in ["/v1/ledger/entries", "/v1/epochs", "/v1/ledger/verify"] {
        let (status, body) = served.call("GET", path, Some(key), None);
        assert_eq!(status, 200, "{path}: {body}");
        seen.push(body);
    }
    seen
}

fn ask(served: &Served, key: &str, fee: Value) -> (u16, Value) {
    served.call(
        "POST",
        "/v1/chat/completions",
        Some(key),
        Some(&json!({
            "model": "any",
            "messages": [{"role": "user", "content": "What is the spar made of?"}],
            "datanets": ["d"],
            "max_tokens": 4,
            "fee_wei": fee,
        })),
    )
}

fn message(body: &Value) -> String {
    body["error"]["message"].as_str().unwrap_or("").to_string()
}

#[test]
fn a_fee_above_the_cap_is_refused_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (data, [attacker, reader, admin]) = setup(dir.path());
    let served = Served::start_without_models(&data, &[]);
    let before = audit(&served, &admin);
    let u128_max = u128::MAX.to_string();
    for key in [&attacker, &reader] {
        for fee in [TEN_POW_31, u128_max.as_str()] {
            let (status, body) = ask(&served, key, json!(fee));
            assert_eq!(status, 400, "fee {fee}: {body}");
            let text = message(&body);
            assert!(
                text.contains(&format!("maximum fee of {DEFAULT_CAP} wei"))
                    && text.contains("--max-fee-wei"),
                "{text}"
            );
        }
        // Past u128 altogether: not a fee at all.
        let (status, body) = ask(
            &served,
            key,
            json!("340282366920938463463374607431768211456"),
        );
        assert_eq!(status, 400, "{body}");
    }
    assert_eq!(audit(&served, &admin), before, "nothing was written");
    assert_eq!(audit(&served, &attacker), audit(&served, &reader));
    drop(served);

    // The operator's own cap.
    let served = Served::start_without_models(&data, &["--max-fee-wei", "100"]);
    let (status, body) = ask(&served, &attacker, json!("101"));
    assert_eq!(status, 400, "{body}");
    assert!(message(&body).contains("maximum fee of 100 wei"), "{body}");
    assert_eq!(audit(&served, &admin), before);
    drop(served);

    // The CLI, as the attacker: exit 1 naming the cap, before any model loads.
    for extra in [&[][..], &["--max-fee-wei", "100"][..]] {
        let fee = if extra.is_empty() { TEN_POW_31 } else { "101" };
        let mut args = vec!["ask", "d", "What is the spar made of?", "--fee", fee];
        args.extend_from_slice(&["--as", ATTACKER]);
        args.extend_from_slice(extra);
        let out = provdb_without_models(&data, &args);
        assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
        assert!(stderr(&out).contains("maximum fee of"), "{}", stderr(&out));
    }
    let db = Db::open(&data).unwrap();
    assert_eq!(
        db.verify_ledger().unwrap().entries,
        1,
        "only the victim's entry"
    );
    assert_eq!(db.store().ledger_total_wei().unwrap(), 1000);
}

#[test]
fn amounts_near_u128_max_cannot_wrap_and_stay_readable() {
    let dir = tempfile::tempdir().unwrap();
    let (data, [attacker, reader, admin]) = setup(dir.path());
    let half = 1u128 << 127;
    {
        let db = Db::open(&data).unwrap();
        let store = db.store();
        let big = |seed: &str, to: &str, amount| {
            synthetic_answer(seed, 2, vec![payment(address(to), amount, 0)])
        };
        store
            .append_answers(vec![big("first", ATTACKER, half)])
            .unwrap();
        // Two fees near 2^127 to one account: the second would wrap the ledger's total.
        let refused = store
            .append_answers(vec![big("second", ATTACKER, half)])
            .unwrap_err();
        assert!(refused.is_user_error(), "{refused}");
        assert!(refused.to_string().contains("2^128 - 1 wei"), "{refused}");
        // Everyone else is still paid, and epochs still close.
        store
            .append_answers(vec![big("victim again", VICTIM, 1000)])
            .unwrap();
        let epoch = db.close_epoch().unwrap();
        assert_eq!(epoch.total_wei, half + 2000);
        // Fill the ledger to exactly u128::MAX: amounts past DECIMAL(38, 0) (1e38) everywhere.
        let rest = u128::MAX - store.ledger_total_wei().unwrap();
        store
            .append_answers(vec![big("fill", VICTIM, rest)])
            .unwrap();
        assert_eq!(db.close_epoch().unwrap().total_wei, u128::MAX);
        let full = store
            .append_answers(vec![big("one more", READER, 1)])
            .unwrap_err();
        assert!(full.is_user_error(), "{full}");
    }
    let served = Served::start_without_models(&data, &[]);
    let views = audit(&served, &admin);
    assert_eq!(views[1][0]["paid"], u128::MAX.to_string());
    assert_eq!(views[2][2]["total"], u128::MAX.to_string());
    let victim_owed = (u128::MAX - half).to_string();
    assert!(
        views[3]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["owed"] == victim_owed),
        "{}",
        views[3]
    );
    let (status, body) = served.call("GET", "/v1/epochs", Some(&reader), None);
    assert_eq!(status, 200, "{body}");
    assert!(body.to_string().contains(&u128::MAX.to_string()), "{body}");
    let proof = format!("/v1/epochs/latest/proofs/{VICTIM}");
    let (status, body) = served.call("GET", &proof, Some(&attacker), None);
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["cumulative_wei"], victim_owed);
    // Readers and contributors read the same audit.
    assert_eq!(audit(&served, &attacker), audit(&served, &reader));
}
