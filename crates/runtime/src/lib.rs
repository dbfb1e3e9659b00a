//! Machinery shared by every control loop of pernode (controllers and the fleet simulator), as
//! client-go's `util/workqueue` is shared upstream.

pub mod workqueue;

pub use workqueue::WorkQueue;
