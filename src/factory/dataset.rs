//! A job's training set: records selected by SQL as the job's owner (so access rules apply
//! exactly as to any query), turned into examples in the model's chat template, each traced to
//! its record and contributor.
//!
//! Invariant: an example's text is the stored content of the record it is credited to. A query
//! only selects records (its `record_id` column); its other columns are never read, so a job
//! owner cannot train on text of its choosing and credit records of its choosing. Each record
//! trains once: a query that names one twice is refused, so no contributor's credit is
//! multiplied. Each text trains once: a record whose example reads like an earlier stored
//! record's after [`copy_key`]'s normalisation (case, spacing, punctuation) is left out, so
//! splitting a record into copies, or copying someone else's, earns nothing from training; the
//! earliest stored (by batch, then id) is the one kept.

use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use std::str::FromStr;

use provdb_inference::llama::{ChatMessage, ChatRole, LlamaModel};
use provdb_inference::train::Example;
use provdb_query::{Caller, QueryLimits};
use provdb_storage::{Address, RecordId};
use serde_json::{Map, Value};

use super::spec::{DataFormat, FineTuneSpec};
use crate::db::Db;
use crate::error::{Error, Result};

/// Most records one job trains on.
pub const MAX_TRAINING_RECORDS: usize = 100_000;

/// The file of a job folder listing the record ids it trains on, in example order.
const RECORDS_FILE: &str = "records.json";

/// Examples with where each came from.
#[derive(Clone, Debug, Default)]
pub struct TrainingSet {
    /// The examples, in row order.
    pub examples: Vec<Example>,
    /// The record of each example.
    pub record_ids: Vec<RecordId>,
    /// Tokens of the examples per contributor.
    pub contributors: BTreeMap<Address, u64>,
    /// Records left out as copies of an earlier record's text: (copy, the record kept).
    pub copies: Vec<(RecordId, RecordId)>,
}

/// One candidate example, before copies are left out.
struct Candidate {
    record_id: RecordId,
    contributor: Address,
    /// When it was stored: its batch, then its id.
    stored: (u64, RecordId),
    example: Example,
}

/// What two examples share when one is a copy of the other: their decoded text lowercased,
/// with every run of characters that are not letters or digits made one space.
pub(crate) fn copy_key(model: &LlamaModel, example: &Example) -> Result<String> {
    let mut ids = example.prompt.clone();
    ids.extend(&example.response);
    let text = model.decode(&ids)?;
    let mut key = String::with_capacity(text.len());
    for word in text
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
    {
        if !key.is_empty() {
            key.push(' ');
        }
        key.extend(word.chars().flat_map(char::to_lowercase));
    }
    Ok(key)
}

/// `candidates` (in row order) without the copies of an earlier stored record's text.
fn without_copies(model: &LlamaModel, candidates: Vec<Candidate>) -> Result<TrainingSet> {
    let mut first: BTreeMap<String, usize> = BTreeMap::new();
    let mut keys = Vec::with_capacity(candidates.len());
    for (index, candidate) in candidates.iter().enumerate() {
        let key = copy_key(model, &candidate.example)?;
        let kept = first.entry(key.clone()).or_insert(index);
        if candidate.stored < candidates[*kept].stored {
            *kept = index;
        }
        keys.push(key);
    }
    let ids: Vec<RecordId> = candidates.iter().map(|c| c.record_id).collect();
    let mut set = TrainingSet::default();
    for (index, (candidate, key)) in candidates.into_iter().zip(keys).enumerate() {
        let kept = first[&key];
        if kept != index {
            set.copies.push((candidate.record_id, ids[kept]));
            continue;
        }
        *set.contributors.entry(candidate.contributor).or_default() +=
            candidate.example.len() as u64;
        set.examples.push(candidate.example);
        set.record_ids.push(candidate.record_id);
    }
    Ok(set)
}

fn invalid(message: String) -> Error {
    Error::Invalid(message)
}

/// Reads `spec`'s rows as `caller` and makes them examples for `model`.
pub(crate) fn training_set(
    db: &Db,
    spec: &FineTuneSpec,
    caller: Caller,
    model: &LlamaModel,
) -> Result<TrainingSet> {
    let datanet = db.store().datanet(&spec.datanet)?;
    if !caller.may_read(db.store(), &datanet)? {
        // Told like an unknown name: no hint that a private Datanet exists.
        return Err(provdb_storage::StorageError::UnknownDatanet(spec.datanet.clone()).into());
    }
    // Datanet names are letters, digits, '_' and '-': safe inside a SQL string literal.
    let query = match &spec.query {
        Some(query) => query.clone(),
        None => format!(
            "SELECT record_id FROM records WHERE datanet = '{}' AND status = 'approved' \
             AND record_id NOT IN (SELECT supersedes FROM records WHERE supersedes IS NOT NULL) \
             ORDER BY sequence, record_id",
            datanet.name
        ),
    };
    let limits = QueryLimits {
        max_rows: Some(MAX_TRAINING_RECORDS + 1),
        ..QueryLimits::default()
    };
    let output = db.sql(&query, caller, limits)?;
    if output.truncated {
        return Err(invalid(format!(
            "the training query gives more than {MAX_TRAINING_RECORDS} rows"
        )));
    }
    let mut writer = provdb_query::arrow::json::ArrayWriter::new(Vec::new());
    for batch in &output.batches {
        writer
            .write(batch)
            .map_err(|e| Error::Internal(format!("cannot read the training rows: {e}")))?;
    }
    writer
        .finish()
        .map_err(|e| Error::Internal(format!("cannot read the training rows: {e}")))?;
    let bytes = writer.into_inner();
    let rows: Vec<Map<String, Value>> = if bytes.is_empty() {
        Vec::new()
    } else {
        serde_json::from_slice(&bytes)
            .map_err(|e| Error::Internal(format!("cannot read the training rows: {e}")))?
    };
    let max_length = spec.hyperparameters.max_length;
    let mut candidates = Vec::with_capacity(rows.len());
    let mut seen = HashSet::with_capacity(rows.len());
    for (index, row) in rows.iter().enumerate() {
        let id_text = row
            .get("record_id")
            .and_then(Value::as_str)
            .ok_or_else(|| {
                invalid(format!(
                    "row {} of the training query has no record_id column",
                    index + 1
                ))
            })?;
        let record_id = RecordId::from_str(id_text)?;
        if !seen.insert(record_id) {
            return Err(invalid(format!(
                "row {}: record {record_id} is selected twice; a record trains once (its \
                 contributor is credited for its tokens once)",
                index + 1
            )));
        }
        let record = db
            .record(&record_id)?
            .filter(|r| r.datanet_id == datanet.id)
            .ok_or_else(|| {
                invalid(format!(
                    "row {}: record {record_id} is not in datanet '{}'",
                    index + 1,
                    datanet.name
                ))
            })?;
        // The record's own stored text, never the query's columns.
        let fields = match serde_json::from_str::<Value>(&record.content) {
            Ok(Value::Object(map)) => map,
            _ => Map::new(),
        };
        let example = example_of(&fields, &spec.format, &datanet.text_column, model)
            .map_err(|e| invalid(format!("record {record_id}: {e}")))?;
        if example.len() > max_length {
            return Err(invalid(format!(
                "record {record_id} is {} tokens, over max_length {max_length} (raise it, or \
                 leave such records out with a query)",
                example.len()
            )));
        }
        candidates.push(Candidate {
            record_id,
            contributor: record.contributor,
            stored: (record.sequence, record_id),
            example,
        });
    }
    without_copies(model, candidates)
}

fn text<'a>(fields: &'a Map<String, Value>, column: &str) -> std::result::Result<&'a str, String> {
    match fields.get(column) {
        Some(Value::String(text)) => Ok(text),
        Some(other) => Err(format!("column '{column}' is not text: {other}")),
        None => Err(format!("no column '{column}'")),
    }
}

fn example_of(
    fields: &Map<String, Value>,
    format: &DataFormat,
    text_column: &str,
    model: &LlamaModel,
) -> std::result::Result<Example, String> {
    let failed = |e: provdb_inference::InferenceError| e.to_string();
    match format {
        DataFormat::Completion { column } => {
            let column = column.as_deref().unwrap_or(text_column);
            Example::completion(model, text(fields, column)?).map_err(failed)
        }
        DataFormat::Instruction {
            instruction,
            response,
        } => Example::chat(model, text(fields, instruction)?, text(fields, response)?)
            .map_err(failed),
        DataFormat::Chat { messages } => {
            let value = fields
                .get(messages)
                .ok_or_else(|| format!("no column '{messages}'"))?;
            // A typed column holds the array; an untyped one its JSON text.
            let parsed;
            let list = match value {
                Value::Array(list) => list,
                Value::String(text) => {
                    parsed = serde_json::from_str::<Vec<Value>>(text)
                        .map_err(|e| format!("column '{messages}' is not a JSON array: {e}"))?;
                    &parsed
                }
                other => return Err(format!("column '{messages}' is not a list: {other}")),
            };
            chat_example(list, model)
        }
    }
}

/// The messages before the last one are the prompt; the last, an assistant's, the response.
fn chat_example(list: &[Value], model: &LlamaModel) -> std::result::Result<Example, String> {
    let mut turns = Vec::with_capacity(list.len());
    for message in list {
        let role = message.get("role").and_then(Value::as_str).unwrap_or("");
        let role = ChatRole::from_str(role).map_err(|e| e.to_string())?;
        let content = message
            .get("content")
            .and_then(Value::as_str)
            .ok_or("a message has no text content")?;
        turns.push(ChatMessage::new(role, content));
    }
    let Some((last, before)) = turns.split_last() else {
        return Err("no messages".into());
    };
    if last.role != ChatRole::Assistant || before.is_empty() {
        return Err(
            "a conversation ends with an assistant message after at least one other".into(),
        );
    }
    let prompt = model
        .encode(&model.chat_template().conversation(before))
        .map_err(|e| e.to_string())?;
    let mut response = model
        .encode(&provdb_inference::llama::neutralize(last.content))
        .map_err(|e| e.to_string())?;
    response.extend(model.end_of_turn().first());
    Ok(Example::new(prompt, response))
}

/// Writes the record ids of a job's examples into its folder.
pub(crate) fn write_record_ids(job_dir: &Path, ids: &[RecordId]) -> Result<()> {
    fs_err::create_dir_all(job_dir).map_err(Error::io(job_dir))?;
    let text: Vec<String> = ids.iter().map(ToString::to_string).collect();
    let path = job_dir.join(RECORDS_FILE);
    let json = serde_json::to_vec(&text).map_err(|e| Error::Internal(e.to_string()))?;
    fs_err::write(&path, json).map_err(Error::io(&path))
}

/// The record ids a job trained on.
pub(crate) fn read_record_ids(job_dir: &Path) -> Result<Vec<String>> {
    let path = job_dir.join(RECORDS_FILE);
    let bytes = fs_err::read(&path).map_err(Error::io(&path))?;
    serde_json::from_slice(&bytes).map_err(|e| Error::Internal(format!("{}: {e}", path.display())))
}
