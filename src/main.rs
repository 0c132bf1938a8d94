fn main() -> std::process::ExitCode {
    seed::app::main()
}
