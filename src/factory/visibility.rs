//! Who sees a stored adapter, and the recorded acts that make a trained one public.
//!
//! An adapter the Model Factory trained carries its training Datanet's data in its weights and
//! its provenance (the Datanet's name, contributors and their token counts). So it takes that
//! Datanet's visibility: a caller who may not read the Datanet is told about the adapter
//! exactly what it is told about an id that does not exist, everywhere (lists, models, chat,
//! answers, loading). The Datanet's owner may make the adapter public, an act stored with who
//! and when ([`provdb_storage::AdapterAct`]); every key then sees and runs it, but its training
//! details stay withheld from callers who may not read the Datanet. An adapter added from
//! outside (no training provenance) is visible to every caller.
//!
//! Invariants: [`Db::adapter_access`] is the one rule, and every path that names an adapter for
//! a caller resolves it through [`Db::resolve_visible_adapter`] (an id prefix is matched among
//! visible adapters only, so an ambiguity never reveals a hidden one); the last act decides,
//! and acts are only appended.

use provdb_inference::lora::{AdapterId, AdapterInfo};
use provdb_query::Caller;
use provdb_storage::{AdapterAct, Datanet, StorageError};

use crate::db::{Db, now_ms};
use crate::error::{Error, Result};

/// What a caller may see of an adapter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AdapterAccess {
    /// Nothing: the adapter is reported like an unknown id.
    Hidden,
    /// The adapter and its use, because its training Datanet's owner made it public; not its
    /// training details (Datanet, contributors, record count, job).
    Public,
    /// Everything: an admin, a caller who may read the training Datanet, or an adapter with
    /// no training provenance.
    Full,
}

impl AdapterAccess {
    /// Whether the caller may see and use the adapter at all.
    pub fn is_visible(self) -> bool {
        self != Self::Hidden
    }
}

fn unknown(text: &str) -> Error {
    Error::NotFound(format!(
        "no adapter {text} (see GET /v1/adapters or `provdb adapter list`)"
    ))
}

impl Db {
    fn training_datanet(&self, info: &AdapterInfo) -> Result<Option<Datanet>> {
        let Some(training) = &info.training else {
            return Ok(None);
        };
        match self.store().datanet(&training.datanet) {
            Ok(datanet) => Ok(Some(datanet)),
            Err(StorageError::UnknownDatanet(_)) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// What `caller` may see of the adapter `info` describes.
    pub fn adapter_access(&self, caller: &Caller, info: &AdapterInfo) -> Result<AdapterAccess> {
        if info.training.is_none() || caller.is_admin() {
            return Ok(AdapterAccess::Full);
        }
        if let Some(datanet) = self.training_datanet(info)?
            && caller.may_read(self.store(), &datanet)?
        {
            return Ok(AdapterAccess::Full);
        }
        let id = AdapterId::parse(&info.id)?;
        let public = self
            .store()
            .adapter_acts(&id.0)?
            .last()
            .is_some_and(|act| act.public);
        Ok(if public {
            AdapterAccess::Public
        } else {
            AdapterAccess::Hidden
        })
    }

    /// The stored adapters `caller` may see, oldest first, with what it may see of each.
    pub fn visible_adapters(&self, caller: &Caller) -> Result<Vec<(AdapterInfo, AdapterAccess)>> {
        let mut visible = Vec::new();
        for info in self.adapter_store().list()? {
            let access = self.adapter_access(caller, &info)?;
            if access.is_visible() {
                visible.push((info, access));
            }
        }
        Ok(visible)
    }

    /// The adapter `text` names (a whole id or a unique prefix of at least 6 hex digits) among
    /// those `caller` may see; a hidden adapter gives the same error as an unknown id.
    pub fn resolve_visible_adapter(
        &self,
        caller: &Caller,
        text: &str,
    ) -> Result<(AdapterInfo, AdapterAccess)> {
        let store = self.adapter_store();
        if let Ok(id) = AdapterId::parse(text) {
            let info = store.info(id).map_err(|_| unknown(text))?;
            let access = self.adapter_access(caller, &info)?;
            return match access {
                AdapterAccess::Hidden => Err(unknown(text)),
                _ => Ok((info, access)),
            };
        }
        let prefix = text.strip_prefix("0x").unwrap_or(text).to_ascii_lowercase();
        if prefix.len() < 6 || !prefix.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(Error::Invalid(format!(
                "'{text}' is not an adapter id or a prefix of one (at least 6 hex digits)"
            )));
        }
        let mut matches: Vec<(AdapterInfo, AdapterAccess)> = self
            .visible_adapters(caller)?
            .into_iter()
            .filter(|(info, _)| info.id.trim_start_matches("0x").starts_with(&prefix))
            .collect();
        match matches.len() {
            1 => Ok(matches.remove(0)),
            0 => Err(unknown(text)),
            n => Err(Error::Invalid(format!(
                "'{text}' names {n} adapters; give more digits"
            ))),
        }
    }

    /// Adapter specs (`ID[:WEIGHT]` each) resolved among those `caller` may see, as whole ids
    /// with their weights; a hidden adapter is refused like an unknown one.
    pub fn visible_adapter_specs(&self, caller: &Caller, specs: &[String]) -> Result<Vec<String>> {
        specs
            .iter()
            .map(|spec| -> Result<String> {
                let (name, weight) = match spec.split_once(':') {
                    Some((name, weight)) => (name, Some(weight)),
                    None => (spec.as_str(), None),
                };
                let (info, _) = self.resolve_visible_adapter(caller, name)?;
                Ok(match weight {
                    Some(weight) => format!("{}:{weight}", info.id),
                    None => info.id,
                })
            })
            .collect()
    }

    /// Whether `caller` may make the adapter `info` describes public or private: it is the
    /// owner of the Datanet the adapter trained on (an admin, for a Datanet without owner).
    pub fn may_set_adapter_visibility(&self, caller: &Caller, info: &AdapterInfo) -> Result<bool> {
        Ok(match self.training_datanet(info)? {
            Some(datanet) if datanet.owner.is_some() => caller.owns(&datanet),
            Some(_) => caller.is_admin(),
            None => false,
        })
    }

    /// Makes the adapter `text` names public (`public`) or private again, as `caller`, who
    /// must own its training Datanet; the act as stored (who, when).
    pub fn set_adapter_public(
        &self,
        caller: &Caller,
        text: &str,
        public: bool,
    ) -> Result<AdapterAct> {
        let (info, _) = self.resolve_visible_adapter(caller, text)?;
        let Some(training) = &info.training else {
            return Err(Error::Invalid(format!(
                "adapter {} was not trained here: it has no training Datanet and every key \
                 sees it already",
                info.id
            )));
        };
        if !self.may_set_adapter_visibility(caller, &info)? {
            return Err(Error::Invalid(format!(
                "only the owner of datanet '{}', which adapter {} trained on, may make it \
                 public or private",
                training.datanet, info.id
            )));
        }
        let by = caller
            .who()
            .ok_or_else(|| Error::Invalid("making an adapter public needs an address".into()))?;
        let id = AdapterId::parse(&info.id)?;
        Ok(self
            .store()
            .append_adapter_act(&id.0, now_ms(), by, public)?)
    }

    /// The visibility acts of the adapter `text` names, oldest first, for an admin or the
    /// owner of its training Datanet (others: `None`).
    pub fn adapter_acts(&self, caller: &Caller, text: &str) -> Result<Option<Vec<AdapterAct>>> {
        let (info, _) = self.resolve_visible_adapter(caller, text)?;
        if !caller.is_admin() && !self.may_set_adapter_visibility(caller, &info)? {
            return Ok(None);
        }
        let id = AdapterId::parse(&info.id)?;
        Ok(Some(self.store().adapter_acts(&id.0)?))
    }
}
