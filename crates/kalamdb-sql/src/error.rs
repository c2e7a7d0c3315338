use thiserror::Error;

/// Why a statement could not be parsed. The message is meant for the client.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{0}")]
pub struct ParseError(pub String);

impl From<sqlparser::parser::ParserError> for ParseError {
    fn from(err: sqlparser::parser::ParserError) -> Self {
        ParseError(err.to_string())
    }
}

impl From<sqlparser::tokenizer::TokenizerError> for ParseError {
    fn from(err: sqlparser::tokenizer::TokenizerError) -> Self {
        ParseError(err.to_string())
    }
}

pub fn err<T>(msg: impl Into<String>) -> Result<T, ParseError> {
    Err(ParseError(msg.into()))
}
