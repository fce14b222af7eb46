//! `/login`, `/signup`, `/account`: the account pages (see
//! `features/account.rs`).

use crate::features::account::{AccountPanel, CredentialsForm};
use leptos::prelude::*;
use leptos_meta::Title;

#[component]
pub fn LoginPage() -> impl IntoView {
    view! { <Title text="Log in · tandem" /> <CredentialsForm sign_up=false /> }
}

#[component]
pub fn SignupPage() -> impl IntoView {
    view! { <Title text="Sign up · tandem" /> <CredentialsForm sign_up=true /> }
}

#[component]
pub fn AccountPage() -> impl IntoView {
    view! { <Title text="Account · tandem" /> <AccountPanel /> }
}
