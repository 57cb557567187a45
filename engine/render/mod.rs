//! Renderers: the event stream as text or JSON.

pub mod app;
pub mod chat;
pub mod conn_order;
pub mod follow;
pub mod json;
pub mod report;
pub mod text;
