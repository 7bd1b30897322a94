//! Record routes: upload a file into a Datanet (streamed to a temporary file under a size
//! limit with tokio's file API, then ingested all or nothing like `provdb ingest` on a
//! blocking thread, within the server's limits on decoded bytes per row and per upload and on
//! rows per upload: 413 naming the limit), list, read one with its provenance, change its
//! curation, remove it (a tombstone).
//!
//! Uploads and removals commit as the key's principal ([`committer`]): storage lets a version
//! replace a record only for that record's contributor, or for the Datanet's owner, a curator
//! or an admin acting as curator, and records which.

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use futures::StreamExt;
use provdb::{Committer, DatanetRole, IngestOptions, KeyRole, Principal, RecordId, Status};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;

use crate::http::auth::{Auth, require_on};
use crate::http::error::{ApiError, ApiResult, blocking};
use crate::http::extract::{ApiJson, ApiQuery};
use crate::http::state::Shared;
use crate::views::RecordView;

/// `POST /v1/datanets/{name}/records` query.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct UploadQuery {
    /// jsonl, csv or parquet.
    format: String,
    #[serde(default)]
    skip_invalid: bool,
    /// The file's name, for error messages.
    filename: Option<String>,
}

/// A name safe to create inside the upload folder: letters, digits, `.`, `-`, `_`.
fn safe_file_name(name: Option<&str>, extension: &str) -> String {
    let stem: String = name
        .unwrap_or("upload")
        .rsplit(['/', '\\'])
        .next()
        .unwrap_or("upload")
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
        .take(80)
        .collect();
    let stem = stem.trim_start_matches('.');
    let stem = stem.strip_suffix(&format!(".{extension}")).unwrap_or(stem);
    let stem = if stem.is_empty() { "upload" } else { stem };
    format!("{stem}.{extension}")
}

/// Whose word a key's uploads and removals are: an admin may act as curator anywhere; any
/// other key speaks for its own address (storage checks where it curates).
fn committer(who: &Principal) -> Committer {
    if who.role == KeyRole::Admin {
        Committer::Admin(who.address)
    } else {
        Committer::Principal(who.address)
    }
}

/// `POST /v1/datanets/{name}/records`: the body is the file.
pub(crate) async fn upload(
    State(state): State<Shared>,
    auth: Auth,
    Path(name): Path<String>,
    ApiQuery(query): ApiQuery<UploadQuery>,
    body: Body,
) -> ApiResult<Json<Value>> {
    auth.require(KeyRole::Contributor, "uploading records")?;
    let extension = match query.format.as_str() {
        "jsonl" | "csv" | "parquet" => query.format.clone(),
        other => {
            return Err(ApiError::bad_request(format!(
                "unknown format '{other}' (jsonl, csv, parquet)"
            )));
        }
    };
    let who = auth.0.clone();
    let check = {
        let state = state.clone();
        let name = name.clone();
        let who = who.clone();
        blocking(move || Ok(state.db.datanet_role(&who, &name)?.1)).await?
    };
    // Curators speak for their Datanet; everyone else signs for anyone but themselves.
    let unsigned_only_from = (check < DatanetRole::Curator).then_some(who.address);
    // File work (creating the folder, writing, closing) runs off the async workers: a slow
    // disk stalls this upload, not the requests that share its worker.
    let dir = state.db.dir().to_path_buf();
    let folder = blocking(move || {
        tempfile::Builder::new()
            .prefix("upload-")
            .tempdir_in(dir)
            .map_err(|e| ApiError::internal(format!("cannot make an upload folder: {e}")))
    })
    .await?;
    let path = folder
        .path()
        .join(safe_file_name(query.filename.as_deref(), &extension));
    if let Err(refused) = spool(body, &path, state.limits.max_upload_bytes).await {
        // Removing the folder is file work too.
        let _ = blocking(move || {
            drop(folder);
            Ok(())
        })
        .await;
        return Err(refused);
    }
    let rejects_path = folder.path().join("rejects.jsonl");
    let options = IngestOptions {
        contributor: Some(who.address),
        skip_invalid: query.skip_invalid,
        rejects_path: Some(rejects_path.clone()),
        unsigned_only_from,
        committer: committer(&who),
        max_record_bytes: state.limits.max_record_bytes,
        max_file_bytes: state.limits.max_upload_bytes,
        max_decoded_bytes: state.limits.max_upload_decoded_bytes,
        max_rows: state.limits.max_upload_rows,
    };
    let ingest_state = state.clone();
    let ingest_name = name.clone();
    let report = blocking(move || {
        // Messages name the file by its uploaded name, not by where the server put it.
        let folder_prefix = format!("{}/", folder.path().display());
        let report = ingest_state
            .db
            .ingest_file(&ingest_name, &path, &options)
            .map_err(|e| ApiError::from(e).without(&folder_prefix))?;
        let rejects: Vec<Value> = match std::fs::read_to_string(&rejects_path) {
            Ok(text) => text
                .lines()
                .filter_map(|line| serde_json::from_str(line).ok())
                .collect(),
            Err(_) => Vec::new(),
        };
        drop(folder);
        Ok(json!({
            "accepted": report.accepted,
            "rejected": report.rejected,
            "chunks": report.chunks,
            "sequence": report.sequence,
            "rejects": rejects,
        }))
    })
    .await?;
    // Index in the background: the next search would catch up anyway, this makes it quick.
    tokio::task::spawn_blocking(move || {
        if let Err(e) = state.db.catch_up_index(&name, &|_, _, _| {}) {
            eprintln!("provdb serve: indexing {name} after an upload: {e}");
        }
    });
    Ok(Json(report))
}

/// Streams an upload's body into `path` with tokio's file API (its writes run on the blocking
/// pool); 413 past `limit` bytes, before the byte that crosses it is written.
async fn spool(body: Body, path: &std::path::Path, limit: u64) -> ApiResult<()> {
    let failed = |e: std::io::Error| ApiError::internal(format!("cannot write the upload: {e}"));
    let mut file = tokio::fs::File::create(path).await.map_err(failed)?;
    let mut written: u64 = 0;
    let mut stream = body.into_data_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| ApiError::bad_request(format!("upload broke off: {e}")))?;
        written += chunk.len() as u64;
        if written > limit {
            return Err(ApiError::new(
                axum::http::StatusCode::PAYLOAD_TOO_LARGE,
                format!("the upload is over {limit} bytes (provdb serve --max-upload-mb)"),
            ));
        }
        file.write_all(&chunk).await.map_err(failed)?;
    }
    // Written out before the ingest reads it from another thread.
    file.flush().await.map_err(failed)
}

/// `GET /v1/datanets/{name}/records` query.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ListQuery {
    limit: Option<usize>,
}

/// `GET /v1/datanets/{name}/records`: the first record versions, in ingest order.
pub(crate) async fn list(
    State(state): State<Shared>,
    Auth(who): Auth,
    Path(name): Path<String>,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> ApiResult<Json<Value>> {
    let limit = query.limit.unwrap_or(50).min(1000);
    blocking(move || {
        state.db.datanet_role(&who, &name)?;
        let records = state.db.records(&name, limit)?;
        let views: Vec<RecordView> = records.iter().map(|r| RecordView::new(r, &name)).collect();
        Ok(Json(json!({ "datanet": name, "records": views })))
    })
    .await
}

fn parse_record_id(text: &str) -> ApiResult<RecordId> {
    text.parse()
        .map_err(|e| ApiError::bad_request(format!("invalid record id '{text}': {e}")))
}

/// The record and the caller's standing on its Datanet; 404 for a record it may not read.
fn readable_record(
    state: &Shared,
    who: &Principal,
    id: &RecordId,
) -> ApiResult<(provdb::Record, provdb::Datanet, DatanetRole)> {
    let not_found = || ApiError::not_found(format!("unknown record {id}"));
    let record = state.db.record(id)?.ok_or_else(not_found)?;
    let datanet = state.db.datanet_of(&record)?;
    let (datanet, role) = state
        .db
        .datanet_role(who, &datanet.name)
        .map_err(|_| not_found())?;
    Ok((record, datanet, role))
}

/// `GET /v1/records/{id}`: the record, its provenance and the version that replaced it.
pub(crate) async fn show(
    State(state): State<Shared>,
    Auth(who): Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let id = parse_record_id(&id)?;
    blocking(move || {
        let (record, datanet, _) = readable_record(&state, &who, &id)?;
        let mut view = json!(RecordView::new(&record, &datanet.name));
        view["superseded_by"] = json!(state.db.store().superseded_by(&id)?.map(|s| s.to_string()));
        Ok(Json(view))
    })
    .await
}

/// `PATCH /v1/records/{id}` body.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct CurationBody {
    status: Option<String>,
    quality: Option<f32>,
}

/// `PATCH /v1/records/{id}`: a curator sets status and/or quality.
pub(crate) async fn curate(
    State(state): State<Shared>,
    Auth(who): Auth,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<CurationBody>,
) -> ApiResult<Json<Value>> {
    let id = parse_record_id(&id)?;
    let status = body
        .status
        .as_deref()
        .map(|s| s.parse::<Status>())
        .transpose()
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    if status.is_none() && body.quality.is_none() {
        return Err(ApiError::bad_request("give a status, a quality or both"));
    }
    blocking(move || {
        let (_, _, role) = readable_record(&state, &who, &id)?;
        require_on(role, DatanetRole::Curator, "curating records")?;
        let sequence = state.db.set_curation(&id, status, body.quality)?;
        Ok(Json(json!({ "sequence": sequence })))
    })
    .await
}

/// `DELETE /v1/records/{id}`: its contributor or a curator stores a tombstone (storage checks
/// the rule again and records who removed it, in which role).
pub(crate) async fn remove(
    State(state): State<Shared>,
    Auth(who): Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let id = parse_record_id(&id)?;
    blocking(move || {
        let (record, datanet, role) = readable_record(&state, &who, &id)?;
        if record.contributor != who.address && role < DatanetRole::Curator {
            let rule = provdb::storage::version_rule(&id, &record.contributor, &datanet.name);
            return Err(ApiError::forbidden(rule));
        }
        let sequence = state.db.tombstone(&id, committer(&who))?;
        Ok(Json(json!({ "sequence": sequence })))
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::safe_file_name;

    #[test]
    fn upload_names_stay_inside_their_folder() {
        assert_eq!(safe_file_name(None, "csv"), "upload.csv");
        assert_eq!(
            safe_file_name(Some("../../etc/passwd"), "jsonl"),
            "passwd.jsonl"
        );
        assert_eq!(safe_file_name(Some("notes.jsonl"), "jsonl"), "notes.jsonl");
        assert_eq!(safe_file_name(Some(".."), "csv"), "upload.csv");
        assert_eq!(safe_file_name(Some("a b\u{0}c"), "csv"), "abc.csv");
    }
}
