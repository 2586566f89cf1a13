//! The accounts service's refusals, mapped once to [`ApiError`].

use market_core::ApiError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AccountsError {
    /// The username is taken (409).
    UsernameTaken { username: String },
    /// Unknown user or wrong password: the same answer for both, so that a client cannot learn
    /// which usernames exist (401).
    WrongCredentials,
    /// Too many failed logins for this username or client address (429).
    TooManyFailures { retry_after_seconds: u64 },
    /// The token's user is gone (401).
    UnknownUser,
}

impl From<AccountsError> for ApiError {
    fn from(e: AccountsError) -> ApiError {
        match e {
            AccountsError::UsernameTaken { username } => {
                ApiError::Conflict(format!("the username {username:?} is taken"))
            }
            AccountsError::WrongCredentials => ApiError::Unauthorized("wrong username or password".into()),
            AccountsError::TooManyFailures { retry_after_seconds } => ApiError::TooManyRequests {
                message: format!("too many failed logins; retry in {retry_after_seconds} s"),
                retry_after_seconds,
            },
            AccountsError::UnknownUser => ApiError::Unauthorized("the token's user does not exist".into()),
        }
    }
}
