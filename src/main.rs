fn main() -> std::process::ExitCode {
    // Fault-injection tests set failpoints through FAILPOINTS.
    #[cfg(feature = "failpoints")]
    let _failpoints = fail::FailScenario::setup();
    seed::app::main()
}
