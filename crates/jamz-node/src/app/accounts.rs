//! Accounts and groups, for a face: the saved login of [`crate::account`] and
//! the REST calls that carry it.

use jamz_proto::{Group, UserId};
use serde::{Deserialize, Serialize};

use super::App;
use crate::account::{self, Credentials, LogoutOutcome};
use crate::error::NodeError;
use crate::secrets::TokenStore;

/// The signed-in account as the UI sees it (never the token).
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AccountView {
    pub server: String,
    pub username: String,
    pub user_id: UserId,
    /// Where the token is kept on this device.
    pub token_store: TokenStore,
}

#[derive(Debug, Clone, Deserialize)]
pub struct RegisterArgs {
    pub server: String,
    pub username: String,
    pub email: String,
    pub password: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct LoginArgs {
    pub server: String,
    pub username: String,
    pub password: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChangePasswordArgs {
    pub current_password: String,
    pub new_password: String,
}

impl App {
    pub async fn register(&self, args: RegisterArgs) -> Result<AccountView, NodeError> {
        let creds = account::register(
            &self.store,
            args.server.trim(),
            &args.username,
            &args.email,
            &args.password,
        )
        .await?;
        self.view(creds)
    }

    pub async fn login(&self, args: LoginArgs) -> Result<AccountView, NodeError> {
        let creds = account::login(
            &self.store,
            args.server.trim(),
            &args.username,
            &args.password,
        )
        .await?;
        self.view(creds)
    }

    pub fn current_account(&self) -> Result<Option<AccountView>, NodeError> {
        self.store.load()?.map(|c| self.view(c)).transpose()
    }

    fn view(&self, c: Credentials) -> Result<AccountView, NodeError> {
        Ok(AccountView {
            server: c.server,
            username: c.username,
            user_id: c.user_id,
            token_store: self.store.token_store()?.unwrap_or(TokenStore::File),
        })
    }

    /// Revokes the account's tokens on the server (when it answers) and forgets
    /// the saved login here in any case.
    pub async fn logout(&self) -> Result<LogoutOutcome, NodeError> {
        account::logout(&self.store).await
    }

    /// A new password; the fresh token replaces the saved one.
    pub async fn change_password(
        &self,
        args: ChangePasswordArgs,
    ) -> Result<AccountView, NodeError> {
        let creds =
            account::change_password(&self.store, &args.current_password, &args.new_password)
                .await?;
        self.view(creds)
    }

    /// Leaves a group: its session and map no longer include this account.
    pub async fn leave_group(&self, group_id: &str) -> Result<(), NodeError> {
        let (rest, _) = account::saved_client(&self.store, None)?;
        Ok(rest.leave_group(group_id).await?)
    }

    pub async fn groups(&self) -> Result<Vec<Group>, NodeError> {
        let (rest, _) = account::saved_client(&self.store, None)?;
        Ok(rest.groups().await?)
    }

    pub async fn create_group(
        &self,
        name: &str,
        description: Option<&str>,
    ) -> Result<Group, NodeError> {
        let (rest, _) = account::saved_client(&self.store, None)?;
        Ok(rest.create_group(name, description).await?)
    }

    pub async fn add_member(&self, group_id: &str, username: &str) -> Result<Group, NodeError> {
        let (rest, _) = account::saved_client(&self.store, None)?;
        Ok(rest.add_member(group_id, username.trim()).await?)
    }
}
