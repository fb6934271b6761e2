//! What a command could not do, said so that the operator knows what to do next, and the exit
//! status a script can branch on.

use std::fmt;

/// A command's failure: one message for a human (and the `error` of `--json`), and its exit
/// status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub message: String,
    pub exit: u8,
}

/// The operation was attempted and failed (AWS refused, a name does not exist, a check found
/// differences).
pub const EXIT_FAILED: u8 = 1;
/// Nothing was done: a usage error, or a destructive command not confirmed. Also clap's status
/// for a malformed command line, so scripts see one status for "fix the command".
pub const EXIT_REFUSED: u8 = 2;

impl Failure {
    pub fn failed(message: impl Into<String>) -> Failure {
        Failure { message: message.into(), exit: EXIT_FAILED }
    }

    pub fn refused(message: impl Into<String>) -> Failure {
        Failure { message: message.into(), exit: EXIT_REFUSED }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Failure {}

/// An AWS call that failed, with what we were doing, AWS's own words and, for the failures an
/// operator meets (expired or missing credentials, a missing permission, no connection), what
/// to do about it.
pub fn aws<E, R>(doing: &str, err: aws_sdk_sqs::error::SdkError<E, R>) -> Failure
where
    E: std::error::Error + aws_sdk_sqs::error::ProvideErrorMetadata + 'static,
    R: fmt::Debug,
{
    use aws_sdk_sqs::error::SdkError;
    let hint = match &err {
        SdkError::DispatchFailure(_) | SdkError::TimeoutError(_) => {
            Some("AWS did not answer: check the network (and, locally, that `make dev` still runs)".to_owned())
        }
        _ => err.as_service_error().and_then(|e| e.code()).and_then(hint_for_code),
    };
    let detail = aws_sdk_sqs::error::DisplayErrorContext(&err).to_string();
    match hint {
        Some(hint) => Failure::failed(format!("{doing} failed: {detail}\n{hint}")),
        None => Failure::failed(format!("{doing} failed: {detail}")),
    }
}

fn hint_for_code(code: &str) -> Option<String> {
    let hint = match code {
        "ExpiredToken" | "ExpiredTokenException" | "RequestExpired" => {
            "the AWS credentials have expired: refresh them (a new session, `aws sso login` and export again)"
        }
        "InvalidClientTokenId" | "UnrecognizedClientException" | "SignatureDoesNotMatch" => {
            "AWS does not recognise these credentials: check AWS_PROFILE / AWS_ACCESS_KEY_ID and the region"
        }
        c if c.starts_with("AccessDenied") || c == "UnauthorizedOperation" => {
            "the credentials are not allowed this call: use a role with operator access to the stack"
        }
        _ => return None,
    };
    Some(hint.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_and_failures_exit_differently() {
        assert_eq!(Failure::refused("x").exit, EXIT_REFUSED);
        assert_eq!(Failure::failed("x").exit, EXIT_FAILED);
        assert_ne!(EXIT_REFUSED, EXIT_FAILED);
    }

    #[test]
    fn expired_credentials_and_missing_permissions_say_what_to_do() {
        assert!(hint_for_code("ExpiredToken").unwrap().contains("refresh"));
        assert!(hint_for_code("AccessDeniedException").unwrap().contains("not allowed"));
        assert!(hint_for_code("AccessDenied").unwrap().contains("not allowed"));
        assert_eq!(hint_for_code("QueueDoesNotExist"), None);
    }
}
