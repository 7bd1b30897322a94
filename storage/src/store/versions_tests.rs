//! Who may store a version over a record, what is recorded of it, and how values written
//! before signature schemes and acts existed read.

use super::*;
use crate::acts::{ActingRole, Committer, SignaturePolicy, SignatureScheme, VersionAct};
use crate::codec;
use crate::model::{NewRecord, RecordId, Status};

const ALICE: Address = Address([0xa1; 20]);
const BOB: Address = Address([0xb0; 20]);
const OWNER: Address = Address([0x0e; 20]);
const CURATOR: Address = Address([0xc0; 20]);

fn open(dir: &std::path::Path) -> Store {
    let options = StoreOptions {
        sync_writes: false,
        ..StoreOptions::default()
    };
    Store::open(dir, options).unwrap()
}

fn record(text: &str, contributor: Address, supersedes: Option<RecordId>) -> NewRecord {
    let mut record = NewRecord::new(format!("{{\"text\":\"{text}\"}}"), None, contributor);
    record.supersedes = supersedes;
    record
}

/// A store with Datanet `d` (owner OWNER, curator CURATOR) holding one record of ALICE's.
fn store_with_alices_record(dir: &std::path::Path) -> (Store, u32, RecordId) {
    let store = open(dir);
    let mut spec = Datanet::new("d");
    spec.owner = Some(OWNER);
    let id = store.create_datanet(spec).unwrap().id;
    let curator = crate::access::Curator {
        address: CURATOR,
        added_by: Some(OWNER),
        added_at_ms: 1,
    };
    store.add_curator(id, &curator).unwrap();
    let v1 = record("alice v1", ALICE, None);
    let v1_id = v1.record_id();
    store.commit_records(id, vec![v1]).unwrap();
    (store, id, v1_id)
}

#[test]
fn another_contributors_version_is_refused_whole_and_the_owner_keeps_hers() {
    let dir = tempfile::tempdir().unwrap();
    let (store, id, v1) = store_with_alices_record(dir.path());
    let sequence = store.sequence().unwrap();
    for committer in [Committer::Contributors, Committer::Principal(BOB)] {
        let batch = vec![
            record("bob's own", BOB, None),
            record("bob's takeover", BOB, Some(v1)),
        ];
        let error = store.try_commit_records(id, batch, committer).unwrap_err();
        assert_eq!(error.records.len(), 2, "the records come back to be named");
        let message = error.error.to_string();
        assert!(
            message.contains(&format!(
                "record {v1} belongs to contributor {ALICE}; only {ALICE} or a curator of datanet 'd'"
            )),
            "{message}"
        );
        assert!(error.error.is_user_error());
    }
    // Bob naming Alice as the contributor of his unsigned version speaks only for himself.
    let impersonation = vec![record("by bob for alice", ALICE, Some(v1))];
    assert!(
        store
            .try_commit_records(id, impersonation, Committer::Principal(BOB))
            .is_err()
    );
    assert!(store.tombstone(&v1, Committer::Principal(BOB), 9).is_err());
    assert_eq!(store.sequence().unwrap(), sequence, "nothing was written");
    assert_eq!(store.superseded_by(&v1).unwrap(), None);

    let v2 = record("alice v2", ALICE, Some(v1));
    let v2_id = v2.record_id();
    store
        .try_commit_records(id, vec![v2], Committer::Principal(ALICE))
        .unwrap();
    let stored = store.record(&v2_id).unwrap().unwrap();
    assert_eq!(
        (stored.version, stored.act),
        (
            2,
            Some(VersionAct {
                by: ALICE,
                role: ActingRole::Contributor
            })
        )
    );
    store
        .tombstone(&v2_id, Committer::Principal(ALICE), 9)
        .unwrap();
}

#[test]
fn curators_owners_and_admins_act_as_such() {
    let dir = tempfile::tempdir().unwrap();
    let (store, id, v1) = store_with_alices_record(dir.path());
    let by_curator = record("curated", CURATOR, Some(v1));
    let curated = by_curator.record_id();
    store
        .try_commit_records(id, vec![by_curator], Committer::Principal(CURATOR))
        .unwrap();
    let act = store.record(&curated).unwrap().unwrap().act;
    assert_eq!(
        act,
        Some(VersionAct {
            by: CURATOR,
            role: ActingRole::Curator
        })
    );
    let receipt = store
        .tombstone(&curated, Committer::Principal(OWNER), 9)
        .unwrap();
    let tombstone = store.superseded_by(&curated).unwrap().unwrap();
    let stored = store.record(&tombstone).unwrap().unwrap();
    assert_eq!(
        (stored.status, stored.sequence),
        (Status::Tombstoned, receipt.sequence)
    );
    assert_eq!(
        stored.act,
        Some(VersionAct {
            by: OWNER,
            role: ActingRole::Owner
        })
    );
    let other = record("alice other", ALICE, None);
    let other_id = other.record_id();
    store.commit_records(id, vec![other]).unwrap();
    store
        .tombstone(&other_id, Committer::Admin(BOB), 9)
        .unwrap();
    let tombstone = store.superseded_by(&other_id).unwrap().unwrap();
    let act = store.record(&tombstone).unwrap().unwrap().act;
    assert_eq!(
        act,
        Some(VersionAct {
            by: BOB,
            role: ActingRole::Admin
        })
    );
    // A status change rewrites the record and keeps its act.
    store.set_status(&curated, Status::Rejected).unwrap();
    assert_eq!(
        store.record(&curated).unwrap().unwrap().act.map(|a| a.role),
        Some(ActingRole::Curator)
    );
}

/// Values as a provdb before signature schemes wrote them (no extension): a Datanet accepts
/// both schemes on chain 1, a signed record reads as EIP-191 in point reads and scans, and
/// its contributor can still version it.
#[test]
fn values_written_before_extensions_read_as_the_old_rules() {
    let dir = tempfile::tempdir().unwrap();
    let (store, id, v1) = store_with_alices_record(dir.path());
    let mut signed = record("signed long ago", ALICE, None);
    signed.signature = Some(vec![7; 65]);
    signed.signature_scheme = Some(SignatureScheme::Eip191);
    let signed_id = signed.record_id();
    store.commit_records(id, vec![signed]).unwrap();
    let mut old_datanet = store.datanet("d").unwrap();
    old_datanet.signatures = SignaturePolicy::default();
    let old_record = store.record(&signed_id).unwrap().unwrap();
    let datanets = store.cf(CF_DATANETS).unwrap();
    let records = store.cf(CF_RECORDS).unwrap();
    store
        .db
        .put_cf(datanets, b"d", codec::encode(&old_datanet).unwrap())
        .unwrap();
    store
        .db
        .put_cf(records, signed_id.0, codec::encode(&old_record).unwrap())
        .unwrap();
    drop(store);

    let store = open(dir.path());
    let datanet = store.datanet("d").unwrap();
    assert!(datanet.signatures.accepts_eip191);
    assert_eq!(datanet.signatures.chain_id, crate::acts::DEFAULT_CHAIN_ID);
    let read = store.record(&signed_id).unwrap().unwrap();
    assert_eq!(
        (read.signature_scheme, read.act),
        (Some(SignatureScheme::Eip191), None)
    );
    let mut schemes = Vec::new();
    store
        .visit_datanet_records(id, 0, 1, &mut |view| {
            schemes.push((view.record_id, view.signature_scheme));
            Ok::<bool, StorageError>(true)
        })
        .unwrap();
    assert!(schemes.contains(&(signed_id, Some(SignatureScheme::Eip191))));
    assert!(schemes.contains(&(v1, None)));
    let v2 = record("signed long ago, v2", ALICE, Some(signed_id));
    store.commit_records(id, vec![v2]).unwrap();
    assert!(store.superseded_by(&signed_id).unwrap().is_some());
}

/// One attempt to replace a head version: by which committer, with which contributor, as a
/// new version (`true`) or a tombstone.
#[derive(Clone, Debug)]
struct Attempt {
    head: usize,
    committer: usize,
    contributor: usize,
    new_version: bool,
}

const PEOPLE: [Address; 4] = [ALICE, BOB, OWNER, CURATOR];

fn attempt() -> impl proptest::strategy::Strategy<Value = Attempt> {
    use proptest::prelude::*;
    (0usize..4, 0usize..5, 0usize..4, any::<bool>()).prop_map(
        |(head, committer, contributor, new_version)| Attempt {
            head,
            committer,
            contributor,
            new_version,
        },
    )
}

/// What the rule says of an attempt on a version of `old`'s: the act it stores, or `None` when
/// it must be refused. (Unsigned records: a principal speaks only for its own address.)
fn expected_act(attempt: &Attempt, old: Address) -> Option<VersionAct> {
    let committer = PEOPLE.get(attempt.committer).copied();
    let contributor = match (attempt.new_version, committer) {
        (true, _) => PEOPLE[attempt.contributor],
        (false, Some(by)) => by,
        (false, None) => old,
    };
    let speaks = committer.is_none_or(|by| by == contributor);
    if speaks && contributor == old {
        return Some(VersionAct {
            by: old,
            role: ActingRole::Contributor,
        });
    }
    match committer {
        Some(OWNER) => Some(VersionAct {
            by: OWNER,
            role: ActingRole::Owner,
        }),
        Some(CURATOR) => Some(VersionAct {
            by: CURATOR,
            role: ActingRole::Curator,
        }),
        _ => None,
    }
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(24))]

    /// Whatever principals try, in any order, each attempt to supersede or remove a record is
    /// stored exactly when the rule allows it, with the act the rule names, and a refused
    /// attempt writes nothing.
    #[test]
    fn only_contributors_and_curators_ever_replace_a_record(
        attempts in proptest::collection::vec(attempt(), 1..16),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let (store, id, first) = store_with_alices_record(dir.path());
        let mut heads = vec![first];
        for (n, who) in [BOB, ALICE, OWNER].iter().enumerate() {
            let own = record(&format!("first {n}"), *who, None);
            heads.push(own.record_id());
            store.commit_records(id, vec![own]).unwrap();
        }
        for (n, attempt) in attempts.iter().enumerate() {
            let head = heads[attempt.head];
            let old = store.record(&head).unwrap().unwrap();
            let committer = match PEOPLE.get(attempt.committer) {
                None => Committer::Contributors,
                Some(by) => Committer::Principal(*by),
            };
            let before = store.sequence().unwrap();
            let stored = if old.status == Status::Tombstoned {
                continue;
            } else if attempt.new_version {
                let text = format!("attempt {n}");
                let new = record(&text, PEOPLE[attempt.contributor], Some(head));
                let new_id = new.record_id();
                store.try_commit_records(id, vec![new], committer).ok().map(|_| new_id)
            } else {
                store.tombstone(&head, committer, 9).ok()
                    .map(|_| store.superseded_by(&head).unwrap().unwrap())
            };
            let expected = expected_act(attempt, old.contributor);
            match stored {
                Some(new_id) => {
                    let act = store.record(&new_id).unwrap().unwrap().act;
                    proptest::prop_assert_eq!(act, expected, "{:?} on {}", attempt, old.contributor);
                    heads[attempt.head] = new_id;
                }
                None => {
                    proptest::prop_assert_eq!(expected, None, "{:?} refused", attempt);
                    proptest::prop_assert_eq!(store.sequence().unwrap(), before);
                }
            }
        }
    }
}
