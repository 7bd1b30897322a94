//! `provdb train create|list|show|events|resume|publish`: the Model Factory from the command
//! line. A job runs in the foreground with a progress bar (steps, loss, tokens/s, ETA); a job
//! the process did not finish (Ctrl-C) is found cancelled next time and resumes from its last
//! checkpoint.

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

use clap::{Args, Subcommand, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use provdb::factory::{DataFormat, FineTuneSpec, JobId, TrainingAttribution, job_view};
use provdb::inference::llama::LlamaModel;
use provdb::inference::train::TrainingConfig;
use provdb::storage::JobStatus;
use provdb::{Address, Caller, Db};
use serde_json::{Value, json};

use crate::cli::options::GeneratorArgs;
use crate::output::{UserError, print_json, print_table};

/// `provdb train`.
#[derive(Debug, Subcommand)]
pub(crate) enum TrainCommand {
    /// Fine-tune a LoRA adapter on a Datanet's records, in the foreground with a progress bar.
    Create(Box<TrainCreateArgs>),
    /// List fine-tuning jobs.
    List,
    /// Show a job: status, evaluation, samples.
    Show {
        /// The job id (`ftjob-…`).
        job: JobId,
    },
    /// A job's events (steps, losses, status changes).
    Events {
        /// The job id.
        job: JobId,
    },
    /// Resume a cancelled or failed job from its last checkpoint, in the foreground.
    Resume {
        /// The job id.
        job: JobId,
        #[command(flatten)]
        generator: GeneratorArgs,
    },
    /// Add a succeeded job's adapter to the adapter store, with its training provenance.
    Publish {
        /// The job id.
        job: JobId,
        /// The adapter's owner (default: the job's owner).
        #[arg(long)]
        owner: Option<Address>,
        // The generator the adapter was trained for.
        #[command(flatten)]
        generator: GeneratorArgs,
    },
}

/// `provdb train create`.
#[derive(Debug, Args)]
pub(crate) struct TrainCreateArgs {
    /// The Datanet to train on.
    datanet: String,
    /// SQL over it whose `record_id` column selects the records (their text is read from the
    /// store, not from the query; default: every live approved record).
    #[arg(long)]
    query: Option<String>,
    /// How examples are read from the rows.
    #[arg(long, value_enum, default_value_t = TrainFormat::Completion)]
    format: TrainFormat,
    /// The text column of `completion` (default: the Datanet's text column).
    #[arg(long)]
    text_column: Option<String>,
    /// The instruction column of `instruction`.
    #[arg(long, default_value = "instruction")]
    instruction_column: String,
    /// The response column of `instruction`.
    #[arg(long, default_value = "response")]
    response_column: String,
    /// The messages column of `chat`.
    #[arg(long, default_value = "messages")]
    messages_column: String,
    /// Hyperparameters as a JSON file (the fields of TrainingConfig; flags override it).
    #[arg(long)]
    config: Option<PathBuf>,
    /// LoRA rank.
    #[arg(long)]
    rank: Option<usize>,
    /// LoRA alpha.
    #[arg(long)]
    alpha: Option<f32>,
    /// Targeted modules, comma-separated (q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj).
    #[arg(long)]
    targets: Option<String>,
    /// Peak learning rate.
    #[arg(long)]
    learning_rate: Option<f64>,
    /// Passes over the data.
    #[arg(long)]
    epochs: Option<usize>,
    /// Examples per batch.
    #[arg(long)]
    batch_size: Option<usize>,
    /// Longest example in tokens.
    #[arg(long)]
    max_length: Option<usize>,
    /// Seed.
    #[arg(long)]
    seed: Option<u64>,
    /// Basis points of the adapter's price in every answer paid to the training contributors
    /// (0..=10000).
    #[arg(long, default_value_t = provdb::factory::DEFAULT_TRAINING_SHARE_BPS)]
    share_bps: u32,
    /// How the training share is split among the training contributors: `influence` (by
    /// each answer's measured influence; a gradient store is kept with the adapter) or
    /// `tokens` (by tokens trained, the same in every answer).
    #[arg(long, value_enum, default_value_t = Attribution::Influence)]
    attribution: Attribution,
    /// Rows of each gradient projection with `influence` (a record's gradient keeps
    /// 2·rank·width numbers per trained module).
    #[arg(long, default_value_t = 8)]
    projection_width: usize,
    /// Train as this address (it owns the job; private Datanets it may read become readable).
    #[arg(long = "as", value_name = "ADDRESS")]
    caller: Option<Address>,
    #[command(flatten)]
    generator: GeneratorArgs,
}

/// Training attribution (`--attribution`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Attribution {
    /// By each answer's measured influence.
    Influence,
    /// By tokens trained.
    Tokens,
}

/// Training data formats (`--format`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum TrainFormat {
    /// Plain text to continue: every token is trained on.
    Completion,
    /// An instruction and its response; only the response is trained on.
    Instruction,
    /// A conversation; the last assistant message is trained on.
    Chat,
}

/// The database with the generator the job trains.
fn open(data: &Path, generator: &GeneratorArgs) -> anyhow::Result<Db> {
    let path = generator.path();
    let name = provdb::models::generator_name(&path);
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
    let format = match args.format {
        TrainFormat::Completion => DataFormat::Completion {
            column: args.text_column.clone(),
        },
        TrainFormat::Instruction => DataFormat::Instruction {
            instruction: args.instruction_column.clone(),
            response: args.response_column.clone(),
        },
        TrainFormat::Chat => DataFormat::Chat {
            messages: args.messages_column.clone(),
        },
    };
    Ok(FineTuneSpec {
        model: None,
        datanet: args.datanet.clone(),
        query: args.query.clone(),
        format,
        hyperparameters,
        training_share_bps: args.share_bps,
        training_attribution: match args.attribution {
            Attribution::Influence => TrainingAttribution::Influence,
            Attribution::Tokens => TrainingAttribution::Tokens,
        },
        influence_projection_width: args.projection_width,
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

pub(crate) fn run(data: &Path, json: bool, command: TrainCommand) -> anyhow::Result<()> {
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
            let db = open(data, &args.generator)?;
            db.recover_fine_tune_jobs()?;
            // The local operator reads everything, as address zero.
            let caller = args
                .caller
                .map_or_else(|| Caller::admin(Address([0; 20])), Caller::address);
            let job = db.create_fine_tune_job(spec_of(&args)?, caller)?;
            let id = JobId(job.job_id);
            if !json {
                eprintln!(
                    "job {id} created; training (Ctrl-C stops; `provdb train resume {id}` goes on)"
                );
            }
            run_foreground(&db, id, json)
        }
        TrainCommand::Resume { job, generator } => {
            let db = open(data, &generator)?;
            db.recover_fine_tune_jobs()?;
            db.resume_fine_tune_job(job)?;
            run_foreground(&db, job, json)
        }
        TrainCommand::Publish {
            job,
            owner,
            generator,
        } => {
            let db = open(data, &generator)?;
            let owner = match owner {
                Some(owner) => owner,
                None => db.fine_tune_job(job)?.owner,
            };
            let info = db.publish_fine_tune_job(job, owner)?;
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
        TrainCommand::List => {
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
        TrainCommand::Show { job } => {
            let db = Db::open(data)?;
            let view = job_view(&db.fine_tune_job(job)?);
            if json {
                return print_json(&view);
            }
            show(&view);
            Ok(())
        }
        TrainCommand::Events { job } => {
            let db = Db::open(data)?;
            let events: Vec<Value> = db
                .fine_tune_events(job, 0, usize::MAX)?
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
