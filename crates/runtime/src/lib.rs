//! Machinery shared by every control loop of pernode (controllers and the fleet simulator), as
//! client-go's `util/workqueue`, shared informers and golang.org/x/time/rate's limiter are
//! shared upstream; and leader election, as client-go's `tools/leaderelection`.

pub mod leader_election;
pub mod shared_watch;
pub mod token_bucket;
pub mod workqueue;
pub mod workqueue_metrics;

pub use shared_watch::{SharedWatch, Subscription};
pub use token_bucket::TokenBucket;
pub use workqueue::WorkQueue;
