//! The idempotent step every chain command is made of: read the contract's state, stop if what
//! the step would do is already on chain, otherwise send the transaction, wait for its receipt
//! and check it; then record the transaction in `chain.json`.
//!
//! Invariants: the whole step (read, send, receipt) is one retried unit of
//! [`Client::run`](crate::client::Client::run), so an attempt that timed out after sending is
//! followed by a fresh read that sees the transaction mined and sends nothing more; a
//! transaction is recorded in `chain.json` only after its receipt shows it succeeded, and the
//! file is saved right after each record, so a crash loses at most the record of the step in
//! flight; the next run reads the contract and does not send it again (an epoch's record is
//! recovered from its `EpochPosted` event).

use std::cell::Cell;
use std::path::Path;

use alloy::contract::{CallBuilder, CallDecoder};
use alloy::providers::DynProvider;
use alloy::rpc::types::TransactionReceipt;

use super::deploying::Deployment;
use crate::client::{StepError, classify, confirm};
use crate::error::Result;
use crate::state::{ChainState, TxRecord};

/// What a step's read found on chain, with what it read (e.g. what an epoch adds to the total).
pub(crate) enum Check<T> {
    /// The step's effect is on chain already: nothing is sent.
    Done(T),
    /// Still to do: the transaction is sent.
    Send(T),
}

impl Check<()> {
    /// [`Check::Done`] when `done`, else [`Check::Send`], for a step that reads nothing more.
    pub(crate) fn done_if(done: bool) -> Self {
        if done { Self::Done(()) } else { Self::Send(()) }
    }
}

/// What a step did.
pub(crate) enum Outcome<T> {
    /// Nothing was sent: the chain already held the step's effect.
    Done(T),
    /// The transaction was sent and mined successfully.
    Sent {
        /// Its receipt (boxed: a receipt is large beside the other variant).
        receipt: Box<TransactionReceipt>,
        /// The receipt as `chain.json` records it.
        record: TxRecord,
        /// What the read found before sending.
        value: T,
    },
}

impl Deployment {
    /// Runs one idempotent step with retries (see the module docs): `check` reads the
    /// contracts (told whether an earlier attempt of this step already sent its transaction)
    /// and says whether the step is done; if not, the transaction `send` builds from what it
    /// read is sent and confirmed. Nothing is recorded: see [`Deployment::step`].
    pub(crate) async fn transact<T, D>(
        &self,
        operation: &str,
        check: impl AsyncFn(&Deployment, bool) -> Result<Check<T>, StepError>,
        send: impl for<'d> Fn(&'d Deployment, &T) -> CallBuilder<&'d DynProvider, D>,
    ) -> Result<Outcome<T>>
    where
        D: CallDecoder,
    {
        let sent = Cell::new(false);
        self.client
            .run(operation, || async {
                let value = match check(self, sent.get()).await? {
                    Check::Done(value) => return Ok(Outcome::Done(value)),
                    Check::Send(value) => value,
                };
                let pending = send(self, &value)
                    .send()
                    .await
                    .map_err(|e| classify(operation, e))?;
                sent.set(true);
                let receipt = confirm(operation, pending).await?;
                let record = TxRecord::of(&receipt);
                Ok(Outcome::Sent {
                    receipt: Box::new(receipt),
                    record,
                    value,
                })
            })
            .await
    }

    /// [`Deployment::transact`], then, when a transaction was sent, `keep` records it in the
    /// chain state and `chain.json` is saved.
    pub(crate) async fn step<T, D>(
        &mut self,
        data_dir: &Path,
        operation: &str,
        check: impl AsyncFn(&Deployment, bool) -> Result<Check<T>, StepError>,
        send: impl for<'d> Fn(&'d Deployment, &T) -> CallBuilder<&'d DynProvider, D>,
        keep: impl FnOnce(&mut ChainState, TxRecord),
    ) -> Result<Outcome<T>>
    where
        D: CallDecoder,
    {
        let outcome = self.transact(operation, check, send).await?;
        if let Outcome::Sent { record, .. } = &outcome {
            self.keep(data_dir, |state| keep(state, record.clone()))?;
        }
        Ok(outcome)
    }

    /// Changes the chain state with `change` and saves `chain.json`.
    pub(crate) fn keep(
        &mut self,
        data_dir: &Path,
        change: impl FnOnce(&mut ChainState),
    ) -> Result<()> {
        change(&mut self.state);
        self.state.save(data_dir)
    }
}
