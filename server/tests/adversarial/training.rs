//! Attack: take training credit one is not owed. A contributor with a read grant on a private
//! Datanet trains on its own record with the victim's text supplied by the query (the text is
//! read from the store instead, so the credit is the record's own tokens), names its record
//! twice (refused), asks for more than the whole data share (refused at creation, not clamped),
//! and keeps training after its key is revoked or its grant removed (the job fails when it
//! starts or resumes, training nothing, and publishing is refused). The victim's records and
//! the owner's access are unchanged throughout.

use serde_json::{Value, json};

use crate::adapters::{
    Keys, OUTSIDER, SECRETS, VICTIM, private_qa, rows, tiny_job, train, wait_final,
};
use crate::common::*;
use crate::served::*;

/// The outsider's own short record.
const MINE: (&str, &str, &str) = ("Hi?", "Hello.", OUTSIDER);

fn events(served: &Served, key: &str, id: &str) -> Vec<Value> {
    let (status, body) = served.call(
        "GET",
        &format!("/v1/fine_tuning/jobs/{id}/events"),
        Some(key),
        None,
    );
    assert_eq!(status, 200, "{body}");
    body["data"].as_array().unwrap().clone()
}

fn job(served: &Served, key: &str, id: &str) -> Value {
    served
        .call(
            "GET",
            &format!("/v1/fine_tuning/jobs/{id}"),
            Some(key),
            None,
        )
        .1
}

fn grant(served: &Served, keys: &Keys, address: &str) {
    let (status, body) = served.call(
        "POST",
        "/v1/datanets/qa/grants",
        Some(&keys.owner),
        Some(&json!({ "grantee": address })),
    );
    assert_eq!(status, 200, "{body}");
}

/// The records of `qa` the owner reads: (contributor, content).
fn victim_view(served: &Served, keys: &Keys) -> Value {
    let (status, body) = served.call(
        "POST",
        "/v1/sql",
        Some(&keys.owner),
        Some(
            &json!({"query": "SELECT contributor, content, status FROM records ORDER BY content"}),
        ),
    );
    assert_eq!(status, 200, "{body}");
    body
}

#[test]
fn a_job_credits_only_the_stored_text_of_the_records_it_names() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("db");
    ok(provdb(&data, &["init"]));
    let keys = Keys::make(&data);
    let served = Served::start(&data, &[]);
    let mut all = SECRETS.to_vec();
    all.push(MINE);
    private_qa(&served, &keys, &rows(&all));
    grant(&served, &keys, OUTSIDER);
    let before = victim_view(&served, &keys);

    let mine = format!("SELECT record_id FROM records WHERE contributor = '{OUTSIDER}'");
    // More than the whole data share: refused at creation, nothing stored.
    let mut greedy = tiny_job(Some(&mine), 1);
    greedy["training_share_bps"] = json!(10_001);
    let (status, refused) = served.call(
        "POST",
        "/v1/fine_tuning/jobs",
        Some(&keys.outsider),
        Some(&greedy),
    );
    assert_eq!(status, 400, "{refused}");
    assert!(
        refused["error"]["message"]
            .as_str()
            .unwrap()
            .contains("training_share_bps must be 0..=10000"),
        "{refused}"
    );
    // Its own record twice, to be credited twice: refused.
    let twice = tiny_job(Some(&format!("{mine} UNION ALL {mine}")), 1);
    let (status, refused) = served.call(
        "POST",
        "/v1/fine_tuning/jobs",
        Some(&keys.outsider),
        Some(&twice),
    );
    assert_eq!(status, 400, "{refused}");
    assert!(
        refused.to_string().contains("is selected twice"),
        "{refused}"
    );
    let (_, listed) = served.call("GET", "/v1/fine_tuning/jobs", Some(&keys.outsider), None);
    assert!(listed["data"].as_array().unwrap().is_empty(), "{listed}");

    // Its own record with the victim's text: trained and credited on the stored text only.
    let (question, answer, _) = SECRETS[0];
    let forged = tiny_job(
        Some(&format!(
            "SELECT record_id, '{question}' AS instruction, '{answer}' AS response \
             FROM records WHERE contributor = '{OUTSIDER}'"
        )),
        1,
    );
    let honest = train(&served, &keys.outsider, &tiny_job(Some(&mine), 1));
    let forged = train(&served, &keys.outsider, &forged);
    let (honest, forged) = (
        job(&served, &keys.outsider, &honest),
        job(&served, &keys.outsider, &forged),
    );
    let credit = |job: &Value| job["result"]["provenance"]["contributors"].clone();
    assert_eq!(credit(&forged), credit(&honest), "{forged}");
    assert_eq!(credit(&forged)[0]["address"], OUTSIDER);
    assert_eq!(credit(&forged).as_array().map(Vec::len), Some(1));
    assert_eq!(
        forged["result"]["provenance"]["records_root"],
        honest["result"]["provenance"]["records_root"]
    );
    for sample in forged["result"]["samples"].as_array().unwrap() {
        let prompt = sample["prompt"].as_str().unwrap();
        assert!(
            !prompt.contains("krellian"),
            "trained on forged text: {prompt}"
        );
    }
    assert!(!forged.to_string().contains(VICTIM));
    assert_eq!(victim_view(&served, &keys), before);
    assert!(served.terminate().success());
}

#[test]
fn a_job_whose_key_is_revoked_or_grant_removed_trains_nothing_more() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("db");
    ok(provdb(&data, &["init"]));
    let keys = Keys::make(&data);
    // A second attacker: a contributor whose grant the owner will remove.
    const LEAVER: &str = "0x6666666666666666666666666666666666666666";
    let leaver = make_key(&data, LEAVER, "contributor");
    let served = Served::start(&data, &[]);
    private_qa(&served, &keys, &rows(&SECRETS));
    grant(&served, &keys, OUTSIDER);
    grant(&served, &keys, LEAVER);
    let before = victim_view(&served, &keys);

    // The outsider's long job runs; the leaver's waits behind it and is cancelled unstarted.
    let (status, long) = served.call(
        "POST",
        "/v1/fine_tuning/jobs",
        Some(&keys.outsider),
        Some(&tiny_job(None, 40)),
    );
    assert_eq!(status, 201, "{long}");
    let long = long["id"].as_str().unwrap().to_string();
    let (status, queued) = served.call(
        "POST",
        "/v1/fine_tuning/jobs",
        Some(&leaver),
        Some(&tiny_job(None, 1)),
    );
    assert_eq!(status, 201, "{queued}");
    let queued = queued["id"].as_str().unwrap().to_string();
    let cancel = |key: &str, id: &str| {
        let (status, body) = served.call(
            "POST",
            &format!("/v1/fine_tuning/jobs/{id}/cancel"),
            Some(key),
            None,
        );
        assert_eq!(status, 200, "{body}");
    };
    cancel(&leaver, &queued);
    for waited in 0.. {
        if events(&served, &keys.outsider, &long)
            .iter()
            .any(|e| e["type"] == "step")
        {
            break;
        }
        assert!(
            waited < 6000,
            "the long job never stepped: {}",
            job(&served, &keys.outsider, &long)
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    cancel(&keys.outsider, &long);
    assert_eq!(
        wait_final(&served, &keys.outsider, &long)["status"],
        "cancelled"
    );
    assert_eq!(wait_final(&served, &leaver, &queued)["status"], "cancelled");

    // The admin revokes the outsider's key; the owner removes the leaver's grant.
    let (_, me) = served.call("GET", "/v1/me", Some(&keys.outsider), None);
    let key_id = me["key_id"].as_str().unwrap().to_string();
    let (status, body) = served.call(
        "DELETE",
        &format!("/v1/keys/{key_id}"),
        Some(&keys.admin),
        None,
    );
    assert_eq!(status, 200, "{body}");
    let (status, body) = served.call(
        "DELETE",
        &format!("/v1/datanets/qa/grants/{LEAVER}"),
        Some(&keys.owner),
        None,
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        served.call("GET", "/v1/me", Some(&keys.outsider), None).0,
        401
    );

    // Resumed (by the admin, by the leaver itself), each fails naming the rule, no new step.
    for (key, id, rule) in [
        (&keys.admin, &long, "was revoked"),
        (&leaver, &queued, "may no longer read datanet 'qa'"),
    ] {
        let steps_before = events(&served, &keys.admin, id)
            .iter()
            .filter(|e| e["type"] == "step")
            .count();
        let (status, body) = served.call(
            "POST",
            &format!("/v1/fine_tuning/jobs/{id}/resume"),
            Some(key),
            None,
        );
        assert_eq!(status, 200, "{body}");
        let done = wait_final(&served, &keys.admin, id);
        assert_eq!(done["status"], "failed", "{done}");
        assert!(done["error"].as_str().unwrap().contains(rule), "{done}");
        let after = events(&served, &keys.admin, id);
        assert_eq!(
            after.iter().filter(|e| e["type"] == "step").count(),
            steps_before
        );
    }
    let (_, listed) = served.call("GET", "/v1/adapters", Some(&keys.admin), None);
    assert!(
        listed["adapters"].as_array().unwrap().is_empty(),
        "{listed}"
    );
    assert_eq!(victim_view(&served, &keys), before);
    assert!(served.terminate().success());
}
