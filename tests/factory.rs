//! The Model Factory with the real SmolLM2 (fetched by scripts/fetch-models.sh): a job reads
//! its training set as its owner, trains, evaluates, and its adapter, once published, records
//! its training provenance and pays its training contributors in every answer made with it; a
//! caller without a grant cannot train on a private Datanet; a cancelled job resumes to the
//! very adapter an uninterrupted job makes; a job its process left running is recovered.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use provdb::factory::{DataFormat, FineTuneSpec, JobId, JobResult, JobRunner};
use provdb::inference::llama::LlamaModel;
use provdb::inference::model_files;
use provdb::storage::{Grant, JobStatus, Role, record_ids_root};
use provdb::{
    Address, AskRequest, Caller, Datanet, Db, IngestOptions, QueryLimits, RecordId, SearchMode,
    Visibility,
};
use serde_json::json;

use crate::common::{ALICE_KEY, BOB_KEY, address, write_rows};
use crate::sql::text_of;

const CURATOR: Address = Address([0xc0; 20]);
const STRANGER: Address = Address([0x5e; 20]);

fn generator() -> Arc<LlamaModel> {
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
    let rows: Vec<_> = pairs
        .iter()
        .map(|(q, a, who)| json!({"instruction": q, "response": a, "contributor": who.to_string()}))
        .collect();
    let path = write_rows(dir, "qa.jsonl", &rows);
    db.ingest_file("qa", &path, &IngestOptions::default())
        .unwrap();
    db
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

    // An answer made with the adapter pays the training contributors 10 % of the data share.
    let answer = db
        .ask(
            &AskRequest {
                datanets: vec!["qa".into()],
                question: "What is the krellian wing made of?".into(),
                k: 2,
                mode: SearchMode::Bm25,
                adapters: vec![info.id.clone()],
                fee_wei: 1_000_000,
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
