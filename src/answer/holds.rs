//! Holds on prepaid balances while answers are made: an answer priced at its upper bound
//! holds that much of its caller's balance from before retrieval until it is recorded (or
//! fails), so two answers in flight can never spend the same wei, and a caller whose balance
//! is short is refused before any work, not after it has read the text.
//!
//! Invariant: for every account, the sum of its holds never exceeds its stored balance at the
//! moment each hold was taken; a hold is released when its guard drops, on every path. Holds
//! live in memory: a crash releases them, and nothing was charged for an unrecorded answer.

use std::collections::HashMap;
use std::sync::Mutex;

use provdb_storage::{Address, StorageError, Store};

use crate::error::{Error, Result};

/// The amounts held per account.
#[derive(Debug, Default)]
pub(crate) struct Holds(Mutex<HashMap<Address, u128>>);

/// A hold, released on drop.
#[derive(Debug)]
pub(crate) struct Hold<'a> {
    holds: &'a Holds,
    account: Address,
    amount: u128,
}

impl Holds {
    fn lock(&self) -> Result<std::sync::MutexGuard<'_, HashMap<Address, u128>>> {
        self.0
            .lock()
            .map_err(|_| Error::Internal("the holds' mutex is poisoned".into()))
    }

    /// Holds `amount` of `caller`'s balance, refusing a caller without an account
    /// (`PaymentRequired`) or whose balance, less what it already holds, is short
    /// (`InsufficientFunds`). A free answer holds nothing.
    pub(crate) fn hold(
        &self,
        store: &Store,
        caller: Option<Address>,
        amount: u128,
    ) -> Result<Option<Hold<'_>>> {
        if amount == 0 {
            return Ok(None);
        }
        let Some(account) = caller else {
            return Err(Error::PaymentRequired(format!(
                "this answer costs up to {amount} wei and needs a paying account: ask with an \
                 API key (or --as ADDRESS) whose account holds a balance"
            )));
        };
        let mut held = self.lock()?;
        let balance = store.account(&account)?.balance_wei;
        let already = held.get(&account).copied().unwrap_or(0);
        let available = balance.saturating_sub(already);
        if available < amount {
            return Err(StorageError::InsufficientFunds {
                account,
                balance_wei: available,
                needed_wei: amount,
            }
            .into());
        }
        *held.entry(account).or_default() += amount;
        Ok(Some(Hold {
            holds: self,
            account,
            amount,
        }))
    }

    /// What `account` holds now.
    pub(crate) fn held(&self, account: &Address) -> Result<u128> {
        Ok(self.lock()?.get(account).copied().unwrap_or(0))
    }
}

impl Drop for Hold<'_> {
    fn drop(&mut self) {
        // A poisoned mutex means a panic elsewhere; the process is going down with its holds.
        if let Ok(mut held) = self.holds.0.lock()
            && let Some(amount) = held.get_mut(&self.account)
        {
            *amount = amount.saturating_sub(self.amount);
            if *amount == 0 {
                held.remove(&self.account);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use provdb_storage::{CreditSource, StoreOptions};

    use super::*;

    #[test]
    fn holds_never_spend_the_same_wei_twice_and_release_on_drop() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), StoreOptions::default()).unwrap();
        let alice = Address([0xa1; 20]);
        let reason = CreditSource::Admin {
            by: None,
            reason: "test".into(),
        };
        store.credit(alice, 100, reason, 1).unwrap();
        let holds = Holds::default();
        assert!(holds.hold(&store, None, 0).unwrap().is_none());
        assert!(matches!(
            holds.hold(&store, None, 1),
            Err(Error::PaymentRequired(_))
        ));
        let first = holds.hold(&store, Some(alice), 60).unwrap();
        let second = holds.hold(&store, Some(alice), 41).unwrap_err();
        assert!(matches!(
            second,
            Error::Storage(StorageError::InsufficientFunds {
                balance_wei: 40,
                needed_wei: 41,
                ..
            })
        ));
        let third = holds.hold(&store, Some(alice), 40).unwrap();
        assert_eq!(holds.held(&alice).unwrap(), 100);
        drop(first);
        drop(third);
        assert_eq!(holds.held(&alice).unwrap(), 0);
        assert!(holds.hold(&store, Some(alice), 100).unwrap().is_some());
    }
}
