//! The configs shipped for the dev stack, compose and Kubernetes load as they are.

use std::path::Path;

use pipeline_herder::HerderSettings;

#[test]
fn every_shipped_config_is_valid() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let env = |name: &str| (name == "GITLAB_TOKEN").then(|| "glpat-example".to_owned());
    for file in [
        "config/dev.yaml",
        "config/compose.yaml",
        "../../k8s/base/pipeline-herder/config.yaml",
    ] {
        let settings =
            HerderSettings::load(&root.join(file), &env).unwrap_or_else(|e| panic!("{file}: {e}"));
        assert!(
            !settings.instances.is_empty(),
            "{file} names a GitLab instance"
        );
        assert_eq!(
            settings.matchers_source, "the shipped default matchers",
            "{file}"
        );
    }
}
