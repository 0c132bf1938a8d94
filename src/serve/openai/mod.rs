//! OpenAI's request and response formats: reading and checking requests
//! (`request`), building responses and stream chunks (`response`), and
//! error objects (`error`).

mod error;
mod request;
mod response;

pub use error::{ApiError, ErrorBody};
pub use request::{parse, Endpoint, Input, Limits, Parsed, RequestBody};
pub use response::{Meta, ModelList, Response, Usage};
