//! Test-only stand-in for the `rkube` binary's shim entry points: `shim exec ...` runs
//! `runtime::exec::main`, `shim <container dir>` runs `runtime::shim::main` (what `rkube` does
//! too). The runtime's integration tests start it through `CARGO_BIN_EXE_rkube-runtime-shim`.

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let code = match args.as_slice() {
        [shim, exec, rest @ ..] if shim == "shim" && exec == "exec" => runtime::exec::main(rest),
        [shim, rest @ ..] if shim == "shim" => runtime::shim::main(rest),
        _ => {
            eprintln!(
                "usage: rkube-runtime-shim shim <container dir> | shim exec <container id> ..."
            );
            2
        }
    };
    std::process::exit(code);
}
