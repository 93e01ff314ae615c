//! Reading rows back into domain types.
