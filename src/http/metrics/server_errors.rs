//! `pocketgate_server_errors_total{group}`: the answers pocketgate gave with
//! a 5xx status, by group of endpoints, so an operator can alert on
//! "pocketgate itself is failing" (the store or the provider unreachable, an
//! internal error) whatever handler produced the answer.
//!
//! Counted by a wrapper around every route of `listen` (not of
//! `metrics_listen`): an answer below 500 costs one comparison, and only a
//! 5xx looks the path's group up and the state's metrics.
//!
//! Not for: choosing statuses (`respond` does).

use actix_web::dev::ServiceResponse;
use actix_web::web;

use super::labels::ServerErrorGroup;
use crate::http::LiveState;

/// Count `answer` when its status is 5xx, and hand it on. An `Err` is not
/// counted: the handlers' and extractors' errors are responses by the time
/// they get here, so nothing inside the wrapper returns one.
pub fn count_server_errors<B>(
    answer: Result<ServiceResponse<B>, actix_web::Error>,
) -> Result<ServiceResponse<B>, actix_web::Error> {
    if let Ok(res) = &answer {
        if res.status().is_server_error() {
            let req = res.request();
            if let Some(live) = req.app_data::<web::Data<LiveState>>() {
                live.load()
                    .metrics
                    .server_error(ServerErrorGroup::of(req.path()));
            }
        }
    }
    answer
}
