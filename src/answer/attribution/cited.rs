//! `cited` attribution: a source is paid when the answer cites it by a verified marker, in
//! proportion to its retrieval score (at least 1, so a cited source with a score of 0 is still
//! paid). A source retrieved but not cited weighs 0 and is never paid.

use super::{AttributionContext, AttributionMethod, Needs};
use crate::error::Result;

/// The verified citation markers, weighted by retrieval score.
pub(crate) struct Cited;

impl AttributionMethod for Cited {
    fn needs(&self) -> Needs {
        Needs::default()
    }

    fn weights(&self, context: &AttributionContext<'_>) -> Result<Vec<u64>> {
        Ok(context
            .sources
            .iter()
            .zip(1u32..)
            .map(|(source, number)| {
                if context.cited.contains(&number) {
                    let score = source.hit.score.max(0.0);
                    ((f64::from(score) * 1e6) as u64).max(1)
                } else {
                    0
                }
            })
            .collect())
    }
}
