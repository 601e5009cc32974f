fn main() -> std::process::ExitCode {
    heldar::cli::run()
}
