//! CallResource paths, query strings and methods against a simulator data source: never a
//! panic, always a JSON body, errors short.
#![no_main]

use std::sync::{Arc, OnceLock};

use estats::plugin::instance::{Instance, Instances};
use grafana_plugin_sdk::pluginv2::{
    CallResourceRequest, DataSourceInstanceSettings, PluginContext,
};
use libfuzzer_sys::fuzz_target;

fn instance() -> &'static (tokio::runtime::Runtime, Arc<Instance>) {
    static INSTANCE: OnceLock<(tokio::runtime::Runtime, Arc<Instance>)> = OnceLock::new();
    INSTANCE.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let ctx = PluginContext {
            data_source_instance_settings: Some(DataSourceInstanceSettings {
                uid: "fuzz".into(),
                json_data: br#"{"simulate": true}"#.to_vec(),
                ..Default::default()
            }),
            ..Default::default()
        };
        let instance = runtime
            .block_on(Instances::default().get(Some(&ctx)))
            .expect("a simulator instance builds");
        (runtime, instance)
    })
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    // "METHOD\nURL": the path is the URL before its query string, as Grafana sends it.
    let (method, url) = text.split_once('\n').unwrap_or(("GET", &text));
    let request = CallResourceRequest {
        path: url.split('?').next().unwrap_or_default().to_string(),
        method: method.to_string(),
        url: url.to_string(),
        ..Default::default()
    };
    let (runtime, instance) = instance();
    let response = runtime.block_on(estats::plugin::resource::handle(instance, &request));
    if response.code != 200 {
        let body = String::from_utf8_lossy(&response.body);
        assert!(body.chars().count() <= 1000, "{body}");
    }
});
