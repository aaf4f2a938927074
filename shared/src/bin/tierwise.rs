//! `tierwise`: the command line — route a query, embed a text, evaluate the router on a
//! routing benchmark or labelled asks, retrain the classifier, check a pool file, and write
//! the classifier's training features.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};
use tierwise::routing::decision::{AllHealthy, RouteRequest, Router};
use tierwise::routing::pool::{PoolConfig, Tier};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "tierwise",
    version,
    about = "Route each LLM query to the cheapest model tier that answers it well"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// `tierwise report --format`.
#[derive(Clone, Copy, clap::ValueEnum)]
enum Format {
    Json,
    Table,
    Html,
}

#[derive(Subcommand)]
enum Command {
    /// Route a query with the bundled model and pool; print the decision JSON.
    Route(RouteArgs),
    /// Evaluate the router on a routing-benchmark JSONL file (RouteLLM metrics, or --tiers mix).
    Eval(EvalArgs),
    /// Retrain the classifier: the difficulty head from outcome data (routing benchmarks,
    /// `tierwise labels` output), the task-kind head from labelled asks; writes
    /// DIR/classifier.json and DIR/training.json.
    Train(TrainArgs),
    /// Check a pool file (TOML) and its task-kind table against the classifier; exit 0 when
    /// it would load, else print what is wrong (naming the field) and exit 2.
    ValidatePool {
        /// The pool file.
        file: PathBuf,
        /// A classifier artifact to check the task kinds against (default: bundled).
        #[arg(long)]
        classifier: Option<PathBuf>,
    },
    /// Print a text's MiniLM embedding (384 floats, JSON array).
    Embed {
        /// The text to embed.
        text: String,
    },
    /// Write the classifier's feature vectors of a routing-benchmark JSONL file (training input).
    Features {
        /// Routing-benchmark JSONL (`{"id", "prompt", ...}` per line).
        #[arg(long)]
        data: std::path::PathBuf,
        /// Output JSONL: `{"id", "features": [...]}` per line.
        #[arg(long)]
        out: std::path::PathBuf,
        /// Worker threads.
        #[arg(long, default_value_t = 2)]
        threads: usize,
    },
    /// Check the embedder against full-precision reference vectors (JSONL `{"text", "tokens",
    /// "embedding"}`): prints cosine min/mean and this CPU's int8 kernel path; exit 2 when
    /// the cosine min < 0.98, the mean < 0.99 or a token count differs.
    Parity {
        /// The reference file (the repository's is tests/data/minilm_reference.jsonl).
        #[arg(long)]
        reference: PathBuf,
        /// A candidate ONNX model (MiniLM-shaped, same tokenizer) instead of the bundled one:
        /// check a rebuilt model on every kernel path before bundling it.
        #[arg(long)]
        model: Option<PathBuf>,
    },
    /// Print the classifier's feature names (JSON array), in vector order.
    #[command(hide = true)]
    FeatureNames,
    /// The cost report (spend, savings against the baseline, tier mix) for a date range: from
    /// the DynamoDB rollups (`--table`, or TIERWISE_TABLE; AWS_ENDPOINT_URL works) or from a
    /// DynamoDB export copied to a local folder (`--export DIR`).
    Report(ReportArgs),
    /// Create the cost table and the queues the router writes to (local stack, e.g. moto via
    /// AWS_ENDPOINT_URL); print their names as TIERWISE_* environment lines.
    #[cfg(feature = "aws")]
    SetupLocal {
        /// Table name.
        #[arg(long, default_value = "tierwise-costs")]
        table: String,
        /// Prefix of the queue names.
        #[arg(long, default_value = "tierwise")]
        queue_prefix: String,
    },
    /// Deliver what the router parked on its fallback queue (records and shadow samples),
    /// with the router's settings from the TIERWISE_* environment.
    #[cfg(feature = "aws")]
    Redrive {
        /// Stop after this many messages.
        #[arg(long, default_value_t = 100_000)]
        max_messages: u64,
    },
    /// Manage API keys (Bearer keys bound to one tenant, stored as hashes in the table).
    #[cfg(feature = "aws")]
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Export shadow-evaluation verdicts as training labels (routing-benchmark JSONL: `scores`
    /// of the routed and reference models) from the table, for `tierwise train` on a team's
    /// own traffic. Reads with a filtered Scan (needs dynamodb:Scan).
    #[cfg(feature = "aws")]
    Labels {
        /// First day, YYYY-MM-DD.
        #[arg(long)]
        from: String,
        /// Last day, YYYY-MM-DD.
        #[arg(long)]
        to: String,
        #[arg(long)]
        tenant: Option<String>,
        /// The DynamoDB table (default: TIERWISE_TABLE).
        #[arg(long)]
        table: Option<String>,
        /// Write here instead of standard output.
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

#[cfg(feature = "aws")]
#[derive(Subcommand)]
enum KeysCommand {
    /// Create a key and print it once (it is stored only as a hash).
    Create {
        /// The tenant every request with the key is billed to.
        #[arg(long)]
        tenant: String,
        /// Budget in USD per period; requests that could pass it are refused (429).
        #[arg(long)]
        budget_usd: Option<f64>,
        /// The budget's period.
        #[arg(long, default_value = "month", requires = "budget_usd")]
        period: String,
        /// Requests per minute.
        #[arg(long)]
        rpm: Option<u32>,
        /// Pool model ids the key may use (comma-separated; default: all).
        #[arg(long, value_delimiter = ',')]
        models: Option<Vec<String>>,
        /// Tiers the key may use (comma-separated; default: all).
        #[arg(long, value_delimiter = ',')]
        tiers: Option<Vec<String>>,
        /// Reads every tenant's reports.
        #[arg(long)]
        admin: bool,
        /// A label for people.
        #[arg(long)]
        name: Option<String>,
        /// The DynamoDB table (default: TIERWISE_TABLE).
        #[arg(long)]
        table: Option<String>,
    },
    /// List the keys (ids, tenants, limits; never a secret).
    List {
        #[arg(long)]
        table: Option<String>,
    },
    /// Revoke a key by its id (refused everywhere within the routers' key cache, 60 s).
    Revoke {
        key_id: String,
        #[arg(long)]
        table: Option<String>,
    },
}

#[derive(clap::Args)]
struct RouteArgs {
    /// The query text.
    query: String,
    /// A pool file (TOML) instead of the bundled default pool.
    #[arg(long)]
    pool: Option<PathBuf>,
    /// Confidence needed to stay on the predicted tier (default: the pool's).
    #[arg(long)]
    require_confidence: Option<f64>,
    /// Lowest tier allowed.
    #[arg(long)]
    min_tier: Option<Tier>,
    /// Highest tier allowed.
    #[arg(long)]
    max_tier: Option<Tier>,
    /// Tenant to attribute the query to.
    #[arg(long)]
    tenant: Option<String>,
    /// A classifier artifact (from `tierwise train`) instead of the bundled one.
    #[arg(long)]
    classifier: Option<PathBuf>,
}

#[derive(clap::Args)]
struct EvalArgs {
    /// Routing-benchmark JSONL.
    #[arg(long)]
    data: PathBuf,
    /// The weak model (its scores in the data).
    #[arg(long, requires = "strong", conflicts_with = "tiers")]
    weak: Option<String>,
    /// The strong model.
    #[arg(long, requires = "weak")]
    strong: Option<String>,
    /// `tier1=MODEL,tier2=MODEL,tier3=MODEL`: report the routed mix's quality and cost.
    /// Without --weak/--strong or --tiers, rows labelled with a `tier` (everyday asks) are
    /// reported by where each tier's asks went.
    #[arg(long)]
    tiers: Option<String>,
    /// Write `{"id", "score"}` per prompt here.
    #[arg(long)]
    scores_out: Option<PathBuf>,
    /// A pool file (TOML) instead of the bundled default pool.
    #[arg(long)]
    pool: Option<PathBuf>,
    /// Confidence threshold (default: the pool's).
    #[arg(long)]
    threshold: Option<f64>,
    /// Switch the rules off (to measure what they add).
    #[arg(long)]
    no_rules: bool,
    /// A classifier artifact (from `tierwise train`) instead of the bundled one.
    #[arg(long)]
    classifier: Option<PathBuf>,
    /// Worker threads.
    #[arg(long, default_value_t = 2)]
    threads: usize,
}

#[derive(clap::Args)]
struct ReportArgs {
    /// First day, YYYY-MM-DD (UTC). Required with the table; with --export, the export's
    /// first day by default.
    #[arg(long)]
    from: Option<String>,
    /// Last day, YYYY-MM-DD (UTC), inclusive. Required with the table; with --export, the
    /// export's last day by default.
    #[arg(long)]
    to: Option<String>,
    /// Only this tenant.
    #[arg(long)]
    tenant: Option<String>,
    /// Add per-group lines: day, tier or model.
    #[arg(long)]
    group_by: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Json)]
    format: Format,
    /// Write the report here instead of standard output.
    #[arg(long)]
    out: Option<PathBuf>,
    /// A DynamoDB export folder (AWSDynamoDB/<export-id>/manifest-summary.json, ...).
    #[arg(long, conflicts_with = "table")]
    export: Option<PathBuf>,
    /// The DynamoDB table (default: TIERWISE_TABLE).
    #[arg(long)]
    table: Option<String>,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Route(args) => route(args)?,
        Command::Eval(args) => eval(args)?,
        Command::Train(args) => train(args)?,
        Command::ValidatePool { file, classifier } => validate_pool(&file, classifier)?,
        Command::Embed { text } => {
            let embedder =
                tierwise::routing::embed::Embedder::bundled().context("loading the embedder")?;
            let q = embedder.embed(&text).context("embedding the text")?;
            println!("{}", serde_json::to_string(&q.embedding.0)?);
        }
        Command::Features { data, out, threads } => write_features(&data, &out, threads)?,
        Command::Parity { reference, model } => parity(&reference, model.as_deref())?,
        Command::FeatureNames => println!(
            "{}",
            serde_json::to_string(&tierwise::routing::features::feature_names())?
        ),
        Command::Report(args) => report(args)?,
        #[cfg(feature = "aws")]
        Command::SetupLocal {
            table,
            queue_prefix,
        } => aws_cmd::setup_local(&table, &queue_prefix)?,
        #[cfg(feature = "aws")]
        Command::Redrive { max_messages } => aws_cmd::redrive(max_messages)?,
        #[cfg(feature = "aws")]
        Command::Keys(cmd) => aws_cmd::keys(cmd)?,
        #[cfg(feature = "aws")]
        Command::Labels {
            from,
            to,
            tenant,
            table,
            out,
        } => aws_cmd::labels(&from, &to, tenant.as_deref(), table, out)?,
    }
    Ok(())
}

/// `tierwise route`: the decision JSON, or the refusal and exit 2.
fn route(a: RouteArgs) -> anyhow::Result<()> {
    let router =
        Router::with_pool_and_classifier(load_pool(a.pool.as_deref())?, a.classifier.as_deref())?;
    let req = RouteRequest {
        query: Some(a.query),
        require_confidence: a.require_confidence,
        min_tier: a.min_tier,
        max_tier: a.max_tier,
        tenant: a.tenant,
        ..RouteRequest::default()
    };
    match router.route(&req, &AllHealthy) {
        Ok(d) => println!("{}", serde_json::to_string_pretty(&d)?),
        Err(e) => {
            eprintln!("tierwise route: {e}");
            std::process::exit(2);
        }
    }
    Ok(())
}

/// `tierwise eval`: RouteLLM metrics against a weak and a strong model, the `--tiers` mix, or
/// where labelled asks went.
fn eval(a: EvalArgs) -> anyhow::Result<()> {
    let pool = load_pool(a.pool.as_deref())?;
    let threshold = a.threshold.unwrap_or(pool.confidence_threshold());
    anyhow::ensure!(
        (0.0..=1.0).contains(&threshold),
        "--threshold must be between 0 and 1"
    );
    // Check the cheap arguments before loading the model.
    let map = a
        .tiers
        .as_deref()
        .map(tierwise::offline::replay::parse_tier_map)
        .transpose()?;
    let rows = tierwise::offline::dataset::read_jsonl(&a.data)?;
    let mut router = Router::with_pool_and_classifier(pool.clone(), a.classifier.as_deref())?;
    if a.no_rules {
        router = router.with_rules(tierwise::routing::rules::Rules::disabled());
    }
    if let (Some(weak), Some(strong)) = (&a.weak, &a.strong) {
        let r = tierwise::offline::replay::weak_strong(
            &router, &rows, weak, strong, threshold, a.threads,
        )?;
        if let Some(path) = &a.scores_out {
            write_scores(path, &r.scores)?;
        }
        eprintln!(
            "{}: {} prompts ({} skipped: no score for {weak} or {strong}), {} decided by rules; \
             ECE of P(tier1 wrong) vs {weak} wrong: {:.4}",
            a.data.display(),
            r.metrics.n,
            r.skipped,
            r.rule_decided,
            r.ece_weak_wrong
        );
        eprintln!(
            "random router (mean of 20 seeds): {}",
            serde_json::to_string(&r.random)?
        );
        eprintln!(
            "prompt-length router (score = tokens): {}",
            serde_json::to_string(&r.length)?
        );
        println!("{}", serde_json::to_string(&r.metrics)?);
    } else if let Some(map) = map {
        let r =
            tierwise::offline::replay::tiers(&router, &pool, &rows, &map, threshold, a.threads)?;
        println!("{}", serde_json::to_string(&r)?);
    } else {
        let r = tierwise::offline::replay::kinds(&router, &pool, &rows, threshold, a.threads)?;
        println!("{}", serde_json::to_string(&r)?);
    }
    Ok(())
}

/// `tierwise validate-pool`: "ok" and the pool's summary, or what is wrong and exit 2.
fn validate_pool(file: &std::path::Path, classifier: Option<PathBuf>) -> anyhow::Result<()> {
    // Errors of either file name it; the task kinds' check names the pool.
    let checked = PoolConfig::load(file)
        .map_err(anyhow::Error::from)
        .and_then(|pool| {
            let c = tierwise::routing::classifier::TierClassifier::load_or_bundled(
                classifier.as_deref(),
            )?;
            c.with_kind_tiers(pool.task_kinds())
                .map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
            Ok(pool)
        });
    match checked {
        Ok(pool) => println!(
            "{}: ok ({} models, baseline {}, pricing {})",
            file.display(),
            pool.models().count(),
            pool.baseline().id,
            pool.pricing_version()
        ),
        Err(e) => {
            eprintln!("tierwise validate-pool: {e}");
            std::process::exit(2);
        }
    }
    Ok(())
}

/// `tierwise parity`: the embedder against reference vectors; exit 2 when it does not pass.
fn parity(reference: &std::path::Path, model: Option<&std::path::Path>) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(reference)
        .with_context(|| format!("reading {}", reference.display()))?;
    let refs = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(serde_json::from_str)
        .collect::<Result<Vec<tierwise::routing::embed::parity::Reference>, _>>()
        .with_context(|| format!("parsing {}", reference.display()))?;
    use tierwise::routing::embed::{Embedder, WordPiece, rten_engine::RtenEngine};
    let embedder = match model {
        None => Embedder::bundled().context("loading the embedder")?,
        Some(path) => Embedder::new(
            std::sync::Arc::new(WordPiece::bundled()?),
            Box::new(RtenEngine::from_file(path)?),
        ),
    };
    let report = tierwise::routing::embed::parity::check(&embedder, &refs)?;
    println!("{}", serde_json::to_string(&report)?);
    if !report.passes() {
        std::process::exit(2);
    }
    Ok(())
}

/// `tierwise report`: the report of an export or of the table's rollups, in the format asked.
fn report(a: ReportArgs) -> anyhow::Result<()> {
    let report = match &a.export {
        Some(dir) => {
            // The whole export by default: its first and last days, found by a first read.
            let (from, to) = match (a.from.clone(), a.to.clone()) {
                (Some(f), Some(t)) => (f, t),
                (f, t) => {
                    let (first, last) = export_days(dir)?;
                    (f.unwrap_or(first), t.unwrap_or(last))
                }
            };
            let params = tierwise::report::ReportParams::parse_any_range(
                Some(&from),
                Some(&to),
                a.tenant.as_deref(),
                a.group_by.as_deref(),
            )?;
            export_report(&params, dir)?
        }
        None => {
            let params = tierwise::report::ReportParams::parse(
                a.from.as_deref(),
                a.to.as_deref(),
                a.tenant.as_deref(),
                a.group_by.as_deref(),
            )?;
            table_report(&params, a.table)?
        }
    };
    let text = match a.format {
        Format::Json => serde_json::to_string_pretty(&report)?,
        Format::Table => tierwise::report::render_table(&report),
        Format::Html => tierwise::report::render_html(&report),
    };
    match a.out {
        Some(path) => {
            std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?
        }
        None => println!("{text}"),
    }
    Ok(())
}

/// The first and last days of the cost records of the export in `dir` (today's date for an
/// export without records).
fn export_days(dir: &std::path::Path) -> anyhow::Result<(String, String)> {
    let mut range: Option<(String, String)> = None;
    tierwise::report::export::read_export(dir, |rec| {
        let day = rec.day().to_string();
        range = Some(match range.take() {
            None => (day.clone(), day),
            Some((lo, hi)) => (lo.min(day.clone()), hi.max(day)),
        });
    })?;
    Ok(range.unwrap_or_else(|| {
        let today = tierwise::ledger::money::Timestamp::now().day().to_string();
        (today.clone(), today)
    }))
}

/// The report of the cost records of the export in `dir`.
fn export_report(
    params: &tierwise::report::ReportParams,
    dir: &std::path::Path,
) -> anyhow::Result<tierwise::report::Report> {
    let mut builder = tierwise::report::ReportBuilder::new(params);
    let bar = tierwise::offline::parallel::counter("cost records read");
    let summary = tierwise::report::export::read_export(dir, |rec| {
        builder.add(&tierwise::ledger::records::RollupRow::of_record(&rec));
        bar.inc(1);
    })?;
    bar.finish_and_clear();
    eprintln!(
        "export {}: {} files, {} items, {} cost records",
        summary.export_id, summary.files, summary.items, summary.cost_records
    );
    Ok(builder.finish())
}

/// The commands that talk to AWS (or moto): built with the `aws` feature.
#[cfg(feature = "aws")]
mod aws_cmd {
    use tierwise::aws::{self, dynamo::DynamoCostStore, setup, sqs::SqsQueue};
    use tierwise::serve::settings::{AwsCallSettings, RouterSettings};

    /// AWS call settings of the commands that read the table or set it up: longer than a
    /// Lambda's (`setup-local` is often the first call to a moto that has just started, whose
    /// first DynamoDB request takes seconds on a busy machine).
    pub const PATIENT: AwsCallSettings = AwsCallSettings {
        operation_timeout: std::time::Duration::from_secs(30),
        attempt_timeout: std::time::Duration::from_secs(10),
        max_attempts: 3,
    };

    pub fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
        Ok(tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?)
    }

    pub fn setup_local(table: &str, prefix: &str) -> anyhow::Result<()> {
        runtime()?.block_on(async {
            let sdk = aws::sdk_config(&PATIENT).await;
            let ddb = aws::dynamodb_client(&sdk);
            let sqs = aws::sqs_client(&sdk);
            let r = setup::create_router_resources(&ddb, &sqs, table, prefix).await?;
            println!("TIERWISE_TABLE={}", r.table);
            println!("TIERWISE_SHADOW_QUEUE_URL={}", r.shadow_queue_url);
            println!("TIERWISE_FALLBACK_QUEUE_URL={}", r.fallback_queue_url);
            Ok(())
        })
    }

    fn table_name(table: Option<String>) -> anyhow::Result<String> {
        use anyhow::Context;
        match table {
            Some(t) => Ok(t),
            None => std::env::var("TIERWISE_TABLE").context("give --table or set TIERWISE_TABLE"),
        }
    }

    pub fn keys(cmd: super::KeysCommand) -> anyhow::Result<()> {
        use super::KeysCommand;
        use tierwise::access::admin::{KeyRequest, create_key, key_lines};
        use tierwise::access::key::{Budget, KeyLimits};
        use tierwise::access::store::KeyStore;
        use tierwise::aws::keys::DynamoKeyStore;
        use tierwise::ledger::money::{Timestamp, Usd};
        let table = match &cmd {
            KeysCommand::Create { table, .. }
            | KeysCommand::List { table }
            | KeysCommand::Revoke { table, .. } => table_name(table.clone())?,
        };
        runtime()?.block_on(async {
            let sdk = aws::sdk_config(&PATIENT).await;
            let store = DynamoKeyStore::new(aws::dynamodb_client(&sdk), table);
            match cmd {
                KeysCommand::Create {
                    tenant,
                    budget_usd,
                    period,
                    rpm,
                    models,
                    tiers,
                    admin,
                    name,
                    ..
                } => {
                    let budget = match budget_usd {
                        Some(usd) => Some(Budget {
                            usd: Usd::from_f64(usd),
                            period: period.parse().map_err(anyhow::Error::msg)?,
                        }),
                        None => None,
                    };
                    let tiers = tiers
                        .map(|ts| ts.iter().map(|t| t.parse()).collect::<Result<Vec<_>, _>>())
                        .transpose()
                        .map_err(|e| anyhow::anyhow!("--tiers: {e}"))?;
                    let req = KeyRequest {
                        tenant,
                        admin,
                        name,
                        limits: KeyLimits {
                            budget,
                            rpm,
                            models,
                            tiers,
                        },
                    };
                    let (key, rec) = create_key(&store, &req, Timestamp::now()).await?;
                    eprintln!(
                        "created key {} for tenant {} (shown once: store it now)",
                        rec.key_id, rec.tenant
                    );
                    println!("{}", key.text);
                }
                KeysCommand::List { .. } => {
                    for line in key_lines(&store.list().await?) {
                        println!("{line}");
                    }
                }
                KeysCommand::Revoke { key_id, .. } => {
                    if !store.revoke(&key_id, &Timestamp::now()).await? {
                        anyhow::bail!("no key {key_id}");
                    }
                    println!("revoked {key_id}");
                }
            }
            Ok(())
        })
    }

    pub fn labels(
        from: &str,
        to: &str,
        tenant: Option<&str>,
        table: Option<String>,
        out: Option<std::path::PathBuf>,
    ) -> anyhow::Result<()> {
        use std::io::Write;
        let table = table_name(table)?;
        runtime()?.block_on(async {
            let sdk = aws::sdk_config(&PATIENT).await;
            let mut w: Box<dyn Write> = match &out {
                Some(p) => Box::new(std::io::BufWriter::new(std::fs::File::create(p)?)),
                None => Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
            };
            let summary = aws::evaluations::export_labels(
                &aws::dynamodb_client(&sdk),
                &table,
                from,
                to,
                tenant,
                &mut w,
            )
            .await?;
            w.flush()?;
            eprintln!("{}", serde_json::to_string(&summary)?);
            Ok(())
        })
    }

    pub fn redrive(max_messages: u64) -> anyhow::Result<()> {
        let settings = RouterSettings::from_env()?;
        runtime()?.block_on(async {
            let sdk = aws::sdk_config(&settings.aws).await;
            let ddb = aws::dynamodb_client(&sdk);
            let sqs = aws::sqs_client(&sdk);
            let store = DynamoCostStore::new(
                ddb,
                &settings.table,
                settings.rollup_shards,
                settings.record_ttl_days,
            );
            let fallback = SqsQueue::new(sqs.clone(), &settings.fallback_queue_url);
            let shadow = SqsQueue::new(sqs, &settings.shadow_queue_url);
            let report = aws::sqs::redrive(&fallback, &store, &shadow, max_messages).await?;
            println!(
                "{}",
                serde_json::json!({
                    "records_written": report.records_written,
                    "records_duplicate": report.records_duplicate,
                    "samples_sent": report.samples_sent,
                    "left": report.left,
                })
            );
            anyhow::ensure!(
                report.left == 0,
                "{} messages could not be delivered; they stay on the queue",
                report.left
            );
            Ok(())
        })
    }
}

/// The report of the table's rollups (`--table`, or TIERWISE_TABLE).
#[cfg(feature = "aws")]
fn table_report(
    params: &tierwise::report::ReportParams,
    table: Option<String>,
) -> anyhow::Result<tierwise::report::Report> {
    let table = match table {
        Some(t) => t,
        None => std::env::var("TIERWISE_TABLE")
            .context("give --table or set TIERWISE_TABLE (or use --export DIR)")?,
    };
    let rollups = aws_cmd::runtime()?.block_on(async {
        let sdk = tierwise::aws::sdk_config(&aws_cmd::PATIENT).await;
        let source = tierwise::aws::dynamo::DynamoRollups::new(
            tierwise::aws::dynamodb_client(&sdk),
            table,
            8,
        );
        tierwise::report::source::read_rollups(&source, params).await
    })?;
    Ok(rollups.report(params))
}

/// Without the `aws` feature only exports can be read.
#[cfg(not(feature = "aws"))]
fn table_report(
    _params: &tierwise::report::ReportParams,
    _table: Option<String>,
) -> anyhow::Result<tierwise::report::Report> {
    anyhow::bail!(
        "this tierwise was built without AWS support: use --export DIR, or build with `--features aws`"
    )
}

/// `tierwise train`'s arguments.
#[derive(clap::Args)]
struct TrainArgs {
    /// Outcome data (JSONL with per-model `scores`), one or more files.
    #[arg(long, num_args = 1..)]
    data: Vec<PathBuf>,
    /// Labelled asks (JSONL with `kind` and `tier`), one or more files.
    #[arg(long, num_args = 1..)]
    exemplars: Vec<PathBuf>,
    /// The pool whose tiers and prices place the data's models (default: bundled).
    #[arg(long)]
    pool: Option<PathBuf>,
    /// Prices of models outside the pool: JSON `{"model": usd_per_m_input | "tierN"}`.
    #[arg(long)]
    prices: Option<PathBuf>,
    /// The artifact whose parts are kept when not retrained (default: bundled).
    #[arg(long)]
    base: Option<PathBuf>,
    /// How far difficulty moves a kind's tier probabilities, in logits per standard
    /// deviation of difficulty on the asks.
    #[arg(long, default_value_t = tierwise::offline::train::DEFAULT_DIFFICULTY_WEIGHT)]
    difficulty_weight: f64,
    /// Weight of prompt length in the outcome score (the `eval` ranking), relative to
    /// difficulty, per standard deviation.
    #[arg(long, default_value_t = tierwise::offline::train::DEFAULT_LENGTH_WEIGHT)]
    length_weight: f64,
    /// Output folder.
    #[arg(long)]
    out: PathBuf,
    /// Worker threads.
    #[arg(long, default_value_t = 2)]
    threads: usize,
}

fn train(a: TrainArgs) -> anyhow::Result<()> {
    let pool = load_pool(a.pool.as_deref())?;
    let prices = match &a.prices {
        Some(p) => serde_json::from_str(
            &std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?,
        )
        .with_context(|| {
            format!(
                "{}: expected {{\"model\": usd_per_m | \"tierN\"}}",
                p.display()
            )
        })?,
        None => Default::default(),
    };
    let base_text = match &a.base {
        Some(p) => {
            std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?
        }
        None => tierwise::routing::classifier::BUNDLED_CLASSIFIER.to_string(),
    };
    let base: tierwise::routing::classifier::Artifact =
        serde_json::from_str(&base_text).context("parsing the base classifier")?;
    let read =
        |files: &[PathBuf]| -> anyhow::Result<Vec<(String, Vec<tierwise::offline::dataset::BenchmarkRow>)>> {
            files
                .iter()
                .map(|f| Ok((f.display().to_string(), tierwise::offline::dataset::read_jsonl(f)?)))
                .collect()
        };
    let data = read(&a.data)?;
    let exemplars = read(&a.exemplars)?;
    let embedder = tierwise::routing::embed::Embedder::bundled().context("loading the embedder")?;
    let (artifact, report) = tierwise::offline::train::train(
        &embedder,
        &data,
        &exemplars,
        &tierwise::offline::train::TrainOptions {
            pool: &pool,
            prices,
            base,
            difficulty_weight: a.difficulty_weight,
            length_weight: a.length_weight,
            threads: a.threads,
        },
    )?;
    std::fs::create_dir_all(&a.out).with_context(|| format!("creating {}", a.out.display()))?;
    let path = a.out.join("classifier.json");
    std::fs::write(&path, serde_json::to_string(&artifact)?)
        .with_context(|| format!("writing {}", path.display()))?;
    // The artifact's provenance (this run's report, and the base's when kept) beside it.
    std::fs::write(
        a.out.join("training.json"),
        serde_json::to_string_pretty(&artifact.training)? + "\n",
    )?;
    eprintln!("{}", serde_json::to_string(&report)?);
    println!("{}", path.display());
    Ok(())
}

fn load_pool(path: Option<&std::path::Path>) -> anyhow::Result<PoolConfig> {
    Ok(match path {
        Some(p) => PoolConfig::load(p)?,
        None => PoolConfig::bundled()?,
    })
}

fn write_scores(path: &std::path::Path, scores: &[(String, f64)]) -> anyhow::Result<()> {
    use std::io::Write;
    let mut w = std::io::BufWriter::new(
        std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?,
    );
    for (id, score) in scores {
        writeln!(w, "{}", serde_json::json!({"id": id, "score": score}))?;
    }
    w.flush()?;
    Ok(())
}

fn write_features(
    data: &std::path::Path,
    out: &std::path::Path,
    threads: usize,
) -> anyhow::Result<()> {
    use std::io::Write;
    let rows = tierwise::offline::dataset::read_jsonl(data)?;
    let embedder = tierwise::routing::embed::Embedder::bundled().context("loading the embedder")?;
    let refs: Vec<&tierwise::offline::dataset::BenchmarkRow> = rows.iter().collect();
    let vectors = tierwise::offline::dataset::featurize_rows(&embedder, &refs, threads)?;
    let mut w = std::io::BufWriter::new(
        std::fs::File::create(out).with_context(|| format!("creating {}", out.display()))?,
    );
    for (r, f) in rows.iter().zip(&vectors) {
        writeln!(w, "{}", serde_json::json!({"id": r.id, "features": f}))?;
    }
    w.flush()?;
    eprintln!("{} feature vectors -> {}", rows.len(), out.display());
    Ok(())
}
