//! A container whose command cannot run, in runc's words: the same words
//! reach a backend from dockerd, containerd and a swarm's task error, and
//! mean the caller's input is wrong. An executable the image does not have
//! is not found (as an image it does not have is); one it cannot execute is
//! invalid.

use crate::backend::gantry::plugin::types::{Error, FieldError, InvalidInput};

/// The typed error for `container` when the runtime's `message` says its
/// command cannot run; `None` for any other failure.
pub fn cannot_run(container: &str, message: &str) -> Option<Error> {
    let m = message.to_ascii_lowercase();
    let described = format!("container `{container}`: its command cannot run: {message}");
    // runc's words for an exec that failed: `exec: "x": executable file not
    // found in $PATH`, or `exec: "/x": stat /x: no such file or directory`
    // (a missing mount source says "no such file" too, without `exec:`).
    let exec = m.contains("exec:") || m.contains("executable file not found");
    if exec && (m.contains("not found") || m.contains("no such file or directory")) {
        return Some(Error::NotFound(described));
    }
    (exec && m.contains("permission denied")).then(|| {
        Error::Invalid(InvalidInput {
            message: described,
            fields: vec![FieldError {
                field: "command".into(),
                message: message.to_string(),
            }],
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runc_words_for_a_command_that_cannot_run_are_the_callers_input() {
        let missing = r#"OCI runtime create failed: exec: "/bin/nope": stat /bin/nope: no such file or directory: unknown"#;
        assert!(
            matches!(cannot_run("main", missing), Some(Error::NotFound(m)) if m.contains("/bin/nope"))
        );
        let path = r#"exec: "nope": executable file not found in $PATH"#;
        assert!(matches!(cannot_run("main", path), Some(Error::NotFound(_))));
        let denied = r#"exec: "/etc/passwd": permission denied"#;
        assert!(
            matches!(cannot_run("main", denied), Some(Error::Invalid(i)) if i.fields[0].field == "command")
        );
        let mount = "error mounting \"/nope\": stat /nope: no such file or directory";
        assert!(
            cannot_run("main", mount).is_none(),
            "a missing mount is not the command"
        );
    }
}
