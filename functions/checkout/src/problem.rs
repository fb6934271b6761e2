//! RFC 9457 problem details: every error answer of the API is `application/problem+json`. The
//! types are the shared HTTP edge's (`shared::http`), so every function answers alike.

pub use shared::http::{FieldError, Problem, PROBLEM_JSON as CONTENT_TYPE};
