//! `events_since`: the backfill server function of the sync core, for every
//! topic kind. Clients call it when they see a gap in a topic's seqs.

use crate::error::AppError;
use crate::model::Backfill;
use leptos::prelude::*;
use leptos::server_fn::codec::GetUrl;

/// Events of `topic` after `(epoch, seq)`, at most `catch-up-limit` of them
/// and at most `page-bytes` of event data (`has_more` says to ask again). `reset` means the version cannot be
/// continued: reload the snapshot.
#[server(endpoint = "events_since", input = GetUrl)]
pub async fn events_since(topic: String, epoch: u32, seq: u64) -> Result<Backfill, AppError> {
    let state = crate::server::app_state()?;
    let who = crate::server::principal()?;
    let ip = crate::server::client_ip(&state).await?;
    state.limits.backfill(ip).map_err(crate::server::limited)?;
    let topic =
        crate::protocol::Topic::parse(&topic).map_err(|e| AppError::Validation(e.to_string()))?;
    let version = crate::protocol::Version::new(epoch, seq);
    crate::server::chat::events_since(&state, &who, topic, version).await
}
