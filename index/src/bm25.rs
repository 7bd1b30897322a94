//! The full-text index of one Datanet: tantivy, BM25 over chunk text analysed with English
//! stop words and stemming, the chunk ordinal as a fast field.
//!
//! Invariant: the index holds the chunks of ordinals `0..ordinals`, where `ordinals` (and the
//! catalog sequence it was built against) is the payload of the last tantivy commit. Documents
//! added after that commit are lost in a crash and re-added by catch-up, so there are never
//! two documents for one ordinal. Text is not stored: storage holds it.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use roaring::RoaringBitmap;
use serde::{Deserialize, Serialize};
use tantivy::collector::sort_key::{SortBySimilarityScore, SortByStaticFastValue};
use tantivy::collector::{FilterCollector, TopDocs};
use tantivy::query::QueryParser;
use tantivy::schema::{FAST, Field, IndexRecordOption, Schema, TextFieldIndexing, TextOptions};
use tantivy::tokenizer::{
    Language, LowerCaser, RemoveLongFilter, SimpleTokenizer, Stemmer, StopWordFilter, TextAnalyzer,
};
use tantivy::{Index, IndexReader, IndexWriter, Order, ReloadPolicy, doc};

use crate::error::{IndexError, Result};
use crate::fusion::Scored;

const TOKENIZER: &str = "en_stem_stop";
const ORDINAL: &str = "ordinal";
const TEXT: &str = "text";
/// Memory the tantivy writer may buffer before it flushes a segment.
const WRITER_BUDGET_BYTES: usize = 64 << 20;

/// What a commit records.
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize)]
struct Payload {
    ordinals: u32,
    sequence: u64,
}

/// BM25 over one Datanet's chunks.
pub struct Bm25Index {
    path: PathBuf,
    index: Index,
    reader: IndexReader,
    writer: Mutex<IndexWriter>,
    text: Field,
    ordinal: Field,
    committed: Mutex<Payload>,
}

fn analyzer() -> Result<TextAnalyzer> {
    let stop_words = StopWordFilter::new(Language::English)
        .ok_or_else(|| IndexError::Internal("tantivy has no English stop words".into()))?;
    Ok(TextAnalyzer::builder(SimpleTokenizer::default())
        .filter(RemoveLongFilter::limit(40))
        .filter(LowerCaser)
        .filter(stop_words)
        .filter(Stemmer::new(Language::English))
        .build())
}

fn schema() -> Schema {
    let mut builder = Schema::builder();
    let indexing = TextFieldIndexing::default()
        .set_tokenizer(TOKENIZER)
        .set_index_option(IndexRecordOption::WithFreqs);
    builder.add_text_field(TEXT, TextOptions::default().set_indexing_options(indexing));
    builder.add_u64_field(ORDINAL, FAST);
    builder.build()
}

impl Bm25Index {
    /// Opens the index in `dir`, creating it when absent.
    pub fn open(dir: &Path) -> Result<Self> {
        let err = IndexError::tantivy(dir);
        fs_err::create_dir_all(dir).map_err(IndexError::io(dir))?;
        let index = if dir.join("meta.json").exists() {
            Index::open_in_dir(dir).map_err(IndexError::tantivy(dir))?
        } else {
            Index::create_in_dir(dir, schema()).map_err(IndexError::tantivy(dir))?
        };
        index.tokenizers().register(TOKENIZER, analyzer()?);
        let schema = index.schema();
        let field = |name: &str| {
            schema.get_field(name).map_err(|_| IndexError::Corrupt {
                path: dir.to_path_buf(),
                reason: format!("the full-text index has no field '{name}'"),
            })
        };
        let (text, ordinal) = (field(TEXT)?, field(ORDINAL)?);
        let payload = match index
            .load_metas()
            .map_err(IndexError::tantivy(dir))?
            .payload
        {
            Some(json) => serde_json::from_str(&json).map_err(|e| IndexError::Corrupt {
                path: dir.join("meta.json"),
                reason: format!("commit payload does not parse: {e}"),
            })?,
            None => Payload::default(),
        };
        let writer = index
            .writer_with_num_threads(1, WRITER_BUDGET_BYTES)
            .map_err(IndexError::tantivy(dir))?;
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .try_into()
            .map_err(err)?;
        Ok(Self {
            path: dir.to_path_buf(),
            index,
            reader,
            writer: Mutex::new(writer),
            text,
            ordinal,
            committed: Mutex::new(payload),
        })
    }

    /// Ordinals covered by the last commit: `0..ordinals`.
    pub fn ordinals(&self) -> u32 {
        self.committed.lock().map(|p| p.ordinals).unwrap_or(0)
    }

    /// Adds the chunks of ordinals `first..first + texts.len()` and commits, recording the new
    /// coverage and the catalog sequence. `first` must equal `ordinals()`.
    pub fn add_and_commit(&self, first: u32, texts: &[&str], sequence: u64) -> Result<()> {
        let mut committed = self
            .committed
            .lock()
            .map_err(|_| IndexError::Internal("bm25 state lock poisoned".into()))?;
        if first != committed.ordinals {
            return Err(IndexError::Internal(format!(
                "bm25 catch-up at ordinal {first}, index covers {}",
                committed.ordinals
            )));
        }
        let mut writer = self
            .writer
            .lock()
            .map_err(|_| IndexError::Internal("bm25 writer lock poisoned".into()))?;
        for (i, text) in texts.iter().enumerate() {
            writer
                .add_document(doc!(self.text => *text, self.ordinal => u64::from(first) + i as u64))
                .map_err(IndexError::tantivy(&self.path))?;
        }
        let payload = Payload {
            ordinals: first + texts.len() as u32,
            sequence,
        };
        let json = serde_json::to_string(&payload)
            .map_err(|e| IndexError::Internal(format!("payload does not encode: {e}")))?;
        let mut prepared = writer
            .prepare_commit()
            .map_err(IndexError::tantivy(&self.path))?;
        prepared.set_payload(&json);
        prepared.commit().map_err(IndexError::tantivy(&self.path))?;
        *committed = payload;
        self.reader
            .reload()
            .map_err(IndexError::tantivy(&self.path))
    }

    /// Top `k` ordinals among `allowed` by BM25 score for `text`, read as a bag of words
    /// (any of them may match): punctuation is dropped, so no input is a query syntax error.
    pub fn search(&self, text: &str, k: usize, allowed: Arc<RoaringBitmap>) -> Result<Vec<Scored>> {
        let words: String = text
            .chars()
            .map(|c| if c.is_alphanumeric() { c } else { ' ' })
            .collect();
        let parser = QueryParser::for_index(&self.index, vec![self.text]);
        let (query, _errors) = parser.parse_query_lenient(&words);
        let searcher = self.reader.searcher();
        // Ties in score go to the lower ordinal, so results do not depend on how the index
        // happens to be split into segments (a caught-up index and a rebuild agree).
        let by_score_then_ordinal = TopDocs::with_limit(k).order_by((
            (SortBySimilarityScore, Order::Desc),
            (SortByStaticFastValue::<u64>::for_field(ORDINAL), Order::Asc),
        ));
        let collector = FilterCollector::new(
            ORDINAL.to_string(),
            move |ordinal: u64| u32::try_from(ordinal).is_ok_and(|o| allowed.contains(o)),
            by_score_then_ordinal,
        );
        let top = searcher
            .search(&query, &collector)
            .map_err(IndexError::tantivy(&self.path))?;
        let mut out = Vec::with_capacity(top.len());
        for ((score, ordinal), address) in top {
            let ordinal = ordinal.ok_or_else(|| IndexError::Corrupt {
                path: self.path.clone(),
                reason: format!("document {address:?} has no ordinal"),
            })?;
            out.push((ordinal as u32, score));
        }
        Ok(out)
    }
}
