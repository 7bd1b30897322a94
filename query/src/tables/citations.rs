//! `citations`: the sources each answer cited (or used, in measured attribution), one row per
//! source, for the answers the caller sees ([`super::answers`]). The `question` column is the
//! question's text for its asker, the owners of the Datanets the answer touched and admins,
//! and NULL for everyone else.

use std::sync::{Arc, LazyLock};

use arrow_array::RecordBatch;
use arrow_array::builder::{
    Float32Builder, Int64Builder, StringBuilder, UInt32Builder, UInt64Builder,
};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use provdb_storage::{AnswerRecord, StorageError, Store};

use super::answers::{AnswerAccess, entries_of, touched};
use super::ledger::finish;
use super::small::View;

pub(crate) static CITATIONS: LazyLock<SchemaRef> = LazyLock::new(|| {
    Arc::new(Schema::new(vec![
        Field::new("answer_id", DataType::Utf8, false),
        Field::new("ts", DataType::Int64, false),
        Field::new("caller", DataType::Utf8, true),
        Field::new("question", DataType::Utf8, true),
        Field::new("model", DataType::Utf8, false),
        Field::new("attribution", DataType::Utf8, false),
        Field::new("marker", DataType::UInt32, false),
        Field::new("chunk_id", DataType::UInt64, false),
        Field::new("record_id", DataType::Utf8, false),
        Field::new("datanet_id", DataType::UInt32, false),
        Field::new("datanet", DataType::Utf8, false),
        Field::new("contributor", DataType::Utf8, false),
        Field::new("retrieval_score", DataType::Float32, false),
        Field::new("weight_ppm", DataType::UInt32, false),
    ]))
});

/// The columns being built.
#[derive(Default)]
struct Columns {
    answer: StringBuilder,
    ts: Int64Builder,
    caller: StringBuilder,
    question: StringBuilder,
    model: StringBuilder,
    attribution: StringBuilder,
    marker: UInt32Builder,
    chunk: UInt64Builder,
    record: StringBuilder,
    datanet_id: UInt32Builder,
    datanet: StringBuilder,
    contributor: StringBuilder,
    score: Float32Builder,
    weight: UInt32Builder,
}

impl Columns {
    /// Appends the rows of one answer the caller sees.
    fn append(&mut self, a: &AnswerRecord, access: &AnswerAccess, question: bool) {
        for c in &a.citations {
            self.answer.append_value(a.answer_id.to_string());
            self.ts.append_value(a.ts_ms);
            self.caller.append_option(a.caller.map(|x| x.to_string()));
            self.question.append_option(question.then_some(&a.question));
            self.model.append_value(&a.model);
            self.attribution.append_value(&a.attribution);
            self.marker.append_value(c.marker);
            self.chunk.append_value(c.chunk_id);
            self.record.append_value(c.record_id.to_string());
            self.datanet_id.append_value(c.datanet_id);
            self.datanet.append_option(access.name(c.datanet_id));
            self.contributor.append_value(c.contributor.to_string());
            self.score.append_value(c.retrieval_score);
            self.weight.append_value(c.weight_ppm);
        }
    }

    fn finish(mut self) -> Result<RecordBatch, StorageError> {
        finish(
            &CITATIONS,
            vec![
                Arc::new(self.answer.finish()),
                Arc::new(self.ts.finish()),
                Arc::new(self.caller.finish()),
                Arc::new(self.question.finish()),
                Arc::new(self.model.finish()),
                Arc::new(self.attribution.finish()),
                Arc::new(self.marker.finish()),
                Arc::new(self.chunk.finish()),
                Arc::new(self.record.finish()),
                Arc::new(self.datanet_id.finish()),
                Arc::new(self.datanet.finish()),
                Arc::new(self.contributor.finish()),
                Arc::new(self.score.finish()),
                Arc::new(self.weight.finish()),
            ],
        )
    }
}

/// The whole `citations` table of one session.
pub(crate) fn citations_batch(store: &Store, view: &View) -> Result<RecordBatch, StorageError> {
    let access = AnswerAccess::new(&view.datanets, view.caller);
    let mut columns = Columns::default();
    store.visit_answers(&mut |a| {
        if a.citations.is_empty() {
            return Ok(true);
        }
        let ids = touched(Some(&a), &entries_of(store, &a)?);
        if access.sees(&ids) {
            columns.append(&a, &access, access.sees_question(&a, &ids));
        }
        Ok(true)
    })?;
    columns.finish()
}
