//! The README's redis-cli session works as written: every `$ ` line of its
//! console blocks runs against a fresh server without an error reply.

mod common;

use std::process::Command;

use common::*;

fn session_lines() -> Vec<String> {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let mut lines = Vec::new();
    let mut in_console = false;
    for line in readme.lines() {
        if line.starts_with("```") {
            in_console = line == "```console";
            continue;
        }
        if in_console {
            if let Some(cmd) = line.strip_prefix("$ ") {
                // Drop a trailing `# comment`.
                let cmd = cmd.find(" #").map_or(cmd, |i| &cmd[..i]);
                lines.push(cmd.trim_end().to_string());
            }
        }
    }
    lines
}

#[test]
fn readme_session_runs() {
    let s = Server::redis();
    let lines = session_lines();
    assert!(lines.len() >= 7, "README session not found: {lines:?}");
    // One shell, so that variables like $SV carry over; redis-cli talks to our port.
    let mut script = format!(
        "set -e\nredis_cli() {{ command redis-cli -p {} \"$@\"; }}\n",
        s.port
    );
    for line in &lines {
        let line = line.replacen("redis-cli", "redis_cli", usize::MAX);
        // The blocking call waits for a write: let a background write end it.
        if line.contains("BLOCK 0") {
            script.push_str(
                "(sleep 0.3; redis_cli DB.PUT '{pomerium_v3}' session s3 again >/dev/null) &\n",
            );
        }
        if line
            .split('=')
            .next()
            .is_some_and(|v| !v.is_empty() && v.chars().all(|c| c.is_ascii_uppercase() || c == '_'))
        {
            script.push_str(&line); // a variable assignment
            script.push('\n');
            continue;
        }
        script.push_str(&format!("out=$({line})\necho \"$out\"\ncase \"$out\" in ERR*|WRONGTYPE*|*SERVERVERSION*|*CONFLICT*) echo \"FAILED: {}\" >&2; exit 1;; esac\n", line.replace('"', "\\\"").replace('$', "\\$")));
    }
    let out = Command::new("bash")
        .arg("-c")
        .arg(&script)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}\n{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("s3"),
        "the blocked DB.SYNC returned the new record: {stdout}"
    );
}
