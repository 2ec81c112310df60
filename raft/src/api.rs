//! The JSON shapes of the store API (`/store/v1/*`), shared by the server and its clients
//! (tests, the benchmark, the chaos harness).

use serde::{Deserialize, Serialize};

#[derive(Deserialize, Serialize, Debug, Clone)]
#[serde(tag = "op", rename_all = "lowercase")]
pub enum ApiOp {
    Create { key: String, value: String },
    Update { key: String, value: String, rev: Option<u64> },
    Put { key: String, value: String },
    Delete { key: String, rev: Option<u64> },
}

#[derive(Deserialize, Serialize, Debug)]
pub struct TxnRequest {
    pub ops: Vec<ApiOp>,
    #[serde(default)]
    pub atomic: bool,
}

#[derive(Deserialize, Serialize, Debug, PartialEq)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum ApiResult {
    Ok { create_rev: u64, prev: Option<String> },
    AlreadyExists { mod_rev: u64 },
    NotFound,
    Conflict { mod_rev: u64 },
    Aborted,
    Invalid { message: String },
}

#[derive(Deserialize, Serialize, Debug)]
pub struct TxnResponse {
    pub rev: u64,
    pub results: Vec<ApiResult>,
}

#[derive(Deserialize, Serialize, Debug, Clone, PartialEq)]
pub struct ApiKeyValue {
    pub key: String,
    pub value: String,
    pub create_rev: u64,
    pub mod_rev: u64,
}

#[derive(Deserialize, Serialize, Debug)]
pub struct GetResponse {
    pub rev: u64,
    pub kv: Option<ApiKeyValue>,
}

#[derive(Deserialize, Serialize, Debug)]
pub struct ListResponse {
    pub rev: u64,
    pub items: Vec<ApiKeyValue>,
    pub more: bool,
}

#[derive(Deserialize, Serialize, Debug, Clone)]
pub struct ApiEvent {
    pub rev: u64,
    pub key: String,
    pub kind: String,
    pub value: String,
    pub prev_value: Option<String>,
}

