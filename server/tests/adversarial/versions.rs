//! Record takeover: a contributor supersedes or removes another's record, to push it out of
//! search and have later citations pay the attacker. Versions belong to their contributor;
//! only the Datanet's owner, a curator or an admin may replace another's record, and then the
//! version records who acted and in which role.

use serde_json::{Value, json};

use crate::common::*;
use crate::served::*;

const VICTIM: &str = "0x1111111111111111111111111111111111111111";
const ATTACKER: &str = "0xbadbadbadbadbadbadbadbadbadbadbadbadbad0";
const OWNER: &str = "0x0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e";
const CURATOR: &str = "0xc0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0";
const ADMIN: &str = "0xadadadadadadadadadadadadadadadadadadadad";

struct Keys {
    victim: String,
    attacker: String,
    owner: String,
    curator: String,
    admin: String,
}

fn keys(data: &std::path::Path) -> Keys {
    Keys {
        victim: make_key(data, VICTIM, "contributor"),
        attacker: make_key(data, ATTACKER, "contributor"),
        owner: make_key(data, OWNER, "curator"),
        curator: make_key(data, CURATOR, "contributor"),
        admin: make_key(data, ADMIN, "admin"),
    }
}

fn upload(served: &Served, key: &str, rows: &[Value], query: &str) -> (u16, Value) {
    let body = rows
        .iter()
        .map(Value::to_string)
        .collect::<Vec<_>>()
        .join("\n");
    read(
        served
            .request(
                "POST",
                &format!("/v1/datanets/d/records?format=jsonl{query}"),
                Some(key),
            )
            .body(body)
            .send()
            .unwrap(),
    )
}

fn record(served: &Served, key: &str, id: &str) -> Value {
    let (status, body) = served.call("GET", &format!("/v1/records/{id}"), Some(key), None);
    assert_eq!(status, 200, "{body}");
    body
}

/// The id provdb gives a row whose only content column is `text`.
fn id_of(text: &str) -> String {
    let content = json!({ "text": text });
    provdb::storage::record_id_of(&provdb::ingest::canonical_object(
        content.as_object().unwrap(),
    ))
    .to_string()
}

fn rule(body: &Value) -> String {
    body["error"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

fn the_rule_is_named(status: u16, body: &Value) {
    assert_eq!(status, 400, "{body}");
    let message = rule(body);
    let expected =
        format!("belongs to contributor {VICTIM}; only {VICTIM} or a curator of datanet 'd'");
    assert!(message.contains(&expected), "{message}");
}

/// Bob, a contributor, uploads near-copies of Alice's record that supersede it (as himself, as
/// Alice unsigned, inside a batch with an innocent row, with skip_invalid) and deletes it. Each
/// is refused naming the rule, nothing of the batch is stored, Alice's record stays current
/// and searchable, and she can still version and remove it.
#[test]
fn a_contributor_cannot_supersede_or_remove_anothers_record_over_http() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    ok(provdb_without_models(&data, &["init"]));
    let keys = keys(&data);
    let served = Served::start(&data, &[]);
    let (status, body) = served.call(
        "POST",
        "/v1/datanets",
        Some(&keys.owner),
        Some(&json!({"name": "d"})),
    );
    assert_eq!(status, 201, "{body}");
    let finding = "Transition moves upstream as the Reynolds number grows.";
    let (status, body) = upload(&served, &keys.victim, &[json!({"text": finding})], "");
    assert_eq!(status, 200, "{body}");
    let v1 = id_of(finding);

    let innocent = json!({"text": "Bob's own note on shocks."});
    let takeover = json!({"text": format!("{finding} (revised)"), "supersedes": v1});
    let (status, body) = upload(
        &served,
        &keys.attacker,
        &[innocent.clone(), takeover.clone()],
        "",
    );
    the_rule_is_named(status, &body);
    assert!(rule(&body).contains("line 2"), "{body}");
    let (status, body) = upload(
        &served,
        &keys.attacker,
        &[innocent, takeover],
        "&skip_invalid=true",
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        (body["accepted"].as_u64(), body["rejected"].as_u64()),
        (Some(1), Some(1))
    );
    assert!(
        body["rejects"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("only"),
        "{body}"
    );
    let posing =
        json!({"text": format!("{finding} (by Alice?)"), "contributor": VICTIM, "supersedes": v1});
    let (status, body) = upload(&served, &keys.attacker, &[posing], "");
    assert_eq!(status, 400, "{body}");
    let (status, body) = served.call(
        "DELETE",
        &format!("/v1/records/{v1}"),
        Some(&keys.attacker),
        None,
    );
    assert_eq!(status, 403, "{body}");
    assert!(
        rule(&body).contains(&format!("belongs to contributor {VICTIM}")),
        "{body}"
    );

    // The victim's record is unchanged, current and found; the attacker holds no version of it.
    let shown = record(&served, &keys.victim, &v1);
    assert_eq!(shown["superseded_by"], Value::Null, "{shown}");
    assert_eq!(shown["contributor"], VICTIM);
    let (status, rows) = served.call(
        "POST",
        "/v1/sql",
        Some(&keys.admin),
        Some(&json!({"query": "SELECT count(*) AS n FROM records WHERE supersedes IS NOT NULL OR status = 'tombstoned'"})),
    );
    assert_eq!(status, 200, "{rows}");
    assert_eq!(rows["rows"][0]["n"], 0, "{rows}");
    let (status, hits) = served.call(
        "POST",
        "/v1/search",
        Some(&keys.victim),
        Some(&json!({"datanet": "d", "query": "Reynolds number transition", "mode": "bm25"})),
    );
    assert_eq!(status, 200, "{hits}");
    assert!(hits.to_string().contains(&v1), "{hits}");

    // Alice still versions and removes her record, recorded as its contributor.
    let revised = format!("{finding} Measured again in 2024.");
    let (status, body) = upload(
        &served,
        &keys.victim,
        &[json!({"text": revised, "supersedes": v1})],
        "",
    );
    assert_eq!(status, 200, "{body}");
    let v2 = id_of(&revised);
    let shown = record(&served, &keys.victim, &v2);
    assert_eq!(
        (shown["stored_by"].as_str(), shown["stored_as"].as_str()),
        (Some(VICTIM), Some("contributor"))
    );
    let (status, body) = served.call(
        "DELETE",
        &format!("/v1/records/{v2}"),
        Some(&keys.victim),
        None,
    );
    assert_eq!(status, 200, "{body}");
}

/// The owner's curator and an admin may replace a contributor's record, acting as curators:
/// each version says who stored it and in which role, in the record and in SQL.
#[test]
fn curators_and_admins_replace_records_as_curators_and_are_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    ok(provdb_without_models(&data, &["init"]));
    let keys = keys(&data);
    let served = Served::start(&data, &[]);
    let created = served.call(
        "POST",
        "/v1/datanets",
        Some(&keys.owner),
        Some(&json!({"name": "d"})),
    );
    assert_eq!(created.0, 201, "{}", created.1);
    let (status, body) = served.call(
        "POST",
        "/v1/datanets/d/curators",
        Some(&keys.owner),
        Some(&json!({"address": CURATOR})),
    );
    assert_eq!(status, 200, "{body}");
    let texts = ["A wrong claim about drag.", "A claim to be removed."];
    let rows: Vec<Value> = texts.iter().map(|t| json!({"text": t})).collect();
    let (status, body) = upload(&served, &keys.victim, &rows, "");
    assert_eq!(status, 200, "{body}");
    let (wrong, removed) = (id_of(texts[0]), id_of(texts[1]));
    let fixed = "A corrected claim about drag.";
    let (status, body) = upload(
        &served,
        &keys.curator,
        &[json!({"text": fixed, "supersedes": wrong})],
        "",
    );
    assert_eq!(status, 200, "{body}");
    let shown = record(&served, &keys.victim, &id_of(fixed));
    assert_eq!(
        (shown["stored_by"].as_str(), shown["stored_as"].as_str()),
        (Some(CURATOR), Some("curator"))
    );
    let (status, body) = served.call(
        "DELETE",
        &format!("/v1/records/{removed}"),
        Some(&keys.admin),
        None,
    );
    assert_eq!(status, 200, "{body}");
    let (status, rows) = served.call(
        "POST",
        "/v1/sql",
        Some(&keys.admin),
        Some(&json!({"query": "SELECT stored_by, stored_as, status FROM records WHERE stored_as IS NOT NULL ORDER BY stored_as"})),
    );
    assert_eq!(status, 200, "{rows}");
    assert_eq!(rows["rows"][0]["stored_as"], "admin", "{rows}");
    assert_eq!(rows["rows"][0]["stored_by"], ADMIN);
    assert_eq!(rows["rows"][0]["status"], "tombstoned");
    assert_eq!(rows["rows"][1]["stored_as"], "curator");
}

/// The command line trusts its contributor column, but a row of Bob's still cannot supersede
/// Alice's record, nor can `record remove --by` Bob remove it: exit 1 naming the rule.
#[test]
fn the_command_line_cannot_take_over_a_record_either() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    ok(provdb_without_models(&data, &["init"]));
    ok(provdb_without_models(&data, &["datanet", "create", "d"]));
    let rows = dir.path().join("v1.jsonl");
    std::fs::write(
        &rows,
        json!({"text": "alice's", "contributor": VICTIM}).to_string(),
    )
    .unwrap();
    ok(provdb_without_models(
        &data,
        &["ingest", "d", rows.to_str().unwrap(), "--no-index"],
    ));
    let v1 = id_of("alice's");
    let takeover = dir.path().join("takeover.jsonl");
    let row = json!({"text": "bob's now", "contributor": ATTACKER, "supersedes": v1});
    std::fs::write(&takeover, row.to_string()).unwrap();
    let out = provdb_without_models(
        &data,
        &["ingest", "d", takeover.to_str().unwrap(), "--no-index"],
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(&format!("belongs to contributor {VICTIM}")),
        "{}",
        stderr(&out)
    );
    let out = provdb_without_models(&data, &["record", "remove", &v1, "--by", ATTACKER]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("only"), "{}", stderr(&out));
    let listed = json(&ok(provdb_without_models(
        &data,
        &["records", "d", "--json"],
    )));
    assert_eq!(listed["records"].as_array().unwrap().len(), 1, "{listed}");
    ok(provdb_without_models(
        &data,
        &["record", "remove", &v1, "--by", VICTIM],
    ));
}
