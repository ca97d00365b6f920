//! `deploy/k8s` against what the binary accepts: the ConfigMap's settings load as the binary
//! loads them (unknown keys refused), every container port is the port they listen on, every
//! probe path is a route, every environment variable is one the binary or `object_store` reads
//! (a `MIXREC__*` name must be a settings key), every `--role` is a role, and the grace period
//! outlasts the shutdown delay plus the drain. The schemas themselves are checked in CI by
//! `scripts/k8s-validate.sh` (kubernetes-validate, Kubernetes 1.31).

use std::path::Path;
use std::str::FromStr;

use clap::ValueEnum;
use figment::Figment;
use figment::providers::{Format as _, Toml};
use mixrec::config::{ADMIN_TOKEN_ENV, DEFAULT_TOML, Role, ServeArgs, Settings};
use object_store::aws::AmazonS3ConfigKey;
use serde_norway::Value;

fn docs(file: &str) -> Vec<Value> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("deploy/k8s")
        .join(file);
    let text = std::fs::read_to_string(&path).unwrap();
    serde_norway::Deserializer::from_str(&text)
        .map(|d| serde::Deserialize::deserialize(d).unwrap())
        .collect()
}

/// Every resource the kustomization lists.
fn resources() -> Vec<Value> {
    let k = &docs("kustomization.yaml")[0];
    let files = k["resources"].as_sequence().unwrap();
    files
        .iter()
        .flat_map(|f| docs(f.as_str().unwrap()))
        .collect()
}

fn settings_of_the_configmap(all: &[Value]) -> Settings {
    let cm = all.iter().find(|d| d["kind"] == "ConfigMap").unwrap();
    let toml = cm["data"]["mixrec.toml"].as_str().unwrap();
    let f = Figment::from(Toml::string(DEFAULT_TOML)).merge(Toml::string(toml));
    Settings::from_figment(f, &ServeArgs::default()).expect("the ConfigMap's settings load")
}

#[test]
fn the_manifests_match_the_settings_the_binary_accepts() {
    let all = resources();
    let settings = settings_of_the_configmap(&all);
    let port = settings.server.listen.port();
    let routes: Vec<&str> = mixrec::http::ROUTES.iter().map(|r| r.1).collect();
    let deployments: Vec<&Value> = all.iter().filter(|d| d["kind"] == "Deployment").collect();
    assert_eq!(deployments.len(), 2);
    let mut roles = Vec::new();
    for d in deployments {
        let pod = &d["spec"]["template"]["spec"];
        let grace = pod["terminationGracePeriodSeconds"].as_u64().unwrap();
        let s = &settings.server;
        let needed = (s.shutdown_delay_ms + s.drain_timeout_ms).div_ceil(1000);
        assert!(
            grace > needed,
            "grace {grace} s, shutdown + drain {needed} s"
        );
        for c in pod["containers"].as_sequence().unwrap() {
            let ports = c["ports"].as_sequence().unwrap();
            assert_eq!(ports.len(), 1);
            assert_eq!(ports[0]["containerPort"].as_u64(), Some(port.into()));
            let named = ports[0]["name"].as_str().unwrap();
            for probe in ["livenessProbe", "readinessProbe", "startupProbe"] {
                let get = &c[probe]["httpGet"];
                if get.is_null() {
                    continue;
                }
                let path = get["path"].as_str().unwrap();
                assert!(routes.contains(&path), "{probe} {path} is not a route");
                assert!(get["port"] == named || get["port"].as_u64() == Some(port.into()));
            }
            assert_eq!(c["readinessProbe"]["httpGet"]["path"], "/readyz");
            assert_eq!(c["livenessProbe"]["httpGet"]["path"], "/healthz");
            let args: Vec<&str> = c["args"]
                .as_sequence()
                .unwrap()
                .iter()
                .map(|a| a.as_str().unwrap())
                .collect();
            assert_eq!(args[0], "serve");
            let at = args.iter().position(|a| *a == "--role").unwrap();
            roles.push(Role::from_str(args[at + 1], false).unwrap());
            let config = args[args.iter().position(|a| *a == "--config").unwrap() + 1];
            assert_eq!(config, "/etc/mixrec/mixrec.toml");
            for e in c["env"].as_sequence().unwrap() {
                check_env(e["name"].as_str().unwrap());
            }
            assert_eq!(c["securityContext"]["readOnlyRootFilesystem"], true);
            assert!(c["resources"]["limits"]["memory"].is_string());
        }
    }
    roles.sort_by_key(|r| r.name());
    assert_eq!(roles, [Role::Replica, Role::Trainer]);
    let hpa = all.iter().find(|d| d["kind"] == "HorizontalPodAutoscaler");
    assert_eq!(hpa.unwrap()["spec"]["scaleTargetRef"]["name"], "mixrec");
}

/// `name` is read by the binary: a settings key, the admin token, the log filter, or a
/// variable `object_store` takes from the environment.
fn check_env(name: &str) {
    if let Some(key) = name.strip_prefix("MIXREC__") {
        let key = key.to_ascii_lowercase().replace("__", ".");
        // A value of the right type for the keys the manifests set.
        let f = Figment::from(Toml::string(DEFAULT_TOML)).merge((key.as_str(), 2));
        Settings::from_figment(f, &ServeArgs::default()).unwrap_or_else(|e| panic!("{name}: {e}"));
        return;
    }
    if name == ADMIN_TOKEN_ENV || name == "RUST_LOG" {
        return;
    }
    let aws = name.strip_prefix("AWS_").map(str::to_ascii_lowercase);
    let known =
        aws.is_some_and(|_| AmazonS3ConfigKey::from_str(&name.to_ascii_lowercase()).is_ok());
    assert!(known, "{name} is read by nothing");
}

#[test]
fn an_unknown_variable_or_key_is_caught() {
    let result = std::panic::catch_unwind(|| check_env("MIXREC__MODELS__POLL_INTERVAL"));
    assert!(result.is_err());
    let result = std::panic::catch_unwind(|| check_env("AWS_ENDPIONT"));
    assert!(result.is_err());
    check_env("MIXREC__MODELS__POLL_INTERVAL_MS");
    check_env("AWS_ENDPOINT_URL");
}
