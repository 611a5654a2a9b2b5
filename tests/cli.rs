//! The command line, run as a person would: against the simulator, with .edgerc files, with
//! the old exporter's settings, and moving history in and out.

use std::io::Write;
use std::process::{Command, Output};

fn cli(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_gpx_akamai_estats"))
        .args(args)
        .env_remove("grafana_plugin_type")
        .env("HOME", std::env::temp_dir())
        .output()
        .expect("the executable runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn query_with_simulate_prints_a_distribution_table() {
    let out = cli(&[
        "query",
        "--simulate",
        "--cpcode",
        "1209788",
        "--delivery",
        "STANDARD_TLS",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("cpCode 1209788 (STANDARD_TLS)"), "{stdout}");
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with("edge") && l.contains(" 200 ")),
        "{stdout}"
    );
    assert!(stdout.contains("origin total:"), "{stdout}");

    let out = cli(&[
        "query",
        "--simulate",
        "--url",
        "https://www.example.com/",
        "--group-by",
        "class",
        "--json",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let frames: serde_json::Value =
        serde_json::from_slice(&out.stdout).expect("--json prints JSON");
    assert_eq!(frames[0]["meta"]["type"], "numeric-long");
}

#[test]
fn bad_cli_input_is_named() {
    let out = cli(&["query", "--simulate", "--cpcode", "12ab"]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("--cpcode"),
        "{}",
        text(&out.stderr)
    );
    let out = cli(&["query", "--simulate", "--url", "www.example.com"]);
    assert!(text(&out.stderr).contains("--url"), "{}", text(&out.stderr));
}

#[test]
fn check_reports_edgerc_typos_and_missing_files() {
    let dir = tempfile::tempdir().unwrap();
    let edgerc = dir.path().join("edgerc");
    std::fs::write(
        &edgerc,
        "[default]\nhost = akab-x.luna.akamaiapis.net\nclient_tokn = akab-ct-VERYSECRET\nclient_secret = c2VjcmV0VkVSWVNFQ1JFVA==\naccess_token = akab-at-VERYSECRET\n",
    )
    .unwrap();
    let out = cli(&["check", "--edgerc", edgerc.to_str().unwrap()]);
    assert!(!out.status.success());
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("did you mean") && stderr.contains("client_token"),
        "{stderr}"
    );
    assert!(!stderr.contains("VERYSECRET"), "{stderr}");

    let out = cli(&[
        "check",
        "--edgerc",
        dir.path().join("absent").to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("absent"),
        "{}",
        text(&out.stderr)
    );
}

#[tokio::test]
async fn check_against_a_loopback_simulator_through_an_edgerc() {
    let sim = estats::simulator::Simulator::start(([127, 0, 0, 1], 0).into(), Default::default())
        .await
        .unwrap();
    let creds = estats::simulator::demo_credentials();
    let dir = tempfile::tempdir().unwrap();
    let edgerc = dir.path().join(".edgerc");
    let mut f = std::fs::File::create(&edgerc).unwrap();
    writeln!(
        f,
        "; demo\n[sim]\nhost = {}\nClient_Token = {}\nclient_secret = {}\naccess-token = {}",
        sim.base_url().as_str().trim_end_matches('/'),
        creds.client_token.expose(),
        creds.client_secret.expose(),
        creds.access_token.expose()
    )
    .unwrap();
    let path = edgerc.to_str().unwrap().to_string();
    let out =
        tokio::task::spawn_blocking(move || cli(&["check", "--edgerc", &path, "--section", "sim"]))
            .await
            .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.starts_with("OK: connected"), "{stdout}");
    assert!(!stdout.contains(creds.client_secret.expose()));
}

#[test]
fn migrate_exporter_prints_provisioning_yaml() {
    let sample = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/exportersettings.sample"
    );
    let out = cli(&["migrate-exporter", sample]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let yaml: serde_yaml::Value = serde_yaml::from_slice(&out.stdout).expect("YAML");
    let ds = &yaml["datasources"][0];
    assert_eq!(ds["type"], "akamai-estats-datasource");
    assert_eq!(ds["jsonData"]["watch"][0]["cpCode"], 1209788);
    assert_eq!(ds["jsonData"]["edgercPath"], "/home/ops/.edgerc");
    assert_eq!(ds["jsonData"]["pollIntervalSeconds"], 120);
}

#[test]
fn history_import_is_idempotent_and_exports_back() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("h.db");
    let lines = dir.path().join("in.jsonl");
    let response: serde_json::Value =
        serde_json::from_str(include_str!("fixtures/estats.json")).unwrap();
    let mut f = std::fs::File::create(&lines).unwrap();
    for minute in 0..10 {
        let line = serde_json::json!({
            "sampledAt": format!("2026-11-01T00:{minute:02}:00Z"),
            "target": {"cpCode": 1234567, "delivery": "ENHANCED_TLS"},
            "response": response,
        });
        writeln!(f, "{line}").unwrap();
    }
    drop(f);
    let (db_s, lines_s) = (db.to_str().unwrap(), lines.to_str().unwrap());
    let first = cli(&[
        "history",
        "import",
        "--db",
        db_s,
        "--datasource",
        "ds1",
        lines_s,
    ]);
    assert!(first.status.success(), "{}", text(&first.stderr));
    assert!(
        text(&first.stdout).contains("10 new samples"),
        "{}",
        text(&first.stdout)
    );
    let again = cli(&[
        "history",
        "import",
        "--db",
        db_s,
        "--datasource",
        "ds1",
        lines_s,
    ]);
    assert!(
        text(&again.stdout).contains("0 new samples"),
        "{}",
        text(&again.stdout)
    );

    let out = dir.path().join("out.jsonl");
    let export = cli(&[
        "history",
        "export",
        "--db",
        db_s,
        "--datasource",
        "ds1",
        out.to_str().unwrap(),
    ]);
    assert!(export.status.success(), "{}", text(&export.stderr));
    let exported = std::fs::read_to_string(&out).unwrap();
    assert_eq!(exported.lines().count(), 10);
    let first_line: serde_json::Value =
        serde_json::from_str(exported.lines().next().unwrap()).unwrap();
    assert_eq!(first_line["target"]["cpCode"], 1234567);

    // Other data sources' rows are apart.
    let none = cli(&["history", "export", "--db", db_s, "--datasource", "ds2"]);
    assert!(none.status.success());
    assert!(none.stdout.is_empty());

    let bad = dir.path().join("bad.jsonl");
    std::fs::write(&bad, "{\"sampledAt\": \"yesterday\"}\n").unwrap();
    let out = cli(&[
        "history",
        "import",
        "--db",
        db_s,
        "--datasource",
        "ds1",
        bad.to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("line 1"),
        "{}",
        text(&out.stderr)
    );
}
