pub mod zero_size;
