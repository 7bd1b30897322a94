//! [`RecordFilter`]: the `records` pushdown (a [`ScanFilter`]) compiled once per scan against
//! the Datanets the caller may read, then checked on each stored record in place: addresses,
//! ids, statuses and licenses are compared as bytes and enums, so checking a record allocates
//! nothing. Matching is exactly the string comparison SQL would make on the exported column:
//! a literal that is not the canonical (lower-case, `0x`) form of an address or id matches no
//! record, as it would match no exported value.

use std::collections::{BTreeSet, HashSet};
use std::str::FromStr;

use provdb_storage::{Address, Datanet, RecordId, RecordView, Status};

use crate::filters::ScanFilter;

/// A string set constraint, parsed, keeping the values that print back as given (`print`);
/// `None` is unconstrained.
fn parsed<T: FromStr>(
    filter: &ScanFilter,
    column: &str,
    print: impl Fn(&T) -> String,
) -> Option<Vec<T>> {
    filter.values(column).map(|values| {
        values
            .iter()
            .filter_map(|v| T::from_str(v).ok().filter(|t| print(t) == *v))
            .collect()
    })
}

/// An inclusive range check.
fn within((low, high): (Option<i64>, Option<i64>), value: i64) -> bool {
    low.is_none_or(|l| value >= l) && high.is_none_or(|h| value <= h)
}

/// See the module docs.
#[derive(Debug)]
pub(crate) struct RecordFilter {
    /// The readable Datanets the filter allows, by id.
    datanets: Vec<Datanet>,
    record_ids: Option<HashSet<RecordId>>,
    contributors: Option<Vec<Address>>,
    statuses: Option<Vec<Status>>,
    licenses: Option<BTreeSet<String>>,
    created_at: (Option<i64>, Option<i64>),
    version: (Option<i64>, Option<i64>),
    sequence: (Option<i64>, Option<i64>),
}

impl RecordFilter {
    /// Compiles `filter` for a caller who may read `readable`.
    pub(crate) fn new(readable: &[Datanet], filter: &ScanFilter) -> Self {
        let mut datanets: Vec<Datanet> = readable
            .iter()
            .filter(|d| {
                filter.allows("datanet", &d.name)
                    && filter.allows_int("datanet_id", i64::from(d.id))
            })
            .cloned()
            .collect();
        datanets.sort_by_key(|d| d.id);
        Self {
            datanets,
            record_ids: parsed(filter, "record_id", RecordId::to_string)
                .map(|v| v.into_iter().collect()),
            contributors: parsed(filter, "contributor", Address::to_string),
            statuses: parsed(filter, "status", |s: &Status| s.as_str().to_string()),
            licenses: filter.values("license"),
            // These columns take ranges only (an `=` on them is a one-value range).
            created_at: filter.range("created_at"),
            version: filter.range("version"),
            sequence: filter.range("sequence"),
        }
    }

    /// The Datanets whose records may pass, by id.
    pub(crate) fn datanets(&self) -> &[Datanet] {
        &self.datanets
    }

    /// The record ids the filter names, if it names a set.
    pub(crate) fn record_ids(&self) -> Option<Vec<RecordId>> {
        let mut ids: Vec<RecordId> = self.record_ids.as_ref()?.iter().copied().collect();
        ids.sort_unstable();
        Some(ids)
    }

    /// The contributors the filter names, if it names a set.
    pub(crate) fn contributors(&self) -> Option<&[Address]> {
        self.contributors.as_deref()
    }

    /// The `created_at` bounds (inclusive).
    pub(crate) fn created_at(&self) -> (Option<i64>, Option<i64>) {
        self.created_at
    }

    /// The Datanet of `record` when the record passes every constraint.
    pub(crate) fn admit(&self, record: &RecordView<'_>) -> Option<&Datanet> {
        let datanet = self
            .datanets
            .binary_search_by_key(&record.datanet_id, |d| d.id)
            .ok()
            .map(|i| &self.datanets[i])?;
        let passes = self
            .record_ids
            .as_ref()
            .is_none_or(|ids| ids.contains(&record.record_id))
            && self
                .contributors
                .as_ref()
                .is_none_or(|c| c.contains(&record.contributor))
            && self
                .statuses
                .as_ref()
                .is_none_or(|s| s.contains(&record.status))
            && self
                .licenses
                .as_ref()
                .is_none_or(|l| l.iter().any(|license| record.license_is(license)))
            && within(self.created_at, record.created_at_ms)
            && within(self.version, i64::from(record.version))
            && within(
                self.sequence,
                i64::try_from(record.sequence).unwrap_or(i64::MAX),
            );
        passes.then_some(datanet)
    }
}
