//! Amounts are bounded and checked: a fee above the cap is refused by the embedded API before
//! anything loads or is written, and amounts up to `u128::MAX` stored in the ledger read back
//! exactly through every audit table, sums included.

use provdb::storage::{AnswerId, AnswerRecord, NewAnswer, NewEntry, Role, keccak256};
use provdb::{Address, AskRequest, Caller, DEFAULT_MAX_FEE_WEI, Db, Error, QueryLimits};

use crate::sql::text_of;

fn pay(seed: &str, to: u8, amount_wei: u128) -> NewAnswer {
    NewAnswer {
        record: AnswerRecord {
            answer_id: AnswerId(keccak256(seed.as_bytes())),
            ts_ms: 1,
            caller: None,
            datanet_ids: vec![],
            question: "q".into(),
            text: "a".into(),
            model: "test".into(),
            adapter: None,
            fee_wei: amount_wei,
            attribution: "cited".into(),
            citations: vec![],
            first_seq: 0,
            entries: 0,
        },
        entries: vec![NewEntry {
            datanet_id: None,
            record_id: None,
            chunk_id: None,
            to: Address([to; 20]),
            role: Role::Contributor,
            weight_ppm: 0,
            amount_wei,
        }],
    }
}

fn sql(db: &Db, query: &str) -> String {
    let caller = Caller::admin(Address([0xad; 20]));
    let output = db.sql(query, caller, QueryLimits::default()).unwrap();
    text_of(&output).trim().to_string()
}

#[test]
fn a_fee_above_the_cap_is_refused_before_anything_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::init(dir.path()).unwrap();
    db.create_datanet(provdb::Datanet::new("d")).unwrap();
    let ask = |db: &Db, fee_wei| {
        let request = AskRequest {
            datanets: vec!["d".into()],
            question: "What holds the wing?".into(),
            fee_wei,
            ..AskRequest::default()
        };
        db.ask(&request, &mut |_| true).unwrap_err()
    };
    for fee in [DEFAULT_MAX_FEE_WEI + 1, 10u128.pow(31), u128::MAX] {
        let refused = ask(&db, fee);
        assert!(matches!(refused, Error::Invalid(_)), "{refused}");
        assert!(
            refused
                .to_string()
                .contains(&format!("maximum fee of {DEFAULT_MAX_FEE_WEI} wei")),
            "{refused}"
        );
    }
    // The operator's cap: 100 passes the check (and fails only for want of a model here).
    let db = db.with_max_fee_wei(100);
    assert!(ask(&db, 101).to_string().contains("maximum fee of 100 wei"));
    assert!(ask(&db, 100).to_string().contains("no generator model"));
    assert_eq!(db.verify_ledger().unwrap().entries, 0);
    assert_eq!(db.store().ledger_total_wei().unwrap(), 0);
}

#[test]
fn amounts_up_to_u128_max_read_exactly_in_every_audit_table() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::init(dir.path()).unwrap();
    let store = db.store();
    let big = u128::MAX - 2;
    store.append_answers(vec![pay("big", 1, big)]).unwrap();
    db.close_epoch().unwrap();
    store.append_answers(vec![pay("small", 2, 2)]).unwrap();
    db.close_epoch().unwrap();
    // The ledger is full: one more wei would wrap its total.
    let refused = store.append_answers(vec![pay("more", 2, 1)]).unwrap_err();
    assert!(refused.is_user_error(), "{refused}");

    let max = u128::MAX.to_string();
    assert_eq!(
        sql(&db, "SELECT amount_wei FROM attributions ORDER BY seq"),
        format!("{big}\n2")
    );
    assert_eq!(sql(&db, "SELECT sum(amount_wei) FROM attributions"), max);
    assert_eq!(
        sql(
            &db,
            "SELECT CAST(sum(amount_wei) AS VARCHAR) FROM attributions"
        ),
        max
    );
    assert_eq!(
        sql(&db, "SELECT total_wei FROM epochs ORDER BY epoch"),
        format!("{big}\n{max}")
    );
    assert_eq!(
        sql(
            &db,
            "SELECT sum(cumulative_wei) FROM balances WHERE epoch = 2"
        ),
        max
    );
    assert_eq!(
        sql(
            &db,
            "SELECT count(*) FROM attributions WHERE amount_wei > 1000"
        ),
        "1"
    );
}
