//! `steadfast-recipe`: lets shell recipes report results and read their alert data. See
//! `steadfast-recipe --help` and the `recipe_cli` module.

fn main() -> std::process::ExitCode {
    alert_reconciler::recipe_cli::main()
}
