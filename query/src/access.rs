//! Who runs a query, and which Datanets that caller may read. The set is computed once per
//! session from storage (visibility, owner, grants); every table provider reads only these.

use provdb_storage::{Address, Datanet, Store, Visibility};

use crate::error::Result;

/// The caller of a query: an address, or anonymous.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Caller(pub Option<Address>);

impl Caller {
    /// Anonymous: public Datanets only.
    pub fn anonymous() -> Self {
        Self(None)
    }

    /// A caller with an address.
    pub fn address(address: Address) -> Self {
        Self(Some(address))
    }

    /// Whether this caller owns `datanet`.
    pub fn owns(&self, datanet: &Datanet) -> bool {
        self.0.is_some() && datanet.owner == self.0
    }
}

/// The Datanets `caller` may read, by id.
pub(crate) fn readable_datanets(store: &Store, caller: &Caller) -> Result<Vec<Datanet>> {
    let mut readable = Vec::new();
    for datanet in store.datanets()? {
        let allowed = match (datanet.visibility, caller.0) {
            (Visibility::Public, _) => true,
            (Visibility::Private, None) => false,
            (Visibility::Private, Some(who)) => {
                datanet.owner == Some(who) || store.has_grant(datanet.id, &who)?
            }
        };
        if allowed {
            readable.push(datanet);
        }
    }
    Ok(readable)
}
