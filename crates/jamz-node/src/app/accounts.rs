//! Accounts and groups, for a face: the saved login of [`crate::account`] and
//! the REST calls that carry it.

use jamz_proto::{Group, UserId};
use serde::{Deserialize, Serialize};

use super::App;
use crate::account::{self, Credentials};
use crate::error::NodeError;

/// The signed-in account as the UI sees it (never the token).
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AccountView {
    pub server: String,
    pub username: String,
    pub user_id: UserId,
}

impl From<Credentials> for AccountView {
    fn from(c: Credentials) -> Self {
        Self {
            server: c.server,
            username: c.username,
            user_id: c.user_id,
        }
    }
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
        Ok(creds.into())
    }

    pub async fn login(&self, args: LoginArgs) -> Result<AccountView, NodeError> {
        let creds = account::login(
            &self.store,
            args.server.trim(),
            &args.username,
            &args.password,
        )
        .await?;
        Ok(creds.into())
    }

    pub fn current_account(&self) -> Result<Option<AccountView>, NodeError> {
        Ok(self.store.load()?.map(AccountView::from))
    }

    pub fn logout(&self) -> Result<(), NodeError> {
        self.store.clear()
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
