fn main() -> std::process::ExitCode {
    phanes::cli::main()
}
