//! The command line: the same executable Grafana runs, started by a person.
//!
//! `check` and `query` talk to Akamai with an `.edgerc` section (or the built-in simulator with
//! `--simulate`), `simulate` serves the simulator, `history` imports and exports history, and
//! `migrate-exporter` turns the old exporter's settings into provisioning YAML.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use crate::estats::Client;
use crate::frame::Frame;
use crate::handlers::{distribution, summary};
use crate::query::{Query, QueryContext};
use crate::sample::Sample;
use crate::settings::Settings;
use crate::simulator::{Simulator, SimulatorConfig};
use crate::target::{Delivery, Subject, Target};

#[derive(Parser)]
#[command(
    name = "gpx_akamai_estats",
    version,
    about = "Akamai eStats for Grafana: the plugin executable and its command line"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Check credentials, API access and clock, as the data source health check does.
    Check(Connection),
    /// Ask eStats for one target's status-code distribution now.
    Query(QueryArgs),
    /// Run the eStats simulator (a signature-verifying stand-in for Akamai).
    Simulate {
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:8787")]
        listen: std::net::SocketAddr,
        /// Accepted calls per minute before it answers 429.
        #[arg(long, default_value_t = 40)]
        rate_limit: u32,
    },
    /// Import or export history (JSON lines).
    #[command(subcommand)]
    History(HistoryCommand),
    /// Print provisioning YAML equivalent to the old exporter's settings file.
    MigrateExporter {
        /// The exporter's INI settings file.
        file: PathBuf,
        /// uid of the data source to provision.
        #[arg(long, default_value = "akamai-estats")]
        uid: String,
    },
}

#[derive(Subcommand)]
enum HistoryCommand {
    /// Load samples from JSON lines ({"sampledAt", "target", "response"}); idempotent.
    Import {
        #[arg(long)]
        db: PathBuf,
        /// uid of the data source the samples belong to.
        #[arg(long)]
        datasource: String,
        /// JSON lines file ("-" for standard input).
        file: PathBuf,
    },
    /// Write a data source's samples as JSON lines.
    Export {
        #[arg(long)]
        db: PathBuf,
        #[arg(long)]
        datasource: String,
        /// Output file (standard output when absent).
        file: Option<PathBuf>,
    },
    /// Copy a data source's SQLite history into PostgreSQL (jsonData.historyDatabase);
    /// idempotent: samples already there are skipped. The password comes from PGPASSWORD.
    Copy {
        /// The SQLite history file (jsonData.historyPath).
        #[arg(long)]
        from: PathBuf,
        /// postgres://user@host:port/dbname?sslmode=... (no password in it).
        #[arg(long)]
        to: String,
        /// The schema (jsonData.historyDatabaseSchema).
        #[arg(long, default_value = crate::settings::DEFAULT_HISTORY_SCHEMA)]
        schema: String,
        /// uid of the data source the samples belong to.
        #[arg(long)]
        datasource: String,
    },
}

#[derive(Args, Clone)]
struct Connection {
    /// Use the built-in simulator instead of Akamai (no account needed).
    #[arg(long)]
    simulate: bool,
    /// The .edgerc file with the API client's credentials.
    #[arg(long, default_value = "~/.edgerc")]
    edgerc: String,
    /// Section of the .edgerc file.
    #[arg(long, default_value = "default")]
    section: String,
    /// Account switch key (for multi-account API clients).
    #[arg(long)]
    account_switch_key: Option<String>,
}

#[derive(Args)]
struct QueryArgs {
    #[command(flatten)]
    connection: Connection,
    /// CP code to ask about.
    #[arg(long, conflicts_with = "url", required_unless_present = "url")]
    cpcode: Option<String>,
    /// Absolute URL to ask about.
    #[arg(long)]
    url: Option<String>,
    /// Delivery network: STANDARD_TLS or ENHANCED_TLS.
    #[arg(long)]
    delivery: Option<String>,
    /// Group by code or class.
    #[arg(long, default_value = "code")]
    group_by: String,
    /// Print the frames as JSON instead of a table.
    #[arg(long)]
    json: bool,
}

pub fn run() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(execute(cli.command)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

fn expand_home(path: &str) -> PathBuf {
    match path.strip_prefix("~/") {
        Some(rest) => std::env::var_os("HOME")
            .map(PathBuf::from)
            .unwrap_or_default()
            .join(rest),
        None => PathBuf::from(path),
    }
}

/// A client for the connection flags, with the simulator it talks to when `--simulate`.
async fn connect(conn: &Connection) -> Result<(Client, Option<Simulator>), String> {
    let mut settings = if conn.simulate {
        Settings::simulator()
    } else {
        Settings::from_edgerc(
            &expand_home(&conn.edgerc),
            &conn.section,
            &crate::edgerc::process_env,
        )
        .map_err(|e| e.to_string())?
    };
    if let Some(key) = &conn.account_switch_key {
        settings.account_switch_key = Some(key.clone());
    }
    crate::plugin::instance::connect(&settings)
        .await
        .map_err(|e| e.message)
}

async fn execute(command: Command) -> Result<(), String> {
    match command {
        Command::Check(conn) => {
            let (client, _sim) = connect(&conn).await?;
            match client.edge_locations().await {
                Ok((locations, rate)) => {
                    println!(
                        "OK: connected to {}: credentials, Edge Diagnostics access and clock are fine ({} edge locations; rate limit {} per minute, {} left)",
                        client.host(),
                        locations.edge_locations.len(),
                        rate.limit.map_or("?".into(), |l| l.to_string()),
                        rate.remaining.map_or("?".into(), |l| l.to_string()),
                    );
                    Ok(())
                }
                Err(e) => Err(format!(
                    "health check against {} failed: {e}",
                    client.host()
                )),
            }
        }
        Command::Query(args) => {
            let (client, _sim) = connect(&args.connection).await?;
            let delivery = Delivery::parse_optional(args.delivery.as_deref().unwrap_or(""))
                .map_err(|e| format!("--delivery: {e}"))?;
            let subject = match (&args.cpcode, &args.url) {
                (Some(cp), _) => Subject::CpCode(
                    Target::parse_cp_code(cp).map_err(|e| format!("--cpcode: {e}"))?,
                ),
                (None, Some(url)) => {
                    Subject::Url(Target::parse_url(url).map_err(|e| format!("--url: {e}"))?)
                }
                (None, None) => return Err("give --cpcode or --url".into()),
            };
            let target = Target { subject, delivery };
            let fetched = client.estats(&target).await.map_err(|e| e.to_string())?;
            let sample = Sample::from_response(fetched.received_at, &fetched.response);
            let spec = serde_json::to_vec(&serde_json::json!({
                "cpCode": args.cpcode, "url": args.url, "delivery": args.delivery, "groupBy": args.group_by,
                "targetType": if args.cpcode.is_some() { "cpCode" } else { "url" },
            }))
            .map_err(|e| e.to_string())?;
            let now = chrono::Utc::now().timestamp_millis();
            let ctx = QueryContext {
                from_ms: now,
                to_ms: now,
                interval_ms: 0,
                max_data_points: 0,
            };
            let query =
                Query::parse("A", &spec, "distribution", ctx, None).map_err(|e| e.to_string())?;
            let frames = [
                distribution::frame(&query, &sample, None),
                summary::frame(&query, &sample, None),
            ];
            if args.json {
                let json: Vec<_> = frames.iter().map(Frame::to_json).collect();
                println!(
                    "{}",
                    serde_json::to_string_pretty(&json).map_err(|e| e.to_string())?
                );
            } else {
                print!("{}", render_table(&target, &sample, &query));
            }
            Ok(())
        }
        Command::Simulate { listen, rate_limit } => {
            let config = SimulatorConfig {
                rate_limit_per_minute: rate_limit,
                ..SimulatorConfig::default()
            };
            let sim = Simulator::start(listen, config)
                .await
                .map_err(|e| format!("cannot listen on {listen}: {e}"))?;
            println!("eStats simulator listening on {}", sim.base_url());
            println!("Point a data source at host {} with the simulator's demo credentials (see README), or use simulate: true.", sim.base_url());
            let _ = tokio::signal::ctrl_c().await;
            sim.shutdown().await;
            Ok(())
        }
        Command::History(HistoryCommand::Import {
            db,
            datasource,
            file,
        }) => {
            let history = crate::history::History::open(Some(&db)).map_err(|e| e.to_string())?;
            let report = if file.as_os_str() == "-" {
                history.import_jsonl(&datasource, std::io::stdin().lock())
            } else {
                let f = std::fs::File::open(&file)
                    .map_err(|e| format!("cannot read {}: {e}", file.display()))?;
                history.import_jsonl(&datasource, std::io::BufReader::new(f))
            }
            .map_err(|e| e.to_string())?;
            println!(
                "imported {} lines into {}: {} new samples, {} already stored, {} failed polls, {} targets",
                report.lines,
                db.display(),
                report.inserted,
                report.duplicates,
                report.failures,
                report.targets
            );
            Ok(())
        }
        Command::History(HistoryCommand::Export {
            db,
            datasource,
            file,
        }) => {
            let history = crate::history::History::open(Some(&db)).map_err(|e| e.to_string())?;
            let written = match file {
                Some(path) => {
                    let f = std::fs::File::create(&path)
                        .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
                    history.export_jsonl(&datasource, std::io::BufWriter::new(f))
                }
                None => history.export_jsonl(&datasource, std::io::stdout().lock()),
            }
            .map_err(|e| e.to_string())?;
            eprintln!("exported {written} samples");
            Ok(())
        }
        Command::History(HistoryCommand::Copy {
            from,
            to,
            schema,
            datasource,
        }) => {
            let password = std::env::var("PGPASSWORD")
                .ok()
                .filter(|p| !p.is_empty())
                .map(crate::edgegrid::Secret::new);
            let db = crate::settings::history_database(&to, "--to", password, &schema)
                .map_err(|e| e.to_string())?;
            let store = crate::store::PgStore::new(&db).map_err(|e| e.message)?;
            let report = crate::store::copy_sqlite(&from, &datasource, &store).await?;
            println!(
                "copied {} rows of {datasource} from {} into PostgreSQL {} schema {}: {} new, {} already there",
                report.rows,
                from.display(),
                db.describe(),
                db.schema,
                report.inserted,
                report.rows - report.inserted
            );
            Ok(())
        }
        Command::MigrateExporter { file, uid } => {
            let text = std::fs::read_to_string(&file)
                .map_err(|e| format!("cannot read {}: {e}", file.display()))?;
            let settings = crate::migrate::parse_exporter_settings(&text)
                .map_err(|e| format!("{}: {e}", file.display()))?;
            print!("{}", crate::migrate::to_provisioning_yaml(&settings, &uid));
            Ok(())
        }
    }
}

/// The distribution as an aligned text table, one row per side and status.
fn render_table(target: &Target, sample: &Sample, query: &Query) -> String {
    let mut out = format!("{} at {}\n", target.label(), sample.sampled_at.to_rfc3339());
    out.push_str(&format!(
        "{:<7} {:>6} {:>12} {:>9}\n",
        "side", "status", "hits", "percent"
    ));
    for (side, status, hits, pct) in distribution::rows(query, sample) {
        out.push_str(&format!("{side:<7} {status:>6} {hits:>12} {pct:>8.2}%\n"));
    }
    for side in crate::sample::Side::BOTH {
        let s = sample.side(side);
        out.push_str(&format!(
            "{} total: {} hits, {} errors, {} failure\n",
            side.as_str(),
            s.hits.map_or("-".into(), |h| h.to_string()),
            s.errors.map_or("-".into(), |h| h.to_string()),
            s.failure_percentage
                .map_or("-".into(), |p| format!("{p:.2}%")),
        ));
    }
    out
}
