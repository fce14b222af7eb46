//! `/login`, `/signup`, `/account`: the account pages (see
//! `features/account.rs`).
//!
//! Lazy routes: a release build made with `cargo leptos build --release
//! --split` puts their code in chunks of their own, fetched when one of
//! these pages is opened, so no other page's visitor downloads it. Any other
//! build compiles them into the one wasm.

use crate::features::account::{AccountPanel, CredentialsForm};
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::{lazy_route, LazyRoute};

pub struct LoginPage;

#[lazy_route]
impl LazyRoute for LoginPage {
    fn data() -> Self {
        #[cfg(feature = "ssr")]
        crate::server::site::preload_lazy("__login_page_view");
        LoginPage
    }

    fn view(_this: Self) -> AnyView {
        view! { <Title text="Log in · tandem" /> <CredentialsForm sign_up=false /> }.into_any()
    }
}

pub struct SignupPage;

#[lazy_route]
impl LazyRoute for SignupPage {
    fn data() -> Self {
        #[cfg(feature = "ssr")]
        crate::server::site::preload_lazy("__signup_page_view");
        SignupPage
    }

    fn view(_this: Self) -> AnyView {
        view! { <Title text="Sign up · tandem" /> <CredentialsForm sign_up=true /> }.into_any()
    }
}

pub struct AccountPage;

#[lazy_route]
impl LazyRoute for AccountPage {
    fn data() -> Self {
        #[cfg(feature = "ssr")]
        crate::server::site::preload_lazy("__account_page_view");
        AccountPage
    }

    fn view(_this: Self) -> AnyView {
        view! { <Title text="Account · tandem" /> <AccountPanel /> }.into_any()
    }
}
