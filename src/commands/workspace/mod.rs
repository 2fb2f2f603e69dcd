pub mod add;
pub mod forget;
