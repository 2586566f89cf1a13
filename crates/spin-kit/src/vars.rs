//! Application variables, read once per instance (they do not change while the app runs).

use market_core::ApiError;
use std::cell::RefCell;
use std::collections::HashMap;

thread_local! {
    static CACHE: RefCell<HashMap<&'static str, String>> = RefCell::new(HashMap::new());
}

/// The component variable `name`; a missing one is a deployment error (500, the variable named).
pub async fn get(name: &'static str) -> Result<String, ApiError> {
    if let Some(value) = CACHE.with(|c| c.borrow().get(name).cloned()) {
        return Ok(value);
    }
    let value = spin_sdk::variables::get(name)
        .await
        .map_err(|e| ApiError::Misconfigured(format!("the variable {name} is not available: {e}")))?;
    CACHE.with(|c| c.borrow_mut().insert(name, value.clone()));
    Ok(value)
}
