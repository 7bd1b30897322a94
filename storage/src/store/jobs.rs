//! Fine-tuning jobs and their events, and adapters' visibility acts (see `crate::jobs`):
//! synced writes of their own, a job's events keyed `job id ‖ seq` and an adapter's acts
//! `adapter id ‖ seq`, so they read back in order. Acts are never changed or removed.

use rocksdb::{WriteBatch, WriteOptions};

use super::Store;
use crate::codec::{decode, encode};
use crate::error::{Result, StorageError};
use crate::jobs::{AdapterAct, JobEvent, JobRecord};
use crate::keys::{CF_ADAPTER_ACTS, CF_JOB_EVENTS, CF_JOBS};
use crate::model::Address;

fn event_key(job_id: &[u8; 16], seq: u64) -> [u8; 24] {
    let mut key = [0u8; 24];
    key[..16].copy_from_slice(job_id);
    key[16..].copy_from_slice(&seq.to_be_bytes());
    key
}

fn act_key(adapter_id: &[u8; 32], seq: u64) -> [u8; 40] {
    let mut key = [0u8; 40];
    key[..32].copy_from_slice(adapter_id);
    key[32..].copy_from_slice(&seq.to_be_bytes());
    key
}

impl Store {
    fn write_job_batch(&self, batch: WriteBatch) -> Result<()> {
        let mut options = WriteOptions::default();
        options.set_sync(self.options.sync_writes);
        self.db
            .write_opt(batch, &options)
            .map_err(|e| self.rocks(e))
    }

    /// Stores a job (a new one, or a new state of one).
    pub fn put_job(&self, job: &JobRecord) -> Result<()> {
        let mut batch = WriteBatch::default();
        batch.put_cf(self.cf(CF_JOBS)?, job.job_id, encode(job)?);
        self.write_job_batch(batch)
    }

    /// One job.
    pub fn job(&self, job_id: &[u8; 16]) -> Result<Option<JobRecord>> {
        let cf = self.cf(CF_JOBS)?;
        match self
            .db
            .get_pinned_cf(cf, job_id)
            .map_err(|e| self.rocks(e))?
        {
            Some(bytes) => Ok(Some(decode(CF_JOBS, job_id, &bytes)?)),
            None => Ok(None),
        }
    }

    /// Every job, oldest first.
    pub fn jobs(&self) -> Result<Vec<JobRecord>> {
        let mut out: Vec<JobRecord> = Vec::new();
        self.scan_prefix(CF_JOBS, &[], |key, value| {
            out.push(decode(CF_JOBS, key, value)?);
            Ok(())
        })?;
        out.sort_by_key(|j| (j.created_at_ms, j.job_id));
        Ok(out)
    }

    /// Appends an event to a job; its number.
    pub fn append_job_event(&self, job_id: &[u8; 16], at_ms: i64, json: String) -> Result<u64> {
        let _writer = self.jobs_lock()?;
        let seq = self.last_job_event(job_id)? + 1;
        let mut batch = WriteBatch::default();
        let event = JobEvent { seq, at_ms, json };
        batch.put_cf(
            self.cf(CF_JOB_EVENTS)?,
            event_key(job_id, seq),
            encode(&event)?,
        );
        self.write_job_batch(batch)?;
        Ok(seq)
    }

    fn last_job_event(&self, job_id: &[u8; 16]) -> Result<u64> {
        let cf = self.cf(CF_JOB_EVENTS)?;
        let mut iter = self.db.raw_iterator_cf(cf);
        iter.seek_for_prev(event_key(job_id, u64::MAX));
        match iter.key() {
            Some(key) if key.len() == 24 && key[..16] == job_id[..] => {
                crate::codec::decode_u64(CF_JOB_EVENTS, key, &key[16..])
            }
            _ => {
                iter.status().map_err(|e| self.rocks(e))?;
                Ok(0)
            }
        }
    }

    /// A job's events after number `after`, in order, at most `limit`.
    pub fn job_events(&self, job_id: &[u8; 16], after: u64, limit: usize) -> Result<Vec<JobEvent>> {
        let mut out = Vec::new();
        let cf = self.cf(CF_JOB_EVENTS)?;
        let mut iter = self.db.raw_iterator_cf(cf);
        iter.seek(event_key(job_id, after.saturating_add(1)));
        while out.len() < limit {
            let (Some(key), Some(value)) = (iter.key(), iter.value()) else {
                iter.status().map_err(|e| self.rocks(e))?;
                break;
            };
            if key.len() != 24 || key[..16] != job_id[..] {
                break;
            }
            out.push(decode(CF_JOB_EVENTS, key, value)?);
            iter.next();
        }
        Ok(out)
    }

    /// Records that `by` made adapter `adapter_id` public (`public`) or private at `at_ms`; the
    /// act as stored.
    pub fn append_adapter_act(
        &self,
        adapter_id: &[u8; 32],
        at_ms: i64,
        by: Address,
        public: bool,
    ) -> Result<AdapterAct> {
        let _writer = self.jobs_lock()?;
        let seq = self.adapter_acts(adapter_id)?.last().map_or(0, |a| a.seq) + 1;
        let act = AdapterAct {
            seq,
            at_ms,
            by,
            public,
        };
        let mut batch = WriteBatch::default();
        batch.put_cf(
            self.cf(CF_ADAPTER_ACTS)?,
            act_key(adapter_id, seq),
            encode(&act)?,
        );
        self.write_job_batch(batch)?;
        Ok(act)
    }

    /// An adapter's visibility acts, oldest first (the last one decides).
    pub fn adapter_acts(&self, adapter_id: &[u8; 32]) -> Result<Vec<AdapterAct>> {
        let mut out = Vec::new();
        self.scan_prefix(CF_ADAPTER_ACTS, adapter_id, |key, value| {
            out.push(decode(CF_ADAPTER_ACTS, key, value)?);
            Ok(())
        })?;
        Ok(out)
    }

    fn jobs_lock(&self) -> Result<std::sync::MutexGuard<'_, ()>> {
        self.jobs_writer
            .lock()
            .map_err(|_| StorageError::Internal("jobs mutex poisoned".into()))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "a test fails loudly on purpose")]

    use crate::jobs::{JobRecord, JobStatus};
    use crate::model::Address;
    use crate::store::{Store, StoreOptions};

    #[test]
    fn jobs_and_their_events_read_back_in_order_after_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let job = |id: u8, at: i64| JobRecord {
            job_id: [id; 16],
            owner: Address([7; 20]),
            created_at_ms: at,
            updated_at_ms: at,
            status: JobStatus::Queued,
            spec_json: "{}".into(),
            result_json: None,
            error: None,
        };
        {
            let store = Store::open(dir.path(), StoreOptions::default()).unwrap();
            store.put_job(&job(2, 20)).unwrap();
            store.put_job(&job(1, 10)).unwrap();
            for n in 0..300 {
                assert_eq!(
                    store
                        .append_job_event(&[2; 16], n, format!("{{\"n\":{n}}}"))
                        .unwrap(),
                    n as u64 + 1
                );
            }
            store.append_job_event(&[1; 16], 5, "{}".into()).unwrap();
            let mut done = job(2, 20);
            done.status = JobStatus::Succeeded;
            store.put_job(&done).unwrap();
        }
        let store = Store::open(dir.path(), StoreOptions::default()).unwrap();
        let jobs = store.jobs().unwrap();
        assert_eq!(jobs.iter().map(|j| j.job_id[0]).collect::<Vec<_>>(), [1, 2]);
        assert_eq!(jobs[1].status, JobStatus::Succeeded);
        let events = store.job_events(&[2; 16], 0, 1000).unwrap();
        assert_eq!(events.len(), 300);
        assert!(
            events
                .iter()
                .enumerate()
                .all(|(i, e)| e.seq == i as u64 + 1)
        );
        let tail = store.job_events(&[2; 16], 295, 2).unwrap();
        assert_eq!(tail.iter().map(|e| e.seq).collect::<Vec<_>>(), [296, 297]);
        assert_eq!(store.job_events(&[1; 16], 0, 10).unwrap().len(), 1);
        assert_eq!(
            store.append_job_event(&[2; 16], 1, "{}".into()).unwrap(),
            301
        );
        assert!(store.job(&[9; 16]).unwrap().is_none());
    }

    #[test]
    fn adapter_acts_read_back_in_order_per_adapter_after_reopen() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = Store::open(dir.path(), StoreOptions::default()).unwrap();
            assert!(store.adapter_acts(&[1; 32]).unwrap().is_empty());
            let first = store
                .append_adapter_act(&[1; 32], 10, Address([7; 20]), true)
                .unwrap();
            assert_eq!(first.seq, 1);
            store
                .append_adapter_act(&[2; 32], 11, Address([8; 20]), true)
                .unwrap();
            store
                .append_adapter_act(&[1; 32], 12, Address([7; 20]), false)
                .unwrap();
        }
        let store = Store::open(dir.path(), StoreOptions::default()).unwrap();
        let acts = store.adapter_acts(&[1; 32]).unwrap();
        assert_eq!(
            acts.iter()
                .map(|a| (a.seq, a.at_ms, a.public))
                .collect::<Vec<_>>(),
            [(1, 10, true), (2, 12, false)]
        );
        assert_eq!(acts[0].by, Address([7; 20]));
        assert_eq!(store.adapter_acts(&[2; 32]).unwrap().len(), 1);
    }
}
