//! A caller who wants to be owed more than any fee could pay, or to break the audit for
//! everyone with one huge amount: a reader or contributor key names its own fee (10^31 wei,
//! `u128::MAX`), sets a price it does not own, credits or refunds an account it is not (over
//! HTTP and the CLI), and a ledger holding amounts near `u128::MAX` (as an old or forged
//! ledger could) is read through every audit view. Each attempt is refused (400, 403 / exit
//! 1, 2) and writes nothing; even an admin's price above the cap is refused naming it; a sum
//! that would wrap is refused; the audit tables and views read every stored amount.

use std::path::{Path, PathBuf};

use provdb::Db;
use provdb::storage::{Address, NewAnswer};
use serde_json::{Value, json};

use crate::common::*;
use crate::ledger_check::{PAYER, fund, payment, synthetic_answer};
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
        fund(db.store(), PAYER);
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

/// `answer`, charged to `payer` instead.
fn paid_by(mut answer: NewAnswer, payer: Address) -> NewAnswer {
    answer.record.caller = Some(payer);
    answer
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
        "SELECT CAST(coalesce(sum(amount_wei), 0) AS VARCHAR) AS paid FROM attributions \
         WHERE role NOT IN ('credit', 'charge')",
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

fn ask(served: &Served, key: &str, extra: Value) -> (u16, Value) {
    let mut body = json!({
        "model": "any",
        "messages": [{"role": "user", "content": "What is the spar made of?"}],
        "datanets": ["d"],
        "max_tokens": 4,
    });
    if let (Some(body), Some(extra)) = (body.as_object_mut(), extra.as_object()) {
        body.extend(extra.clone());
    }
    served.call("POST", "/v1/chat/completions", Some(key), Some(&body))
}

fn message(body: &Value) -> String {
    body["error"]["message"].as_str().unwrap_or("").to_string()
}

/// `PUT`s a price of `wei` per answer on `path` (under `/v1/prices/`) as `key`.
fn set_price(served: &Served, key: &str, path: &str, wei: &str) -> (u16, Value) {
    let body = json!({ "per_answer_wei": wei });
    served.call("PUT", &format!("/v1/prices/{path}"), Some(key), Some(&body))
}

#[test]
fn a_caller_cannot_name_its_fee_set_a_price_or_credit_itself_and_nothing_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let (data, [attacker, reader, admin]) = setup(dir.path());
    let served = Served::start_without_models(&data, &[]);
    let before = audit(&served, &admin);
    let u128_max = u128::MAX.to_string();
    for key in [&attacker, &reader] {
        // A fee of its own choosing, however written: refused, naming where prices come from.
        for fee in [json!("1000"), json!(TEN_POW_31), json!(u128_max)] {
            let (status, body) = ask(&served, key, json!({ "fee_wei": fee }));
            assert_eq!(status, 400, "fee {fee}: {body}");
            assert!(message(&body).contains("GET /v1/prices"), "{body}");
        }
        // A cap past u128 altogether is not an amount.
        let past = json!({"max_fee_wei": "340282366920938463463374607431768211456"});
        let (status, body) = ask(&served, key, past);
        assert_eq!(status, 400, "{body}");
        // Prices are their owners' and the operator's; credits are admins'.
        for path in ["datanets/d", "models/any"] {
            let (status, body) = set_price(&served, key, path, "1");
            assert_eq!(status, 403, "{path}: {body}");
        }
        let credit = format!("/v1/accounts/{ATTACKER}/credits");
        let body = json!({"amount_wei": TEN_POW_31, "reason": "free money"});
        let (status, body) = served.call("POST", &credit, Some(key), Some(&body));
        assert_eq!(status, 403, "{body}");
        // Nor may it refund another account into its own pocket.
        let refund = format!("/v1/account/refund?address={VICTIM}");
        let (status, body) = served.call("POST", &refund, Some(key), None);
        assert_eq!(status, 403, "{body}");
    }
    // Even an admin sets no price above the cap.
    for price in [TEN_POW_31, u128_max.as_str()] {
        let (status, body) = set_price(&served, &admin, "datanets/d", price);
        assert_eq!(status, 400, "{price}: {body}");
        let text = message(&body);
        assert!(
            text.contains(&format!("maximum fee of {DEFAULT_CAP} wei"))
                && text.contains("--max-fee-wei"),
            "{text}"
        );
    }
    assert_eq!(audit(&served, &admin), before, "nothing was written");
    assert_eq!(audit(&served, &attacker), audit(&served, &reader));
    drop(served);

    // The operator's own cap.
    let served = Served::start_without_models(&data, &["--max-fee-wei", "100"]);
    let (status, body) = set_price(&served, &admin, "models/any", "101");
    assert_eq!(status, 400, "{body}");
    assert!(message(&body).contains("maximum fee of 100 wei"), "{body}");
    assert_eq!(audit(&served, &admin), before);
    drop(served);

    // The CLI: `ask` takes no fee at all; as the attacker, no price and no credit; as the
    // operator, no price above the cap. Each exits 1 before anything is written.
    let refused = [
        vec!["ask", "d", "What is the spar made of?", "--fee", "5"],
        vec![
            "price",
            "set",
            "--datanet",
            "d",
            "--per-answer",
            "5",
            "--as",
            ATTACKER,
        ],
        vec![
            "account", "credit", ATTACKER, "5", "--reason", "x", "--as", ATTACKER,
        ],
        vec!["account", "refund", VICTIM, "--as", ATTACKER],
        vec!["price", "set", "--datanet", "d", "--per-answer", TEN_POW_31],
    ];
    for args in refused {
        let out = provdb_without_models(&data, &args);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {}", stderr(&out));
    }
    let db = Db::open(&data).unwrap();
    assert_eq!(
        db.verify_ledger().unwrap().entries,
        3,
        "only the payer's credit and the victim's answer"
    );
    assert!(db.prices().unwrap().is_empty());
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
        // A second payer: two fees near 2^127 outrun one account's balance before the total.
        let other = Address([0xfb; 20]);
        fund(store, other);
        store
            .append_answers(vec![big("first", ATTACKER, half)])
            .unwrap();
        // Two fees near 2^127 to one account: the second would wrap the ledger's total.
        let refused = store
            .append_answers(vec![paid_by(big("second", ATTACKER, half), other)])
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
            .append_answers(vec![paid_by(big("one more", READER, 1), other)])
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

#[test]
fn an_answer_its_caller_cannot_pay_is_refused_with_402_before_any_work() {
    let dir = tempfile::tempdir().unwrap();
    let (data, [attacker, reader, admin]) = setup(dir.path());
    ok(provdb_without_models(
        &data,
        &["price", "set", "--datanet", "d", "--per-answer", "1000"],
    ));
    ok(provdb_without_models(
        &data,
        &["account", "credit", READER, "999", "--reason", "card"],
    ));
    let served = Served::start(&data, &[]);
    let model = base_model(&served, &reader);
    let before = audit(&served, &admin);
    let asked = |key: &str, extra: Value| {
        let mut body = json!({"model": model, "messages": [{"role": "user", "content": "What is the spar made of?"}],
            "datanets": ["d"], "max_tokens": 4});
        if let (Some(body), Some(extra)) = (body.as_object_mut(), extra.as_object()) {
            body.extend(extra.clone());
        }
        served.call("POST", "/v1/chat/completions", Some(key), Some(&body))
    };
    // A short balance, no balance at all, a cap below the price.
    for (key, extra, kind) in [
        (&reader, json!({}), "insufficient_funds"),
        (&attacker, json!({}), "insufficient_funds"),
        (&reader, json!({"max_fee_wei": "999"}), "payment_required"),
        (
            &reader,
            json!({"max_fee_wei": "999", "stream": true}),
            "payment_required",
        ),
    ] {
        let (status, body) = asked(key, extra);
        assert_eq!(status, 402, "{body}");
        assert_eq!(body["error"]["type"], kind, "{body}");
    }
    let (_, refused) = asked(&reader, json!({"max_fee_wei": "999"}));
    assert!(
        message(&refused).contains("costs up to 1000 wei"),
        "{refused}"
    );
    assert_eq!(
        audit(&served, &admin),
        before,
        "a refused answer wrote nothing"
    );
    let (_, account) = served.call("GET", "/v1/account", Some(&reader), None);
    assert_eq!(
        (
            account["balance_wei"].as_str(),
            account["held_wei"].as_str()
        ),
        (Some("999"), Some("0"))
    );
    // One more wei, and the answer is made and charged exactly.
    credit(&served, &admin, READER, 1);
    let (status, answer) = asked(&reader, json!({"max_fee_wei": "1000"}));
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["fee_wei"], "1000");
    let (_, account) = served.call("GET", "/v1/account", Some(&reader), None);
    assert_eq!(account["balance_wei"], "0", "{account}");
    // A reader sees only its own account, in the API and in SQL.
    let other = format!("/v1/account?address={ATTACKER}");
    assert_eq!(served.call("GET", &other, Some(&reader), None).0, 403);
    let (_, rows) = sql(&served, &reader, "SELECT account FROM accounts");
    assert_eq!(rows["rows"].as_array().map(Vec::len), Some(1), "{rows}");
}
