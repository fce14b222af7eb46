//! The one JSON reader of the browser's code.
//!
//! serde_json reads a `&str` (`from_str`) and a `&[u8]` (`from_slice`)
//! through two different readers, and every type's derived deserializer is
//! compiled once per reader it is read with. The server functions' client
//! reads answers with `from_slice`; Leptos's default resource codec reads a
//! page's hydration data with `from_str`. So a type that came both ways (a
//! room's snapshot, an event, an `AppError`) had two copies of its reader in
//! the wasm. Everything the browser reads goes through `from_slice` now:
//! frames, poll answers and the stored outbox through [`read`], resources
//! through [`resource`] and the identity's `SharedValue` (the [`Json`]
//! codec). That took about 4% off the wasm (README, "Lazy routes, plain
//! forms and one JSON reader").

use leptos::prelude::*;
use leptos::server::codee::{Decoder, Encoder};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// Reads `text` as JSON (with the same reader as the server functions).
pub fn read<'a, T: Deserialize<'a>>(text: &'a str) -> serde_json::Result<T> {
    serde_json::from_slice(text.as_bytes())
}

/// The codec of this crate's resources: JSON, written as Leptos's default
/// codec writes it, read with [`read`].
pub struct Json;

impl<T: Serialize> Encoder<T> for Json {
    type Error = serde_json::Error;
    type Encoded = String;

    fn encode(val: &T) -> Result<String, Self::Error> {
        serde_json::to_string(val)
    }
}

impl<T: DeserializeOwned> Decoder<T> for Json {
    type Error = serde_json::Error;
    type Encoded = str;

    fn decode(val: &str) -> Result<T, Self::Error> {
        read(val)
    }
}

/// `Resource::new` with the [`Json`] codec.
#[track_caller]
pub fn resource<T, S, Fut>(
    source: impl Fn() -> S + Send + Sync + 'static,
    fetcher: impl Fn(S) -> Fut + Send + Sync + 'static,
) -> Resource<T, Json>
where
    T: Serialize + DeserializeOwned + Send + Sync + 'static,
    S: PartialEq + Clone + Send + Sync + 'static,
    Fut: std::future::Future<Output = T> + Send + 'static,
{
    Resource::new_with_options(source, fetcher, false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::AppError;

    #[test]
    fn the_codec_reads_what_it_writes_and_what_leptos_default_codec_writes() {
        use leptos::server::codee::string::JsonSerdeCodec;
        let value: Result<Vec<(i64, String)>, AppError> = Ok(vec![(1, "a \"b\" é".into())]);
        let ours = <Json as Encoder<_>>::encode(&value).unwrap();
        let theirs = <JsonSerdeCodec as Encoder<_>>::encode(&value).unwrap();
        assert_eq!(ours, theirs);
        let back: Result<Vec<(i64, String)>, AppError> = Json::decode(&ours).unwrap();
        assert_eq!(back, value);
        let err: Result<Vec<(i64, String)>, AppError> = Err(AppError::NotFound("room".into()));
        let back: Result<Vec<(i64, String)>, AppError> =
            Json::decode(&<Json as Encoder<_>>::encode(&err).unwrap()).unwrap();
        assert_eq!(back, err);
        assert!(<Json as Decoder<Vec<i64>>>::decode("[1,").is_err());
    }
}
