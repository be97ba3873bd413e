use clap::Parser;

fn main() {
    let cli = segprep::cli::Cli::parse();
    let code = match segprep::cli::run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            e.exit_code()
        }
    };
    std::process::exit(code);
}
