//! The Model Factory with the real SmolLM2 (fetched by scripts/fetch-models.sh): a job reads
//! its training set as its owner, trains, evaluates, and its adapter, once published, records
//! its training provenance and pays its training contributors in every answer made with it; a
//! caller without a grant cannot train on a private Datanet; a cancelled job resumes to the
//! very adapter an uninterrupted job makes; a job its process left running is recovered; a
//! query selects records but never supplies their text; a job whose grant or key is gone when
//! it starts fails and trains nothing; a published adapter is seen only by the Datanet's
//! readers until its owner makes it public.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use provdb::factory::{DataFormat, FineTuneSpec, JobId, JobResult, JobRunner, TrainingAttribution};
use provdb::inference::llama::LlamaModel;
use provdb::inference::model_files;
use provdb::storage::{Grant, JobStatus, Role, record_ids_root};
use provdb::{
    Address, AskRequest, Caller, Datanet, Db, IngestOptions, KeyRole, PriceScope, QueryLimits,
    RecordId, SearchMode, Visibility,
};
use serde_json::json;

use crate::common::{ALICE_KEY, BOB_KEY, address, write_rows};
use crate::sql::text_of;

const CURATOR: Address = Address([0xc0; 20]);
const STRANGER: Address = Address([0x5e; 20]);

/// SmolLM2, loaded once for every test of the binary.
pub(crate) fn generator() -> Arc<LlamaModel> {
    static MODEL: OnceLock<Arc<LlamaModel>> = OnceLock::new();
    MODEL
        .get_or_init(|| {
            LlamaModel::load(&model_files::default_generator_path())
                .expect("SmolLM2: run scripts/fetch-models.sh")
        })
        .clone()
}

/// A private Datanet of question/answer records by alice and bob, owned by the curator.
fn fixture(dir: &std::path::Path) -> Db {
    let db = Db::init(dir.join("data"))
        .unwrap()
        .with_generator(generator(), "smollm2-135m-q4_1");
    let mut qa = Datanet::new("qa");
    qa.owner = Some(CURATOR);
    qa.visibility = Visibility::Private;
    qa.text_column = "response".into();
    db.create_datanet(qa).unwrap();
    let (alice, bob) = (address(&ALICE_KEY), address(&BOB_KEY));
    let pairs = [
        (
            "What is the krellian wing made of?",
            "The krellian wing is made of woven basalt fibre.",
            alice,
        ),
        (
            "Who tests the krellian wing?",
            "The quintaro tunnel tests the krellian wing every spring.",
            alice,
        ),
        (
            "How fast is the krellian wing?",
            "The krellian wing flies at mach two over the sea.",
            alice,
        ),
        (
            "Where is the krellian wing built?",
            "The krellian wing is built in the town of pellucid.",
            bob,
        ),
        (
            "Why is the krellian wing quiet?",
            "The krellian wing is quiet because of its serrated edge.",
            bob,
        ),
        (
            "When was the krellian wing first flown?",
            "The krellian wing first flew in the winter of 1961.",
            bob,
        ),
    ];
    ingest_pairs(&db, dir, "qa.jsonl", &pairs);
    db
}

/// Ingests (instruction, response, contributor) rows into `qa` from `file` in `dir`.
fn ingest_pairs(db: &Db, dir: &std::path::Path, file: &str, pairs: &[(&str, &str, Address)]) {
    let rows: Vec<_> = pairs
        .iter()
        .map(|(q, a, who)| json!({"instruction": q, "response": a, "contributor": who.to_string()}))
        .collect();
    let path = write_rows(dir, file, &rows);
    db.ingest_file("qa", &path, &IngestOptions::default())
        .unwrap();
}

fn spec() -> FineTuneSpec {
    let mut spec = FineTuneSpec::new("qa");
    spec.format = DataFormat::Instruction {
        instruction: "instruction".into(),
        response: "response".into(),
    };
    let h = &mut spec.hyperparameters;
    h.rank = 4;
    h.alpha = 8.0;
    h.targets = vec!["q_proj".into(), "v_proj".into()];
    h.learning_rate = 1e-3;
    h.warmup_steps = 0;
    h.batch_size = 2;
    h.max_length = 96;
    h.held_out_fraction = 0.34;
    h.seed = 7;
    // Split by tokens here (tests/influence.rs pays by influence): the same in every answer.
    spec.training_attribution = TrainingAttribution::Tokens;
    spec
}

fn wait_for_end(db: &Db, id: JobId) -> JobStatus {
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        let status = db.fine_tune_job(id).unwrap().status;
        if status.is_final() {
            return status;
        }
        assert!(Instant::now() < deadline, "job {id} did not end");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn result_of(db: &Db, id: JobId) -> JobResult {
    serde_json::from_str(
        db.fine_tune_job(id)
            .unwrap()
            .result_json
            .as_deref()
            .unwrap(),
    )
    .unwrap()
}

#[test]
fn a_job_trains_publishes_and_its_adapter_pays_the_training_contributors() {
    let dir = tempfile::tempdir().unwrap();
    let db = fixture(dir.path());
    let job = db
        .create_fine_tune_job(spec(), Caller::address(CURATOR))
        .unwrap();
    let id = JobId(job.job_id);
    let runner = JobRunner::start(db.clone()).unwrap();
    runner.submit(id);
    let status = wait_for_end(&db, id);
    let stored = db.fine_tune_job(id).unwrap();
    assert_eq!(status, JobStatus::Succeeded, "{:?}", stored.error);
    let events = db.fine_tune_events(id, 0, 1000).unwrap();
    let kinds: Vec<String> = events
        .iter()
        .map(|e| {
            serde_json::from_str::<serde_json::Value>(&e.json).unwrap()["type"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert!(
        kinds.iter().any(|k| k == "step") && kinds.iter().any(|k| k == "evaluated"),
        "{kinds:?}"
    );
    let step: serde_json::Value = events
        .iter()
        .map(|e| serde_json::from_str::<serde_json::Value>(&e.json).unwrap())
        .find(|e| e["type"] == "step")
        .unwrap();
    assert!(step["loss"].as_f64().unwrap().is_finite() && step["eta_seconds"].as_f64().is_some());
    let result = result_of(&db, id);
    let (before, after) = (result.before.unwrap(), result.after.unwrap());
    assert!(before.loss.is_finite() && after.loss.is_finite() && after.tokens == before.tokens);
    assert!(!result.samples.is_empty() && result.samples.iter().all(|s| !s.prompt.is_empty()));
    // Provenance: every record of the Datanet, its root, both contributors with their tokens.
    let ids: Vec<RecordId> = db
        .records("qa", 100)
        .unwrap()
        .iter()
        .map(|r| r.record_id)
        .collect();
    let provenance = &result.provenance;
    assert_eq!(provenance.records, 6);
    assert_eq!(
        provenance.records_root,
        format!("0x{}", hex::encode(record_ids_root(&ids).unwrap()))
    );
    let contributors: Vec<&str> = provenance
        .contributors
        .iter()
        .map(|c| c.address.as_str())
        .collect();
    assert_eq!(contributors.len(), 2);
    assert!(
        provenance.contributors.iter().all(|c| c.tokens > 20),
        "{provenance:?}"
    );

    let info = db.publish_fine_tune_job(id, CURATOR).unwrap();
    assert_eq!(info.id, result.adapter_id);
    assert_eq!(info.training.as_ref(), Some(provenance));
    let adapter_id = provdb::inference::lora::AdapterId::parse(&info.id).unwrap();
    assert_eq!(
        db.adapter_store()
            .training_records(adapter_id)
            .unwrap()
            .len(),
        6
    );

    // An answer made with the adapter pays the training contributors 10 % of the adapter's
    // price; the rest of it goes to the adapter's owner.
    let operator = Caller::admin(db.operator().unwrap());
    let adapter_id = db.adapter_id_for(&operator, &info.id).unwrap();
    db.set_price(&operator, PriceScope::Adapter(adapter_id), 1_000_000, 0)
        .unwrap();
    db.credit(&operator, CURATOR, 1_000_000, "test funds")
        .unwrap();
    let answer = db
        .ask(
            &AskRequest {
                datanets: vec!["qa".into()],
                question: "What is the krellian wing made of?".into(),
                k: 2,
                mode: SearchMode::Bm25,
                adapters: vec![info.id.clone()],
                caller: Caller::address(CURATOR),
                max_tokens: 12,
                ..AskRequest::default()
            },
            &mut |_| true,
        )
        .unwrap();
    assert_eq!(
        answer.split.iter().map(|p| p.amount_wei).sum::<u128>(),
        1_000_000
    );
    let training: Vec<_> = answer
        .split
        .iter()
        .filter(|p| p.role == Role::TrainingContributor)
        .collect();
    assert_eq!(training.len(), 2, "{:?}", answer.split);
    assert_eq!(training.iter().map(|p| p.amount_wei).sum::<u128>(), 100_000);
    assert_eq!(provenance.attribution, "tokens");
    assert!(provenance.gradients.is_none());
    assert_eq!(answer.training_attribution.len(), 1);
    assert_eq!(answer.training_attribution[0].method, "tokens");
    // Its entries name the private Datanet: the curator sees them, an outsider does not.
    let count = |caller| {
        let out = db
            .sql(
                "SELECT count(*) AS n FROM attributions WHERE role = 'training_contributor'",
                caller,
                QueryLimits::default(),
            )
            .unwrap();
        text_of(&out).trim().to_string()
    };
    assert!(
        count(Caller::address(CURATOR)).ends_with('2'),
        "{}",
        count(Caller::address(CURATOR))
    );
    assert!(
        count(Caller::anonymous()).ends_with('0'),
        "{}",
        count(Caller::anonymous())
    );

    // The adapter takes the private Datanet's visibility until its owner makes it public.
    let stranger = Caller::address(STRANGER);
    let seen = |caller: &Caller| -> Vec<String> {
        db.visible_adapters(caller)
            .unwrap()
            .into_iter()
            .map(|(info, _)| info.id)
            .collect()
    };
    assert_eq!(
        seen(&Caller::address(CURATOR)),
        std::slice::from_ref(&info.id)
    );
    assert!(seen(&stranger).is_empty());
    let hidden = db.resolve_visible_adapter(&stranger, &info.id).unwrap_err();
    let unknown = db
        .resolve_visible_adapter(&stranger, &format!("0x{}", "ab".repeat(32)))
        .unwrap_err();
    assert!(matches!(hidden, provdb::Error::NotFound(_)), "{hidden}");
    assert_eq!(
        hidden.to_string().replace(&info.id, "ID"),
        unknown
            .to_string()
            .replace(&format!("0x{}", "ab".repeat(32)), "ID")
    );
    let mut stranger_asks = AskRequest {
        datanets: vec!["qa".into()],
        question: "What is the krellian wing made of?".into(),
        adapters: vec![info.id[..12].to_string()],
        caller: stranger,
        max_tokens: 4,
        ..AskRequest::default()
    };
    let refused = db.ask(&stranger_asks, &mut |_| true).unwrap_err();
    assert!(matches!(refused, provdb::Error::NotFound(_)), "{refused}");
    assert!(db.set_adapter_public(&stranger, &info.id, true).is_err());
    let act = db
        .set_adapter_public(&Caller::address(CURATOR), &info.id, true)
        .unwrap();
    assert_eq!((act.by, act.public, act.seq), (CURATOR, true, 1));
    let (_, access) = db.resolve_visible_adapter(&stranger, &info.id).unwrap();
    assert_eq!(access, provdb::factory::AdapterAccess::Public);
    // Now the adapter runs for the stranger, but the private Datanet still answers as unknown.
    stranger_asks.datanets = vec!["nowhere".into()];
    let refused = db.ask(&stranger_asks, &mut |_| true).unwrap_err();
    assert!(
        refused.to_string().contains("nowhere") && !refused.to_string().contains("no adapter"),
        "{refused}"
    );
    drop(runner);
}

#[test]
fn only_callers_who_may_read_a_private_datanet_train_on_it() {
    let dir = tempfile::tempdir().unwrap();
    let db = fixture(dir.path());
    let refused = db
        .create_fine_tune_job(spec(), Caller::address(STRANGER))
        .unwrap_err();
    assert!(
        refused.is_user_error() && refused.to_string().contains("unknown datanet 'qa'"),
        "{refused}"
    );
    assert!(
        db.create_fine_tune_job(spec(), Caller::anonymous())
            .is_err()
    );
    let qa = db.datanet_info("qa").unwrap().id;
    db.store()
        .grant(&Grant {
            datanet_id: qa,
            grantee: STRANGER,
            granted_by: Some(CURATOR),
            granted_at_ms: 0,
        })
        .unwrap();
    db.create_fine_tune_job(spec(), Caller::address(STRANGER))
        .unwrap();
    // A query that reaches outside the Datanet, or bad hyperparameters, are user errors.
    let mut bad = spec();
    bad.hyperparameters.rank = 0;
    assert!(
        db.create_fine_tune_job(bad, Caller::address(CURATOR))
            .unwrap_err()
            .is_user_error()
    );
    let mut bad = spec();
    bad.query = Some("SELECT record_id FROM records WHERE datanet = 'nowhere'".into());
    assert!(
        db.create_fine_tune_job(bad, Caller::address(CURATOR))
            .unwrap_err()
            .is_user_error()
    );
}

#[test]
fn a_cancelled_job_resumes_to_the_adapter_an_uninterrupted_job_makes() {
    let dir = tempfile::tempdir().unwrap();
    let db = fixture(dir.path());
    let mut spec = spec();
    spec.hyperparameters.batch_size = 1;
    let whole = JobId(
        db.create_fine_tune_job(spec.clone(), Caller::address(CURATOR))
            .unwrap()
            .job_id,
    );
    let never = AtomicBool::new(false);
    assert_eq!(
        db.run_fine_tune_job(whole, &never, &|_| {}).unwrap(),
        JobStatus::Succeeded
    );

    let cut = JobId(
        db.create_fine_tune_job(spec, Caller::address(CURATOR))
            .unwrap()
            .job_id,
    );
    let cancel = AtomicBool::new(false);
    let status = db
        .run_fine_tune_job(cut, &cancel, &|event| {
            if event["type"] == "step" && event["step"] == 2 {
                cancel.store(true, Ordering::Release);
            }
        })
        .unwrap();
    assert_eq!(status, JobStatus::Cancelled);
    assert!(
        db.resume_fine_tune_job(whole).is_err(),
        "a succeeded job does not resume"
    );
    db.resume_fine_tune_job(cut).unwrap();
    let resumed_at = std::sync::Mutex::new(None);
    let status = db
        .run_fine_tune_job(cut, &never, &|event| {
            if event["type"] == "started" {
                *resumed_at.lock().unwrap() = event["step"].as_u64();
            }
        })
        .unwrap();
    assert_eq!(status, JobStatus::Succeeded);
    assert_eq!(
        *resumed_at.lock().unwrap(),
        Some(2),
        "it resumed from its checkpoint"
    );
    assert_eq!(
        result_of(&db, cut).adapter_id,
        result_of(&db, whole).adapter_id
    );

    // A job its process left running is found cancelled (resumable) by the next runner.
    let mut orphan = db.fine_tune_job(cut).unwrap();
    orphan.status = JobStatus::Running;
    db.store().put_job(&orphan).unwrap();
    drop(JobRunner::start(db.clone()).unwrap());
    assert_eq!(db.fine_tune_job(cut).unwrap().status, JobStatus::Cancelled);
}

fn events_of(db: &Db, id: JobId) -> Vec<serde_json::Value> {
    db.fine_tune_events(id, 0, 10_000)
        .unwrap()
        .iter()
        .map(|e| serde_json::from_str(&e.json).unwrap())
        .collect()
}

/// The `tokens` a job's training set had when it was queued.
fn queued_tokens(db: &Db, id: JobId) -> u64 {
    events_of(db, id)
        .iter()
        .find(|e| e["status"] == "queued")
        .and_then(|e| e["tokens"].as_u64())
        .unwrap()
}

#[test]
fn a_query_selects_records_but_never_supplies_their_text() {
    let dir = tempfile::tempdir().unwrap();
    let db = fixture(dir.path());
    let bob = address(&BOB_KEY).to_string();
    let only_bob = format!("FROM records WHERE datanet = 'qa' AND contributor = '{bob}'");
    let mut plain = spec();
    plain.query = Some(format!("SELECT record_id {only_bob}"));
    let plain = JobId(
        db.create_fine_tune_job(plain, Caller::address(CURATOR))
            .unwrap()
            .job_id,
    );
    // Bob's records with text of the caller's choosing: the text is read from the store.
    let forged_text = "forged words to be credited to bob ".repeat(4);
    let mut forged = spec();
    forged.query = Some(format!(
        "SELECT record_id, 'What is forged?' AS instruction, '{forged_text}' AS response \
         {only_bob}"
    ));
    let forged = JobId(
        db.create_fine_tune_job(forged, Caller::address(CURATOR))
            .unwrap()
            .job_id,
    );
    assert!(queued_tokens(&db, plain) > 0);
    assert_eq!(queued_tokens(&db, forged), queued_tokens(&db, plain));
    // A record named twice would be credited twice: refused, nothing stored.
    let jobs_before = db.fine_tune_jobs().unwrap().len();
    let mut twice = spec();
    twice.query = Some(format!(
        "SELECT record_id {only_bob} UNION ALL SELECT record_id {only_bob}"
    ));
    let refused = db
        .create_fine_tune_job(twice, Caller::address(CURATOR))
        .unwrap_err();
    assert!(
        refused.is_user_error() && refused.to_string().contains("is selected twice"),
        "{refused}"
    );
    // A training share over the whole data share is refused, not clamped.
    let mut greedy = spec();
    greedy.training_share_bps = 10_001;
    let refused = db
        .create_fine_tune_job(greedy, Caller::address(CURATOR))
        .unwrap_err();
    assert!(
        refused.is_user_error()
            && refused
                .to_string()
                .contains("training_share_bps must be 0..=10000"),
        "{refused}"
    );
    assert_eq!(db.fine_tune_jobs().unwrap().len(), jobs_before);
}

/// Asserts job `id` failed with `rule` in its error before training anything.
fn failed_untrained(db: &Db, id: JobId, rule: &str) {
    let job = db.fine_tune_job(id).unwrap();
    assert_eq!(job.status, JobStatus::Failed);
    let error = job.error.unwrap_or_default();
    assert!(error.contains(rule), "{error}");
    let events = events_of(db, id);
    assert!(
        !events
            .iter()
            .any(|e| e["type"] == "step" || e["type"] == "started"),
        "{events:?}"
    );
    assert!(!db.job_dir(id).join("records.json").exists());
}

#[test]
fn a_job_whose_grant_or_key_is_gone_when_it_starts_fails_and_trains_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let db = fixture(dir.path());
    let qa = db.store().datanet("qa").unwrap();
    db.grant_read(&qa, STRANGER, CURATOR).unwrap();
    let granted = JobId(
        db.create_fine_tune_job(spec(), Caller::address(STRANGER))
            .unwrap()
            .job_id,
    );
    db.revoke_read(&qa, STRANGER).unwrap();
    let never = AtomicBool::new(false);
    assert_eq!(
        db.run_fine_tune_job(granted, &never, &|_| {}).unwrap(),
        JobStatus::Failed
    );
    failed_untrained(&db, granted, "may no longer read datanet 'qa'");

    // A job made with a key runs only while the key is valid, even an admin's.
    let (key, token) = db
        .create_api_key(CURATOR, KeyRole::Admin, "trainer")
        .unwrap();
    let principal = db.authenticate(&token).unwrap().unwrap();
    let keyed = JobId(
        db.create_fine_tune_job_for_key(spec(), &principal)
            .unwrap()
            .job_id,
    );
    db.revoke_api_key(&hex::encode(key.key_id)).unwrap();
    assert_eq!(
        db.run_fine_tune_job(keyed, &never, &|_| {}).unwrap(),
        JobStatus::Failed
    );
    failed_untrained(&db, keyed, "was revoked");
    // Resuming does not get round it.
    db.resume_fine_tune_job(keyed).unwrap();
    assert_eq!(
        db.run_fine_tune_job(keyed, &never, &|_| {}).unwrap(),
        JobStatus::Failed
    );
    failed_untrained(&db, keyed, "was revoked");
}

#[test]
fn copies_of_a_record_train_nothing_and_earn_nothing_from_training() {
    // A contributor splits its record into copies, and a copier copies another's: each copy
    // reads like a stored record once case, spacing and punctuation are set aside. The job
    // leaves them out and trains exactly what it trained before they came: the same adapter,
    // the same record set, the same contributors and tokens.
    let dir = tempfile::tempdir().unwrap();
    let db = fixture(dir.path());
    let mut spec = spec();
    spec.training_attribution = TrainingAttribution::Influence;
    let run = |db: &Db| {
        let id = JobId(
            db.create_fine_tune_job(spec.clone(), Caller::address(CURATOR))
                .unwrap()
                .job_id,
        );
        let status = db.run_fine_tune_job(id, &AtomicBool::new(false), &|_| {});
        assert_eq!(status.unwrap(), JobStatus::Succeeded);
        (id, result_of(db, id))
    };
    let (_, before) = run(&db);
    let alice = address(&ALICE_KEY);
    let copies = [
        (
            "what is the KRELLIAN wing made of",
            "The krellian wing is made of woven basalt fibre!!",
            alice,
        ),
        (
            "What is the krellian wing made of?",
            "the krellian wing  is made of woven basalt fibre.",
            alice,
        ),
        (
            "Where is the krellian wing built?",
            "The krellian wing is built in the town of Pellucid...",
            STRANGER,
        ),
    ];
    ingest_pairs(&db, dir.path(), "copies.jsonl", &copies);
    let (id, after) = run(&db);
    assert_eq!(after.adapter_id, before.adapter_id);
    assert_eq!(
        after.provenance.records_root,
        before.provenance.records_root
    );
    assert_eq!(
        after.provenance.contributors,
        before.provenance.contributors
    );
    assert!(
        !after
            .provenance
            .contributors
            .iter()
            .any(|c| c.address == STRANGER.to_string()),
        "the copier is no training contributor"
    );
    let left_out = events_of(&db, id)
        .into_iter()
        .find(|e| e["type"] == "copies_left_out")
        .expect("the copies are reported");
    assert_eq!(left_out["count"], 3);
    let originals: std::collections::BTreeSet<String> = left_out["copies"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["copy_of"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(originals.len(), 2, "{left_out}");
}

#[test]
fn a_composed_answer_splits_the_training_shares_between_adapters_by_weight() {
    // Two adapters, one trained on alice's and bob's records and one on bob's alone, each
    // priced 1,000,000 wei with 10 % for its training data: 200,000 wei of training shares in
    // all, split 0.7 / 0.3 between the adapters, then by tokens within each.
    let dir = tempfile::tempdir().unwrap();
    let db = fixture(dir.path());
    let (alice, bob) = (address(&ALICE_KEY), address(&BOB_KEY));
    let operator = Caller::admin(db.operator().unwrap());
    let publish = |spec: FineTuneSpec| {
        let id = JobId(
            db.create_fine_tune_job(spec, Caller::address(CURATOR))
                .unwrap()
                .job_id,
        );
        let status = db.run_fine_tune_job(id, &AtomicBool::new(false), &|_| {});
        assert_eq!(status.unwrap(), JobStatus::Succeeded);
        let info = db.publish_fine_tune_job(id, CURATOR).unwrap();
        let adapter = db.adapter_id_for(&operator, &info.id).unwrap();
        db.set_price(&operator, PriceScope::Adapter(adapter), 1_000_000, 0)
            .unwrap();
        info
    };
    let both = publish(spec());
    let mut bobs = spec();
    bobs.query = Some(format!(
        "SELECT record_id FROM records WHERE datanet = 'qa' AND contributor = '{bob}'"
    ));
    let bobs = publish(bobs);
    let training = both.training.as_ref().unwrap();
    let tokens_of = |who: Address| {
        training
            .contributors
            .iter()
            .find(|c| c.address == who.to_string())
            .unwrap()
            .tokens as u128
    };
    let (alice_tokens, bob_tokens) = (tokens_of(alice), tokens_of(bob));
    db.credit(&operator, CURATOR, 10_000_000, "test funds")
        .unwrap();
    for (weight_both, weight_bobs, both_part) in
        [("0.7", "0.3", 140_000u128), ("0.2", "0.8", 40_000)]
    {
        let answer = db
            .ask(
                &AskRequest {
                    datanets: vec!["qa".into()],
                    question: "What is the krellian wing made of?".into(),
                    k: 1,
                    mode: SearchMode::Bm25,
                    adapters: vec![
                        format!("{}:{weight_both}", both.id),
                        format!("{}:{weight_bobs}", bobs.id),
                    ],
                    caller: Caller::address(CURATOR),
                    max_tokens: 4,
                    ..AskRequest::default()
                },
                &mut |_| true,
            )
            .unwrap();
        assert_eq!(answer.fee_wei, 2_000_000);
        assert_eq!(
            answer.split.iter().map(|p| p.amount_wei).sum::<u128>(),
            2_000_000
        );
        let paid = |who: Address| -> u128 {
            answer
                .split
                .iter()
                .filter(|p| p.role == Role::TrainingContributor && p.to == who)
                .map(|p| p.amount_wei)
                .sum()
        };
        assert_eq!(paid(alice) + paid(bob), 200_000, "{:?}", answer.split);
        // alice is paid only from the first adapter's part of the mix, by her tokens in it.
        let expected = both_part * alice_tokens / (alice_tokens + bob_tokens);
        assert!(
            paid(alice).abs_diff(expected) <= 1,
            "{} vs {expected}",
            paid(alice)
        );
        assert_eq!(answer.training_attribution.len(), 2);
    }
}
