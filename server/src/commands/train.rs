//! `provdb train create|list|show|events|resume|publish`: the Model Factory from the command
//! line. A job runs in the foreground with a progress bar (steps, loss, tokens/s, ETA); a job
//! the process did not finish (Ctrl-C) is found cancelled next time and resumes from its last
//! checkpoint.

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

use indicatif::{ProgressBar, ProgressStyle};
use provdb::factory::{DataFormat, FineTuneSpec, JobId, job_view};
use provdb::inference::llama::LlamaModel;
use provdb::inference::model_files;
use provdb::inference::train::TrainingConfig;
use provdb::storage::JobStatus;
use provdb::{Address, Caller, Db};
use serde_json::{Value, json};

use crate::cli::{TrainCommand, TrainCreateArgs};
use crate::output::{UserError, parse_arg, print_json, print_table};

/// The database with the generator the job trains.
fn open(data: &Path, model: Option<PathBuf>) -> anyhow::Result<Db> {
    let path = model.unwrap_or_else(model_files::default_generator_path);
    let name = path
        .file_name()
        .map_or_else(|| "model".into(), |n| n.to_string_lossy().into_owned());
    Ok(Db::open(data)?.with_generator(LlamaModel::load(&path)?, name))
}

fn spec_of(args: &TrainCreateArgs) -> anyhow::Result<FineTuneSpec> {
    let mut hyperparameters: TrainingConfig = match &args.config {
        Some(path) => serde_json::from_str(&fs_err::read_to_string(path)?)
            .map_err(|e| UserError(format!("{}: not a training config: {e}", path.display())))?,
        None => TrainingConfig::default(),
    };
    let h = &mut hyperparameters;
    h.rank = args.rank.unwrap_or(h.rank);
    h.alpha = args.alpha.unwrap_or(h.alpha);
    if let Some(targets) = &args.targets {
        h.targets = targets.split(',').map(|t| t.trim().to_string()).collect();
    }
    h.learning_rate = args.learning_rate.unwrap_or(h.learning_rate);
    h.epochs = args.epochs.unwrap_or(h.epochs);
    h.batch_size = args.batch_size.unwrap_or(h.batch_size);
    h.max_length = args.max_length.unwrap_or(h.max_length);
    h.seed = args.seed.unwrap_or(h.seed);
    let format = match args.format.as_str() {
        "completion" => DataFormat::Completion {
            column: args.text_column.clone(),
        },
        "instruction" => DataFormat::Instruction {
            instruction: args.instruction_column.clone(),
            response: args.response_column.clone(),
        },
        "chat" => DataFormat::Chat {
            messages: args.messages_column.clone(),
        },
        other => {
            return Err(UserError(format!(
                "unknown --format '{other}' (completion, instruction, chat)"
            ))
            .into());
        }
    };
    Ok(FineTuneSpec {
        model: None,
        datanet: args.datanet.clone(),
        query: args.query.clone(),
        format,
        hyperparameters,
        training_share_bps: args.share_bps,
    })
}

/// Runs a queued job here, showing its steps.
fn run_foreground(db: &Db, id: JobId, json: bool) -> anyhow::Result<()> {
    let bar = if json || !std::io::IsTerminal::is_terminal(&std::io::stderr()) {
        ProgressBar::hidden()
    } else {
        let bar = ProgressBar::new(1);
        if let Ok(style) = ProgressStyle::with_template("{bar:30} {pos}/{len} steps · {msg}") {
            bar.set_style(style);
        }
        bar
    };
    let status = db.run_fine_tune_job(id, &AtomicBool::new(false), &|event| {
        if event["type"] == "step" {
            bar.set_length(event["total_steps"].as_u64().unwrap_or(1));
            bar.set_position(event["step"].as_u64().unwrap_or(0));
            bar.set_message(format!(
                "loss {:.3} · {:.0} tokens/s · eta {:.0} s",
                event["loss"].as_f64().unwrap_or(f64::NAN),
                event["tokens_per_second"].as_f64().unwrap_or(0.0),
                event["eta_seconds"].as_f64().unwrap_or(0.0)
            ));
        }
    })?;
    bar.finish_and_clear();
    let job = db.fine_tune_job(id)?;
    if json {
        return print_json(&job_view(&job));
    }
    show(&job_view(&job));
    match status {
        JobStatus::Succeeded => {
            println!("publish it: provdb train publish {id}");
            Ok(())
        }
        JobStatus::Cancelled => Ok(()),
        _ => Err(UserError(format!(
            "job {id} failed: {}",
            job.error.as_deref().unwrap_or("unknown error")
        ))
        .into()),
    }
}

fn show(view: &Value) {
    println!(
        "job {}  {}  datanet {}",
        view["id"].as_str().unwrap_or(""),
        view["status"].as_str().unwrap_or(""),
        view["datanet"].as_str().unwrap_or("")
    );
    if let Some(error) = view["error"].as_str() {
        println!("  {error}");
    }
    let result = &view["result"];
    if result.is_null() {
        return;
    }
    println!("  adapter {}", result["adapter_id"].as_str().unwrap_or(""));
    for (label, eval) in [("before", &result["before"]), ("after", &result["after"])] {
        if let Some(loss) = eval["loss"].as_f64() {
            println!(
                "  held-out loss {label:6} {loss:.4} (perplexity {:.2})",
                eval["perplexity"].as_f64().unwrap_or(f64::NAN)
            );
        }
    }
    for sample in result["samples"].as_array().into_iter().flatten() {
        println!(
            "\n  prompt: {}",
            sample["prompt"].as_str().unwrap_or("").trim()
        );
        println!("  base:   {}", sample["base"].as_str().unwrap_or("").trim());
        println!(
            "  tuned:  {}",
            sample["tuned"].as_str().unwrap_or("").trim()
        );
    }
}

pub(crate) fn run(data: &Path, command: TrainCommand) -> anyhow::Result<()> {
    if matches!(
        command,
        TrainCommand::Create(_) | TrainCommand::Resume { .. }
    ) {
        // One element-wise thread beside gemm's two is the fastest training step on 2 cores
        // (`provdb bench train`); set before candle starts its pool.
        crate::commands::set_candle_threads(1);
    }
    match command {
        TrainCommand::Create(args) => {
            let db = open(data, args.model.clone())?;
            db.recover_fine_tune_jobs()?;
            let caller = match &args.caller {
                Some(who) => Caller::address(parse_arg::<Address>(who, "--as")?),
                // The local operator reads everything, as address zero.
                None => Caller::admin(Address([0; 20])),
            };
            let job = db.create_fine_tune_job(spec_of(&args)?, caller)?;
            let id = JobId(job.job_id);
            if !args.json {
                eprintln!(
                    "job {id} created; training (Ctrl-C stops; `provdb train resume {id}` goes on)"
                );
            }
            run_foreground(&db, id, args.json)
        }
        TrainCommand::Resume { job, model, json } => {
            let db = open(data, model)?;
            db.recover_fine_tune_jobs()?;
            let id: JobId = job.parse()?;
            db.resume_fine_tune_job(id)?;
            run_foreground(&db, id, json)
        }
        TrainCommand::Publish {
            job,
            owner,
            model,
            json,
        } => {
            let db = open(data, model)?;
            let id: JobId = job.parse()?;
            let owner = match owner {
                Some(owner) => parse_arg::<Address>(&owner, "--owner")?,
                None => db.fine_tune_job(id)?.owner,
            };
            let info = db.publish_fine_tune_job(id, owner)?;
            if json {
                return print_json(&info);
            }
            println!(
                "published adapter {} (owner {owner}); use it: --adapter {}",
                info.id,
                &info.id[..14]
            );
            Ok(())
        }
        TrainCommand::List { json } => {
            let db = Db::open(data)?;
            let jobs: Vec<Value> = db.fine_tune_jobs()?.iter().map(job_view).collect();
            if json {
                return print_json(&json!({ "jobs": jobs }));
            }
            let rows: Vec<Vec<String>> = jobs
                .iter()
                .map(|j| {
                    ["id", "status", "datanet", "owner"]
                        .iter()
                        .map(|f| j[f].as_str().unwrap_or("").to_string())
                        .collect()
                })
                .collect();
            print_table(&["id", "status", "datanet", "owner"], &rows);
            Ok(())
        }
        TrainCommand::Show { job, json } => {
            let db = Db::open(data)?;
            let view = job_view(&db.fine_tune_job(job.parse()?)?);
            if json {
                return print_json(&view);
            }
            show(&view);
            Ok(())
        }
        TrainCommand::Events { job, json } => {
            let db = Db::open(data)?;
            let events: Vec<Value> = db
                .fine_tune_events(job.parse()?, 0, usize::MAX)?
                .iter()
                .map(|e| {
                    let mut v: Value = serde_json::from_str(&e.json).unwrap_or(Value::Null);
                    v["seq"] = json!(e.seq);
                    v["at"] = json!(e.at_ms);
                    v
                })
                .collect();
            if json {
                return print_json(&json!({ "events": events }));
            }
            for event in &events {
                println!("{event}");
            }
            Ok(())
        }
    }
}
