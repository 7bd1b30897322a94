//! Who runs a query, and which Datanets that caller may read. The set is computed once per
//! session from storage (visibility, owner, grants); every table provider reads only these.
//! [`Caller::may_read`] is the one rule; every other reader check in provdb calls it.

use provdb_storage::{Address, Datanet, Store, Visibility};

use crate::error::Result;

/// The caller of a query: anonymous, an address, or an administrator (who reads every
/// Datanet, and acts as its address otherwise).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Caller {
    who: Option<Address>,
    reads_everything: bool,
}

impl Caller {
    /// Anonymous: public Datanets only.
    pub fn anonymous() -> Self {
        Self::default()
    }

    /// A caller with an address.
    pub fn address(address: Address) -> Self {
        Self {
            who: Some(address),
            reads_everything: false,
        }
    }

    /// An administrator acting as `address`: may read every Datanet.
    pub fn admin(address: Address) -> Self {
        Self {
            who: Some(address),
            reads_everything: true,
        }
    }

    /// The caller's address, if it has one.
    pub fn who(&self) -> Option<Address> {
        self.who
    }

    /// Whether this caller reads every Datanet.
    pub fn is_admin(&self) -> bool {
        self.reads_everything
    }

    /// Whether this caller owns `datanet`.
    pub fn owns(&self, datanet: &Datanet) -> bool {
        self.who.is_some() && datanet.owner == self.who
    }

    /// Whether this caller may read `datanet`: it is public, or the caller is an admin, its
    /// owner or holds a read grant.
    pub fn may_read(&self, store: &Store, datanet: &Datanet) -> Result<bool> {
        Ok(match (datanet.visibility, self.who) {
            (Visibility::Public, _) => true,
            _ if self.reads_everything => true,
            (Visibility::Private, None) => false,
            (Visibility::Private, Some(who)) => {
                datanet.owner == Some(who) || store.has_grant(datanet.id, &who)?
            }
        })
    }
}

/// The Datanets `caller` may read, by id.
pub(crate) fn readable_datanets(store: &Store, caller: &Caller) -> Result<Vec<Datanet>> {
    let mut readable = Vec::new();
    for datanet in store.datanets()? {
        if caller.may_read(store, &datanet)? {
            readable.push(datanet);
        }
    }
    Ok(readable)
}
