//! Members of a private room: the list (members see it), and for the owner
//! an invite form and a remove button per member. Removing a member ends
//! their live subscriptions to the room at once.

use super::account::use_identity;
use crate::error::AppError;
use crate::model::{Member, Room};
use leptos::prelude::*;
use leptos::server_fn::codec::GetUrl;

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

#[component]
pub fn Members(room: Room) -> impl IntoView {
    let room_id = room.id;
    let owner = use_identity().me.is_some_and(|me| me.id == room.owner_id);
    let invite = ServerAction::<InviteMember>::new();
    let remove = ServerAction::<RemoveMember>::new();
    let members = Resource::new(
        move || (invite.version().get(), remove.version().get()),
        move |_| room_members(room_id),
    );
    let error = move || {
        let failed = |r: Option<Result<_, AppError>>| r.and_then(Result::err);
        failed(invite.value().get().map(|r| r.map(|_| ())))
            .or_else(|| failed(remove.value().get()))
            .map(|e| e.to_string())
    };
    view! {
        <aside class="members" data-testid="members">
            <h2>"Members (private room)"</h2>
            <Suspense fallback=|| view! { <p>"Loading members…"</p> }>
                {move || Suspend::new(async move {
                    match members.await {
                        Ok(list) => view! {
                            <ul>
                                {list.into_iter().map(|m| view! {
                                    <li data-testid="member">
                                        <span class="member-name">{m.name.clone()}</span>
                                        {m.owner.then_some(" (owner)")}
                                        {(owner && !m.owner).then(|| view! {
                                            <ActionForm action=remove attr:class="inline">
                                                <input type="hidden" name="room_id" value=room_id.to_string() />
                                                <input type="hidden" name="user_id" value=m.user_id.to_string() />
                                                <button type="submit" class="link" data-testid="remove-member">"remove"</button>
                                            </ActionForm>
                                        })}
                                    </li>
                                }).collect_view()}
                            </ul>
                        }.into_any(),
                        Err(e) => view! { <p class="error">{e.to_string()}</p> }.into_any(),
                    }
                })}
            </Suspense>
            {owner.then(|| view! {
                <ActionForm action=invite attr:class="invite">
                    <input type="hidden" name="room_id" value=room_id.to_string() />
                    <input name="name" required maxlength="32" placeholder="account name" aria-label="Account name to invite" data-testid="invite-name" />
                    <button type="submit" data-testid="invite">"Invite"</button>
                </ActionForm>
            })}
            <p class="error" role="alert">{error}</p>
        </aside>
    }
}
