//! Signature abuse: an uploader holding a contributor's signed record changes what the old
//! EIP-191 signature did not cover (license, created_at, supersedes), replays it into another
//! Datanet, or signs with the wrong key. Records are signed as EIP-712 typed data over all of
//! these; the wallet side is ethers (`scripts/ethers.sh`, pinned), which signs the rows here
//! and checks provdb's own demo signatures.

use std::io::Write;
use std::process::{Command, Stdio};

use serde_json::{Map, Value, json};

use crate::common::*;
use crate::served::*;

const ALICE_KEY: &str = "0x1111111111111111111111111111111111111111111111111111111111111111";
const BOB_KEY: &str = "0x2222222222222222222222222222222222222222222222222222222222222222";
const ZERO_ID: &str = "0x0000000000000000000000000000000000000000000000000000000000000000";
const SIGNED_AT: i64 = 1_700_000_000_000;

fn address_of(key: &str) -> String {
    let bytes: [u8; 32] = hex::decode(&key[2..]).unwrap().try_into().unwrap();
    provdb::ingest::address_of_key(&bytes).unwrap().to_string()
}

/// Runs `scripts/ethers.sh` on `request`.
fn ethers(request: &Value) -> Value {
    let script = repo_root().join("scripts/ethers.sh");
    let mut child = Command::new("bash")
        .arg(script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(request.to_string().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "scripts/ethers.sh failed");
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The EIP-712 message of a row's provenance, as a wallet is shown it.
fn message(datanet: &str, record_id: &str, license: &str, supersedes: Option<&str>) -> Value {
    json!({
        "datanet": datanet,
        "recordId": record_id,
        "license": license,
        "createdAt": SIGNED_AT.to_string(),
        "supersedes": supersedes.unwrap_or(ZERO_ID),
    })
}

fn domain(chain_id: u64) -> Value {
    json!({"name": "provdb", "version": "1", "chainId": chain_id})
}

fn record_id(content: &Value) -> String {
    provdb::storage::record_id_of(&provdb::ingest::canonical_object(
        content.as_object().unwrap(),
    ))
    .to_string()
}

/// `content` as a row signed with ethers by `key` for Datanet `datanet`.
fn signed_by_ethers(key: &str, datanet: &str, content: &Value, license: &str) -> Value {
    let signed = ethers(&json!({"sign": [{
        "key": key,
        "domain": domain(1),
        "message": message(datanet, &record_id(content), license, None),
    }]}));
    let mut row = content.as_object().unwrap().clone();
    row.insert("contributor".into(), json!(address_of(key)));
    row.insert("license".into(), json!(license));
    row.insert("created_at".into(), json!(SIGNED_AT));
    row.insert("signature".into(), signed["signatures"][0].clone());
    Value::Object(row)
}

fn upload(served: &Served, key: &str, datanet: &str, row: &Value) -> (u16, Value) {
    read(
        served
            .request(
                "POST",
                &format!("/v1/datanets/{datanet}/records?format=jsonl"),
                Some(key),
            )
            .body(row.to_string())
            .send()
            .unwrap(),
    )
}

fn refused(status: u16, body: &Value, needle: &str) {
    assert_eq!(status, 400, "{body}");
    let message = body["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains(needle), "{message}");
}

/// Bob uploads Alice's ethers-signed row with its provenance changed, into another Datanet,
/// with his own signature in her name, and under the old scheme: every attempt is refused by
/// name and stores nothing; the row as Alice signed it is stored as hers, marked EIP-712.
#[test]
fn a_signed_record_cannot_be_altered_replayed_or_forged() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    ok(provdb_without_models(&data, &["init"]));
    let owner = make_key(
        &data,
        "0x0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e",
        "curator",
    );
    let bob = make_key(&data, &address_of(BOB_KEY), "contributor");
    let served = Served::start(&data, &[]);
    for (name, signed) in [("d", true), ("e", false)] {
        let body = json!({"name": name, "require_signatures": signed});
        let (status, body) = served.call("POST", "/v1/datanets", Some(&owner), Some(&body));
        assert_eq!(status, 201, "{body}");
    }
    let earlier = json!({"text": "Alice's earlier measurement."});
    let (status, body) = upload(
        &served,
        &bob,
        "d",
        &signed_by_ethers(ALICE_KEY, "d", &earlier, "CC-BY-4.0"),
    );
    assert_eq!(status, 200, "{body}");
    let content = json!({"text": "Alice's measurement of the skin friction."});
    let row = signed_by_ethers(ALICE_KEY, "d", &content, "CC-BY-4.0");

    let changes = [
        ("license", json!("proprietary")),
        ("created_at", json!(SIGNED_AT + 1)),
        ("supersedes", json!(record_id(&earlier))),
    ];
    for (column, value) in changes {
        let mut altered = row.clone();
        altered[column] = value;
        let (status, body) = upload(&served, &bob, "d", &altered);
        refused(status, &body, "EIP-712 signature was made by");
    }
    let (status, body) = upload(&served, &bob, "e", &row);
    refused(status, &body, "datanet 'e'");
    let mut forged = signed_by_ethers(BOB_KEY, "d", &content, "CC-BY-4.0");
    forged["contributor"] = json!(address_of(ALICE_KEY));
    let (status, body) = upload(&served, &bob, "d", &forged);
    refused(status, &body, &format!("made by {}", address_of(BOB_KEY)));
    let key: [u8; 32] = hex::decode(&ALICE_KEY[2..]).unwrap().try_into().unwrap();
    let id = record_id(&content).parse().unwrap();
    let personal = provdb::ingest::sign_record_id(&key, &id).unwrap();
    let mut old_scheme = row.clone();
    old_scheme["signature"] = json!(format!("0x{}", hex::encode(personal)));
    let (status, body) = upload(&served, &bob, "d", &old_scheme);
    refused(status, &body, "requires EIP-712");

    let (status, rows) = served.call(
        "POST",
        "/v1/sql",
        Some(&owner),
        Some(&json!({"query": "SELECT count(*) AS n FROM records"})),
    );
    assert_eq!(status, 200, "{rows}");
    assert_eq!(
        rows["rows"][0]["n"], 1,
        "only Alice's earlier record: {rows}"
    );
    let (status, body) = upload(&served, &bob, "d", &row);
    assert_eq!(status, 200, "{body}");
    let (status, shown) = served.call("GET", &format!("/v1/records/{id}"), Some(&owner), None);
    assert_eq!(status, 200, "{shown}");
    assert_eq!(shown["contributor"], address_of(ALICE_KEY));
    assert_eq!(shown["license"], "CC-BY-4.0");
    assert_eq!(shown["signature_scheme"], "eip712");
    assert_eq!(shown["supersedes"], Value::Null);
}

/// `provdb convert-smart` signs the demo's records; ethers' `verifyTypedData` recovers each
/// row's contributor from them.
#[test]
fn the_demo_signatures_verify_with_ethers() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("cranfield.jsonl");
    let collection = repo_root().join("data/cranfield");
    ok(provdb_without_models(
        &dir.path().join("data"),
        &[
            "convert-smart",
            collection.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ],
    ));
    let text = std::fs::read_to_string(&out).unwrap();
    let rows: Vec<Map<String, Value>> = text
        .lines()
        .take(20)
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    let verify: Vec<Value> = rows
        .iter()
        .map(|row| {
            let mut content = row.clone();
            for column in provdb::ingest::PROVENANCE_COLUMNS {
                content.remove(column);
            }
            let license = row["license"].as_str().unwrap();
            assert_eq!(row["created_at"], SIGNED_AT);
            json!({
                "domain": domain(1),
                "message": message("cranfield", &record_id(&Value::Object(content)), license, None),
                "signature": row["signature"],
            })
        })
        .collect();
    let signers = ethers(&json!({ "verify": verify }))["signers"].clone();
    for (row, signer) in rows.iter().zip(signers.as_array().unwrap()) {
        assert_eq!(
            signer.as_str().unwrap().to_lowercase(),
            row["contributor"].as_str().unwrap(),
        );
    }
    assert_eq!(signers.as_array().unwrap().len(), 20);
}
