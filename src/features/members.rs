//! Members of a private room: the list (members see it), and for the owner
//! an invite form and a remove button per member. Removing a member ends
//! their live subscriptions to the room at once.

use super::account::use_identity;
use super::forms;
use crate::error::AppError;
use crate::model::{Member, Room};
use leptos::prelude::*;
use leptos::server_fn::codec::GetUrl;
use leptos::server_fn::ServerFn;

#[server(endpoint = "room_members", input = GetUrl)]
pub async fn room_members(room_id: i64) -> Result<Vec<Member>, AppError> {
    let state = crate::server::app_state()?;
    let who = crate::server::principal()?;
    crate::server::accounts::service::members(&state, &who, room_id).await
}

/// Adds the account named `name` to a private room the caller owns.
#[server(endpoint = "invite_member")]
pub async fn invite_member(room_id: i64, name: String) -> Result<Member, AppError> {
    let state = crate::server::app_state()?;
    let who = crate::server::principal()?;
    let member = crate::server::accounts::service::invite(&state, &who, room_id, &name).await?;
    crate::server::redirect_form_post(&format!("/rooms/{room_id}"));
    Ok(member)
}

/// Removes a member from a private room the caller owns.
#[server(endpoint = "remove_member")]
pub async fn remove_member(room_id: i64, user_id: i64) -> Result<(), AppError> {
    let state = crate::server::app_state()?;
    let who = crate::server::principal()?;
    crate::server::accounts::service::remove_member(&state, &who, room_id, user_id).await?;
    crate::server::redirect_form_post(&format!("/rooms/{room_id}"));
    Ok(())
}

/// The members of a private room, as the room's snapshot lists them, and
/// for the owner an invite form and a remove button per member. Both call
/// their server function directly and then read the list again (without
/// JavaScript they are plain form posts, redirected back to the room): no
/// resource or action per form, which kept two more sets of generic code
/// out of the room page's wasm.
#[component]
pub fn Members(room: Room, members: Vec<Member>) -> impl IntoView {
    use futures::future::{FutureExt, LocalBoxFuture};
    let room_id = room.id;
    let owner = use_identity().me.is_some_and(|me| me.id == room.owner_id);
    let list = RwSignal::new(members);
    let error = RwSignal::new(None::<String>);
    // A change, then the list as it now stands; or why not. Only the newest
    // change's answer is shown: the list an older one read may be stale.
    let newest = StoredValue::new(0u64);
    let change = move |call: LocalBoxFuture<'static, Result<(), AppError>>| {
        let mine = newest.get_value() + 1;
        newest.set_value(mine);
        leptos::task::spawn_local(async move {
            let done = match call.await {
                Ok(()) => room_members(room_id).await,
                Err(e) => Err(e),
            };
            if newest.get_value() != mine {
                return;
            }
            match done {
                Ok(now) => {
                    list.set(now);
                    error.set(None);
                }
                Err(e) => error.set(Some(e.to_string())),
            }
        });
    };
    let invite = move |f: &forms::Fields| {
        let name = f.text("name");
        change(async move { invite_member(room_id, name).await.map(drop) }.boxed_local());
    };
    view! {
        <aside class="members" data-testid="members">
            <h2>"Members (private room)"</h2>
            <ul>
                {move || list.get().into_iter().map(|m| {
                    let user_id = m.user_id;
                    let remove = move |_: &forms::Fields| change(remove_member(room_id, user_id).boxed_local());
                    view! {
                        <li data-testid="member">
                            <span class="member-name">{m.name}</span>
                            {m.owner.then_some(" (owner)")}
                            {(owner && !m.owner).then(|| view! {
                                <form class="inline" method="post" action={RemoveMember::url()}
                                    on:submit={forms::on_submit(remove)}>
                                    <input type="hidden" name="room_id" value=room_id.to_string() />
                                    <input type="hidden" name="user_id" value=user_id.to_string() />
                                    <button type="submit" class="link" data-testid="remove-member">"remove"</button>
                                </form>
                            })}
                        </li>
                    }
                }).collect_view()}
            </ul>
            {owner.then(|| view! {
                <form class="invite" method="post" action={InviteMember::url()}
                    on:submit={forms::on_submit(invite)}>
                    <input type="hidden" name="room_id" value=room_id.to_string() />
                    <input name="name" required maxlength="32" placeholder="account name" aria-label="Account name to invite" data-testid="invite-name" />
                    <button type="submit" data-testid="invite">"Invite"</button>
                </form>
            })}
            <p class="error" role="alert">{move || error.get()}</p>
        </aside>
    }
}
