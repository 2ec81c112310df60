//! (to be written)

use std::sync::Arc;

use crate::Ctx;

pub async fn run(_ctx: Arc<Ctx>) {
    std::future::pending::<()>().await
}
