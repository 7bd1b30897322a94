//! Who a job acts as when it runs or publishes: its owner as of now, not as of its creation.
//!
//! Invariant: a job made with an API key starts, resumes and publishes only while that key
//! exists and is not revoked, with the key's access at that moment; any job (a key's or the
//! local operator's) does so only while its owner may still read its Datanet. Otherwise it
//! fails with a message naming the rule, before reading or training anything.

use provdb_query::Caller;
use provdb_storage::{JobRecord, KeyRole, StorageError};

use super::spec::{JobId, StoredSpec};
use crate::db::Db;
use crate::error::{Error, Result};

/// The caller job `id` reads its training data as, checked now.
pub(crate) fn job_caller(
    db: &Db,
    id: JobId,
    job: &JobRecord,
    stored: &StoredSpec,
) -> Result<Caller> {
    let caller = match &stored.key_id {
        None if stored.as_admin => Caller::admin(job.owner),
        None => Caller::address(job.owner),
        Some(key_id) => key_caller(db, id, job, key_id)?,
    };
    let name = &stored.spec.datanet;
    let readable = match db.store().datanet(name) {
        Ok(datanet) => caller.may_read(db.store(), &datanet)?,
        Err(StorageError::UnknownDatanet(_)) => false,
        Err(e) => return Err(e.into()),
    };
    if !readable {
        return Err(Error::Invalid(format!(
            "job {id}: its owner {} may no longer read datanet '{name}' (its read grant was \
             removed, or the Datanet is gone); a job trains and publishes only what its owner \
             may read now, so nothing was done",
            job.owner
        )));
    }
    Ok(caller)
}

fn key_caller(db: &Db, id: JobId, job: &JobRecord, key_id: &str) -> Result<Caller> {
    let mut raw = [0u8; 8];
    hex::decode_to_slice(key_id, &mut raw)
        .map_err(|_| Error::Internal(format!("job {id} stores a malformed key id '{key_id}'")))?;
    let key = db.store().api_key(&raw)?;
    let Some(key) = key.filter(|k| k.revoked_at_ms.is_none() && k.address == job.owner) else {
        return Err(Error::Invalid(format!(
            "job {id}: the API key {key_id} that created it was revoked; a job runs and \
             publishes only while its owner's key is valid, so nothing was done"
        )));
    };
    Ok(if key.role == KeyRole::Admin {
        Caller::admin(key.address)
    } else {
        Caller::address(key.address)
    })
}
